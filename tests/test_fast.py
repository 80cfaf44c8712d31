"""The fast path: conv, conv_transpose (four methods) and zero_insert.

Oracles: worked examples by hand; PyTorch live (hypothesis geometries) and through
committed fixtures (``conv.npz``, ``fast.npz``); the sparse matrices; and the
four transposed methods against each other.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from convmat import (
    _blas,
    conv,
    conv_matrix,
    conv_transpose,
    conv_transpose_matrix,
    conv_transpose_output_padding,
    zero_insert,
)
from convmat._fast import direct as _fast
from tests.strategies import conv_layers, conv_transpose_layers, geometry, small_ints

FIXTURES = Path(__file__).parent / "fixtures"
METHODS = ("gemm", "scatter", "fractional", "matrix")
D2L_X = np.array([[[0.0, 1.0], [2.0, 3.0]]])
D2L_K = np.array([[[[0.0, 1.0], [2.0, 3.0]]]])


def _cases(name: str) -> list[tuple[dict[str, Any], dict[str, np.ndarray[Any, Any]]]]:
    data = np.load(FIXTURES / name)
    cases = []
    number = 0
    while f"{number}_meta" in data:
        meta = json.loads(str(data[f"{number}_meta"]))
        arrays = {
            key[len(f"{number}_") :]: data[key] for key in data if key.startswith(f"{number}_")
        }
        cases.append((meta, arrays))
        number += 1
    return cases


def _bias(rng: np.random.Generator, channels: int, use: bool) -> np.ndarray[Any, Any] | None:
    return rng.integers(-3, 4, channels).astype(np.float64) if use else None


# ---------------------------------------------------------------- worked examples


def test_d2l_conv() -> None:
    y = conv(np.arange(9.0).reshape(1, 3, 3), [[[[1, 2], [3, 4]]]])
    assert_array_equal(y, [[[27, 37], [57, 67]]])


@pytest.mark.parametrize("method", METHODS)
def test_d2l_transposed_examples(method: str) -> None:
    assert_array_equal(
        conv_transpose(D2L_X, D2L_K, method=method), [[[0, 0, 1], [0, 4, 6], [4, 12, 9]]]
    )
    assert_array_equal(conv_transpose(D2L_X, D2L_K, padding=1, method=method), [[[4]]])
    assert_array_equal(
        conv_transpose(D2L_X, D2L_K, stride=2, method=method),
        [[[0, 0, 0, 1], [0, 0, 2, 3], [0, 2, 0, 3], [4, 6, 6, 9]]],
    )


@pytest.mark.parametrize("method", METHODS)
def test_pytorch_forum_example(method: str) -> None:
    w = np.array([[[[4.0, 2.0], [0.0, 1.0]]]])
    x = np.array([[[1.0, 1.0, 3.0], [2.0, 3.0, 1.0], [4.0, 0.0, 4.0]]])
    assert_array_equal(conv(x, w), [[[9, 11], [14, 18]]])
    assert_array_equal(
        conv_transpose(x, w, method=method),
        [[[4, 6, 14, 6], [8, 17, 11, 5], [16, 10, 19, 9], [0, 4, 0, 4]]],
    )


def test_padding_modes_by_hand() -> None:
    x = np.array([[1.0, 2.0, 3.0]])
    w = np.array([[[1.0, 10.0, 100.0]]])
    # Padded inputs: reflect [2 1 2 3 2], replicate [1 1 2 3 3], circular [3 1 2 3 1].
    assert_array_equal(conv(x, w, padding=1, padding_mode="zeros"), [[210, 321, 32]])
    assert_array_equal(conv(x, w, padding=1, padding_mode="reflect"), [[212, 321, 232]])
    assert_array_equal(conv(x, w, padding=1, padding_mode="replicate"), [[211, 321, 332]])
    assert_array_equal(conv(x, w, padding=1, padding_mode="circular"), [[213, 321, 132]])


def test_zero_insert_examples() -> None:
    x = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    assert_array_equal(zero_insert(x, 2)[0, 0], [[1, 0, 2], [0, 0, 0], [3, 0, 4]])
    assert_array_equal(zero_insert(x, (1, 3))[0, 0], [[1, 0, 0, 2], [3, 0, 0, 4]])
    # A tuple of length m strides the last m axes of any array.
    assert_array_equal(zero_insert(np.array([1.0, 2.0, 3.0]), (2,)), [1, 0, 2, 0, 3])
    assert zero_insert(np.ones((2, 3, 4, 5, 6)), 3).shape == (2, 3, 10, 13, 16)
    assert zero_insert(np.ones((1, 1, 4), np.float32), 2).dtype == np.float32
    assert zero_insert(np.ones((1, 1, 4), int), 2).dtype == np.float64


def test_fractional_is_zero_insert_pad_and_flipped_conv() -> None:
    """The "fractional" recipe spelled out with public functions, for one 1-d case."""
    rng = np.random.default_rng(1)
    x = rng.integers(-3, 4, (1, 2, 4)).astype(float)
    w = rng.integers(-3, 4, (2, 3, 3)).astype(float)  # (C_in, C_out, k)
    s, p, op = 2, 2, 1  # d·(k−1) − p = 0 low; 0 + op = 1 high
    z = np.pad(zero_insert(x, s), ((0, 0), (0, 0), (0, 1)))
    flipped = w.transpose(1, 0, 2)[:, :, ::-1]
    assert_array_equal(
        conv_transpose(x, w, stride=s, padding=p, output_padding=op), conv(z, flipped)
    )


# ---------------------------------------------------------------- fixtures (torch, committed)


def test_conv_fixtures_every_method() -> None:
    cases = _cases("conv.npz")
    assert len(cases) >= 30
    for meta, arrays in cases:
        kwargs = meta["geometry"]  # JSON lists: every sequence form is accepted
        x, w, b, y = arrays["x"], arrays["w"], arrays["b"], arrays["y"]
        if meta["transposed"]:
            for method in METHODS:
                got = conv_transpose(x, w, b, method=method, **kwargs)
                assert_array_equal(got, y, err_msg=f"{method} {meta}")
        else:
            assert_array_equal(conv(x, w, b, **kwargs), y, err_msg=str(meta))


def test_fast_fixtures() -> None:
    cases = _cases("fast.npz")
    kinds = {meta["kind"] for meta, _ in cases}
    assert kinds == {"dtype", "grad", "nonfinite"}
    for meta, arrays in cases:
        kwargs = meta["geometry"]  # JSON lists: every sequence form is accepted
        x, w, b, y = arrays["x"], arrays["w"], arrays["b"], arrays["y"]
        if meta["kind"] == "grad":
            # The backward convolution: conv_transpose of the output gradient is the
            # input gradient torch's autograd computes, with the input size restored.
            op = _restoring_output_padding(x, arrays["g"], w, kwargs)
            got = conv_transpose(arrays["g"], w, output_padding=op, **kwargs)
            assert_allclose(got, y, rtol=1e-12, atol=1e-12, err_msg=str(meta))
            continue
        for method in METHODS if meta["transposed"] else ("conv",):
            if method == "conv":
                got = conv(x, w, b, **kwargs)
            else:
                got = conv_transpose(x, w, b, method=method, **kwargs)
            assert got.dtype == y.dtype, meta
            tol = 1e-5 if y.dtype == np.float32 else 1e-12
            assert_allclose(got, y, rtol=tol, atol=tol, err_msg=f"{method} {meta}")


def _restoring_output_padding(
    x: np.ndarray[Any, Any],
    g: np.ndarray[Any, Any],
    w: np.ndarray[Any, Any],
    kwargs: dict[str, Any],
) -> tuple[int, ...]:
    """The output_padding that takes an output-shaped ``g`` back to ``x``'s size."""
    geo = {key: kwargs[key] for key in ("stride", "padding", "dilation") if key in kwargs}
    return conv_transpose_output_padding(g.shape[2:], x.shape[2:], w.shape[2:], **geo)


