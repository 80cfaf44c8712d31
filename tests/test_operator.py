"""conv_operator, conv_transpose_operator and deconvolve.

Oracles: the sparse matrices (every product and the transpose), the dot test,
SciPy's own solvers, and the true input of a full-column-rank layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.sparse.linalg import LinearOperator, lsqr

from convmat import (
    ConvOperator,
    DeconvolveResult,
    conv,
    conv_matrix,
    conv_operator,
    conv_transpose,
    conv_transpose_matrix,
    conv_transpose_operator,
    conv_transpose_output_padding,
    deconvolve,
)
from convmat.testing import dot_test
from tests.strategies import conv_layers, conv_transpose_layers, geometry, small_ints

# ---------------------------------------------------------------- against the matrices


@settings(max_examples=120, deadline=None)
@given(conv_layers(), st.data())
def test_conv_operator_is_the_matrix(layer: dict[str, Any], data: st.DataObject) -> None:
    w = data.draw(small_ints(layer["weight_shape"]))
    op = conv_operator(layer["input_shape"], w, **geometry(layer))
    C = conv_matrix(layer["input_shape"], w, **geometry(layer))
    assert isinstance(op, LinearOperator)
    assert op.shape == C.shape
    assert op.dtype == C.dtype
    X = data.draw(small_ints((C.shape[1], 3)))
    Y = data.draw(small_ints((C.shape[0], 2)))
    assert_array_equal(op @ X, C @ X)
    assert_array_equal(op.matvec(X[:, 0]), C @ X[:, 0])
    assert_array_equal(op.matvec(X[:, :1]), C @ X[:, :1])
    assert_array_equal(op.rmatvec(Y[:, 0]), C.T @ Y[:, 0])
    assert_array_equal(op.rmatmat(Y), C.T @ Y)
    assert_array_equal(op.T @ Y, C.T @ Y)
    assert_array_equal(op.H @ Y, C.T @ Y)
    assert_array_equal(op.T.rmatmat(X), C @ X)
    assert_array_equal(op.tosparse().toarray(), C.toarray())
    assert_array_equal(op.T.tosparse().toarray(), C.T.toarray())


@settings(max_examples=120, deadline=None)
@given(conv_transpose_layers(), st.data())
def test_conv_transpose_operator_is_the_matrix(layer: dict[str, Any], data: st.DataObject) -> None:
    w = data.draw(small_ints(layer["weight_shape"]))
    op = conv_transpose_operator(layer["input_shape"], w, **geometry(layer))
    C = conv_transpose_matrix(layer["input_shape"], w, **geometry(layer))
    assert op.shape == C.shape
    X = data.draw(small_ints((C.shape[1], 2)))
    Y = data.draw(small_ints((C.shape[0], 2)))
    assert_array_equal(op @ X, C @ X)
    assert_array_equal(op.rmatmat(Y), C.T @ Y)
    assert_array_equal(op.T @ Y, C.T @ Y)
    assert_array_equal(op.tosparse().toarray(), C.toarray())
    # Cᵀ of the transposed layer is a forward convolution operator again.
    assert op.T.transposed is False
    assert op.T.T.transposed is True


@settings(max_examples=80, deadline=None)
@given(conv_layers(max_size=6), st.integers(0, 2**32 - 1), st.booleans())
def test_dot_test_every_layer(layer: dict[str, Any], seed: int, complex_: bool) -> None:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(layer["weight_shape"])
    if complex_:
        w = w + 1j * rng.standard_normal(layer["weight_shape"])
    op = conv_operator(layer["input_shape"], w, **geometry(layer))
    assert dot_test(op, seed=seed) < 1e-10
    assert dot_test(op.T, seed=seed) < 1e-10
    assert dot_test(op.H, seed=seed) < 1e-10


def test_complex_adjoint_conjugates_the_weight() -> None:
    w = np.array([[[1j, 2.0]]])
    op = conv_operator((1, 3), w)
    C = conv_matrix((1, 3), w)
    y = np.array([1.0, 1j])
    assert_array_equal(op.rmatvec(y), C.conj().T @ y)
    assert_array_equal(op.H @ y, C.conj().T @ y)
    assert_array_equal(op.T @ y, C.T @ y)  # no conjugate: the transposed convolution
    assert_array_equal(op.T @ y, conv_transpose(y.reshape(1, 2), w).ravel())


def test_real_vectors_with_a_complex_weight() -> None:
    """Products promote as conv does: a real vector meets a complex weight."""
    w = np.array([[[[1j, 2], [3, 4]]]])
    op = conv_operator((1, 3, 3), w)
    C = conv_matrix((1, 3, 3), w)
    x = np.arange(9.0)
    assert_array_equal(op @ x, C @ x)
    assert_array_equal(op @ x, conv(x.reshape(1, 3, 3), w).ravel())
    assert_array_equal(op.matmat(np.eye(9)), C.toarray())
    assert_array_equal(op.rmatvec(np.ones(4)), C.conj().T @ np.ones(4))
    assert_array_equal(op.T @ np.ones(4), C.T @ np.ones(4))
    # A float32 operator meeting float64 vectors computes in float64, as conv does.
    w32 = np.full((1, 1, 2, 2), 0.1, np.float32)
    product = conv_operator((1, 3, 3), w32) @ np.full(9, 1 / 3)
    assert product.dtype == np.float64
    assert_array_equal(product, conv(np.full((1, 3, 3), 1 / 3), w32).ravel())


def test_float32_operator() -> None:
    w = np.ones((2, 1, 3, 3), np.float32)
    op = conv_operator((1, 8, 8), w, padding=1)
    assert op.dtype == np.float32
    assert (op @ np.ones(64, np.float32)).dtype == np.float32
    assert dot_test(op) < 1e-4


def test_works_where_the_matrix_is_refused() -> None:
    w = np.ones((4, 4, 3, 3))
    with pytest.raises(MemoryError, match="use the matrix-free conv_operator"):
        conv_matrix((4, 32, 32), w, padding=1, max_bytes=100_000)
    op = conv_operator((4, 32, 32), w, padding=1)
    x = np.ones(op.shape[1])
    assert_array_equal(op @ x, conv(x.reshape(4, 32, 32), w, padding=1).ravel())
    with pytest.raises(MemoryError, match="max_bytes"):
        op.tosparse(max_bytes=100_000)
    # A 4K-by-256-channel layer: its matrix would need about a terabyte, its operator nothing.
    huge = np.broadcast_to(np.float32(1), (256, 256, 3, 3))
    big = conv_operator((256, 2160, 3840), huge, padding=1)
    assert big.shape == (256 * 2160 * 3840, 256 * 2160 * 3840)
    with pytest.raises(MemoryError, match=r"needs about .* TiB"):
        big.tosparse()


def test_matmat_with_no_columns() -> None:
    op = conv_operator((2, 5), np.ones((3, 2, 2)))
    assert (op @ np.ones((10, 0))).shape == (12, 0)


def test_scipy_solvers_accept_the_operator() -> None:
    rng = np.random.default_rng(4)
    w = rng.standard_normal((2, 1, 3))
    x = rng.standard_normal((1, 12))
    op = conv_operator((1, 12), w, padding="full")
    y = op @ x.ravel()
    est = lsqr(op, y, atol=1e-14, btol=1e-14, iter_lim=500)[0]
    assert_allclose(est, x.ravel(), atol=1e-8)


def test_repr() -> None:
    op = conv_operator((2, 5, 6), np.ones((3, 2, 3, 3)), padding=1)
    assert repr(op) == ("<90x60 ConvOperator (conv, 2-d): (2, 5, 6) -> (3, 5, 6), dtype=float64>")
    assert repr(op.T).startswith("<60x90 ConvOperator (conv_transpose, 2-d): (3, 5, 6) -> ")
    assert isinstance(op.T, ConvOperator)


def test_operator_errors_are_the_matrix_errors() -> None:
    w = np.ones((4, 2, 3, 3))
    for kwargs in ({"stride": 0}, {"groups": 3}, {"padding": "same", "stride": 2}):
        with pytest.raises(ValueError) as ours:
            conv_operator((2, 5, 5), w, **kwargs)
        with pytest.raises(ValueError) as theirs:
            conv_matrix((2, 5, 5), w, **kwargs)
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(ValueError, match="output_padding must be < max"):
        conv_transpose_operator((4, 3, 3), w, stride=2, output_padding=2)
    with pytest.raises(TypeError, match="weight must be a real or complex numeric array"):
        conv_operator((2, 5, 5), np.ones((4, 2, 3, 3), dtype=object))


# ---------------------------------------------------------------- deconvolve

TIGHT = {"atol": 1e-12, "btol": 1e-12}


@pytest.mark.parametrize(
    ("input_shape", "w_shape", "kwargs"),
    [
        ((1, 16, 16), (1, 1, 3, 3), {"padding": 2}),
        ((2, 10, 9), (3, 2, 3, 3), {"padding": 2}),
        ((1, 40), (2, 1, 4), {"stride": 2, "padding": 3}),
        ((2, 6, 6, 5), (2, 2, 2, 2, 2), {"padding": 1}),
    ],
)
def test_deconvolve_recovers_the_input(
    input_shape: tuple[int, ...], w_shape: tuple[int, ...], kwargs: dict[str, Any]
) -> None:
    """Full column rank: the least-squares solution is the input; Cᵀ y is not."""
    rng = np.random.default_rng(11)
    w = rng.standard_normal(w_shape)
    x = rng.standard_normal(input_shape)
    y = conv(x, w, **kwargs)
    result = deconvolve(y, w, input_shape, iter_lim=5000, **kwargs, **TIGHT)
    assert isinstance(result, DeconvolveResult)
    assert result.converged
    assert result.x.shape == input_shape
    assert_allclose(result.x, x, atol=1e-6)
    assert result.normr < 1e-8 * np.linalg.norm(y)
    # The transposed convolution is the adjoint, not the inverse.
    geo = {key: kwargs[key] for key in ("stride", "padding") if key in kwargs}
    op = conv_transpose_output_padding(y.shape[1:], input_shape[1:], w_shape[2:], **geo)
    back = conv_transpose(y, w, output_padding=op, **kwargs)
    assert back.shape == x.shape
    assert np.abs(back - x).max() > 1e-2


def test_deconvolve_underdetermined_gives_minimum_norm() -> None:
    """Stride 2 without overlap loses nothing but k < s loses samples: minimum norm there."""
    w = np.array([[[1.0]]])
    x = np.arange(1.0, 7.0).reshape(1, 6)
    y = conv(x, w, stride=2)  # keeps x[0], x[2], x[4]
    result = deconvolve(y, w, (1, 6), stride=2, **TIGHT)
    assert_allclose(result.x, [[1, 0, 3, 0, 5, 0]], atol=1e-12)


def test_deconvolve_damp_and_iteration_cap() -> None:
    rng = np.random.default_rng(2)
    w = rng.standard_normal((1, 1, 3, 3))
    x = rng.standard_normal((1, 12, 12))
    y = conv(x, w, padding=1)
    damped = deconvolve(y, w, (1, 12, 12), padding=1, damp=10.0)
    plain = deconvolve(y, w, (1, 12, 12), padding=1)
    assert damped.normx < plain.normx
    capped = deconvolve(y, w, (1, 12, 12), padding=1, iter_lim=2, **TIGHT)
    assert capped.itn == 2
    assert capped.istop == 7
    assert not capped.converged


def test_deconvolve_with_a_padding_mode() -> None:
    rng = np.random.default_rng(5)
    w = rng.standard_normal((2, 1, 3))
    x = rng.standard_normal((1, 20))
    y = conv(x, w, padding=1, padding_mode="replicate")
    result = deconvolve(y, w, (1, 20), padding=1, padding_mode="replicate", **TIGHT)
    assert_allclose(result.x, x, atol=1e-6)


def test_deconvolve_errors() -> None:
    w = np.ones((1, 1, 3))
    y = np.ones((1, 8))
    with pytest.raises(ValueError, match=r"y must have shape \(1, 8\) \(the layer's output for"):
        deconvolve(np.ones((1, 9)), w, (1, 10))
    with pytest.raises(ValueError, match="damp must be >= 0; got -1"):
        deconvolve(y, w, (1, 10), damp=-1)
    with pytest.raises(ValueError, match="atol must be >= 0; got nan"):
        deconvolve(y, w, (1, 10), atol=float("nan"))
    with pytest.raises(TypeError, match="btol must be a real number; got '1e-6'"):
        deconvolve(y, w, (1, 10), btol="1e-6")
    with pytest.raises(TypeError, match="conlim must be a real number; got True"):
        deconvolve(y, w, (1, 10), conlim=True)
    with pytest.raises(ValueError, match="iter_lim must be >= 1; got 0"):
        deconvolve(y, w, (1, 10), iter_lim=0)
    with pytest.raises(TypeError, match="iter_lim must be an int"):
        deconvolve(y, w, (1, 10), iter_lim=2.5)
    with pytest.raises(TypeError, match="y must be a real or complex numeric array"):
        deconvolve(np.array([["a"] * 8]), w, (1, 10))
    with pytest.raises(ValueError, match="stride must be >= 1"):
        deconvolve(y, w, (1, 10), stride=0)


def test_deconvolve_refuses_the_single_channel_shorthand_as_conv_does() -> None:
    kernel = [[1.0, 2.0], [3.0, 4.0]]
    with pytest.raises(ValueError) as ours:
        deconvolve(np.ones((2, 2)), kernel, (3, 3))
    with pytest.raises(ValueError) as theirs:
        conv(np.ones((3, 3)), kernel)
    assert str(ours.value) == str(theirs.value)
    assert str(ours.value).startswith("weight must have shape (C_out, C_in // groups")


# ---------------------------------------------------------------- deconvolve in float32


def _well_posed(dtype: Any, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A full-column-rank layer (full padding, a kernel dominated by one tap), in ``dtype``."""
    rng = np.random.default_rng(7)
    w = 0.2 * rng.standard_normal((1, 1, 3, 3))
    w[0, 0, 1, 1] = 2.0
    x = rng.standard_normal((1, 10, 10))
    y = conv(x, w, padding=2) * scale
    return w.astype(dtype), (x * scale).astype(dtype), y.astype(dtype)


