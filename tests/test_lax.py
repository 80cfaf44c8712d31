"""lax_conv_matrix / lax_conv_transpose_matrix: JAX live, fixtures, relations to torch's, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal

from convmat import (
    conv_matrix,
    conv_transpose_matrix,
    lax_conv_matrix,
    lax_conv_transpose_matrix,
)

FIXTURES = Path(__file__).parent / "fixtures" / "lax.npz"
Case = tuple[tuple[int, ...], np.ndarray[Any, Any], dict[str, Any]]


@pytest.fixture
def jax_x64() -> Iterator[Any]:
    """jax with float64 on for the test (restored afterwards: other tests share the process)."""
    jax = pytest.importorskip("jax")
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield jax
    finally:
        jax.config.update("jax_enable_x64", before)


def _ints(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    return rng.integers(-4, 5, shape).astype(np.float64)


def _layout(rng: np.random.Generator, nsp: int, style: str) -> tuple[str, str, str] | None:
    """Dimension numbers: None, channels first, channels last, or three random orders."""
    chars = "HWD"[:nsp]
    if style == "none":
        return None
    if style == "first":
        return ("NC" + chars, "OI" + chars, "NC" + chars)
    if style == "last":
        return ("N" + chars + "C", chars + "IO", "N" + chars + "C")
    lhs, rhs, out = ("".join(rng.permutation(list(p + chars))) for p in ("NC", "OI", "NC"))
    return (lhs, rhs, out)


def _placed(
    canon: tuple[int, ...], spec: str | None, pair: str, rhs_spec: str | None
) -> tuple[int, ...]:
    """A shape given canonically ``(pair…, *spatial in rhs order)`` in the layout ``spec``."""
    if spec is None:
        return canon
    assert rhs_spec is not None
    spatial = [c for c in rhs_spec if c not in "OI"]
    size = {pair[0]: canon[0], pair[1]: canon[1], **dict(zip(spatial, canon[2:], strict=True))}
    return tuple(size[c] for c in spec)


def draw_conv(rng: np.random.Generator) -> Case:
    """A random conv_general_dilated call (its validity is the oracle's to judge)."""
    nsp = int(rng.integers(1, 4))
    style = str(rng.choice(["none", "first", "last", "random"]))
    dn = _layout(rng, nsp, style)
    g, b = [(1, 1), (2, 1), (3, 1), (1, 2), (1, 3)][int(rng.integers(0, 5))]
    per = int(rng.integers(1, 3))
    c_in, c_out, batch = g * per, g * b * int(rng.integers(1, 3)), b * int(rng.integers(1, 3))
    top = 6 if nsp < 3 else 4
    spatial = tuple(int(v) for v in rng.integers(1, top, nsp))
    k = tuple(int(v) for v in rng.integers(1, 4, nsp))
    strides = tuple(int(v) for v in rng.integers(1, 4, nsp))
    rd = tuple(int(v) for v in rng.integers(1, 3, nsp))
    ld = tuple(int(v) for v in rng.integers(1, 4, nsp)) if rng.random() < 0.5 else None
    padding: Any
    if ld is None and rng.random() < 0.5:
        padding = str(rng.choice(["SAME", "SAME_LOWER", "VALID", "same", "valid"]))
    else:
        padding = tuple((int(lo), int(hi)) for lo, hi in rng.integers(-2, 4, (nsp, 2)))
    lhs_shape = _placed((batch, c_in, *spatial), dn and dn[0], "NC", dn and dn[1])
    rhs = _ints(rng, _placed((c_out, per, *k), dn and dn[1], "OI", dn and dn[1]))
    args = {
        "window_strides": strides,
        "padding": padding,
        "lhs_dilation": ld,
        "rhs_dilation": rd,
        "dimension_numbers": dn,
        "feature_group_count": g,
        "batch_group_count": b,
    }
    return lhs_shape, rhs, args


def draw_transpose(rng: np.random.Generator) -> Case:
    """A random conv_transpose call."""
    nsp = int(rng.integers(1, 4))
    style = str(rng.choice(["none", "first", "last", "random"]))
    dn = _layout(rng, nsp, style)
    tk = bool(rng.random() < 0.5)
    c_in, c_out, batch = (int(v) for v in rng.integers(1, 4, 3))
    top = 5 if nsp < 3 else 4
    spatial = tuple(int(v) for v in rng.integers(1, top, nsp))
    k = tuple(int(v) for v in rng.integers(1, 5, nsp))
    strides = tuple(int(v) for v in rng.integers(1, 4, nsp))
    rd = tuple(int(v) for v in rng.integers(1, 3, nsp)) if rng.random() < 0.5 else None
    padding: Any
    if rng.random() < 0.4:
        padding = str(rng.choice(["SAME", "VALID"]))
    else:
        padding = tuple((int(lo), int(hi)) for lo, hi in rng.integers(-1, 4, (nsp, 2)))
    # With transpose_kernel jax swaps O and I: the given O axis then has the lhs features.
    o, i = (c_in, c_out) if tk else (c_out, c_in)
    default = dn is None
    if default:  # jax's default is TensorFlow's channels last
        dn_place = _layout(rng, nsp, "last")
    else:
        dn_place = dn
    assert dn_place is not None
    lhs_shape = _placed((batch, c_in, *spatial), dn_place[0], "NC", dn_place[1])
    rhs = _ints(rng, _placed((o, i, *k), dn_place[1], "OI", dn_place[1]))
    args = {
        "strides": strides,
        "padding": padding,
        "rhs_dilation": rd,
        "dimension_numbers": dn,
        "transpose_kernel": tk,
        "use_consistent_padding": bool(rng.random() < 0.5),
    }
    return lhs_shape, rhs, args


def _agree(jax_fn: Any, ours: Any, case: Case, rng: np.random.Generator) -> str:
    """Ours equals jax on this case, or both refuse it; returns what happened."""
    lhs_shape, rhs, args = case
    lhs = _ints(rng, lhs_shape)
    try:
        y = np.asarray(jax_fn(lhs, rhs, **args))
    except (ValueError, TypeError):
        with pytest.raises((ValueError, TypeError)):
            ours(lhs_shape, rhs, **args)
        return "refused"
    if y.size == 0:  # jax returns an empty output; convmat refuses an empty one
        with pytest.raises(ValueError, match="non-empty output"):
            ours(lhs_shape, rhs, **args)
        return "empty"
    matrix = ours(lhs_shape, rhs, **args)
    assert isinstance(matrix, sp.csr_array)
    assert matrix.shape == (y.size, lhs.size)
    assert np.all(matrix.data != 0)  # no stored zeros (the kernel has zeros: none stored)
    assert matrix.has_sorted_indices
    assert_array_equal(matrix @ lhs.ravel(), y.ravel())
    return "equal"


def _no_zero(rhs: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.where(rhs == 0, 5.0, rhs)


# ---------------------------------------------------------------- JAX live


@pytest.mark.parametrize("seed", range(3))
def test_conv_general_dilated_grid(jax_x64: Any, seed: int) -> None:
    """Seeded draws over every argument: equal to jax, or refused where jax refuses."""
    rng = np.random.default_rng(seed)
    seen: dict[str, int] = {}
    for _ in range(30):
        lhs_shape, rhs, args = draw_conv(rng)
        outcome = _agree(
            jax_x64.lax.conv_general_dilated,
            lax_conv_matrix,
            (lhs_shape, _no_zero(rhs), args),
            rng,
        )
        seen[outcome] = seen.get(outcome, 0) + 1
    assert seen.get("equal", 0) >= 15, seen


@pytest.mark.parametrize("seed", range(3))
def test_conv_transpose_grid(jax_x64: Any, seed: int) -> None:
    """transpose_kernel and use_consistent_padding both ways, strings and pairs, 1-3 d."""
    rng = np.random.default_rng(100 + seed)
    seen: dict[str, int] = {}
    for _ in range(30):
        lhs_shape, rhs, args = draw_transpose(rng)
        outcome = _agree(
            jax_x64.lax.conv_transpose,
            lax_conv_transpose_matrix,
            (lhs_shape, _no_zero(rhs), args),
            rng,
        )
        seen[outcome] = seen.get(outcome, 0) + 1
    assert seen.get("equal", 0) >= 15, seen


@pytest.mark.parametrize(
    ("tk", "consistent", "padding"),
    [
        (tk, cp, p)
        for tk in (False, True)
        for cp in (False, True)
        for p in ("SAME", "VALID", ((1, 0), (2, 1)), ((0, -1), (1, 2)))
    ],
)
def test_conv_transpose_options(jax_x64: Any, tk: bool, consistent: bool, padding: Any) -> None:
    rng = np.random.default_rng(7)
    lhs = _ints(rng, (2, 4, 3, 3))
    rhs = _no_zero(_ints(rng, (3, 2, 3, 3)))  # HWIO: I = O = 3, so both kernel readings fit
    for strides in ((1, 1), (2, 3), (3, 2)):
        y = np.asarray(
            jax_x64.lax.conv_transpose(
                lhs,
                rhs,
                strides,
                padding,
                rhs_dilation=(1, 2),
                transpose_kernel=tk,
                use_consistent_padding=consistent,
            )
        )
        matrix = lax_conv_transpose_matrix(
            lhs.shape,
            rhs,
            strides,
            padding,
            rhs_dilation=(1, 2),
            transpose_kernel=tk,
            use_consistent_padding=consistent,
        )
        assert_array_equal(matrix @ lhs.ravel(), y.ravel())


def test_jacfwd(jax_x64: Any) -> None:
    """The matrix is jax's Jacobian (jacfwd), on small sizes of both functions."""
    jax, lax = jax_x64, jax_x64.lax
    rng = np.random.default_rng(3)
    cases = [draw_conv(rng) for _ in range(60)]
    checked = 0
    for lhs_shape, rhs, args in cases:
        try:
            matrix = lax_conv_matrix(lhs_shape, rhs, **args)
        except ValueError:
            continue

        def f(x: Any, rhs: Any = rhs, args: Any = args) -> Any:
            return lax.conv_general_dilated(x, rhs, **args)

        jac = np.asarray(jax.jacfwd(f)(np.zeros(lhs_shape)))
        assert_array_equal(matrix.toarray(), jac.reshape(matrix.shape))
        checked += 1
        if checked == 5:
            break
    assert checked == 5
    rng = np.random.default_rng(4)
    checked = 0
    for _ in range(60):
        lhs_shape, rhs, args = draw_transpose(rng)
        try:
            matrix = lax_conv_transpose_matrix(lhs_shape, rhs, **args)
        except ValueError:
            continue

        def g(x: Any, rhs: Any = rhs, args: Any = args) -> Any:
            return lax.conv_transpose(x, rhs, **args)

        jac = np.asarray(jax.jacfwd(g)(np.zeros(lhs_shape)))
        assert_array_equal(matrix.toarray(), jac.reshape(matrix.shape))
        checked += 1
        if checked == 5:
            break
    assert checked == 5


def test_conv_dimension_numbers_object(jax_x64: Any) -> None:
    """A ConvDimensionNumbers (ints) reads like its strings."""
    lax = jax_x64.lax
    rng = np.random.default_rng(5)
    lhs, rhs = _ints(rng, (2, 5, 4, 3)), _ints(rng, (3, 2, 3, 4))
    strings = ("NHWC", "HWIO", "NCHW")
    dn = lax.conv_dimension_numbers(lhs.shape, rhs.shape, strings)
    y = np.asarray(lax.conv_general_dilated(lhs, rhs, (2, 1), "SAME", dimension_numbers=dn))
    a = lax_conv_matrix(lhs.shape, rhs, (2, 1), "SAME", dimension_numbers=dn)
    b = lax_conv_matrix(lhs.shape, rhs, (2, 1), "SAME", dimension_numbers=strings)
    assert (a != b).nnz == 0
    assert_array_equal(a @ lhs.ravel(), y.ravel())


def test_jax_arrays_in(jax_x64: Any) -> None:
    jnp = jax_x64.numpy
    rhs = jnp.arange(1.0, 7.0).reshape(1, 2, 3)
    matrix = lax_conv_matrix((1, 2, 4), rhs, (1,), "VALID")
    assert_array_equal(
        matrix.toarray(), lax_conv_matrix((1, 2, 4), np.asarray(rhs), 1, "VALID").toarray()
    )


# ---------------------------------------------------------------- fixtures (no jax needed)


def fixture_cases() -> list[
    tuple[dict[str, Any], np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]
]:
    with np.load(FIXTURES) as data:
        metas = json.loads(str(data["meta"]))
        ints, outs = data["ints"].astype(np.float64), data["outs"].astype(np.float64)
    cases, at, out_at = [], 0, 0
    for meta in metas:
        n_lhs, n_rhs = int(np.prod(meta["lhs_shape"])), int(np.prod(meta["rhs_shape"]))
        n_out = int(np.prod(meta["out_shape"]))
        lhs = ints[at : at + n_lhs].reshape(meta["lhs_shape"])
        rhs = ints[at + n_lhs : at + n_lhs + n_rhs].reshape(meta["rhs_shape"])
        out = outs[out_at : out_at + n_out].reshape(meta["out_shape"])
        at, out_at = at + n_lhs + n_rhs, out_at + n_out
        cases.append((meta, lhs, rhs, out))
    assert at == ints.size and out_at == outs.size
    return cases


def test_fixtures() -> None:
    cases = fixture_cases()
    assert {m["kind"] for m, *_ in cases} == {"conv", "transpose"}
    for meta, lhs, rhs, out in cases:
        func = lax_conv_matrix if meta["kind"] == "conv" else lax_conv_transpose_matrix
        matrix = func(lhs.shape, rhs, **meta["args"])
        assert_array_equal(matrix @ lhs.ravel(), out.ravel(), err_msg=str(meta))


# ---------------------------------------------------------------- relations to torch's matrices


@pytest.mark.parametrize("seed", range(4))
def test_consistent_transpose_is_torch_conv_transpose(seed: int) -> None:
    """transpose_kernel + use_consistent_padding in NCHW/OIHW: torch's ConvTranspose, Cᵀ;
    a high pair entry p − output_padding gives torch's output_padding."""
    rng = np.random.default_rng(seed)
    for _ in range(15):
        nsp = int(rng.integers(1, 4))
        chars = "HWD"[:nsp]
        dn = ("NC" + chars, "OI" + chars, "NC" + chars)
        c_in, c_out = (int(v) for v in rng.integers(1, 4, 2))
        spatial = tuple(int(v) for v in rng.integers(1, 4, nsp))
        k = tuple(int(v) for v in rng.integers(1, 4, nsp))
        s = tuple(int(v) for v in rng.integers(1, 4, nsp))
        d = tuple(int(v) for v in rng.integers(1, 3, nsp))
        p = tuple(int(v) for v in rng.integers(0, 3, nsp))
        op = tuple(int(rng.integers(0, max(si, di))) for si, di in zip(s, d, strict=True))
        w = _no_zero(_ints(rng, (c_in, c_out, *k)))  # torch's ConvTranspose weight
        try:
            torch_like = conv_transpose_matrix(
                (c_in, *spatial), w, stride=s, padding=p, output_padding=op, dilation=d
            )
        except ValueError:
            continue
        pairs = tuple((pi, pi - oi) for pi, oi in zip(p, op, strict=True))
        lax_m = lax_conv_transpose_matrix(
            (1, c_in, *spatial),
            w,
            s,
            pairs,
            rhs_dilation=d,
            dimension_numbers=dn,
            transpose_kernel=True,
            use_consistent_padding=True,
        )
        assert lax_m.shape == torch_like.shape
        assert (lax_m != torch_like).nnz == 0


def test_transpose_kernel_is_flip_and_swap() -> None:
    rng = np.random.default_rng(11)
    rhs = _ints(rng, (3, 2, 2, 4))  # HWIO
    flipped = rhs[::-1, ::-1].swapaxes(2, 3)
    for padding in ("SAME", "VALID", ((1, 2), (0, 1))):
        a = lax_conv_transpose_matrix((2, 3, 3, 4), rhs, (2, 1), padding, transpose_kernel=True)
        b = lax_conv_transpose_matrix((2, 3, 3, 4), flipped, (2, 1), padding)
        assert (a != b).nnz == 0


def test_consistent_transpose_is_adjoint_of_conv() -> None:
    """conv_transpose with transpose_kernel and consistent padding is the gradient: Mᵀ."""
    rng = np.random.default_rng(12)
    w = _no_zero(_ints(rng, (3, 2, 3, 2)))  # OIHW of the forward conv
    dn = ("NCHW", "OIHW", "NCHW")
    # 7 + 2 − 3 = 6 and 6 + 1 − 2 = 5 are multiples of the strides: no rows left over.
    fwd = lax_conv_matrix((2, 2, 7, 6), w, (2, 5), ((1, 1), (0, 1)), dimension_numbers=dn)
    back = lax_conv_transpose_matrix(
        (2, 3, 4, 2),
        w,
        (2, 5),
        ((1, 1), (0, 1)),
        dimension_numbers=dn,
        transpose_kernel=True,
        use_consistent_padding=True,
    )
    assert (back != fwd.T).nnz == 0


def test_conv_is_block_diagonal_conv_matrix() -> None:
    rng = np.random.default_rng(13)
    w = _ints(rng, (4, 1, 2, 3))
    for padding in ("SAME", "VALID", ((2, 1), (0, 3))):
        lax_m = lax_conv_matrix((3, 2, 5, 6), w, (1, 2), padding, feature_group_count=2)
        pairs = padding
        if padding == "SAME":
            pairs = ((0, 1), (0, 1))  # out = ceil(n / s): total (6−1)·1 + 2 − 5 … per axis
        torch_like = conv_matrix(
            (2, 5, 6), w, stride=(1, 2), padding=0 if padding == "VALID" else pairs, groups=2
        )
        assert (lax_m != sp.block_diag([torch_like] * 3, format="csr")).nnz == 0


def test_lhs_dilation_is_conv_transpose_of_flipped_kernel() -> None:
    """lhs_dilation s, pads d·(k−1) − p: torch's conv_transpose (kernel flipped, I/O swapped)."""
    rng = np.random.default_rng(14)
    w = _ints(rng, (2, 3, 3, 2))  # torch ConvTranspose weight (C_in, C_out, k)
    rhs = w[:, :, ::-1, ::-1].swapaxes(0, 1)  # OIHW for lax
    for s, p, d in (((2, 2), (0, 0), (1, 1)), ((3, 1), (1, 0), (1, 2)), ((2, 3), (2, 1), (2, 1))):
        pads = tuple(
            (di * (ki - 1) - pi, di * (ki - 1) - pi)
            for ki, pi, di in zip((3, 2), p, d, strict=True)
        )
        lax_m = lax_conv_matrix((1, 2, 3, 4), rhs, (1, 1), pads, lhs_dilation=s, rhs_dilation=d)
        torch_like = conv_transpose_matrix((2, 3, 4), w, stride=s, padding=p, dilation=d)
        assert (lax_m != torch_like).nnz == 0


def test_batch_groups() -> None:
    """Output channel group b reads lhs batch entries b·N/B … (jax's rule, pinned)."""
    rhs = np.array([1.0, 10.0]).reshape(2, 1, 1)
    matrix = lax_conv_matrix((4, 1, 3), rhs, (1,), "VALID", batch_group_count=2)
    assert matrix.shape == (2 * 2 * 3, 4 * 3)
    x = np.zeros((4, 1, 3))
    x[2, 0, :] = 1.0  # third batch entry: group 1 (channel 1), output batch 0
    y = (matrix @ x.ravel()).reshape(2, 2, 3)
    assert_array_equal(y[0, 1], [10.0, 10.0, 10.0])
    assert np.count_nonzero(y) == 3


def test_dtypes_and_indices() -> None:
    w = np.ones((2, 3, 2, 2), dtype=np.float32)
    matrix = lax_conv_matrix((1, 3, 4, 4), w, (1, 1), "SAME")
    assert matrix.dtype == np.float32
    assert matrix.indices.dtype == np.int32 and matrix.indptr.dtype == np.int32
    c = lax_conv_matrix((1, 1, 3), np.array([[[1j, 2.0]]]), (1,), "VALID")
    assert c.dtype == np.complex128
    ints = lax_conv_matrix((1, 1, 3), [[[1, 2]]], (1,), "VALID")
    assert ints.dtype == np.float64


def test_max_bytes() -> None:
    with pytest.raises(MemoryError, match=r"lax conv matrix .* max_bytes=.*whole batch"):
        lax_conv_matrix((4, 3, 64, 64), np.ones((8, 3, 3, 3)), (1, 1), "SAME", max_bytes=10**5)
    with pytest.raises(MemoryError, match="max_bytes"):
        lax_conv_transpose_matrix(
            (1, 32, 32, 8), np.ones((3, 3, 8, 8)), (2, 2), "SAME", max_bytes=1000
        )


def test_import_convmat_does_not_import_jax() -> None:
    code = "import sys, convmat; print('jax' in sys.modules, 'flax' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False False"


# ---------------------------------------------------------------- errors


W = np.ones((2, 3, 2, 2))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: lax_conv_matrix(5, W, 1, "SAME"), TypeError, "lhs_shape must be a sequence"),
        (lambda: lax_conv_matrix("NCHW", W, 1, "SAME"), TypeError, "lhs_shape must be a sequence"),
        (
            lambda: lax_conv_matrix((1, 3), W[0, 0, 0], 1, "SAME"),
            ValueError,
            "lhs_shape must have a batch, a feature and at least one spatial axis; got",
        ),
        (
            lambda: lax_conv_matrix((1, 3, 0, 4), W, 1, "SAME"),
            ValueError,
            "lhs_shape must be >= 1 on every axis",
        ),
        (
            lambda: lax_conv_matrix((1, 3, 4), W, 1, "SAME"),
            ValueError,
            r"rhs must have as many axes as lhs_shape \(3\); got shape \(2, 3, 2, 2\)",
        ),
        (
            lambda: lax_conv_matrix((1, 3, 4, 4), np.ones((2, 3, 0, 2)), 1, "SAME"),
            ValueError,
            "rhs must have no empty axis",
        ),
        (
            lambda: lax_conv_matrix((1, 3, 4, 4), W.astype(str), 1, "SAME"),
            TypeError,
            "rhs must be a real or complex numeric array",
        ),
        (
            lambda: lax_conv_matrix((1, 3, 4, 4), W, (1, 0), "SAME"),
            ValueError,
            r"window_strides must be >= 1 on every axis; got \(1, 0\)",
        ),
        (
            lambda: lax_conv_matrix((1, 3, 4, 4), W, 1.5, "SAME"),
            TypeError,
            "window_strides must be an int",
        ),
        (
            lambda: lax_conv_matrix((1, 3, 4, 4), W, 1, "FULL"),
            ValueError,
            r"padding must be one of \('SAME', 'SAME_LOWER', 'VALID'\) or \(low, high\) pairs; "
            "got 'FULL'",
        ),
        (
            lambda: lax_conv_matrix((1, 3, 4, 4), W, 1, ((1, 1),)),
            ValueError,
            "padding must be one of .* or 2 \\(low, high\\) pairs, one per spatial dim",
        ),
        (
            lambda: lax_conv_matrix((1, 3, 4, 4), W, 1, (1, 1)),
            ValueError,
            r"padding must be \(low, high\) pairs; got \(1, 1\)",
        ),
        (
            lambda: lax_conv_matrix((1, 3, 4, 4), W, 1, ((1.5, 1), (0, 0))),
            TypeError,
            "padding must be an int",
        ),
        (
            lambda: lax_conv_matrix((1, 3, 4, 4), W, 1, "SAME", lhs_dilation=2),
            ValueError,
            "padding must be explicit \\(low, high\\) pairs when lhs_dilation is not 1",
        ),
        (
            lambda: lax_conv_matrix((1, 3, 4, 4), W, 1, "VALID", lhs_dilation=0),
            ValueError,
            "lhs_dilation must be >= 1 on every axis",
        ),
        (
            lambda: lax_conv_matrix((1, 3, 4, 4), W, 1, "VALID", rhs_dilation=(1, 2, 3)),
            ValueError,
            "rhs_dilation must be an int or a sequence of 2 ints",
        ),
        (
            lambda: lax_conv_matrix((1, 3, 2, 2), W, 1, ((-2, 0), (0, 0))),
            ValueError,
            r"padding must leave room for the dilated kernel on every axis \(a non-empty output\)",
        ),
        (
            lambda: lax_conv_matrix((1, 4, 4, 4), W, 1, "SAME"),
            ValueError,
            "feature_group_count must divide the lhs features into groups of the rhs input "
            r"features \(3\); got feature_group_count=1 with 4 lhs features",
        ),
        (
            lambda: lax_conv_matrix((1, 6, 4, 4), W, 1, "SAME", feature_group_count=4),
            ValueError,
            "feature_group_count must divide",
        ),
        (
            lambda: lax_conv_matrix((1, 3, 4, 4), W, 1, "SAME", feature_group_count=0),
            ValueError,
            "feature_group_count and batch_group_count must be >= 1; got 0 and 1",
        ),
        (
            lambda: lax_conv_matrix((1, 3, 4, 4), W, 1, "SAME", batch_group_count=True),
            TypeError,
            "batch_group_count must be an int",
        ),
        (
            lambda: lax_conv_matrix(
                (2, 6, 4, 4), W, 1, "SAME", feature_group_count=2, batch_group_count=2
            ),
            ValueError,
            "feature_group_count and batch_group_count must not both be > 1",
        ),
        (
            lambda: lax_conv_matrix((3, 3, 4, 4), W, 1, "SAME", batch_group_count=2),
            ValueError,
            "batch_group_count must divide the lhs batch size; got batch_group_count=2 with "
            "batch 3",
        ),
        (
            lambda: lax_conv_matrix(
                (2, 3, 4, 4), np.ones((3, 3, 2, 2)), 1, "SAME", batch_group_count=2
            ),
            ValueError,
            r"rhs output features must be a multiple of feature_group_count \* "
            "batch_group_count = 2; got 3",
        ),
        (
            lambda: lax_conv_matrix((1, 3, 4, 4), W, 1, "SAME", dimension_numbers="NCHW"),
            TypeError,
            "dimension_numbers must be None, three strings",
        ),
        (
            lambda: lax_conv_matrix(
                (1, 3, 4, 4), W, 1, "SAME", dimension_numbers=("NCH", "OIHW", "NCHW")
            ),
            ValueError,
            r"dimension_numbers\[0\] must have one character per lhs axis \(4\); got 'NCH'",
        ),
        (
            lambda: lax_conv_matrix(
                (1, 3, 4, 4), W, 1, "SAME", dimension_numbers=("NCHH", "OIHW", "NCHW")
            ),
            ValueError,
            r"dimension_numbers\[0\] must contain 'N' and 'C' exactly once",
        ),
        (
            lambda: lax_conv_matrix(
                (1, 3, 4, 4), W, 1, "SAME", dimension_numbers=("NCHW", "OIHX", "NCHW")
            ),
            ValueError,
            "dimension_numbers must name the same spatial characters",
        ),
        (
            lambda: lax_conv_matrix(
                (1, 3, 4, 4),
                W,
                1,
                "SAME",
                dimension_numbers=_Dn((0, 1, 2, 2), (0, 1, 2, 3), (0, 1, 2, 3)),
            ),
            ValueError,
            r"dimension_numbers.lhs_spec must be a permutation of range\(4\)",
        ),
        (
            lambda: lax_conv_transpose_matrix(
                (1, 4, 4, 3), np.ones((2, 2, 3, 2)), 2, "SAME", transpose_kernel=1
            ),
            TypeError,
            "transpose_kernel must be a bool; got 1",
        ),
        (
            lambda: lax_conv_transpose_matrix(
                (1, 4, 4, 3), np.ones((2, 2, 3, 2)), 2, "SAME", use_consistent_padding="yes"
            ),
            TypeError,
            "use_consistent_padding must be a bool",
        ),
        (
            lambda: lax_conv_transpose_matrix((1, 4, 4, 3), np.ones((2, 2, 3, 2)), 0, "SAME"),
            ValueError,
            r"strides must be >= 1 on every axis; got \(0, 0\)",
        ),
        (
            lambda: lax_conv_transpose_matrix((1, 4, 4, 3), np.ones((2, 2, 3, 2)), 2, "SAME_LOWER"),
            ValueError,
            "padding must be explicit \\(low, high\\) pairs when lhs_dilation is not 1",
        ),
        (
            lambda: lax_conv_transpose_matrix(
                (1, 4, 4, 3), np.ones((2, 2, 3, 2)), 1, "same", use_consistent_padding=True
            ),
            ValueError,
            "padding must be 'SAME', 'VALID' or \\(low, high\\) pairs; got 'same'",
        ),
        (
            lambda: lax_conv_transpose_matrix((1, 2, 2, 2, 2, 2), np.ones((1,) * 6), 1, "SAME"),
            ValueError,
            "dimension_numbers must be given for 4 spatial dims",
        ),
        (
            lambda: lax_conv_transpose_matrix(
                (1, 4, 4, 3), np.ones((2, 2, 3, 2)), 2, "SAME", transpose_kernel=True
            ),
            ValueError,
            "feature_group_count must divide the lhs features into groups of the rhs input",
        ),
    ],
)
def test_errors(call: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()


class _Dn:
    """A ConvDimensionNumbers look-alike (jax's is a NamedTuple with these fields)."""

    def __init__(self, lhs: tuple[int, ...], rhs: tuple[int, ...], out: tuple[int, ...]) -> None:
        self.lhs_spec, self.rhs_spec, self.out_spec = lhs, rhs, out
