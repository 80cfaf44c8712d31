"""Convolution beyond one machine's memory: the fast functions on ``dask.array``, blockwise.

Needs the extra ``convmat[dask]`` (dask[array], distributed, zarr); ``import convmat``
never imports dask, only ``import convmat.dask`` does.

Every function here takes a ``dask.array.Array`` laid out as the in-memory function's
input (``(N, C, *spatial)`` or ``(C, *spatial)``), chunked over batch and space, and
returns a lazy ``dask.array.Array`` equal to the in-memory function applied to the
whole array (:func:`convmat.conv`, :func:`convmat.conv_transpose`,
:func:`convmat.upsample`, :func:`convmat.avg_pool`, :func:`convmat.max_pool`,
``AffineMap.__call__``). Run it on any scheduler — threads, processes, or a
``dask.distributed`` cluster — and stream it from and to zarr (``da.from_zarr``,
``.to_zarr``).

How a block is computed
-----------------------
The output is cut into regular chunks; each output chunk is one task that reads
exactly the *slab* of input its windows cover — its own input chunk plus the halo
the geometry needs (``dilation·(kernel_size − 1)`` minus what the stride skips,
on the sides the padding puts it), gathered from the neighbouring chunks — and
runs the in-memory function on it. Padding is applied only at the array's true
borders: zero, ``-inf`` (max pooling) and uncounted padding (``avg_pool`` with
``count_include_pad=False``) are passed to the in-memory function of the border
slabs only, and ``reflect``/``replicate``/``circular`` padding of a convolution is
made once, globally, by ``dask.array.pad`` before the blockwise pass. So every
output element is computed by the same algorithm from the same numbers as in
memory: float64 results are equal; float32 results differ only where a BLAS GEMM
sums channels in a different order for a different block size (a few ulps of the
sum of magnitudes, see the docs page "Larger than memory").

Alignment: along a strided axis, an input chunk of ``c`` samples maps to ``c / s``
outputs, so chunk sizes must be multiples of the stride for the output chunks to be
regular (which ``to_zarr`` requires). A chunking that is not is rechunked to the
nearest multiple, with a :class:`RechunkWarning` naming the axis and the multiple.
The channel axis of a convolution must be one chunk (it is rechunked, with the same
warning, if it is not). :func:`apply` runs an :class:`~convmat.AffineMap` — not
spatially local in general — on whole samples: batch chunks only.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import dask.array as da
import numpy as np
import scipy.sparse as sp
from dask._task_spec import List, Task, TaskRef
from dask.base import compute, tokenize
from dask.delayed import delayed
from dask.highlevelgraph import HighLevelGraph
from scipy.sparse.linalg import LinearOperator

from convmat._affine import AffineMap
from convmat._args import as_int, axes_count, choice, numeric_array, split_planes
from convmat._avgpool import _pool_axes
from convmat._avgpool import avg_pool as _avg_pool
from convmat._fast import NP_MODES
from convmat._fast import conv as _conv
from convmat._fast import conv_transpose as _conv_transpose
from convmat._fast.api import _check_bias
from convmat._layer import Layer, conv_layer, conv_transpose_layer
from convmat._matrix import DEFAULT_MAX_BYTES, _operands, _weight, block_csr, check_max_bytes
from convmat._pattern import pattern_nnz, spatial_pattern
from convmat._pool import max_pool as _max_pool
from convmat._pool import pool_geometry
from convmat._upsample import (
    _apply_axis,
    plan_taps,
    resize_plan,
    spatial_rank,
)

Array = np.ndarray[Any, Any]

__all__ = [
    "MatrixBlocks",
    "RechunkWarning",
    "apply",
    "avg_pool",
    "conv",
    "conv_matrix_blocks",
    "conv_transpose",
    "max_pool",
    "open_matrix_blocks",
    "upsample",
]


class RechunkWarning(UserWarning):
    """A dask input was rechunked to fit the blockwise computation (the message says how)."""


# --------------------------------------------------------------------------- the engine


class Slab(NamedTuple):
    """One output chunk along one axis: outputs ``[o0, o1)`` read input ``[a, b)``.

    ``extra`` is what the block function needs beyond the slab (a crop, local taps).
    """

    o0: int
    o1: int
    a: int
    b: int
    extra: Any = None


def _dask_array(x: Any) -> da.Array:
    if not isinstance(x, da.Array):
        raise TypeError(
            f"x must be a dask.array.Array (use convmat's in-memory functions for NumPy "
            f"arrays, or dask.array.from_array); got {type(x).__name__}"
        )
    kind = x.dtype.kind
    if kind not in "biufc":
        raise TypeError(f"x must be a real or complex numeric array; got dtype {x.dtype}")
    return x


def _compute_dtype(*dtypes: Any) -> np.dtype[Any]:
    """The dtype of an in-memory result from these argument dtypes (ints become float64)."""
    arrays = [numeric_array(np.zeros(0, d), "x") for d in dtypes]
    result = np.result_type(*arrays)
    if all(np.dtype(d) == np.float16 for d in dtypes):
        return np.dtype(np.float16)
    return result


def _regular(chunks: tuple[int, ...]) -> bool:
    """Whether the chunks are equal but for a smaller last one (what ``to_zarr`` accepts)."""
    return len(chunks) == 1 or (
        len(set(chunks[:-1])) == 1 and chunks[-1] <= chunks[0] and chunks[0] > 0
    )


def _align(x: da.Array, axes_multiples: dict[int, int], what: str) -> da.Array:
    """Rechunk each axis of ``axes_multiples`` to regular chunks, a multiple of its value.

    Warns (:class:`RechunkWarning`) naming the axis and the multiple when it rechunks.
    """
    new: dict[int, int] = {}
    for axis, multiple in axes_multiples.items():
        chunks = x.chunks[axis]
        if multiple == 1 or len(chunks) == 1:
            continue
        if _regular(chunks) and chunks[0] % multiple == 0:
            continue
        size = max(multiple, round(chunks[0] / multiple) * multiple)
        new[axis] = size
        warnings.warn(
            f"x chunks on axis {axis} must be a multiple of {multiple} ({what}) for regular, "
            f"aligned output chunks; got {chunks[:3]}{'...' if len(chunks) > 3 else ''}; "
            f"rechunked to {size}",
            RechunkWarning,
            stacklevel=3,
        )
    return x.rechunk(new) if new else x  # type: ignore[no-untyped-call]


def _one_chunk(x: da.Array, axis: int, what: str) -> da.Array:
    if len(x.chunks[axis]) == 1:
        return x
    warnings.warn(
        f"x must have its {what} (axis {axis}) in one chunk; got chunks "
        f"{x.chunks[axis]}; rechunked to one chunk of {x.shape[axis]}",
        RechunkWarning,
        stacklevel=3,
    )
    return x.rechunk({axis: -1})  # type: ignore[no-untyped-call,no-any-return]


def _starts(chunks: tuple[int, ...]) -> Array:
    return np.concatenate([[0], np.cumsum(chunks)]).astype(np.int64)


def _output_bounds(out: int, size: int) -> list[tuple[int, int]]:
    size = max(1, size)
    return [(o, min(o + size, out)) for o in range(0, out, size)]


def _pieces(bounds: Array, a: int, b: int) -> list[tuple[int, slice]]:
    """The input chunks (index, local slice) that cover ``[a, b)``."""
    first = int(np.searchsorted(bounds, a, side="right")) - 1
    out = []
    j = first
    while j < len(bounds) - 1 and bounds[j] < b:
        lo, hi = max(a, int(bounds[j])), min(b, int(bounds[j + 1]))
        if hi > lo:
            out.append((j, slice(lo - int(bounds[j]), hi - int(bounds[j]))))
        j += 1
    return out


def _assemble(parts: list[Any], grid: tuple[int, ...], slices: list[tuple[slice, ...]]) -> Array:
    """The slab from its pieces: ``parts`` flat in C order over ``grid``, each sliced."""
    cut = [p[s] for p, s in zip(parts, slices, strict=True)]
    if len(cut) == 1:
        return np.asarray(cut[0])
    nested: Any = np.empty(grid, dtype=object)
    for i, c in enumerate(cut):
        nested.flat[i] = c
    return np.block(nested.tolist())


def _run(
    fn: Callable[[Array, tuple[Slab, ...]], Array],
    parts: list[Any],
    grid: tuple[int, ...],
    slices: list[tuple[slice, ...]],
    slabs: tuple[Slab, ...],
) -> Array:
    return fn(_assemble(parts, grid, slices), slabs)


def _blockwise(
    x: da.Array,
    n_lead: int,
    lead_chunks: tuple[tuple[int, ...], ...],
    plans: list[list[Slab]],
    fn: Callable[[Array, tuple[Slab, ...]], Array],
    dtype: np.dtype[Any],
    name: str,
    token: Any,
) -> da.Array:
    """One task per output chunk: the slab of every axis gathered from ``x``'s chunks, then
    ``fn(slab, slabs)``.

    ``x`` is ``(*lead, *spatial)``; lead axes are carried chunk for chunk (their output
    chunks are ``lead_chunks``, one output chunk per input chunk). ``plans[i]`` lists the
    output chunks of spatial axis ``i``; an empty slab (``a == b``) gives ``fn`` an
    empty array along that axis.
    """
    out_name = f"{name}-{tokenize(x, token)}"
    bounds = [_starts(c) for c in x.chunks[n_lead:]]
    lead_ranges = [range(len(c)) for c in x.chunks[:n_lead]]
    dsk: dict[Any, Any] = {}
    for lead in np.ndindex(*(len(r) for r in lead_ranges)):
        for idx in np.ndindex(*(len(p) for p in plans)):
            slabs = tuple(plan[i] for plan, i in zip(plans, idx, strict=True))
            per_axis = [
                _pieces(bd, s.a, s.b) if s.b > s.a else [(0, slice(0, 0))]
                for bd, s in zip(bounds, slabs, strict=True)
            ]
            grid = tuple(len(p) for p in per_axis)
            refs, slices = [], []
            for combo in np.ndindex(*grid):
                chosen = [per_axis[ax][c] for ax, c in enumerate(combo)]
                refs.append(TaskRef((x.name, *lead, *(j for j, _ in chosen))))
                slices.append(
                    (*(slice(None),) * n_lead, *(s for _, s in chosen)),
                )
            key = (out_name, *lead, *idx)
            dsk[key] = Task(key, _run, fn, List(*refs), grid, slices, slabs)
    graph = HighLevelGraph.from_collections(out_name, dsk, dependencies=[x])  # type: ignore[list-item]
    chunks = (*lead_chunks, *(tuple(s.o1 - s.o0 for s in plan) for plan in plans))
    return da.Array(graph, out_name, chunks=chunks, dtype=dtype)  # type: ignore[no-untyped-call]


def _batched(x: da.Array, rank: int) -> tuple[da.Array, bool]:
    """``(N, C, *spatial)`` from either layout (an unbatched ``x`` gets a batch axis)."""
    if x.ndim == rank + 1:
        return x[None], False
    return x, True


# --------------------------------------------------------------------------- plans per axis


def _window_plan(n: int, out: int, k: int, s: int, d: int, lo: int, chunk: int) -> list[Slab]:
    """Output chunks of a windowed op (output ``o`` reads ``o·s + t·d − lo``), exact padding.

    For functions that take ``(low, high)`` padding pairs: ``extra`` is the pair the
    slab needs — the true padding where it touches the array's border, else none —
    so the in-memory function returns exactly the chunk's outputs.
    """
    reach = d * (k - 1) + 1
    plan = []
    for o0, o1 in _output_bounds(out, chunk // s):
        first, end = o0 * s - lo, (o1 - 1) * s - lo + reach
        a, b = min(max(first, 0), n), max(min(end, n), 0)
        b = max(a, b)  # a window entirely in the padding reads nothing
        plan.append(Slab(o0, o1, a, b, (a - first, end - b)))
    return plan


def _pool_plan(n: int, out: int, k: int, s: int, d: int, p: int, chunk: int) -> list[Slab]:
    """Output chunks of a pooling with symmetric padding ``p`` (the function pads both sides).

    The slab starts at a multiple of the stride, so the function's windows on it are
    the global windows shifted by ``a / s``; ``extra`` is the crop of its output.
    """
    reach = d * (k - 1) + 1
    plan = []
    for o0, o1 in _output_bounds(out, chunk // s):
        first, end = o0 * s - p, (o1 - 1) * s - p + reach
        a = 0 if first <= 0 else (first // s) * s
        b = n if end >= n else end
        shift = a // s
        plan.append(Slab(o0, o1, a, b, (o0 - shift, o1 - shift)))
    return plan


def _transpose_plan(m: int, n_out: int, k: int, s: int, d: int, lo: int, chunk: int) -> list[Slab]:
    """Output chunks of a transposed convolution (input length ``m``, output ``n_out``).

    Output ``i`` receives input ``o`` through tap ``t`` when ``o·s + t·d = i + lo``; the
    slab is every input that reaches the chunk. ``extra`` is the chunk's start in the
    unpadded, uncropped transposed output of the slab.
    """
    span = d * (k - 1)
    plan = []
    for i0, i1 in _output_bounds(n_out, chunk * s):
        a = max(0, -((span - i0 - lo) // s))  # ceil((i0 + lo − span) / s)
        b = min(m, (i1 + lo - 1) // s + 1)
        b = max(a, b)
        plan.append(Slab(i0, i1, a, b, i0 + lo - a * s))
    return plan


# --------------------------------------------------------------------------- conv


def _bias(bias: Any, channels: int) -> Array | None:
    """The bias as an array, its shape checked as the in-memory functions check it."""
    b = None if bias is None else numeric_array(bias, "bias")
    _check_bias(b, channels)
    return b


def _conv_input(x: Any, w: Array) -> tuple[da.Array, bool]:
    x = _dask_array(x)
    rank = w.ndim - 2
    if x.ndim not in (rank + 1, rank + 2):
        raise ValueError(
            f"x must have shape (N, C_in, *spatial) or (C_in, *spatial) with {rank} spatial "
            f"dims to match the weight; got shape {x.shape}"
        )
    return _batched(x, rank)


def conv(
    x: Any,
    weight: Any,
    bias: Any = None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    padding_mode: str = "zeros",
    method: str = "auto",
) -> da.Array:
    """:func:`convmat.conv` on a dask array, blockwise: equal to it on the whole array.

    Parameters
    ----------
    x : dask.array.Array, shape ``(N, C_in, *spatial)`` or ``(C_in, *spatial)``
        Chunked over batch and space; the channels in one chunk (rechunked, with a
        :class:`RechunkWarning`, if not). Spatial chunk sizes should be multiples of
        the stride (rechunked, with a warning, if not).
    weight, bias, stride, padding, dilation, groups, padding_mode, method
        As :func:`convmat.conv` (NumPy arrays for the weight and bias). With
        ``method="auto"`` every block plans its own algorithm for its own size.

    Returns
    -------
    dask.array.Array, shape ``(N, C_out, *out)`` (or ``(C_out, *out)``)
        Lazy. Output chunks: the batch chunks of ``x``, the channels in one chunk, and
        ``c / stride`` outputs per spatial chunk of ``c`` inputs.

    Raises
    ------
    ValueError, TypeError
        The messages of :func:`convmat.conv`, checked before any graph is built;
        ``TypeError`` for an ``x`` that is not a dask array.

    See Also
    --------
    convmat.conv : the in-memory function, run on every block.

    Notes
    -----
    Output chunk ``[o0, o1)`` of an axis reads the input ``[o0·s − lo, (o1−1)·s − lo +
    d·(k−1) + 1)``, clipped to the array; the clipped part is the padding the in-memory
    function adds on that block (zeros), so only the array's true borders are padded.
    ``reflect``, ``replicate`` and ``circular`` padding is applied once to the whole
    array (``dask.array.pad``) before the blockwise pass.

    Examples
    --------
    >>> import numpy as np, dask.array as da, convmat
    >>> x = np.arange(64.0).reshape(1, 1, 8, 8)
    >>> w = np.ones((1, 1, 3, 3))
    >>> y = conv(da.from_array(x, chunks=(1, 1, 4, 4)), w, padding=1)
    >>> y.chunks[2:]
    ((4, 4), (4, 4))
    >>> np.array_equal(y.compute(), convmat.conv(x, w, padding=1))
    True
    """
    w = _weight(weight)
    xb, batched = _conv_input(x, w)
    layer = conv_layer(
        xb.shape[1:],
        w.shape,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
        input_name="x",
    )
    from convmat._fast import CONV_METHODS

    choice(method, CONV_METHODS, "method")
    b = _bias(bias, layer.out_channels)
    dtype = _compute_dtype(xb.dtype, w.dtype, *(() if b is None else (b.dtype,)))
    xb = _one_chunk(xb, 1, "channels")
    xb = _align(xb, {2 + i: s for i, s in enumerate(layer.stride)}, "the stride")
    pads = layer.padding
    in_spatial = layer.in_spatial
    if layer.padding_mode != "zeros":
        width = ((0, 0), (0, 0), *pads)
        xb = da.pad(xb, width, mode=NP_MODES[layer.padding_mode])
        in_spatial = tuple(n + lo + hi for n, (lo, hi) in zip(in_spatial, pads, strict=True))
        pads = tuple((0, 0) for _ in pads)
    plans = [
        _window_plan(n, o, k, s, d, lo, _first_chunk(c, s))
        for n, o, k, s, d, (lo, _), c in zip(
            in_spatial,
            layer.out_spatial,
            layer.kernel_size,
            layer.stride,
            layer.dilation,
            pads,
            xb.chunks[2:],
            strict=True,
        )
    ]
    geometry: dict[str, Any] = {
        "stride": layer.stride,
        "dilation": layer.dilation,
        "groups": layer.groups,
    }

    def block(slab: Array, slabs: tuple[Slab, ...]) -> Array:
        if min(slab.shape[2:]) == 0:  # every window of the block lies in the zero padding
            return _bias_block(slab.shape[0], layer.out_channels, slabs, b, dtype)
        return _conv(slab, w, b, padding=[s.extra for s in slabs], method=method, **geometry)

    lead = (xb.chunks[0], (layer.out_channels,))
    token = (w, b, layer, method, "conv")
    y = _blockwise(xb, 2, lead, plans, block, dtype, "convmat-conv", token)
    return y if batched else y[0]


def _bias_block(
    batch: int, channels: int, slabs: tuple[Slab, ...], b: Array | None, dtype: np.dtype[Any]
) -> Array:
    """A block that no input reaches: the bias everywhere (zeros without one)."""
    out = np.zeros((batch, channels, *(s.o1 - s.o0 for s in slabs)), dtype)
    if b is not None:
        out += b.reshape(-1, *(1,) * len(slabs)).astype(dtype)
    return out


def _first_chunk(chunks: tuple[int, ...], multiple: int) -> int:
    """The regular chunk size of an axis (its first chunk), at least ``multiple``."""
    return max(chunks[0], multiple)


def conv_transpose(
    x: Any,
    weight: Any,
    bias: Any = None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    method: str = "auto",
) -> da.Array:
    """:func:`convmat.conv_transpose` on a dask array, blockwise: equal to it on the whole array.

    Parameters
    ----------
    x : dask.array.Array, shape ``(N, C_in, *spatial)`` or ``(C_in, *spatial)``
        Chunked over batch and space; the channels in one chunk (rechunked, with a
        :class:`RechunkWarning`, if not). Any spatial chunking.
    weight, bias, stride, padding, output_padding, dilation, groups, method
        As :func:`convmat.conv_transpose`.

    Returns
    -------
    dask.array.Array, shape ``(N, C_out, *out)`` (or ``(C_out, *out)``)
        Lazy; ``c·stride`` outputs per spatial chunk of ``c`` inputs.

    Raises
    ------
    ValueError, TypeError
        The messages of :func:`convmat.conv_transpose`, before any graph is built.

    Notes
    -----
    Output ``i`` receives input ``o`` through tap ``t`` when ``o·s + t·d = i + lo``.
    Output chunk ``[i0, i1)`` reads every input that reaches it, a halo of
    ``⌈d·(k−1)/s⌉`` inputs before its own; the block is the unpadded transposed
    convolution of that slab, cropped to the chunk (positions no input reaches hold
    the bias, as in memory).

    Examples
    --------
    >>> import numpy as np, dask.array as da, convmat
    >>> y = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> w = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> x = conv_transpose(da.from_array(y, chunks=(1, 1, 2, 2)), w, stride=2, padding=1)
    >>> np.array_equal(x.compute(), convmat.conv_transpose(y, w, stride=2, padding=1))
    True
    """
    w = _weight(weight)
    xb, batched = _conv_input(x, w)
    layer = conv_transpose_layer(
        xb.shape[1:],
        w.shape,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
        input_name="x",
    )
    from convmat._fast import METHODS

    choice(method, METHODS, "method")
    b = _bias(bias, layer.in_channels)
    dtype = _compute_dtype(xb.dtype, w.dtype, *(() if b is None else (b.dtype,)))
    xb = _one_chunk(xb, 1, "channels")
    plans = [
        _transpose_plan(m, n, k, s, d, lo, c[0])
        for m, n, k, s, d, (lo, _), c in zip(
            layer.out_spatial,
            layer.in_spatial,
            layer.kernel_size,
            layer.stride,
            layer.dilation,
            layer.padding,
            xb.chunks[2:],
            strict=True,
        )
    ]
    c_out = layer.in_channels
    geometry: dict[str, Any] = {
        "stride": layer.stride,
        "dilation": layer.dilation,
        "groups": layer.groups,
    }

    def block(slab: Array, slabs: tuple[Slab, ...]) -> Array:
        out = _bias_block(slab.shape[0], c_out, slabs, b, dtype)
        if min(slab.shape[2:]) == 0 or slab.shape[0] == 0:
            return out
        full = _conv_transpose(slab, w, b, method=method, **geometry)
        src, dst = [], []
        for s, length in zip(slabs, full.shape[2:], strict=True):
            # The chunk is [extra, extra + size) of the slab's output; outside [0, length)
            # no input reaches (a 1-tap kernel's gaps, output_padding): the bias stays.
            start, stop = max(s.extra, 0), max(min(s.extra + s.o1 - s.o0, length), 0)
            stop = max(start, stop)
            src.append(slice(start, stop))
            dst.append(slice(start - s.extra, stop - s.extra))
        into = (slice(None), slice(None), *dst)
        take = (slice(None), slice(None), *src)
        out[into] = full[take]
        return out

    lead = (xb.chunks[0], (c_out,))
    token = (w, b, layer, method, "conv_transpose")
    y = _blockwise(xb, 2, lead, plans, block, dtype, "convmat-conv-transpose", token)
    return y if batched else y[0]


# --------------------------------------------------------------------------- pools


def _planes(x: Any, rank: int | None, what: str) -> tuple[da.Array, int, int]:
    """The dask input, its spatial rank and its number of lead axes (batch, channel)."""
    x = _dask_array(x)
    rank_, lead = split_planes(x, rank, what)
    return x, rank_, len(lead)


def max_pool(
    x: Any,
    kernel_size: Any,
    *,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """:func:`convmat.max_pool` on a dask array, blockwise: equal to it on the whole array.

    Parameters
    ----------
    x : dask.array.Array, shape ``(N, C, *spatial)`` or ``(C, *spatial)``
        Any chunking of batch and channels; spatial chunk sizes multiples of the
        stride (rechunked, with a :class:`RechunkWarning`, if not).
    kernel_size, stride, padding, dilation, ceil_mode, return_indices
        As :func:`convmat.max_pool`.

    Returns
    -------
    dask.array.Array, or a pair of them with ``return_indices``
        The indices are flat positions within each whole channel plane, as in memory.

    Raises
    ------
    ValueError, TypeError
        The messages of :func:`convmat.max_pool`, before any graph is built.

    Examples
    --------
    >>> import numpy as np, dask.array as da, convmat
    >>> x = np.arange(36.0).reshape(1, 1, 6, 6)
    >>> y = max_pool(da.from_array(x, chunks=(1, 1, 2, 2)), 3, stride=2, padding=1)
    >>> np.array_equal(y.compute(), convmat.max_pool(x, 3, stride=2, padding=1))
    True
    """
    x, _, n_lead = _planes(x, axes_count(kernel_size, stride, padding, dilation), "kernel_size")
    spatial = x.shape[n_lead:]
    geo = pool_geometry(
        spatial, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode
    )
    if not isinstance(return_indices, (bool, np.bool_)):
        raise TypeError(f"return_indices must be a bool; got {return_indices!r}")
    if x.dtype.kind == "c":
        raise TypeError(f"x must be a real array (max needs an order); got dtype {x.dtype}")
    dtype = _compute_dtype(x.dtype)
    x = _align(x, {n_lead + i: s for i, s in enumerate(geo.stride)}, "the stride")
    plans = [
        _pool_plan(n, o, k, s, d, p, _first_chunk(c, s))
        for n, o, k, s, d, p, c in zip(
            spatial,
            geo.out,
            geo.kernel_size,
            geo.stride,
            geo.dilation,
            geo.padding,
            x.chunks[n_lead:],
            strict=True,
        )
    ]
    args: dict[str, Any] = {
        "kernel_size": geo.kernel_size,
        "stride": geo.stride,
        "padding": geo.padding,
        "dilation": geo.dilation,
        "ceil_mode": bool(ceil_mode),
    }

    def crop(slabs: tuple[Slab, ...]) -> tuple[slice, ...]:
        return (*(slice(None),) * n_lead, *(slice(*s.extra) for s in slabs))

    def block(slab: Array, slabs: tuple[Slab, ...]) -> Array:
        return np.asarray(_max_pool(slab, **args))[crop(slabs)]

    def indices(slab: Array, slabs: tuple[Slab, ...]) -> Array:
        _, local = _max_pool(slab, return_indices=True, **args)
        local = local[crop(slabs)]
        coords = np.unravel_index(local, slab.shape[n_lead:])
        shifted = [c + s.a for c, s in zip(coords, slabs, strict=True)]
        return np.ravel_multi_index(shifted, spatial, mode="clip").astype(np.int64)  # type: ignore[no-any-return]

    lead = x.chunks[:n_lead]
    token = (args, "max_pool")
    y = _blockwise(x, n_lead, lead, plans, block, dtype, "convmat-max-pool", token)
    if not return_indices:
        return y
    i = _blockwise(x, n_lead, lead, plans, indices, np.dtype(np.int64), "convmat-argmax", token)
    return y, i


def avg_pool(
    x: Any,
    kernel_size: Any,
    *,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> da.Array:
    """:func:`convmat.avg_pool` on a dask array, blockwise: equal to it on the whole array.

    Parameters
    ----------
    x : dask.array.Array, shape ``(N, C, *spatial)`` or ``(C, *spatial)``
        Any chunking of batch and channels; spatial chunk sizes multiples of the
        stride (rechunked, with a :class:`RechunkWarning`, if not).
    kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        As :func:`convmat.avg_pool`.

    Returns
    -------
    dask.array.Array

    Raises
    ------
    ValueError, TypeError
        The messages of :func:`convmat.avg_pool`, before any graph is built.

    Examples
    --------
    >>> import numpy as np, dask.array as da, convmat
    >>> x = np.arange(36.0).reshape(1, 1, 6, 6)
    >>> y = avg_pool(da.from_array(x, chunks=(1, 1, 2, 4)), 3, stride=2, padding=1)
    >>> np.array_equal(y.compute(), convmat.avg_pool(x, 3, stride=2, padding=1))
    True
    """
    x, _, n_lead = _planes(x, axes_count(kernel_size, stride, padding), "kernel_size")
    spatial = x.shape[n_lead:]
    _pool_axes(
        spatial, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )
    geo = pool_geometry(
        spatial, kernel_size, stride=stride, padding=padding, dilation=1, ceil_mode=ceil_mode
    )
    dtype = _compute_dtype(x.dtype)
    x = _align(x, {n_lead + i: s for i, s in enumerate(geo.stride)}, "the stride")
    plans = [
        _pool_plan(n, o, k, s, 1, p, _first_chunk(c, s))
        for n, o, k, s, p, c in zip(
            spatial,
            geo.out,
            geo.kernel_size,
            geo.stride,
            geo.padding,
            x.chunks[n_lead:],
            strict=True,
        )
    ]
    args: dict[str, Any] = {
        "kernel_size": geo.kernel_size,
        "stride": geo.stride,
        "padding": geo.padding,
        "ceil_mode": bool(ceil_mode),
        "count_include_pad": bool(count_include_pad),
        "divisor_override": divisor_override,
    }

    def block(slab: Array, slabs: tuple[Slab, ...]) -> Array:
        crop = (*(slice(None),) * n_lead, *(slice(*s.extra) for s in slabs))
        return _avg_pool(slab, **args)[crop]

    token = (args, "avg_pool")
    return _blockwise(x, n_lead, x.chunks[:n_lead], plans, block, dtype, "convmat-avg-pool", token)


# --------------------------------------------------------------------------- upsample


def upsample(
    x: Any,
    *,
    size: Any = None,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    antialias: bool = False,
) -> da.Array:
    """:func:`convmat.upsample` on a dask array, blockwise: equal to it on the whole array.

    Parameters
    ----------
    x : dask.array.Array, shape ``(N, C, *spatial)`` or ``(C, *spatial)``
        Any chunking.
    size, scale_factor, mode, align_corners, antialias
        As :func:`convmat.upsample`, except ``mode="area"`` (an adaptive average
        pooling, :func:`convmat.adaptive_avg_pool`), which is refused.

    Returns
    -------
    dask.array.Array
        About ``c·scale`` outputs per spatial chunk of ``c`` inputs.

    Raises
    ------
    ValueError, TypeError
        The messages of :func:`convmat.upsample`, and ``mode="area"``.

    Notes
    -----
    The per-axis taps (source indices and weights) are computed once for the whole
    axis, as in memory; each block gathers its rows of them from its slab, one pass
    per axis, the last axis first. In memory, an interpolating pass over an axis of at
    most 256 samples is a dense GEMM instead: there the results agree to rounding (equal
    whenever the weights are dyadic, e.g. a scale factor of 2).

    Examples
    --------
    >>> import numpy as np, dask.array as da, convmat
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> y = upsample(da.from_array(x, chunks=(1, 1, 2, 2)), scale_factor=2, mode="bilinear")
    >>> np.array_equal(y.compute(), convmat.upsample(x, scale_factor=2, mode="bilinear"))
    True
    """
    x = _dask_array(x)
    _, lead_shape = split_planes(x, spatial_rank(mode, size, scale_factor), f"mode={mode!r}")
    n_lead = len(lead_shape)
    plan = resize_plan(
        x.shape[n_lead:],
        size=size,
        scale_factor=scale_factor,
        mode=mode,
        align_corners=align_corners,
        antialias=antialias,
    )
    if plan.mode == "area":
        raise ValueError(
            "mode must not be 'area' for convmat.dask.upsample (an adaptive average pooling, "
            "not blockwise); got 'area'"
        )
    dtype = _compute_dtype(x.dtype)
    ftype = np.float32 if np.dtype(dtype).kind == "f" and dtype.itemsize <= 4 else np.float64
    if np.dtype(dtype).kind == "c":
        ftype = np.float32 if dtype == np.complex64 else np.float64
    taps = plan_taps(plan, ftype)
    plans = []
    for (idx, w), n, m, c in zip(
        taps, plan.in_spatial, plan.out_spatial, x.chunks[n_lead:], strict=True
    ):
        if plan.mode == "bed_of_nails":
            f = m // n
            plans.append(
                [
                    Slab(o0, o1, o0 // f, o1 // f, (None, None))
                    for o0, o1 in _output_bounds(m, c[0] * f)
                ]
            )
            continue
        axis_plan = []
        for o0, o1 in _output_bounds(m, max(1, round(c[0] * m / n))):
            rows = idx[o0:o1]
            valid = rows >= 0
            a, b = (int(rows[valid].min()), int(rows[valid].max()) + 1) if valid.any() else (0, 1)
            local = np.where(valid, rows - a, -1)
            axis_plan.append(Slab(o0, o1, a, b, (local, w[o0:o1])))
        plans.append(axis_plan)
    mode_ = plan.mode

    def block(slab: Array, slabs: tuple[Slab, ...]) -> Array:
        data = slab.astype(dtype, copy=False)
        for axis in range(len(slabs) - 1, -1, -1):  # the last spatial axis first, as in memory
            s = slabs[axis]
            shape = list(data.shape)
            shape[n_lead + axis] = s.o1 - s.o0
            target = np.empty(shape, dtype)
            with np.errstate(invalid="ignore", over="ignore"):
                _apply_axis(data, s.extra, n_lead + axis, target, mode_)
            data = target
        return data

    token = (plan, "upsample")
    return _blockwise(x, n_lead, x.chunks[:n_lead], plans, block, dtype, "convmat-upsample", token)


# --------------------------------------------------------------------------- affine maps


def apply(map: AffineMap, x: Any) -> da.Array:
    """An :class:`~convmat.AffineMap` (e.g. from :func:`convmat.from_torch`) on a dask batch.

    A model is not spatially local in general (a linear layer reads every pixel), so
    the map runs on whole samples: one call of ``map(block)`` per batch chunk.

    Parameters
    ----------
    map : AffineMap
    x : dask.array.Array, shape ``(N, *map.input_shape)``
        Chunked over the batch only.

    Returns
    -------
    dask.array.Array, shape ``(N, *map.output_shape)``

    Raises
    ------
    TypeError
        For a ``map`` that is not an AffineMap, or an ``x`` that is not a dask array.
    ValueError
        For an ``x`` of the wrong shape, or chunked along any axis but the batch.

    Examples
    --------
    >>> import numpy as np, dask.array as da, torch, convmat
    >>> model = torch.nn.Sequential(
    ...     torch.nn.Conv1d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(12, 3)
    ... )
    >>> A = convmat.from_torch(model.double(), (1, 8))
    >>> x = np.random.default_rng(0).standard_normal((10, 1, 8))
    >>> y = apply(A, da.from_array(x, chunks=(4, 1, 8)))
    >>> y.chunks
    ((4, 4, 2), (3,))
    >>> np.allclose(y.compute(), A(x))
    True
    """
    if not isinstance(map, AffineMap):
        raise TypeError(f"map must be a convmat.AffineMap; got {type(map).__name__}")
    x = _dask_array(x)
    shape = tuple(map.input_shape)
    if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape:
        raise ValueError(
            f"x must have shape (N, *map.input_shape) = (N, {', '.join(str(v) for v in shape)}); "
            f"got shape {x.shape}"
        )
    for axis in range(1, x.ndim):
        if len(x.chunks[axis]) > 1:
            raise ValueError(
                f"x must be chunked along the batch axis only (an AffineMap is not spatially "
                f"local); got {len(x.chunks[axis])} chunks on axis {axis}; rechunk with "
                f"x.rechunk({{{axis}: -1}})"
            )
    dtype = _compute_dtype(x.dtype, map.dtype)
    out_shape = tuple(map.output_shape)
    size_in, size_out = math.prod(shape), math.prod(out_shape)
    flat = x.reshape(x.shape[0], size_in)

    def block(batch: Array) -> Array:
        y = np.asarray(map(batch.reshape(-1, *shape)), dtype=dtype)
        return y.reshape(len(batch), size_out)

    y = flat.map_blocks(block, dtype=dtype, chunks=(flat.chunks[0], (size_out,)))
    result: da.Array = y.reshape(x.shape[0], *out_shape)
    return result


# --------------------------------------------------------------------------- matrices in blocks


def _band(layer: Layer, kernels: Array, r0: int, r1: int, max_bytes: Any) -> sp.csr_array:
    """Rows ``[r0, r1)`` of C, built from the pattern of those rows only.

    Rows are (output channel, output position) in C order. Along the first spatial
    axis, output rows ``[o0, o1)`` are the pattern of the same layer with ``o1 − o0``
    output rows and its low padding moved by ``o0·stride`` (output ``o' + o0`` reads
    ``(o' + o0)·s + t·d − lo``): :func:`~convmat._pattern.spatial_pattern` of that
    sub-layer, filled by :func:`~convmat._matrix.block_csr`, is exactly C's band.
    """
    n_out, n_in = math.prod(layer.out_spatial), math.prod(layer.in_spatial)
    inner = math.prod(layer.out_spatial[1:])
    per_out = layer.out_channels // layer.groups
    per_group = layer.in_channels // layer.groups
    n_cols = layer.in_channels * n_in
    s0, (lo0, hi0) = layer.stride[0], layer.padding[0]
    # The band in runs of row channels sharing one range of plane rows: a partial first
    # channel, whole channels, a partial last channel.
    runs: list[tuple[int, int, int, int]] = []
    a = r0 // n_out
    while a * n_out < r1:
        p0, p1 = max(r0 - a * n_out, 0), min(r1 - a * n_out, n_out)
        if p0 == 0 and p1 == n_out:
            last = min(r1 // n_out, layer.out_channels)
            runs.append((a, last, 0, n_out))
            a = last
        else:
            runs.append((a, a + 1, p0, p1))
            a += 1
    parts = []
    index = np.int64 if max(n_cols, r1 - r0) > 2**31 - 1 else np.int32
    for c0, c1, p0, p1 in runs:
        o0, o1 = p0 // inner, -(-p1 // inner)
        sub = replace(
            layer,
            out_spatial=(o1 - o0, *layer.out_spatial[1:]),
            padding=((lo0 - o0 * s0, hi0), *layer.padding[1:]),
        )
        pattern = spatial_pattern(sub)
        m = block_csr(pattern, kernels[c0:c1], 1, max_bytes, "conv matrix block")
        rows = (o1 - o0) * inner
        group_shift = (np.arange(c0, c1) // per_out) * (per_group * n_in)
        indices = m.indices.astype(index).reshape(c1 - c0, -1) + group_shift[:, None].astype(index)
        m = sp.csr_array(
            (m.data, indices.reshape(-1), m.indptr.astype(index)), shape=(m.shape[0], n_cols)
        )
        if (p0, p1) != (o0 * inner, o0 * inner + rows):
            m = m[p0 - o0 * inner : p1 - o0 * inner]
        parts.append(m)
    band = parts[0] if len(parts) == 1 else sp.vstack(parts, format="csr")
    return sp.csr_array(band)


def _save_block(block: sp.csr_array, path: str, i: int, fmt: str) -> str:
    if fmt == "npz":
        name = os.path.join(path, f"block_{i:06d}.npz")
        sp.save_npz(name, block, compressed=False)
        return name
    import zarr

    name = os.path.join(path, "blocks.zarr")
    group = zarr.open_group(name, mode="a")
    sub = group.create_group(f"block_{i:06d}", overwrite=True)
    for field in ("data", "indices", "indptr"):
        values = getattr(block, field)
        arr = sub.create_array(field, shape=values.shape, dtype=values.dtype, overwrite=True)
        arr[...] = values
    sub.attrs["shape"] = list(block.shape)
    return f"{name}/block_{i:06d}"


def _build_block(
    layer: Layer,
    kernels: Array,
    r0: int,
    r1: int,
    max_bytes: Any,
    path: str | None,
    i: int,
    fmt: str,
) -> Any:
    block = _band(layer, kernels, r0, r1, max_bytes)
    if path is None:
        return block
    return _save_block(block, path, i, fmt)


def _load_block(ref: str, fmt: str) -> sp.csr_array:
    if fmt == "npz":
        return sp.csr_array(sp.load_npz(ref))
    import zarr

    group = zarr.open_group(ref, mode="r")
    shape = tuple(int(v) for v in group.attrs["shape"])  # type: ignore[union-attr,arg-type]
    data, indices, indptr = (np.asarray(group[f]) for f in ("data", "indices", "indptr"))
    return sp.csr_array((data, indices, indptr), shape=shape)


@dataclass(frozen=True)
class MatrixBlocks:
    """A sparse matrix kept as row blocks, in memory or as shards on disk.

    Made by :func:`conv_matrix_blocks` (and :func:`open_matrix_blocks` for shards
    written earlier). Block ``i`` holds rows ``bounds[i] … bounds[i+1]``.

    Attributes
    ----------
    shape : tuple of int, the whole matrix's shape
    dtype : numpy.dtype
    bounds : tuple of int, the first row of every block and the row count
    blocks : tuple of csr_array, or None when the blocks are shards on disk
    files : tuple of str, or None: the shards (``.npz`` files, or zarr groups)
    format : ``"npz"`` or ``"zarr"``, or None in memory
    """

    shape: tuple[int, int]
    dtype: np.dtype[Any]
    bounds: tuple[int, ...]
    blocks: tuple[sp.csr_array, ...] | None = None
    files: tuple[str, ...] | None = None
    format: str | None = None

    def __len__(self) -> int:
        return len(self.bounds) - 1

    def block(self, i: int) -> sp.csr_array:
        """Row block ``i`` as a ``csr_array`` (read from its shard when on disk)."""
        if self.blocks is not None:
            return self.blocks[i]
        assert self.files is not None and self.format is not None
        return _load_block(self.files[i], self.format)

    def __iter__(self) -> Iterator[sp.csr_array]:
        return (self.block(i) for i in range(len(self)))

    def tocsr(self, *, max_bytes: Any = DEFAULT_MAX_BYTES) -> sp.csr_array:
        """The whole matrix, stacked (refused with ``MemoryError`` beyond ``max_bytes``)."""
        nnz = sum(b.nnz for b in self) if self.blocks is not None else self._nnz()
        check_max_bytes(nnz, self.shape, self.dtype, max_bytes, "conv matrix", "the blocks")
        return sp.csr_array(sp.vstack(list(self), format="csr"))

    def _nnz(self) -> int:
        return sum(self.block(i).nnz for i in range(len(self)))

    @property
    def operator(self) -> BlockOperator:
        """The matrix as a ``LinearOperator`` that streams its blocks."""
        return BlockOperator(self)


class BlockOperator(LinearOperator):  # type: ignore[misc]
    """A ``LinearOperator`` over row blocks: ``matvec`` stacks ``B_i x``, ``rmatvec`` sums
    ``B_iᴴ y_i``; one block in memory at a time when they are shards."""

    def __init__(self, blocks: MatrixBlocks) -> None:
        self.blocks = blocks
        super().__init__(dtype=blocks.dtype, shape=blocks.shape)

    def _matmat(self, x: Any) -> Array:
        x = np.asarray(x)
        parts = [b @ x for b in self.blocks]
        return np.concatenate(parts, axis=0)

    def _matvec(self, x: Any) -> Array:
        return self._matmat(np.asarray(x).reshape(-1, 1)).reshape(-1)

    def _rmatmat(self, y: Any) -> Array:
        y = np.asarray(y)
        bounds = self.blocks.bounds
        dtype = np.result_type(self.dtype, y.dtype)
        out = np.zeros((self.shape[1], y.shape[1]), dtype)
        for i, b in enumerate(self.blocks):
            out += b.T.conj() @ y[bounds[i] : bounds[i + 1]]
        return out

    def _rmatvec(self, y: Any) -> Array:
        return self._rmatmat(np.asarray(y).reshape(-1, 1)).reshape(-1)

    def _adjoint(self) -> LinearOperator:
        return LinearOperator(
            shape=(self.shape[1], self.shape[0]),
            dtype=self.dtype,
            matvec=self._rmatvec,
            rmatvec=self._matvec,
            matmat=self._rmatmat,
            rmatmat=self._matmat,
        )


_FORMATS = ("npz", "zarr")


def conv_matrix_blocks(
    input_shape: Any,
    weight: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    padding_mode: str = "zeros",
    rows_per_block: int | None = None,
    path: str | os.PathLike[str] | None = None,
    format: str = "npz",
    max_bytes: Any = DEFAULT_MAX_BYTES,
) -> MatrixBlocks:
    """:func:`convmat.conv_matrix` as row blocks, built in parallel, one dask task per block.

    Each block is built from the pattern of its own rows only (never from the whole
    matrix), so the matrix may be far larger than one machine's memory when the
    blocks are written to disk.

    Parameters
    ----------
    input_shape, weight, stride, padding, dilation, groups, padding_mode
        As :func:`convmat.conv_matrix`.
    rows_per_block : int, optional
        Rows per block (the last may be shorter); by default about 64 MiB of storage
        per block.
    path : str or os.PathLike, optional
        A directory: the blocks are written there as shards (``block_000000.npz`` …
        with :func:`scipy.sparse.save_npz`, or groups of one ``blocks.zarr`` store),
        with an ``index.json``, and read back one at a time. Without it the blocks
        are kept in memory.
    format : {"npz", "zarr"}
        The shard format.
    max_bytes : int
        Refuse (``MemoryError``) a *block* larger than this; default 4 GiB.

    Returns
    -------
    MatrixBlocks
        ``.block(i)``, iteration, ``.tocsr()`` and ``.operator`` (a blocked
        ``LinearOperator`` equal to :func:`convmat.conv_operator`).

    Raises
    ------
    ValueError, TypeError, MemoryError
        The messages of :func:`convmat.conv_matrix`; a ``rows_per_block`` below 1; an
        unknown ``format``; a block above ``max_bytes``.

    Notes
    -----
    The tasks run on dask's current scheduler (a ``dask.distributed`` client when one
    is active). Rows are in :func:`convmat.conv_matrix`'s order, and so is every
    block's content: stacked, the blocks are that matrix exactly.

    Examples
    --------
    >>> import numpy as np, convmat
    >>> w = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    >>> C = conv_matrix_blocks((1, 4, 4), w, rows_per_block=4)
    >>> len(C), C.shape
    (3, (9, 16))
    >>> (C.tocsr() != convmat.conv_matrix((1, 4, 4), w)).nnz
    0
    """
    shape_, w = _operands(input_shape, weight)
    layer = conv_layer(
        shape_,
        w.shape,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
    )
    fmt = choice(format, _FORMATS, "format")
    n_rows = layer.out_size
    per_group = layer.in_channels // layer.groups
    per_row = max(1, pattern_nnz(layer) // max(1, math.prod(layer.out_spatial))) * per_group
    if rows_per_block is None:
        rows = max(1, (64 * 2**20) // (per_row * (w.dtype.itemsize + 8)))
    else:
        rows = as_int(rows_per_block, "rows_per_block")
        if rows < 1:
            raise ValueError(f"rows_per_block must be >= 1; got {rows}")
    bounds = (*range(0, n_rows, rows), n_rows)
    kernels = np.ascontiguousarray(w).reshape(layer.out_channels, per_group, -1)
    where = None if path is None else os.fspath(path)
    if where is not None:
        os.makedirs(where, exist_ok=True)
        if fmt == "zarr":
            import zarr

            zarr.open_group(os.path.join(where, "blocks.zarr"), mode="w")
    build = delayed(_build_block, pure=True)
    tasks = [
        build(layer, kernels, bounds[i], bounds[i + 1], max_bytes, where, i, fmt)
        for i in range(len(bounds) - 1)
    ]
    results = compute(*tasks)  # type: ignore[no-untyped-call]
    shape = (layer.out_size, layer.in_size)
    if where is None:
        return MatrixBlocks(shape, w.dtype, bounds, blocks=tuple(results))
    files = tuple(results)
    index = {
        "shape": list(shape),
        "dtype": w.dtype.str,
        "bounds": list(bounds),
        "format": fmt,
        "files": [os.path.relpath(f, where) for f in files],
    }
    with open(os.path.join(where, "index.json"), "w") as fh:
        json.dump(index, fh)
    return MatrixBlocks(shape, w.dtype, bounds, files=files, format=fmt)


def open_matrix_blocks(path: str | os.PathLike[str]) -> MatrixBlocks:
    """The :class:`MatrixBlocks` that :func:`conv_matrix_blocks` wrote to ``path``.

    Raises
    ------
    FileNotFoundError
        When ``path`` holds no ``index.json``.
    """
    where = os.fspath(path)
    with open(os.path.join(where, "index.json")) as fh:
        index = json.load(fh)
    files = tuple(os.path.join(where, f) for f in index["files"])
    return MatrixBlocks(
        (int(index["shape"][0]), int(index["shape"][1])),
        np.dtype(index["dtype"]),
        tuple(index["bounds"]),
        files=files,
        format=index["format"],
    )
