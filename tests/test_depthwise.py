"""Depthwise conv and conv_transpose (one input channel per group).

Oracles: the direct tap-sum engine (exactly equal on small-integer data), PyTorch
live, a hand-worked example, and non-finite data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from convmat._fast import depthwise, direct
from convmat._fast.cost import Counts
from convmat._layer import conv_layer, conv_transpose_layer
from tests.strategies import conv_layers, conv_transpose_layers, geometry, small_ints


@st.composite
def depthwise_layers(draw: Any, *, transposed: bool) -> dict[str, Any]:
    """A layer of :func:`conv_layers` / :func:`conv_transpose_layers` made depthwise:
    one input channel per group, a channel multiplier of 1 to 3."""
    layer = draw(conv_transpose_layers() if transposed else conv_layers(strings=False))
    groups = draw(st.integers(1, 5))
    multiplier = draw(st.integers(1, 3))
    k = layer["weight_shape"][2:]
    spatial = layer["input_shape"][1:]
    if transposed:
        weight = (groups, multiplier, *k)
    else:
        weight = (groups * multiplier, 1, *k)
    return {**layer, "input_shape": (groups, *spatial), "weight_shape": weight, "groups": groups}


# ---------------------------------------------------------------- worked example


def test_by_hand() -> None:
    # Two channels, multiplier 2: channel 0 feeds outputs 0, 1; channel 1 outputs 2, 3.
    x = np.array([[[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]]])
    w = np.array([[[1.0, 1.0]], [[1.0, -1.0]], [[0.0, 1.0]], [[2.0, 0.0]]])
    layer = conv_layer((2, 3), w.shape, groups=2)
    expected = [[[3.0, 5.0], [-1.0, -1.0], [20.0, 30.0], [20.0, 40.0]]]
    assert_array_equal(depthwise.conv(x, w, layer, None), expected)
    b = np.array([1.0, 2.0, 3.0, 4.0])
    assert_array_equal(depthwise.conv(x, w, layer, b), np.add(expected, b[:, None]))


# ---------------------------------------------------------------- against the direct engine


@settings(max_examples=120, deadline=None)
@given(depthwise_layers(transposed=False), st.data(), st.booleans(), st.integers(1, 3))
def test_conv_equals_direct(
    layer: dict[str, Any], data: st.DataObject, with_bias: bool, n_batch: int
) -> None:
    lay = conv_layer(layer["input_shape"], layer["weight_shape"], **geometry(layer))
    x = data.draw(small_ints((n_batch, *layer["input_shape"])))
    w = data.draw(small_ints(layer["weight_shape"]))
    b = np.arange(lay.out_channels, dtype=np.float64) - 2 if with_bias else None
    got = depthwise.conv(x, w, lay, b)
    assert_array_equal(got, direct.conv_engine(x, w, lay, b))
    assert got.flags.c_contiguous and got.dtype == x.dtype


@settings(max_examples=120, deadline=None)
@given(depthwise_layers(transposed=True), st.data(), st.booleans(), st.integers(1, 3))
def test_conv_transpose_equals_direct(
    layer: dict[str, Any], data: st.DataObject, with_bias: bool, n_batch: int
) -> None:
    lay = conv_transpose_layer(layer["input_shape"], layer["weight_shape"], **geometry(layer))
    y = data.draw(small_ints((n_batch, *layer["input_shape"])))
    w = data.draw(small_ints(layer["weight_shape"]))
    b = np.arange(lay.in_channels, dtype=np.float64) - 2 if with_bias else None
    got = depthwise.conv_transpose(y, w, lay, b)
    assert_array_equal(got, direct.conv_transpose_engine(y, w, lay, b))
    assert got.flags.c_contiguous and got.dtype == y.dtype


def test_bands_split_channels_and_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tiny bands: several products over channels and over the columns of one channel.
    monkeypatch.setattr(depthwise, "COLUMN_BYTES", 9 * 8 * 7)
    monkeypatch.setattr(depthwise, "PLANE_BYTES", 2000)  # two channels at a time
    rng = np.random.default_rng(2)
    x = rng.integers(-3, 4, (3, 5, 11, 10)).astype(np.float64)
    w = rng.integers(-3, 4, (10, 1, 3, 3)).astype(np.float64)
    layer = conv_layer(x.shape[1:], w.shape, padding=1, stride=(1, 2), groups=5)
    assert depthwise._bands(5, 9, 400, 8) == (1, 7)
    assert depthwise._channel_band(5, 100, 8) == 2
    assert_array_equal(depthwise.conv(x, w, layer, None), direct.conv_engine(x, w, layer, None))
    y = rng.integers(-3, 4, (3, 5, 6, 7)).astype(np.float64)
    wt = rng.integers(-3, 4, (5, 2, 3, 3)).astype(np.float64)
    t = conv_transpose_layer(y.shape[1:], wt.shape, stride=2, padding=1, groups=5)
    assert_array_equal(
        depthwise.conv_transpose(y, wt, t, None), direct.conv_transpose_engine(y, wt, t, None)
    )


def test_empty_batch() -> None:
    layer = conv_layer((4, 6, 6), (8, 1, 3, 3), groups=4)
    got = depthwise.conv(np.empty((0, 4, 6, 6)), np.ones((8, 1, 3, 3)), layer, None)
    assert got.shape == (0, 8, 4, 4)
    t = conv_transpose_layer((4, 6, 6), (4, 2, 3, 3), groups=4)
    got = depthwise.conv_transpose(np.empty((0, 4, 6, 6)), np.ones((4, 2, 3, 3)), t, None)
    assert got.shape == (0, 8, 8, 8)


# ---------------------------------------------------------------- torch, live


@settings(max_examples=60, deadline=None)
@given(depthwise_layers(transposed=False), st.data())
def test_conv_matches_torch(layer: dict[str, Any], data: st.DataObject) -> None:
    pytest.importorskip("torch")
    from convmat.testing import torch_conv

    lay = conv_layer(layer["input_shape"], layer["weight_shape"], **geometry(layer))
    x = data.draw(small_ints((2, *layer["input_shape"])))
    w = data.draw(small_ints(layer["weight_shape"]))
    assert_array_equal(depthwise.conv(x, w, lay, None), torch_conv(x, w, **geometry(layer)))


@settings(max_examples=60, deadline=None)
@given(depthwise_layers(transposed=True), st.data())
def test_conv_transpose_matches_torch(layer: dict[str, Any], data: st.DataObject) -> None:
    pytest.importorskip("torch")
    from convmat.testing import torch_conv_transpose

    lay = conv_transpose_layer(layer["input_shape"], layer["weight_shape"], **geometry(layer))
    y = data.draw(small_ints((2, *layer["input_shape"])))
    w = data.draw(small_ints(layer["weight_shape"]))
    got = depthwise.conv_transpose(y, w, lay, None)
    assert_array_equal(got, torch_conv_transpose(y, w, **geometry(layer)))


@pytest.mark.parametrize("transposed", [False, True])
def test_float_accuracy_against_torch(transposed: bool) -> None:
    """float64 within 1e-12 of torch; float32 error at most 4× torch's own."""
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    rng = np.random.default_rng(9)
    a = rng.standard_normal((2, 16, 23, 21))
    if transposed:
        w = rng.standard_normal((16, 2, 3, 3))
        layer = conv_transpose_layer(a.shape[1:], w.shape, stride=2, padding=1, groups=16)

        def ours(a: Any, w: Any) -> Any:
            return depthwise.conv_transpose(a, w, layer, None)

        def theirs(a: Any, w: Any) -> Any:
            t = f.conv_transpose2d(torch.from_numpy(a), torch.from_numpy(w), stride=2, padding=1,
                                   groups=16)  # fmt: skip
            return t.numpy()
    else:
        w = rng.standard_normal((32, 1, 3, 3))
        layer = conv_layer(a.shape[1:], w.shape, padding=1, groups=16)

        def ours(a: Any, w: Any) -> Any:
            return depthwise.conv(a, w, layer, None)

        def theirs(a: Any, w: Any) -> Any:
            return f.conv2d(torch.from_numpy(a), torch.from_numpy(w), padding=1, groups=16).numpy()

    ref = theirs(a, w)
    scale = np.abs(ref).max()
    assert np.abs(ours(a, w) - ref).max() <= 1e-12 * scale
    a32, w32 = a.astype(np.float32), w.astype(np.float32)
    mine = np.abs(ours(a32, w32) - ref).max()
    torch_error = np.abs(theirs(a32, w32) - ref).max()
    assert mine <= 4 * torch_error


