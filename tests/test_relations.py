"""upsample_as_conv_transpose: each upsampler equals a transposed convolution, exactly."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from convmat import (
    conv_transpose,
    conv_transpose_matrix,
    upsample,
    upsample_as_conv_transpose,
    upsample_matrix,
)

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