@pytest.mark.parametrize("scale", [1e-30, 1e-20, 1.0, 1e20, 1e30])
def test_deconvolve_float32_iterates_in_float64(scale: float) -> None:
    """In float32, LSMR's own arithmetic overflows (ordinary data, a large y) or reads a
    small y as zero; deconvolve iterates in float64 and answers in float32."""
    w, x, y = _well_posed(np.float32, scale)
    result = deconvolve(y, w, (1, 10, 10), padding=2)
    assert result.x.dtype == np.float32
    assert result.converged
    assert result.istop != 0  # y is not zero, whatever its scale
    wide = deconvolve(y.astype(np.float64), w.astype(np.float64), (1, 10, 10), padding=2)
    assert wide.x.dtype == np.float64
    assert (result.istop, result.itn) == (wide.istop, wide.itn)
    assert_allclose(result.x, wide.x, rtol=0, atol=1e-6 * np.abs(wide.x).max())
    assert_allclose(result.x, x, rtol=0, atol=1e-4 * np.abs(x).max())
    assert result.normr <= 1e-5 * np.linalg.norm(y.astype(np.float64))


def test_deconvolve_complex64_and_mixed_dtypes() -> None:
    w, x, y = _well_posed(np.float32, 1.0)
    xc = (x + 1j * x[:, ::-1]).astype(np.complex64)
    yc = conv(xc, w, padding=2)
    assert yc.dtype == np.complex64
    result = deconvolve(yc, w, (1, 10, 10), padding=2)
    assert result.x.dtype == np.complex64
    assert result.converged
    assert_allclose(result.x, xc, rtol=0, atol=1e-4)
    # Mixed: NumPy's promotion of y and weight.
    assert deconvolve(y.astype(np.float64), w, (1, 10, 10), padding=2).x.dtype == np.float64
    assert deconvolve(y, w.astype(np.float64), (1, 10, 10), padding=2).x.dtype == np.float64
    assert deconvolve(y.astype(np.float16), w, (1, 10, 10), padding=2).x.dtype == np.float32


