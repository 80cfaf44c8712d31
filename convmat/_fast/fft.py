"""FFT convolution: the layer as products of spectra, for large kernels on large inputs.

Computes :func:`conv` and :func:`conv_transpose` exactly as specified (every
geometry: groups, stride, dilation, padding modes, output_padding) with real
FFTs (:func:`scipy.fft.rfftn`). Cost: ``O(N·(C_in + C_out)·n·log b)`` transform
work for ``n`` positions in tiles of ``b``, plus one complex multiply-add per
channel pair and frequency, against the tap sum's ``N·C_in·C_out·n·k^d``
multiply-adds. It wins for wide kernels — a blur or PSF of 15–63 taps on a large
image (``k = 31`` on 2048², one channel, float32, one thread: 0.075× PyTorch's
time, some 15× faster than the tap sum) — and where the tap sum is slow for few
channels. Measured crossovers against the tap sum (float32, one thread): one
channel on 1024², ``k ≈ 9`` (even there, faster from ``k = 11``); 3 → 3
channels on 512², ``k = 5``; 16 → 16 channels on 8×64², ``k = 5`` (but PyTorch
stays ahead there up to ``k ≈ 9``). Below ``k ≈ 5`` it always loses.

How the layer becomes a stride-1 correlation:

* The padded input is split into stride phases (polyphase, as
  :mod:`convmat._fast.direct`): along an axis with stride ``s`` and dilation
  ``d``, tap ``t`` reads phase ``r = t·d mod s`` at shift ``q = ⌊t·d / s⌋``. The
  phases become extra input channels and the kernel a dense ``(P, Q)`` grid per
  channel pair (zeros where no tap lands), so a strided or dilated layer is a
  stride-1 correlation with ``C_in·∏s`` channels and ``∏⌈(d·(k−1)+1)/s⌉`` taps:
  no output is computed and then thrown away.
* Overlap-save: the outputs are cut into tiles of ``B`` per axis; tile ``t``
  reads ``B + Q − 1`` plane positions, zero-extended to an FFT length
  ``F = next_fast_len(B + Q − 1)``. All tiles of a chunk are transformed at once
  (one batched :func:`scipy.fft.rfftn`), multiplied by the conjugated kernel
  spectrum (correlation, not convolution), contracted over input channels — pair
  by pair for a few channels, one :func:`numpy.matmul` over the stacked
  frequencies otherwise — and transformed back; each tile keeps its first ``B``
  outputs. ``B`` is chosen by counting ``n·log2 n`` per output (:func:`_tiling`);
  a single tile covering the whole input is the plain FFT convolution. Chunks of
  tiles bound the memory to ``CHUNK_BYTES`` of spectra.
* The transposed layer is the adjoint: a stride-1 correlation of the input with
  the flipped, channel-swapped phase kernel, whose output channels are the
  stride phases of the result, interleaved back (depth-to-space).

Rounding: float32 stays float32 (complex64 spectra), float64 float64; the error
is normwise ``O(ε·log n)`` of ``max|x|·Σ|w|``, not per output: outputs much
smaller than their neighbours (a deconvolution residual) carry relative errors
that a direct sum would not. Normwise it is the smaller one: on 1024² and 2048²
blurs (k = 31, 63) float32 errors against a float64 reference are 3–8× below
PyTorch's own float32 errors; float64 agrees with the tap sum to ~1e-15.

Non-finite input: a transform spreads one NaN or inf to every output, so
``conv`` and ``conv_transpose`` check ``np.isfinite`` on the input and the
weight (one pass each) and hand a non-finite call to the direct engine, which
gives the non-finite pattern of PyTorch.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any, NamedTuple

import numpy as np
import scipy.fft as sfft

from convmat._fast.cost import Counts
from convmat._fast.direct import (
    _axis_taps,
    _clip,
    _key,
    _place,
    _view,
    conv_engine,
    conv_transpose_engine,
    pad_mode,
)
from convmat._layer import Layer

Array = np.ndarray[Any, Any]

NAME = "fft"
CHUNK_BYTES = 2**26  # spectra of the tiles transformed at once
PAIR_LIMIT = 16  # channel pairs per group up to which spectra are multiplied pair by pair
# Relative costs, for the choice of tiles only (measured, one thread, float32, ns):
FFT_NS = 0.6  # one n·log2(n) point of a real transform, forward plus inverse ...
FFT_LINE = 40  # ... times 1 + FFT_LINE / F for short transforms
MAC_NS = 1.3  # one complex multiply-add in the frequency domain
STREAM_NS = 0.5  # one element of a streaming pass (padding, store)


# --------------------------------------------------------------------------- geometry


class _Phases(NamedTuple):
    """The stride-phase split of a layer, axis by axis.

    ``phases[a]`` lists the padded-input phases ``r`` some tap reads along axis
    ``a``; ``reach[a]`` is ``Q``, the taps of the phase kernel; ``which[a]`` and
    ``shift[a]`` give, per kernel tap, its phase's position in ``phases[a]`` and its ``q``.
    """

    phases: tuple[tuple[int, ...], ...]
    reach: tuple[int, ...]
    which: tuple[tuple[int, ...], ...]
    shift: tuple[tuple[int, ...], ...]

    @property
    def counts(self) -> tuple[int, ...]:
        return tuple(len(p) for p in self.phases)


@functools.lru_cache(maxsize=64)
def _phases(layer: Layer) -> _Phases:
    axes = _axis_taps(layer)
    phases = tuple(tuple(sorted({r for r, _ in taps})) for taps in axes)
    return _Phases(
        phases,
        tuple(max(q for _, q in taps) + 1 for taps in axes),
        tuple(tuple(p.index(r) for r, _ in taps) for p, taps in zip(phases, axes, strict=True)),
        tuple(tuple(q for _, q in taps) for taps in axes),
    )


class _Tiling(NamedTuple):
    """Overlap-save tiles per axis: ``tiles`` of ``block`` outputs, FFT length ``fft``."""

    tiles: tuple[int, ...]
    block: tuple[int, ...]
    fft: tuple[int, ...]

    @property
    def padded(self) -> tuple[int, ...]:
        """Plane positions the tiles read: ``(T − 1)·B + F`` per axis."""
        return tuple(
            (t - 1) * b + f for t, b, f in zip(self.tiles, self.block, self.fft, strict=True)
        )


TILE_COUNTS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64, 96, 128)


def _axis_options(out: int, reach: int, block: int | None) -> list[tuple[int, int, int]]:
    """Candidate ``(T, B, F)`` along one axis: ``T`` tiles of ``B`` outputs, FFT length ``F``.

    ``B = ⌈out / T⌉`` and ``F = next_fast_len(B + Q − 1)``; tiles narrower than the
    kernel's reach are not considered (most of their transform would be overlap).
    """
    if block is not None:
        counts: tuple[int, ...] = (-(-out // max(1, min(block, out))),)
    else:
        counts = tuple(t for t in TILE_COUNTS if t == 1 or -(-out // t) >= reach)
    options = []
    for t in counts:
        b = -(-out // t)
        options.append((-(-out // b), b, sfft.next_fast_len(b + reach - 1, real=True)))
    return sorted(set(options))


def _point_ns(fft: tuple[int, ...]) -> float:
    """Relative time of one ``n·log2 n`` point: short transforms pay per line."""
    return FFT_NS * (1.0 + FFT_LINE / min(fft))


@functools.lru_cache(maxsize=256)
def _tiling(
    out: tuple[int, ...],
    reach: tuple[int, ...],
    per_tile: int,
    fixed: int,
    pairs: int,
    block: int | None = None,
) -> _Tiling:
    """The tiles minimising the counted work.

    ``per_tile`` transforms run per tile (inputs and outputs of every sample and
    channel), ``fixed`` once (the kernel spectra, at the tile's FFT size), and
    ``pairs`` complex multiply-adds per tile and frequency; the padded planes and
    the tiled result are one streaming pass each. ``block`` forces the outputs per
    tile (tests).
    """
    best: tuple[float, int, _Tiling] | None = None
    per_axis = [_axis_options(o, q, block) for o, q in zip(out, reach, strict=True)]
    for combo in itertools.product(*per_axis):
        tiling = _Tiling(*(tuple(v) for v in zip(*combo, strict=True)))
        tiles = math.prod(tiling.tiles)
        points = math.prod(tiling.fft)
        freqs = points // tiling.fft[-1] * (tiling.fft[-1] // 2 + 1)
        log = math.log2(max(points, 2))
        work = _point_ns(tiling.fft) * (per_tile * tiles + fixed) * points * log
        work += MAC_NS * pairs * tiles * freqs
        work += STREAM_NS * per_tile * (math.prod(tiling.padded) + tiles * points)
        if best is None or (work, tiles) < best[:2]:
            best = (work, tiles, tiling)
    assert best is not None
    return best[2]


def _shape(layer: Layer, n_batch: int, transposed: bool, block: int | None) -> _Tiling:
    """The tiling one call uses (shared by the call and by :func:`counts`)."""
    split = _phases(layer)
    groups, p = layer.groups, math.prod(split.counts)
    c_in, c_out = layer.in_channels * p, layer.out_channels  # correlation channels
    pairs = n_batch * c_in * c_out // groups
    fixed = c_out * c_in // groups
    if transposed:
        return _tiling(
            _planes(layer, split)[1], split.reach, n_batch * (c_in + c_out), fixed, pairs, block
        )
    return _tiling(layer.out_spatial, split.reach, n_batch * (c_in + c_out), fixed, pairs, block)


def _planes(layer: Layer, split: _Phases) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The plane positions the transposed layer must produce: per axis the first
    one and how many (over its phases; output ``i = s·j + r − lo``)."""
    first, span = [], []
    for phases, s, (lo, _), n in zip(
        split.phases, layer.stride, layer.padding, layer.in_spatial, strict=True
    ):
        j0 = min(-((r - lo) // s) for r in phases)
        first.append(j0)
        span.append(max(1, *(-((r - lo - n) // s) - j0 for r in phases)))
    return tuple(first), tuple(span)


# --------------------------------------------------------------------------- the correlation


def _phase_kernel(w: Array, layer: Layer, split: _Phases) -> Array:
    """The kernel on the phase grid: ``(G, C_out/G, C_in/G · P, *Q)``, zeros between taps."""
    groups = layer.groups
    c_out, per_in = w.shape[:2]
    ndim = layer.ndim
    kern = np.zeros((groups, c_out // groups, per_in, *split.counts, *split.reach), dtype=w.dtype)
    index = []
    for values in (split.which, split.shift):
        for a, v in enumerate(values):
            index.append(np.reshape(v, [-1 if b == a else 1 for b in range(ndim)]))
    kern[_key(slice(None), slice(None), slice(None), *index)] = w.reshape(
        groups, c_out // groups, per_in, *layer.kernel_size
    )
    return kern.reshape(groups, c_out // groups, -1, *split.reach)


def _contract(a: Array, h: Array) -> Array:
    """``y[n, g, o, …, f] = Σ_i h[g, o, i, f] · a[n, g, i, …, f]`` (spectra; tiles in ``…``).

    ``a`` is ``(n, G, Ci, *T, *Fh)`` and ``h`` ``(G, Co, Ci, *Fh)``. Few channel
    pairs: one multiply (and add) pass per pair. Many: one :func:`numpy.matmul`
    of ``(Co × Ci) @ (Ci × n·∏T)`` per frequency, all frequencies stacked.
    """
    n_batch, groups, c_in = a.shape[:3]
    c_out = h.shape[1]
    ndim = h.ndim - 3
    tiles = a.shape[3 : a.ndim - ndim]
    half = a.shape[a.ndim - ndim :]
    freqs = math.prod(half)
    a3 = a.reshape(n_batch, groups, c_in, -1, freqs)
    h3 = h.reshape(groups, c_out, c_in, 1, freqs)
    if c_out == c_in == 1:  # one channel pair: in place, no fresh memory to fault in
        np.multiply(a3[:, :, 0], h3[:, 0, 0], out=a3[:, :, 0])
        return a
    if c_out * c_in <= PAIR_LIMIT:
        y = np.empty((n_batch, groups, c_out, *a3.shape[3:]), dtype=a.dtype)
        tmp = np.empty_like(a3[:, :, 0]) if c_in > 1 else None
        for o in range(c_out):
            np.multiply(a3[:, :, 0], h3[:, o, 0], out=y[:, :, o])
            for i in range(1, c_in):
                np.multiply(a3[:, :, i], h3[:, o, i], out=tmp)
                y[:, :, o] += tmp
        return y.reshape(n_batch, groups, c_out, *tiles, *half)
    n_tiles = a3.shape[3]
    am = a3.transpose(1, 4, 2, 0, 3).reshape(groups, freqs, c_in, n_batch * n_tiles)
    hm = h3[:, :, :, 0].transpose(0, 3, 1, 2)
    ym: Array = np.matmul(hm, am)  # (G, freqs, Co, n·tiles)
    yv = ym.reshape(groups, *half, c_out, n_batch, *tiles)
    nt = len(tiles)
    order = (2 + ndim, 0, 1 + ndim, *range(3 + ndim, 3 + ndim + nt), *range(1, 1 + ndim))
    result: Array = yv.transpose(order)
    return result


def _parts(tiles: int, block: int, length: int) -> list[tuple[int, int, int]]:
    """Along one axis: runs ``(t0, t1, b)`` of tiles whose first ``b`` outputs are kept
    (the full tiles, then a last, shorter one when ``length`` is not a multiple)."""
    last = length - (tiles - 1) * block
    if last == block:
        return [(0, tiles, block)]
    return [(0, tiles - 1, block), (tiles - 1, tiles, last)] if tiles > 1 else [(0, 1, last)]


def _correlate(
    a: Array,
    kern: Array,
    tiling: _Tiling,
    dest: Array,
    bias: Array | None,
    *,
    workers: int,
) -> None:
    """Stride-1 correlation of zero-padded planes ``a (N, G, Ci, *padded)`` with ``kern``.

    ``kern`` is ``(G, Co, Ci, *Q)``; writes ``dest (N, G, Co, *out)`` (plus ``bias``,
    ``(G, Co)``): ``dest[o] = Σ_{i,q} kern[o, i, q] · a[i, o + q]``. Each tile's first
    ``B`` outputs go straight to their place in ``dest`` (no tiled work array).
    """
    n_batch, groups, c_in = a.shape[:3]
    c_out = kern.shape[1]
    ndim = kern.ndim - 3
    axes = tuple(range(-ndim, 0))
    tiles, block, fft = tiling
    # The kernel spectrum axis by axis: each transform runs on Q-long lines of the others;
    # conjugated, the product correlates.
    h = sfft.rfft(kern, n=fft[-1], axis=-1, workers=workers)
    for axis in range(ndim - 1):
        h = sfft.fft(h, n=fft[axis], axis=axis - ndim, workers=workers, overwrite_x=True)
    np.conjugate(h, out=h)
    # Overlapping windows: tile t reads positions [t·B, t·B + F) of every axis.
    strides = a.strides[3:]
    windows = np.lib.stride_tricks.as_strided(
        a,
        shape=(n_batch, groups, c_in, *tiles, *fft),
        strides=(*a.strides[:3], *(b * st for b, st in zip(block, strides, strict=True)), *strides),
        writeable=False,
    )
    half = math.prod(fft[:-1]) * (fft[-1] // 2 + 1)
    row = groups * (c_in + c_out) * math.prod(tiles[1:]) * half * 2 * a.itemsize
    rows = max(1, CHUNK_BYTES // row)
    samples = max(1, rows // tiles[0])
    rows = min(rows, tiles[0])
    parts = [_parts(t, b, o) for t, b, o in zip(tiles, block, dest.shape[3:], strict=True)]
    b_view = None if bias is None else bias.reshape(groups, c_out, *(1,) * (2 * ndim))
    for n0 in range(0, n_batch, samples):
        for t0 in range(0, tiles[0], rows):
            box = _key(slice(n0, n0 + samples), slice(None), slice(None), slice(t0, t0 + rows))
            spectra = sfft.rfftn(windows[box], axes=axes, workers=workers)
            product = _contract(spectra, h)
            del spectra
            result = sfft.irfftn(product, s=fft, axes=axes, workers=workers, overwrite_x=True)
            del product
            lead = dest[n0 : n0 + samples]
            for combo in itertools.product(*parts):
                first = combo[0]
                start, stop = max(first[0], t0), min(first[1], t0 + rows)
                if stop <= start:
                    continue
                runs = [(start, stop, first[2]), *combo[1:]]
                src = result[
                    _key(
                        slice(None),
                        slice(None),
                        slice(None),
                        slice(start - t0, stop - t0),
                        *(slice(u0, u1) for u0, u1, _ in runs[1:]),
                        *(slice(0, b) for _, _, b in runs),
                    )
                ]
                # The run's outputs in dest, split into (tiles, kept) per axis.
                region = lead[
                    _key(
                        ...,
                        *(
                            slice(u0 * bl, u0 * bl + (u1 - u0 - 1) * bl + b)
                            for (u0, u1, b), bl in zip(runs, block, strict=True)
                        ),
                    )
                ]
                split = _view(
                    region,
                    (
                        *region.shape[:3],
                        *itertools.chain(*((u1 - u0, b) for u0, u1, b in runs)),
                    ),
                )
                target = split.transpose(
                    0, 1, 2, *range(3, 3 + 2 * ndim, 2), *range(4, 4 + 2 * ndim, 2)
                )
                if b_view is None:
                    np.copyto(target, src)
                else:
                    np.add(src, b_view, out=target)


# --------------------------------------------------------------------------- the layer


def _finite(*arrays: Array) -> bool:
    return all(bool(np.isfinite(a).all()) for a in arrays)


def conv(
    x: Array,
    w: Array,
    layer: Layer,
    bias: Array | None,
    *,
    workers: int = 1,
    block: int | None = None,
) -> Array:
    """``conv`` of a batch ``x`` (N, C_in, *spatial) for a validated layer, by FFT.

    ``workers`` threads run the transforms; ``block`` forces the outputs per tile
    along every axis (otherwise chosen by counting).
    """
    n_batch = x.shape[0]
    if n_batch == 0 or not _finite(x, w):
        return conv_engine(x, w, layer, bias)
    if layer.padding_mode == "zeros":
        lows = [lo for lo, _ in layer.padding]
    else:
        x = pad_mode(x, layer)
        lows = [0] * layer.ndim
    split = _phases(layer)
    tiling = _shape(layer, n_batch, False, block)
    groups = layer.groups
    per_in = x.shape[1] // groups
    spatial = x.shape[2:]
    padded = tiling.padded
    planes = np.empty((n_batch, groups, per_in, *split.counts, *padded), dtype=x.dtype)
    source = x.reshape(n_batch, groups, per_in, *spatial)
    for combo in itertools.product(*(enumerate(p) for p in split.phases)):
        dst_index, src_index = [], []
        for (_, r), s, lo, n, length in zip(
            combo, layer.stride, lows, spatial, padded, strict=True
        ):
            # Plane position j holds padded input s·j + r, i.e. input s·j + r − lo.
            j0, j1 = _clip(-((r - lo) // s), -((r - lo - n) // s), length)
            dst_index.append(slice(j0, j1))
            start = s * j0 + r - lo
            src_index.append(slice(start, start + s * (j1 - j0), s) if j1 > j0 else slice(0, 0))
        dest = planes[_key(slice(None), slice(None), slice(None), *(i for i, _ in combo))]
        _place(dest, source[_key(..., *src_index)], dst_index)
    kern = _phase_kernel(w, layer, split)
    flat = planes.reshape(n_batch, groups, -1, *padded)
    y = np.empty((n_batch, layer.out_channels, *layer.out_spatial), dtype=x.dtype)
    dest = y.reshape(n_batch, groups, -1, *layer.out_spatial)
    _correlate(flat, kern, tiling, dest, bias, workers=workers)
    return y


def conv_transpose(
    y: Array,
    w: Array,
    layer: Layer,
    bias: Array | None,
    *,
    workers: int = 1,
    block: int | None = None,
) -> Array:
    """The transposed layer by FFT: the adjoint correlation, then depth-to-space."""
    n_batch = y.shape[0]
    if n_batch == 0 or not _finite(y, w):
        return conv_transpose_engine(y, w, layer, bias)
    split = _phases(layer)
    tiling = _shape(layer, n_batch, True, block)
    groups = layer.groups
    per_y, per_x = y.shape[1] // groups, w.shape[1]
    ndim = layer.ndim
    reach = split.reach
    # The adjoint of o ↦ Σ_q k[q]·a[o + q] is j ↦ Σ_q k[q]·y[j − q]: a correlation of
    # y shifted by Q − 1 with the flipped kernel, input and output channels swapped.
    kern = _phase_kernel(w, layer, split).swapaxes(1, 2)
    kern = kern[_key(..., *(slice(None, None, -1) for _ in range(ndim)))]
    padded = tiling.padded
    first, span = _planes(layer, split)
    source = y.reshape(n_batch, groups, per_y, *layer.out_spatial)
    dst_index, src_index = [], []
    for q, o, length, j0 in zip(reach, layer.out_spatial, padded, first, strict=True):
        # Plane position j0 + j' reads y[j0 + j' − q]: y starts at Q − 1 − j0.
        off = q - 1 - j0
        start, stop = _clip(off, off + o, length)
        dst_index.append(slice(start, stop))
        src_index.append(slice(start - off, stop - off))
    shifted = np.empty((n_batch, groups, per_y, *padded), dtype=y.dtype)
    _place(shifted, source[_key(..., *src_index)], dst_index)
    kern = np.ascontiguousarray(kern)
    c_x = groups * per_x
    x = np.empty((n_batch, c_x, *layer.in_spatial), dtype=y.dtype)
    target_all = x.reshape(n_batch, groups, per_x, *layer.in_spatial)
    if all(s == 1 for s in layer.stride):  # one phase: the planes are the result
        _correlate(shifted, kern, tiling, target_all, bias, workers=workers)
        return x
    planes = np.empty((n_batch, groups, per_x, *split.counts, *span), dtype=y.dtype)
    _correlate(
        shifted, kern, tiling, planes.reshape(n_batch, groups, -1, *span), None, workers=workers
    )
    b = None if bias is None else bias.reshape(groups, per_x, *(1,) * ndim)
    for combo in itertools.product(*(range(s) for s in layer.stride)):
        x_index, j_index, where = [], [], []
        for r, s, (lo, _), n, phases, jmin in zip(
            combo, layer.stride, layer.padding, layer.in_spatial, split.phases, first, strict=True
        ):
            # Output index i = s·j + r − lo: the first i >= 0 of this phase, and its j.
            i0 = (r - lo) % s
            count = len(range(i0, n, s))
            j0 = (i0 + lo - r) // s - jmin
            x_index.append(slice(i0, n, s))
            j_index.append(slice(j0, j0 + count))
            where.append(phases.index(r) if r in phases else None)
        target = target_all[_key(slice(None), slice(None), slice(None), *x_index)]
        if target.size == 0:
            continue
        if any(p is None for p in where):
            target[...] = 0 if b is None else b
            continue
        part = planes[_key(slice(None), slice(None), slice(None), *where, *j_index)]
        if b is None:
            np.copyto(target, part)
        else:
            np.add(part, b, out=target)
    return x


# --------------------------------------------------------------------------- planner interface


def why_not(layer: Layer, *, transposed: bool) -> str | None:
    """None: the FFT path computes every layer exactly as specified (non-finite input
    goes to the direct engine at call time)."""
    return None


def counts(layer: Layer, n_batch: int, itemsize: int, *, transposed: bool) -> Counts:
    """The counted work of one call (see :class:`~convmat._fast.cost.Counts`).

    ``fft_points`` sums ``n·log2 n`` over the real transforms (inputs and outputs
    of every tile, sample and channel, and the kernel spectra); ``gemm_flops``
    counts the frequency-domain product, 8 flops per complex multiply-add.
    """
    split = _phases(layer)
    tiling = _shape(layer, n_batch, transposed, None)
    groups = layer.groups
    p = math.prod(split.counts)
    c_in, c_out = layer.in_channels * p, layer.out_channels
    if transposed:
        c_in, c_out = c_out, c_in
    tiles = math.prod(tiling.tiles)
    points = math.prod(tiling.fft)
    freqs = points // tiling.fft[-1] * (tiling.fft[-1] // 2 + 1)
    transforms = n_batch * (c_in + c_out) * tiles + c_out * c_in // groups
    pairs = c_out * c_in // groups
    small = pairs // groups <= PAIR_LIMIT
    padded = math.prod(tiling.padded)
    blocks = math.prod(t * b for t, b in zip(tiling.tiles, tiling.block, strict=True))
    x_size = n_batch * layer.in_channels * math.prod(layer.in_spatial)
    y_size = n_batch * layer.out_channels * math.prod(layer.out_spatial)
    source, target = (y_size, x_size) if transposed else (x_size, y_size)
    planes = n_batch * c_in * padded  # the zero-padded (phase-split) input of the correlation
    kept = n_batch * c_out * blocks  # the tiles' kept outputs, read back from the transforms
    # Pack: read the input, write the planes; store: read the kept outputs, write the result.
    stream = source + planes + kept + target
    passes = 2
    spread = transposed and any(st > 1 for st in layer.stride)
    if spread:  # the output phases, interleaved into the result (depth-to-space)
        stream += kept + target
        passes += math.prod(layer.stride)
    stream *= itemsize
    # Pair-wise products read two spectra and write one per pair (complex: 2 items each).
    if small:
        passes += 2 * pairs
        stream += 3 * 2 * itemsize * n_batch * pairs * tiles * freqs
    chunk = min(CHUNK_BYTES, 2 * itemsize * n_batch * (c_in + c_out) * tiles * freqs)
    work = itemsize * (planes + (kept if spread else 0)) + 2 * chunk + 2 * itemsize * pairs * freqs
    return Counts(
        gemm_flops=8.0 * n_batch * pairs * tiles * freqs,
        gemm_calls=0 if small else groups * freqs,
        stream_bytes=float(stream),
        passes=passes,
        fft_points=float(transforms * points * math.log2(max(points, 2))),
        work_bytes=work,
    )
