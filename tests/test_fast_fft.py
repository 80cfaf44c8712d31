"""The FFT algorithm of the fast path (convmat._fast.fft).

Oracles: the direct tap-sum engine (every geometry, float64, normwise 1e-12),
PyTorch live (the same geometries; float32 accuracy on large blurs against a
float64 reference, compared with torch's own float32 error), the untiled
transform for the tiled one, and the direct engine's NaN/inf pattern.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convmat._fast import direct, fft
from convmat._fast.cost import Counts
from convmat._layer import Layer, conv_layer, conv_transpose_layer
from tests.strategies import conv_layers, conv_transpose_layers, geometry

Array = np.ndarray[Any, Any]
BLOCKS = st.sampled_from([None, 1, 2, 3, 5])


def _error(got: Array, ref: Array, x: Array | None = None, w: Array | None = None) -> float:
    """Normwise relative error ``max|got − ref| / max|ref|``.

    An exactly zero reference (no tap reaches any output) is measured against
    ``max|x|·Σ|w|``, the scale of the transform's rounding, instead.
    """
    if ref.size == 0:
        return 0.0
    scale = float(np.abs(ref).max())
    if scale == 0 and x is not None and w is not None:
        scale = float(np.abs(x).max() * np.abs(w).sum())
    return float(np.abs(got - ref).max()) / max(scale, 1e-300)


def _data(
    rng: np.random.Generator, layer: Layer, n_batch: int, *, transposed: bool, bias: bool
) -> tuple[Array, Array, Array | None]:
    groups = layer.groups
    w = rng.standard_normal((layer.out_channels, layer.in_channels // groups, *layer.kernel_size))
    if transposed:
        x = rng.standard_normal((n_batch, layer.out_channels, *layer.out_spatial))
        b = rng.standard_normal(layer.in_channels) if bias else None
    else:
        x = rng.standard_normal((n_batch, layer.in_channels, *layer.in_spatial))
        b = rng.standard_normal(layer.out_channels) if bias else None
    return x, w, b


def _forward(kwargs: dict[str, Any]) -> Layer:
    return conv_layer(kwargs["input_shape"], kwargs["weight_shape"], **geometry(kwargs))


def _transposed(kwargs: dict[str, Any]) -> Layer:
    return conv_transpose_layer(kwargs["input_shape"], kwargs["weight_shape"], **geometry(kwargs))


# ---------------------------------------------------------------- against the direct engine


@settings(max_examples=120, deadline=None)
@given(conv_layers(max_size=9), st.integers(1, 2), st.booleans(), BLOCKS, st.integers(0, 2**32))
def test_conv_matches_direct(
    kwargs: dict[str, Any], n_batch: int, bias: bool, block: int | None, seed: int
) -> None:
    layer = _forward(kwargs)
    x, w, b = _data(np.random.default_rng(seed), layer, n_batch, transposed=False, bias=bias)
    x0, w0 = x.copy(), w.copy()
    ref = direct.conv_engine(x, w, layer, b)
    got = fft.conv(x, w, layer, b, block=block)
    assert got.shape == ref.shape and got.dtype == ref.dtype and got.flags.c_contiguous
    assert _error(got, ref, x, w) <= 1e-12
    assert np.array_equal(x, x0) and np.array_equal(w, w0)


@settings(max_examples=120, deadline=None)
@given(
    conv_transpose_layers(max_size=7),
    st.integers(1, 2),
    st.booleans(),
    BLOCKS,
    st.integers(0, 2**32),
)
def test_conv_transpose_matches_direct(
    kwargs: dict[str, Any], n_batch: int, bias: bool, block: int | None, seed: int
) -> None:
    layer = _transposed(kwargs)
    y, w, b = _data(np.random.default_rng(seed), layer, n_batch, transposed=True, bias=bias)
    y0 = y.copy()
    ref = direct.conv_transpose_engine(y, w, layer, b)
    got = fft.conv_transpose(y, w, layer, b, block=block)
    assert got.shape == ref.shape and got.dtype == ref.dtype and got.flags.c_contiguous
    assert _error(got, ref, y, w) <= 1e-12
    assert np.array_equal(y, y0)


@pytest.mark.parametrize(
    ("spatial", "kernel", "stride", "dilation", "padding"),
    [
        ((40,), (9,), 1, 1, "same"),
        ((23, 31), (6, 4), 1, 1, "same"),  # even kernels: "same" pads more on the high side
        ((17, 12), (5, 5), (2, 3), (1, 2), ((3, 0), (1, 4))),
        ((9, 8, 10), (3, 4, 2), 1, (1, 2, 1), "same"),
        ((3, 4), (7, 9), 1, 1, "full"),  # the input smaller than the kernel
        ((30,), (4,), 3, 5, 2),
    ],
)
@pytest.mark.parametrize("block", [1, 4, 7])
def test_tiles_equal_one_transform(
    spatial: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: Any,
    dilation: Any,
    padding: Any,
    block: int,
) -> None:
    """Overlap-save with forced small tiles gives the untiled transform's numbers."""
    rng = np.random.default_rng(7)
    layer = conv_layer(
        (2, *spatial), (3, 2, *kernel), stride=stride, padding=padding, dilation=dilation
    )
    x, w, b = _data(rng, layer, 2, transposed=False, bias=True)
    whole = fft.conv(x, w, layer, b, block=10**6)
    assert fft._shape(layer, 2, False, 10**6).tiles == (1,) * layer.ndim
    if block < max(layer.out_spatial):
        assert fft._shape(layer, 2, False, block).tiles != (1,) * layer.ndim
    assert _error(fft.conv(x, w, layer, b, block=block), whole) <= 1e-13
    if isinstance(padding, str):
        return
    tl = conv_transpose_layer(
        (3, *layer.out_spatial), (3, 2, *kernel), stride=stride, padding=padding, dilation=dilation
    )
    y, _, bt = _data(rng, tl, 2, transposed=True, bias=True)
    whole = fft.conv_transpose(y, w, tl, bt, block=10**6)
    assert _error(fft.conv_transpose(y, w, tl, bt, block=block), whole) <= 1e-13


