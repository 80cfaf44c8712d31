"""upsample_matrix and upsample: hand cases, PyTorch and fixtures, matrix properties, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from convmat import _upsample, upsample, upsample_matrix
from tests.strategies import SCALES, UPSAMPLE_MODES, antialias_cases, resize_cases

FIXTURES = Path(__file__).parent / "fixtures" / "upsample.npz"
ALL_MODES = (*UPSAMPLE_MODES, "bed_of_nails")
TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def _kwargs(case: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in case.items() if k != "spatial"}


def _planes(U: sp.csr_array, x: np.ndarray[Any, Any], out: tuple[int, ...]) -> Any:
    """``U`` applied to every channel plane of a batch."""
    lead = x.shape[: x.ndim - len(out)]
    flat = x.reshape(-1, U.shape[1])
    return (U @ flat.T).T.reshape(*lead, *out)


def _torch(x: np.ndarray[Any, Any], case: dict[str, Any]) -> np.ndarray[Any, Any]:
    torch = pytest.importorskip("torch")
    kwargs = {k: v for k, v in _kwargs(case).items() if v is not None or k == "align_corners"}
    result: np.ndarray[Any, Any] = torch.nn.functional.interpolate(
        torch.from_numpy(x), **kwargs
    ).numpy()
    return result


# ---------------------------------------------------------------- literal cases


def test_nearest_doubles_every_sample() -> None:
    x = np.arange(6.0).reshape(1, 2, 3)
    assert_array_equal(upsample(x, scale_factor=2), np.repeat(x, 2, axis=-1))
    plane = np.arange(4.0).reshape(2, 2)
    U = upsample_matrix((2, 2), scale_factor=2)
    assert_array_equal((U @ plane.ravel()).reshape(4, 4), np.kron(plane, np.ones((2, 2))))


def test_linear_half_pixel_and_aligned_corners() -> None:
    assert_array_equal(
        upsample_matrix(2, scale_factor=2, mode="linear").toarray(),
        [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]],
    )
    assert_array_equal(
        upsample_matrix(2, size=3, mode="linear", align_corners=True).toarray(),
        [[1, 0], [0.5, 0.5], [0, 1]],
    )


def test_downsizing_is_a_resize() -> None:
    """4 → 2 linear reads coordinates 0.5 and 2.5: averages of neighbours."""
    assert_array_equal(
        upsample(np.array([[0.0, 2.0, 4.0, 8.0]]), size=2, mode="linear"), [[1.0, 6.0]]
    )
    assert_array_equal(upsample(np.array([[0.0, 1.0, 2.0, 3.0]]), scale_factor=0.5), [[0.0, 2.0]])


def test_nearest_and_nearest_exact_differ() -> None:
    """3 → 2: nearest reads ⌊1.5·o⌋ = 0, 1; nearest-exact ⌊1.5·(o + ½)⌋ = 0, 2."""
    x = np.array([[10.0, 20.0, 30.0]])
    assert_array_equal(upsample(x, size=2), [[10.0, 20.0]])
    assert_array_equal(upsample(x, size=2, mode="nearest-exact"), [[10.0, 30.0]])


def test_bed_of_nails_puts_values_at_block_corners() -> None:
    x = np.array([[[1.0, 2.0], [3.0, 4.0]]])
    y = upsample(x, scale_factor=(2, 3), mode="bed_of_nails")
    expected = np.zeros((1, 4, 6))
    expected[0, ::2, ::3] = x[0]
    assert_array_equal(y, expected)
    assert_array_equal(upsample(x, size=(4, 6), mode="bed_of_nails"), expected)
    U = upsample_matrix((2, 2), scale_factor=(2, 3), mode="bed_of_nails")
    assert U.nnz == 4 and U.shape == (24, 4)


def test_bicubic_weights_are_keys_kernel() -> None:
    """Row o = 1 of ×2: coordinate 0.25 → weights W(1.25), W(.25), W(.75), W(1.75), edge summed."""
    a = -0.75

    def w(x: float) -> float:
        x = abs(x)
        if x <= 1:
            return (a + 2) * x**3 - (a + 3) * x**2 + 1
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a

    U = upsample_matrix((1, 4), scale_factor=(1, 2), mode="bicubic").toarray()
    assert_allclose(U[1], [w(1.25) + w(0.25), w(0.75), w(1.75), 0], atol=1e-15)
    assert_allclose(U.sum(axis=1), 1, atol=1e-14)


def test_torch_quirks_as_literal_cases() -> None:
    """Cases that pin torch's arithmetic (each once failed a simpler formula)."""
    ramp = np.arange(5.0)[None, :]
    # 1-d nearest steps by 1/1.1 even though the size does not change ...
    assert_array_equal(upsample(ramp, scale_factor=1.1), [[0, 0, 1, 2, 3]])
    # ... while torch's small 2-d kernel copies an axis of unchanged size.
    plane = np.broadcast_to(ramp, (2, 5))[None]
    assert_array_equal(upsample(plane, scale_factor=(1.0, 1.1))[0, 0], ramp[0])
    # float32 and float64 coordinates pick different neighbours at scale 2.3.
    x32 = np.arange(40, dtype=np.float32)[None]
    y32, y64 = upsample(x32, scale_factor=2.3), upsample(x32.astype(np.float64), scale_factor=2.3)
    assert y32.dtype == np.float32 and np.flatnonzero(y32 != y64).tolist() == [69]
    U32 = upsample_matrix(40, scale_factor=2.3, dtype=np.float32)
    assert U32.dtype == np.float32 and U32[69, 29] == 1  # float64 picks 30
    # nearest-exact rounds ⌊(o + ½)·r − ½ + ½⌋ with a fused multiply-add: 2 → 41, o = 20.
    assert upsample(np.array([[0, 1]], dtype=np.float32), size=41, mode="nearest-exact")[0, 20] == 1


