"""weight_matrix and fit_kernel: hand cases, torch and the conv matrices as oracles, errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from convmat import conv_matrix, conv_transpose_matrix, fit_kernel, weight_matrix
from tests.strategies import conv_layers, conv_transpose_layers, geometry, small_ints

Array = np.ndarray[Any, Any]


def _apply(matrix: sp.csr_array, x: Array) -> Array:
    """A one-sample matrix applied to a batch."""
    return np.asarray((matrix @ x.reshape(x.shape[0], -1).T).T)


def _batch_and_weight(draw: Any, layer: dict[str, Any]) -> tuple[Array, Array]:
    n = draw(st.integers(1, 2))
    x = draw(small_ints((n, *layer["input_shape"])))
    w = draw(small_ints(layer["weight_shape"]))
    return x, w


def _canonical(J: sp.csr_array) -> None:
    """Sorted, duplicate-free CSR, as the matrix builders promise."""
    copy = J.copy()
    copy.sum_duplicates()
    copy.sort_indices()
    assert copy.nnz == J.nnz
    assert_array_equal(copy.indices, J.indices)


# ---------------------------------------------------------------- hand cases


def test_1d_conv_j_is_the_sliding_window_of_x() -> None:
    J = weight_matrix([[1.0, 2.0, 3.0, 4.0]], (1, 1, 2))
    assert_array_equal(J.toarray(), [[1, 2], [2, 3], [3, 4]])
    assert_array_equal(J @ [10.0, 1.0], [12, 23, 34])


def test_1d_transposed_stride_2_scatters_x() -> None:
    # conv_transpose([a, b], [w0, w1, w2], stride 2) = [a·w0, a·w1, a·w2 + b·w0, b·w1, b·w2]
    J = weight_matrix([[1.0, 5.0]], (1, 1, 3), stride=2, transposed=True)
    assert_array_equal(J.toarray(), [[1, 0, 0], [0, 1, 0], [5, 0, 1], [0, 5, 0], [0, 0, 5]])


def test_d2l_transposed_example() -> None:
    X = np.array([[[0.0, 1.0], [2.0, 3.0]]])
    K = np.array([0.0, 1.0, 2.0, 3.0])
    assert_array_equal(
        (weight_matrix(X, (1, 1, 2, 2), transposed=True) @ K).reshape(3, 3),
        [[0, 0, 1], [0, 4, 6], [4, 12, 9]],
    )
    assert_array_equal(
        (weight_matrix(X, (1, 1, 2, 2), stride=2, transposed=True) @ K).reshape(4, 4),
        [[0, 0, 0, 1], [0, 0, 2, 3], [0, 2, 0, 3], [4, 6, 6, 9]],
    )


def test_circular_padding_reads_one_input_through_several_taps() -> None:
    # n = 2, k = 3, circular pad 1: output 0 reads x1, x0, x1 — x1 appears twice in a row.
    J = weight_matrix([[1.0, 2.0]], (1, 1, 3), padding=1, padding_mode="circular")
    assert_array_equal(J.toarray(), [[2, 1, 2], [1, 2, 1]])


def test_batch_stacks_rows_and_one_sample_is_n_1() -> None:
    x = np.arange(2 * 3 * 4.0).reshape(2, 3, 4)
    J = weight_matrix(x, (2, 3, 2))
    assert J.shape == (2 * 2 * 3, 2 * 3 * 2)
    assert_array_equal(J[: J.shape[0] // 2].toarray(), weight_matrix(x[0], (2, 3, 2)).toarray())
    assert_array_equal(J[J.shape[0] // 2 :].toarray(), weight_matrix(x[1], (2, 3, 2)).toarray())


def test_dtype_follows_x_and_ints_become_float64() -> None:
    assert weight_matrix(np.ones((1, 4), np.float32), (1, 1, 2)).dtype == np.float32
    assert weight_matrix(np.ones((1, 4), np.complex128), (1, 1, 2)).dtype == np.complex128
    assert weight_matrix(np.ones((1, 4), np.int64), (1, 1, 2)).dtype == np.float64


# ---------------------------------------------------------------- oracles


@settings(max_examples=120, deadline=None)
@given(data=st.data(), layer=conv_layers())
def test_conv_j_times_w_is_c_times_x(data: st.DataObject, layer: dict[str, Any]) -> None:
    x, w = _batch_and_weight(data.draw, layer)
    J = weight_matrix(x, w.shape, **geometry(layer))
    C = conv_matrix(layer["input_shape"], w, **geometry(layer))
    assert_array_equal(J @ w.ravel(), _apply(C, x).ravel())
    _canonical(J)


@settings(max_examples=120, deadline=None)
@given(data=st.data(), layer=conv_transpose_layers())
def test_transposed_j_times_w_is_ct_times_x(data: st.DataObject, layer: dict[str, Any]) -> None:
    x, w = _batch_and_weight(data.draw, layer)
    J = weight_matrix(x, w.shape, transposed=True, **geometry(layer))
    C = conv_transpose_matrix(layer["input_shape"], w, **geometry(layer))
    assert_array_equal(J @ w.ravel(), _apply(C, x).ravel())
    assert J.nnz == x.shape[0] * C.nnz  # one entry of J per entry of C (zero padding)
    _canonical(J)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), layer=conv_layers(max_dims=2))
def test_conv_j_against_torch(data: st.DataObject, layer: dict[str, Any]) -> None:
    pytest.importorskip("torch")
    from convmat.testing import torch_conv

    x, w = _batch_and_weight(data.draw, layer)
    J = weight_matrix(x, w.shape, **geometry(layer))
    assert_array_equal(J @ w.ravel(), torch_conv(x, w, **geometry(layer)).ravel())


@settings(max_examples=60, deadline=None)
@given(data=st.data(), layer=conv_transpose_layers(max_dims=2))
def test_transposed_j_against_torch(data: st.DataObject, layer: dict[str, Any]) -> None:
    pytest.importorskip("torch")
    from convmat.testing import torch_conv_transpose

    x, w = _batch_and_weight(data.draw, layer)
    J = weight_matrix(x, w.shape, transposed=True, **geometry(layer))
    assert_array_equal(J @ w.ravel(), torch_conv_transpose(x, w, **geometry(layer)).ravel())


def test_groups_and_strides_against_torch_by_hand() -> None:
    pytest.importorskip("torch")
    from convmat.testing import torch_conv, torch_conv_transpose

    rng = np.random.default_rng(1)
    x = rng.integers(-3, 4, (2, 4, 7, 6)).astype(float)
    w = rng.integers(-3, 4, (6, 2, 3, 2)).astype(float)
    geo: dict[str, Any] = {"stride": (2, 3), "padding": 1, "groups": 2, "dilation": (1, 2)}
    assert_array_equal(
        weight_matrix(x, w.shape, **geo) @ w.ravel(), torch_conv(x, w, **geo).ravel()
    )
    wt = rng.integers(-3, 4, (4, 3, 3, 2)).astype(float)
    geo = {"stride": (2, 3), "padding": 1, "groups": 2, "output_padding": (1, 0)}
    assert_array_equal(
        weight_matrix(x, wt.shape, transposed=True, **geo) @ wt.ravel(),
        torch_conv_transpose(x, wt, **geo).ravel(),
    )


def test_j_is_the_jacobian_of_the_output_wrt_the_weight() -> None:
    """torch autograd's Jacobian in the weight is J (a third oracle: no pattern at all)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1, 2, 4, 5))
    w = rng.normal(size=(2, 3, 3, 3))

    def f(weight: Any) -> Any:
        return torch.nn.functional.conv_transpose2d(torch.from_numpy(x), weight, stride=2)

    jac = torch.autograd.functional.jacobian(f, torch.from_numpy(w)).numpy()
    J = weight_matrix(x, w.shape, stride=2, transposed=True)
    assert_allclose(J.toarray(), jac.reshape(J.shape), rtol=0, atol=1e-12)


