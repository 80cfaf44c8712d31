"""avg_pool, adaptive_avg_pool and their matrices: hand cases, PyTorch and fixtures, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from convmat import (
    adaptive_avg_pool,
    adaptive_avg_pool_matrix,
    avg_pool,
    avg_pool_matrix,
    upsample,
    upsample_matrix,
)
from tests.strategies import adaptive_cases, avg_pool_cases

FIXTURES = Path(__file__).parent / "fixtures" / "avgpool.npz"
TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
POOL_KEYS = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")


def _pool_kwargs(case: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in case.items() if k not in ("spatial", "torch_ok")}


def _planes(P: sp.csr_array, x: np.ndarray[Any, Any], out: tuple[int, ...]) -> Any:
    """``P`` applied to every channel plane: ``x.reshape(N, C, -1) @ P.T``."""
    lead = x.shape[: x.ndim - len(out)]
    return (P @ x.reshape(-1, P.shape[1]).T).T.reshape(*lead, *out)


def _torch_avg_pool(x: np.ndarray[Any, Any], case: dict[str, Any]) -> np.ndarray[Any, Any]:
    """torch's avg_pool; 1-d as avg_pool2d on a (1, L) plane (avg_pool1d has no divisor)."""
    torch = pytest.importorskip("torch")
    fn = torch.nn.functional
    kwargs = _pool_kwargs(case)
    t = torch.from_numpy(x)
    ndim = len(case["spatial"])
    if ndim == 1:
        for key, fill in (("kernel_size", 1), ("stride", 1), ("padding", 0)):
            value = kwargs[key]
            if value is not None:
                kwargs[key] = (fill, value[0] if isinstance(value, tuple) else value)
        result: np.ndarray[Any, Any] = fn.avg_pool2d(t[:, :, None], **kwargs)[:, :, 0].numpy()
        return result
    result = getattr(fn, f"avg_pool{ndim}d")(t, **kwargs).numpy()
    return result


# ---------------------------------------------------------------- literal cases


def test_two_by_two_means() -> None:
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    assert_array_equal(avg_pool(x, 2)[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    P = avg_pool_matrix((4, 4), 2)
    assert P.shape == (4, 16) and P.nnz == 16 and set(P.data) == {0.25}
    assert_array_equal(avg_pool_matrix(4, 2).toarray(), [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])


def test_padding_counted_or_not() -> None:
    """[1, 2, 3], k = 3, p = 1: the border windows hold one zero of padding."""
    x = np.array([[1.0, 2.0, 3.0]])
    assert_allclose(avg_pool(x, 3, stride=1, padding=1), [[1.0, 2.0, 5 / 3]], rtol=1e-15)
    plain = avg_pool(x, 3, stride=1, padding=1, count_include_pad=False)
    assert_array_equal(plain, [[1.5, 2.0, 2.5]])
    P = avg_pool_matrix(3, 3, stride=1, padding=1)
    assert_array_equal(P.toarray(), np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]]) / 3)


def test_ceil_mode_clips_the_divisor_to_the_padded_input() -> None:
    """n = 4, k = 3, s = 2, p = 1, ceil: windows [-1, 2), [1, 4), [3, 6) → [3, 5) padded."""
    x = np.array([[1.0, 2.0, 3.0, 4.0]])
    kw: dict[str, Any] = {"stride": 2, "padding": 1, "ceil_mode": True}
    assert_array_equal(avg_pool(x, 3, **kw), [[1.0, 3.0, 2.0]])
    assert_array_equal(avg_pool(x, 3, count_include_pad=False, **kw), [[1.5, 3.0, 4.0]])
    assert_array_equal(avg_pool(x, 3, stride=2, padding=1), [[1.0, 3.0]])  # floor: 2 windows
    # n = 5, k = 2, ceil: the last window holds x[4] alone, divided by 1.
    assert_array_equal(avg_pool(np.arange(1.0, 6.0)[None], 2, ceil_mode=True), [[1.5, 3.5, 5.0]])


