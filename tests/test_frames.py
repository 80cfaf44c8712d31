"""The frames of the animations light exactly the stored entries of C and Cᵀ."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import convmat
from convmat._frames import KINDS, PADDING, REAL, ZERO, frames

# (input_shape, kernel_size, geometry) of a convolution.
CONVS: list[tuple[Any, Any, dict[str, Any]]] = [
    (5, 3, {}),
    (7, 3, dict(stride=2, padding=1)),
    (6, 2, dict(dilation=2, padding=((0, 2),))),
    ((5, 5), 3, {}),
    ((5, 5), 3, dict(padding=2)),
    ((5, 5), 3, dict(padding="same")),
    ((5, 5), 3, dict(padding="full")),
    ((5, 5), 3, dict(stride=2)),
    ((5, 5), 3, dict(stride=2, padding=1)),
    ((6, 6), 3, dict(stride=2, padding=1)),
    ((7, 7), 3, dict(dilation=2)),
    ((4, 6), (2, 3), dict(stride=(1, 2), padding=((1, 0), (0, 2)), dilation=(2, 1))),
    ((3, 4, 3), 2, dict(padding=1)),
]
# ... and of a transposed convolution (padding is the forward layer's).
TRANSPOSES: list[tuple[Any, Any, dict[str, Any]]] = [
    (3, 3, {}),
    (4, 3, dict(stride=2, padding=1, output_padding=1)),
    (3, 2, dict(dilation=2)),
    ((2, 2), 2, {}),
    ((3, 3), 3, {}),
    ((3, 3), 3, dict(padding=2)),
    ((5, 5), 3, dict(padding=1)),
    ((6, 6), 3, dict(padding=3)),
    ((2, 2), 3, dict(stride=2)),
    ((3, 3), 3, dict(stride=2, padding=1)),
    ((3, 3), 3, dict(stride=2, padding=1, output_padding=1)),
    ((3, 3), 3, dict(dilation=2)),
    ((2, 3), (3, 2), dict(stride=(2, 3), padding=((1, 0), 1), output_padding=(1, 2))),
    ((2, 2, 2), 2, dict(stride=2)),
]


def ids(case: tuple[Any, Any, dict[str, Any]]) -> str:
    shape, k, geometry = case
    return f"{shape}-k{k}-" + ",".join(f"{a}={v}" for a, v in geometry.items())


def kernel(k: Any, ndim: int) -> np.ndarray[Any, Any]:
    """Distinct non-zero taps 1, 2, ... of a one-channel kernel."""
    size = (k,) * ndim if isinstance(k, int) else tuple(k)
    return np.arange(1.0, math.prod(size) + 1).reshape(size)


def ndim_of(shape: Any) -> int:
    return 1 if isinstance(shape, int) else len(shape)


def flip(taps: np.ndarray[Any, Any], size: tuple[int, ...]) -> np.ndarray[Any, Any]:
    """The position of each tap in the kernel flipped on every axis."""
    return math.prod(size) - 1 - taps


@pytest.mark.parametrize("case", CONVS, ids=[ids(c) for c in CONVS])
@pytest.mark.parametrize("view", ["window", "matrix"])
def test_window_frames_are_the_rows_of_c(case: Any, view: str) -> None:
    shape, k, geometry = case
    f = frames(shape, k, view=view, **geometry)
    w = kernel(k, ndim_of(shape))
    C = convmat.conv_matrix(f.input_shape, w, **geometry)
    assert f.view == view and not f.transposed
    assert len(f) == math.prod(f.output_shape) == C.shape[0]
    assert f.output_shape == convmat.conv_output_shape(shape, k, **geometry)
    assert f.padded_shape == tuple(
        n + lo + hi for n, (lo, hi) in zip(f.input_shape, f.padding, strict=True)
    )
    cells, kinds = f.cells().ravel(), f.kinds().ravel()
    assert set(np.unique(kinds)) <= {REAL, PADDING}
    for step, frame in enumerate(f):
        assert frame.step == step
        assert_array_equal(frame.output, [step])
        row = slice(C.indptr[step], C.indptr[step + 1])
        assert_array_equal(frame.input, C.indices[row])
        assert_array_equal(w.ravel()[frame.taps], C.data[row])
        # Each lit input sits under its tap; every other cell of the window is padding.
        assert frame.window.shape == (w.size,)
        assert_array_equal(cells[frame.window[frame.taps]], frame.input)
        rest = np.setdiff1d(np.arange(w.size), frame.taps)
        assert (kinds[frame.window[rest]] == PADDING).all()
        assert_array_equal(frame.received, [frame.input.size])


@pytest.mark.parametrize("case", TRANSPOSES, ids=[ids(c) for c in TRANSPOSES])
@pytest.mark.parametrize("view", ["scatter", "matrix"])
def test_scatter_frames_are_the_columns_of_ct(case: Any, view: str) -> None:
    shape, k, geometry = case
    f = frames(shape, k, transposed=True, view=view, **geometry)
    w = kernel(k, ndim_of(shape))
    CT = convmat.conv_transpose_matrix(f.input_shape, w, **geometry).tocsc()
    assert len(f) == math.prod(f.input_shape) == CT.shape[1]
    assert f.output_shape == convmat.conv_transpose_output_shape(shape, k, **geometry)
    cells = f.cells().ravel()
    assert (f.cells() >= 0).sum() == math.prod(f.output_shape)
    counts = np.zeros(CT.shape[0], dtype=np.int64)
    for step, frame in enumerate(f):
        assert_array_equal(frame.input, [step])
        column = slice(CT.indptr[step], CT.indptr[step + 1])
        assert_array_equal(frame.output, CT.indices[column])
        assert_array_equal(w.ravel()[frame.taps], CT.data[column])
        assert_array_equal(cells[frame.window[frame.taps]], frame.output)
        counts[frame.output] += 1
        assert_array_equal(frame.received, counts[frame.output])
        assert_array_equal(f.received(step).ravel(), counts)
    assert_array_equal(f.received(-1), convmat.overlap_map(shape, k, **geometry))


@pytest.mark.parametrize("case", TRANSPOSES, ids=[ids(c) for c in TRANSPOSES])
def test_zeros_frames_sum_to_the_transposed_convolution(case: Any) -> None:
    shape, k, geometry = case
    f = frames(shape, k, transposed=True, view="zeros", **geometry)
    w = kernel(k, ndim_of(shape))
    rng = np.random.default_rng(0)
    x = rng.integers(-3, 4, size=f.input_shape).astype(np.float64)
    expected = convmat.conv_transpose(x[None], w[None, None], **geometry)[0]
    assert len(f) == math.prod(f.output_shape) == expected.size
    # From the pairs: output o = Σ x[input]·w[taps].
    y = np.array([x.ravel()[fr.input] @ w.ravel()[fr.taps] for fr in f])
    assert_array_equal(y.reshape(f.output_shape), expected)
    # From the picture: the grid holds x at its real cells and zeros elsewhere; the window
    # is a stride-1, dilated convolution with the flipped kernel.
    cells, kinds = f.cells(), f.kinds()
    assert (cells >= 0).sum() == x.size
    assert_array_equal((kinds == REAL), cells >= 0)
    grid = np.where(cells >= 0, x.ravel()[cells], 0.0).ravel()
    flipped = w.ravel()[::-1]
    y = np.array([grid[fr.window] @ flipped for fr in f])
    assert_array_equal(y.reshape(f.output_shape), expected)
    for fr in f:
        assert_array_equal(cells.ravel()[fr.window[flip(fr.taps, w.shape)]], fr.input)
    # Inserted zeros exactly between real inputs: s − 1 per gap on every axis.
    inner = kinds[
        tuple(
            slice(o, o + (n - 1) * s + 1)
            for o, n, s in zip(f.origin, f.input_shape, f.stride, strict=True)
        )
    ]
    assert (inner != PADDING).all()
    assert (inner == ZERO).sum() == inner.size - x.size


def test_the_zeros_grid_of_a_strided_transposed_convolution() -> None:
    # The guide's figure 4.5: a 2×2 input, kernel 3, stride 2 (no padding): one zero
    # between the inputs, a border of d·(k − 1) = 2 cells of padding.
    f = frames((2, 2), 3, transposed=True, stride=2, view="zeros")
    assert f.padded_shape == (7, 7) and f.output_shape == (5, 5)
    text = ["".join("xp0"[v] for v in row) for row in f.kinds()]
    assert text == ["ppppppp", "ppppppp", "ppx0xpp", "pp000pp", "ppx0xpp", "ppppppp", "ppppppp"]
    assert KINDS == ("real", "padding", "zero")


def test_the_walkthrough_example_step_by_step() -> None:
    # X = K = [[0, 1], [2, 3]], stride 1: the partials scattered one element at a time.
    x = w = np.array([[0.0, 1.0], [2.0, 3.0]])
    f = frames((2, 2), 2, transposed=True)
    assert f.view == "scatter" and len(f) == 4
    y = np.zeros(9)
    sums = []
    for frame in f:
        y[frame.output] += x.ravel()[frame.input[0]] * w.ravel()[frame.taps]
        sums.append(y.reshape(3, 3).copy())
    assert_array_equal(sums[0], np.zeros((3, 3)))
    assert_array_equal(sums[1], [[0, 0, 1], [0, 2, 3], [0, 0, 0]])
    assert_array_equal(sums[2], [[0, 0, 1], [0, 4, 3], [4, 6, 0]])
    assert_array_equal(sums[3], [[0, 0, 1], [0, 4, 6], [4, 12, 9]])
    assert_array_equal(sums[3], convmat.conv_transpose(x[None, None], w[None, None])[0, 0])


def test_frames_are_read_only_and_the_default_views() -> None:
    assert frames(5, 3).view == "window"
    assert frames(5, 3, transposed=True).view == "scatter"
    frame = frames(5, 3)[0]
    with pytest.raises(ValueError, match="read-only"):
        frame.input[0] = 1
    assert "3 frames" in repr(frames(5, 3))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(view="slide"), ValueError, r"view must be one of \('window'"),
        (dict(view=1), TypeError, "view must be one of"),
        (dict(view="window", transposed=True), ValueError, "view must be 'scatter', 'zeros'"),
        (dict(view="scatter"), ValueError, "pass transposed=True"),
        (dict(view="zeros"), ValueError, "pass transposed=True"),
        (dict(output_padding=1), ValueError, "output_padding must be 0 for a convolution"),
        (dict(transposed=1), TypeError, "transposed must be a bool"),
        (dict(stride=0), ValueError, "stride must be >= 1"),
        (dict(stride=1.5), TypeError, "stride must be an int"),
        (dict(kernel_size=9), ValueError, "kernel_size .dilated. must fit"),
        (dict(input_shape=(0, 3)), ValueError, "input_shape must be >= 1"),
        (dict(input_shape="5"), TypeError, "input_shape must be a sequence"),
        (dict(transposed=True, padding="same"), TypeError, "no strings"),
        (dict(transposed=True, stride=2, output_padding=2), ValueError, "output_padding must be <"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    args = dict(input_shape=(5, 5), kernel_size=3) | kwargs
    with pytest.raises(error, match=match):
        frames(args.pop("input_shape"), args.pop("kernel_size"), **args)


@pytest.mark.parametrize(("step", "error"), [(4, ValueError), (-5, ValueError), (1.0, TypeError)])
def test_received_refuses_a_bad_step(step: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="step must be"):
        frames((2, 2), 2, transposed=True).received(step)