# ---------------------------------------------------------------- references


def test_fixtures_without_torch() -> None:
    """Conformance to torch outputs committed by tests/fixtures/make_upsample.py."""
    data = np.load(FIXTURES)
    count = 0
    while f"{count}_meta" in data:
        meta = json.loads(str(data[f"{count}_meta"]))
        count += 1
        if meta["kind"] == "pool":
            continue
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["kwargs"].items()}
        x, y = data[f"{count - 1}_x"], data[f"{count - 1}_y"]
        got = upsample(x, **kwargs)
        assert got.dtype == x.dtype
        assert_array_equal(np.isnan(got), np.isnan(y), err_msg=str(meta))
        tol = TOL[x.dtype]
        assert_allclose(got, y, rtol=tol, atol=tol, err_msg=str(meta))
        U = upsample_matrix(x.shape[2:], dtype=x.dtype, **kwargs)
        if meta["kind"] != "nonfinite":
            assert_allclose(_planes(U, x, y.shape[2:]), y, rtol=tol, atol=tol, err_msg=str(meta))
        if meta["kind"] == "quirk":
            assert_array_equal(got, y, err_msg=str(meta))
    assert count >= 40


@settings(max_examples=200, deadline=None)
@given(resize_cases(), st.sampled_from([np.float32, np.float64]), st.integers(0, 2**32 - 1))
def test_matches_torch_interpolate(case: dict[str, Any], dtype: Any, seed: int) -> None:
    x = np.random.default_rng(seed).standard_normal((2, 2, *case["spatial"])).astype(dtype)
    reference = _torch(x, case)
    tol = TOL[np.dtype(dtype)]
    got = upsample(x, **_kwargs(case))
    assert got.shape == reference.shape and got.dtype == x.dtype
    assert_allclose(got, reference, rtol=tol, atol=tol)
    U = upsample_matrix(case["spatial"], dtype=dtype, **_kwargs(case))
    assert_allclose(_planes(U, x, got.shape[2:]), reference, rtol=tol, atol=tol)
    if case["mode"].startswith("nearest"):
        assert_array_equal(got, reference)


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nearest_indices_sweep(mode: str, dtype: Any) -> None:
    """Every n ≤ 30 with every drawn scale and every size ≤ 40, 1-d and 2-d (both kernels)."""
    torch = pytest.importorskip("torch")
    fn = torch.nn.functional.interpolate
    for n in range(1, 31):
        ramp = np.arange(n, dtype=dtype)
        args = [{"scale_factor": f} for f in SCALES if int(n * f) >= 1]
        args += [{"size": m} for m in range(1, 41)]
        for kwargs in args:
            want = fn(torch.from_numpy(ramp[None, None]), mode=mode, **kwargs).numpy()
            assert_array_equal(upsample(ramp[None, None], mode=mode, **kwargs), want, str(kwargs))
            # 2-d: the same axis next to a short one (torch's small kernel) and a long one
            for other in (2, 100):
                plane = np.broadcast_to(ramp[:, None], (n, other))[None, None]
                two = {k: (v, 1.0 if k == "scale_factor" else other) for k, v in kwargs.items()}
                want = fn(torch.from_numpy(np.ascontiguousarray(plane)), mode=mode, **two)
                got = upsample(plane, mode=mode, **two)
                assert_array_equal(got, want.numpy(), str((n, two)))