def test_divisor_override_is_a_constant() -> None:
    x = np.arange(1.0, 7.0)[None]
    assert_array_equal(avg_pool(x, 3, divisor_override=2), [[3.0, 7.5]])
    assert_array_equal(avg_pool(x, 3, divisor_override=-3), [[-2.0, -5.0]])
    P = avg_pool_matrix((4, 4), 2, padding=1, divisor_override=4)
    assert set(P.data) == {0.25} and P.nnz == 16


def test_entries_are_reciprocal_divisors() -> None:
    """3×3 windows, padding 1 on a 4×4 plane: corners divide by 9 or by 4 (the inputs)."""
    with_pad = avg_pool_matrix((4, 4), 3, stride=1, padding=1)
    without = avg_pool_matrix((4, 4), 3, stride=1, padding=1, count_include_pad=False)
    assert set(with_pad.data) == {1 / 9}
    assert set(without.data) == {1 / 4, 1 / 6, 1 / 9}
    assert_allclose(without.sum(axis=1), 1, rtol=1e-15)


def test_adaptive_windows_overlap_when_sizes_do_not_divide() -> None:
    """5 → 3: [0, 2), [1, 4), [3, 5); 3 → 5 repeats inputs."""
    x = np.array([[0.0, 1.0, 2.0, 3.0, 4.0]])
    assert_array_equal(adaptive_avg_pool(x, 3), [[0.5, 2.0, 3.5]])
    assert_array_equal(
        adaptive_avg_pool_matrix(5, 3).toarray() * [[2], [3], [2]],
        [[1, 1, 0, 0, 0], [0, 1, 1, 1, 0], [0, 0, 0, 1, 1]],
    )
    assert_array_equal(adaptive_avg_pool(np.array([[0.0, 3.0, 6.0]]), 5), [[0, 1.5, 3, 4.5, 6]])


def test_adaptive_none_keeps_an_axis() -> None:
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    assert_array_equal(adaptive_avg_pool(x, (1, None))[0, 0], [[4.0, 5.0, 6.0, 7.0]])
    assert_array_equal(adaptive_avg_pool(x, (None, 1))[0, 0], [[1.5], [5.5], [9.5]])
    P = adaptive_avg_pool_matrix((3, 4), (None, 2))
    assert P.shape == (6, 12) and set(P.data) == {0.5}


def test_area_is_adaptive_pooling() -> None:
    x = np.arange(24.0).reshape(2, 3, 4)
    assert_array_equal(upsample(x, size=2, mode="area"), adaptive_avg_pool(x, 2))
    assert_array_equal(upsample(x, scale_factor=0.6, mode="area"), adaptive_avg_pool(x, 2))
    A = upsample_matrix((4, 6), scale_factor=(0.5, 1.5), mode="area")
    assert abs(A - adaptive_avg_pool_matrix((4, 6), (2, 9))).max() == 0


def test_rank_rules() -> None:
    """A sequence fixes the rank; ints use x.ndim − 2, and a 2-d x is (C, L)."""
    x = np.arange(16.0).reshape(4, 4)
    assert avg_pool(x, 2).shape == (4, 2)
    assert avg_pool(x[None], (2, 2)).shape == (1, 2, 2)
    assert adaptive_avg_pool(x, 1).shape == (4, 1)
    assert adaptive_avg_pool(x[None], (1, 1)).shape == (1, 1, 1)
    assert avg_pool_matrix(4, (2, 2)).shape == (4, 16)
    assert adaptive_avg_pool_matrix(4, (2, None)).shape == (8, 16)


def test_dtypes_and_tensors() -> None:
    x32 = np.arange(8, dtype=np.float32).reshape(1, 8)
    assert avg_pool(x32, 2).dtype == np.float32
    assert adaptive_avg_pool(x32, 3).dtype == np.float32
    assert avg_pool(np.arange(8).reshape(1, 8), 2).dtype == np.float64
    assert avg_pool_matrix(8, 2, dtype=np.float32).dtype == np.float32
    assert adaptive_avg_pool_matrix(8, 3, dtype="float32").dtype == np.float32
    z = np.array([[1 + 2j, 3 - 1j]])
    assert_array_equal(avg_pool(z, 2), [[2 + 0.5j]])
    assert avg_pool(np.zeros((0, 2, 4)), 2).shape == (0, 2, 2)
    torch = pytest.importorskip("torch")
    assert_array_equal(avg_pool(torch.arange(4.0)[None], 2), [[0.5, 2.5]])


