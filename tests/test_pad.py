"""pad and pad_matrix: hand cases, PyTorch live and from fixtures, matrix == function, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from convmat import pad, pad_matrix
from tests.strategies import PAD_MODES, pad_cases

FIXTURES = Path(__file__).parent / "fixtures" / "ops.npz"


def fixture_cases(kind: str) -> list[tuple[dict[str, Any], dict[str, np.ndarray[Any, Any]]]]:
    """The cases of ``kind`` in ops.npz: (meta, arrays), ``x`` in its torch dtype."""
    with np.load(FIXTURES) as data:
        metas = json.loads(str(data["meta"]))
        blobs = {"ints": data["ints"], "outs": data["outs"]}
    cases = []
    for meta in metas:
        if meta["kind"] != kind:
            continue
        arrays = {}
        for key, (blob, offset, shape) in meta["arrays"].items():
            size = int(np.prod(shape))
            arrays[key] = blobs[blob][offset : offset + size].reshape(shape).astype(np.float64)
        arrays["x"] = arrays["x"].astype(meta["dtype"])
        cases.append((meta, arrays))
    return cases


def _planes(x: np.ndarray[Any, Any], pad_: tuple[int, ...]) -> int:
    return x.ndim - len(pad_) // 2


# ---------------------------------------------------------------- by hand


def test_reflect_replicate_circular_by_hand() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert_array_equal(pad(x, (2, 1), mode="reflect"), [3, 2, 1, 2, 3, 4, 3])
    assert_array_equal(pad(x, (2, 1), mode="replicate"), [1, 1, 1, 2, 3, 4, 4])
    assert_array_equal(pad(x, (2, 1), mode="circular"), [3, 4, 1, 2, 3, 4, 1])
    assert_array_equal(pad(x, (2, 1)), [0, 0, 1, 2, 3, 4, 0])
    assert_array_equal(pad(x, (2, 1), value=-1), [-1, -1, 1, 2, 3, 4, -1])


def test_negative_entries_crop() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert_array_equal(pad(x, (-1, -2)), [2, 3])
    assert_array_equal(pad(x, (-2, 0), mode="circular"), [3, 4, 5])
    # reflect and replicate pad first, then crop: the mirror is about the original edge
    assert_array_equal(pad(x, (3, -2), mode="reflect"), [4, 3, 2, 1, 2, 3])
    assert_array_equal(pad(x, (-4, 4), mode="reflect"), [5, 4, 3, 2, 1])
    assert_array_equal(pad(x, (-3, 2), mode="replicate"), [4, 5, 5, 5])
    # circular crops first, then wraps around what is left
    assert_array_equal(pad(x, (2, -1), mode="circular"), [3, 4, 1, 2, 3, 4])
    assert pad(x, (-5, 0)).shape == (0,)


def test_2d_by_hand_and_the_matrix_picture() -> None:
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert_array_equal(pad(x, (1, 0, 0, 1), mode="replicate"), [[1, 1, 2], [3, 3, 4], [3, 3, 4]])
    P = pad_matrix((2, 2), (1, 0, 0, 1), mode="replicate")
    assert_array_equal(
        P.toarray(),
        [
            [1, 0, 0, 0],
            [1, 0, 0, 0],
            [0, 1, 0, 0],
            [0, 0, 1, 0],
            [0, 0, 1, 0],
            [0, 0, 0, 1],
            [0, 0, 1, 0],
            [0, 0, 1, 0],
            [0, 0, 0, 1],
        ],
    )


def test_pad_covers_only_the_last_axes() -> None:
    x = np.arange(24.0).reshape(2, 3, 4)
    y = pad(x, (1, 1), mode="reflect")
    assert y.shape == (2, 3, 6)
    assert_array_equal(y[..., 1:-1], x)
    P = pad_matrix((3, 4), (1, 1), mode="reflect")
    assert_array_equal(P @ x[0].ravel(), y[0].ravel())


def test_pads_every_axis_of_any_rank() -> None:
    """Beyond torch: non-constant modes on all axes of an array of any rank."""
    x = np.arange(6.0).reshape(2, 3)
    assert_array_equal(
        pad(x, (1, 0, 1, 0), mode="circular"), [[5, 3, 4, 5], [2, 0, 1, 2], [5, 3, 4, 5]]
    )
    x4 = np.arange(16.0).reshape(2, 2, 2, 2)
    y = pad(x4, (1,) * 8, mode="replicate")
    assert y.shape == (4, 4, 4, 4)
    assert_array_equal(pad_matrix(x4.shape, (1,) * 8, mode="replicate") @ x4.ravel(), y.ravel())


# ---------------------------------------------------------------- the constant mode is affine


@settings(max_examples=80, deadline=None)
@given(pad_cases(), st.integers(-3, 3), st.integers(0, 2**32 - 1))
def test_matrix_equals_function(case: dict[str, Any], value: int, seed: int) -> None:
    x = np.random.default_rng(seed).integers(-3, 4, case["shape"]).astype(float)
    fill = value if case["mode"] == "constant" else 0
    y = pad(x, case["pad"], mode=case["mode"], value=fill)
    plane = case["shape"][_planes(x, case["pad"]) :]
    P = pad_matrix(plane, case["pad"], mode=case["mode"])
    flat = x.reshape(-1, P.shape[1])
    rows = flat @ P.T + fill * (1 - P @ np.ones(P.shape[1]))
    assert_array_equal(rows, y.reshape(flat.shape[0], -1))
    assert P.has_sorted_indices and P.indices.dtype == np.int32
    assert set(np.unique(P.data)) <= {1.0} and np.all(np.diff(P.indptr) <= 1)
    if case["mode"] != "constant":  # every cell has a source
        assert_array_equal(np.diff(P.indptr), 1)


# ---------------------------------------------------------------- PyTorch, live and fixtures


@settings(max_examples=150, deadline=None)
@given(pad_cases(), st.integers(0, 2**32 - 1))
def test_against_torch(case: dict[str, Any], seed: int) -> None:
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(seed).standard_normal(case["shape"])
    kw: dict[str, Any] = {"mode": case["mode"]}
    if case["mode"] == "constant":
        kw["value"] = 1.5
    reference = torch.nn.functional.pad(torch.from_numpy(x), case["pad"], **kw).numpy()
    assert_array_equal(pad(x, case["pad"], **kw), reference)
    assert_array_equal(pad(torch.from_numpy(x), case["pad"], **kw), reference)


def test_refuses_what_torch_gets_wrong() -> None:
    """torch's circular mode reads uninitialised memory when a pad exceeds what a crop left."""
    with pytest.raises(ValueError, match="size left after cropping"):
        pad(np.ones(2), (-1, 2), mode="circular")