@pytest.mark.parametrize("pair_limit", [0, 10**6])
@pytest.mark.parametrize("chunk", [1, 2**26])
def test_products_and_chunks(monkeypatch: pytest.MonkeyPatch, pair_limit: int, chunk: int) -> None:
    """Pair-by-pair products and the stacked matmul agree; so do one chunk and many."""
    monkeypatch.setattr(fft, "PAIR_LIMIT", pair_limit)
    monkeypatch.setattr(fft, "CHUNK_BYTES", chunk)
    rng = np.random.default_rng(3)
    layer = conv_layer((6, 19, 14), (4, 3, 5, 3), stride=(2, 1), padding=2, groups=2)
    x, w, b = _data(rng, layer, 3, transposed=False, bias=True)
    assert _error(fft.conv(x, w, layer, b, block=4), direct.conv_engine(x, w, layer, b)) <= 1e-12
    tl = conv_transpose_layer((4, 10, 14), (4, 3, 5, 3), stride=(2, 1), padding=2, groups=2)
    y, _, bt = _data(rng, tl, 3, transposed=True, bias=True)
    ref = direct.conv_transpose_engine(y, w, tl, bt)
    assert _error(fft.conv_transpose(y, w, tl, bt, block=4), ref) <= 1e-12


def test_empty_batch() -> None:
    layer = conv_layer((2, 5, 5), (3, 2, 3, 3), padding=1)
    w = np.ones((3, 2, 3, 3))
    assert fft.conv(np.ones((0, 2, 5, 5)), w, layer, None).shape == (0, 3, 5, 5)
    tl = conv_transpose_layer((3, 5, 5), (3, 2, 3, 3), padding=1)
    assert fft.conv_transpose(np.ones((0, 3, 5, 5)), w, tl, None).shape == (0, 2, 5, 5)