def test_nonfinite_values_stay_in_their_windows() -> None:
    """inf spreads to its windows only (no 0·inf from absent taps)."""
    x = np.array([[np.inf, 1.0, 2.0, 3.0, 4.0, np.nan]])
    assert_array_equal(avg_pool(x, 2), [[np.inf, 2.5, np.nan]])
    assert_array_equal(adaptive_avg_pool(x, 4)[0, 1:3], [1.5, 3.5])


# ---------------------------------------------------------------- references


def test_fixtures_without_torch() -> None:
    """Conformance to torch outputs committed by tests/fixtures/make_avgpool.py."""
    data = np.load(FIXTURES)
    metas = json.loads(str(data["meta"]))
    start_x = start_y = 0
    for meta in metas:
        nx, ny = math.prod(meta["x"]), math.prod(meta["y"])
        x = data["x"][start_x : start_x + nx].reshape(meta["x"]).astype(meta["dtype"])
        y = data["y"][start_y : start_y + ny].reshape(meta["y"])
        start_x, start_y = start_x + nx, start_y + ny
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["kwargs"].items()}
        spatial = x.shape[2:]
        if meta["kind"] == "avg_pool":
            got = avg_pool(x, **kwargs)
            P = avg_pool_matrix(spatial, dtype=x.dtype, **kwargs)
        elif meta["kind"] == "adaptive":
            got = adaptive_avg_pool(x, kwargs["output_size"])
            P = adaptive_avg_pool_matrix(spatial, kwargs["output_size"], dtype=x.dtype)
        else:
            got = upsample(x, **kwargs)
            P = upsample_matrix(spatial, dtype=x.dtype, **kwargs)
        tol = TOL[x.dtype]
        assert got.dtype == x.dtype and got.shape == y.shape, meta
        assert_allclose(got, y, rtol=tol, atol=tol, err_msg=str(meta))
        assert_allclose(_planes(P, x, y.shape[2:]), y, rtol=tol, atol=tol, err_msg=str(meta))
    assert len(metas) >= 25 and start_x == data["x"].size and start_y == data["y"].size


@settings(max_examples=300, deadline=None)
@given(avg_pool_cases(), st.sampled_from([np.float32, np.float64]), st.integers(0, 2**32 - 1))
def test_avg_pool_matches_torch(case: dict[str, Any], dtype: Any, seed: int) -> None:
    assume(case["torch_ok"])
    x = np.random.default_rng(seed).standard_normal((2, 3, *case["spatial"])).astype(dtype)
    reference = _torch_avg_pool(x, case)
    tol = TOL[np.dtype(dtype)]
    got = avg_pool(x, **_pool_kwargs(case))
    assert got.shape == reference.shape and got.dtype == x.dtype
    assert_allclose(got, reference, rtol=tol, atol=tol)
    P = avg_pool_matrix(case["spatial"], dtype=dtype, **_pool_kwargs(case))
    assert P.dtype == dtype
    assert_allclose(_planes(P, x, got.shape[2:]), reference, rtol=tol, atol=tol)


def test_avg_pool3d_small_input_follows_avg_pool2d() -> None:
    """torch's avg_pool3d refuses an input smaller than the kernel; convmat computes it."""
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(3).standard_normal((1, 2, 1, 5, 4))
    kw: dict[str, Any] = {"kernel_size": (2, 3, 2), "padding": (1, 1, 0), "stride": 1}
    with pytest.raises(RuntimeError, match="smaller than"):
        torch.nn.functional.avg_pool3d(torch.from_numpy(x), **kw)
    got = avg_pool(x, **kw)
    # the depth axis alone: windows [-1, 1) and [0, 2) hold the one plane, divided by 2
    two_d = avg_pool(x[:, :, 0], kernel_size=(3, 2), padding=(1, 0), stride=1)
    assert_allclose(got, np.stack([two_d / 2, two_d / 2], axis=2), rtol=1e-14)