def test_fixtures() -> None:
    cases = fixture_cases("pad")
    assert len(cases) >= 12
    for meta, arrays in cases:
        x, pad_, mode = arrays["x"], tuple(meta["pad"]), meta["mode"]
        y = pad(x, pad_, mode=mode, value=meta["value"])
        assert y.dtype == x.dtype
        assert_array_equal(y, arrays["y"])
        plane = x.shape[_planes(x, pad_) :]
        P = pad_matrix(plane, pad_, mode=mode, dtype=x.dtype)
        rows = x.reshape(-1, P.shape[1]) @ P.T + meta["value"] * (1 - P @ np.ones(P.shape[1]))
        assert_array_equal(rows.reshape(y.shape), arrays["y"])


# ---------------------------------------------------------------- dtypes, adjoint


@pytest.mark.parametrize("mode", PAD_MODES)
def test_dtypes(mode: str) -> None:
    x32 = np.ones((2, 3), dtype=np.float32)
    assert pad(x32, (1, 1), mode=mode).dtype == np.float32
    assert pad(np.ones((2, 3), dtype=int), (1, 1), mode=mode).dtype == np.float64
    xc = np.ones(3) * (1 + 2j)
    assert pad(xc, (1, 1), mode=mode).dtype == np.complex128
    assert pad_matrix(3, (1, 1), mode=mode, dtype=np.float32).dtype == np.float32


def test_pad_copies() -> None:
    x = np.ones(3)
    y = pad(x, (0, 0), mode="reflect")
    y[0] = 5
    assert x[0] == 1


def test_adjoint() -> None:
    from convmat.testing import dot_test

    for mode in PAD_MODES:
        dot_test(pad_matrix((4, 3), (2, -1, 1, 2), mode=mode))


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (((1,),), {}, ValueError, r"pad must have an even number of entries .*; got \(1,\)"),
        (((1, 1, 1, 1),), {}, ValueError, "pad must cover at most the 1 axes"),
        (((1.5, 1),), {}, TypeError, "pad must be an int or a sequence of ints; got 1.5"),
        ((2,), {}, TypeError, "pad must be a sequence of ints"),
        (((1, 1),), {"mode": "edge"}, ValueError, "mode must be one of"),
        (((1, 1),), {"mode": "reflect", "value": 1}, ValueError, "value must be 0 for mode="),
        (((1, 1),), {"value": "a"}, TypeError, "value must be a real number; got 'a'"),
        (((1, 1),), {"value": 1j}, TypeError, "value must be a real number"),
        (((3, 0),), {"mode": "reflect"}, ValueError, r"pad must be < the input size .*\(3, 0\)"),
        (((4, 0),), {"mode": "circular"}, ValueError, "pad must be <= the input size"),
        (((-2, -1),), {"mode": "replicate"}, ValueError, "output size >= 1 .*output 0"),
        (((-3, 0),), {"mode": "reflect"}, ValueError, "output size >= 1"),
        (((-4, 1),), {}, ValueError, "pad must crop at most the input size"),
        (((-2, -2),), {"mode": "circular"}, ValueError, "output size >= 0 .*output -1"),
    ],
)
def test_errors(args: tuple[Any, ...], kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        pad(np.ones(3), *args, **kwargs)
    if "value" not in kwargs:
        with pytest.raises(error, match=match):
            pad_matrix(3, *args, **kwargs)


def test_matrix_errors() -> None:
    with pytest.raises(ValueError, match="spatial must be >= 1"):
        pad_matrix((0, 3), (1, 1))
    with pytest.raises(TypeError, match="dtype must be a float or complex dtype; got int64"):
        pad_matrix(3, (1, 1), dtype=np.int64)
    with pytest.raises(MemoryError, match=r"pad matrix .* max_bytes"):
        pad_matrix((100, 100), (1, 1, 1, 1), max_bytes=1000)
    with pytest.raises(TypeError, match="x must be a real or complex numeric array"):
        pad(np.array(["a"]), (1, 1))
