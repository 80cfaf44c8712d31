"""Winograd minimal filtering (convmat._fast.winograd).

Oracles: the defining identity of every F(m, r) in exact fractions; the direct
tap-sum engine (float64, 1e-12 normwise) on hypothesis geometries; PyTorch live
(float64 agreement, float32 error against its own); NaN/inf patterns of the
direct engine; the refusals.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from convmat._fast import direct, winograd
from convmat._fast.cost import Counts
from convmat._layer import Layer, conv_layer, conv_transpose_layer

Array = np.ndarray[Any, Any]
MODES = ("zeros", "reflect", "replicate", "circular")


def _error(got: Array, ref: Array) -> float:
    """Normwise relative error: max|got − ref| / max|ref|."""
    scale = float(np.abs(ref).max())
    return float(np.abs(got - ref).max()) / (scale if scale else 1.0)


# ---------------------------------------------------------------- the transforms


@pytest.mark.parametrize(
    ("m", "r"), [(m, r) for m in range(1, 9) for r in range(1, 8) if m + r - 2 <= 10]
)
def test_transforms_satisfy_the_defining_identity(m: int, r: int) -> None:
    """Aᵀ[(G g) ⊙ (Bᵀ d)] is the correlation of d with g, exactly (checked on the basis:
    the identity is bilinear in d and g)."""
    at, g, bt = winograd.exact_transforms(m, r)
    alpha = m + r - 1
    assert (len(at), len(at[0]), len(g), len(g[0]), len(bt), len(bt[0])) == (
        m,
        alpha,
        alpha,
        r,
        alpha,
        alpha,
    )
    for i, k in itertools.product(range(alpha), range(r)):
        # d = e_i, g = e_k: y[o] = g[k]·d[o + k] = 1 where o + k = i.
        y = [sum(at[o][j] * g[j][k] * bt[j][i] for j in range(alpha)) for o in range(m)]
        assert y == [Fraction(int(o + k == i)) for o in range(m)]


def test_f23_matches_lavin_and_gray() -> None:
    """F(2, 3) with points 0, ±1, ∞: the matrices of Lavin & Gray up to row signs."""
    at, g, bt = winograd.exact_transforms(2, 3)
    assert [list(map(int, row)) for row in at] == [[1, 1, 1, 0], [0, 1, -1, 1]]
    assert [[abs(v) for v in row] for row in bt] == [
        [1, 0, 1, 0],
        [0, 1, 1, 0],
        [0, 1, 1, 0],
        [0, 1, 0, 1],
    ]
    assert [[abs(v) for v in row] for row in g] == [
        [1, 0, 0],
        [Fraction(1, 2)] * 3,
        [Fraction(1, 2)] * 3,
        [0, 0, 1],
    ]


def test_transforms_cast_and_cached() -> None:
    at, g, bt = winograd.transforms(4, 3, np.float32)
    assert at.dtype == g.dtype == bt.dtype == np.float32
    assert (at.shape, g.shape, bt.shape) == ((4, 6), (6, 3), (6, 6))
    assert winograd.transforms(4, 3, np.float32)[0] is at
    assert not at.flags.writeable
    exact = winograd.exact_transforms(4, 3)[2]
    assert_array_equal(winograd.transforms(4, 3, np.float64)[2], np.array(exact, dtype=float))


def test_transform_refusals() -> None:
    with pytest.raises(ValueError, match="m and r must be >= 1; got m=0, r=3"):
        winograd.exact_transforms(0, 3)
    with pytest.raises(ValueError, match="m \\+ r must be <= 12; got m=9, r=4"):
        winograd.exact_transforms(9, 4)


# ---------------------------------------------------------------- against the direct engine


@st.composite
def stride_one_layers(draw: Any) -> tuple[dict[str, Any], int, bool]:
    """A stride-1, undilated layer (any padding mode), a batch size and whether to use a bias."""
    ndim = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 3))
    k = [draw(st.integers(1, 5 if ndim < 3 else 3)) for _ in range(ndim)]
    mode = draw(st.sampled_from(MODES))
    pads = [(draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(ndim)]
    spatial = []
    for (lo, hi), ki in zip(pads, k, strict=True):
        low = max(1, ki - lo - hi)
        if mode == "reflect":
            low = max(low, max(lo, hi) + 1)
        elif mode == "circular":
            low = max(low, lo, hi)
        spatial.append(draw(st.integers(low, low + (9 if ndim < 3 else 4))))
    layer = {
        "input_shape": (c_in, *spatial),
        "weight_shape": (c_out, c_in // groups, *k),
        "padding": tuple(pads),
        "groups": groups,
        "padding_mode": mode,
    }
    return layer, draw(st.integers(1, 3)), draw(st.booleans())


def _arrays(
    rng: np.random.Generator, layer: Layer, n: int, bias: bool, transposed: bool
) -> tuple[Array, Array, Array | None]:
    if transposed:
        x = rng.standard_normal((n, layer.out_channels, *layer.out_spatial))
        w = rng.standard_normal(
            (layer.out_channels, layer.in_channels // layer.groups, *layer.kernel_size)
        )
        b = rng.standard_normal(layer.in_channels) if bias else None
    else:
        x = rng.standard_normal((n, *layer.input_shape))
        w = rng.standard_normal(layer.weight_shape)
        b = rng.standard_normal(layer.out_channels) if bias else None
    return x, w, b


@settings(max_examples=40, deadline=None)
@given(stride_one_layers(), st.integers(0, 2**32 - 1))
def test_conv_matches_direct_float64(case: tuple[dict[str, Any], int, bool], seed: int) -> None:
    kwargs, n, use_bias = case
    layer = conv_layer(kwargs.pop("input_shape"), kwargs.pop("weight_shape"), **kwargs)
    assert winograd.why_not(layer, transposed=False) is None
    x, w, b = _arrays(np.random.default_rng(seed), layer, n, use_bias, False)
    before = x.copy()
    with np.errstate(**direct.QUIET):
        got = winograd.conv(x, w, layer, b)
        ref = direct.conv_engine(x, w, layer, b)
    assert got.shape == ref.shape and got.dtype == ref.dtype
    assert got.flags.c_contiguous
    assert _error(got, ref) <= 1e-12
    assert_array_equal(x, before)


@st.composite
def stride_one_transposed(draw: Any) -> tuple[Layer, int, bool]:
    ndim = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 3))
    k = [draw(st.integers(1, 5 if ndim < 3 else 3)) for _ in range(ndim)]
    spatial = [draw(st.integers(1, 9 if ndim < 3 else 5)) for _ in range(ndim)]
    pads = []
    for n, ki in zip(spatial, k, strict=True):
        room = n - 1 + ki - 1  # output = room + 1 − lo − hi >= 1
        lo = draw(st.integers(0, min(3, room)))
        pads.append((lo, draw(st.integers(0, min(3, room - lo)))))
    layer = conv_transpose_layer(
        (c_in, *spatial), (c_in, c_out // groups, *k), padding=tuple(pads), groups=groups
    )
    return layer, draw(st.integers(1, 3)), draw(st.booleans())


@settings(max_examples=40, deadline=None)
@given(stride_one_transposed(), st.integers(0, 2**32 - 1))
def test_conv_transpose_matches_direct_float64(case: tuple[Layer, int, bool], seed: int) -> None:
    layer, n, use_bias = case
    assert winograd.why_not(layer, transposed=True) is None
    y, w, b = _arrays(np.random.default_rng(seed), layer, n, use_bias, True)
    with np.errstate(**direct.QUIET):
        got = winograd.conv_transpose(y, w, layer, b)
        ref = direct.conv_transpose_engine(y, w, layer, b)
    assert got.shape == ref.shape and got.flags.c_contiguous
    assert _error(got, ref) <= 1e-12


@pytest.mark.parametrize("tile", [(2, 3), (3, 3), (4, 3), (6, 3), (1, 3)])
def test_every_tile_size_float64(tile: tuple[int, int]) -> None:
    """Each F(m, 3) on a 2-d layer whose output is not a whole number of tiles."""
    rng = np.random.default_rng(0)
    layer = conv_layer((6, 11, 13), (4, 3, 3, 3), padding=1, groups=2)
    x, w, b = _arrays(rng, layer, 2, True, False)
    got = winograd._winograd(x, w, list(layer.padding), 2, b, layer.out_spatial, (tile, tile))
    assert _error(got, direct.conv_engine(x, w, layer, b)) <= 1e-12


def test_input_smaller_than_one_tile() -> None:
    rng = np.random.default_rng(1)
    layer = conv_layer((3, 1, 2), (2, 3, 3, 3), padding=2)
    x, w, b = _arrays(rng, layer, 1, True, False)
    assert _error(winograd.conv(x, w, layer, b), direct.conv_engine(x, w, layer, b)) <= 1e-12


def test_cropping_transposed_padding() -> None:
    """padding > k − 1 crops the input: the equivalent forward pad is negative."""
    rng = np.random.default_rng(2)
    layer = conv_transpose_layer((2, 9, 8), (2, 3, 2, 3), padding=((3, 2), (0, 3)))
    y, w, b = _arrays(rng, layer, 2, False, True)
    got = winograd.conv_transpose(y, w, layer, b)
    assert _error(got, direct.conv_transpose_engine(y, w, layer, b)) <= 1e-12


def test_empty_batch() -> None:
    layer = conv_layer((2, 5, 5), (3, 2, 3, 3), padding=1)
    x = np.zeros((0, 2, 5, 5))
    y = winograd.conv(x, np.ones((3, 2, 3, 3)), layer, None)
    assert y.shape == (0, 3, 5, 5)


# ---------------------------------------------------------------- against PyTorch


TORCH_CASES = [
    ((2, 4, 13, 10), (6, 4, 3, 3), {"padding": 1}),
    ((1, 6, 9, 9), (6, 2, 3, 3), {"padding": 1, "groups": 3}),
    ((3, 3, 17), (5, 3, 3), {"padding": 2}),
    ((2, 2, 7, 6, 5), (3, 2, 3, 3, 3), {"padding": 1}),
    ((2, 3, 8, 8), (4, 3, 2, 4), {"padding": 1, "padding_mode": "reflect"}),
    ((2, 3, 8, 8), (4, 3, 3, 3), {"padding": 2, "padding_mode": "circular"}),
    ((1, 2, 5, 7), (2, 2, 3, 3), {"padding": 1, "padding_mode": "replicate"}),
]


@pytest.mark.parametrize(("xs", "ws", "kw"), TORCH_CASES)
def test_conv_matches_torch(xs: tuple[int, ...], ws: tuple[int, ...], kw: dict[str, Any]) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    layer = conv_layer(xs[1:], ws, **kw)
    module = getattr(torch.nn, f"Conv{len(ws) - 2}d")(
        xs[1], ws[0], ws[2:], dtype=torch.float64, **kw
    )
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(w))
        module.bias.copy_(torch.from_numpy(b))
        ref = module(torch.from_numpy(x)).numpy()
    assert _error(winograd.conv(x, w, layer, b), ref) <= 1e-12


@pytest.mark.parametrize(
    ("ys", "ws", "padding", "groups"),
    [
        ((2, 4, 12, 9), (4, 3, 3, 3), 1, 1),
        ((1, 4, 6, 5), (4, 1, 3, 2), 0, 2),
        ((2, 2, 5, 4, 6), (2, 3, 3, 3, 3), 1, 1),
        ((2, 3, 10), (3, 2, 4), 3, 1),
    ],
)
def test_conv_transpose_matches_torch(
    ys: tuple[int, ...], ws: tuple[int, ...], padding: int, groups: int
) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    y, w = rng.standard_normal(ys), rng.standard_normal(ws)
    b = rng.standard_normal(ws[1] * groups)
    layer = conv_transpose_layer(ys[1:], ws, padding=padding, groups=groups)
    fn = getattr(torch.nn.functional, f"conv_transpose{len(ws) - 2}d")
    ref = fn(*map(torch.from_numpy, (y, w, b)), padding=padding, groups=groups).numpy()
    assert _error(winograd.conv_transpose(y, w, layer, b), ref) <= 1e-12


@pytest.mark.parametrize(
    ("xs", "ws"),
    [
        ((2, 32, 24, 24), (32, 32, 3, 3)),
        ((2, 32, 300), (32, 32, 3)),
        ((1, 16, 12, 12, 12), (16, 16, 3, 3, 3)),
        ((2, 32, 20, 20), (32, 32, 2, 2)),
        ((2, 32, 20, 20), (32, 32, 4, 4)),
        ((2, 32, 20, 20), (32, 32, 5, 5)),
    ],
)
def test_float32_error_within_four_times_torch(xs: tuple[int, ...], ws: tuple[int, ...]) -> None:
    """Against a float64 reference, the float32 result errs at most 4× PyTorch's float32."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    pad = ws[-1] // 2
    layer = conv_layer(xs[1:], ws, padding=pad)
    ref = direct.conv_engine(x, w, layer, None)
    fn = getattr(torch.nn.functional, f"conv{len(ws) - 2}d")
    theirs = fn(torch.from_numpy(x).float(), torch.from_numpy(w).float(), padding=pad).numpy()
    ours = winograd.conv(x.astype(np.float32), w.astype(np.float32), layer, None)
    assert ours.dtype == np.float32
    assert _error(ours, ref) <= 4 * _error(theirs.astype(np.float64), ref)
    back = conv_transpose_layer(xs[1:], ws, padding=pad)  # square: C_out = C_in
    ref_t = direct.conv_transpose_engine(x, w, back, None)
    fn_t = getattr(torch.nn.functional, f"conv_transpose{len(ws) - 2}d")
    theirs_t = fn_t(torch.from_numpy(x).float(), torch.from_numpy(w).float(), padding=pad)
    ours_t = winograd.conv_transpose(x.astype(np.float32), w.astype(np.float32), back, None)
    assert _error(ours_t, ref_t) <= 4 * _error(theirs_t.numpy().astype(np.float64), ref_t)