# ---------------------------------------------------------------- torch, live


@settings(max_examples=150, deadline=None)
@given(conv_layers(), st.data(), st.booleans(), st.booleans())
def test_conv_matches_torch(
    layer: dict[str, Any], data: st.DataObject, batched: bool, with_bias: bool
) -> None:
    pytest.importorskip("torch")
    from convmat.testing import torch_conv

    w = data.draw(small_ints(layer["weight_shape"]))
    shape = (2, *layer["input_shape"]) if batched else layer["input_shape"]
    x = data.draw(small_ints(shape))
    b = _bias(np.random.default_rng(0), layer["weight_shape"][0], with_bias)
    y = conv(x, w, b, **geometry(layer))
    assert y.ndim == x.ndim
    assert_array_equal(y, torch_conv(x, w, b, **geometry(layer)))


@settings(max_examples=150, deadline=None)
@given(conv_transpose_layers(), st.data(), st.booleans(), st.booleans())
def test_conv_transpose_matches_torch(
    layer: dict[str, Any], data: st.DataObject, batched: bool, with_bias: bool
) -> None:
    pytest.importorskip("torch")
    from convmat.testing import torch_conv_transpose

    w = data.draw(small_ints(layer["weight_shape"]))
    shape = (2, *layer["input_shape"]) if batched else layer["input_shape"]
    x = data.draw(small_ints(shape))
    b = _bias(np.random.default_rng(0), layer["weight_shape"][1] * layer["groups"], with_bias)
    expected = torch_conv_transpose(x, w, b, **geometry(layer))
    for method in METHODS:
        got = conv_transpose(x, w, b, method=method, **geometry(layer))
        assert_array_equal(got, expected, err_msg=method)


