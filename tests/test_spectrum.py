"""Spectra: dense SVD, svds and the FFT closed form of Sedghi et al. agree; the report's numbers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from convmat import (
    circular_singular_values,
    conv_matrix,
    conv_singular_values,
    deconvolution_report,
)
from tests.strategies import circular_layers, geometry

# ---------------------------------------------------------------- hand cases


def test_moving_sum_by_hand() -> None:
    # C = [[1, 1, 0], [0, 1, 1]]: C Cᵀ = [[2, 1], [1, 2]], eigenvalues 3 and 1.
    assert_allclose(conv_singular_values((1, 3), [[[1.0, 1.0]]]) ** 2, [3.0, 1.0])


def test_circular_single_channel_is_the_dft_magnitude() -> None:
    # 1-d circular, k = 3 on n = 4: |DFT| of the wrapped kernel.
    w = np.array([1.0, 2.0, 3.0])
    h = np.zeros(4)
    h[[3, 0, 1]] = w  # taps at offsets -1, 0, 1 (padding "same")
    expected = np.sort(np.abs(np.fft.fft(h)))[::-1]
    assert_allclose(circular_singular_values((1, 4), w[None, None]), expected, atol=1e-12)


def test_identity_kernel_has_all_ones() -> None:
    w = np.zeros((2, 2, 3, 3))
    w[0, 0, 1, 1] = w[1, 1, 1, 1] = 1.0
    assert_allclose(circular_singular_values((2, 4, 4), w), np.ones(32))
    assert_allclose(conv_singular_values((2, 4, 4), w, padding=1), np.ones(32), atol=1e-12)


# ---------------------------------------------------------------- SVD vs the FFT closed form


@settings(max_examples=60, deadline=None)
@given(layer=circular_layers(), seed=st.integers(0, 2**32 - 1))
def test_svd_equals_the_fft_closed_form_for_circular_padding(
    layer: dict[str, Any], seed: int
) -> None:
    w = np.random.default_rng(seed).normal(size=layer["weight_shape"])
    geo = geometry(layer)
    fft = circular_singular_values(layer["input_shape"], w, **geo)
    svd = conv_singular_values(layer["input_shape"], w, padding_mode="circular", **geo)
    assert fft.shape == svd.shape
    assert_allclose(fft, svd, rtol=1e-9, atol=1e-9)


def test_3d_and_complex_weights() -> None:
    rng = np.random.default_rng(7)
    w = rng.normal(size=(2, 1, 3, 2, 3)) + 1j * rng.normal(size=(2, 1, 3, 2, 3))
    fft = circular_singular_values((1, 3, 3, 4), w, padding="same")
    svd = conv_singular_values((1, 3, 3, 4), w, padding="same", padding_mode="circular")
    assert_allclose(fft, svd, rtol=1e-9)


def test_svds_gives_the_largest_values() -> None:
    rng = np.random.default_rng(8)
    w = rng.normal(size=(3, 2, 3, 3))
    every = conv_singular_values((2, 8, 8), w, stride=2, padding=1)
    top = conv_singular_values((2, 8, 8), w, stride=2, padding=1, k=5)
    assert_allclose(top, every[:5], rtol=1e-8)
    C = conv_matrix((2, 8, 8), w, stride=2, padding=1)
    assert every.size == min(C.shape)
    assert every[0] == pytest.approx(np.linalg.norm(C.toarray(), 2))


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"k": 0}, ValueError, r"k must be in \[1, 2\]"),
        ({"k": 3}, ValueError, r"k must be in \[1, 2\] \(svds needs k < min\(C.shape\)\); got 3"),
        ({"k": 1.0}, TypeError, "k must be an int or None"),
        ({"max_bytes": 10}, MemoryError, r"dense SVD of a 3x4 conv matrix .* pass k="),
        ({"stride": 0}, ValueError, "stride must be >= 1"),
    ],
)
def test_conv_singular_values_errors(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        conv_singular_values((1, 4), [[[1.0, 1.0]]], **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"stride": 2, "padding": 1}, ValueError, "stride must be 1 on every axis"),
        ({"padding": 0}, ValueError, "padding must total dilation"),
        ({"padding": 5}, ValueError, "padding must be <= the input size"),
        ({"padding": "full"}, ValueError, "padding must total dilation"),
    ],
)
def test_circular_singular_values_errors(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        circular_singular_values((1, 4), [[[1.0, 1.0, 1.0]]], **kwargs)


# ---------------------------------------------------------------- deconvolution report


def _dense(x_shape: tuple[int, ...], w: Any, **geo: Any) -> np.ndarray:
    return conv_matrix(x_shape, w, **geo).toarray()


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "geo"),
    [
        ((1, 6, 6), (1, 1, 3, 3), {"padding": 1}),
        ((2, 8), (3, 2, 3), {"stride": 2, "padding": 1}),  # input 8 -> 4: output_padding 1
        ((2, 7), (2, 1, 3), {"stride": 2, "padding": 1, "groups": 2}),
        ((1, 5, 4), (2, 1, 2, 3), {"padding": ((1, 0), (2, 1)), "dilation": (2, 1)}),
        ((1, 6), (1, 1, 3), {"padding": 1, "padding_mode": "circular"}),
        ((1, 6), (1, 1, 3), {"padding": 2, "padding_mode": "reflect"}),
    ],
)
def test_report_matches_dense_linear_algebra(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], geo: dict[str, Any]
) -> None:
    rng = np.random.default_rng(9)
    x, w = rng.normal(size=x_shape), rng.normal(size=w_shape)
    report = deconvolution_report(x, w, **geo)
    C = _dense(x_shape, w, **geo)
    gram = C.T @ C - np.eye(C.shape[1])
    assert report.gram_error == pytest.approx(np.linalg.norm(gram, "fro"), rel=1e-10)
    assert report.gram_error_2 == pytest.approx(np.linalg.norm(gram, 2), rel=1e-8)
    assert_allclose(report.singular_values, np.linalg.svd(C, compute_uv=False), atol=1e-12)
    # Cᵀ y through conv_transpose (zeros) or the operator's adjoint (folded padding).
    assert_allclose(report.transposed.ravel(), C.T @ (C @ x.ravel()), atol=1e-12)
    err = np.linalg.norm(report.transposed - x) / np.linalg.norm(x)
    assert report.transposed_error == pytest.approx(err)
    assert report.scaled_transposed_error <= report.transposed_error + 1e-15
    assert report.deconvolved.shape == x.shape


def test_injective_layer_is_inverted_by_deconvolve_only() -> None:
    rng = np.random.default_rng(10)
    x = rng.normal(size=(1, 6, 6))
    report = deconvolution_report(x, [[[[1.0, 0.5], [0.25, 0.5]]]], padding=1)
    assert np.isfinite(report.condition) and report.condition > 1
    assert report.deconvolve_converged and report.deconvolve_error < 1e-8
    assert report.transposed_error > 0.5 and report.scaled_transposed_error > 0.1
    assert "deconvolve(conv(x))" in str(report) and "did not converge" not in str(report)


def test_orthogonal_layer_is_its_own_inverse() -> None:
    x = np.arange(12.0).reshape(1, 3, 4)
    w = np.zeros((1, 1, 3, 3))
    w[0, 0, 1, 1] = 1.0
    report = deconvolution_report(x, w, padding=1)
    assert report.gram_error == 0.0 and report.gram_error_2 == 0.0
    assert report.transposed_error == 0.0 and report.condition == 1.0


def test_strided_selection_loses_half_the_input() -> None:
    # k = 1, s = 2: C keeps every other sample; CᵀC is a 0/1 diagonal, no inverse exists.
    x = np.arange(1.0, 9.0).reshape(1, 8)
    report = deconvolution_report(x, [[[1.0]]], stride=2)
    assert report.condition == float("inf")
    assert report.gram_error == pytest.approx(2.0)  # four zero eigenvalues: sqrt(4)
    assert report.gram_error_2 == 1.0
    assert_allclose(report.transposed, report.deconvolved)  # both the minimum-norm answer
    assert report.deconvolve_error == pytest.approx(report.transposed_error)


def test_iteration_limit_is_reported() -> None:
    x = np.random.default_rng(11).normal(size=(1, 12))
    report = deconvolution_report(x, [[[1.0, 0.9, 0.8]]], padding=2, iter_lim=1)
    assert not report.deconvolve_converged
    assert str(report).endswith("(LSMR did not converge)")


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((np.ones((1, 4)), [[[1.0, 1.0]]]), {"max_bytes": 10}, MemoryError, "dense SVD"),
        ((np.ones(4), [[[1.0, 1.0]]]), {}, ValueError, "input_shape must be"),
        ((np.ones((1, 4)), [[[1.0, 1.0]]]), {"stride": 0}, ValueError, "stride must be >= 1"),
        ((np.array([["a"]]), [[[1.0]]]), {}, TypeError, "x must be"),
    ],
)
def test_report_errors(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        deconvolution_report(*args, **kwargs)