def test_hand_example() -> None:
    """A worked 1-d case: correlation (not convolution), stride 2, "zeros" padding 1."""
    x = np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]])
    w = np.array([[[1.0, 10.0, 100.0]]])
    layer = conv_layer((1, 5), (1, 1, 3), stride=2, padding=1)
    # outputs at padded positions 0, 2, 4: [0 1 2], [2 3 4], [4 5 0]
    expected = [[[210.0, 432.0, 54.0]]]
    np.testing.assert_allclose(fft.conv(x, w, layer, None), expected, rtol=1e-14)
    tl = conv_transpose_layer((1, 3), (1, 1, 3), stride=2, padding=1)
    y = np.array([[[1.0, 2.0, 3.0]]])
    # the adjoint: x[i] = Σ_o y[o]·w[i + 1 − 2·o]
    expected_t = [[[10.0, 102.0, 20.0, 203.0, 30.0]]]
    np.testing.assert_allclose(fft.conv_transpose(y, w, tl, None), expected_t, rtol=1e-14)


def test_adjoint() -> None:
    """⟨conv(x), y⟩ = ⟨x, conv_transpose(y)⟩ for the same layer (the dot test)."""
    rng = np.random.default_rng(11)
    layer = conv_layer((4, 21, 18), (6, 2, 7, 4), stride=(3, 2), dilation=(1, 2), groups=2)
    x, w, _ = _data(rng, layer, 2, transposed=False, bias=False)
    y = rng.standard_normal((2, 6, *layer.out_spatial))
    lhs = np.vdot(fft.conv(x, w, layer, None, block=3), y)
    rhs = np.vdot(x, fft.conv_transpose(y, w, layer, None, block=5))
    assert abs(lhs - rhs) <= 1e-12 * abs(lhs)


# ---------------------------------------------------------------- non-finite input


@pytest.mark.parametrize("transposed", [False, True])
def test_non_finite_pattern_is_direct(transposed: bool) -> None:
    rng = np.random.default_rng(5)
    layer = conv_layer((2, 12, 11), (3, 2, 4, 3), stride=(2, 1), padding="valid")
    x, w, b = _data(rng, layer, 2, transposed=transposed, bias=True)
    x[0, 1, 3, 4] = np.nan
    x[1, 0, 2, 2] = np.inf
    x[1, 1, 3, 2] = -np.inf
    engine = direct.conv_transpose_engine if transposed else direct.conv_engine
    method = fft.conv_transpose if transposed else fft.conv
    with np.errstate(**direct.QUIET):
        ref = engine(x, w, layer, b)
        got = method(x, w, layer, b)
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    assert np.array_equal(np.isposinf(got), np.isposinf(ref))
    assert np.array_equal(np.isneginf(got), np.isneginf(ref))
    finite = np.isfinite(ref)
    assert not finite.all() and finite.any()
    assert _error(got[finite], ref[finite]) <= 1e-12
    # A non-finite weight goes the same way.
    x2 = rng.standard_normal(x.shape)
    w[1, 0, 0, 0] = np.nan
    with np.errstate(**direct.QUIET):
        assert np.array_equal(np.isnan(method(x2, w, layer, b)), np.isnan(engine(x2, w, layer, b)))


# ---------------------------------------------------------------- planner interface