@settings(max_examples=40, deadline=None)
@given(conv_layers(modes=("zeros",), strings=False), st.data())
def test_conv_transpose_is_the_backward_conv(layer: dict[str, Any], data: st.DataObject) -> None:
    """conv_transpose of an output gradient == torch autograd's input gradient of conv."""
    torch = pytest.importorskip("torch")
    w = data.draw(small_ints(layer["weight_shape"]))
    x = data.draw(small_ints((2, *layer["input_shape"])))
    kwargs = geometry(layer, "padding_mode")
    y = conv(x, w, **kwargs)
    g = data.draw(small_ints(y.shape))
    xt = torch.from_numpy(x).requires_grad_(True)
    from convmat.testing import torch_conv

    assert_array_equal(torch_conv(x, w, **kwargs), y)
    fn = getattr(torch.nn.functional, f"conv{w.ndim - 2}d")
    pads = kwargs["padding"]
    if isinstance(pads, tuple) and pads and isinstance(pads[0], tuple):
        return  # pairs are not torch conv arguments; covered by the matrix tests
    fn(xt, torch.from_numpy(w), **kwargs).backward(torch.from_numpy(g))
    op = _restoring_output_padding(x, g, w, kwargs)
    got = conv_transpose(g, w, output_padding=op, **kwargs)
    assert_array_equal(got, xt.grad.numpy())


# ---------------------------------------------------------------- the sparse form


@settings(max_examples=100, deadline=None)
@given(conv_layers(), st.data())
def test_conv_equals_the_matrix(layer: dict[str, Any], data: st.DataObject) -> None:
    w = data.draw(small_ints(layer["weight_shape"]))
    x = data.draw(small_ints((3, *layer["input_shape"])))
    C = conv_matrix(layer["input_shape"], w, **geometry(layer))
    y = conv(x, w, **geometry(layer))
    assert_array_equal(y.reshape(3, -1), (C @ x.reshape(3, -1).T).T)


@settings(max_examples=100, deadline=None)
@given(conv_transpose_layers(), st.data())
def test_gemm_equals_the_matrix(layer: dict[str, Any], data: st.DataObject) -> None:
    w = data.draw(small_ints(layer["weight_shape"]))
    x = data.draw(small_ints((3, *layer["input_shape"])))
    C = conv_transpose_matrix(layer["input_shape"], w, **geometry(layer))
    y = conv_transpose(x, w, **geometry(layer))
    assert_array_equal(y.reshape(3, -1), (C @ x.reshape(3, -1).T).T)


