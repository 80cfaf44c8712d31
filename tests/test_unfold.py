"""unfold, unfold_matrix and fold: hand cases, torch live and fixtures, adjoint, conv as GEMM."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from convmat import conv, conv_matrix, fold, unfold, unfold_matrix
from convmat.testing import dot_test
from tests.strategies import unfold_cases
from tests.test_pad import fixture_cases


def _geometry(case: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in case.items() if k != "input_shape"}


# ---------------------------------------------------------------- by hand


def test_by_hand() -> None:
    x = np.arange(9.0).reshape(1, 3, 3)
    assert_array_equal(unfold(x, 2), [[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8]])
    # stride 2 with padding 1: four 2x2 windows of the zero-padded 5x5 input
    assert_array_equal(
        unfold(x, 2, stride=2, padding=1), [[0, 0, 0, 4], [0, 0, 3, 5], [0, 1, 0, 7], [0, 2, 6, 8]]
    )
    U = unfold_matrix((1, 3, 3), 2, stride=2, padding=1)
    assert U.shape == (16, 9) and U.nnz == 9  # every input read once, padding stores nothing
    assert_array_equal(fold(np.ones((4, 4)), (3, 3), 2), [[[1, 2, 1], [2, 4, 2], [1, 2, 1]]])


def test_matrix_layout_over_channels() -> None:
    U = unfold_matrix((2, 3), (2,))
    assert U.shape == (2 * 2 * 2, 6)
    assert_array_equal(
        U.toarray(),
        [
            [1, 0, 0, 0, 0, 0],
            [0, 1, 0, 0, 0, 0],
            [0, 1, 0, 0, 0, 0],
            [0, 0, 1, 0, 0, 0],
            [0, 0, 0, 1, 0, 0],
            [0, 0, 0, 0, 1, 0],
            [0, 0, 0, 0, 1, 0],
            [0, 0, 0, 0, 0, 1],
        ],
    )


# ---------------------------------------------------------------- properties, any rank


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 3).flatmap(lambda d: unfold_cases(ndim=d)), st.integers(0, 2**32 - 1))
def test_matrix_function_adjoint(case: dict[str, Any], seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape, geo = case["input_shape"], _geometry(case)
    x = rng.integers(-3, 4, (2, *shape)).astype(float)
    U = unfold_matrix(shape, **geo)
    cols = unfold(x, **geo)
    assert_array_equal((U @ x.reshape(2, -1).T).T, cols.reshape(2, -1))
    assert_array_equal(unfold(x[0], **geo), cols[0])
    assert U.nnz == np.count_nonzero(U.toarray()) and np.all(np.diff(U.indptr) <= 1)
    assert U.indices.dtype == np.int32 and U.has_sorted_indices
    # fold is the adjoint: U.T applied to columns
    c = rng.integers(-3, 4, cols.shape).astype(float)
    folded = fold(c, shape[1:], **geo)
    assert folded.shape == (2, *shape)
    assert_array_equal(folded.reshape(2, -1), (U.T @ c.reshape(2, -1).T).T)
    assert_array_equal(fold(c[0], shape[1:], **geo), folded[0])
    assert np.sum(cols * c) == np.sum(x * folded)
    dot_test(U)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3).flatmap(lambda d: unfold_cases(ndim=d)), st.integers(0, 2**32 - 1))
def test_convolution_is_a_gemm_on_unfolded_input(case: dict[str, Any], seed: int) -> None:
    """conv(x, w) == W @ unfold(x): the pattern filled with weights is the pattern of ones."""
    rng = np.random.default_rng(seed)
    shape, geo = case["input_shape"], _geometry(case)
    k = geo["kernel_size"]
    k = k if isinstance(k, tuple) else (k, k)
    w = rng.integers(-3, 4, (2, shape[0], *k)).astype(float)
    x = rng.integers(-3, 4, (1, *shape)).astype(float)
    conv_kw = {key: geo[key] for key in ("stride", "padding", "dilation")}
    y = conv(x, w, **conv_kw)
    assert_array_equal(w.reshape(2, -1) @ unfold(x, **geo)[0], y[0].reshape(2, -1))
    U = unfold_matrix(shape, **geo)
    L = y[0, 0].size
    assert (
        abs(sp.kron(w.reshape(2, -1), sp.eye(L)) @ U - conv_matrix(shape, w, **conv_kw)).max() == 0
    )


# ---------------------------------------------------------------- PyTorch, live and fixtures


@settings(max_examples=100, deadline=None)
@given(unfold_cases(), st.integers(0, 2**32 - 1), st.booleans())
def test_against_torch(case: dict[str, Any], seed: int, batch: bool) -> None:
    torch = pytest.importorskip("torch")
    fn = torch.nn.functional
    rng = np.random.default_rng(seed)
    shape, geo = case["input_shape"], _geometry(case)
    x = rng.standard_normal((2, *shape) if batch else shape)
    reference = fn.unfold(torch.from_numpy(x), **geo).numpy()
    assert_array_equal(unfold(x, **geo), reference)
    assert_array_equal(unfold(torch.from_numpy(x), **geo), reference)
    c = rng.standard_normal(reference.shape)
    folded = fn.fold(torch.from_numpy(c), shape[1:], **geo).numpy()
    assert_allclose(fold(c, shape[1:], **geo), folded, rtol=1e-13, atol=1e-13)


def test_fixtures() -> None:
    unfolds, folds = fixture_cases("unfold"), fixture_cases("fold")
    assert len(unfolds) >= 3 and len(folds) >= 3
    for meta, arrays in unfolds:
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["kwargs"].items()}
        assert_array_equal(unfold(arrays["x"], **kw), arrays["y"])
    for meta, arrays in folds:
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["kwargs"].items()}
        assert_array_equal(fold(arrays["x"], tuple(meta["output_size"]), **kw), arrays["y"])


def test_dtypes() -> None:
    x = np.ones((1, 2, 4, 4), dtype=np.float32)
    assert unfold(x, 2).dtype == np.float32
    assert fold(unfold(x, 2), 4, 2).dtype == np.float32
    assert unfold(np.ones((1, 3, 3), dtype=int), 2).dtype == np.float64
    xc = np.ones((1, 3, 3)) * 1j
    assert_array_equal(fold(unfold(xc, 2), 3, 2), 1j * fold(unfold(xc.imag, 2), 3, 2))
    assert unfold_matrix((1, 3, 3), 2, dtype=np.float32).dtype == np.float32


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("func", "args", "kwargs", "error", "match"),
    [
        (unfold, (np.ones((2, 3)), 2), {}, ValueError, "x must have shape .* 2 spatial dims"),
        (unfold, (np.ones((1, 3, 3)), 4), {}, ValueError, "kernel_size .* must fit"),
        (unfold, (np.ones((1, 3, 3)), 0), {}, ValueError, "kernel_size must be >= 1"),
        (unfold, (np.ones((1, 3, 3)), 2), {"stride": 0}, ValueError, "stride must be >= 1"),
        (unfold, (np.ones((1, 3, 3)), 2), {"dilation": 1.0}, TypeError, "dilation must be an int"),
        (unfold, (np.ones((1, 3, 3)), (2, 2, 2)), {}, ValueError, "x must have shape"),
        (unfold, (np.ones((1, 3, 3)), 2), {"padding": -1}, ValueError, "padding must be >= 0"),
        (fold, (np.ones((5, 4)), 3, 2), {}, ValueError, "divisible by ∏kernel_size = 4"),
        (fold, (np.ones((4, 5)), 3, 2), {}, ValueError, "x must have L = 4 blocks"),
        (fold, (np.ones(4), 3, 2), {}, ValueError, r"x must have shape \(C·∏k, L\)"),
        (fold, (np.ones((4, 4)), (3, 3, 3), 2), {}, ValueError, "divisible by ∏kernel_size = 8"),
        (fold, (np.ones((4, 4)), 0, 2), {}, ValueError, "output_size must be >= 1"),
        (
            unfold_matrix,
            ((3, 3), (2, 2)),
            {},
            ValueError,
            "kernel_size must be an int or a sequence of 1",
        ),
        (unfold_matrix, ((3,), 2), {}, ValueError, "input_shape must be .* d >= 1"),
        (unfold_matrix, (3, 2), {}, TypeError, "input_shape must be a sequence"),
        (unfold_matrix, ((1, 3, 3), 2), {"dtype": int}, TypeError, "dtype must be a float"),
    ],
)
def test_errors(
    func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        func(*args, **kwargs)


def test_matrix_limit() -> None:
    with pytest.raises(MemoryError, match=r"unfold matrix .* convmat\.unfold"):
        unfold_matrix((3, 40, 40), 3, max_bytes=10_000)