@settings(max_examples=200, deadline=None)
@given(adaptive_cases(), st.sampled_from([np.float32, np.float64]), st.integers(0, 2**32 - 1))
def test_adaptive_matches_torch(case: dict[str, Any], dtype: Any, seed: int) -> None:
    torch = pytest.importorskip("torch")
    ndim = len(case["spatial"])
    x = np.random.default_rng(seed).standard_normal((2, 3, *case["spatial"])).astype(dtype)
    fn = getattr(torch.nn.functional, f"adaptive_avg_pool{ndim}d")
    reference = fn(torch.from_numpy(x), case["output_size"]).numpy()
    tol = TOL[np.dtype(dtype)]
    got = adaptive_avg_pool(x, case["output_size"])
    assert got.shape == reference.shape and got.dtype == x.dtype
    assert_allclose(got, reference, rtol=tol, atol=tol)
    P = adaptive_avg_pool_matrix(case["spatial"], case["output_size"], dtype=dtype)
    assert_allclose(_planes(P, x, got.shape[2:]), reference, rtol=tol, atol=tol)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(1, 8), min_size=1, max_size=3),
    st.data(),
    st.sampled_from([np.float32, np.float64]),
)
def test_area_matches_torch(spatial: list[int], data: Any, dtype: Any) -> None:
    """``mode="area"`` up and down, by size and by (fractional) scale factor."""
    torch = pytest.importorskip("torch")
    if data.draw(st.booleans()):
        kwargs: dict[str, Any] = {"size": tuple(data.draw(st.integers(1, 12)) for _ in spatial)}
    else:
        scales = (0.3, 0.5, 1 / 3, 0.7, 1.0, 1.5, 2.0, 2.5)
        kwargs = {
            "scale_factor": tuple(
                data.draw(st.sampled_from([f for f in scales if int(n * f) >= 1])) for n in spatial
            )
        }
    x = np.random.default_rng(len(spatial)).standard_normal((2, 2, *spatial)).astype(dtype)
    reference = torch.nn.functional.interpolate(torch.from_numpy(x), mode="area", **kwargs)
    tol = TOL[np.dtype(dtype)]
    got = upsample(x, mode="area", **kwargs)
    assert got.shape == reference.shape and got.dtype == x.dtype
    assert_allclose(got, reference.numpy(), rtol=tol, atol=tol)
    A = upsample_matrix(tuple(spatial), mode="area", dtype=dtype, **kwargs)
    assert_allclose(_planes(A, x, got.shape[2:]), reference.numpy(), rtol=tol, atol=tol)


# ---------------------------------------------------------------- properties


@settings(max_examples=150, deadline=None)
@given(avg_pool_cases(), st.integers(0, 2**32 - 1), st.booleans())
def test_matrix_equals_function(case: dict[str, Any], seed: int, batched: bool) -> None:
    """Small integers: the two paths agree to rounding of the reciprocal divisor."""
    kwargs = _pool_kwargs(case)
    ndim = len(case["spatial"])
    kwargs["kernel_size"] = (
        kwargs["kernel_size"]
        if isinstance(kwargs["kernel_size"], tuple)
        else (kwargs["kernel_size"],) * ndim
    )  # a sequence fixes the rank, batched or not
    shape = ((2,) if batched else ()) + (3, *case["spatial"])
    x = np.random.default_rng(seed).integers(-3, 4, shape).astype(np.float64)
    y = avg_pool(x, **kwargs)
    P = avg_pool_matrix(case["spatial"], **kwargs)
    assert_allclose(_planes(P, x, y.shape[x.ndim - ndim :]), y, rtol=1e-13, atol=1e-13)


