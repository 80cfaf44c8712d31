"""Polyphase (space-to-depth) conv and sub-pixel (depth-to-space) conv_transpose.

Oracles: the direct tap-sum engine (exactly equal on small-integer data: the
rearrangements make the same products), PyTorch live, hand-worked examples, and
a spy ``inner`` that records the layers it is handed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from convmat._fast import direct, polyphase
from convmat._fast.cost import Counts
from convmat._layer import Layer, conv_layer, conv_transpose_layer
from tests.strategies import conv_layers, conv_transpose_layers, geometry, small_ints

Array = np.ndarray[Any, Any]


def _strided(layer: dict[str, Any]) -> bool:
    stride = layer["stride"]
    return any(s > 1 for s in (stride if isinstance(stride, tuple) else (stride,)))


def _forward(layer: dict[str, Any]) -> Layer:
    return conv_layer(layer["input_shape"], layer["weight_shape"], **geometry(layer))


def _transposed(layer: dict[str, Any]) -> Layer:
    return conv_transpose_layer(layer["input_shape"], layer["weight_shape"], **geometry(layer))


class Spy:
    """An ``inner`` that records the layers it runs and runs them with the direct engine."""

    def __init__(self) -> None:
        self.layers: list[Layer] = []

    def __call__(self, x: Array, w: Array, layer: Layer, bias: Array | None) -> Array:
        assert x.shape == (x.shape[0], *layer.input_shape)
        assert w.shape == layer.weight_shape
        self.layers.append(layer)
        return direct.conv_engine(x, w, layer, bias)


# ---------------------------------------------------------------- worked examples


def test_polyphase_by_hand() -> None:
    # Stride 2, taps (1, 10, 100): y[j] = x[2j] + 10·x[2j+1] + 100·x[2j+2].
    x = np.arange(7.0).reshape(1, 1, 7)
    w = np.array([[[1.0, 10.0, 100.0]]])
    layer = conv_layer((1, 7), w.shape, stride=2)
    assert_array_equal(polyphase.conv(x, w, layer, None), [[[210.0, 432.0, 654.0]]])
    # Phases (0, 1) with taps (2, 1): the stride-1 layer has k = 2 and two channels.
    (inner,) = polyphase.inner_layers(layer, transposed=False)
    assert (inner.in_channels, inner.kernel_size, inner.stride) == (2, (2,), (1,))


def test_subpixel_by_hand() -> None:
    # Stride 2, k = 4, padding 1: the two output phases take taps (1, 3) and (0, 2).
    y = np.array([[[1.0, 2.0]]])
    w = np.array([[[1.0, 10.0, 100.0, 1000.0]]])
    layer = conv_transpose_layer((1, 2), w.shape, stride=2, padding=1)
    expected = [[[10.0 + 0.0, 100.0 + 2.0, 1000.0 + 20.0, 200.0]]]
    assert_array_equal(polyphase.conv_transpose(y, w, layer, None), expected)
    (inner,) = polyphase.inner_layers(layer, transposed=True)  # the ESPCN form: one conv
    assert (inner.out_channels, inner.kernel_size, inner.stride) == (2, (2,), (1,))


def test_unequal_phases_make_one_conv_each() -> None:
    # k = 3, stride 2: phase 0 has taps (0, 2), phase 1 tap 1 — two convolutions, no zero.
    layer = conv_transpose_layer((1, 5), (1, 1, 3), stride=2)
    kernels = sorted(i.kernel_size for i in polyphase.inner_layers(layer, transposed=True))
    assert kernels == [(1,), (2,)]


def test_dilated_phases_keep_a_dilation() -> None:
    # Dilation 4, stride 2: every tap lands on phase 0, two apart: one phase, dilation 2.
    (inner,) = polyphase.inner_layers(
        conv_layer((1, 20), (1, 1, 3), stride=2, dilation=4), transposed=False
    )
    assert (inner.in_channels, inner.kernel_size, inner.dilation) == (1, (3,), (2,))


# ---------------------------------------------------------------- against the direct engine


@settings(max_examples=120, deadline=None)
@given(conv_layers(strings=False), st.data(), st.booleans(), st.integers(1, 3))
def test_conv_equals_direct(
    layer: dict[str, Any], data: st.DataObject, with_bias: bool, n_batch: int
) -> None:
    if not _strided(layer):
        layer = {**layer, "stride": 2}
    lay = _forward(layer)
    x = data.draw(small_ints((n_batch, *layer["input_shape"])))
    w = data.draw(small_ints(layer["weight_shape"]))
    b = np.arange(lay.out_channels, dtype=np.float64) - 1 if with_bias else None
    spy = Spy()
    got = polyphase.conv(x, w, lay, b, inner=spy)
    assert_array_equal(got, direct.conv_engine(x, w, lay, b))
    assert got.flags.c_contiguous and got.dtype == x.dtype
    assert spy.layers == polyphase.inner_layers(lay, transposed=False)
    assert all(s == 1 for inner in spy.layers for s in inner.stride)


@settings(max_examples=120, deadline=None)
@given(conv_transpose_layers(), st.data(), st.booleans(), st.integers(1, 3))
def test_conv_transpose_equals_direct(
    layer: dict[str, Any], data: st.DataObject, with_bias: bool, n_batch: int
) -> None:
    if not _strided(layer):
        layer = {**layer, "stride": 2, "padding": 0, "output_padding": 0}
    lay = _transposed(layer)
    y = data.draw(small_ints((n_batch, *layer["input_shape"])))
    w = data.draw(small_ints(layer["weight_shape"]))
    b = np.arange(lay.in_channels, dtype=np.float64) - 1 if with_bias else None
    spy = Spy()
    got = polyphase.conv_transpose(y, w, lay, b, inner=spy)
    assert_array_equal(got, direct.conv_transpose_engine(y, w, lay, b))
    assert got.flags.c_contiguous and got.dtype == y.dtype
    assert spy.layers == polyphase.inner_layers(lay, transposed=True)
    assert all(s == 1 for inner in spy.layers for s in inner.stride)


@pytest.mark.parametrize(
    ("n", "k", "s", "p", "d"),
    [(1, 3, 3, 1, 1), (2, 1, 3, 0, 1), (1, 5, 4, 2, 1), (3, 2, 5, 1, 2), (1, 1, 2, 0, 1)],
)
def test_inputs_smaller_than_the_stride(n: int, k: int, s: int, p: int, d: int) -> None:
    rng = np.random.default_rng(n + k + s)
    x = rng.integers(-3, 4, (2, 2, n, n + 1)).astype(np.float64)
    w = rng.integers(-3, 4, (3, 2, k, k)).astype(np.float64)
    layer = conv_layer(x.shape[1:], w.shape, stride=s, padding=p, dilation=d)
    assert_array_equal(polyphase.conv(x, w, layer, None), direct.conv_engine(x, w, layer, None))
    y = rng.integers(-3, 4, (2, 2, n, n + 1)).astype(np.float64)
    wt = rng.integers(-3, 4, (2, 3, k, k)).astype(np.float64)
    for op in range(max(s, d)):
        t = conv_transpose_layer(y.shape[1:], wt.shape, stride=s, output_padding=op, dilation=d)
        assert_array_equal(
            polyphase.conv_transpose(y, wt, t, None), direct.conv_transpose_engine(y, wt, t, None)
        )


def test_padding_beyond_the_reach_leaves_bias_only() -> None:
    # Padding 3 crops a transposed output to positions some phases of which read nothing.
    y = np.ones((1, 1, 1))
    w = np.ones((1, 1, 2))
    layer = conv_transpose_layer((1, 1), w.shape, stride=4, padding=1, output_padding=3)
    b = np.array([5.0])
    got = polyphase.conv_transpose(y, w, layer, b)
    assert_array_equal(got, direct.conv_transpose_engine(y, w, layer, b))


def test_empty_batch() -> None:
    layer = conv_layer((2, 6, 6), (3, 2, 3, 3), stride=2)
    assert polyphase.conv(np.empty((0, 2, 6, 6)), np.ones((3, 2, 3, 3)), layer, None).shape == (
        0,
        3,
        2,
        2,
    )
    t = conv_transpose_layer((2, 3, 3), (2, 3, 3, 3), stride=2)
    got = polyphase.conv_transpose(np.empty((0, 2, 3, 3)), np.ones((2, 3, 3, 3)), t, None)
    assert got.shape == (0, 3, 7, 7)


def test_inputs_are_not_modified() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 9, 9))
    w = rng.standard_normal((6, 2, 3, 3))
    layer = conv_layer(x.shape[1:], w.shape, stride=2, padding=1, groups=2, padding_mode="reflect")
    copies = x.copy(), w.copy()
    polyphase.conv(x, w, layer, None)
    assert_array_equal(x, copies[0])
    assert_array_equal(w, copies[1])


# ---------------------------------------------------------------- torch, live


@settings(max_examples=60, deadline=None)
@given(conv_layers(strings=False), st.data())
def test_conv_matches_torch(layer: dict[str, Any], data: st.DataObject) -> None:
    pytest.importorskip("torch")
    from convmat.testing import torch_conv

    if not _strided(layer):
        layer = {**layer, "stride": 3}
    x = data.draw(small_ints((2, *layer["input_shape"])))
    w = data.draw(small_ints(layer["weight_shape"]))
    got = polyphase.conv(x, w, _forward(layer), None)
    assert_array_equal(got, torch_conv(x, w, **geometry(layer)))


@settings(max_examples=60, deadline=None)
@given(conv_transpose_layers(), st.data())
def test_conv_transpose_matches_torch(layer: dict[str, Any], data: st.DataObject) -> None:
    pytest.importorskip("torch")
    from convmat.testing import torch_conv_transpose

    if not _strided(layer):
        layer = {**layer, "stride": 3, "padding": 0, "output_padding": 0}
    y = data.draw(small_ints((2, *layer["input_shape"])))
    w = data.draw(small_ints(layer["weight_shape"]))
    got = polyphase.conv_transpose(y, w, _transposed(layer), None)
    assert_array_equal(got, torch_conv_transpose(y, w, **geometry(layer)))


@pytest.mark.parametrize("transposed", [False, True])
def test_float64_within_1e_12_of_torch(transposed: bool) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    f = torch.nn.functional
    if transposed:
        y = rng.standard_normal((2, 8, 7, 6))
        w = rng.standard_normal((8, 3, 5, 4))
        layer = conv_transpose_layer(y.shape[1:], w.shape, stride=(2, 3), padding=1)
        got = polyphase.conv_transpose(y, w, layer, None)
        ref = f.conv_transpose2d(
            torch.from_numpy(y), torch.from_numpy(w), stride=(2, 3), padding=1
        ).numpy()
    else:
        x = rng.standard_normal((2, 8, 17, 15))
        w = rng.standard_normal((6, 4, 5, 4))
        layer = conv_layer(x.shape[1:], w.shape, stride=(2, 3), padding=2, groups=2)
        got = polyphase.conv(x, w, layer, None)
        ref = f.conv2d(
            torch.from_numpy(x), torch.from_numpy(w), stride=(2, 3), padding=2, groups=2
        ).numpy()
    assert np.abs(got - ref).max() <= 1e-12 * np.abs(ref).max()


def test_float32_error_near_torch() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    f = torch.nn.functional
    x = rng.standard_normal((2, 16, 20, 20)).astype(np.float32)
    w = rng.standard_normal((8, 16, 4, 4)).astype(np.float32)
    layer = conv_layer(x.shape[1:], w.shape, stride=2, padding=1)
    ref = f.conv2d(
        torch.from_numpy(x.astype(np.float64)),
        torch.from_numpy(w.astype(np.float64)),
        stride=2,
        padding=1,
    ).numpy()
    theirs = f.conv2d(torch.from_numpy(x), torch.from_numpy(w), stride=2, padding=1).numpy()
    ours = polyphase.conv(x, w, layer, None)
    scale = np.abs(ref).max()
    assert np.abs(ours - ref).max() / scale <= 4 * np.abs(theirs - ref).max() / scale


# ---------------------------------------------------------------- inner methods


def test_winograd_inner() -> None:
    winograd = pytest.importorskip("convmat._fast.winograd")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 6, 16, 16))
    w = rng.standard_normal((4, 6, 4, 4))
    layer = conv_layer(x.shape[1:], w.shape, stride=2, padding=1)

    def inner(x: Array, w: Array, layer: Layer, bias: Array | None) -> Array:
        assert winograd.why_not(layer, transposed=False) is None
        out: Array = winograd.conv(x, w, layer, bias)
        return out

    ref = direct.conv_engine(x, w, layer, None)
    got = polyphase.conv(x, w, layer, None, inner=inner)
    assert np.abs(got - ref).max() <= 1e-12 * np.abs(ref).max()
    y = rng.standard_normal((2, 4, 8, 8))
    t = conv_transpose_layer(y.shape[1:], w.shape, stride=2, padding=1)  # (C_in, C_out, *k)
    ref = direct.conv_transpose_engine(y, w, t, None)
    got = polyphase.conv_transpose(y, w, t, None, inner=inner)
    assert np.abs(got - ref).max() <= 1e-12 * np.abs(ref).max()


# ---------------------------------------------------------------- non-finite values


@pytest.mark.parametrize("k", [3, 4])
@pytest.mark.parametrize("where", ["x", "w"])
def test_non_finite_values_land_as_in_direct(k: int, where: str) -> None:
    rng = np.random.default_rng(k)
    x = rng.integers(-3, 4, (2, 2, 9, 8)).astype(np.float64)
    w = rng.integers(-3, 4, (3, 2, k, k)).astype(np.float64)
    y = rng.integers(-3, 4, (2, 3, 4, 4)).astype(np.float64)
    target = x if where == "x" else w
    target[(0, 1, 2, 3) if where == "x" else (1, 0, 1, 2)] = np.inf
    target[(1, 0, 5, 0) if where == "x" else (2, 1, 0, 0)] = np.nan
    layer = conv_layer(x.shape[1:], w.shape, stride=2, padding=1)
    with np.errstate(**direct.QUIET):
        assert_array_equal(polyphase.conv(x, w, layer, None), direct.conv_engine(x, w, layer, None))
        if where == "x":
            y[0, 1, 2, 2], y[1, 2, 0, 3] = np.inf, np.nan
        t = conv_transpose_layer(y.shape[1:], w.shape, stride=2, padding=1)
        assert_array_equal(
            polyphase.conv_transpose(y, w, t, None), direct.conv_transpose_engine(y, w, t, None)
        )


# ---------------------------------------------------------------- planner interface


def test_names() -> None:
    assert polyphase.NAME == "polyphase"
    assert polyphase.SUBPIXEL == "subpixel"


def test_why_not() -> None:
    strided = conv_layer((2, 8, 8), (3, 2, 3, 3), stride=(1, 2))
    assert polyphase.why_not(strided, transposed=False) is None
    assert polyphase.why_not(strided, transposed=True) is None
    flat = conv_layer((2, 8, 8), (3, 2, 3, 3))
    reason = "needs a stride above 1 on some axis; got (1, 1)"
    assert polyphase.why_not(flat, transposed=False) == reason
    assert polyphase.why_not(flat, transposed=True) == reason
    with pytest.raises(ValueError, match=r"layer needs a stride above 1 on some axis"):
        polyphase.conv(np.ones((1, 2, 8, 8)), np.ones((3, 2, 3, 3)), flat, None)
    t = conv_transpose_layer((2, 8, 8), (2, 3, 3, 3))
    with pytest.raises(ValueError, match=r"layer needs a stride above 1 on some axis"):
        polyphase.conv_transpose(np.ones((1, 2, 8, 8)), np.ones((2, 3, 3, 3)), t, None)


@pytest.mark.parametrize("transposed", [False, True])
def test_counts(transposed: bool) -> None:
    from convmat._fast.planner import direct_counts

    layer = conv_layer((32, 64, 64), (64, 32, 4, 4), stride=2, padding=1)
    got = polyphase.counts(layer, 8, 4, transposed=transposed)
    assert isinstance(got, Counts)
    inner = polyphase.inner_layers(layer, transposed=transposed)
    flops = sum(direct_counts(i, 8, 4, transposed=False).gemm_flops for i in inner)
    assert got.gemm_flops == flops > 0
    assert got.stream_bytes > 0 and got.work_bytes > 0 and got.passes > 0
    # The same products as the strided layer's taps, up to the junk positions.
    assert 2 * 8 * 64 * 32 * 16 * 32 * 32 <= got.gemm_flops <= 1.2 * 2 * 8 * 64 * 32 * 16 * 32 * 32
    custom = polyphase.counts(
        layer, 8, 4, transposed=transposed, inner_counts=lambda _: Counts(gemm_flops=1.0)
    )
    assert custom.gemm_flops == len(inner)