@settings(max_examples=60, deadline=None)
@given(conv_transpose_layers(max_dims=2), st.integers(0, 2**32 - 1), st.booleans())
def test_four_methods_agree_on_fractional_data(
    layer: dict[str, Any], seed: int, complex_: bool
) -> None:
    rng = np.random.default_rng(seed)
    dtype = np.complex128 if complex_ else np.float64
    w = rng.standard_normal(layer["weight_shape"]).astype(dtype)
    x = rng.standard_normal((2, *layer["input_shape"])).astype(dtype)
    if complex_:
        w += 1j * rng.standard_normal(w.shape)
        x += 1j * rng.standard_normal(x.shape)
    results = {m: conv_transpose(x, w, method=m, **geometry(layer)) for m in METHODS}
    for method, y in results.items():
        assert y.dtype == dtype
        assert_allclose(y, results["matrix"], rtol=1e-12, atol=1e-12, err_msg=method)


# ---------------------------------------------------------------- routes inside the gemm path


def _force_layout(monkeypatch: pytest.MonkeyPatch, layout: str) -> None:
    """Make every GEMM tap sum run channels-first or channels-last, whatever its size.

    Channels last also stores one index of the first spatial axis per band and packs
    a strided last axis one sample at a time.
    """
    last = layout == "channels last"
    monkeypatch.setattr(_fast, "CHANNELS_LAST_MIN", 2 if last else 2**62)
    monkeypatch.setattr(_fast, "CHANNELS_LAST_ROW_FLOPS", 0)
    monkeypatch.setattr(_fast, "BAND_BYTES", 1)
    monkeypatch.setattr(_fast, "PACK_BYTES", 1)


@pytest.mark.parametrize(
    ("input_shape", "weight_shape", "kwargs"),
    [
        ((3, 9), (4, 3, 4), {"stride": 2, "padding": 1}),
        ((3, 10), (4, 3, 4), {"stride": 2, "padding": ((0, 3),)}),
        ((2, 8, 11), (5, 2, 4, 3), {"stride": (2, 3), "padding": ((1, 2), (2, 0))}),
        ((2, 5, 6, 13), (3, 2, 3, 2, 5), {"stride": (1, 2, 2), "padding": 2, "dilation": 3}),
        ((1, 7), (2, 1, 3), {"stride": 3}),
        ((1, 2), (2, 1, 3), {"stride": 2, "padding": 2}),  # no position holds every phase
        ((3, 6, 7), (2, 3, 3, 3), {"stride": 2, "padding": 1, "padding_mode": "reflect"}),
    ],
)
@pytest.mark.parametrize("pack_bytes", [1, 2**40], ids=["a sample at a time", "all at once"])
def test_channels_last_packing_of_a_strided_last_axis(
    input_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    kwargs: dict[str, Any],
    pack_bytes: int,
) -> None:
    """The transpose-first packing (neighbouring columns as one run) equals the matrix exactly."""
    rng = np.random.default_rng(7)
    w = rng.integers(-3, 4, weight_shape).astype(float)
    x = rng.integers(-3, 4, (3, *input_shape)).astype(float)
    calls = []
    with pytest.MonkeyPatch.context() as patch:
        _force_layout(patch, "channels last")
        patch.setattr(_fast, "PACK_BYTES", pack_bytes)
        packer = _fast._pack_channels_last
        patch.setattr(_fast, "_pack_channels_last", lambda *a: calls.append(1) or packer(*a))
        y = conv(x, w, **kwargs)
    assert calls, "the layer should take the channels-last packing"
    C = conv_matrix(input_shape, w, **kwargs)
    assert_array_equal(y.reshape(3, -1), (C @ x.reshape(3, -1).T).T)


