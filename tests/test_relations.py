"""The relations, exactly: each upsampler, and the sub-pixel layer, is a transposed convolution."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from convmat import (
    conv,
    conv_matrix,
    conv_transpose,
    conv_transpose_matrix,
    pixel_shuffle,
    pixel_shuffle_as_conv_transpose,
    pixel_shuffle_matrix,
    upsample,
    upsample_as_conv_transpose,
    upsample_matrix,
)
from tests.test_pad import fixture_cases

MODES = {
    "nearest": None,
    "nearest-exact": None,
    "bed_of_nails": None,
    "linear": 1,
    "bilinear": 2,
    "trilinear": 3,
    "bicubic": 2,
}


@st.composite
def relations(draw: Any) -> dict[str, Any]:
    mode = draw(st.sampled_from(sorted(MODES)))
    ndim = MODES[mode] or draw(st.integers(1, 3))
    top = 6 if ndim < 3 else 3
    spatial = tuple(draw(st.integers(1, top)) for _ in range(ndim))
    scales = tuple(draw(st.integers(1, 4 if ndim < 3 else 3)) for _ in range(ndim))
    if draw(st.booleans()):
        return {"spatial": spatial, "mode": mode, "scale_factor": scales}
    sizes = tuple(n * s for n, s in zip(spatial, scales, strict=True))
    return {"spatial": spatial, "mode": mode, "size": sizes}


def _kwargs(case: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in case.items() if k != "spatial"}


# ---------------------------------------------------------------- the three relations by hand


def test_nearest_is_a_ones_kernel() -> None:
    t = upsample_as_conv_transpose((3, 4), scale_factor=(2, 3))
    assert_array_equal(t.weight, np.ones((1, 1, 2, 3)))
    assert t.stride == (2, 3) and t.padding == ((0, 0), (0, 0)) and t.input_padding == 0
    C = conv_transpose_matrix((1, 3, 4), t.weight, stride=t.stride)
    assert (C != upsample_matrix((3, 4), scale_factor=(2, 3))).nnz == 0


def test_bed_of_nails_is_a_one_hot_kernel() -> None:
    t = upsample_as_conv_transpose(5, scale_factor=3, mode="bed_of_nails")
    assert_array_equal(t.weight, [[[1, 0, 0]]])
    x = np.arange(1.0, 6.0)
    assert_array_equal(
        conv_transpose(x[None, None], t.weight, stride=3)[0, 0],
        upsample(x[None], scale_factor=3, mode="bed_of_nails")[0],
    )


def test_linear_is_a_tent_after_replicate_padding() -> None:
    t = upsample_as_conv_transpose(4, scale_factor=2, mode="linear")
    assert_array_equal(t.weight[0, 0], [0.25, 0.75, 0.75, 0.25])
    assert t.padding == ((3, 3),) and t.input_padding == 1
    t3 = upsample_as_conv_transpose(4, scale_factor=3, mode="linear")
    assert_allclose(t3.weight[0, 0], [1 / 3, 2 / 3, 1, 2 / 3, 1 / 3, 0])  # size 2s, last tap 0
    assert t3.padding == ((4, 5),)


def test_zero_padding_is_exact_only_in_the_interior() -> None:
    """Without the replicate padding the borders miss weight: the first output is ¾·x₀."""
    x = np.array([4.0, 8.0, 12.0, 8.0])
    tent = np.array([[[0.25, 0.75, 0.75, 0.25]]])
    plain = conv_transpose(x[None, None], tent, stride=2, padding=1)[0, 0]
    exact = upsample(x[None], scale_factor=2, mode="linear")[0]
    assert_array_equal(plain[1:-1], exact[1:-1])
    assert plain[0] == 0.75 * x[0] and exact[0] == x[0]
    assert plain[-1] == 0.75 * x[-1] and exact[-1] == x[-1]


# ---------------------------------------------------------------- everywhere, every mode


@settings(max_examples=150, deadline=None)
@given(relations(), st.integers(0, 2**32 - 1))
def test_equals_upsample_matrix_and_fast_path(case: dict[str, Any], seed: int) -> None:
    t = upsample_as_conv_transpose(case["spatial"], **_kwargs(case))
    U = upsample_matrix(case["spatial"], **_kwargs(case))
    M = t.matrix()
    assert M.shape == U.shape and M.nnz == np.count_nonzero(M.data) and M.has_sorted_indices
    powers_of_two = all(s & (s - 1) == 0 for s in t.stride)
    if powers_of_two:  # every weight and product is dyadic: exact equality
        assert abs(M - U).max() == 0
    else:  # torch steps by the rounded 1/s
        assert abs(M - U).max() < 1e-12
    x = np.random.default_rng(seed).integers(-3, 4, (2, 3, *case["spatial"])).astype(float)
    assert_allclose(t.apply(x), upsample(x, **_kwargs(case)), atol=1e-12)
    assert_allclose(t.apply(x[0]), upsample(x[0], **_kwargs(case)), atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(relations(), st.integers(0, 2**32 - 1))
def test_torch_conv_transpose_reproduces_interpolate(case: dict[str, Any], seed: int) -> None:
    """The relation in torch alone: F.pad(replicate) + conv_transpose == F.interpolate."""
    torch = pytest.importorskip("torch")
    from convmat.testing import torch_conv_transpose

    if case["mode"] == "bed_of_nails":
        return
    t = upsample_as_conv_transpose(case["spatial"], **_kwargs(case))
    x = np.random.default_rng(seed).standard_normal((2, 1, *case["spatial"]))
    r = t.input_padding
    padded = x
    if r:
        padded = torch.nn.functional.pad(
            torch.from_numpy(x), [r] * 2 * len(t.spatial), mode="replicate"
        ).numpy()
    y = torch_conv_transpose(padded, t.weight, stride=t.stride, padding=t.padding)
    reference = torch.nn.functional.interpolate(torch.from_numpy(x), **_kwargs(case)).numpy()
    assert_allclose(y, reference, atol=1e-12)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scale_factor": 1.5}, "scale_factor must be a whole number"),
        ({"size": 5}, "scale_factor must be a whole number on every axis .* got output"),
        ({"scale_factor": 2, "mode": "linear", "align_corners": True}, "align_corners must be"),
        ({"scale_factor": 2, "mode": "bilinear"}, "spatial must have 2 dims"),
        ({"scale_factor": 2, "mode": "area"}, "mode must be one of"),
    ],
)
def test_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        upsample_as_conv_transpose((3,), **kwargs)


def test_apply_checks_the_shape() -> None:
    t = upsample_as_conv_transpose((3, 3), scale_factor=2)
    with pytest.raises(ValueError, match=r"x must have spatial shape \(3, 3\); got \(3, 4\)"):
        t.apply(np.zeros((1, 3, 4)))
    with pytest.raises(ValueError, match="x must have shape"):
        t.apply(np.zeros(3))


# ---------------------------------------------------------------- sub-pixel: conv + PixelShuffle


@st.composite
def subpixel_cases(draw: Any) -> dict[str, Any]:
    """A stride-1 conv (weight, padding <= k - 1 per side) and the input spatial shape."""
    r = draw(st.integers(1, 3))
    c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    form = draw(st.sampled_from(["int", "axes", "pairs", "full", "valid"]))
    if form == "int":
        p = draw(st.integers(0, min(k) - 1))
        padding: Any = p
        pads = [(p, p), (p, p)]
    elif form == "axes":
        per = tuple(draw(st.integers(0, kk - 1)) for kk in k)
        padding, pads = per, [(v, v) for v in per]
    elif form == "pairs":
        pads = [(draw(st.integers(0, kk - 1)), draw(st.integers(0, kk - 1))) for kk in k]
        padding = tuple(pads)
    else:
        padding = form
        pads = [(kk - 1, kk - 1) if form == "full" else (0, 0) for kk in k]
    spatial = tuple(
        draw(st.integers(max(1, kk - lo - hi), 5)) for kk, (lo, hi) in zip(k, pads, strict=True)
    )
    return {
        "r": r,
        "weight_shape": (c_out * r * r, c_in, *k),
        "padding": padding,
        "spatial": spatial,
    }


def test_subpixel_kernel_by_hand() -> None:
    """r = 2, k = 1: the four 1x1 kernels of one output channel tile a 2x2 stride-2 kernel."""
    w = np.array([1.0, 2.0, 3.0, 4.0]).reshape(4, 1, 1, 1)
    t = pixel_shuffle_as_conv_transpose(w, 2)
    assert_array_equal(t.weight, [[[[1, 2], [3, 4]]]])
    assert t.stride == (2, 2) and t.padding == ((0, 0), (0, 0)) and t.output_padding == (0, 0)
    # k = 3, p = 1 ("same"): the taps are flipped and the transposed padding is r(k-1-p) = 2
    w = np.arange(36.0).reshape(4, 1, 3, 3)
    t = pixel_shuffle_as_conv_transpose(w, 2, padding=1)
    assert t.weight.shape == (1, 1, 6, 6) and t.padding == ((2, 2), (2, 2))
    for c in range(4):
        a, b = divmod(c, 2)
        for u in range(3):
            for v in range(3):
                assert t.weight[0, 0, a + 2 * (2 - u), b + 2 * (2 - v)] == w[c, 0, u, v]


@settings(max_examples=120, deadline=None)
@given(subpixel_cases(), st.integers(0, 2**32 - 1))
def test_subpixel_matrices_are_equal(case: dict[str, Any], seed: int) -> None:
    """pixel_shuffle_matrix @ conv_matrix == conv_transpose_matrix, exactly (integer weights)."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-3, 4, case["weight_shape"]).astype(float)
    r, padding = case["r"], case["padding"]
    input_shape = (w.shape[1], *case["spatial"])
    t = pixel_shuffle_as_conv_transpose(w, r, padding=padding)
    C = conv_matrix(input_shape, w, padding=padding)
    z_shape = (w.shape[0], *conv(np.zeros((1, *input_shape)), w, padding=padding).shape[2:])
    S = pixel_shuffle_matrix(z_shape, r)
    T = t.matrix(input_shape)
    assert T.shape == (S @ C).shape
    assert abs(S @ C - T).max() == 0
    x = rng.integers(-3, 4, (2, *input_shape)).astype(float)
    assert_array_equal(t.apply(x), pixel_shuffle(conv(x, w, padding=padding), r))
    assert_array_equal(t.apply(x[0]), pixel_shuffle(conv(x[0], w, padding=padding), r))


