"""Depthwise convolution: one input channel per group, each tap a per-channel multiply-add.

With ``groups == C_in`` (MobileNet's depthwise layers, a channel multiplier
``M = C_out / C_in >= 1``) the tap sum's per-group GEMMs are ``M × 1`` products:
one BLAS call per channel and tap, each too small to run fast. Here the taps of a
band of channels are gathered instead — ``col[c, t, :] = plane_c[off_t : off_t + L]``,
the shifted views of the padded, stride-phase-split input (the layout of
:mod:`convmat._fast.direct`, reused: same planes, same offsets, same junk
positions cropped at the end) — and one batched product
``(band, M, T) @ (band, T, L)`` per band of channels and columns gives every
output of the band. Channels run a band at a time — packed, multiplied and
stored while their planes are in cache (``PLANE_BYTES``), so memory sees the
input read once and the output written once — and the gathered columns of a
product stay in cache too (``COLUMN_BYTES``); no temporary is allocated per
tap. It wins over the tap sum for every depthwise layer (several times over for
``M = 1``, single-channel layers included) and is the ``method="depthwise"`` of
:func:`convmat.conv` and :func:`convmat.conv_transpose`.

Accuracy: each output is one dot product of its ``T`` taps, accumulated by BLAS
in the working dtype, as PyTorch's depthwise kernels do (on float32 data the
results agree with PyTorch's to the last bit or a few ulps). The transposed layer
splits its output into stride phases (as :func:`convmat._fast.direct.conv_transpose_engine`),
each phase the product of the taps landing on it; phases no tap reaches hold the bias.

Non-finite values: every output is the sum of exactly the products the direct
engine forms (the zero padding included), so NaN and inf land where they do
there; no check is needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from convmat._fast.cost import Counts
from convmat._fast.direct import (
    _conv_plan,
    _conv_transpose_plan,
    _key,
    _pack,
    _place,
    _scratch,
    _store,
    _view,
    pad_mode,
)
from convmat._layer import Layer

Array = np.ndarray[Any, Any]

NAME = "depthwise"
#: Bytes of gathered tap columns per batched product (kept in cache with its output).
COLUMN_BYTES = 2**20
#: Bytes of planes and results of the channels run at once (packed, multiplied and
#: stored while in cache).
PLANE_BYTES = 2**20
#: The direct engine's layout plans with channels first and no stacked shifts.
_LAYOUT = (2**62, 2**62, 0)


def why_not(layer: Layer, *, transposed: bool) -> str | None:
    """``None`` for a depthwise layer: one input channel per group."""
    channels = layer.out_channels if transposed else layer.in_channels
    if layer.groups != channels:
        return (
            f"needs one input channel per group (groups == C_in); got groups={layer.groups} "
            f"with {channels} input channels"
        )
    return None


def _channel_band(channels: int, per_channel: int, itemsize: int) -> int:
    """Channels run at once: their planes and results fit ``PLANE_BYTES`` (stay in cache
    from the packing to the store)."""
    return max(1, min(channels, PLANE_BYTES // max(per_channel * itemsize, 1)))


def _bands(channels: int, taps: int, length: int, itemsize: int) -> tuple[int, int]:
    """``(channels, columns)`` of one batched product: the gathered columns fit ``COLUMN_BYTES``."""
    columns = max(1, min(length, COLUMN_BYTES // (taps * itemsize)))
    band = max(1, min(channels, COLUMN_BYTES // (taps * columns * itemsize)))
    return band, columns


def _products(
    planes: Array,
    taps: Sequence[tuple[int, int]],
    weights: Array,
    out: Array,
    length: int,
) -> None:
    """``out[c, :, :length] = weights[c] @ [planes[c, block_t, off_t : off_t + length]]_t``.

    ``planes`` is ``(C, blocks, ·)``, ``taps`` the ``(offset, block)`` of each column
    of ``weights (C, M, T)``, ``out`` ``(C, M, ·)``. Band by band of channels and
    columns: gather the shifted rows into one work buffer, one ``np.matmul``.
    """
    channels, _, n_taps = weights.shape
    band, columns = _bands(channels, n_taps, length, out.itemsize)
    col = _scratch("depthwise_columns", (band, n_taps, columns), out.dtype)
    for c0 in range(0, channels, band):
        c1 = min(c0 + band, channels)
        for start in range(0, length, columns):
            stop = min(start + columns, length)
            work = col[: c1 - c0, :, : stop - start]
            for t, (off, block) in enumerate(taps):
                work[:, t] = planes[c0:c1, block, off + start : off + stop]
            np.matmul(weights[c0:c1], work, out=out[c0:c1, :, start:stop])


def conv(x: Array, w: Array, layer: Layer, bias: Array | None) -> Array:
    """``conv`` of a batch ``x (N, C, *spatial)`` for a validated depthwise layer."""
    reason = why_not(layer, transposed=False)
    if reason is not None:
        raise ValueError(f"layer {reason}")
    n_batch, channels = x.shape[:2]
    c_out = w.shape[0]
    per_out = c_out // channels
    if n_batch == 0:
        return np.empty((0, c_out, *layer.out_spatial), dtype=x.dtype)
    x = pad_mode(x, layer)
    plan = _conv_plan(layer, n_batch, _LAYOUT)
    size = plan.size
    band = _channel_band(channels, plan.blocks * (size + plan.tail) + per_out * size, x.itemsize)
    planes = _scratch("depthwise_planes", (band, plan.blocks, size + plan.tail), x.dtype)
    planes[:, :, size:] = 0
    out = _scratch("depthwise_out", (band, per_out, size), x.dtype)
    source = x.reshape(n_batch, channels, 1, *x.shape[2:]).transpose(1, 2, 0, *range(3, x.ndim + 1))
    weights = w.reshape(channels, per_out, -1)
    taps = [(off, block) for off, block, _ in plan.taps]
    y = np.empty((n_batch, c_out, *layer.out_spatial), dtype=x.dtype)
    window = _key(slice(None), slice(None), *(slice(0, o) for o in layer.out_spatial))
    for c0 in range(0, channels, band):
        c1 = min(c0 + band, channels)
        n_c = c1 - c0
        _pack(planes[:n_c, :, :size], source[c0:c1], plan.split)  # source: (C, 1, N, *spatial)
        _products(planes[:n_c], taps, weights[c0:c1], out[:n_c], plan.length)
        crop = _view(out[:n_c], (n_c * per_out, n_batch, *plan.split.pitch))[window]
        outputs = slice(c0 * per_out, c1 * per_out)
        _store(
            y[:, outputs],
            [crop.transpose(1, 0, *range(2, crop.ndim))],
            None if bias is None else bias[outputs],
        )
    return y


def conv_transpose(y: Array, w: Array, layer: Layer, bias: Array | None) -> Array:
    """``conv_transpose`` of a batch ``y (N, C, *spatial)`` for a validated depthwise layer:
    per output stride phase, the product of the taps landing on it."""
    reason = why_not(layer, transposed=True)
    if reason is not None:
        raise ValueError(f"layer {reason}")
    n_batch, channels = y.shape[:2]
    per_out = w.shape[1]
    c_out = per_out * channels
    if n_batch == 0:
        return np.empty((0, c_out, *layer.in_spatial), dtype=y.dtype)
    plan = _conv_transpose_plan(layer, n_batch, _LAYOUT)
    size, pitch = plan.size, plan.pitch
    band = _channel_band(channels, size + plan.tail + plan.blocks * per_out * size, y.itemsize)
    planes = _scratch("depthwise_planes", (band, 1, size + plan.tail), y.dtype)
    planes[:, :, size:] = 0
    out = _scratch("depthwise_out", (band, plan.blocks * per_out, size), y.dtype)
    source = y.reshape(n_batch, channels, 1, *layer.out_spatial)
    source = source.transpose(1, 2, 0, *range(3, source.ndim))  # (C, 1, N, *spatial)
    dst_index, src_index = plan.place
    matrices = w.reshape(channels, per_out, -1)
    by_block = [[t for t, tap in enumerate(plan.taps) if tap[2] == b] for b in range(plan.blocks)]
    weights = [np.ascontiguousarray(matrices[:, :, chosen]) for chosen in by_block]
    x = np.empty((n_batch, c_out, *layer.in_spatial), dtype=y.dtype)
    b = None if bias is None else bias.reshape(-1, *(1,) * layer.ndim)
    for c0 in range(0, channels, band):
        c1 = min(c0 + band, channels)
        n_c = c1 - c0
        dest = _view(planes[:n_c, :, :size], (n_c, 1, n_batch, *pitch))
        _place(dest, source[_key(slice(c0, c1), ..., *src_index)], dst_index)
        outputs = slice(c0 * per_out, c1 * per_out)
        for block, chosen in enumerate(by_block):
            if chosen:
                _products(
                    planes[:n_c],
                    [(plan.taps[t][0], 0) for t in chosen],
                    weights[block][c0:c1],
                    out[:n_c, block * per_out : (block + 1) * per_out],
                    plan.length,
                )
        for block, (x_index, u_index) in enumerate(plan.phases):
            target = x[_key(slice(None), outputs, *x_index)]
            if target.size == 0:
                continue
            if not by_block[block]:
                target[...] = 0 if b is None else b[outputs]
                continue
            result = _view(
                out[:n_c, block * per_out : (block + 1) * per_out],
                (n_c, per_out, n_batch, *pitch),
            )
            crop = result[_key(slice(None), slice(None), slice(None), *u_index)]
            if plan.blocks == 1:  # one phase: (C·M, N, ...) is one axis, the fast store
                crop = _view(crop, (n_c * per_out, *crop.shape[2:]))
                _store(
                    target,
                    [crop.transpose(1, 0, *range(2, crop.ndim))],
                    None if bias is None else bias[outputs],
                )
                continue
            # (C, M, N, *grid) -> the phase's positions (N, C, M, *grid).
            split = target.reshape(n_batch, n_c, per_out, *target.shape[2:])
            part = crop.transpose(2, 0, 1, *range(3, crop.ndim))
            if b is None:
                np.copyto(split, part)
            else:
                np.add(part, b[outputs].reshape(n_c, per_out, *b.shape[1:]), out=split)
    return x


def counts(layer: Layer, n_batch: int, itemsize: int, *, transposed: bool) -> Counts:
    """The counted work of one call (see :class:`~convmat._fast.cost.Counts`).

    GEMM flops over every position of the planes (junk included), one batched
    product per band; streamed bytes: the padding, the input read and the output
    written — the planes, the gathered columns and the results are written and
    read back within the cache (a band of channels at a time), so they count as
    passes (packing, one per tap and product, the store), not as memory traffic.
    """
    n_taps = math.prod(layer.kernel_size)
    if transposed:
        channels, per_out = layer.out_channels, layer.in_channels // layer.groups
        t_plan = _conv_transpose_plan(layer, n_batch, _LAYOUT)
        length, blocks, size, tail = t_plan.length, t_plan.blocks, t_plan.size, t_plan.tail
        x_items = n_batch * channels * math.prod(layer.out_spatial)
        y_items = n_batch * layer.in_channels * math.prod(layer.in_spatial)
        in_blocks = 1
        pad = 0
    else:
        channels, per_out = layer.in_channels, layer.out_channels // layer.groups
        c_plan = _conv_plan(layer, n_batch, _LAYOUT)
        length, blocks, size, tail = c_plan.length, 1, c_plan.size, c_plan.tail
        x_items = n_batch * channels * math.prod(layer.in_spatial)
        y_items = n_batch * layer.out_channels * math.prod(layer.out_spatial)
        in_blocks = c_plan.blocks
        pad = 0 if layer.padding_mode == "zeros" else 2 * x_items
    per_channel = in_blocks * (size + tail) + blocks * per_out * size
    band = _channel_band(channels, per_channel, itemsize)
    n_bands = -(-channels // band)
    inner, columns = _bands(band, n_taps, length, itemsize)
    products = n_bands * -(-band // inner) * -(-length // columns) * blocks
    return Counts(
        gemm_flops=2.0 * channels * per_out * n_taps * length,
        gemm_calls=products,
        stream_bytes=float(itemsize * (pad + x_items + y_items)),
        passes=products * (1 + n_taps // blocks)
        + n_bands * ((2 * layer.ndim + 1) * in_blocks + blocks),
        work_bytes=itemsize * band * per_channel + COLUMN_BYTES,
    )
