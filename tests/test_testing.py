"""convmat.testing: the dot test, the agreement check and the PyTorch reference helpers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal
from scipy.sparse.linalg import LinearOperator

import convmat
from convmat import conv, conv_operator, conv_transpose
from convmat.testing import (
    Agreement,
    check_agreement,
    dot_test,
    has_torch,
    torch_conv,
    torch_conv_transpose,
)
from tests.strategies import conv_layers, conv_transpose_layers, geometry

# ---------------------------------------------------------------- dot test


def test_dot_test_accepts_operators_matrices_and_arrays() -> None:
    rng = np.random.default_rng(0)
    A = rng.standard_normal((7, 5))
    assert dot_test(A) < 1e-12
    assert dot_test(sp.csr_array(A)) < 1e-12
    assert dot_test(A + 1j * rng.standard_normal((7, 5))) < 1e-12
    assert dot_test(conv_operator((2, 6), np.ones((3, 2, 3)), stride=2)) < 1e-12
    assert dot_test(A.astype(np.float32)) < 1e-4


def test_dot_test_catches_a_wrong_adjoint() -> None:
    A = np.arange(12.0).reshape(3, 4)
    wrong = LinearOperator((3, 4), matvec=lambda x: A @ x, rmatvec=lambda y: 2 * A.T @ y)
    with pytest.raises(AssertionError, match=r"dot test failed: <A x, y> = .* relative mismatch"):
        dot_test(wrong)
    assert dot_test(wrong, rtol=1.0) == pytest.approx(0.5)


def test_dot_test_catches_a_flipped_kernel() -> None:
    """The classic slip: using the flipped kernel (true convolution) as the adjoint."""
    w = np.array([[[1.0, 2.0, 4.0]]])
    flipped = w[..., ::-1].copy()
    op = LinearOperator(
        (6, 8),
        matvec=lambda x: conv(x.reshape(1, 8), w).ravel(),
        rmatvec=lambda y: conv_transpose(y.reshape(1, 6), flipped).ravel(),
    )
    with pytest.raises(AssertionError, match="dot test failed"):
        dot_test(op)


def test_dot_test_seeds() -> None:
    op = conv_operator((1, 9), np.ones((1, 1, 2)))
    assert dot_test(op, seed=1) == dot_test(op, seed=1)
    assert dot_test(op, seed=None) < 1e-12


# ---------------------------------------------------------------- agreement


def test_agreement_of_a_convolution() -> None:
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 4, 7, 6)), rng.standard_normal((6, 2, 3, 3)), np.ones(6)
    report = check_agreement(x, w, b, groups=2, padding=1, padding_mode="circular")
    assert isinstance(report, Agreement)
    expected = {"conv", "torch"} if has_torch() else {"conv"}
    assert set(report.differences) == expected
    assert report.relative < 1e-12
    assert report.scale == pytest.approx(
        np.abs(conv(x, w, b, groups=2, padding=1, padding_mode="circular")).max()
    )
    assert "largest" in str(report)


def test_agreement_of_a_transposed_layer_without_torch() -> None:
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((3, 5)), rng.standard_normal((3, 2, 4))
    report = check_agreement(x, w, transposed=True, stride=3, output_padding=2, torch=False)
    assert set(report.differences) == {"gemm", "scatter", "fractional"}
    assert report.largest < 1e-12


@settings(max_examples=25, deadline=None)
@given(conv_layers(max_dims=2), st.integers(0, 2**32 - 1))
def test_agreement_on_random_convolutions(layer: dict[str, Any], seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, *layer["input_shape"]))
    w = rng.standard_normal(layer["weight_shape"])
    check_agreement(x, w, **geometry(layer), rtol=1e-10)


@settings(max_examples=25, deadline=None)
@given(conv_transpose_layers(max_dims=2), st.integers(0, 2**32 - 1))
def test_agreement_on_random_transposed_layers(layer: dict[str, Any], seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, *layer["input_shape"])).astype(np.float32)
    w = rng.standard_normal(layer["weight_shape"]).astype(np.float32)
    check_agreement(x, w, transposed=True, **geometry(layer), rtol=1e-5)


def test_agreement_raises_beyond_rtol(monkeypatch: pytest.MonkeyPatch) -> None:
    real = convmat.conv_transpose

    def off_by_one(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        return result + 1 if kwargs.get("method") == "scatter" else result

    monkeypatch.setattr(convmat, "conv_transpose", off_by_one)
    x, w = np.ones((1, 3)), np.ones((1, 1, 2))
    report = check_agreement(x, w, transposed=True, torch=False)
    assert report.differences["scatter"] == 1.0
    with pytest.raises(AssertionError, match=r"routes disagree beyond rtol=0\.001:\n"):
        check_agreement(x, w, transposed=True, torch=False, rtol=1e-3)


def test_agreement_errors() -> None:
    x, w = np.ones((1, 5)), np.ones((1, 1, 2))
    with pytest.raises(ValueError, match="output_padding must be None for a convolution"):
        check_agreement(x, w, output_padding=1)
    with pytest.raises(ValueError, match="padding_mode must be 'zeros' for a transposed layer"):
        check_agreement(x, w, transposed=True, padding_mode="reflect")
    with pytest.raises(ValueError, match="stride must be >= 1"):
        check_agreement(x, w, stride=0)
    if not has_torch():
        with pytest.raises(ModuleNotFoundError, match="PyTorch is needed"):
            check_agreement(x, w, torch=True)


# ---------------------------------------------------------------- torch helpers


def test_torch_helpers_match_the_fast_path() -> None:
    pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.integers(-3, 4, (2, 2, 6, 7)).astype(np.float64)
    w = rng.integers(-3, 4, (4, 1, 3, 2)).astype(np.float64)
    kwargs = {"groups": 2, "padding": ((1, 0), (2, 1)), "stride": (2, 1)}
    assert_array_equal(torch_conv(x, w, **kwargs), conv(x, w, **kwargs))
    assert_array_equal(torch_conv(x[0], w, **kwargs), conv(x[0], w, **kwargs))
    y = conv(x, w, **kwargs)
    assert_array_equal(torch_conv_transpose(y, w, **kwargs), conv_transpose(y, w, **kwargs))


def test_has_torch_is_a_bool() -> None:
    assert isinstance(has_torch(), bool)