# ---------------------------------------------------------------- single-channel shorthand


@pytest.mark.parametrize(
    ("input_shape", "kernel", "kwargs"),
    [
        ((3, 3), [[1, 2], [3, 4]], {}),
        ((1, 3, 3), [[1, 2], [3, 4]], {}),
        ((5,), [1.0, 2.0], {}),
        ((1, 7), [1.0, -2.0, 0.5], {"stride": 2, "padding": 1}),
        ((6, 7), np.arange(6.0).reshape(3, 2) - 2, {"stride": (2, 1), "dilation": (1, 2)}),
        ((6, 7), np.arange(6.0).reshape(2, 3), {"padding": "same"}),
        ((5, 6), np.arange(9.0).reshape(3, 3), {"padding": 1, "padding_mode": "reflect"}),
        ((5, 6), np.arange(9.0).reshape(3, 3), {"padding": (2, 1), "padding_mode": "circular"}),
        ((4, 5, 3), np.arange(8.0).reshape(2, 2, 2), {"padding": 1}),
        ((3, 3), np.array([[1j, 2], [3, 4]]), {}),
    ],
)
def test_conv_operator_takes_the_single_channel_shorthand(
    input_shape: tuple[int, ...], kernel: Any, kwargs: dict[str, Any]
) -> None:
    """The shorthand of conv_matrix, read the same way: the same matrix, column by column."""
    op = conv_operator(input_shape, kernel, **kwargs)
    C = conv_matrix(input_shape, kernel, **kwargs)
    assert op.shape == C.shape
    assert op.dtype == C.dtype
    assert_array_equal(op.matmat(np.eye(C.shape[1])), C.toarray())
    assert_array_equal(op.rmatmat(np.eye(C.shape[0])), C.conj().T.toarray())
    assert_array_equal(op.T.matmat(np.eye(C.shape[0])), C.T.toarray())
    # The same operator as the full layout (1, *spatial) with weight (1, 1, *k).
    k = np.asarray(kernel)
    spatial = input_shape[1:] if len(input_shape) == k.ndim + 1 else input_shape
    full = conv_operator((1, *spatial), k.reshape(1, 1, *k.shape), **kwargs)
    assert (op.input_shape, op.output_shape) == (full.input_shape, full.output_shape)
    assert op.input_shape == (1, *spatial)
    assert op.layer == full.layer


