"""Spectra: dense SVD, svds and the FFT closed form of Sedghi et al. agree; the report's numbers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from convmat import circular_singular_values, conv_matrix, conv_singular_values

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


@st.composite
def circular_layers(draw: Any) -> dict[str, Any]:
    ndim = draw(st.integers(1, 2))
    groups = draw(st.integers(1, 2))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 3))
    k = tuple(draw(st.integers(1, 4)) for _ in range(ndim))
    d = tuple(draw(st.integers(1, 2)) for _ in range(ndim))
    pads = []
    for ki, di in zip(k, d, strict=True):
        lo = draw(st.integers(0, di * (ki - 1)))
        pads.append((lo, di * (ki - 1) - lo))
    n = tuple(draw(st.integers(max(2, *p), max(5, *p))) for p in pads)
    return {
        "input_shape": (c_in, *n),
        "weight_shape": (c_out, c_in // groups, *k),
        "padding": tuple(pads),
        "dilation": d,
        "groups": groups,
    }


@settings(max_examples=60, deadline=None)
@given(layer=circular_layers(), seed=st.integers(0, 2**32 - 1))
def test_svd_equals_the_fft_closed_form_for_circular_padding(
    layer: dict[str, Any], seed: int
) -> None:
    w = np.random.default_rng(seed).normal(size=layer["weight_shape"])
    geo = {key: layer[key] for key in ("padding", "dilation", "groups")}
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
