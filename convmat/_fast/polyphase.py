"""Strided layers as stride-1 ones: polyphase (space-to-depth) and sub-pixel (depth-to-space).

Both rearrangements are exact — every product of the strided layer is made once,
in the same dtype — and leave a *stride-1* convolution to another method
(``inner``: the direct tap sum by default, Winograd or FFT when the planner
prefers), which is where they win: a stride-2 ``k = 4`` layer becomes a stride-1
``k = 2`` one, which Winograd F(m, 2) or an FFT can take while the strided layer
could not.

**Polyphase** (:func:`conv`, ``NAME``). Along an axis with stride ``s`` and
dilation ``d``, a tap ``t`` reads padded input ``s·j + t·d = s·(j + q) + r`` with
``(q, r) = divmod(t·d, s)``: phase plane ``r`` (padded positions ``s·i + r``) at
``j + q``, a stride-1 shift. The taps of one phase have ``q = q₀(r) + d'·m``
(``d' = d / gcd(d, s)``), so the plane of phase ``r`` is taken from ``q₀(r)`` on and
the rearranged kernel has dilation ``d'`` and ``K' = max_r K_r`` taps: a stride-1
convolution of ``C_in·P`` channels (``P`` the phases used, at most ``s`` per axis;
channel ``p·C_in/G + c`` of each group) with the kernel zero-padded where a phase has fewer than
``K'`` taps (``k`` not a multiple of ``s``). Padding is done while the planes are
built (``np.pad`` first for the non-zero padding modes, as the direct engine).

**Sub-pixel** (:func:`conv_transpose`, ``SUBPIXEL``). Output position
``i = s·J + ρ − lo`` of a stride-``s`` transposed layer gathers the taps with
``t·d ≡ ρ (mod s)``, each reading input ``J − q``: per output phase ``ρ``, a stride-1
correlation of the input with that phase's taps, flipped, channels swapped. Phases
whose taps have the same offsets (all of them when ``s`` divides ``k``: the ESPCN /
pixel-shuffle form) are *one* stride-1 convolution with ``P·C_out`` output channels;
unequal phases make one convolution per set of equal phases, so no zero is ever
multiplied. The results are interleaved into the output (depth-to-space), one
strided copy per phase, with the bias; phases no tap reaches hold the bias.

Non-finite values: both are rearrangements of the direct sum, so NaN and inf
land where the direct engine puts them — except that a zero-padded kernel tap
(polyphase with ``k`` not a multiple of ``s``) multiplies an input value the
strided layer never pairs with that output, and ``0·inf`` is NaN; such a layer
with a non-finite input goes to :func:`convmat._fast.direct.conv_engine` (one
``np.isfinite`` pass decides).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from convmat._blas import transpose
from convmat._fast.cost import Counts
from convmat._fast.direct import (
    _clip,
    _key,
    _place,
    _scratch,
    conv_engine,
    conv_transpose_engine,
    pad_mode,
)
from convmat._layer import Layer, conv_layer

Array = np.ndarray[Any, Any]
#: A stride-1 forward convolution ``inner(x, w, layer, bias)`` (``conv_engine``'s call).
Inner = Callable[[Array, Array, Layer, "Array | None"], Array]

NAME = "polyphase"
SUBPIXEL = "subpixel"
NAMES = {False: NAME, True: SUBPIXEL}


# --------------------------------------------------------------------------- bookkeeping


class _Axis(NamedTuple):
    """The phases of one axis: per kernel tap its phase and tap in the phase's sub-kernel."""

    phases: tuple[int, ...]  # the phases r used, sorted
    first: tuple[int, ...]  # per used phase: q₀(r), its smallest shift
    sizes: tuple[int, ...]  # per used phase: K_r, its taps
    dilation: int  # d' between the taps of one phase
    taps: tuple[tuple[int, int], ...]  # per kernel tap: (index of its phase, m)