# ---------------------------------------------------------------- properties


@settings(max_examples=150, deadline=None)
@given(resize_cases(modes=ALL_MODES))
def test_matrix_structure(case: dict[str, Any]) -> None:
    """Kronecker product of the 1-d matrices; rows of one kind; CSR clean."""
    U = upsample_matrix(case["spatial"], **_kwargs(case))
    assert U.format == "csr" and U.indices.dtype == np.int32 and U.has_sorted_indices
    assert U.nnz == np.count_nonzero(U.data)  # no stored zeros
    rows = np.diff(U.indptr)
    if case["mode"].startswith("nearest"):
        assert (rows == 1).all() and (U.data == 1).all()
    elif case["mode"] == "bed_of_nails":
        assert set(rows) <= {0, 1} and (U.data == 1).all()
    else:
        assert_allclose(U.sum(axis=1), 1, atol=1e-12)
    one_d = {"bilinear": "linear", "trilinear": "linear", "bed_of_nails": "bed_of_nails"}
    if case["mode"] in one_d:  # the N-d matrix is the Kronecker product of 1-d calls
        kron = None
        for axis, n in enumerate(case["spatial"]):
            per_axis = {
                key: value[axis] if isinstance(value, tuple) else value
                for key in ("size", "scale_factor")
                if (value := case[key]) is not None
            }
            factor = upsample_matrix(
                n, mode=one_d[case["mode"]], align_corners=case["align_corners"], **per_axis
            )
            kron = factor if kron is None else sp.kron(kron, factor)
        assert kron is not None and abs(kron - U).max() == 0


