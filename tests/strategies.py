"""Random cases for every test module: layer geometries and small-integer data.

Small-integer float64 data makes the sparse and fast paths agree exactly, so
tests can use ``assert_array_equal`` on them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

MODES = ("zeros", "reflect", "replicate", "circular")


def _per_axis(draw: Any, values: st.SearchStrategy[int], ndim: int) -> tuple[int, ...]:
    return tuple(draw(values) for _ in range(ndim))


def _as_arg(draw: Any, per_axis: tuple[int, ...]) -> int | tuple[int, ...]:
    """An int when every axis agrees and the draw says so, else the tuple."""
    if len(set(per_axis)) == 1 and draw(st.booleans()):
        return per_axis[0]
    return per_axis


@st.composite
def conv_layers(
    draw: Any,
    *,
    max_dims: int = 3,
    modes: tuple[str, ...] = MODES,
    strings: bool = True,
    max_size: int = 7,
) -> dict[str, Any]:
    """Keyword arguments of one convolution: input_shape, weight_shape and the geometry."""
    ndim = draw(st.integers(1, max_dims))
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    k = _per_axis(draw, st.integers(1, 4), ndim)
    d = _per_axis(draw, st.integers(1, 3), ndim)
    s = _per_axis(draw, st.integers(1, 3), ndim)
    mode = draw(st.sampled_from(modes))
    form = draw(
        st.sampled_from(["int", "axes", "pairs"] + (["valid", "same", "full"] if strings else []))
    )
    span = [di * (ki - 1) for ki, di in zip(k, d, strict=True)]
    if form == "same":
        s = (1,) * ndim
        pads = [(t // 2, t - t // 2) for t in span]
        padding: Any = "same"
    elif form == "full":
        pads = [(t, t) for t in span]
        padding = "full"
    elif form == "valid":
        pads = [(0, 0)] * ndim
        padding = "valid"
    elif form == "pairs":
        pads = [(draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(ndim)]
        padding = tuple(pads)
    else:
        per = _per_axis(draw, st.integers(0, 3), ndim)
        pads = [(p, p) for p in per]
        padding = per[0] if form == "int" and len(set(per)) == 1 else per
    spatial = []
    for (lo, hi), t in zip(pads, span, strict=True):
        low = max(1, t + 1 - lo - hi)
        if mode == "reflect":
            low = max(low, max(lo, hi) + 1)
        elif mode == "circular":
            low = max(low, lo, hi)
        spatial.append(draw(st.integers(low, max(low, max_size))))
    return {
        "input_shape": (c_in, *spatial),
        "weight_shape": (c_out, c_in // groups, *k),
        "stride": _as_arg(draw, s),
        "padding": padding,
        "dilation": _as_arg(draw, d),
        "groups": groups,
        "padding_mode": mode,
    }


@st.composite
def conv_transpose_layers(draw: Any, *, max_dims: int = 3, max_size: int = 5) -> dict[str, Any]:
    """Keyword arguments of one transposed convolution (output_padding included)."""
    ndim = draw(st.integers(1, max_dims))
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    k = _per_axis(draw, st.integers(1, 4), ndim)
    d = _per_axis(draw, st.integers(1, 3), ndim)
    s = _per_axis(draw, st.integers(1, 3), ndim)
    op = tuple(draw(st.integers(0, max(si, di) - 1)) for si, di in zip(s, d, strict=True))
    spatial = _per_axis(draw, st.integers(1, max_size), ndim)
    pairs = draw(st.booleans())
    pads = []
    for n, ki, si, di, oi in zip(spatial, k, s, d, op, strict=True):
        room = (n - 1) * si + di * (ki - 1) + oi  # output = room + 1 - lo - hi >= 1
        lo = draw(st.integers(0, min(3, room)))
        hi = draw(st.integers(0, min(3, room - lo))) if pairs else min(lo, room - lo)
        pads.append((lo, hi) if pairs else (lo, lo) if 2 * lo <= room else (0, 0))
    padding: Any = tuple(pads) if pairs else tuple(lo for lo, _ in pads)
    return {
        "input_shape": (c_in, *spatial),
        "weight_shape": (c_in, c_out // groups, *k),
        "stride": _as_arg(draw, s),
        "padding": padding,
        "output_padding": _as_arg(draw, op),
        "dilation": _as_arg(draw, d),
        "groups": groups,
    }


def small_ints(shape: tuple[int, ...], dtype: Any = np.float64) -> st.SearchStrategy[Any]:
    """Arrays of small integers (exact in float arithmetic) of the given shape."""
    return hnp.arrays(dtype, shape, elements=st.integers(-3, 3).map(float))


def geometry(layer: dict[str, Any], *drop: str) -> dict[str, Any]:
    """The layer's keyword arguments without the shapes (and without ``drop``)."""
    return {
        key: value
        for key, value in layer.items()
        if key not in ("input_shape", "weight_shape", *drop)
    }


# ---------------------------------------------------------------- upsampling and pooling

