"""conv_matrix and conv_transpose_matrix: worked examples, PyTorch, fixtures, properties, errors."""

from __future__ import annotations

import json
import math
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from convmat import conv_matrix, conv_output_shape, conv_transpose_matrix
from convmat._matrix import _index_dtype, human_bytes
from tests.strategies import conv_layers, conv_transpose_layers, geometry, small_ints

FIXTURES = Path(__file__).parent / "fixtures" / "conv.npz"
D2L_X = np.array([[0.0, 1.0], [2.0, 3.0]])
D2L_K = np.array([[[[0.0, 1.0], [2.0, 3.0]]]])


def _apply(matrix: sp.csr_array, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Apply a one-sample matrix to a batch, as the design card says."""
    return np.asarray((matrix @ x.reshape(x.shape[0], -1).T).T)


# ---------------------------------------------------------------- worked examples


def test_d2l_conv_matrix_is_4_by_9() -> None:
    C = conv_matrix((1, 3, 3), [[[[1, 2], [3, 4]]]])
    assert C.shape == (4, 9)
    assert_array_equal(
        C.toarray(),
        [
            [1, 2, 0, 3, 4, 0, 0, 0, 0],
            [0, 1, 2, 0, 3, 4, 0, 0, 0],
            [0, 0, 0, 1, 2, 0, 3, 4, 0],
            [0, 0, 0, 0, 1, 2, 0, 3, 4],
        ],
    )
    x = np.arange(9.0)
    assert_array_equal((C @ x).reshape(2, 2), [[27, 37], [57, 67]])
    # d2l: trans_conv(Y, K) == W.T @ Y, and conv_transpose_matrix is exactly that W.T.
    y = np.array([27.0, 37.0, 57.0, 67.0])
    T = conv_transpose_matrix((1, 2, 2), [[[[1, 2], [3, 4]]]])
    assert_array_equal((T @ y).reshape(3, 3), [[27, 91, 74], [138, 400, 282], [171, 429, 268]])
    assert_array_equal(T.toarray(), C.T.toarray())


def test_d2l_transposed_examples() -> None:
    out = conv_transpose_matrix((1, 2, 2), D2L_K) @ D2L_X.ravel()
    assert_array_equal(out.reshape(3, 3), [[0, 0, 1], [0, 4, 6], [4, 12, 9]])
    out = conv_transpose_matrix((1, 2, 2), D2L_K, padding=1) @ D2L_X.ravel()
    assert_array_equal(out.reshape(1, 1), [[4]])
    out = conv_transpose_matrix((1, 2, 2), D2L_K, stride=2) @ D2L_X.ravel()
    assert_array_equal(out.reshape(4, 4), [[0, 0, 0, 1], [0, 0, 2, 3], [0, 2, 0, 3], [4, 6, 6, 9]])


def test_pytorch_forum_example() -> None:
    w = np.array([[[[4.0, 2.0], [0.0, 1.0]]]])
    x = np.array([[1.0, 1.0, 3.0], [2.0, 3.0, 1.0], [4.0, 0.0, 4.0]])
    assert_array_equal((conv_matrix((1, 3, 3), w) @ x.ravel()).reshape(2, 2), [[9, 11], [14, 18]])
    assert_array_equal(
        (conv_transpose_matrix((1, 3, 3), w) @ x.ravel()).reshape(4, 4),
        [[4, 6, 14, 6], [8, 17, 11, 5], [16, 10, 19, 9], [0, 4, 0, 4]],
    )


def test_dumoulin_4x16_matrix() -> None:
    """Section 4.1: a 3x3 kernel on a 4x4 input; rows are the kernel unrolled and shifted."""
    w = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    C = conv_matrix((1, 4, 4), w).toarray()
    first = [1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0, 0, 0, 0, 0]
    assert_array_equal(C[0], first)
    for row, shift in zip(C[1:], (1, 4, 5), strict=True):
        assert_array_equal(row, np.roll(first, shift))


def test_one_dimensional_full_matches_numpy_convolve() -> None:
    """padding="full" on a flipped kernel is true convolution, as np.convolve / convmtx."""
    h = np.array([1.0, -2.0, 4.0])
    x = np.array([3.0, 1.0, 0.0, 2.0, 5.0])
    C = conv_matrix((1, 5), h[::-1].reshape(1, 1, 3), padding="full")
    assert_array_equal(C @ x, np.convolve(h, x))
    scipy_linalg = pytest.importorskip("scipy.linalg")
    assert_array_equal(C.toarray(), scipy_linalg.convolution_matrix(h, 5, mode="full"))


# ---------------------------------------------------------------- references


def test_fixtures_without_torch() -> None:
    """Conformance to torch outputs committed by tests/fixtures/make_conv.py."""
    data = np.load(FIXTURES)
    count = 0
    while f"{count}_meta" in data:
        meta = json.loads(str(data[f"{count}_meta"]))
        x, w, b, y = (data[f"{count}_{key}"] for key in "xwby")
        kwargs = meta["geometry"]  # JSON lists: every form the API accepts
        build = conv_transpose_matrix if meta["transposed"] else conv_matrix
        C = build(x.shape[1:], w, **kwargs)
        channels = y.shape[1]
        bias = np.repeat(b, y[0, 0].size)
        assert len(bias) == channels * y[0, 0].size
        assert_array_equal(_apply(C, x) + bias, y.reshape(len(y), -1), err_msg=str(meta))
        count += 1
    assert count >= 30


@settings(max_examples=120, deadline=None)
@given(conv_layers(), st.data())
def test_conv_matrix_matches_torch(layer: dict[str, Any], data: st.DataObject) -> None:
    pytest.importorskip("torch")
    from convmat.testing import torch_conv

    w = data.draw(small_ints(layer["weight_shape"]))
    x = data.draw(small_ints((2, *layer["input_shape"])))
    C = conv_matrix(layer["input_shape"], w, **geometry(layer))
    y = torch_conv(x, w, **geometry(layer))
    assert C.shape == (y[0].size, x[0].size)
    assert_array_equal(_apply(C, x), y.reshape(2, -1))


@settings(max_examples=120, deadline=None)
@given(conv_transpose_layers(), st.data())
def test_conv_transpose_matrix_matches_torch(layer: dict[str, Any], data: st.DataObject) -> None:
    pytest.importorskip("torch")
    from convmat.testing import torch_conv_transpose

    w = data.draw(small_ints(layer["weight_shape"]))
    x = data.draw(small_ints((2, *layer["input_shape"])))
    C = conv_transpose_matrix(layer["input_shape"], w, **geometry(layer))
    y = torch_conv_transpose(x, w, **geometry(layer))
    assert C.shape == (y[0].size, x[0].size)
    assert_array_equal(_apply(C, x), y.reshape(2, -1))


# ---------------------------------------------------------------- properties


@settings(max_examples=150, deadline=None)
@given(conv_transpose_layers(), st.data())
def test_transpose_is_the_forward_matrix_transposed(
    layer: dict[str, Any], data: st.DataObject
) -> None:
    """Cᵀ is the forward layer's C transposed: same pattern, same values, exactly."""
    w = data.draw(small_ints(layer["weight_shape"]))
    kw = geometry(layer)
    T = conv_transpose_matrix(layer["input_shape"], w, **kw)
    c_in, *spatial = layer["input_shape"]
    out_channels = T.shape[0] // math.prod(_transposed_spatial(layer))
    forward_input = (out_channels, *_transposed_spatial(layer))
    C = conv_matrix(
        forward_input,
        w,
        stride=kw["stride"],
        padding=kw["padding"],
        dilation=kw["dilation"],
        groups=kw["groups"],
    )
    # Restrict the forward output to the transposed input (output_padding >= stride).
    natural = conv_output_shape(
        forward_input[1:],
        w.shape[2:],
        stride=kw["stride"],
        padding=kw["padding"],
        dilation=kw["dilation"],
    )
    keep = np.zeros((c_in, *natural), dtype=bool)
    keep[(slice(None), *(slice(0, n) for n in spatial))] = True
    C = C[np.flatnonzero(keep.ravel())]
    assert (T != C.T).nnz == 0
    assert_array_equal(T.toarray(), C.T.toarray())
    assert T.nnz == C.nnz


def _transposed_spatial(layer: dict[str, Any]) -> tuple[int, ...]:
    from convmat import conv_transpose_output_shape

    return conv_transpose_output_shape(
        layer["input_shape"][1:], layer["weight_shape"][2:], **geometry(layer, "groups")
    )


@settings(max_examples=150, deadline=None)
@given(conv_layers(), st.data())
def test_structure(layer: dict[str, Any], data: st.DataObject) -> None:
    """nnz bound, canonical CSR, int32 indices, no stored zeros from zero padding."""
    w = data.draw(small_ints(layer["weight_shape"]).map(lambda a: np.where(a == 0, 1.0, a)))
    C = conv_matrix(layer["input_shape"], w, **geometry(layer))
    _, per_group, *k = layer["weight_shape"]
    bound = C.shape[0] * per_group * math.prod(k)
    assert C.nnz <= bound
    assert isinstance(C, sp.csr_array)
    assert C.indices.dtype == np.int32 and C.indptr.dtype == np.int32
    assert C.has_sorted_indices
    copy = C.copy()
    copy.sum_duplicates()
    assert copy.nnz == C.nnz
    if layer["padding_mode"] in ("zeros", "circular"):
        # Zero padding stores nothing; circular folds distinct taps onto distinct inputs
        # unless the kernel wraps around the whole input.
        if layer["padding_mode"] == "zeros":
            assert np.all(C.data != 0)


def test_dtypes() -> None:
    w = np.ones((2, 1, 3, 3), dtype=np.float32)
    assert conv_matrix((1, 5, 5), w).dtype == np.float32
    assert conv_transpose_matrix((2, 3, 3), w).dtype == np.float32
    assert conv_matrix((1, 5, 5), w.astype(np.float64)).dtype == np.float64
    wc = (np.arange(9) + 1j * np.arange(9)).reshape(1, 1, 3, 3)
    C = conv_matrix((1, 4, 4), wc)
    assert C.dtype == np.complex128
    x = np.arange(16.0).reshape(4, 4)
    expected = conv_matrix((1, 4, 4), wc.real) @ x.ravel() + 1j * (
        conv_matrix((1, 4, 4), wc.imag) @ x.ravel()
    )
    assert_array_equal(C @ x.ravel(), expected)
    assert conv_matrix((1, 3), [[[1, 2]]]).dtype == np.float64  # integers become float64
    assert conv_matrix((1, 3), np.ones((1, 1, 2), dtype=np.float16)).dtype == np.float32


def test_depthwise_and_groups_block_structure() -> None:
    w = np.arange(1.0, 1 + 4 * 9).reshape(4, 1, 3, 3)
    C = conv_matrix((4, 5, 5), w, groups=4, padding=1)
    blocks = C.toarray().reshape(4, 25, 4, 25)
    for a in range(4):
        for b in range(4):
            assert (np.count_nonzero(blocks[a, :, b]) > 0) == (a == b)
        single = conv_matrix((1, 5, 5), w[a : a + 1], padding=1).toarray()
        assert_array_equal(blocks[a, :, a], single)


def test_padding_modes_fold_and_sum() -> None:
    """replicate on a 1-pixel input: all nine taps read the same input and are summed."""
    w = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    C = conv_matrix((1, 1, 1), w, padding=1, padding_mode="replicate")
    assert C.shape == (1, 1) and C.nnz == 1
    assert C[0, 0] == 45
    # circular on a 1-d input of 3: a circulant matrix, the kernel in every row
    C = conv_matrix((1, 3), [[[1.0, 2.0, 4.0]]], padding=1, padding_mode="circular")
    assert_array_equal(C.toarray(), [[2, 4, 1], [1, 2, 4], [4, 1, 2]])
    C = conv_matrix((1, 4), [[[1.0, 2.0, 4.0]]], padding=1, padding_mode="reflect")
    assert_array_equal(C.toarray(), [[2, 5, 0, 0], [1, 2, 4, 0], [0, 1, 2, 4], [0, 0, 5, 2]])


def test_index_dtype_switches_to_int64() -> None:
    assert _index_dtype(2**31 - 1, (10, 10)) == np.int32
    assert _index_dtype(2**31, (10, 10)) == np.int64
    assert _index_dtype(10, (2**31, 10)) == np.int64


# ---------------------------------------------------------------- memory


def test_too_big_is_refused_before_any_allocation() -> None:
    """A 4K image with 256 channels: the matrix is refused, with its size, at once."""
    w_shape = (256, 256, 3, 3)
    w = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), w_shape, (0, 0, 0, 0))
    tracemalloc.start()
    with pytest.raises(MemoryError) as info:
        conv_matrix((256, 2160, 3840), w, padding=1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1_000_000
    message = str(info.value)
    assert "max_bytes" in message and "conv_operator" in message
    assert "TiB" in message or "GiB" in message
    with pytest.raises(MemoryError, match="conv_transpose_operator"):
        conv_transpose_matrix((256, 1080, 1920), w, stride=2)


def test_max_bytes_is_the_callers_limit() -> None:
    w = np.ones((2, 2, 3, 3))
    C = conv_matrix((2, 8, 8), w)
    need = C.data.nbytes + C.indices.nbytes + C.indptr.nbytes
    assert conv_matrix((2, 8, 8), w, max_bytes=need).nnz == C.nnz
    with pytest.raises(
        MemoryError,
        match=r"with 1,296 stored entries needs about 15\.5 KiB, more than max_bytes=1\.0 KiB",
    ):
        conv_matrix((2, 8, 8), w, max_bytes=1024)
    with pytest.raises(TypeError, match="max_bytes must be a number of bytes; got '1G'"):
        conv_matrix((2, 8, 8), w, max_bytes="1G")
    with pytest.raises(ValueError, match="max_bytes must be > 0; got 0"):
        conv_matrix((2, 8, 8), w, max_bytes=0)


def test_human_bytes() -> None:
    assert human_bytes(512) == "512 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(37.5 * 2**30) == "37.5 GiB"
    assert human_bytes(3 * 2**40) == "3.0 TiB"


# ---------------------------------------------------------------- errors


W = np.ones((4, 2, 3, 3))


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (
            ((2, 5, 5), W),
            {"stride": 0},
            ValueError,
            r"stride must be >= 1 on every axis; got \(0, 0\)",
        ),
        (
            ((2, 5, 5), W),
            {"stride": 2.0},
            TypeError,
            "stride must be an int or a sequence of ints; got 2.0",
        ),
        (
            ((2, 5, 5), W),
            {"stride": (1, 1, 1)},
            ValueError,
            "stride must be an int or a sequence of 2 ints",
        ),
        (((2, 5, 5), W), {"padding": -1}, ValueError, "padding must be >= 0 on every side; got -1"),
        (
            ((2, 5, 5), W),
            {"padding": "half"},
            ValueError,
            "padding must be an int, a sequence or one of",
        ),
        (
            ((2, 5, 5), W),
            {"padding": "same", "stride": 2},
            ValueError,
            "padding='same' must have stride 1",
        ),
        (((2, 5, 5), W), {"padding_mode": "wrap"}, ValueError, "padding_mode must be one of"),
        (
            ((2, 5, 5), W),
            {"groups": 3},
            ValueError,
            "groups must divide both channel counts; got groups=3",
        ),
        (((2, 5, 5), W), {"groups": 0}, ValueError, "groups must be >= 1; got 0"),
        (
            ((3, 5, 5), W),
            {},
            ValueError,
            r"input_shape channels must equal weight.shape\[1\] \* groups = 2; got 3",
        ),
        (
            ((2, 5, 5), W),
            {"groups": 2},
            ValueError,
            r"input_shape channels must equal weight.shape\[1\] \* groups = 4",
        ),
        (((2, 0, 5), W), {}, ValueError, r"input_shape must be >= 1 on every axis \(empty input\)"),
        (
            ((2, 5), W),
            {},
            ValueError,
            r"input_shape must be \(C_in, \*spatial\) with 2 spatial dims",
        ),
        (("2x5x5", W), {}, TypeError, "input_shape must be a sequence"),
        (((2, 2, 2), W), {}, ValueError, r"kernel_size \(dilated\) must fit in the padded input"),
        (((2, 5, 5), W), {"dilation": 3}, ValueError, r"kernel_size \(dilated\) must fit"),
        (
            ((2, 2, 5), W),
            {"padding": 2, "padding_mode": "reflect"},
            ValueError,
            "padding must be < the input size on every axis for padding_mode='reflect'",
        ),
        (
            ((2, 2, 5), W),
            {"padding": 3, "padding_mode": "circular"},
            ValueError,
            "padding must be <= the input size on every axis for padding_mode='circular'",
        ),
        (
            ((2, 5, 5), np.ones((4, 2))),
            {},
            ValueError,
            r"weight must have shape \(C_out, C_in // groups, \*kernel_size\)",
        ),
        (((2, 5, 5), np.ones((4, 2, 0, 3))), {}, ValueError, "weight must have no empty axis"),
        (
            ((2, 5, 5), np.array([["a"]], dtype=object)),
            {},
            TypeError,
            "weight must be a real or complex numeric array; got dtype object",
        ),
    ],
)
def test_conv_matrix_errors(args, kwargs, error, match):  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=match):
        conv_matrix(*args, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"output_padding": 2, "stride": 2},
            r"output_padding must be < max\(stride, dilation\) on every axis",
        ),
        ({"output_padding": (0, 1)}, r"output_padding must be < max\(stride, dilation\)"),
        ({"output_padding": -1}, "output_padding must be >= 0"),
        ({"padding": 4}, "padding must leave a non-empty output on every axis"),
        ({"groups": 3}, "groups must divide the input channels; got groups=3"),
    ],
)
def test_conv_transpose_matrix_value_errors(kwargs, match):  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        conv_transpose_matrix((4, 2, 2), W, **kwargs)


def test_conv_transpose_matrix_other_errors() -> None:
    with pytest.raises(TypeError, match="no strings, as torch"):
        conv_transpose_matrix((4, 3, 3), W, padding="same")
    with pytest.raises(
        ValueError, match=r"input_shape channels must equal weight.shape\[0\] = 4; got 2"
    ):
        conv_transpose_matrix((2, 3, 3), W)