@settings(max_examples=150, deadline=None)
@given(avg_pool_cases())
def test_matrix_structure(case: dict[str, Any]) -> None:
    """CSR clean; nnz = ∏ per-axis nnz; entries 1/divisor; rows sum to 1 without padding."""
    kwargs = _pool_kwargs(case)
    P = avg_pool_matrix(case["spatial"], **kwargs)
    assert P.format == "csr" and P.indices.dtype == np.int32 and P.has_sorted_indices
    assert P.nnz == np.count_nonzero(P.data)
    per_axis = 1
    for axis, n in enumerate(case["spatial"]):
        one = {
            key: value[axis] if isinstance(value, tuple) else value
            for key, value in kwargs.items()
            if key in POOL_KEYS
        }
        per_axis *= avg_pool_matrix(n, **one).nnz
    assert P.nnz == per_axis
    if kwargs["divisor_override"] is not None:
        assert set(P.data) == {1 / kwargs["divisor_override"]}
    elif not kwargs["count_include_pad"]:
        assert_allclose(P.sum(axis=1), 1, rtol=1e-13)
    A = adaptive_avg_pool_matrix(case["spatial"], tuple(max(1, n // 2) for n in case["spatial"]))
    assert_allclose(A.sum(axis=1), 1, rtol=1e-13)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((3,), {"padding": 2}, ValueError, r"padding must be <= kernel_size // 2"),
        ((5,), {}, ValueError, "kernel_size .* must fit in the padded input"),
        ((0,), {}, ValueError, "kernel_size must be >= 1"),
        ((2,), {"stride": 0}, ValueError, "stride must be >= 1"),
        ((2.5,), {}, TypeError, "kernel_size must be an int"),
        ((2,), {"padding": -1}, ValueError, "padding must be >= 0"),
        ((2,), {"ceil_mode": 1}, TypeError, "ceil_mode must be a bool"),
        ((2,), {"count_include_pad": "yes"}, TypeError, "count_include_pad must be a bool"),
        ((2,), {"divisor_override": 0}, ValueError, "divisor_override must be a nonzero int"),
        ((2,), {"divisor_override": 1.5}, TypeError, "divisor_override must be a nonzero int"),
        ((2,), {"divisor_override": True}, TypeError, "divisor_override must be a nonzero int"),
        (((2, 2, 2),), {}, ValueError, r"x must have shape .* with 3 spatial dims"),
    ],
)
def test_avg_pool_errors(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    x = np.zeros((1, 2, 4))
    with pytest.raises(error, match=match):
        avg_pool(x, *args, **kwargs)
    if args[0] != (2, 2, 2):
        with pytest.raises(error, match=match):
            avg_pool_matrix(4, *args, **kwargs)


def test_input_errors() -> None:
    with pytest.raises(TypeError, match="x must be a real or complex numeric array"):
        avg_pool(np.array([["a", "b"]]), 2)
    with pytest.raises(ValueError, match=r"x must have shape \(C, L\)"):
        avg_pool(np.zeros(4), 2)
    with pytest.raises(ValueError, match="spatial must be >= 1"):
        avg_pool_matrix((0, 4), 2)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        avg_pool_matrix(4, 2, dtype=np.int32)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        adaptive_avg_pool_matrix(4, 2, dtype="complex128")


@pytest.mark.parametrize(
    ("output_size", "error", "match"),
    [
        (0, ValueError, "output_size must be >= 1"),
        ((2, 0), ValueError, "output_size must be >= 1"),
        ((2, 2, 2), ValueError, "output_size must be an int or a sequence of 2 ints or None"),
        (2.5, TypeError, "output_size must be an int"),
        ("2", TypeError, "output_size must be an int"),
        ((2, True), TypeError, "output_size must be an int"),
    ],
)
def test_adaptive_errors(output_size: Any, error: type[Exception], match: str) -> None:
    if not isinstance(output_size, tuple) or len(output_size) == 2:  # else it fixes rank 3
        with pytest.raises(error, match=match):
            adaptive_avg_pool(np.zeros((1, 2, 4, 4)), output_size)
    with pytest.raises(error, match=match):
        adaptive_avg_pool_matrix((4, 4), output_size)


def test_adaptive_rank_error() -> None:
    with pytest.raises(ValueError, match=r"x must have shape .* with 3 spatial dims"):
        adaptive_avg_pool(np.zeros((2, 4, 4)), (1, 1, 1))


def test_memory_error_names_the_size_and_the_way_out() -> None:
    with pytest.raises(MemoryError, match=r"max_bytes=.*convmat\.avg_pool"):
        avg_pool_matrix((64, 64), 3, stride=1, max_bytes=1000)
    with pytest.raises(MemoryError, match=r"max_bytes=.*convmat\.adaptive_avg_pool"):
        adaptive_avg_pool_matrix((64, 64), 60, max_bytes=1000)
    with pytest.raises(MemoryError, match=r"convmat\.adaptive_avg_pool"):
        upsample_matrix((64, 64), size=60, mode="area", max_bytes=1000)
