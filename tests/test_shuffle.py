"""pixel_shuffle, pixel_unshuffle and their permutation matrices: hand cases, torch, errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from convmat import (
    pixel_shuffle,
    pixel_shuffle_matrix,
    pixel_unshuffle,
    pixel_unshuffle_matrix,
)
from tests.test_pad import fixture_cases


@st.composite
def shuffle_cases(draw: Any) -> tuple[tuple[int, int, int], int]:
    """One sample shape ``(C·r², H, W)`` and ``r``."""
    r = draw(st.integers(1, 4))
    c = draw(st.integers(1, 3))
    return (c * r * r, draw(st.integers(1, 4)), draw(st.integers(1, 4))), r


def test_by_hand() -> None:
    x = np.arange(8.0).reshape(4, 1, 2)  # channels (a, b) = (0,0) (0,1) (1,0) (1,1)
    assert_array_equal(pixel_shuffle(x, 2), [[[0, 2, 1, 3], [4, 6, 5, 7]]])
    assert_array_equal(pixel_unshuffle(pixel_shuffle(x, 2), 2), x)
    S = pixel_shuffle_matrix((4, 1, 2), 2)
    assert_array_equal(S.indices, [0, 2, 1, 3, 4, 6, 5, 7])
    assert_array_equal(pixel_shuffle(x, 1), x)


@settings(max_examples=80, deadline=None)
@given(shuffle_cases(), st.integers(0, 2**32 - 1))
def test_matrices_equal_functions_and_transpose(
    case: tuple[tuple[int, int, int], int], seed: int
) -> None:
    shape, r = case
    x = np.random.default_rng(seed).integers(-3, 4, (2, *shape)).astype(float)
    S = pixel_shuffle_matrix(shape, r)
    y = pixel_shuffle(x, r)
    assert_array_equal((S @ x.reshape(2, -1).T).T, y.reshape(2, -1))
    assert_array_equal(pixel_shuffle(x[0], r), y[0])
    out_shape = y.shape[1:]
    U = pixel_unshuffle_matrix(out_shape, r)
    assert (U != S.T).nnz == 0
    assert_array_equal((U @ y.reshape(2, -1).T).T, x.reshape(2, -1))
    assert_array_equal(pixel_unshuffle(y, r), x)
    assert S.indices.dtype == np.int32 and S.has_sorted_indices
    assert_array_equal(np.sort(S.indices), np.arange(S.shape[0]))  # a permutation


@settings(max_examples=60, deadline=None)
@given(shuffle_cases(), st.integers(0, 2**32 - 1), st.booleans())
def test_against_torch(case: tuple[tuple[int, int, int], int], seed: int, batch: bool) -> None:
    torch = pytest.importorskip("torch")
    shape, r = case
    x = np.random.default_rng(seed).standard_normal((2, 3, *shape) if batch else shape)
    t = torch.from_numpy(x)
    y = torch.nn.functional.pixel_shuffle(t, r)
    assert_array_equal(pixel_shuffle(x, r), y.numpy())
    assert_array_equal(pixel_shuffle(t, r), y.numpy())
    assert_array_equal(pixel_unshuffle(y.numpy(), r), torch.nn.functional.pixel_unshuffle(y, r))


def test_fixtures() -> None:
    shuffles, unshuffles = fixture_cases("shuffle"), fixture_cases("unshuffle")
    assert len(shuffles) >= 3 and len(unshuffles) >= 3
    for meta, arrays in shuffles:
        assert_array_equal(pixel_shuffle(arrays["x"], meta["factor"]), arrays["y"])
    for meta, arrays in unshuffles:
        assert_array_equal(pixel_unshuffle(arrays["x"], meta["factor"]), arrays["y"])


def test_dtypes() -> None:
    x = np.ones((4, 2, 2), dtype=np.float32)
    assert pixel_shuffle(x, 2).dtype == np.float32
    assert pixel_unshuffle(x, 2).dtype == np.float32
    assert pixel_shuffle(np.ones((4, 1, 1), dtype=int), 2).dtype == np.float64
    assert pixel_shuffle_matrix((4, 1, 1), 2, dtype=np.float32).dtype == np.float32
    assert pixel_unshuffle_matrix((1, 2, 2), 2, dtype=np.complex128).dtype == np.complex128


@pytest.mark.parametrize(
    ("func", "args", "error", "match"),
    [
        (pixel_shuffle, (np.ones((3, 2, 2)), 2), ValueError, "channels must be divisible by"),
        (pixel_shuffle, (np.ones((4, 2)), 2), ValueError, "x must have shape .* at least 3"),
        (pixel_shuffle, (np.ones((4, 2, 2)), 0), ValueError, "upscale_factor must be >= 1; got 0"),
        (pixel_shuffle, (np.ones((4, 2, 2)), 2.0), TypeError, "upscale_factor must be an int"),
        (pixel_unshuffle, (np.ones((1, 3, 2)), 2), ValueError, r"divisible by .* got \(3, 2\)"),
        (pixel_unshuffle, (np.ones((1, 2, 2)), True), TypeError, "downscale_factor must be"),
        (pixel_shuffle_matrix, ((4, 2), 2), ValueError, r"input_shape must be one sample"),
        (pixel_shuffle_matrix, ("abc", 2), TypeError, "input_shape must be a sequence"),
        (pixel_shuffle_matrix, ((2, 1, 1), 2), ValueError, "input_shape channels must be"),
        (pixel_unshuffle_matrix, ((1, 2, 3), 2), ValueError, "input_shape height and width"),
        (pixel_unshuffle_matrix, ((0, 2, 2), 2), ValueError, "input_shape must be >= 1"),
    ],
)
def test_errors(func: Any, args: tuple[Any, ...], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        func(*args)


def test_matrix_limits() -> None:
    with pytest.raises(MemoryError, match=r"pixel_shuffle matrix .* convmat\.pixel_shuffle"):
        pixel_shuffle_matrix((4, 50, 50), 2, max_bytes=1000)
    with pytest.raises(TypeError, match="dtype must be a float or complex dtype"):
        pixel_unshuffle_matrix((1, 2, 2), 2, dtype=bool)