@pytest.mark.parametrize("stacked", [0, 2**20], ids=["shifts as offsets", "shifts stacked"])
@pytest.mark.parametrize(
    ("input_shape", "weight_shape", "kwargs"),
    [
        ((3, 9), (4, 3, 3), {"padding": 1}),
        ((2, 9), (3, 2, 2), {"dilation": 2, "padding": 1}),  # shift 1 has no tap
        ((2, 6, 7), (3, 2, 3, 4), {"stride": (2, 1), "padding": ((1, 0), (2, 1))}),
        ((2, 4, 5, 6), (3, 2, 2, 3, 3), {"stride": (1, 1, 2), "padding": 1, "dilation": 2}),
    ],
)
def test_last_axis_shifts_stacked_or_not_match_the_matrix(
    input_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    kwargs: dict[str, Any],
    stacked: int,
) -> None:
    """Last-axis shifts as GEMM rows summed by the store, or as read offsets: same result."""
    rng = np.random.default_rng(11)
    w = rng.integers(-3, 4, weight_shape).astype(float)
    x = rng.integers(-3, 4, (2, *input_shape)).astype(float)
    b = rng.integers(-3, 4, weight_shape[0]).astype(float)
    with pytest.MonkeyPatch.context() as patch:
        _force_layout(patch, "channels last")
        patch.setattr(_fast, "STACKED_ROWS", stacked)
        y = conv(x, w, b, **kwargs)
    C = conv_matrix(input_shape, w, **kwargs)
    expected = (C @ x.reshape(2, -1).T).T + b.repeat(y[0, 0].size)
    assert_array_equal(y.reshape(2, -1), expected)