@settings(max_examples=60, deadline=None)
@given(subpixel_cases(), st.integers(0, 2**32 - 1))
def test_subpixel_against_torch(case: dict[str, Any], seed: int) -> None:
    """torch's ConvTranspose2d with the rearranged kernel equals Conv2d + PixelShuffle."""
    torch = pytest.importorskip("torch")
    from convmat.testing import torch_conv, torch_conv_transpose

    rng = np.random.default_rng(seed)
    w = rng.standard_normal(case["weight_shape"])
    x = rng.standard_normal((2, w.shape[1], *case["spatial"]))
    r, padding = case["r"], case["padding"]
    t = pixel_shuffle_as_conv_transpose(torch.from_numpy(w), r, padding=padding)
    z = torch.from_numpy(torch_conv(x, w, padding=padding))
    reference = torch.nn.functional.pixel_shuffle(z, r).numpy()
    y = torch_conv_transpose(x, t.weight, stride=t.stride, padding=t.padding)
    assert_allclose(y, reference, rtol=1e-12, atol=1e-12)


def test_subpixel_fixtures() -> None:
    cases = fixture_cases("subpixel")
    assert len(cases) >= 3
    for meta, arrays in cases:
        t = pixel_shuffle_as_conv_transpose(arrays["w"], meta["factor"], padding=meta["padding"])
        assert_array_equal(t.apply(arrays["x"]), arrays["y"])
        x0 = arrays["x"][0]
        assert_array_equal(t.matrix(x0.shape) @ x0.ravel(), arrays["y"][0].ravel())