# ---------------------------------------------------------------- fit_kernel


@settings(max_examples=40, deadline=None)
@given(data=st.data(), layer=conv_transpose_layers(max_dims=2, max_size=4))
def test_fit_kernel_recovers_a_transposed_kernel(
    data: st.DataObject, layer: dict[str, Any]
) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    geo = geometry(layer)
    w = rng.normal(size=layer["weight_shape"])
    # Enough random samples that J has full column rank.
    n = 1 + int(np.prod(layer["weight_shape"][1:]))
    x = rng.normal(size=(n, *layer["input_shape"]))
    y = _apply(conv_transpose_matrix(layer["input_shape"], w, **geo), x)
    y = y.reshape(n, -1, *[s for s in _out_spatial(layer, w)])
    fit = fit_kernel(x, y, layer["weight_shape"][2:], **geo)
    assert fit.relative_residual < 1e-10
    assert fit.method == "normal"
    # Padding may crop away every output a tap reaches; otherwise the kernel is unique.
    J = weight_matrix(x, w.shape, transposed=True, **geo).toarray()
    if np.linalg.matrix_rank(J) == J.shape[1]:
        assert_allclose(fit.weight, w, rtol=0, atol=1e-8)


def _out_spatial(layer: dict[str, Any], w: Array) -> tuple[int, ...]:
    from convmat import conv_transpose_output_shape

    g = geometry(layer, "groups")
    return conv_transpose_output_shape(layer["input_shape"][1:], w.shape[2:], **g)