# ---------------------------------------------------------------- non-finite values


@pytest.mark.parametrize("stride", [1, 2])
def test_non_finite_values_land_as_in_direct(stride: int) -> None:
    rng = np.random.default_rng(stride)
    x = rng.integers(-3, 4, (2, 3, 9, 8)).astype(np.float64)
    w = rng.integers(-3, 4, (6, 1, 3, 3)).astype(np.float64)
    x[0, 1, 2, 3], x[1, 0, 5, 0], w[4, 0, 1, 1] = np.inf, np.nan, -np.inf
    layer = conv_layer(x.shape[1:], w.shape, stride=stride, padding=1, groups=3)
    wt = w.reshape(3, 2, 3, 3)
    t = conv_transpose_layer(x.shape[1:], wt.shape, stride=stride, padding=1, groups=3)
    with np.errstate(**direct.QUIET):
        assert_array_equal(depthwise.conv(x, w, layer, None), direct.conv_engine(x, w, layer, None))
        assert_array_equal(
            depthwise.conv_transpose(x, wt, t, None), direct.conv_transpose_engine(x, wt, t, None)
        )


# ---------------------------------------------------------------- planner interface


def test_why_not() -> None:
    assert depthwise.NAME == "depthwise"
    dw = conv_layer((8, 10, 10), (16, 1, 3, 3), groups=8)
    assert depthwise.why_not(dw, transposed=False) is None
    dense = conv_layer((8, 10, 10), (16, 4, 3, 3), groups=2)
    reason = (
        "needs one input channel per group (groups == C_in); got groups=2 with 8 input channels"
    )
    assert depthwise.why_not(dense, transposed=False) == reason
    with pytest.raises(ValueError, match=r"layer needs one input channel per group"):
        depthwise.conv(np.ones((1, 8, 10, 10)), np.ones((16, 4, 3, 3)), dense, None)
    dw_t = conv_transpose_layer((8, 10, 10), (8, 2, 3, 3), groups=8)
    assert depthwise.why_not(dw_t, transposed=True) is None
    dense_t = conv_transpose_layer((8, 10, 10), (8, 2, 3, 3), groups=4)
    assert depthwise.why_not(dense_t, transposed=True) == (
        "needs one input channel per group (groups == C_in); got groups=4 with 8 input channels"
    )
    with pytest.raises(ValueError, match=r"layer needs one input channel per group"):
        depthwise.conv_transpose(np.ones((1, 8, 10, 10)), np.ones((8, 2, 3, 3)), dense_t, None)


@pytest.mark.parametrize("transposed", [False, True])
def test_counts(transposed: bool) -> None:
    if transposed:
        layer = conv_transpose_layer((128, 56, 56), (128, 1, 3, 3), padding=1, groups=128)
    else:
        layer = conv_layer((128, 56, 56), (128, 1, 3, 3), padding=1, groups=128)
    got = depthwise.counts(layer, 4, 4, transposed=transposed)
    assert isinstance(got, Counts)
    useful = 2 * 4 * 128 * 9 * 56 * 56
    assert useful <= got.gemm_flops <= 1.2 * useful
    assert got.gemm_calls >= 1 and got.stream_bytes > 0 and got.work_bytes > 0