# ---------------------------------------------------------------- non-finite values


@pytest.mark.parametrize("where", ["x", "w"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_pattern_equals_direct(where: str, value: float) -> None:
    rng = np.random.default_rng(6)
    layer = conv_layer((3, 10, 9), (4, 3, 3, 3), padding=1)
    x, w, b = _arrays(rng, layer, 2, True, False)
    back = conv_transpose_layer((4, 10, 9), (4, 3, 3, 3), padding=1)
    y = rng.standard_normal((2, 4, 10, 9))
    if where == "x":
        for a in (x, y):
            a[0, 1, 4, 5] = value
            a[1, 2, 0, 0] = value
    else:
        w[2, 1, 1, 2] = value
    with np.errstate(**direct.QUIET):
        got = winograd.conv(x, w, layer, b)
        ref = direct.conv_engine(x, w, layer, b)
        got_t = winograd.conv_transpose(y, w, back, None)
        ref_t = direct.conv_transpose_engine(y, w, back, None)
    assert_array_equal(got, ref)
    assert_array_equal(got_t, ref_t)
    assert np.isnan(got).any() or np.isinf(got).any()


# ---------------------------------------------------------------- refusals and the plan


def test_why_not_messages() -> None:
    ok = conv_layer((2, 8, 8), (2, 2, 3, 3), padding=1)
    assert winograd.why_not(ok, transposed=False) is None
    strided = conv_layer((2, 8, 8), (2, 2, 3, 3), stride=(1, 2))
    assert winograd.why_not(strided, transposed=False) == (
        "needs stride 1 on every axis; got (1, 2)"
    )
    dilated = conv_layer((2, 8, 8), (2, 2, 3, 3), dilation=2)
    assert winograd.why_not(dilated, transposed=False) == (
        "needs dilation 1 on every axis; got (2, 2)"
    )
    wide = conv_layer((2, 20), (2, 2, 9))
    assert winograd.why_not(wide, transposed=False) == (
        "needs at most 7 kernel taps per axis; got (9,)"
    )
    up = conv_transpose_layer((2, 4, 4), (2, 2, 4, 4), stride=2, padding=1)
    assert winograd.why_not(up, transposed=True) == "needs stride 1 on every axis; got (2, 2)"


def test_refused_layers_raise() -> None:
    layer = conv_layer((2, 8, 8), (2, 2, 3, 3), stride=2)
    with pytest.raises(ValueError, match="layer needs stride 1 on every axis; got \\(2, 2\\)"):
        winograd.conv(np.ones((1, 2, 8, 8)), np.ones((2, 2, 3, 3)), layer, None)
    back = conv_transpose_layer((2, 4, 4), (2, 2, 3, 3), dilation=2)
    with pytest.raises(ValueError, match="layer needs dilation 1 on every axis; got \\(2, 2\\)"):
        winograd.conv_transpose(np.ones((1, 2, 4, 4)), np.ones((2, 2, 3, 3)), back, None)


def test_variant_by_dtype() -> None:
    layer = conv_layer((64, 56, 56), (64, 64, 3, 3), padding=1)
    assert winograd.variant(layer, 4) == ((2, 3), (2, 3))
    assert winograd.variant(layer, 8) == ((2, 3), (2, 3))  # the transforms decide
    wide = conv_layer((512, 28, 28), (512, 512, 3, 3), padding=1)
    assert (4, 3) in winograd.variant(wide, 8)  # the tap GEMMs do
    assert winograd.variant(wide, 4) == ((2, 3), (2, 3))  # float32 accuracy
    five = conv_layer((8, 30), (8, 8, 5), padding=2)
    assert winograd.variant(five, 4) == ((1, 5),)  # no float32 tile accurate enough
    assert winograd.variant(conv_layer((8, 30), (8, 8, 1)), 8) == ((1, 1),)


def test_counts() -> None:
    layer = conv_layer((64, 56, 56), (64, 64, 3, 3), padding=1)
    c = winograd.counts(layer, 8, 4, transposed=False)
    assert isinstance(c, Counts)
    direct_flops = 2 * 8 * 64 * 64 * 9 * 56 * 56
    taps = 2 * 8 * 64 * 64 * 16 * 28 * 28  # F(2×2, 3×3): 16 products per 4 outputs
    assert taps < c.gemm_flops < direct_flops
    assert c.gemm_calls > 0 and c.stream_bytes > 0 and c.passes > 0
    # The transformed kernel at least; blocks, not the whole batch's transformed input.
    assert 16 * 64 * 64 * 4 < c.work_bytes < 16 * 64 * 8 * 29 * 29 * 4
    back = conv_transpose_layer((64, 56, 56), (64, 64, 3, 3), padding=1)
    assert winograd.counts(back, 8, 4, transposed=True).gemm_flops == c.gemm_flops


@pytest.mark.parametrize("limit", [1, 3000, 40000])
def test_blocks_of_samples_and_bands(monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    """Small blocks (bands of tile rows, single samples) give the same numbers."""
    monkeypatch.setattr(winograd, "CHUNK_BYTES", limit)
    rng = np.random.default_rng(7)
    layer = conv_layer((4, 13, 7, 6), (4, 2, 3, 3, 2), padding=((2, 0), (1, 1), (0, 3)), groups=2)
    x, w, b = _arrays(rng, layer, 3, True, False)
    assert _error(winograd.conv(x, w, layer, b), direct.conv_engine(x, w, layer, b)) <= 1e-12
    back = conv_transpose_layer((4, 13, 7, 6), (4, 2, 3, 3, 2), padding=2, groups=2)
    y, w, b = _arrays(rng, back, 2, True, True)
    got = winograd.conv_transpose(y, w, back, b)
    assert _error(got, direct.conv_transpose_engine(y, w, back, b)) <= 1e-12


@pytest.mark.parametrize("crop", [1.0, 100.0])
def test_junk_cropped_or_carried(monkeypatch: pytest.MonkeyPatch, crop: float) -> None:
    """Dropping the junk positions before the GEMMs, or carrying them through, gives the
    same numbers (7×7 outputs: F(2, 3) planes of 5×5 positions for 4×4 tiles)."""
    monkeypatch.setattr(winograd, "CROP_JUNK", crop)
    rng = np.random.default_rng(8)
    layer = conv_layer((6, 7, 7), (4, 3, 3, 3), padding=1, groups=2)
    plan = winograd._plan(((2, 3), (2, 3)), layer.out_spatial)
    assert winograd._crop(plan) == (crop < 1.5)
    x, w, b = _arrays(rng, layer, 3, True, False)
    assert _error(winograd.conv(x, w, layer, b), direct.conv_engine(x, w, layer, b)) <= 1e-12
    x32, w32, b32 = (a.astype(np.float32) for a in (x, w, b))
    ref = direct.conv_engine(x, w, layer, b)
    assert _error(winograd.conv(x32, w32, layer, b32), ref) <= 1e-5


def test_block_programs_are_built_once_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A block shape's passes are prepared once per thread and reused; at most
    ``PROGRAMS`` are kept (the least recently used go first); ``clear_scratch`` drops
    them; the passes of a program are the ones ``counts`` counts."""
    direct.clear_scratch()
    monkeypatch.setattr(winograd, "PROGRAMS", 2)
    rng = np.random.default_rng(9)
    layers = [conv_layer((3, n, n + 1), (2, 3, 3, 3), padding=1) for n in (5, 6, 7)]
    for layer in layers:
        x, w, _ = _arrays(rng, layer, 2, True, False)
        got = winograd.conv(x, w, layer, None)
        assert _error(got, direct.conv_engine(x, w, layer, None)) <= 1e-12
    programs = direct._programs()
    assert len(programs) == 2
    shapes = [key[1] for key in programs]
    assert shapes == [(2, 3, 6, 7), (2, 3, 7, 8)]
    kept = list(programs.values())
    x, w, _ = _arrays(rng, layers[2], 2, True, False)
    winograd.conv(x, w, layers[2], None)
    assert list(direct._programs().values())[-1] is kept[-1]
    program = kept[-1]
    _, _, ops_in, ops_out = winograd._terms(((2, 3), (2, 3)), 8)
    crop = winograd._crop(winograd._plan(((2, 3), (2, 3)), (7, 8)))
    assert (len(program.transform_in), len(program.transform_out)) == (ops_in + crop, ops_out)
    direct.clear_scratch()
    assert not direct._programs()