@settings(max_examples=150, deadline=None)
@given(
    resize_cases(modes=ALL_MODES),
    st.integers(0, 2**32 - 1),
    st.booleans(),
)
def test_fast_path_equals_matrix(case: dict[str, Any], seed: int, batched: bool) -> None:
    shape = ((2,) if batched else ()) + (3, *case["spatial"])
    x = np.random.default_rng(seed).integers(-3, 4, shape).astype(np.float64)
    for key in ("size", "scale_factor"):  # an unbatched x needs a rank-fixing sequence
        if not batched and case[key] is not None and not isinstance(case[key], tuple):
            case = {**case, key: (case[key],) * len(case["spatial"])}
    y = upsample(x, **_kwargs(case))
    U = upsample_matrix(case["spatial"], **_kwargs(case))
    assert_allclose(y, _planes(U, x, y.shape[x.ndim - len(case["spatial"]) :]), atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(
    resize_cases(modes=("linear", "bilinear", "bicubic", "trilinear")), st.integers(0, 2**32 - 1)
)
def test_gather_and_gemm_passes_agree(case: dict[str, Any], seed: int) -> None:
    """Finite data on short axes takes the dense GEMM pass; forcing the gathers changes nothing."""
    x = np.random.default_rng(seed).standard_normal((2, *case["spatial"]))
    gemm = upsample(x, **_kwargs(case))
    with mock.patch.object(_upsample, "DENSE_MAX", 0):
        gather = upsample(x, **_kwargs(case))
    assert_allclose(gemm, gather, rtol=1e-12, atol=1e-12)


def test_long_axis_takes_the_gathers() -> None:
    x = np.random.default_rng(1).standard_normal((1, 2, _upsample.DENSE_MAX + 45))
    case = {"scale_factor": 1.7, "mode": "linear", "align_corners": None, "size": None}
    reference = _torch(x, {"spatial": x.shape[2:], **case})
    assert_allclose(upsample(x, **case), reference, rtol=1e-12, atol=1e-12)


def test_dtypes() -> None:
    ints = np.arange(6).reshape(1, 1, 6)
    assert upsample(ints, scale_factor=2).dtype == np.float64
    assert upsample(ints.astype(np.float16), scale_factor=2).dtype == np.float16
    z = np.array([[1 + 2j, 3 - 1j]])
    assert_array_equal(
        upsample(z, scale_factor=2, mode="linear"),
        upsample(z.real, scale_factor=2, mode="linear")
        + 1j * upsample(z.imag, scale_factor=2, mode="linear"),
    )
    assert upsample_matrix(4, scale_factor=2, dtype="float32").dtype == np.float32
    assert upsample(np.zeros((0, 2, 3)), scale_factor=2).shape == (0, 2, 6)


def test_nonfinite_spread_without_warnings() -> None:
    """inf next to a zero weight gives NaN, as in torch; no RuntimeWarning escapes."""
    x = np.array([[0.0, np.inf, 1.0]])
    y = upsample(x, scale_factor=2, mode="linear")
    assert np.isnan(y).any() and np.isinf(y).any()


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"scale_factor": 2, "mode": "cubic"}, ValueError, "mode must be one of"),
        ({"scale_factor": 2, "mode": 3}, TypeError, "mode must be one of"),
        ({}, ValueError, "got neither"),
        ({"size": 4, "scale_factor": 2}, ValueError, "exactly one of them; got size=4"),
        ({"size": 0}, ValueError, "size must be >= 1"),
        ({"size": 2.5}, TypeError, "size must be an int"),
        ({"size": (4, 4, 4)}, ValueError, "size must be an int or a sequence of 2 ints"),
        ({"scale_factor": 0}, ValueError, "scale_factor must be finite and > 0"),
        ({"scale_factor": -2.0}, ValueError, "scale_factor must be finite and > 0"),
        ({"scale_factor": float("inf")}, ValueError, "scale_factor must be finite and > 0"),
        ({"scale_factor": "2"}, TypeError, "scale_factor must be a real number"),
        ({"scale_factor": True}, TypeError, "scale_factor must be a real number"),
        ({"scale_factor": (2, 2, 2)}, ValueError, "sequence of 2 numbers"),
        ({"scale_factor": 0.1}, ValueError, "output of at least 1"),
        ({"scale_factor": 2, "align_corners": True}, ValueError, "align_corners must be None"),
        (
            {"scale_factor": 2, "mode": "bed_of_nails", "align_corners": False},
            ValueError,
            "align_corners must be None",
        ),
        (
            {"scale_factor": 2, "mode": "bilinear", "align_corners": 1},
            TypeError,
            "align_corners must be a bool",
        ),
        ({"scale_factor": 2, "mode": "linear"}, ValueError, "spatial must have 1 dims"),
        ({"scale_factor": 2, "mode": "trilinear"}, ValueError, "spatial must have 3 dims"),
        ({"scale_factor": 1.5, "mode": "bed_of_nails"}, ValueError, "whole number"),
        ({"size": (6, 7), "mode": "bed_of_nails"}, ValueError, "multiple of the input"),
        ({"scale_factor": 2, "dtype": np.int64}, TypeError, "dtype must be float32 or float64"),
        ({"scale_factor": 2, "dtype": "nonsense"}, TypeError, "dtype must be float32"),
    ],
)
def test_matrix_errors(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        upsample_matrix((3, 4), **kwargs)


def test_spatial_errors() -> None:
    with pytest.raises(ValueError, match="spatial must be >= 1"):
        upsample_matrix((0, 3), scale_factor=2)
    with pytest.raises(ValueError, match="spatial must have 2 dims for mode='bicubic'"):
        upsample_matrix((3, 3, 3), scale_factor=2, mode="bicubic")


def test_memory_error_names_the_size_and_the_way_out() -> None:
    with pytest.raises(MemoryError, match=r"needs about 3\.0 MiB.*max_bytes=.*convmat\.upsample"):
        upsample_matrix((64, 64), scale_factor=2, mode="bicubic", max_bytes=1000)


@pytest.mark.parametrize(
    ("x", "kwargs", "error", "match"),
    [
        (
            np.zeros((2, 3, 4, 4)),
            {"scale_factor": 2, "mode": "linear"},
            ValueError,
            r"x must have shape \(C, \*spatial\) or \(N, C, \*spatial\) with 1 spatial dims",
        ),
        (np.zeros(4), {"scale_factor": 2}, ValueError, r"x must have shape \(C, L\)"),
        (np.zeros((1, 4)), {"scale_factor": (2, 2)}, ValueError, "with 2 spatial dims"),
        (np.array(["a", "b"]), {"scale_factor": 2}, TypeError, "x must be a real or complex"),
        (np.zeros((1, 1, 4)), {"scale_factor": 2, "mode": "cubic"}, ValueError, "mode must be"),
    ],
)
def test_fast_path_errors(
    x: Any, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        upsample(x, **kwargs)


# ---------------------------------------------------------------- antialias


def _torch_aa(x: np.ndarray[Any, Any], case: dict[str, Any]) -> np.ndarray[Any, Any]:
    """torch's anti-aliased interpolate, fed channels-last when the output is one column wide.

    torch 2.13's contiguous (NCHW) kernel returns wrong values when a height resize
    runs on a plane one column wide (it repeats the first sample, or zeros); its
    channels-last kernel, the same filter, is right there.
    """
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(x)
    kwargs = {k: v for k, v in _kwargs(case).items() if v is not None or k == "align_corners"}
    if upsample(x, **_kwargs(case)).shape[-1] == 1:
        t = t.contiguous(memory_format=torch.channels_last)
    result: np.ndarray[Any, Any] = torch.nn.functional.interpolate(t, **kwargs).numpy()
    return result


def test_antialias_widens_the_tent_when_shrinking() -> None:
    """4 → 2: centre 1, tent of half-width 2: taps 0, 1, 2 weigh ¾, ¾, ¼, normalised by 7/4."""
    A = upsample_matrix((1, 4), size=(1, 2), mode="bilinear", antialias=True)
    assert_allclose(A.toarray(), np.array([[3, 3, 1, 0], [0, 1, 3, 3]]) / 7, rtol=1e-15)
    plain = upsample_matrix((1, 4), size=(1, 2), mode="bilinear")
    assert_array_equal(plain.toarray(), [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])
    # an axis of unchanged size is copied
    assert_array_equal(
        upsample_matrix((3, 4), size=(3, 2), mode="bicubic", antialias=True).toarray()[:2, :4],
        upsample_matrix((1, 4), size=(1, 2), mode="bicubic", antialias=True).toarray()[:, :4]
        * [[1], [1]],
    )


def test_antialias_when_enlarging() -> None:
    """Measured against torch: enlarging, antialias changes nothing for bilinear without
    align_corners, but changes bilinear with it (centres stay at r·(o + ½)) and bicubic
    (Keys' A = −½, weights renormalised at the borders)."""
    x = np.random.default_rng(5).standard_normal((1, 2, 6, 7))
    for mode, corners, same in [
        ("bilinear", False, True),
        ("bilinear", True, False),
        ("bicubic", False, False),
        ("bicubic", True, False),
    ]:
        kwargs: dict[str, Any] = {"scale_factor": 2.5, "mode": mode, "align_corners": corners}
        aa = upsample(x, antialias=True, **kwargs)
        case = {"spatial": (6, 7), "size": None, "antialias": True, **kwargs}
        assert_allclose(aa, _torch_aa(x, case), rtol=1e-12, atol=1e-12)
        assert np.allclose(aa, upsample(x, **kwargs), rtol=1e-12, atol=1e-12) == same, mode


def test_antialias_one_column_wide() -> None:
    """The shape on which torch's NCHW kernel is wrong: the result is the 1-d filter."""
    x = np.arange(8.0).reshape(1, 1, 8, 1)
    got = upsample(x, size=(4, 1), mode="bilinear", antialias=True)
    one_d = upsample(x.reshape(1, 1, 1, 8), size=(1, 4), mode="bilinear", antialias=True)
    assert_allclose(got.ravel(), one_d.ravel(), rtol=1e-15)
    assert_allclose(got.ravel(), [5 / 7, 2.5, 4.5, 44 / 7], rtol=1e-14)


@settings(max_examples=300, deadline=None)
@given(antialias_cases(), st.sampled_from([np.float32, np.float64]), st.integers(0, 2**32 - 1))
def test_antialias_matches_torch(case: dict[str, Any], dtype: Any, seed: int) -> None:
    x = np.random.default_rng(seed).standard_normal((2, 2, *case["spatial"])).astype(dtype)
    reference = _torch_aa(x, case)
    tol = TOL[np.dtype(dtype)]
    got = upsample(x, **_kwargs(case))
    assert got.shape == reference.shape and got.dtype == x.dtype
    assert_allclose(got, reference, rtol=tol, atol=tol)
    U = upsample_matrix(case["spatial"], dtype=dtype, **_kwargs(case))
    assert U.dtype == dtype and U.nnz == np.count_nonzero(U.data) and U.has_sorted_indices
    assert_allclose(_planes(U, x, got.shape[2:]), reference, rtol=tol, atol=tol)
    with mock.patch.object(_upsample, "DENSE_MAX", 0):  # the gather passes
        assert_allclose(upsample(x, **_kwargs(case)), reference, rtol=tol, atol=tol)


def test_antialias_nonfinite_like_torch() -> None:
    """Gathers skip taps past a window (no 0·inf) but keep zero weights inside it, as torch."""
    x = np.random.default_rng(7).standard_normal((1, 2, 9, 11))
    x[0, 0, 2, 3], x[0, 1, 5, 5], x[0, 0, 7, 1] = np.inf, -np.inf, np.nan
    for mode in ("bilinear", "bicubic"):
        for kwargs in ({"size": (4, 5)}, {"size": (13, 4)}, {"scale_factor": (0.45, 1.7)}):
            case = {"spatial": (9, 11), "mode": mode, "antialias": True, **kwargs}
            case = {"size": None, "scale_factor": None, "align_corners": None, **case}
            reference = _torch_aa(x, case)
            got = upsample(x, **_kwargs(case))
            assert_array_equal(np.isnan(got), np.isnan(reference), err_msg=str(kwargs))
            assert_allclose(got, reference, rtol=1e-12, atol=1e-12, err_msg=str(kwargs))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"mode": "nearest"}, ValueError, "antialias must be False for mode='nearest'"),
        ({"mode": "area"}, ValueError, "antialias must be False for mode='area'"),
        ({"mode": "bed_of_nails"}, ValueError, "antialias must be False for mode='bed_of_nails'"),
        ({"mode": "bilinear", "antialias": 1}, TypeError, "antialias must be a bool"),
        ({"mode": "bicubic", "antialias": "yes"}, TypeError, "antialias must be a bool"),
    ],
)
def test_antialias_errors(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    kwargs = {"antialias": True, **kwargs}
    with pytest.raises(error, match=match):
        upsample_matrix((4, 4), scale_factor=2, **kwargs)
    with pytest.raises(error, match=match):
        upsample(np.zeros((1, 1, 4, 4)), scale_factor=2, **kwargs)
    with pytest.raises(ValueError, match="antialias must be False for mode='linear'"):
        upsample(np.zeros((1, 1, 4)), scale_factor=2, mode="linear", antialias=True)


def test_area_rejects_align_corners() -> None:
    with pytest.raises(ValueError, match="align_corners must be None for mode='area'"):
        upsample_matrix((4, 4), size=2, mode="area", align_corners=False)
