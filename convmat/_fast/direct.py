"""The fast NumPy path: convolution and transposed convolution without building a matrix.

Both directions reduce to one kernel, a *tap sum* over a flat, channel-major
layout of the batch (:func:`_tap_sum`):

* Pad the input once and split it into stride phases (polyphase): along an axis
  with stride ``s``, phase ``r`` holds the padded positions ``s·j + r``. A tap at
  ``t·d = s·q + r`` then reads phase ``r`` at ``j + q`` — a *stride-1* shift.
* Lay every phase out as ``(channels, N·∏grid)``: one flat row per channel, the
  whole batch side by side. A shift by ``q`` along every axis is then one flat
  offset, and the product for one tap is one GEMM ``W_t (C_out × C_in) @ X[:, off:off+L]``
  on a strided view (no im2col copy), accumulated into the output by BLAS.
  Output positions whose window runs into the gap between rows (the padding)
  are computed as junk and cropped at the end; neighbouring rows share one
  zero gap (:func:`_pitch`), so a stride-1 row carries ``d·(k−1) − min(lo, hi)``
  junk positions (``max(lo, hi)`` for "same" padding).
* Taps that share an offset across phases are one GEMM with the phases stacked
  (space-to-depth for a strided convolution, depth-to-space for a transposed one),
  so the GEMMs stay large; single-channel layers use AXPY per tap instead.
* Channel-heavy layers keep channels innermost (the GEMMs run faster so). Their
  input is transposed to channels-last first when the last axis is strided, so
  its phases are contiguous runs (:func:`_pack_channels_last`); with few output
  channels the shifts along the last axis are stacked on the GEMM rows instead
  of moving the read, and the store sums the shifted blocks (``STACKED_ROWS``).
* The padded planes and the junk-laden output are work buffers kept per thread
  between calls (up to ``SCRATCH_LIMIT`` bytes each): fresh memory would pay
  page faults on every call. Returned arrays are always fresh.

The transposed layer splits its *output* into stride phases: output phase ``ρ``
gathers the taps with ``t·d ≡ ρ (mod s)``, a stride-1 correlation of the input
with those taps at reversed offsets. The textbook methods ("scatter",
"fractional", "matrix") are written as the recipes they are, to be compared.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from convmat._blas import axpy, gemm, transpose
from convmat._layer import Layer

Array = np.ndarray[Any, Any]

METHODS = ("gemm", "scatter", "fractional", "matrix")
# NaN and inf propagate through the arithmetic silently, as in PyTorch.
QUIET: dict[str, Any] = {"invalid": "ignore", "over": "ignore"}
NP_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


# --------------------------------------------------------------------------- scratch memory

SCRATCH_LIMIT = 32 * 2**20
CHANNELS_LAST_MIN = 256  # m·k of a tap GEMM from which channels go innermost ...
CHANNELS_LAST_ROW_FLOPS = 2**20  # ... and the work per output row that pays a row's store
PACK_BYTES = 2**20  # samples transposed to channels-last at once, then packed from L2
BAND_BYTES = 2**19  # a band of the channels-last output transposed at once: stays in L2
STACKED_ROWS = 128  # rows of a tap GEMM up to which shifts along the last axis stack on them


class _Scratch(threading.local):
    """Per-thread work buffers, kept between calls (results never live in them)."""

    def __init__(self) -> None:
        self.buffers: dict[str, Array] = {}
        self.programs: dict[Any, Any] = {}  # an engine's prepared passes, with their buffers


_SCRATCH = _Scratch()


def _scratch(
    name: str, shape: tuple[int, ...], dtype: np.dtype[Any], *, channels_last: bool = False
) -> Array:
    """An uninitialised work array, reused by the next call of the same thread.

    Fresh memory costs page faults on first touch (a large share of a fast
    convolution's time); buffers up to ``SCRATCH_LIMIT`` bytes are therefore kept
    per thread and name. Larger ones are plain allocations, freed after the call.
    With ``channels_last`` the last axis (positions) is outermost in memory: the
    view has ``shape``, its memory is ``(shape[-1], *shape[:-1])``.
    """
    dtype = np.dtype(dtype)
    memory = (shape[-1], *shape[:-1]) if channels_last else shape
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > SCRATCH_LIMIT:
        array = np.empty(memory, dtype=dtype)
    else:
        buffer = _SCRATCH.buffers.get(name)
        if buffer is None or buffer.nbytes < nbytes:
            raw = np.empty(nbytes + 64, dtype=np.uint8)
            start = -raw.ctypes.data % 64  # cache-line aligned, whatever the dtype
            buffer = raw[start : start + nbytes]
            _SCRATCH.buffers[name] = buffer
        array = buffer[:nbytes].view(dtype).reshape(memory)
    return np.moveaxis(array, 0, -1) if channels_last else array


def _tuning() -> tuple[int, ...]:
    """The thresholds a layout plan depends on (tests and benchmarks may change them)."""
    return CHANNELS_LAST_MIN, CHANNELS_LAST_ROW_FLOPS, STACKED_ROWS


def _channels_last(m: int, k: int, row: int, n_taps: int) -> bool:
    """Whether the tap sum should keep channels innermost (GEMMs by position rows).

    OpenBLAS runs the per-tap GEMMs of a channel-heavy layer some 10 % faster with
    the positions as the long, outer dimension of the output; the price is a
    transposing store, done row by row, so the rows must carry enough work.
    """
    return m * k >= CHANNELS_LAST_MIN and 2 * m * k * n_taps * row >= CHANNELS_LAST_ROW_FLOPS


def clear_scratch() -> None:
    """Release this thread's work buffers (benchmarks measure a cold call with it)."""
    _SCRATCH.buffers.clear()
    _SCRATCH.programs.clear()


def _programs() -> dict[Any, Any]:
    """This thread's prepared block programs (:func:`convmat._fast.winograd._program`):
    passes and buffers built once per block shape, kept like the work buffers."""
    return _SCRATCH.programs


# --------------------------------------------------------------------------- the tap sum


class _Tap(NamedTuple):
    """One kernel tap: a flat offset, the input and output blocks it links, its matrices."""

    offset: int
    in_block: int
    out_block: int
    matrix: Array  # (G, M, K): one (M × K) matrix per group


def _tap_sum(
    planes: Array, taps: list[_Tap], out: Array, length: int, blocks: tuple[int, int]
) -> list[bool]:
    """``out[g, o-block] = Σ_taps matrix[g] @ planes[g, i-block, off : off + length]``.

    ``planes`` is ``(G, B_in·K, ·)`` and ``out`` ``(G, B_out·M, ·)``; only the first
    ``length`` columns of ``out`` are written. Taps sharing an offset whose blocks
    fill the whole ``B_out × B_in`` grid are one stacked GEMM (not for single
    channels, where one AXPY per tap is faster). Returns which output blocks
    received a tap (the others are left unwritten).
    """
    n_in, n_out = blocks
    groups, m, k = taps[0].matrix.shape
    done = [False] * n_out
    by_offset: dict[int, list[_Tap]] = {}
    for tap in taps:
        by_offset.setdefault(tap.offset, []).append(tap)
    # Complete groups first: a stacked GEMM then initialises every output block at once.
    ordered = sorted(by_offset.values(), key=lambda group: -len(group))
    for group in ordered:
        off = group[0].offset
        if len(group) == n_in * n_out > 1 and m * k > 1:
            stacked = _stacked(group, blocks, out.dtype)
            if any(done) and not all(done):
                for b, filled in enumerate(done):
                    if not filled:
                        out[:, b * m : (b + 1) * m, :length] = 0
            for g in range(groups):
                gemm(
                    stacked[g],
                    planes[g, :, off : off + length],
                    out[g, :, :length],
                    accumulate=all(done),
                )
            done = [True] * n_out
            continue
        for tap in group:
            src = planes[:, tap.in_block * k : (tap.in_block + 1) * k, off : off + length]
            dst = out[:, tap.out_block * m : (tap.out_block + 1) * m, :length]
            first = not done[tap.out_block]
            for g in range(groups):
                if m * k == 1:
                    if first:
                        np.multiply(src[g, 0], tap.matrix[g, 0, 0], out=dst[g, 0])
                    else:
                        axpy(tap.matrix[g, 0, 0], src[g, 0], dst[g, 0])
                else:
                    gemm(tap.matrix[g], src[g], dst[g], accumulate=not first)
            done[tap.out_block] = True
    return done


def _stacked(group: list[_Tap], blocks: tuple[int, int], dtype: np.dtype[Any]) -> Array:
    """The matrices of taps sharing one offset side by side: ``(G, B_out·M, B_in·K)``."""
    n_in, n_out = blocks
    groups, m, k = group[0].matrix.shape
    stacked = np.zeros((groups, n_out * m, n_in * k), dtype=dtype)
    for tap in group:
        rows = slice(tap.out_block * m, (tap.out_block + 1) * m)
        stacked[:, rows, tap.in_block * k : (tap.in_block + 1) * k] = tap.matrix
    return stacked


def _key(*parts: Any) -> tuple[Any, ...]:
    """An index tuple (``a[_key(..., *slices)]`` reads as ``a[..., *slices]`` on Python 3.10)."""
    return parts


def _place(dest: Array, source: Array, index: Sequence[slice]) -> None:
    """``dest[..., *index] = source`` and zeros around it, writing every element once.

    ``dest`` is ``(..., *grid)``; ``index`` holds one ``slice(start, stop)`` per grid axis.
    """
    lead = (slice(None),) * (dest.ndim - len(index))
    dest[_key(*lead, *index)] = source
    for axis, box in enumerate(index):
        before = _key(*lead, *index[:axis], slice(0, box.start))
        after = _key(*lead, *index[:axis], slice(box.stop, None))
        dest[before] = 0
        dest[after] = 0


def _view(a: Array, shape: tuple[int, ...]) -> Array:
    """``a`` reshaped without a copy (``reshape`` would copy silently; writes must land)."""
    view: Array = a.view()
    view.shape = shape
    return view


def _clip(start: int, stop: int, length: int) -> tuple[int, int]:
    """``[start, stop)`` clipped to ``[0, length)`` (empty as ``(a, a)``)."""
    start = min(max(start, 0), length)
    return start, max(start, min(stop, length))


def _pitch(length: int, valid: int, data: Sequence[tuple[int, int]]) -> int:
    """Row pitch along one axis when neighbouring rows share their zero gaps.

    A row spans ``length`` positions (``valid`` outputs plus the taps' reach) with
    data in ``[start, stop)`` (one range per phase plane) and zeros around it. The
    next row may start once this row's data has ended, provided that reads past
    this row's pitch (up to ``length``) land in the next row's leading zeros:
    ``pitch >= stop`` and ``pitch >= length − start``. With stride 1 that is
    ``n + max(lo, hi)`` instead of ``n + lo + hi``: ``min(lo, hi)`` less work a row.
    """
    filled = [(a, b) for a, b in data if b > a]
    if not filled:
        return valid
    return max(valid, max(b for _, b in filled), length - min(a for a, _ in filled))


def _flat_index(index: Sequence[int], shape: Sequence[int]) -> int:
    flat = 0
    for i, n in zip(index, shape, strict=True):
        flat = flat * n + i
    return flat


def _kernel_grid(values: Sequence[Sequence[int]], shape: Sequence[int]) -> list[int]:
    """Per kernel tap (C order over the kernel): the flat index in a grid of ``shape``
    of the tap's per-axis values (``values[a][t_a]`` along axis ``a``)."""
    total = np.zeros([len(v) for v in values], dtype=np.int64)
    for axis, v in enumerate(values):
        shaped = np.reshape(v, [-1 if a == axis else 1 for a in range(len(values))])
        total = total + shaped * math.prod(shape[axis + 1 :])
    return [int(i) for i in total.ravel()]


def _axis_taps(layer: Layer) -> list[list[tuple[int, int]]]:
    """Per axis, per tap ``t``: ``(phase, shift)`` with ``t·d = s·shift + phase``."""
    return [
        [((t * d) % s, (t * d) // s) for t in range(k)]
        for k, s, d in zip(layer.kernel_size, layer.stride, layer.dilation, strict=True)
    ]


# --------------------------------------------------------------------------- convolution


class _Split(NamedTuple):
    """How the padded input is laid out in stride-phase planes, axis by axis.

    Along an axis with stride ``s`` and low padding ``lo``, phase ``r`` in
    ``phases`` holds padded position ``s·j + r`` at plane position ``j``; its data
    (input index ``s·j + r − lo``) fills ``[j0, j1) = ranges[r]``, zeros elsewhere.
    Planes are ``pitch`` positions long.
    """

    strides: tuple[int, ...]
    lows: list[int]
    phases: list[list[int]]
    ranges: list[dict[int, tuple[int, int]]]
    pitch: tuple[int, ...]


def _rows(combo: Sequence[int], split: _Split) -> tuple[list[slice], list[slice]]:
    """Per axis of ``combo`` (a phase per axis, from the first): the plane positions
    ``[j0, j1)`` that phase fills and the input indices they read."""
    dst_index: list[slice] = []
    src_index: list[slice] = []
    for r, s, lo, rng in zip(combo, split.strides, split.lows, split.ranges, strict=False):
        j0, j1 = rng[r]
        dst_index.append(slice(j0, j1))
        start = s * j0 + r - lo
        src_index.append(slice(start, start + s * (j1 - j0), s))
    return dst_index, src_index


def _pack(planes: Array, source: Array, split: _Split) -> None:
    """Fill ``planes (G, blocks·K, N·∏pitch)`` with the stride phases of ``source``.

    ``source`` is the input as ``(G, K, N, *spatial)``; zeros go around the data.
    """
    groups, per_in, n_batch = source.shape[:3]
    for block, combo in enumerate(itertools.product(*split.phases)):
        dest = _view(
            planes[:, block * per_in : (block + 1) * per_in],
            (groups, per_in, n_batch, *split.pitch),
        )
        dst_index, src_index = _rows(combo, split)
        _place(dest, source[_key(..., *src_index)], dst_index)


def _channels_first(a: Array) -> Array:
    """``a (N, ..., C)`` viewed as ``(C, N, ...)``."""
    view: Array = a.transpose(a.ndim - 1, *range(a.ndim - 1))
    return view


def _pack_channels_last(planes: Array, x: Array, split: _Split) -> None:
    """:func:`_pack` for one group into channels-innermost planes, when every phase of the
    last axis (stride ``s > 1``) is used.

    Transposing ``x`` to channels-last first (one BLAS call a sample) makes the
    stride phases of the last axis free: the ``s`` neighbouring input columns
    ``s·j + r − lo`` (r = 0..s−1) are one contiguous run of ``s·C`` values, which is
    exactly what plane position ``j`` holds for those ``s`` blocks. So each
    combination of the other axes' phases is one copy of ``s·C``-value runs,
    plus a few border positions where only some phases hold data. A few samples
    at a time (``PACK_BYTES``), so the copies read the transposed samples from cache.
    """
    n_batch, channels, *spatial = x.shape
    s, lo, width = split.strides[-1], split.lows[-1], spatial[-1]
    size = math.prod(spatial[:-1]) * width
    group = max(1, min(n_batch, PACK_BYTES // (size * channels * x.itemsize)))
    rows = _scratch("channels_last", (group, size, channels), x.dtype)
    last = split.ranges[-1]
    inside = (max(j0 for j0, _ in last.values()), min(j1 for _, j1 in last.values()))
    ja, jb = inside if inside[1] > inside[0] else (0, 0)
    chunk = s * channels
    blocks = [  # per combination of the other axes' phases: its planes and boxes
        (
            _view(planes[block * chunk : (block + 1) * chunk], (chunk, n_batch, *split.pitch)),
            *_rows(combo, split),  # every axis but the last
        )
        for block, combo in enumerate(itertools.product(*split.phases[:-1]))
    ]
    for n in range(0, n_batch, group):
        samples = x[n : n + group]
        transpose(samples.reshape(len(samples), channels, size), rows[: len(samples)])
        flat = _view(rows[: len(samples)], (len(samples), *spatial[:-1], width * channels))
        for planes_of_block, dst_index, src_index in blocks:
            dest = planes_of_block[:, n : n + len(samples)]
            run = flat[..., (s * ja - lo) * channels : (s * jb - lo) * channels]
            run = _view(run, (*run.shape[:-1], jb - ja, chunk))[_key(slice(None), *src_index)]
            _place(dest, _channels_first(run), [*dst_index, slice(ja, jb)])
            # Border positions: phase r holds data at j in [j0, j1) outside the shared run.
            for r, (j0, j1) in last.items():
                for j in (*range(j0, min(j1, ja)), *range(max(j0, jb), j1)):
                    column = flat[
                        ..., (s * j + r - lo) * channels : (s * j + r - lo + 1) * channels
                    ]
                    column = column[_key(slice(None), *src_index)]
                    target = _key(
                        slice(r * channels, (r + 1) * channels), slice(None), *dst_index, j
                    )
                    dest[target] = _channels_first(column)


class _ConvPlan(NamedTuple):
    """Everything about a forward convolution that depends on its geometry only."""

    split: _Split  # the stride-phase layout of the (padded) input
    size: int  # positions of one plane: N·∏pitch
    tail: int  # zero positions after them, for the furthest shift
    blocks: int  # stride-phase planes (blocks of input channels)
    inner: bool  # channels innermost
    packing: str  # "channels last" (transpose first) or "strided"
    shifts: int  # output blocks: shifts along the last axis stacked on the GEMM rows
    taps: list[tuple[int, int, int]]  # per kernel tap: read offset, input block, output block
    length: int  # output positions the tap sum writes


@functools.lru_cache(maxsize=64)
def _conv_plan(layer: Layer, n_batch: int, tuning: tuple[int, ...]) -> _ConvPlan:
    """The layout of :func:`conv_engine` for a layer and batch size.

    Pure index work, cached: a plan is shared by every call with its geometry and
    must not be modified. ``tuning`` (:func:`_tuning`) makes the module's layout
    thresholds part of the cache key.
    """
    groups = layer.groups
    per_in, per_out = layer.in_channels // groups, layer.out_channels // groups
    if layer.padding_mode == "zeros":
        lows, spatial = [lo for lo, _ in layer.padding], layer.in_spatial
    else:  # the input comes padded
        lows = [0] * layer.ndim
        spatial = tuple(
            n + lo + hi for n, (lo, hi) in zip(layer.in_spatial, layer.padding, strict=True)
        )
    axes = _axis_taps(layer)
    phases = [sorted({r for r, _ in pairs}) for pairs in axes]
    reach = [max(q for _, q in pairs) for pairs in axes]
    # Per axis and phase r: plane position j holds padded input s·j + r, data in [j0, j1).
    ranges = [
        {r: _clip(-((r - lo) // s), -((r - lo - n) // s), o + q) for r in rs}
        for rs, s, lo, n, o, q in zip(
            phases, layer.stride, lows, spatial, layer.out_spatial, reach, strict=True
        )
    ]
    pitch = tuple(
        _pitch(o + q, o, list(rng.values()))
        for o, q, rng in zip(layer.out_spatial, reach, ranges, strict=True)
    )
    inner = _channels_last(per_out, per_in, layer.out_spatial[-1], math.prod(layer.kernel_size))
    s_last = layer.stride[-1]
    last_phases = inner and groups == 1 and s_last > 1 and phases[-1] == list(range(s_last))
    # Shifts along the last axis either move the read (a flat offset) or, stacked,
    # select a block of output rows, each block summed in at its shift by the store.
    stack = inner and groups == 1 and per_out * (reach[-1] + 1) <= STACKED_ROWS
    shifts = reach[-1] + 1 if stack else 1
    reads = [[q for _, q in pairs] for pairs in axes]
    out_blocks = [min(q, shifts - 1) for q in reads[-1]]  # further shifts read further
    reads[-1] = [q - b for q, b in zip(reads[-1], out_blocks, strict=True)]
    in_blocks = [[p.index(r) for r, _ in a] for a, p in zip(axes, phases, strict=True)]
    zero = [[0] * len(pairs) for pairs in axes[:-1]]
    taps = list(
        zip(
            _kernel_grid(reads, pitch),
            _kernel_grid(in_blocks, [len(p) for p in phases]),
            _kernel_grid([*zero, out_blocks], pitch),
            strict=True,
        )
    )
    last = _flat_index([n_batch - 1, *(o - 1 for o in layer.out_spatial)], (n_batch, *pitch))
    return _ConvPlan(
        _Split(layer.stride, lows, phases, ranges, pitch),
        n_batch * math.prod(pitch),
        _flat_index([0, *reach], (n_batch, *pitch)),
        math.prod(len(p) for p in phases),
        inner,
        "channels last" if last_phases else "strided",
        shifts,
        taps,
        last + shifts,  # block q is read up to q positions further
    )


def pad_mode(x: Array, layer: Layer) -> Array:
    """``x`` with the layer's reflect / replicate / circular padding applied.

    Unchanged for ``"zeros"``: the engines place zero padding themselves.
    """
    if layer.padding_mode == "zeros":
        return x
    out: Array = np.pad(
        x,
        ((0, 0), (0, 0), *layer.padding),
        mode=NP_MODES[layer.padding_mode],  # type: ignore[call-overload]
    )
    return out


def conv_engine(x: Array, w: Array, layer: Layer, bias: Array | None) -> Array:
    """``conv`` of a batch ``x`` (N, C_in, *spatial) for a validated layer."""
    n_batch = x.shape[0]
    groups = layer.groups
    c_out, per_in = w.shape[0], w.shape[1]
    per_out = c_out // groups
    if n_batch == 0:
        return np.empty((0, c_out, *layer.out_spatial), dtype=x.dtype)
    x = pad_mode(x, layer)
    plan = _conv_plan(layer, n_batch, _tuning())
    size, inner, shifts = plan.size, plan.inner, plan.shifts
    planes = _scratch(
        "planes", (groups, plan.blocks * per_in, size + plan.tail), x.dtype, channels_last=inner
    )
    planes[:, :, size:] = 0
    if plan.packing == "channels last":
        _pack_channels_last(planes[0, :, :size], x, plan.split)
    else:
        source = x.reshape(n_batch, groups, per_in, *x.shape[2:]).transpose(
            1, 2, 0, *range(3, x.ndim + 1)
        )
        _pack(planes[:, :, :size], source, plan.split)  # source: (G, K, N, *spatial)

    matrices = np.moveaxis(w.reshape(groups, per_out, per_in, -1), -1, 0).copy()
    taps = [_Tap(*tap, matrix) for tap, matrix in zip(plan.taps, matrices, strict=True)]
    out = _scratch(
        "out", (groups, shifts * per_out, size + shifts - 1), x.dtype, channels_last=inner
    )
    done = _tap_sum(planes, taps, out, plan.length, (plan.blocks, shifts))

    y = np.empty((n_batch, c_out, *layer.out_spatial), dtype=x.dtype)
    window = _key(slice(None), slice(None), *(slice(0, o) for o in layer.out_spatial))
    parts = []
    for q in (q for q in range(shifts) if done[q]):  # a dilated kernel may skip a shift
        block = out[:, q * per_out : (q + 1) * per_out, q : q + size]
        crop = _view(block, (c_out, n_batch, *plan.split.pitch))[window]
        parts.append(crop.transpose(1, 0, *range(2, crop.ndim)))
    _store(y, parts, bias)
    return y


def _sum_into(out: Array, parts: Sequence[Array], bias: Any) -> None:
    """``out[...] = Σ parts (+ bias)``, one pass per term, written in ``out``'s memory."""
    if len(parts) > 1:
        np.add(parts[0], parts[1], out=out)
    else:
        np.copyto(out, parts[0])
    for part in parts[2:]:
        out += part
    if bias is not None:
        out += bias


def _store(dst: Array, parts: Sequence[Array], bias: Array | None) -> None:
    """``dst[...] = Σ parts (+ bias per channel, axis 1)`` for ``(N, C, *spatial)`` views.

    Channels-innermost ``parts`` go through a work buffer a band of rows at a
    time: summed (with the bias) in their own order, into an L2-sized buffer, then
    transposed into ``dst`` with one BLAS call (:func:`_blas.transpose`), far
    faster than a strided copy or one NumPy copy per row.
    """
    src = parts[0]
    bias_view = None if bias is None else bias.reshape(-1, *(1,) * (src.ndim - 2))
    channels, spatial = src.shape[1], src.shape[2:]
    item = dst.itemsize
    dense = dst.strides[2:] == tuple(
        item * math.prod(spatial[a + 1 :]) for a in range(len(spatial))
    )
    if channels == 1 or abs(src.strides[1]) != item or not dense:
        _sum_into(dst, parts, bias_view)
        return
    row = math.prod(spatial[1:])  # positions per index of the first spatial axis
    sample = spatial[0] * row * channels * item
    if sample <= BAND_BYTES:  # a band of whole samples ...
        samples, rows = min(len(dst), BAND_BYTES // sample), spatial[0]
    else:  # ... or of rows of one sample
        samples, rows = 1, max(1, BAND_BYTES // (row * channels * item))
    buffer = _scratch("band", (samples, rows, *spatial[1:], channels), dst.dtype)
    last = (0, *range(2, src.ndim), 1)  # (N, C, *spatial) -> (N, *spatial, C)
    for n in range(0, len(dst), samples):
        for start in range(0, spatial[0], rows):
            box = _key(slice(n, n + samples), slice(None), slice(start, start + rows))
            target = dst[box]
            work = buffer[: len(target), : target.shape[2]]
            _sum_into(work, [part[box].transpose(last) for part in parts], bias)
            positions = target.shape[2] * row
            transpose(
                _view(work, (len(target), positions, channels)),
                _view(target, (len(target), channels, positions)),
            )


# --------------------------------------------------------------------------- transposed


class _TransposePlan(NamedTuple):
    """Everything about a transposed convolution that depends on its geometry only."""

    pitch: tuple[int, ...]  # the input's grid, per axis
    size: int  # positions of the input plane: N·∏pitch
    tail: int  # zero positions after them, for the furthest shift
    place: tuple[list[slice], list[slice]]  # where the input goes in the plane, and from where
    blocks: int  # output stride phases
    inner: bool  # channels innermost
    taps: list[tuple[int, int, int]]  # per kernel tap: read offset, input block, output block
    length: int  # positions the tap sum writes
    phases: list[tuple[list[slice], list[slice]]]  # per output phase: its outputs, its results


@functools.lru_cache(maxsize=64)
def _conv_transpose_plan(layer: Layer, n_batch: int, tuning: tuple[int, ...]) -> _TransposePlan:
    """The layout of :func:`conv_transpose_engine` (cached and shared, as :func:`_conv_plan`)."""
    per_in, per_out = layer.out_channels // layer.groups, layer.in_channels // layer.groups
    axes = _axis_taps(layer)
    shifts = [max(q for _, q in taps) for taps in axes]
    # Per axis and output phase ρ: the padded output index s·I + ρ for I in [first, stop).
    first, stop = [], []
    for s, (lo, _), n in zip(layer.stride, layer.padding, layer.in_spatial, strict=True):
        first.append([-((r - lo) // s) for r in range(s)])
        stop.append([-((r - lo - n) // s) for r in range(s)])
    base = [min(f) for f in first]
    span = [max(e) - b for e, b in zip(stop, base, strict=True)]
    # The input sits on a grid of span + reach positions per axis: y[i] at i − base + reach.
    dst_index, src_index = [], []
    for o, b0, q, sp in zip(layer.out_spatial, base, shifts, span, strict=True):
        start, stop_ = _clip(q - b0, o + q - b0, sp + q)
        dst_index.append(slice(start, stop_))
        src_index.append(slice(start + b0 - q, stop_ + b0 - q))
    pitch = tuple(
        _pitch(sp + q, sp, [(box.start, box.stop)])
        for sp, q, box in zip(span, shifts, dst_index, strict=True)
    )
    phase_counts = list(layer.stride)
    n_blocks = math.prod(phase_counts)
    # Channels innermost only without output phases: interleaving phases row by row
    # costs more than the faster GEMMs save.
    inner = n_blocks == 1 and _channels_last(
        per_out, per_in, layer.in_spatial[-1], math.prod(layer.kernel_size)
    )
    reads = [[q_max - q for _, q in a] for q_max, a in zip(shifts, axes, strict=True)]
    taps = list(
        zip(
            _kernel_grid(reads, pitch),
            [0] * math.prod(layer.kernel_size),
            _kernel_grid([[r for r, _ in a] for a in axes], phase_counts),
            strict=True,
        )
    )
    phases = []
    for phase in itertools.product(*(range(s) for s in layer.stride)):
        x_index: list[slice] = []
        u_index: list[slice] = []
        for r, s, (lo, _), firsts, stops, b0 in zip(
            phase, layer.stride, layer.padding, first, stop, base, strict=True
        ):
            f, e = firsts[r], stops[r]
            x_index.append(slice(s * f + r - lo, None, s) if e > f else slice(0, 0))
            u_index.append(slice(f - b0, max(f, e) - b0))
        phases.append((x_index, u_index))
    last = _flat_index([n_batch - 1, *(sp - 1 for sp in span)], (n_batch, *pitch))
    return _TransposePlan(
        pitch,
        n_batch * math.prod(pitch),
        _flat_index([0, *shifts], (n_batch, *pitch)),
        (dst_index, src_index),
        n_blocks,
        inner,
        taps,
        last + 1,
        phases,
    )


def conv_transpose_engine(y: Array, w: Array, layer: Layer, bias: Array | None) -> Array:
    """The transposed layer by output stride phases, each a stride-1 tap sum."""
    n_batch = y.shape[0]
    groups = layer.groups
    c_in, per_out = w.shape[0], w.shape[1]  # transposed input channels, output per group
    per_in = c_in // groups
    c_out = per_out * groups
    if n_batch == 0:
        return np.empty((0, c_out, *layer.in_spatial), dtype=y.dtype)
    plan = _conv_transpose_plan(layer, n_batch, _tuning())
    size, pitch, inner = plan.size, plan.pitch, plan.inner
    planes = _scratch("planes", (groups, per_in, size + plan.tail), y.dtype, channels_last=inner)
    planes[:, :, size:] = 0
    dest = _view(planes[:, :, :size], (groups, per_in, n_batch, *pitch))
    source = y.reshape(n_batch, groups, per_in, *layer.out_spatial)
    source = source.transpose(1, 2, 0, *range(3, source.ndim))  # (G, K, N, *spatial)
    dst_index, src_index = plan.place
    _place(dest, source[_key(..., *src_index)], dst_index)

    matrices = w.reshape(groups, per_in, per_out, -1).transpose(3, 0, 2, 1).copy()
    taps = [_Tap(*tap, matrix) for tap, matrix in zip(plan.taps, matrices, strict=True)]
    out = _scratch("out", (groups, plan.blocks * per_out, size), y.dtype, channels_last=inner)
    done = _tap_sum(planes, taps, out, plan.length, (1, plan.blocks))

    x = np.empty((n_batch, c_out, *layer.in_spatial), dtype=y.dtype)
    for block, (x_index, u_index) in enumerate(plan.phases):
        target = x[_key(slice(None), slice(None), *x_index)]
        if target.size == 0:
            continue
        if not done[block]:
            target[...] = 0 if bias is None else bias.reshape(-1, *(1,) * (target.ndim - 2))
            continue
        # Output block (G, M, N, *grid) -> the phase's positions, one group at a time
        # (a block of a channels-last buffer cannot merge G and M without a copy).
        result = _view(
            out[:, block * per_out : (block + 1) * per_out], (groups, per_out, n_batch, *pitch)
        )
        crop = result[_key(slice(None), slice(None), slice(None), *u_index)]
        for g in range(groups):
            channels = slice(g * per_out, (g + 1) * per_out)
            _store(
                target[:, channels],
                [crop[g].transpose(1, 0, *range(2, crop.ndim - 1))],
                None if bias is None else bias[channels],
            )
    return x