def _axis(k: int, s: int, d: int) -> _Axis:
    """Split the ``k`` taps of an axis (stride ``s``, dilation ``d``) into stride phases.

    >>> _axis(4, 2, 1).taps  # (phase, m) of taps 0..3: phase 0 holds taps 0, 2
    ((0, 0), (1, 0), (0, 1), (1, 1))
    >>> _axis(3, 2, 3).sizes, _axis(3, 2, 3).dilation
    ((2, 1), 3)
    """
    step = d // math.gcd(d, s)
    pairs = [divmod(t * d, s) for t in range(k)]  # (q, r)
    phases = tuple(sorted({r for _, r in pairs}))
    first = tuple(min(q for q, r in pairs if r == p) for p in phases)
    taps = tuple((phases.index(r), (q - first[phases.index(r)]) // step) for q, r in pairs)
    sizes = tuple(1 + max(m for p, m in taps if p == i) for i in range(len(phases)))
    return _Axis(phases, first, sizes, step, taps)


def _axes(layer: Layer) -> list[_Axis]:
    return [
        _axis(k, s, d)
        for k, s, d in zip(layer.kernel_size, layer.stride, layer.dilation, strict=True)
    ]


def why_not(layer: Layer, *, transposed: bool) -> str | None:
    """``None`` when the layer has a stride above 1 on some axis (otherwise there is
    nothing to rearrange: the layer is its own stride-1 form)."""
    if all(s == 1 for s in layer.stride):
        return f"needs a stride above 1 on some axis; got {layer.stride}"
    return None


# --------------------------------------------------------------------------- polyphase


class _PolyPlan(NamedTuple):
    axes: list[_Axis]
    lows: list[int]  # padding before the input (0 when it comes padded)
    spatial: tuple[int, ...]  # the input's size (padded for the non-zero modes)
    length: tuple[int, ...]  # plane length per axis: out + d'·(K' − 1)
    inner: Layer  # the stride-1 layer
    zeros: bool  # whether the rearranged kernel holds padded zeros


@functools.lru_cache(maxsize=64)
def _poly_plan(layer: Layer) -> _PolyPlan:
    axes = _axes(layer)
    if layer.padding_mode == "zeros":
        lows, spatial = [lo for lo, _ in layer.padding], layer.in_spatial
    else:
        lows = [0] * layer.ndim
        spatial = tuple(
            n + lo + hi for n, (lo, hi) in zip(layer.in_spatial, layer.padding, strict=True)
        )
    size = tuple(max(a.sizes) for a in axes)
    length = tuple(
        o + a.dilation * (k - 1) for o, a, k in zip(layer.out_spatial, axes, size, strict=True)
    )
    blocks = math.prod(len(a.phases) for a in axes)
    groups = layer.groups
    inner = conv_layer(
        (layer.in_channels * blocks, *length),
        (layer.out_channels, layer.in_channels // groups * blocks, *size),
        dilation=tuple(a.dilation for a in axes),
        groups=groups,
    )
    zeros = any(len(set(a.sizes)) > 1 for a in axes)
    return _PolyPlan(axes, lows, spatial, length, inner, zeros)


def inner_layers(layer: Layer, *, transposed: bool) -> list[Layer]:
    """The stride-1 forward layers :func:`conv` (or :func:`conv_transpose`) hands to ``inner``.

    >>> from convmat._layer import conv_layer
    >>> [i.kernel_size for i in inner_layers(conv_layer((3, 8, 8), (4, 3, 4, 4), stride=2),
    ...                                      transposed=False)]
    [(2, 2)]
    """
    if transposed:
        return [part.inner for part in _sub_plan(layer).parts if part.inner is not None]
    return [_poly_plan(layer).inner]


def _tap_tables(axes: Sequence[_Axis], phases: Sequence[Sequence[int]], flip: bool) -> Array:
    """Per combination of the ``phases`` (per axis, indices into :attr:`_Axis.phases`) and
    tap of the common sub-kernel: the flat kernel tap it takes, or ``-1`` (a padded zero).

    Shape ``(*P, *K)``; ``flip`` reverses the sub-kernel (the transposed layer's).
    """
    index: Array = np.zeros((), dtype=np.intp)
    valid: Array = np.ones((), dtype=bool)
    ndim = len(axes)
    for a, (axis, chosen) in enumerate(zip(axes, phases, strict=True)):
        size = max(axis.sizes[p] for p in chosen)
        table: Array = np.full((len(chosen), size), -1, dtype=np.intp)
        for t, (p, m) in enumerate(axis.taps):
            if p in chosen:
                table[chosen.index(p), size - 1 - m if flip else m] = t
        shape = [1] * (2 * ndim)
        shape[a], shape[ndim + a] = table.shape
        table = table.reshape(shape)
        n = len(axis.taps)
        index = index * n + np.maximum(table, 0)
        valid = valid & (table >= 0)
    tables: Array = np.where(valid, index, -1)
    return tables


def _poly_weight(w: Array, axes: Sequence[_Axis]) -> Array:
    """``(C_out, P·C_in/G, *K')``: tap ``m`` of phase ``p`` of channel ``c`` at ``p·C_in/G + c``.

    Built tap-major — memory ``(*K', C_out, P, C_in/G)``, the order the stride-1
    methods read a kernel in — from one BLAS transpose of ``w`` and one contiguous
    copy per tap, and returned as a (non-contiguous) view of that memory: a work
    buffer of this thread (:func:`convmat._fast.direct._scratch`), valid until the
    next call.
    """
    ndim = len(axes)
    c_out, per_in = w.shape[:2]
    table = _tap_tables(axes, [range(len(a.phases)) for a in axes], flip=False)
    blocks, sizes = table.shape[:ndim], table.shape[ndim:]
    taps = _scratch("polyphase_taps", (math.prod(w.shape[2:]), c_out * per_in), w.dtype)
    transpose(w.reshape(c_out * per_in, -1), taps)
    flat = table.reshape(math.prod(blocks), math.prod(sizes))
    memory = _scratch("polyphase_weight", (math.prod(sizes), c_out, flat.shape[0], per_in), w.dtype)
    for m in range(flat.shape[1]):
        for p in range(flat.shape[0]):
            t = flat[p, m]
            memory[m, :, p] = 0 if t < 0 else taps[t].reshape(c_out, per_in)
    view: Array = memory.reshape(*sizes, c_out, -1).transpose(ndim, ndim + 1, *range(ndim))
    return view


def conv(
    x: Array, w: Array, layer: Layer, bias: Array | None, *, inner: Inner | None = None
) -> Array:
    """``conv`` of a batch ``x (N, C_in, *spatial)`` as a stride-1 convolution of its phases.

    ``inner(x, w, layer, bias)`` runs the stride-1 convolution (default
    :func:`convmat._fast.direct.conv_engine`); it sees only stride-1 layers.
    """
    reason = why_not(layer, transposed=False)
    if reason is not None:
        raise ValueError(f"layer {reason}")
    plan = _poly_plan(layer)
    n_batch = x.shape[0]
    if n_batch == 0 or (plan.zeros and not np.isfinite(x).all()):
        return conv_engine(x, w, layer, bias)
    x = pad_mode(x, layer)
    axes = plan.axes
    counts = [len(a.phases) for a in axes]
    groups = layer.groups
    per_in = x.shape[1] // groups
    source = x.reshape(n_batch, groups, per_in, *x.shape[2:])
    planes = _scratch("polyphase", (n_batch, groups, *counts, per_in, *plan.length), x.dtype)
    for combo in itertools.product(*(range(c) for c in counts)):
        dst_index, src_index = [], []
        for p, a, s, lo, n, length in zip(
            combo, axes, layer.stride, plan.lows, plan.spatial, plan.length, strict=True
        ):
            r, q0 = a.phases[p], a.first[p]
            # Plane position i holds padded input s·(i + q₀) + r, i.e. input s·(i + q₀) + r − lo.
            i0, i1 = _clip(-((r - lo) // s) - q0, -((r - lo - n) // s) - q0, length)
            dst_index.append(slice(i0, i1))
            start = s * (i0 + q0) + r - lo
            src_index.append(slice(start, start + s * (i1 - i0), s) if i1 > i0 else slice(0, 0))
        dest = planes[_key(slice(None), slice(None), *combo)]  # (N, G, C_in/G, *L)
        _place(dest, source[_key(slice(None), slice(None), slice(None), *src_index)], dst_index)
    flat = planes.reshape(n_batch, -1, *plan.length)
    run = conv_engine if inner is None else inner
    return run(flat, _poly_weight(w, axes), plan.inner, bias)


# --------------------------------------------------------------------------- sub-pixel


class _Part(NamedTuple):
    """One stride-1 convolution of the sub-pixel form: a set of output phases."""

    phases: list[tuple[int, ...]]  # per axis: the phase indices (into _Axis.phases) it computes
    starts: tuple[int, ...]  # per axis: J of its first output
    crop: tuple[tuple[int, int], ...]  # per axis: the input range it reads
    inner: Layer | None  # the stride-1 layer; None when every read falls in the padding


class _SubPlan(NamedTuple):
    axes: list[_Axis]
    ranges: list[list[tuple[int, int]]]  # per axis, per phase ρ in 0..s−1: outputs J in [J0, J1)
    parts: list[_Part]
    empty: list[tuple[int, ...]]  # output phase combinations that no tap reaches


@functools.lru_cache(maxsize=64)
def _sub_plan(layer: Layer) -> _SubPlan:
    axes = _axes(layer)
    ranges = [
        [(-((r - lo) // s), -((r - lo - n) // s)) for r in range(s)]
        for s, (lo, _), n in zip(layer.stride, layer.padding, layer.in_spatial, strict=True)
    ]
    # Per axis: the sets of phases with equal taps (same q₀ and K_r), that have outputs.
    sets: list[list[tuple[int, ...]]] = []
    for a, rng in zip(axes, ranges, strict=True):
        by_taps: dict[tuple[int, int], list[int]] = {}
        for p, r in enumerate(a.phases):
            if rng[r][1] > rng[r][0]:
                by_taps.setdefault((a.first[p], a.sizes[p]), []).append(p)
        sets.append([tuple(v) for v in by_taps.values()])
    per_x, c_y = layer.in_channels // layer.groups, layer.out_channels
    parts: list[_Part] = []
    for combo in itertools.product(*sets):
        starts, crops, pads, sizes = [], [], [], []
        for phases, a, rng, o in zip(combo, axes, ranges, layer.out_spatial, strict=True):
            j0 = min(rng[a.phases[p]][0] for p in phases)
            j1 = max(rng[a.phases[p]][1] for p in phases)
            size = a.sizes[phases[0]]
            reach = a.first[phases[0]] + a.dilation * (size - 1)  # the largest shift q
            # out[u] = x[J0 + u] reads y[J0 + u − reach + d'·m']: padding reach − J0 below.
            lo = reach - j0
            hi = (j1 - j0) - o - lo + a.dilation * (size - 1)
            start, stop = max(0, -lo), o - max(0, -hi)
            starts.append(j0)
            crops.append((start, stop))
            pads.append((max(0, lo), max(0, hi)))
            sizes.append(size)
        blocks = math.prod(len(p) for p in combo)
        spatial = [b - a for a, b in crops]
        inner = None
        if all(n >= 1 for n in spatial):  # else every read falls in the padding
            inner = conv_layer(
                (c_y, *spatial),
                (per_x * layer.groups * blocks, c_y // layer.groups, *sizes),
                padding=tuple(pads),
                dilation=tuple(a.dilation for a in axes),
                groups=layer.groups,
            )
        parts.append(_Part(list(combo), tuple(starts), tuple(crops), inner))
    reached = [{a.phases[p] for group in s for p in group} for a, s in zip(axes, sets, strict=True)]
    empty = [
        combo
        for combo in itertools.product(*(range(s) for s in layer.stride))
        if any(r not in got for r, got in zip(combo, reached, strict=True))
    ]
    return _SubPlan(axes, ranges, parts, empty)


def _sub_weight(
    w: Array, axes: Sequence[_Axis], phases: Sequence[Sequence[int]], groups: int
) -> Array:
    """The forward weight ``(G·P·C_out/G, C_in/G, *K)`` of a set of equal ``phases``: the
    flipped taps of ``w (C_in, C_out/G, *k)`` (transposed layout), channels swapped;
    output channel ``(g·P + p)·C_out/G + c`` holds phase ``p`` of channel ``c`` of group ``g``.

    Built tap-major (memory ``(*K, G, P, C_out/G, C_in/G)``) from one BLAS transpose per
    group and one contiguous copy per tap, and returned as a view of that memory (a
    work buffer, as :func:`_poly_weight`'s).
    """
    ndim = len(axes)
    c_y, per_x = w.shape[:2]
    per_y = c_y // groups
    table = _tap_tables(axes, phases, flip=True)
    blocks, sizes = table.shape[:ndim], table.shape[ndim:]
    n_taps = math.prod(w.shape[2:])
    swapped = _scratch("polyphase_taps", (groups, per_x * n_taps, per_y), w.dtype)
    transpose(w.reshape(groups, per_y, per_x * n_taps), swapped)  # [g, c·T + t, cy]
    by_tap = swapped.reshape(groups, per_x, n_taps, per_y)
    flat = table.reshape(math.prod(blocks), math.prod(sizes))
    memory = _scratch(
        "polyphase_weight", (flat.shape[1], groups, flat.shape[0], per_x, per_y), w.dtype
    )
    for m in range(flat.shape[1]):
        for p in range(flat.shape[0]):
            memory[m, :, p] = by_tap[:, :, flat[p, m]]  # equal phases: no padded zero
    view: Array = memory.reshape(*sizes, -1, per_y).transpose(ndim, ndim + 1, *range(ndim))
    return view


def conv_transpose(
    y: Array, w: Array, layer: Layer, bias: Array | None, *, inner: Inner | None = None
) -> Array:
    """``conv_transpose`` of a batch ``y (N, C_in, *spatial)``: stride-1 convolutions per
    set of output phases, interleaved.

    ``inner(x, w, layer, bias)`` runs each stride-1 *forward* convolution (default
    :func:`convmat._fast.direct.conv_engine`).
    """
    reason = why_not(layer, transposed=True)
    if reason is not None:
        raise ValueError(f"layer {reason}")
    n_batch = y.shape[0]
    if n_batch == 0:
        return conv_transpose_engine(y, w, layer, bias)
    plan = _sub_plan(layer)
    run = conv_engine if inner is None else inner
    groups, ndim = layer.groups, layer.ndim
    per_x = w.shape[1]
    c_x = per_x * groups
    x = np.empty((n_batch, c_x, *layer.in_spatial), dtype=y.dtype)
    b = None if bias is None else bias.reshape(-1, *(1,) * ndim)
    x_groups = x.reshape(n_batch, groups, per_x, *layer.in_spatial)
    b_groups = None if b is None else b.reshape(groups, per_x, *b.shape[1:])
    for part in plan.parts:
        counts = [len(p) for p in part.phases]
        result = None
        if part.inner is not None:
            sub = _sub_weight(w, plan.axes, part.phases, groups)
            source = y[_key(slice(None), slice(None), *(slice(a, b) for a, b in part.crop))]
            result = run(np.ascontiguousarray(source), sub, part.inner, None)
            result = result.reshape(n_batch, groups, *counts, per_x, *result.shape[2:])
        for combo in itertools.product(*(range(c) for c in counts)):
            x_index, j_index = [], []
            for i, phases, a, rng, s, (lo, _), j_start in zip(
                combo,
                part.phases,
                plan.axes,
                plan.ranges,
                layer.stride,
                layer.padding,
                part.starts,
                strict=True,
            ):
                r = a.phases[phases[i]]
                j0, j1 = rng[r]
                x_index.append(slice(s * j0 + r - lo, None, s) if j1 > j0 else slice(0, 0))
                j_index.append(slice(j0 - j_start, j1 - j_start))
            target = x[_key(slice(None), slice(None), *x_index)]
            if target.size == 0:
                continue
            if result is None:
                target[...] = 0 if b is None else b
                continue
            src = result[_key(slice(None), slice(None), *combo, slice(None), *j_index)]
            split = x_groups[_key(slice(None), slice(None), slice(None), *x_index)]
            if b_groups is None:
                np.copyto(split, src)
            else:
                np.add(src, b_groups, out=split)
    for combo in plan.empty:
        x_index = [
            slice((r - lo) % s, None, s)
            for r, s, (lo, _) in zip(combo, layer.stride, layer.padding, strict=True)
        ]
        target = x[_key(slice(None), slice(None), *x_index)]
        target[...] = 0 if b is None else b
    return x


# --------------------------------------------------------------------------- counts


def counts(
    layer: Layer,
    n_batch: int,
    itemsize: int,
    *,
    transposed: bool,
    inner_counts: Callable[[Layer], Counts] | None = None,
) -> Counts:
    """The counted work of one call: the rearrangement's passes plus the stride-1 work.

    ``inner_counts(layer)`` counts one stride-1 layer (default: the direct tap
    sum's counts, :func:`convmat._fast.planner.direct_counts`).
    """
    if inner_counts is None:
        from convmat._fast.planner import direct_counts

        def inner_counts(sub: Layer) -> Counts:
            return direct_counts(sub, n_batch, itemsize, transposed=False)

    x_items = n_batch * layer.in_channels * math.prod(layer.in_spatial)
    y_items = n_batch * layer.out_channels * math.prod(layer.out_spatial)
    parts = [inner_counts(sub) for sub in inner_layers(layer, transposed=transposed)]
    flops = sum(c.gemm_flops for c in parts)
    calls = sum(c.gemm_calls for c in parts)
    stream = sum(c.stream_bytes for c in parts)
    passes = sum(c.passes for c in parts)
    fft = sum(c.fft_points for c in parts)
    work = max((c.work_bytes for c in parts), default=0)
    if transposed:
        plan = _sub_plan(layer)
        # Per part: its result is read once and the output written once (strided copies).
        result_items = sum(
            n_batch * sub.out_channels * math.prod(sub.out_spatial)
            for sub in inner_layers(layer, transposed=True)
        )
        stream += itemsize * (result_items + x_items)
        passes += math.prod(layer.stride) + len(plan.empty)
        work += itemsize * max(
            (
                n_batch * s.out_channels * math.prod(s.out_spatial)
                for s in inner_layers(layer, transposed=True)
            ),
            default=0,
        )
    else:
        sub = _poly_plan(layer).inner
        planes = n_batch * sub.in_channels * math.prod(sub.in_spatial)
        pad = 2 * x_items if layer.padding_mode != "zeros" else 0
        check = x_items if _poly_plan(layer).zeros else 0
        stream += itemsize * (x_items + planes + pad + check)
        passes += math.prod(len(a.phases) for a in _poly_plan(layer).axes) * (1 + 2 * layer.ndim)
        work += itemsize * planes
    del y_items
    return Counts(
        gemm_flops=flops,
        gemm_calls=calls,
        stream_bytes=float(stream),
        passes=passes,
        fft_points=fft,
        work_bytes=int(work),
    )