UPSAMPLE_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear")
_MODE_DIMS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}
#: Scale factors worth drawing: whole, halves, thirds (inexact in binary) and odd ones.
SCALES = (0.3, 0.5, 0.6, 0.7, 1 / 3, 0.9, 1.0, 1.1, 1.3, 1.5, 1.7, 2.0, 2.3, 2.5, 3.0, 4.0)


@st.composite
def resize_cases(
    draw: Any, *, modes: tuple[str, ...] = UPSAMPLE_MODES, max_size: int = 9
) -> dict[str, Any]:
    """Keyword arguments of one resize: spatial, mode, align_corners and size or scale_factor.

    Sizes go up and down; scale factors are whole or fractional (see ``SCALES``) and
    always give an output of at least 1; bed of nails gets whole scales.
    """
    mode = draw(st.sampled_from(modes))
    ndim = _MODE_DIMS.get(mode) or draw(st.integers(1, 3))
    top = max_size if ndim < 3 else min(max_size, 5)
    spatial = _per_axis(draw, st.integers(1, top), ndim)
    case: dict[str, Any] = {"spatial": spatial, "mode": mode, "size": None, "scale_factor": None}
    case["align_corners"] = (
        draw(st.sampled_from((None, False, True))) if mode in _MODE_DIMS else None
    )
    by_size = draw(st.booleans())
    if mode == "bed_of_nails":
        scales = _per_axis(draw, st.integers(1, 3), ndim)
        sizes = tuple(n * s for n, s in zip(spatial, scales, strict=True))
    else:
        sizes = _per_axis(draw, st.integers(1, 2 * top), ndim)
        scales = tuple(
            draw(st.sampled_from([f for f in SCALES if int(n * f) >= 1])) for n in spatial
        )
    if by_size:
        case["size"] = _as_arg(draw, sizes)
    else:
        case["scale_factor"] = _as_arg(draw, scales)
    return case


