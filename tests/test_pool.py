"""max_pool, max_unpool and their matrices: hand cases, PyTorch and fixtures, properties, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from convmat import max_pool, max_pool_matrix, max_unpool, max_unpool_matrix
from convmat._pool import empty_windows, pool_geometry
from tests.strategies import pool_cases

FIXTURES = Path(__file__).parent / "fixtures" / "upsample.npz"


def _geometry(case: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in case.items() if k != "spatial"}


def _unpool_args(case: dict[str, Any]) -> dict[str, Any]:
    return {k: case[k] for k in ("kernel_size", "stride", "padding")}


def _data(seed: int, shape: tuple[int, ...], kind: str) -> np.ndarray[Any, Any]:
    """Small integers (many ties), optionally with NaN or a majority of -inf."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=shape).astype(np.float64)
    flat = x.reshape(-1)
    if kind == "nan":
        flat[rng.integers(0, flat.size, max(1, flat.size // 6))] = np.nan
    elif kind == "neginf":
        flat[rng.integers(0, flat.size, flat.size)] = -np.inf
    return x


# ---------------------------------------------------------------- literal cases


def test_torch_documentation_example() -> None:
    """MaxPool2d / MaxUnpool2d docs: 1..16 as 4×4, kernel 2, stride 2."""
    x = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    y, i = max_pool(x, 2, stride=2, return_indices=True)
    assert_array_equal(y[0, 0], [[6, 8], [14, 16]])
    assert_array_equal(i[0, 0], [[5, 7], [13, 15]])
    assert i.dtype == np.int64
    expected = [[0, 0, 0, 0], [0, 6, 0, 8], [0, 0, 0, 0], [0, 14, 0, 16]]
    assert_array_equal(max_unpool(y, i, 2, stride=2)[0, 0], expected)
    # output_size one larger than the default, as MaxUnpool2d allows
    assert max_unpool(y, i, 2, output_size=(5, 5)).shape == (1, 1, 5, 5)


def test_ties_nan_and_minus_inf_follow_torch() -> None:
    x = np.array([[[3.0, 3.0, np.nan, 1.0, np.nan, 2.0, -np.inf, -np.inf]]])
    _, i = max_pool(x, 2, return_indices=True)
    assert_array_equal(i[0, 0], [0, 2, 4, 6])  # first of a tie; the NaN; -inf keeps the first
    y3, i3 = max_pool(x[..., :5], 5, return_indices=True)
    assert np.isnan(y3).all() and i3[0, 0, 0] == 4  # the last NaN wins the window
    assert np.isnan(max_pool(x, 2)[0, 0, 1])  # without indices NaN propagates too


def test_ceil_mode_and_padding() -> None:
    x = np.arange(5.0)[None, None]
    assert_array_equal(max_pool(x, 2, ceil_mode=True), [[[1, 3, 4]]])  # last window is partial
    assert_array_equal(max_pool(x, 2), [[[1, 3]]])
    # ceil_mode would start a window in the right padding: torch drops it
    assert max_pool(np.zeros((1, 1, 4)), 2, stride=2, padding=1, ceil_mode=True).shape[-1] == 3
    _, i = max_pool(-np.arange(4.0)[None, None], 3, stride=2, padding=1, return_indices=True)
    assert_array_equal(i[0, 0], [0, 1])  # padding (-inf) never wins


def test_unpool_with_repeated_index_keeps_the_last_write() -> None:
    x = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    i = np.array([[[3, 1, 3, 0]]])
    assert_array_equal(max_unpool(x, i, 2)[0, 0], [4, 2, 0, 3, 0, 0, 0, 0])
    M = max_unpool_matrix(i[0, 0], 6)
    assert_array_equal(M @ x.ravel(), [4, 2, 0, 3, 0, 0])
    assert (np.diff(M.indptr) <= 1).all()


def test_overlapping_windows_unpool_differs_from_selection_transpose() -> None:
    """k=3, s=1: the 9 wins all three windows. Sᵀ adds it three times, unpooling writes it once."""
    x = np.array([[1.0, 2.0, 9.0, 3.0, 0.0]])
    S = max_pool_matrix(x, 3, stride=1)
    y, i = max_pool(x, 3, stride=1, return_indices=True)
    assert_array_equal(S @ x.ravel(), y.ravel())
    assert_array_equal(y, [[9, 9, 9]])
    assert_array_equal(S.T @ y.ravel(), [0, 0, 27, 0, 0])
    assert_array_equal(max_unpool_matrix(i, 5) @ y.ravel(), [0, 0, 9, 0, 0])
    assert_array_equal(max_unpool(y, i, 3, stride=1, output_size=(5,)), [[0, 0, 9, 0, 0]])


# ---------------------------------------------------------------- references


def test_fixtures_without_torch() -> None:
    data = np.load(FIXTURES)
    count = seen = 0
    while f"{count}_meta" in data:
        meta = json.loads(str(data[f"{count}_meta"]))
        key = f"{count}_"
        count += 1
        if meta["kind"] != "pool":
            continue
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["kwargs"].items()}
        x = data[key + "x"]
        y, i = max_pool(x, return_indices=True, **kwargs)
        assert_array_equal(y, data[key + "y"], err_msg=str(meta))
        assert_array_equal(i, data[key + "i"], err_msg=str(meta))
        unpool = {k: v for k, v in kwargs.items() if k in ("kernel_size", "stride", "padding")}
        u = max_unpool(y, i, output_size=x.shape[2:], **unpool)
        assert_array_equal(u, data[key + "u"], err_msg=str(meta))
        seen += 1
    assert seen >= 9


@settings(max_examples=200, deadline=None)
@given(pool_cases(), st.sampled_from(["ties", "nan", "neginf"]), st.integers(0, 2**32 - 1))
def test_matches_torch(case: dict[str, Any], kind: str, seed: int) -> None:
    torch = pytest.importorskip("torch")
    fn = torch.nn.functional
    ndim = len(case["spatial"])
    x = _data(seed, (2, 3, *case["spatial"]), kind)
    geometry = _geometry(case)
    ry, ri = getattr(fn, f"max_pool{ndim}d")(torch.from_numpy(x), return_indices=True, **geometry)
    y, i = max_pool(x, return_indices=True, **geometry)
    assert_array_equal(y, ry.numpy())
    assert_array_equal(i, ri.numpy())
    assert_array_equal(max_pool(x, **geometry), y)
    unpool = getattr(fn, f"max_unpool{ndim}d")
    try:
        default = unpool(ry, ri, **_unpool_args(case)).numpy()
    except RuntimeError:  # an index beyond the default output plane
        default = None
    if default is None or default.size == 0:  # torch returns an empty plane, unchecked
        with pytest.raises(ValueError, match=r"indices must be flat|non-empty unpooled output"):
            max_unpool(y, i, **_unpool_args(case))
    else:
        assert_array_equal(max_unpool(y, i, **_unpool_args(case)), default)
    try:
        back = unpool(ry, ri, output_size=case["spatial"], **_unpool_args(case)).numpy()
    except (ValueError, RuntimeError):  # out of the unpooling's reach, or an invalid index
        with pytest.raises(ValueError, match=r"output_size must be within|indices must be flat"):
            max_unpool(y, i, output_size=case["spatial"], **_unpool_args(case))
    else:
        got = max_unpool(y, i, output_size=case["spatial"], **_unpool_args(case))
        assert_array_equal(got, back)


# ---------------------------------------------------------------- properties


@settings(max_examples=150, deadline=None)
@given(pool_cases(), st.sampled_from(["ties", "nan", "neginf"]), st.integers(0, 2**32 - 1))
def test_selection_matrix(case: dict[str, Any], kind: str, seed: int) -> None:
    """S @ x == max_pool(x); one 1 per row; M (unpool) @ y == max_unpool(y)."""
    x = _data(seed, (3, *case["spatial"]), kind)
    geometry = _geometry(case)
    geo = pool_geometry(case["spatial"], **geometry)
    assume(not empty_windows(geo))
    S = max_pool_matrix(x, **geometry)
    y, i = max_pool(x[None], return_indices=True, **geometry)
    assert (np.diff(S.indptr) == 1).all() and (S.data == 1).all()
    assert_array_equal(S @ x.ravel(), y.ravel())
    M = max_unpool_matrix(i[0], case["spatial"])
    assert M.shape == S.T.shape and (np.diff(M.indptr) <= 1).all()
    unpooled = (
        max_unpool(np.nan_to_num(y), i, output_size=case["spatial"], **_unpool_args(case))
        if _reachable(case, y.shape[2:])
        else None
    )
    if unpooled is not None:
        assert_array_equal(M @ np.nan_to_num(y).ravel(), unpooled.ravel())


def _reachable(case: dict[str, Any], pooled: tuple[int, ...]) -> bool:
    ndim = len(pooled)
    k = np.broadcast_to(case["kernel_size"], (ndim,))
    s = k if case["stride"] is None else np.broadcast_to(case["stride"], (ndim,))
    p = np.broadcast_to(case["padding"], (ndim,))
    default = (np.array(pooled) - 1) * s - 2 * p + k
    return bool((np.abs(np.array(case["spatial"]) - default) < s).all())


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(1, 3), min_size=1, max_size=3).flatmap(
        lambda k: st.tuples(
            st.just(tuple(k)),
            st.tuples(*(st.integers(ki, 3 * ki + 2) for ki in k)),
            st.integers(1, 3),
        )
    ),
    st.integers(0, 2**32 - 1),
)
def test_unpool_is_selection_transpose_without_overlap(args: Any, seed: int) -> None:
    """stride = kernel_size: no input belongs to two windows, so M == Sᵀ exactly."""
    k, spatial, channels = args
    x = np.random.default_rng(seed).integers(-3, 4, (channels, *spatial)).astype(float)
    S = max_pool_matrix(x, k)
    _, i = max_pool(x, k, return_indices=True)
    M = max_unpool_matrix(i, spatial)
    assert (M != S.T).nnz == 0
    plane = max_unpool_matrix(i[0], spatial)
    assert plane.shape == (math.prod(spatial), i[0].size)


