"""Argument handling at the edges: one normaliser (``convmat._args``), one rule per class.

Each test here is a named regression case of issue 12 that failed on the code before
it: huge integers, ragged nested lists, 0-d arrays as scalars, choices of the wrong
kind, empty channel axes and the float16 policy, and the two shape conventions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import convmat
from convmat import symbolic

MAX_INT = 2**31 - 1  # the documented bound of integer arguments

X2 = np.arange(64.0).reshape(1, 8, 8)
W2 = np.ones((1, 1, 3, 3))

# --------------------------------------------------------------- 2: huge integers


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: convmat.conv_matrix((1, 8, 8), W2, stride=2**70), r"stride must be at most"),
        (lambda: convmat.conv(X2, W2, padding=2**62), r"padding must be at most"),
        (lambda: convmat.conv(X2, W2, padding=((0, 2**40), 0)), r"padding must be at most"),
        (lambda: convmat.conv(X2, W2, dilation=(1, 2**63)), r"dilation must be at most"),
        (lambda: convmat.conv_transpose(X2, W2, stride=-(2**64)), r"stride must be at most"),
        (lambda: convmat.conv_output_shape(2**40, 3), r"spatial must be at most"),
        (
            lambda: convmat.conv_transpose_output_shape(8, 3, stride=2**33),
            r"stride must be at most",
        ),
        (lambda: convmat.max_pool(X2, 2**65), r"kernel_size must be at most"),
        (lambda: convmat.zero_insert(X2[None], 2**80), r"stride must be at most"),
        (lambda: convmat.upsample(X2, size=2**70), r"size must be at most"),
        (lambda: convmat.overlap_map(8, 3, stride=2**64), r"stride must be at most"),
        (lambda: convmat.pad(X2, (2**62, 0)), r"pad must be at most"),
    ],
)
def test_huge_integers_are_refused_by_name_not_overflowed(
    call: Callable[[], Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match + r" 2147483647 \(2\*\*31 - 1\)"):
        call()


def test_the_integer_bound_itself_is_accepted() -> None:
    assert convmat.conv_output_shape(MAX_INT, 1) == (MAX_INT,)
    assert convmat.conv_transpose_output_shape(2, 1, stride=MAX_INT) == (MAX_INT + 1,)


# --------------------------------------------------------------- 3: ragged nested lists


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: convmat.conv([[1.0, 2.0], [3.0]], [[[1.0]]]), "x"),
        (lambda: convmat.conv(X2, [[[[1.0, 2.0], [3.0]]]]), "weight"),
        (lambda: convmat.conv_transpose(X2, [[[[1.0], [2.0, 3.0]]]]), "weight"),
        (lambda: convmat.conv(X2, W2, bias=[[1.0], []]), "bias"),
        (lambda: convmat.conv_matrix((1, 3, 3), [[[[1, 2], [3]]]]), "weight"),
        (lambda: convmat.max_pool([[1.0, 2.0], [3.0]], 1), "x"),
        (lambda: convmat.max_unpool([[1.0]], [[0], [1, 2]], 1), "indices"),
        (lambda: convmat.upsample([[1.0], [2.0, 3.0]], scale_factor=2), "x"),
    ],
)
def test_ragged_nested_lists_name_the_argument(call: Callable[[], Any], name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name} must be a rectangular array"):
        call()


# --------------------------------------------------------------- 4: 0-d arrays are scalars


def test_zero_d_arrays_are_their_scalars_everywhere() -> None:
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    assert np.array_equal(
        convmat.conv(X2, W2, padding=np.array(1)), convmat.conv(X2, W2, padding=1)
    )
    assert np.array_equal(
        convmat.upsample(x, scale_factor=np.array(2.0)), convmat.upsample(x, scale_factor=2.0)
    )
    assert np.array_equal(convmat.upsample(x, size=np.array(8)), convmat.upsample(x, size=8))
    assert np.array_equal(convmat.max_pool(x, np.array(2)), convmat.max_pool(x, 2))
    assert np.array_equal(convmat.avg_pool(x, np.array(2)), convmat.avg_pool(x, 2))
    assert np.array_equal(
        convmat.adaptive_avg_pool(x, np.array(2)), convmat.adaptive_avg_pool(x, 2)
    )
    assert np.array_equal(convmat.zero_insert(x, np.array(2)), convmat.zero_insert(x, 2))
    assert np.array_equal(convmat.overlap_map(np.array(4), 3), convmat.overlap_map(4, 3))
    assert np.array_equal(
        convmat.checkerboard(np.array(3), np.array(2)).tile, convmat.checkerboard(3, 2).tile
    )
    assert convmat.conv_output_shape(np.array(5), np.array(3), padding=np.array(1)) == (5,)
    assert convmat.conv_transpose_output_shape(np.array(3), np.array(3), stride=np.array(2)) == (7,)
    assert convmat.conv_transpose_output_padding(
        np.array(4), np.array(8), np.array(3), stride=np.array(2), padding=np.array(1)
    ) == (1,)
    assert convmat.unfold(x, np.array(2)).shape == convmat.unfold(x, 2).shape


def test_zero_d_arrays_keep_the_kind_rules() -> None:
    with pytest.raises(TypeError, match="stride must be an int or a sequence of ints; got"):
        convmat.conv(X2, W2, stride=np.array(1.5))
    with pytest.raises(TypeError, match="padding must be an int or a sequence of ints; got"):
        convmat.conv(X2, W2, padding=np.array(True))


# --------------------------------------------------------------- 5: choices of the wrong kind


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: convmat.conv_transpose(X2, W2, method=["gemm"]), "method"),
        (lambda: convmat.conv(X2, W2, padding_mode=["zeros"]), "padding_mode"),
        (lambda: convmat.conv_matrix((1, 8, 8), W2, padding_mode={"zeros"}), "padding_mode"),
        (lambda: convmat.upsample(X2, scale_factor=2, mode=["nearest"]), "mode"),
        (lambda: convmat.upsample_matrix((4,), scale_factor=2, mode=None), "mode"),
        (lambda: convmat.pad(X2, (1, 1), mode=["reflect"]), "mode"),
        (lambda: convmat.stack_overlap(4, [{"kind": ["conv"], "kernel_size": 3}]), "kind"),
    ],
)
def test_choices_of_the_wrong_kind_name_the_argument(call: Callable[[], Any], name: str) -> None:
    with pytest.raises(TypeError, match=rf"{name} must be one of \("):
        call()


def test_padding_of_the_wrong_kind_names_padding() -> None:
    with pytest.raises(TypeError, match=r"padding must be an int or a sequence of ints; got \{"):
        convmat.conv(X2, W2, padding=[{"same"}, 0])
    with pytest.raises(ValueError, match=r"padding must be an int, a sequence or one of \('valid'"):
        convmat.conv(X2, W2, padding="half")


# --------------------------------------------------------------- 7: empty axes, float16

X1 = np.arange(8.0).reshape(1, 8)
X_HW = np.arange(16.0).reshape(1, 4, 4)

#: Every public function that takes data ``x`` and returns an array, called on a
#: one-channel sample shaped as it wants; ``make(x)`` runs it.
ARRAY_FUNCTIONS: dict[str, tuple[np.ndarray[Any, Any], Callable[[Any], Any]]] = {
    "conv": (X1, lambda x: convmat.conv(x, np.ones((2, 1, 3)), bias=np.ones(2))),
    "conv_transpose": (X1, lambda x: convmat.conv_transpose(x, np.ones((1, 2, 3)), stride=2)),
    "conv_transpose_scatter": (
        X1,
        lambda x: convmat.conv_transpose(x, np.ones((1, 2, 3)), stride=2, method="scatter"),
    ),
    "zero_insert": (X1, lambda x: convmat.zero_insert(x, (2,))),
    "upsample": (X1, lambda x: convmat.upsample(x, scale_factor=2, mode="linear")),
    "upsample_area": (X1, lambda x: convmat.upsample(x, size=3, mode="area")),
    "max_pool": (X1, lambda x: convmat.max_pool(x, 2)),
    "max_pool_indices": (X1, lambda x: convmat.max_pool(x, 2, return_indices=True)[0]),
    "max_unpool": (
        X1,
        lambda x: convmat.max_unpool(*convmat.max_pool(x, 2, return_indices=True), 2),
    ),
    "avg_pool": (X1, lambda x: convmat.avg_pool(x, 2)),
    "adaptive_avg_pool": (X1, lambda x: convmat.adaptive_avg_pool(x, 3)),
    "pad": (X1, lambda x: convmat.pad(x, (1, 2))),
    "pad_reflect": (X1, lambda x: convmat.pad(x, (1, 2), mode="reflect")),
    "pixel_shuffle": (np.arange(16.0).reshape(4, 2, 2), lambda x: convmat.pixel_shuffle(x, 2)),
    "pixel_unshuffle": (X_HW, lambda x: convmat.pixel_unshuffle(x, 2)),
    "unfold": (X_HW, lambda x: convmat.unfold(x, 2)),
    "fold": (np.arange(36.0).reshape(4, 9), lambda x: convmat.fold(x, (4, 4), 2)),
}


@pytest.mark.parametrize("name", sorted(ARRAY_FUNCTIONS))
def test_an_empty_batch_gives_an_empty_batch(name: str) -> None:
    sample, call = ARRAY_FUNCTIONS[name]
    one = np.asarray(call(sample[None]))
    none = np.asarray(call(np.empty((0, *sample.shape))))
    assert none.shape == (0, *one.shape[1:])


@pytest.mark.parametrize("name", sorted(ARRAY_FUNCTIONS))
def test_an_empty_channel_axis_is_refused(name: str) -> None:
    sample, call = ARRAY_FUNCTIONS[name]
    for shape in ((0, *sample.shape[1:]), (2, 0, *sample.shape[1:])):
        with pytest.raises(ValueError, match=r"x must have non-empty channel and spatial axes"):
            call(np.empty(shape))


@pytest.mark.parametrize("name", sorted(ARRAY_FUNCTIONS))
def test_float16_in_float16_out(name: str) -> None:
    sample, call = ARRAY_FUNCTIONS[name]
    if name in ("conv", "conv_transpose", "conv_transpose_scatter"):
        return  # their weight is float64 here: see the dtype tests below
    y = np.asarray(call(sample.astype(np.float16)))
    assert y.dtype == np.float16
    assert np.array_equal(y, np.asarray(call(sample)).astype(np.float16))


def test_float16_conv_needs_every_array_in_float16() -> None:
    x, w, b = X2.astype(np.float16), W2.astype(np.float16), np.ones(1, np.float16)
    assert convmat.conv(x, w).dtype == np.float16
    assert convmat.conv(x, w, b).dtype == np.float16
    assert convmat.conv_transpose(x, w, method="fractional").dtype == np.float16
    assert convmat.conv(x, W2.astype(np.float32)).dtype == np.float32
    assert convmat.conv(x, W2).dtype == np.float64
    assert convmat.max_pool(x, 2, return_indices=True)[1].dtype == np.int64


def test_float16_is_computed_in_float32() -> None:
    # 2049 is not a float16; a float16 accumulation of 2048 + 1 would lose the 1.
    x = np.full((1, 2049), 1.0, np.float16)
    y = convmat.conv(x, np.ones((1, 1, 2049), np.float16) / np.float16(2))
    assert y.dtype == np.float16 and y[0, 0] == np.float16(1024.5)


torch = pytest.importorskip("torch")
F = torch.nn.functional


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda x, w: convmat.conv(x, w, padding=1), lambda x, w: F.conv2d(x, w, padding=1)),
        (
            lambda x, w: convmat.conv_transpose(x, w, stride=2),
            lambda x, w: F.conv_transpose2d(x, w, stride=2),
        ),
        (lambda x, w: convmat.max_pool(x, 2), lambda x, w: F.max_pool2d(x, 2)),
        (lambda x, w: convmat.avg_pool(x, 2), lambda x, w: F.avg_pool2d(x, 2)),
        (
            lambda x, w: convmat.upsample(x, scale_factor=2, mode="bilinear"),
            lambda x, w: F.interpolate(x, scale_factor=2, mode="bilinear"),
        ),
        (
            lambda x, w: convmat.upsample(x, scale_factor=2),
            lambda x, w: F.interpolate(x, scale_factor=2),
        ),
        (
            lambda x, w: convmat.pad(x, (1, 2, 0, 1), mode="replicate"),
            lambda x, w: F.pad(x, (1, 2, 0, 1), mode="replicate"),
        ),
        (lambda x, w: convmat.pixel_unshuffle(x, 2), lambda x, w: F.pixel_unshuffle(x, 2)),
    ],
)
def test_float16_matches_torch(
    ours: Callable[[Any, Any], Any], theirs: Callable[[Any, Any], Any]
) -> None:
    rng = np.random.default_rng(12)
    x = torch.from_numpy(rng.integers(-4, 5, size=(2, 1, 6, 6)).astype(np.float16))
    w = torch.from_numpy(rng.integers(-2, 3, size=(1, 1, 3, 3)).astype(np.float16))
    expected = theirs(x, w)
    assert expected.dtype == torch.float16
    got = ours(x, w)
    assert got.dtype == np.float16
    assert np.array_equal(got, expected.numpy())


def test_bfloat16_tensors_are_read_and_returned_as_float32() -> None:
    x = torch.arange(16.0).reshape(1, 1, 4, 4).to(torch.bfloat16)
    w = torch.ones(1, 1, 2, 2, dtype=torch.bfloat16)
    y = convmat.conv(x, w)
    assert y.dtype == np.float32
    assert np.array_equal(y, F.conv2d(x.float(), w.float()).numpy())
    assert convmat.max_pool(x, 2).dtype == np.float32
    assert convmat.conv_matrix((1, 4, 4), w).dtype == np.float32


# --------------------------------------------------------------- 11: both shape conventions


def test_numeric_matrices_take_the_single_channel_shorthand() -> None:
    full = convmat.conv_matrix((1, 3, 3), [[[[1, 2], [3, 4]]]])
    assert (convmat.conv_matrix((3, 3), [[1, 2], [3, 4]]) != full).nnz == 0
    assert (convmat.conv_matrix((1, 3, 3), [[1, 2], [3, 4]]) != full).nnz == 0
    t_full = convmat.conv_transpose_matrix((1, 2, 2), [[[[0, 1], [2, 3]]]], stride=2)
    t_short = convmat.conv_transpose_matrix((2, 2), [[0, 1], [2, 3]], stride=2)
    assert (t_short != t_full).nnz == 0
    assert convmat.conv_matrix((5,), [1.0, 2.0]).shape == (4, 5)


def test_symbolic_matrices_take_the_channels_first_shape() -> None:
    w = symbolic.symbols("w", (2, 2))
    short = symbolic.conv_matrix((3, 3), w)
    assert symbolic.conv_matrix((1, 3, 3), w) == short
    assert symbolic.conv_transpose_matrix((1, 2, 2), w) == symbolic.conv_transpose_matrix((2, 2), w)


def test_a_channel_free_kernel_needs_one_channel() -> None:
    with pytest.raises(ValueError, match=r"weight must have shape \(C_out, C_in // groups"):
        convmat.conv_matrix((2, 3, 3), [[1, 2], [3, 4]])
    with pytest.raises(ValueError, match=r"w must have as many axes as spatial_or_input_shape"):
        symbolic.conv_matrix((2, 3, 3), symbolic.symbols("w", (2, 2)))
    with pytest.raises(TypeError, match=r"input_shape must be a sequence \(C_in, \*spatial\)"):
        convmat.conv_matrix(9, [1, 2])