@st.composite
def pool_cases(draw: Any, *, max_dims: int = 3, max_size: int = 8) -> dict[str, Any]:
    """Keyword arguments of one max pooling (torch's rule: padding <= kernel_size // 2)."""
    ndim = draw(st.integers(1, max_dims))
    k = _per_axis(draw, st.integers(1, 4), ndim)
    d = _per_axis(draw, st.integers(1, 3), ndim)
    p = tuple(draw(st.integers(0, ki // 2)) for ki in k)
    s = _per_axis(draw, st.integers(1, 4), ndim)
    spatial = tuple(
        draw(st.integers(max(1, di * (ki - 1) + 1 - 2 * pi), max(max_size, di * (ki - 1) + 1)))
        for ki, di, pi in zip(k, d, p, strict=True)
    )
    return {
        "spatial": spatial,
        "kernel_size": _as_arg(draw, k),
        "stride": draw(st.sampled_from((None, _as_arg(draw, s)))),
        "padding": _as_arg(draw, p),
        "dilation": _as_arg(draw, d),
        "ceil_mode": draw(st.booleans()),
    }


@st.composite
def circular_layers(draw: Any, *, max_dims: int = 2, max_size: int = 5) -> dict[str, Any]:
    """A stride-1 circular-padding convolution whose output keeps the input size (C circulant).

    Padding totals ``d·(k−1)`` per axis, split at random into ``(low, high)``.
    """
    ndim = draw(st.integers(1, max_dims))
    groups = draw(st.integers(1, 2))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 3))
    k = _per_axis(draw, st.integers(1, 4), ndim)
    d = _per_axis(draw, st.integers(1, 2), ndim)
    pads = []
    for ki, di in zip(k, d, strict=True):
        lo = draw(st.integers(0, di * (ki - 1)))
        pads.append((lo, di * (ki - 1) - lo))
    spatial = tuple(draw(st.integers(max(2, *p), max(max_size, *p))) for p in pads)
    return {
        "input_shape": (c_in, *spatial),
        "weight_shape": (c_out, c_in // groups, *k),
        "padding": tuple(pads),
        "dilation": _as_arg(draw, d),
        "groups": groups,
    }


# ---------------------------------------------------------------- padding, im2col

PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _pad_pair(draw: Any, n: int, mode: str) -> tuple[int, int]:
    """One axis's ``(low, high)`` within torch's limits for ``mode`` (negatives crop)."""
    if mode == "constant":
        lo = draw(st.integers(-n, 3))
        return lo, draw(st.integers(-(n + min(lo, 0)), 3))
    if mode == "replicate":
        lo = draw(st.integers(1 - n, 3))
        return lo, draw(st.integers(1 - n - lo, 3))
    if mode == "reflect":
        lo = draw(st.integers(1 - n, n - 1))
        return lo, draw(st.integers(1 - n - lo, n - 1))
    lo = draw(st.integers(1 - n, n))  # circular: crop first, then wrap at most once
    if lo >= 0:
        return lo, draw(st.integers(lo - n, n))
    return lo, draw(st.integers(-(n + lo), n + lo))


@st.composite
def pad_cases(draw: Any, *, max_dims: int = 3, max_size: int = 6) -> dict[str, Any]:
    """One ``F.pad`` call torch accepts: ``shape``, ``pad`` and ``mode``.

    ``shape`` is (N, C, *spatial) or (C, *spatial); ``pad`` is torch's flat form (last
    axis first) over all ``len(spatial)`` axes.
    """
    mode = draw(st.sampled_from(PAD_MODES))
    ndim = draw(st.integers(1, max_dims))
    spatial = _per_axis(draw, st.integers(1, max_size), ndim)
    pairs = [_pad_pair(draw, n, mode) for n in spatial]
    flat = tuple(v for pair in reversed(pairs) for v in pair)
    lead = (2, 3) if draw(st.booleans()) else (3,)
    return {"shape": (*lead, *spatial), "pad": flat, "mode": mode}


@st.composite
def unfold_cases(draw: Any, *, ndim: int = 2, max_size: int = 7) -> dict[str, Any]:
    """Keyword arguments of one ``F.unfold``: input_shape (C, *spatial) and the geometry.

    ``kernel_size`` is a tuple unless ``ndim == 2`` (a tuple is what sets another rank).
    """
    k = _per_axis(draw, st.integers(1, 3), ndim)
    d = _per_axis(draw, st.integers(1, 2), ndim)
    p = _per_axis(draw, st.integers(0, 2), ndim)
    s = _per_axis(draw, st.integers(1, 3), ndim)
    spatial = tuple(
        draw(st.integers(max(1, di * (ki - 1) + 1 - 2 * pi), max(max_size, di * (ki - 1) + 1)))
        for ki, di, pi in zip(k, d, p, strict=True)
    )
    return {
        "input_shape": (draw(st.integers(1, 3)), *spatial),
        "kernel_size": _as_arg(draw, k) if ndim == 2 else k,
        "dilation": _as_arg(draw, d),
        "padding": _as_arg(draw, p),
        "stride": _as_arg(draw, s),
    }


@st.composite
def avg_pool_cases(draw: Any, *, max_dims: int = 3, max_size: int = 8) -> dict[str, Any]:
    """Keyword arguments of one average pooling (torch's rule: padding <= kernel_size // 2).

    ``torch_ok`` says whether torch accepts it too: its ``avg_pool3d`` also refuses an
    input smaller than the kernel (unpadded), which convmat computes as ``avg_pool2d`` would.
    """
    ndim = draw(st.integers(1, max_dims))
    k = _per_axis(draw, st.integers(1, 4), ndim)
    p = tuple(draw(st.integers(0, ki // 2)) for ki in k)
    s = _per_axis(draw, st.integers(1, 4), ndim)
    spatial = tuple(
        draw(st.integers(max(1, ki - 2 * pi), max(max_size, ki)))
        for ki, pi in zip(k, p, strict=True)
    )
    return {
        "spatial": spatial,
        "kernel_size": _as_arg(draw, k),
        "stride": draw(st.sampled_from((None, _as_arg(draw, s)))),
        "padding": _as_arg(draw, p),
        "ceil_mode": draw(st.booleans()),
        "count_include_pad": draw(st.booleans()),
        "divisor_override": draw(st.sampled_from((None, 1, 3, -2, 7))),
        "torch_ok": ndim < 3 or all(n >= ki for n, ki in zip(spatial, k, strict=True)),
    }


@st.composite
def adaptive_cases(draw: Any, *, max_dims: int = 3, max_size: int = 9) -> dict[str, Any]:
    """spatial and output_size of one adaptive pooling: up, down, non-dividing, None entries."""
    ndim = draw(st.integers(1, max_dims))
    spatial = _per_axis(draw, st.integers(1, max_size), ndim)
    entries = st.one_of(st.none(), st.integers(1, max_size + 3)) if ndim > 1 else st.integers(1, 12)
    return {"spatial": spatial, "output_size": tuple(draw(entries) for _ in range(ndim))}


@st.composite
def antialias_cases(draw: Any, *, max_size: int = 24) -> dict[str, Any]:
    """Keyword arguments of one anti-aliased resize: bilinear or bicubic, shrinking or not."""
    spatial = _per_axis(draw, st.integers(1, max_size), 2)
    case: dict[str, Any] = {
        "spatial": spatial,
        "mode": draw(st.sampled_from(("bilinear", "bicubic"))),
        "align_corners": draw(st.sampled_from((None, False, True))),
        "antialias": True,
        "size": None,
        "scale_factor": None,
    }
    if draw(st.booleans()):
        case["size"] = _per_axis(draw, st.integers(1, max_size + 8), 2)
    else:
        case["scale_factor"] = tuple(
            draw(st.sampled_from([f for f in (*SCALES, 0.2, 0.25, 0.45) if int(n * f) >= 1]))
            for n in spatial
        )
    return case