@settings(max_examples=60, deadline=None)
@given(conv_layers(modes=("zeros", "circular")), conv_transpose_layers(), st.data())
def test_channels_last_layout_matches_the_matrix(
    layer: dict[str, Any], t_layer: dict[str, Any], data: st.DataObject
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        _force_layout(patch, "channels last")
        w = data.draw(small_ints(layer["weight_shape"]))
        x = data.draw(small_ints((2, *layer["input_shape"])))
        b = data.draw(small_ints((layer["weight_shape"][0],)))
        C = conv_matrix(layer["input_shape"], w, **geometry(layer))
        y = conv(x, w, b, **geometry(layer))
        assert_array_equal(y.reshape(2, -1), (C @ x.reshape(2, -1).T).T + b.repeat(y[0, 0].size))
        w = data.draw(small_ints(t_layer["weight_shape"]))
        x = data.draw(small_ints((2, *t_layer["input_shape"])))
        C = conv_transpose_matrix(t_layer["input_shape"], w, **geometry(t_layer))
        y = conv_transpose(x, w, **geometry(t_layer))
        assert_array_equal(y.reshape(2, -1), (C @ x.reshape(2, -1).T).T)


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "kwargs"),
    [
        ((1, 1, 40, 37), (1, 1, 5, 5), {"stride": 2, "padding": 2}),  # single channel: AXPY
        ((2, 8, 17, 18), (6, 8, 4, 4), {"stride": 2, "padding": 1}),  # stacked phases (k = 2s)
        ((2, 8, 17, 18), (6, 8, 3, 3), {"stride": 2, "padding": 1}),  # per-tap GEMMs
        ((2, 6, 15, 11), (6, 1, 3, 3), {"groups": 6, "padding": 1}),  # depthwise
        ((3, 4, 9, 8, 7), (2, 2, 3, 2, 3), {"groups": 2, "stride": (2, 1, 3), "dilation": 2}),
        ((2, 6, 7, 9), (4, 3, 2, 3), {"groups": 2, "padding": ((1, 0), (2, 1))}),
    ],
)
@pytest.mark.parametrize("blas", [True, False])
@pytest.mark.parametrize("layout", ["channels first", "channels last"])
def test_routes_match_the_matrix(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    kwargs: dict[str, Any],
    blas: bool,
    layout: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each route of the tap sum, in both memory layouts, through BLAS and NumPy."""
    monkeypatch.setattr(_blas, "_ENABLED", blas)
    _force_layout(monkeypatch, layout)
    rng = np.random.default_rng(7)
    x = rng.integers(-3, 4, x_shape).astype(np.float64)
    w = rng.integers(-3, 4, w_shape).astype(np.float64)
    C = conv_matrix(x_shape[1:], w, **kwargs)
    y = conv(x, w, **kwargs)
    assert_array_equal(y.reshape(len(x), -1), (C @ x.reshape(len(x), -1).T).T)
    g = rng.integers(-3, 4, y.shape).astype(np.float64)
    op = _restoring_output_padding(x, g, w, kwargs)
    back = conv_transpose(g, w, output_padding=op, **kwargs)
    assert_array_equal(back.reshape(len(g), -1), (C.T @ g.reshape(len(g), -1).T).T)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128, np.int64])
@pytest.mark.parametrize("blas", [True, False])
def test_blas_transpose_copies_exactly(
    dtype: type, blas: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``b = a.T`` bit for bit, into a wider array, from views with any leading dimension."""
    monkeypatch.setattr(_blas, "_ENABLED", blas)
    rng = np.random.default_rng(5)
    a = (rng.standard_normal((13, 21)) * 100).astype(dtype)
    if np.dtype(dtype).kind == "c":
        a += 1j * rng.standard_normal(a.shape).astype(dtype)
    a[2, 3:6] = [np.nan, -0.0, np.inf] if np.dtype(dtype).kind != "i" else [1, 2, 3]
    b = np.zeros((24, 15), dtype)
    _blas.transpose(a[2:, 3:20], b[:17, 1:12])
    expected = np.zeros_like(b)
    expected[:17, 1:12] = a[2:, 3:20].T
    assert_array_equal(b, expected)
    assert_array_equal(np.signbit(b.real), np.signbit(expected.real))
    strided = np.zeros((21, 13), dtype)
    _blas.transpose(a[:, ::-1], strided)  # not BLAS-shaped: NumPy's copy
    assert_array_equal(strided, a[:, ::-1].T)
    # A batch: b[i] = a[i].T, batch steps of any sign, views inside wider arrays.
    batch = np.stack([a, a[::-1, ::-1], np.roll(a, 1)])
    out = np.zeros((3, 24, 15), dtype)
    _blas.transpose(batch[::-1, 2:, 3:20], out[:, :17, 1:12])
    expected = np.zeros_like(out)
    expected[:, :17, 1:12] = np.swapaxes(batch[::-1, 2:, 3:20], 1, 2)
    assert_array_equal(out, expected)
    empty = np.zeros((0, 21, 13), dtype)
    _blas.transpose(np.zeros((0, 13, 21), dtype), empty)


def test_float32_accuracy_on_a_channel_heavy_layer() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 16, 20, 21)).astype(np.float32)
    w = rng.standard_normal((24, 16, 3, 3)).astype(np.float32)
    y = conv(x, w, padding=1)
    assert y.dtype == np.float32
    ref = conv(x.astype(np.float64), w.astype(np.float64), padding=1)
    assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    back = conv_transpose(y, w, padding=1)
    assert back.dtype == np.float32
    ref_back = conv_transpose(ref, w.astype(np.float64), padding=1)
    assert_allclose(back, ref_back, rtol=1e-4, atol=1e-3)


# ---------------------------------------------------------------- dtypes and special values


def test_dtypes() -> None:
    x32 = np.ones((1, 2, 5), np.float32)
    w32 = np.ones((3, 2, 2), np.float32)
    assert conv(x32, w32).dtype == np.float32
    assert conv_transpose(conv(x32, w32), w32).dtype == np.float32
    assert conv(x32.astype(np.float16), w32).dtype == np.float32
    assert conv(x32, w32.astype(np.float64)).dtype == np.float64
    # Integer (and bool) arrays count as float64, as in the matrix builders.
    assert conv(np.ones((1, 2, 5), int), np.ones((3, 2, 2), int)).dtype == np.float64
    assert_array_equal(conv(np.ones((2, 5), int), np.ones((3, 2, 2), bool)), np.full((3, 4), 4.0))
    z = conv(x32, w32.astype(np.complex64))
    assert z.dtype == np.complex64
    assert conv_transpose(z, w32, method="fractional").dtype == np.complex64