@pytest.mark.parametrize(
    ("input_shape", "kernel", "kwargs"),
    [
        ((2, 2), [[0, 1], [2, 3]], {"stride": 2}),
        ((1, 2, 2), [[0, 1], [2, 3]], {}),
        ((4,), [1.0, 2.0, 3.0], {"stride": 2, "output_padding": 1}),
        ((3, 4), np.arange(6.0).reshape(3, 2), {"stride": (2, 3), "padding": 1, "dilation": 2}),
        ((2, 3, 2), np.arange(8.0).reshape(2, 2, 2), {"stride": 2}),
    ],
)
def test_conv_transpose_operator_takes_the_single_channel_shorthand(
    input_shape: tuple[int, ...], kernel: Any, kwargs: dict[str, Any]
) -> None:
    op = conv_transpose_operator(input_shape, kernel, **kwargs)
    C = conv_transpose_matrix(input_shape, kernel, **kwargs)
    assert op.shape == C.shape
    assert_array_equal(op.matmat(np.eye(C.shape[1])), C.toarray())
    assert_array_equal(op.rmatmat(np.eye(C.shape[0])), C.T.toarray())
    k = np.asarray(kernel)
    spatial = input_shape[1:] if len(input_shape) == k.ndim + 1 else input_shape
    assert op.input_shape == (1, *spatial)
    assert op.T.output_shape == (1, *spatial)