def test_fit_kernel_recovers_a_conv_kernel_with_groups() -> None:
    rng = np.random.default_rng(3)
    w = rng.normal(size=(4, 1, 3, 3))
    x = rng.normal(size=(3, 2, 9, 8))
    geo: dict[str, Any] = {"stride": 2, "padding": 1, "groups": 2}
    y = _apply(conv_matrix(x.shape[1:], w, **geo), x).reshape(3, 4, 5, 4)
    fit = fit_kernel(x, y, 3, transposed=False, **geo)
    assert fit.weight.shape == (4, 1, 3, 3)
    assert_allclose(fit.weight, w, rtol=0, atol=1e-10)
    lsmr = fit_kernel(x, y, 3, transposed=False, method="lsmr", **geo)
    assert lsmr.method == "lsmr" and lsmr.iterations > 0 and lsmr.converged
    assert_allclose(lsmr.weight, w, rtol=0, atol=1e-7)


def test_fit_kernel_channels_layout_is_torchs() -> None:
    rng = np.random.default_rng(4)
    w = rng.normal(size=(3, 2, 4, 4))  # (C_in, C_out, k, k)
    x = rng.normal(size=(2, 3, 5, 5))
    y = _apply(conv_transpose_matrix(x.shape[1:], w, stride=2, padding=1), x)
    fit = fit_kernel(x, y.reshape(2, 2, 10, 10), 4, stride=2, padding=1)
    assert fit.weight.shape == (3, 2, 4, 4)
    assert_allclose(fit.weight, w, rtol=0, atol=1e-10)


def test_fit_kernel_with_noise_has_a_residual_and_damp_shrinks_the_kernel() -> None:
    rng = np.random.default_rng(5)
    w = rng.normal(size=(1, 1, 3))
    x = rng.normal(size=(4, 1, 20))
    y = _apply(conv_transpose_matrix((1, 20), w, stride=2), x).reshape(4, 1, 41)
    y = y + 0.1 * rng.normal(size=y.shape)
    plain = fit_kernel(x, y, 3, stride=2)
    assert 0.01 < plain.relative_residual < 0.5
    assert_allclose(plain.weight, w, atol=0.1)
    damped = fit_kernel(x, y, 3, stride=2, damp=10.0)
    assert np.linalg.norm(damped.weight) < np.linalg.norm(plain.weight)
    assert damped.residual > plain.residual
    iterative = fit_kernel(x, y, 3, stride=2, damp=10.0, method="lsmr")
    assert_allclose(iterative.weight, damped.weight, atol=1e-6)


def test_fit_kernel_singular_system_gives_the_minimum_norm_kernel() -> None:
    # A constant input cannot tell taps 0 and 2 apart (stride 1, no padding, k = 3 on 1 sample
    # of length 3 gives one equation): minimum norm spreads the weight evenly.
    fit = fit_kernel(np.ones((1, 1, 3)), np.full((1, 1, 1), 6.0), 3, transposed=False)
    assert_allclose(fit.weight.ravel(), [2.0, 2.0, 2.0])
    assert fit.residual < 1e-12


def test_fit_kernel_zero_target_reports_zero_relative_residual() -> None:
    fit = fit_kernel(np.ones((1, 1, 3)), np.zeros((1, 1, 5)), 3)
    assert fit.relative_residual == 0.0
    assert_array_equal(fit.weight, 0.0)


def test_fit_kernel_iteration_limit_reports_not_converged() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(1, 1, 30))
    y = rng.normal(size=(1, 1, 32))
    fit = fit_kernel(x, y, 3, method="lsmr", iter_lim=1)
    assert fit.iterations == 1 and not fit.converged