def test_subpixel_keeps_float32() -> None:
    t = pixel_shuffle_as_conv_transpose(np.ones((4, 1, 2, 2), dtype=np.float32), 2)
    assert t.weight.dtype == np.float32
    assert t.apply(np.ones((1, 3, 3), dtype=np.float32)).dtype == np.float32
    assert t.matrix((1, 3, 3)).dtype == np.float32


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((np.ones((4, 1, 3, 3)), 2), {"padding": 3}, ValueError, "padding must be <= kernel_size"),
        ((np.ones((4, 1, 3, 3)), 2), {"padding": ((0, 3), 1)}, ValueError, r"got \(\(0, 3\)"),
        ((np.ones((3, 1, 3, 3)), 2), {}, ValueError, "divisible by upscale_factor² = 4"),
        ((np.ones((4, 1, 3)), 2), {}, ValueError, "weight must have shape .* Conv2d"),
        ((np.ones((4, 1, 3, 3)), 0), {}, ValueError, "upscale_factor must be >= 1; got 0"),
        ((np.ones((4, 1, 3, 3)), 2.0), {}, TypeError, "upscale_factor must be an int"),
        ((np.ones((4, 1, 3, 3)), 2), {"padding": -1}, ValueError, "padding must be >= 0"),
        ((np.array([["a"]]), 2), {}, TypeError, "weight must be a real or complex"),
    ],
)
def test_subpixel_errors(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        pixel_shuffle_as_conv_transpose(*args, **kwargs)


def test_subpixel_apply_checks_the_shape() -> None:
    t = pixel_shuffle_as_conv_transpose(np.ones((4, 2, 1, 1)), 2)
    with pytest.raises(ValueError, match="x must have shape"):
        t.apply(np.ones(3))