#: Shapes and kernels fitting neither convention, or a bad layer in either; whether the
#: transposed layer refuses them too (a kernel larger than its input is fine there).
REFUSED: list[tuple[Any, Any, type[Exception], str, bool]] = [
    ((2, 3, 3), [[1, 2], [3, 4]], ValueError, r"weight must have shape \(C_out, C_in // gr", True),
    ((1, 1, 5), [1.0, 2.0], ValueError, r"weight must have shape \(C_out, C_in // groups", True),
    (
        (3, 3),
        np.ones((0, 2)),
        ValueError,
        r"weight must have no empty axis; got shape \(1, 1, 0",
        True,
    ),
    ((2, 2), [[1, 2, 3], [4, 5, 6]], ValueError, r"kernel_size \(dilated\) must fit in", False),
    (9, [1.0, 2.0], TypeError, r"input_shape must be a sequence \(C_in, \*spatial\); got 9", True),
    ("ab", [1.0, 2.0], TypeError, r"input_shape must be a sequence \(C_in, \*spatial\)", True),
    ((3, 3), [["a", "b"]], TypeError, r"weight must be a real or complex numeric array", True),
]


@pytest.mark.parametrize(("input_shape", "kernel", "error", "match", "transposed_too"), REFUSED)
def test_shorthand_refusals_are_the_matrix_refusals(
    input_shape: Any, kernel: Any, error: type[Exception], match: str, transposed_too: bool
) -> None:
    with pytest.raises(error, match=match) as ours:
        conv_operator(input_shape, kernel)
    with pytest.raises(error) as theirs:
        conv_matrix(input_shape, kernel)
    assert str(ours.value) == str(theirs.value)
    if not transposed_too:
        op = conv_transpose_operator(input_shape, kernel)
        assert op.shape == conv_transpose_matrix(input_shape, kernel).shape
        return
    with pytest.raises(error, match=match) as ours_t:
        conv_transpose_operator(input_shape, kernel)
    with pytest.raises(error) as theirs_t:
        conv_transpose_matrix(input_shape, kernel)
    assert str(ours_t.value) == str(theirs_t.value)