@settings(max_examples=60, deadline=None)
@given(conv_layers(max_size=9), st.integers(1, 4), st.booleans())
def test_counts_and_tiles(kwargs: dict[str, Any], n_batch: int, transposed: bool) -> None:
    layer = _forward(kwargs)
    assert fft.NAME == "fft"
    assert fft.why_not(layer, transposed=transposed) is None
    counted = fft.counts(layer, n_batch, 4, transposed=transposed)
    assert isinstance(counted, Counts)
    assert counted.fft_points > 0 and counted.gemm_flops > 0 and counted.work_bytes > 0
    assert counted == fft.counts(layer, n_batch, 4, transposed=transposed)
    tiling = fft._shape(layer, n_batch, transposed, None)
    split = fft._phases(layer)
    needed = fft._planes(layer, split)[1] if transposed else layer.out_spatial
    for t, b, f, q, o in zip(
        tiling.tiles, tiling.block, tiling.fft, split.reach, needed, strict=True
    ):
        assert t * b >= o > (t - 1) * b  # every output, no empty tile
        assert f >= b + q - 1  # no wrap-around in a tile
    more = fft.counts(layer, 2 * n_batch, 4, transposed=transposed)
    assert more.fft_points > counted.fft_points


def test_large_blur_prefers_tiles() -> None:
    """A 2048² blur is cut into tiles; a kernel as large as the input is not."""
    big = conv_layer((1, 2048, 2048), (1, 1, 31, 31), padding="same")
    assert math.prod(fft._shape(big, 1, False, None).tiles) > 1
    small = conv_layer((1, 40, 40), (1, 1, 31, 31), padding="same")
    assert fft._shape(small, 1, False, None).tiles == (1, 1)


# ---------------------------------------------------------------- torch, live


@settings(max_examples=60, deadline=None)
@given(conv_layers(max_size=9), st.booleans(), st.integers(0, 2**32))
def test_conv_matches_torch(kwargs: dict[str, Any], bias: bool, seed: int) -> None:
    pytest.importorskip("torch")
    from convmat.testing import torch_conv

    layer = _forward(kwargs)
    x, w, b = _data(np.random.default_rng(seed), layer, 2, transposed=False, bias=bias)
    expected = torch_conv(x, w, b, **geometry(kwargs))
    assert _error(fft.conv(x, w, layer, b), expected, x, w) <= 1e-12


@settings(max_examples=60, deadline=None)
@given(conv_transpose_layers(max_size=7), st.booleans(), st.integers(0, 2**32))
def test_conv_transpose_matches_torch(kwargs: dict[str, Any], bias: bool, seed: int) -> None:
    pytest.importorskip("torch")
    from convmat.testing import torch_conv_transpose

    layer = _transposed(kwargs)
    y, w, b = _data(np.random.default_rng(seed), layer, 2, transposed=True, bias=bias)
    expected = torch_conv_transpose(y, w, b, **geometry(kwargs))
    assert _error(fft.conv_transpose(y, w, layer, b), expected, y, w) <= 1e-12


@pytest.mark.parametrize(("size", "k"), [(384, 31), (256, 63), (512, 15)])
@pytest.mark.parametrize("transposed", [False, True])
def test_float32_error_within_four_times_torch(size: int, k: int, transposed: bool) -> None:
    """float32 blurs: the FFT's error against a float64 reference ≤ 4× torch's float32 error."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(size + k)
    x64 = rng.random((1, 1, size, size))
    w64 = rng.random((1, 1, k, k))
    w64 /= w64.sum()
    layer = conv_layer((1, size, size), w64.shape, padding="same")
    xt, wt = torch.from_numpy(x64.astype(np.float32)), torch.from_numpy(w64.astype(np.float32))
    if transposed:
        lo = layer.padding[0][0]
        tl = conv_transpose_layer((1, size, size), w64.shape, padding=lo)
        ref = direct.conv_transpose_engine(x64, w64, tl, None)
        theirs = torch.nn.functional.conv_transpose2d(xt, wt, padding=lo).numpy()
        ours = fft.conv_transpose(x64.astype(np.float32), w64.astype(np.float32), tl, None)
    else:
        ref = direct.conv_engine(x64, w64, layer, None)
        theirs = torch.nn.functional.conv2d(xt, wt, padding="same").numpy()
        ours = fft.conv(x64.astype(np.float32), w64.astype(np.float32), layer, None)
    assert ours.dtype == np.float32
    assert _error(ours, ref) <= 4 * _error(theirs, ref)