def test_int_and_float32_data() -> None:
    assert max_pool(np.arange(8).reshape(1, 1, 8), 2).dtype == np.float64
    x32 = np.arange(8, dtype=np.float32).reshape(1, 1, 8)
    assert max_pool(x32, 2).dtype == np.float32
    assert max_pool_matrix(x32[0], 2).dtype == np.float32
    assert max_pool(np.arange(8.0).reshape(2, 4), 2).shape == (2, 2)  # 2-d is (C, L)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kernel_size": 0}, ValueError, "kernel_size must be >= 1"),
        ({"kernel_size": 2.0}, TypeError, "kernel_size must be an int"),
        ({"kernel_size": 2, "stride": 0}, ValueError, "stride must be >= 1"),
        ({"kernel_size": 3, "padding": 2}, ValueError, r"padding must be <= kernel_size // 2"),
        ({"kernel_size": 2, "padding": -1}, ValueError, "padding must be >= 0"),
        ({"kernel_size": 2, "dilation": 0}, ValueError, "dilation must be >= 1"),
        ({"kernel_size": 7}, ValueError, "kernel_size .dilated. must fit"),
        ({"kernel_size": 2, "ceil_mode": 1}, TypeError, "ceil_mode must be a bool"),
        ({"kernel_size": 2, "return_indices": "yes"}, TypeError, "return_indices must be a bool"),
        ({"kernel_size": (2, 2, 2, 2)}, ValueError, "x must have shape"),
    ],
)
def test_pool_errors(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        max_pool(np.zeros((1, 1, 4, 4)), **kwargs)


def test_pool_data_errors() -> None:
    with pytest.raises(TypeError, match="x must be a real array"):
        max_pool(np.zeros((1, 1, 4), complex), 2)
    with pytest.raises(TypeError, match="x must be a real or complex numeric array"):
        max_pool(np.array([["a", "b"]]), 2)
    with pytest.raises(ValueError, match=r"x must have shape \(C, \*spatial\) or \(\*spatial\)"):
        max_pool_matrix(np.zeros((1, 2, 4)), (2,))
    # n = 2, k = 2, d = 3, p = 1: the window reads positions -1 and 2, neither in the input.
    y, i = max_pool(np.ones((1, 1, 2)), 2, padding=1, dilation=3, return_indices=True)
    assert_array_equal(y, [[[-np.inf]]])
    assert i[0, 0, 0] == 2  # as torch: past the input
    with pytest.raises(ValueError, match="must leave every window an input position"):
        max_pool_matrix(np.ones((1, 2)), 2, padding=1, dilation=3)


def test_unpool_errors() -> None:
    y, i = max_pool(np.arange(16.0).reshape(1, 1, 4, 4), 2, return_indices=True)
    with pytest.raises(ValueError, match="indices must have the shape of x"):
        max_unpool(y, i[..., :1], 2)
    with pytest.raises(TypeError, match="indices must be an integer array"):
        max_unpool(y, i.astype(float), 2)
    with pytest.raises(ValueError, match=r"indices must be flat positions in \[0, 16\)"):
        max_unpool(y, i + 10, 2)
    with pytest.raises(ValueError, match="output_size must be within stride"):
        max_unpool(y, i, 2, output_size=(6, 4))
    with pytest.raises(ValueError, match="output_size must have 2 spatial entries"):
        max_unpool(y, i, 2, output_size=(4,))
    with pytest.raises(TypeError, match="output_size must be a sequence"):
        max_unpool(y, i, 2, output_size=4)
    with pytest.raises(ValueError, match="non-empty unpooled output"):
        max_unpool(np.ones((1, 1, 1)), np.zeros((1, 1, 1), int), 2, stride=1, padding=1)
    assert max_unpool(y, i, 2, output_size=(1, 1, 4, 5)).shape == (1, 1, 4, 5)  # full shape


def test_unpool_matrix_errors() -> None:
    with pytest.raises(
        ValueError, match=r"indices must have shape \(\*pooled\) or \(C, \*pooled\)"
    ):
        max_unpool_matrix(np.zeros((1, 1, 2, 2), int), (4, 4))
    with pytest.raises(ValueError, match=r"indices must be flat positions in \[0, 4\)"):
        max_unpool_matrix(np.array([4]), 4)
    with pytest.raises(ValueError, match="indices must be flat positions"):
        max_unpool_matrix(np.array([-1]), 4)
    with pytest.raises(TypeError, match="indices must be an integer array"):
        max_unpool_matrix(np.array([1.0]), 4)