def test_complex_is_not_conjugated() -> None:
    """Like torch: plain products, no conjugate of the weight."""
    x = np.array([[1j, 2.0, 0.0]])
    w = np.array([[[1j, 1.0]]])
    assert_array_equal(conv(x, w), [[-1 + 2, 2j]])
    assert_array_equal(conv_transpose(np.array([[1.0, 1j]]), w), [[1j, 1 + -1, 1j]])


def test_nan_and_inf_propagate_like_torch() -> None:
    x = np.array([[[1.0, np.inf, 2.0, 3.0]]])
    w = np.array([[[0.0, 1.0]]])
    # torch: conv1d -> [inf, nan, 3]; conv_transpose1d -> [0, nan, inf, 2, 3]
    assert_array_equal(conv(x, w), [[[np.inf, np.nan, 3.0]]])
    for method in METHODS:
        assert_array_equal(
            conv_transpose(x, w, method=method), [[[0.0, np.nan, np.inf, 2.0, 3.0]]], method
        )
    single = np.zeros((1, 1, 30, 30))
    single[0, 0, 5, 5] = np.nan
    y = conv(single, np.ones((1, 1, 3, 3)), padding=1)
    assert np.isnan(y[0, 0, 4:7, 4:7]).all()
    assert np.isnan(y).sum() == 9


def test_empty_batch() -> None:
    w = np.ones((3, 2, 2, 2))
    assert conv(np.ones((0, 2, 5, 5)), w, stride=2).shape == (0, 3, 2, 2)
    for method in METHODS:
        y = conv_transpose(np.ones((0, 3, 2, 2)), w, method=method)
        assert y.shape == (0, 2, 3, 3)


def test_results_never_share_the_work_buffers() -> None:
    """Work buffers are reused between calls; returned arrays must not live in them."""
    rng = np.random.default_rng(5)
    w = rng.standard_normal((3, 2, 3, 3))
    x1, x2 = rng.standard_normal((2, 2, 2, 9, 9))
    y1 = conv(x1, w, padding=1)
    t1 = conv_transpose(y1, w, padding=1)
    first = y1.copy(), t1.copy()
    conv(x2, w, padding=1)
    conv_transpose(conv(x2, w, padding=1), w, padding=1)
    assert_array_equal(y1, first[0])
    assert_array_equal(t1, first[1])
    _fast.clear_scratch()
    assert_array_equal(conv(x1, w, padding=1), first[0])


def test_threads_get_their_own_work_buffers() -> None:
    rng = np.random.default_rng(6)
    w = rng.standard_normal((4, 3, 3, 3))
    inputs = [rng.standard_normal((2, 3, 20, 20)) for _ in range(8)]
    expected = [conv(x, w, padding=1, stride=2) for x in inputs]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda x: conv(x, w, padding=1, stride=2), inputs * 4))
    for got, want in zip(results, expected * 4, strict=True):
        assert_array_equal(got, want)


def test_inputs_are_not_modified() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 6, 6))
    w = rng.standard_normal((2, 2, 3, 3))
    b = rng.standard_normal(2)
    copies = [a.copy() for a in (x, w, b)]
    conv(x, w, b, padding=1, padding_mode="reflect")
    for method in METHODS:
        conv_transpose(x, w, b, stride=2, method=method)
    for a, c in zip((x, w, b), copies, strict=True):
        assert_array_equal(a, c)


# ---------------------------------------------------------------- errors


