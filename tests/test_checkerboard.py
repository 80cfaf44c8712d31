"""overlap_map, checkerboard and stack_overlap: hand counts, Cᵀ of ones, closed forms, errors."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_allclose, assert_array_equal

from convmat import (
    checkerboard,
    conv,
    conv_matrix,
    conv_transpose,
    conv_transpose_matrix,
    conv_transpose_output_shape,
    overlap_map,
    periodic_energy,
    phase_means,
    resize_conv_matrix,
    stack_overlap,
    upsample,
)
from tests.strategies import conv_transpose_layers, geometry

# ---------------------------------------------------------------- hand cases

# Interior 1-d counts (k, s) -> one period, from the Distill article and by hand.
INTERIOR = {
    (3, 2): (2, 1),
    (4, 2): (2, 2),
    (2, 2): (1, 1),
    (5, 2): (3, 2),
    (3, 3): (1, 1, 1),
    (5, 3): (2, 2, 1),
    (1, 2): (1, 0),
}


@pytest.mark.parametrize(("ks", "phases"), INTERIOR.items())
def test_checkerboard_phase_counts_by_hand(ks: tuple[int, int], phases: tuple[int, ...]) -> None:
    k, s = ks
    cb = checkerboard(k, s)
    assert cb.phase_counts == (phases,)
    assert cb.uniform == (k % s == 0)
    assert (cb.max_count, cb.min_count) == (math.ceil(k / s), k // s)


def test_k3_s2_on_a_4_input_by_hand() -> None:
    assert_array_equal(overlap_map(4, 3, stride=2), [1, 1, 2, 1, 2, 1, 2, 1, 1])


def test_2d_map_is_the_outer_product_and_squares_the_unevenness() -> None:
    a = overlap_map(5, 3, stride=2)
    b = overlap_map(4, (3,), stride=(2,), padding=1)
    assert_array_equal(overlap_map((5, 4), 3, stride=2, padding=(0, 1)), np.outer(a, b))
    cb = checkerboard((3, 3), 2)
    assert (cb.max_count, cb.min_count, cb.ratio) == (4, 1, 4.0)
    assert_array_equal(cb.tile, [[4, 2], [2, 1]])
    assert cb.period == (2, 2) and cb.axis_uniform == (False, False)


def test_mixed_axes_uniform_only_where_s_divides_k() -> None:
    cb = checkerboard((4, 3), (2, 2))
    assert cb.axis_uniform == (True, False) and not cb.uniform
    assert cb.period == (1, 2)
    assert_array_equal(cb.tile, [[4, 2], [4, 2]])


def test_dilation_sharing_a_factor_with_the_stride_starves_phases() -> None:
    cb = checkerboard(3, 2, dilation=2)
    assert cb.phase_counts == ((3, 0),)
    assert cb.min_count == 0 and cb.ratio == math.inf
    assert checkerboard(4, 4, dilation=2).period == (2,)
    assert checkerboard(2, 2, dilation=3).uniform  # taps at 0, 3: one per phase


def test_str_names_the_verdict() -> None:
    assert str(checkerboard(3, 2)).endswith("checkerboard, period 2, max/min 2/1")
    assert str(checkerboard(4, 2, dilation=3)).endswith("-> uniform")
    assert "d=3" in str(checkerboard(4, 2, dilation=3))


def test_stride_1_is_uniform_and_counts_k() -> None:
    assert_array_equal(overlap_map(5, 3), [1, 2, 3, 3, 3, 2, 1])
    assert checkerboard((3, 2, 4), 1).max_count == 24


# ---------------------------------------------------------------- oracles


@settings(max_examples=150, deadline=None)
@given(layer=conv_transpose_layers())
def test_overlap_map_is_conv_transpose_of_ones_with_a_ones_kernel(layer: dict[str, Any]) -> None:
    geo = geometry(layer, "groups")
    spatial, k = layer["input_shape"][1:], layer["weight_shape"][2:]
    ones = np.ones((1, 1, *k))
    expected = conv_transpose_matrix((1, *spatial), ones, **geo) @ np.ones(math.prod(spatial))
    counts = overlap_map(spatial, k, **geo)
    assert_array_equal(counts, conv_transpose(np.ones((1, *spatial)), ones, **geo)[0])
    assert counts.dtype == np.int64
    assert counts.shape == conv_transpose_output_shape(spatial, k, **geo)
    assert_array_equal(counts.ravel(), expected)


@settings(max_examples=150, deadline=None)
@given(
    k=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    s=st.integers(1, 4),
    data=st.data(),
)
def test_interior_uniform_exactly_when_s_divides_k(k: list[int], s: int, data: Any) -> None:
    n = data.draw(st.integers(2 * max(k) // s + 3, 2 * max(k) // s + 6))
    counts = overlap_map((n,) * len(k), tuple(k), stride=s)
    # Interior: every tap can reach, i.e. positions [k−1, (n−1)·s] on each axis.
    inner = counts[tuple(slice(ki - 1, (n - 1) * s + 1) for ki in k)]
    cb = checkerboard(tuple(k), s)
    assert (inner.min() == inner.max()) == all(ki % s == 0 for ki in k) == cb.uniform
    assert (inner.max(), inner.min()) == (cb.max_count, cb.min_count)
    assert cb.max_count == math.prod(math.ceil(ki / s) for ki in k)
    assert cb.min_count == math.prod(ki // s for ki in k)


@settings(max_examples=80, deadline=None)
@given(
    data=st.data(),
    n_layers=st.integers(1, 3),
    ndim=st.integers(1, 2),
)
def test_stack_overlap_is_the_composed_matrices_row_sums(
    data: Any, n_layers: int, ndim: int
) -> None:
    spatial = tuple(data.draw(st.integers(1, 4)) for _ in range(ndim))
    layers, shape = [], spatial
    composed = None
    for _ in range(n_layers):
        k = tuple(data.draw(st.integers(1, 4)) for _ in range(ndim))
        if data.draw(st.booleans()):
            spec: dict[str, Any] = {"kernel_size": k, "stride": data.draw(st.integers(1, 3))}
            C = conv_transpose_matrix((1, *shape), np.ones((1, 1, *k)), stride=spec["stride"])
            shape = conv_transpose_output_shape(shape, k, stride=spec["stride"])
        else:
            spec = {"kind": "conv", "kernel_size": k, "padding": "full"}
            C = conv_matrix((1, *shape), np.ones((1, 1, *k)), padding="full")
            shape = tuple(n + ki - 1 for n, ki in zip(shape, k, strict=True))
        layers.append(spec)
        composed = C if composed is None else C @ composed
    assert composed is not None
    counts = stack_overlap(spatial, layers)
    assert counts.shape == shape
    assert_array_equal(counts.ravel(), composed.sum(axis=1))


def test_one_layer_stack_is_the_overlap_map() -> None:
    geo: dict[str, Any] = {
        "kernel_size": (3, 5),
        "stride": (2, 3),
        "padding": 1,
        "dilation": 2,
        "output_padding": (1, 0),
    }
    assert_array_equal(stack_overlap((4, 3), [geo]), overlap_map((4, 3), **geo))


def test_two_k3_s2_layers_compound_into_three_levels() -> None:
    counts = stack_overlap(3, [{"kernel_size": 3, "stride": 2}] * 2)
    assert_array_equal(counts, [1, 1, 2, 1, 3, 2, 3, 1, 3, 2, 3, 1, 2, 1, 1])
    two_d = stack_overlap((3, 3), [{"kernel_size": 3, "stride": 2}] * 2)
    assert_array_equal(two_d, np.outer(counts, counts))


def test_folded_padding_conv_counts_every_tap() -> None:
    # Circular padding: every output reads k taps, some of them the same input twice.
    counts = stack_overlap(
        2, [{"kind": "conv", "kernel_size": 3, "padding": 1, "padding_mode": "circular"}]
    )
    assert_array_equal(counts, [3, 3])


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((0, 3), {}, ValueError, "spatial must be >= 1"),
        ((4, 0), {}, ValueError, "kernel_size must be >= 1"),
        ((4, 3), {"stride": 1.5}, TypeError, "stride must be an int"),
        ((4, 3), {"output_padding": 2, "stride": 2}, ValueError, "output_padding must be <"),
        ((4, 3), {"padding": "same"}, TypeError, "padding must be an int"),
        ((1, 3), {"padding": 2}, ValueError, "padding must leave a non-empty output"),
    ],
)
def test_overlap_map_errors(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        overlap_map(*args, **kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((0, 2), {}, ValueError, "kernel_size must be >= 1"),
        ((3, 0), {}, ValueError, "stride must be >= 1"),
        ((3, 2), {"dilation": 0}, ValueError, "dilation must be >= 1"),
        (((3, 3), (2, 2, 2)), {}, ValueError, "kernel_size must be an int or a sequence of 3"),
        ((3, True), {}, TypeError, "stride must be an int"),
    ],
)
def test_checkerboard_errors(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        checkerboard(*args, **kwargs)


@pytest.mark.parametrize(
    ("layers", "error", "match"),
    [
        ([], ValueError, "layers must be a non-empty sequence"),
        ({"kernel_size": 3}, ValueError, "layers must be a non-empty sequence"),
        ([3], TypeError, r"layers\[0\] must be a mapping"),
        ([{"kind": "pool", "kernel_size": 2}], ValueError, r"layers\[0\] kind must be one of"),
        (
            [{"kernel_size": 2, "padding_mode": "reflect"}],
            ValueError,
            r"layers\[0\] keys must be among .* for kind 'tconv'; got \['padding_mode'\]",
        ),
        ([{"kernel_size": 2}, {"stride": 2}], ValueError, r"layers\[1\] must give kernel_size"),
        (
            [{"kernel_size": 2}, {"kernel_size": (2, 2)}],
            ValueError,
            "kernel_size must be an int or a sequence of 1",
        ),
        ([{"kind": "conv", "kernel_size": 5}], ValueError, "kernel_size .* must fit"),
    ],
)
def test_stack_overlap_errors(layers: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        stack_overlap(3, layers)


# ---------------------------------------------------------------- phase means, periodic energy


def test_phase_means_by_hand_and_in_3d() -> None:
    x = np.arange(12.0).reshape(3, 4)
    assert_array_equal(
        phase_means(x, 2),
        [[(0 + 2 + 8 + 10) / 4, (1 + 3 + 9 + 11) / 4], [(4 + 6) / 2, (5 + 7) / 2]],
    )
    assert_array_equal(phase_means(x, (1, 4)), [[4.0, 5.0, 6.0, 7.0]])
    assert phase_means(np.ones((2, 3, 4)), 2).shape == (2, 2, 2)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), s=st.integers(1, 3), ndim=st.integers(1, 2))
def test_periodic_energy_is_the_dft_energy_at_the_stride_frequencies(
    data: Any, s: int, ndim: int
) -> None:
    shape = tuple(s * data.draw(st.integers(1, 4)) for _ in range(ndim))
    x = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(0.5, 4.0)))
    spectrum = np.abs(np.fft.fftn(x)) ** 2
    periodic = spectrum[tuple(slice(None, None, n // s) for n in shape)]
    expected = (periodic.sum() - spectrum.flat[0]) / spectrum.flat[0]
    assert periodic_energy(x, s) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_periodic_energy_zero_for_phase_free_maps_and_a_k3_overlap() -> None:
    assert periodic_energy(np.zeros((4, 4)), 2) == 0.0
    assert periodic_energy(np.ones((5, 5)), 2) == 0.0
    inner = overlap_map((8, 8), 3, stride=2)[2:14, 2:14]  # interior: phases 4, 2, 2, 1
    assert periodic_energy(inner, 2) == pytest.approx((3**2 + 3**2 + 1**2) / 9**2)
    assert periodic_energy(overlap_map((8, 8), 4, stride=2)[3:13, 3:13], 2) == 0.0


@pytest.mark.parametrize(
    ("x", "stride", "error", "match"),
    [
        (np.float64(1.0), 2, ValueError, "x must have at least one axis"),
        (np.ones(3), 4, ValueError, r"stride must be <= the size of x on every axis; got \(4,\)"),
        (np.ones((3, 3)), (1, 2, 3), ValueError, "stride must be an int or a sequence of 2"),
        (np.ones(3), 0, ValueError, "stride must be >= 1"),
        (np.array(["a"]), 1, TypeError, "x must be"),
    ],
)
def test_phase_means_errors(x: Any, stride: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        phase_means(x, stride)
    with pytest.raises(error, match=match):
        periodic_energy(x, stride)


# ---------------------------------------------------------------- resize-convolution


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    mode=st.sampled_from(["nearest", "bilinear", "bed_of_nails"]),
    scale=st.integers(1, 3),
)
def test_resize_conv_matrix_is_conv_of_upsample(data: Any, mode: str, scale: int) -> None:
    c_in, c_out, groups = data.draw(st.sampled_from([(1, 1, 1), (2, 3, 1), (2, 4, 2)]))
    spatial = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)))
    k = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    x = data.draw(hnp.arrays(np.float64, (c_in, *spatial), elements=st.integers(-3, 3).map(float)))
    w = data.draw(
        hnp.arrays(np.float64, (c_out, c_in // groups, *k), elements=st.integers(-3, 3).map(float))
    )
    geo: dict[str, Any] = {"padding": "full", "groups": groups}
    R = resize_conv_matrix(x.shape, w, scale_factor=scale, mode=mode, **geo)
    expected = conv(upsample(x[None], scale_factor=scale, mode=mode)[0], w, **geo)
    assert R.shape == (expected.size, x.size)
    assert_allclose(R @ x.ravel(), expected.ravel(), rtol=0, atol=1e-12)


def test_resize_convolution_is_uniform_where_the_transposed_conv_is_not() -> None:
    ones = np.ones((1, 1, 3, 3))
    R = resize_conv_matrix((1, 6, 6), ones, scale_factor=2, padding=1)
    counts = R.sum(axis=1).reshape(12, 12)
    assert np.all(counts[1:-1, 1:-1] == 9)
    stacked = stack_overlap(
        (6, 6),
        [{"kind": "upsample", "scale_factor": 2}, {"kind": "conv", "kernel_size": 3, "padding": 1}],
    )
    assert stacked.dtype == np.int64
    assert_array_equal(stacked, counts)
    # The same kernel as a stride-2 transposed convolution: 1, 2, 4 inside.
    assert set(np.unique(overlap_map((6, 6), 3, stride=2)[2:-2, 2:-2])) == {1, 2, 4}
    bilinear = stack_overlap(
        (6, 6),
        [
            {"kind": "upsample", "scale_factor": 2, "mode": "bilinear"},
            {"kind": "conv", "kernel_size": 3, "padding": 1},
        ],
    )
    assert bilinear.dtype == np.float64
    assert_allclose(bilinear[1:-1, 1:-1], 9.0)


def test_float32_weights_give_a_float32_matrix() -> None:
    R = resize_conv_matrix((1, 3), np.ones((1, 1, 2), np.float32), scale_factor=2)
    assert R.dtype == np.float32


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, ValueError, "size or scale_factor must be given"),
        ({"scale_factor": 2, "mode": "cubic"}, ValueError, "mode must be"),
        ({"scale_factor": 2, "input_shape": (3,)}, ValueError, r"input_shape must be \(C_in"),
        ({"scale_factor": 2, "stride": 0}, ValueError, "stride must be >= 1"),
        ({"scale_factor": 2, "weight": np.ones((1, 2, 2))}, ValueError, "channels must equal"),
    ],
)
def test_resize_conv_matrix_errors(kwargs: dict[str, Any], error: type, match: str) -> None:
    args: dict[str, Any] = {"input_shape": (1, 4), "weight": np.ones((1, 1, 2))} | kwargs
    with pytest.raises(error, match=match):
        resize_conv_matrix(args.pop("input_shape"), args.pop("weight"), **args)


def test_stack_upsample_keys_are_checked() -> None:
    with pytest.raises(ValueError, match=r"layers\[0\] keys must be among .* 'upsample'"):
        stack_overlap(3, [{"kind": "upsample", "scale_factor": 2, "kernel_size": 3}])
    with pytest.raises(ValueError, match="size or scale_factor must be given"):
        stack_overlap(3, [{"kind": "upsample"}])