def test_fit_kernel_beats_the_fixed_upsamplers_on_the_photo() -> None:
    """k=4, s=2 spans nearest (a centred 2×2 box) and bilinear (the tent): LS can only be better."""
    pytest.importorskip("matplotlib")
    from convmat._demo import downscale, load_photo

    photo = load_photo()[:128, :128]
    low = downscale(photo)[None, None]
    high = photo[None, None]
    geo: dict[str, Any] = {"stride": 2, "padding": 1}
    fit = fit_kernel(low, high, 4, **geo)
    J = weight_matrix(low, (1, 1, 4, 4), transposed=True, **geo)
    box = np.outer([0, 1, 1, 0], [0, 1, 1, 0]).astype(float)
    tent = np.outer([0.25, 0.75, 0.75, 0.25], [0.25, 0.75, 0.75, 0.25])
    err = {
        name: np.linalg.norm(J @ k.ravel() - high.ravel())
        for name, k in {"nearest": box, "bilinear": tent, "fitted": fit.weight}.items()
    }
    assert err["fitted"] == pytest.approx(fit.residual)
    assert err["fitted"] < err["bilinear"] < err["nearest"]


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"transposed": 1}, TypeError, "transposed must be a bool; got 1"),
        ({"weight_shape": 3}, TypeError, "weight_shape must be a sequence of ints"),
        ({"weight_shape": (1, 1)}, ValueError, "weight_shape must be .* at least one spatial"),
        ({"weight_shape": (1, 0, 2)}, ValueError, "weight_shape must have no empty axis"),
        ({"weight_shape": (1, 1, 2.5)}, TypeError, "weight_shape must be an int"),
        ({"x": np.ones(4)}, ValueError, r"x must have shape \(C, \*spatial\) or \(N, C"),
        ({"x": np.array([["a"]])}, TypeError, "x must be"),
        (
            {"transposed": True, "padding_mode": "circular"},
            ValueError,
            "padding_mode must be 'zeros' for a transposed layer",
        ),
        ({"output_padding": 1}, ValueError, "output_padding must be 0 for a convolution"),
        ({"weight_shape": (1, 2, 2)}, ValueError, "channels must equal"),
        ({"max_bytes": 10}, MemoryError, "weight matrix of shape .* max_bytes"),
    ],
)
def test_weight_matrix_errors(kwargs: dict[str, Any], error: type, match: str) -> None:
    args: dict[str, Any] = {"x": np.ones((1, 1, 4)), "weight_shape": (1, 1, 2)} | kwargs
    with pytest.raises(error, match=match):
        weight_matrix(args.pop("x"), args.pop("weight_shape"), **args)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"transposed": "yes"}, TypeError, "transposed must be a bool"),
        ({"method": "qr"}, ValueError, "method must be one of"),
        ({"damp": "1"}, TypeError, "damp must be a real number"),
        ({"damp": -1.0}, ValueError, "damp must be >= 0"),
        ({"damp": float("nan")}, ValueError, "damp must be >= 0; got nan"),
        ({"atol": -1e-3}, ValueError, "atol must be >= 0"),
        ({"btol": None}, TypeError, "btol must be a real number; got None"),
        ({"x_low": np.ones((1, 4))}, ValueError, "x_low and y_high must be batches"),
        ({"y_high": np.ones((2, 1, 6))}, ValueError, r"y_high must have as many samples .* \(1\)"),
        ({"kernel_size": 0}, ValueError, "kernel_size must be >= 1"),
        ({"groups": 0}, ValueError, "groups must be >= 1; got 0"),
        ({"groups": 2}, ValueError, "groups must divide both channel counts"),
        ({"y_high": np.ones((1, 1, 7))}, ValueError, r"y_high must have the layer's output size"),
        ({"iter_lim": 0}, ValueError, "iter_lim must be >= 1"),
        ({"padding": -1}, ValueError, "padding must be >= 0"),
        ({"transposed": False, "output_padding": 1}, ValueError, "output_padding must be 0"),
    ],
)
def test_fit_kernel_errors(kwargs: dict[str, Any], error: type, match: str) -> None:
    args: dict[str, Any] = {
        "x_low": np.ones((1, 1, 4)),
        "y_high": np.ones((1, 1, 6)),
        "kernel_size": 3,
    } | kwargs
    with pytest.raises(error, match=match):
        fit_kernel(args.pop("x_low"), args.pop("y_high"), args.pop("kernel_size"), **args)