def _message(fn: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises((ValueError, TypeError)) as info:
        fn(*args, **kwargs)
    return f"{type(info.value).__name__}: {info.value}"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stride": 0},
        {"stride": 1.5},
        {"dilation": (1, 0)},
        {"padding": "same", "stride": 2},
        {"padding": -1},
        {"padding": "bogus"},
        {"groups": 0},
        {"groups": 3},
        {"padding_mode": "mirror"},
        {"padding": 5, "padding_mode": "reflect"},
        {"padding": 0, "dilation": 9},
    ],
)
def test_conv_errors_are_the_matrix_errors(kwargs: dict[str, Any]) -> None:
    x, w = np.ones((1, 2, 5, 5)), np.ones((4, 2, 3, 3))
    assert _message(conv, x, w, **kwargs) == _message(conv_matrix, x.shape[1:], w, **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stride": 0},
        {"padding": "same"},
        {"output_padding": 2, "stride": 2},
        {"padding": 9},
        {"groups": 4},
        {"dilation": True},
    ],
)
def test_conv_transpose_errors_are_the_matrix_errors(kwargs: dict[str, Any]) -> None:
    x, w = np.ones((1, 2, 3, 3)), np.ones((2, 3, 3, 3))
    for method in METHODS:
        assert _message(conv_transpose, x, w, method=method, **kwargs) == _message(
            conv_transpose_matrix, x.shape[1:], w, **kwargs
        )


def test_input_array_errors() -> None:
    w = np.ones((4, 2, 3, 3))
    with pytest.raises(ValueError, match=r"x must have shape \(N, C_in, \*spatial\) or"):
        conv(np.ones((5, 5)), w)
    with pytest.raises(ValueError, match=r"with 2 spatial dims to match the weight; got shape"):
        conv(np.ones((1, 1, 2, 5, 5)), w)
    with pytest.raises(ValueError, match=r"x channels must equal weight.shape\[1\]"):
        conv(np.ones((1, 3, 5, 5)), w)
    with pytest.raises(ValueError, match=r"x channels must equal weight.shape\[0\]"):
        conv_transpose(np.ones((1, 3, 5, 5)), w)
    with pytest.raises(TypeError, match="x must be a real or complex numeric array; got dtype"):
        conv(np.array([["a"]]), w)
    with pytest.raises(TypeError, match="x must be a real or complex numeric array; got dtype obj"):
        conv_transpose(np.ones((1, 4, 3, 3), dtype=object), w)
    with pytest.raises(TypeError, match="weight must be a real or complex numeric array"):
        conv(np.ones((1, 2, 5, 5)), np.ones((4, 2, 3, 3), dtype=object))
    with pytest.raises(ValueError, match=r"weight must have shape \(C_out, C_in // groups"):
        conv(np.ones((1, 2, 5)), np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"bias must have shape \(C_out,\) = \(4,\); got shape"):
        conv(np.ones((1, 2, 5, 5)), w, np.ones(3))
    with pytest.raises(ValueError, match=r"bias must have shape \(C_out,\) = \(6,\); got shape"):
        conv_transpose(np.ones((4, 3, 3)), np.ones((4, 3, 2, 2)), np.ones((2, 3)), groups=2)
    with pytest.raises(TypeError, match="bias must be a real or complex numeric array"):
        conv(np.ones((1, 2, 5, 5)), w, ["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="method must be one of"):
        conv_transpose(np.ones((4, 3, 3)), w, method="im2col")


def test_validation_happens_before_work() -> None:
    """A bad argument is refused at once, even for an input far too big to convolve."""
    huge = np.broadcast_to(np.float32(0), (64, 512, 1024, 1024))  # 128 GiB, never allocated
    with pytest.raises(ValueError, match="stride must be >= 1"):
        conv(huge, np.ones((1, 512, 3, 3), np.float32), stride=0)


def test_zero_insert_errors() -> None:
    with pytest.raises(ValueError, match=r"stride must be >= 1 on every axis; got \(0, 0\)"):
        zero_insert(np.ones((1, 1, 3, 3)), 0)
    with pytest.raises(TypeError, match=r"stride must be an int or a sequence of ints; got 1\.5"):
        zero_insert(np.ones((1, 1, 3)), 1.5)
    with pytest.raises(ValueError, match=r"x must have shape \(N, C, \*spatial\) with at least"):
        zero_insert(np.ones((2, 3)), 2)
    with pytest.raises(ValueError, match="x must have at least 3 axes for 3 strides; got shape"):
        zero_insert(np.ones((2, 3)), (2, 2, 2))
    with pytest.raises(TypeError, match="x must be a real or complex numeric array"):
        zero_insert(np.array(["a", "b"]), (2,))
