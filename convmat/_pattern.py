"""The sparsity pattern of a convolution: which input feeds which output through which tap.

Computed once per layer by vectorised index arithmetic, then filled three ways:
with weights (``conv_matrix``, SciPy), with symbols (``convmat.symbolic``, SymPy)
and with ones (overlap counts). The transposed layer reads the same pattern
transposed (:meth:`Pattern.transpose`); nothing is ever derived a second time.

Along one axis, output ``o`` reads the padded input at

    i = o·s + t·d − lo        for every kernel tap t = 0 … k−1,

which is kept when ``0 <= i < n`` (zero padding) or folded back into the input
(``reflect``, ``replicate``, ``circular``). The N-d pattern is the product of the
per-axis ones, flattened in C order: every output position reads ``∏k`` padded
positions at one fixed set of offsets, and a lookup table maps padded positions
to input positions (or to "padding").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from convmat._layer import Layer

IntArray = np.ndarray[Any, np.dtype[np.signedinteger[Any]]]


def _fold(src: IntArray, n: int, mode: str) -> IntArray:
    """Map padded positions along one axis into ``[0, n)`` (``-1`` for zero padding)."""
    if mode == "zeros":
        return np.where((src >= 0) & (src < n), src, -1)
    if mode == "reflect":
        src = np.abs(src)
        return np.where(src >= n, 2 * (n - 1) - src, src)
    if mode == "replicate":
        return np.clip(src, 0, n - 1)
    return src % n


def window_positions(out: int, k: int, s: int, d: int, lo: int) -> IntArray:
    """The padded input position ``o·s + t·d − lo`` read by output ``o`` through tap ``t``.

    Shape ``(out, k)``; negative or too large where the window reaches into padding.
    """
    return np.arange(out)[:, None] * s + np.arange(k)[None, :] * d - lo


def axis_sources(layer: Layer) -> list[IntArray]:
    """Per axis, the input index read by output ``o`` through tap ``t``: shape ``(out, k)``.

    ``-1`` marks a read of zero padding.
    """
    return [
        _fold(window_positions(o, k, s, d, lo), n, layer.padding_mode)
        for n, o, k, s, d, (lo, _) in zip(
            layer.in_spatial,
            layer.out_spatial,
            layer.kernel_size,
            layer.stride,
            layer.dilation,
            layer.padding,
            strict=True,
        )
    ]


def tap_count(n: int, out: int, k: int, s: int, d: int, lo: int) -> int:
    """How many of the ``out × k`` reads ``o·s + t·d − lo`` of one axis land in ``[0, n)``.

    Closed form, one interval per value of the shorter of ``o`` and ``t``: for a fixed
    ``t`` the outputs that read the input are ``⌈(lo − t·d)/s⌉ <= o <= ⌊(n − 1 + lo − t·d)/s⌋``
    (and symmetrically for a fixed ``o``). Costs ``O(min(out, k))`` integers, never the
    ``(out, k)`` grid, so a matrix can be refused before anything of its size exists.

    >>> tap_count(4, 3, 2, 1, 1, 0), tap_count(4, 5, 2, 1, 1, 1)
    (6, 8)
    >>> tap_count(10**9, 10**9, 5, 1, 1, 2)  # 'same' padding: 4 taps fall off the ends
    4999999994
    """
    if min(n, out, k) <= 0:
        return 0
    # Loop variable j (coefficient a, j < m) against the interval variable i (coefficient b).
    m, a, other, b = (k, d, out, s) if k <= out else (out, s, k, d)
    hi = n - 1 + lo
    if max(m * a + abs(lo) + n, b, m * other) < 2**62:
        j = np.arange(m, dtype=np.int64) * a
        first = np.maximum(-((j - lo) // b), 0)
        last = np.minimum((hi - j) // b, other - 1)
        return int(np.maximum(last - first + 1, 0).sum())
    return sum(  # huge geometry: exact Python integers (m is then small)
        max(min((hi - j * a) // b, other - 1) - max(-((j * a - lo) // b), 0) + 1, 0)
        for j in range(m)
    )


def axis_nnz(layer: Layer) -> list[int]:
    """Per axis, the stored reads of one channel pair (``out·k``, a bound, for folded padding)."""
    return [
        tap_count(n, o, k, s, d, lo) if layer.padding_mode == "zeros" else o * k
        for n, o, k, s, d, (lo, _) in zip(
            layer.in_spatial,
            layer.out_spatial,
            layer.kernel_size,
            layer.stride,
            layer.dilation,
            layer.padding,
            strict=True,
        )
    ]


def pattern_nnz(layer: Layer) -> int:
    """Stored entries of one channel pair's block (an upper bound for folded padding).

    Arithmetic only — per-axis closed-form counts (:func:`tap_count`) multiply — so a
    matrix can be refused before anything is allocated, however long its axes.
    """
    return math.prod(axis_nnz(layer))


def _outer(parts: list[IntArray], op: np.ufunc = np.add) -> IntArray:
    """``op`` over ``parts[0][i] op parts[1][j] ...`` for the C-ordered product of indices."""
    total = parts[0].astype(np.int64)
    for part in parts[1:]:
        total = op.outer(total, part)
    return total.reshape(-1)


@dataclass(frozen=True)
class Pattern:
    """One channel pair's pattern, in CSR form over ``shape = (rows, columns)``.

    Entry ``e`` (row ``r``, column ``indices[e]``) carries the kernel taps
    ``taps[tap_ptr[e]:tap_ptr[e + 1]]``; when every entry has exactly one tap
    (zero padding) ``tap_ptr`` is ``None``. Columns increase within every row.

    A convolution's own pattern is a *grid*: every row reads the same ``n_taps``
    taps in order, less those that fall on zero padding (``grid_keep`` masks the
    ``rows × n_taps`` grid; ``None`` keeps all of it). Taps are then implied and
    filling is a tile-and-compress, not a gather.
    """

    shape: tuple[int, int]
    n_taps: int
    indptr: IntArray
    indices: IntArray
    explicit_taps: IntArray | None = None
    tap_ptr: IntArray | None = None
    grid_keep: np.ndarray[Any, np.dtype[np.bool_]] | None = None

    @property
    def nnz(self) -> int:
        return int(self.indices.size)

    @property
    def is_grid(self) -> bool:
        return self.explicit_taps is None

    @cached_property
    def taps(self) -> IntArray:
        """The kernel tap of every (entry, tap) pair, flat in C order of the kernel."""
        if self.explicit_taps is not None:
            return self.explicit_taps
        small = np.int16 if self.n_taps < 2**15 else np.int64
        grid = np.tile(np.arange(self.n_taps, dtype=small), self.shape[0])
        return grid if self.grid_keep is None else grid[self.grid_keep]

    def fill(self, weight: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Entry values from kernels ``weight`` of shape ``(..., ∏k)`` → ``(..., nnz)``."""
        if self.is_grid:
            tiled = np.tile(weight.reshape(-1, self.n_taps), (1, self.shape[0]))
            if self.grid_keep is not None:
                # A 1-d boolean index is fast; a 2-d compress along an axis is not.
                tiled = (
                    tiled[0][self.grid_keep][None]
                    if len(tiled) == 1
                    else np.take(tiled, np.flatnonzero(self.grid_keep), axis=1)
                )
            return tiled.reshape(*weight.shape[:-1], -1)
        values = np.take(weight, self.taps, axis=-1)
        if self.tap_ptr is None:
            return values
        return np.add.reduceat(values, self.tap_ptr[:-1], axis=-1)

    def tap_lists(self) -> list[IntArray]:
        """The taps of every entry (for filling with symbols)."""
        if self.tap_ptr is None:
            return list(self.taps[:, None])
        return np.split(self.taps, self.tap_ptr[1:-1])

    def transpose(self) -> Pattern:
        """The same pattern read the other way: rows become columns, taps travel along."""
        from scipy.sparse import csr_array

        if self.tap_ptr is None:
            # One tap per entry: the taps travel as the data of the transposed CSR.
            moved = csr_array((self.taps, self.indices, self.indptr), shape=self.shape).T.tocsr()
            indptr, indices, taps, tap_ptr = moved.indptr, moved.indices, moved.data, None
        else:
            ids = csr_array(
                (np.arange(1, self.nnz + 1, dtype=np.int64), self.indices, self.indptr),
                shape=self.shape,
            ).T.tocsr()
            order = ids.data - 1
            lengths = np.diff(self.tap_ptr)[order]
            tap_ptr = np.zeros(order.size + 1, dtype=np.int64)
            np.cumsum(lengths, out=tap_ptr[1:])
            starts = np.repeat(self.tap_ptr[order] - tap_ptr[:-1], lengths)
            indptr, indices = ids.indptr, ids.indices
            taps = self.taps[np.arange(tap_ptr[-1]) + starts]
        return Pattern(
            (self.shape[1], self.shape[0]),
            self.n_taps,
            indptr.astype(np.int64),
            indices,
            taps,
            tap_ptr,
        )


def spatial_pattern(layer: Layer) -> Pattern:
    """The pattern of ``layer`` for one (output channel, input channel) pair.

    Rows are output positions, columns input positions, both flattened in C order.
    """
    n_out, n_in = math.prod(layer.out_spatial), math.prod(layer.in_spatial)
    n_taps = math.prod(layer.kernel_size)
    # The padded extent read along each axis and its lookup: padded -> input position.
    reach = tuple(
        (o - 1) * s + (k - 1) * d + 1
        for o, k, s, d in zip(
            layer.out_spatial, layer.kernel_size, layer.stride, layer.dilation, strict=True
        )
    )
    index_type = np.int32 if max(n_in, math.prod(reach)) < 2**31 - 1 else np.int64
    outside = -(n_in + 1) * len(reach)
    lut = _outer(
        [
            np.where(f >= 0, f * math.prod(layer.in_spatial[axis + 1 :]), outside)
            for axis, f in enumerate(
                _fold(np.arange(r) - lo, n, layer.padding_mode)
                for r, n, (lo, _) in zip(reach, layer.in_spatial, layer.padding, strict=True)
            )
        ]
    )
    lut = np.maximum(lut, -1).astype(index_type).reshape(reach)
    # Output o reads tap t at padded position o·s + t·d on every axis: a strided window.
    step = lut.strides
    window = as_strided(
        lut,
        shape=(*layer.out_spatial, *layer.kernel_size),
        strides=(
            *(st * s for st, s in zip(step, layer.stride, strict=True)),
            *(st * d for st, d in zip(step, layer.dilation, strict=True)),
        ),
        writeable=False,
    )
    src = window.reshape(n_out, n_taps)

    if layer.padding_mode == "zeros":
        counts = _outer([(f >= 0).sum(axis=1) for f in axis_sources(layer)], np.multiply)
        indptr = np.zeros(n_out + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        if indptr[-1] == src.size:
            return Pattern((n_out, n_in), n_taps, indptr, src.reshape(-1))
        keep = (src >= 0).reshape(-1)
        return Pattern((n_out, n_in), n_taps, indptr, src.reshape(-1)[keep], grid_keep=keep)

    # Folded padding: several taps may read one input; sort each row and merge repeats.
    order = np.argsort(src, axis=1, kind="stable")
    cols = np.take_along_axis(src, order, axis=1)
    first = np.ones(cols.shape, dtype=bool)
    first[:, 1:] = cols[:, 1:] != cols[:, :-1]
    indptr = np.zeros(n_out + 1, dtype=np.int64)
    np.cumsum(first.sum(axis=1), out=indptr[1:])
    starts = np.flatnonzero(first.reshape(-1))
    tap_ptr = np.append(starts, cols.size) if starts.size != cols.size else None
    return Pattern((n_out, n_in), n_taps, indptr, cols[first], order.reshape(-1), tap_ptr)


class BlockTemplate(NamedTuple):
    """The rows of one row-channel of the full matrix, built from the pattern.

    A row lists, for every column channel ``b`` of its group, the pattern row's
    columns shifted by ``b·columns``. ``entry[q]`` says which ``(b, e)`` pair
    position ``q`` holds, as ``b·nnz + e`` (``None``: the identity, one column channel).
    """

    indptr: IntArray
    columns: IntArray
    entry: IntArray | None


def block_template(pattern: Pattern, per_group: int) -> BlockTemplate:
    """Row structure of one row-channel that meets ``per_group`` column channels."""
    nnz = pattern.nnz
    if per_group == 1:
        return BlockTemplate(pattern.indptr, pattern.indices, None)
    lengths = np.diff(pattern.indptr)
    row = np.repeat(np.arange(lengths.size), lengths)
    offset = np.arange(nnz) - pattern.indptr[row]
    b = np.arange(per_group)[:, None]
    dest = (per_group * pattern.indptr[row] + offset)[None, :] + b * lengths[row][None, :]
    columns = np.empty(per_group * nnz, dtype=pattern.indices.dtype)
    entry = np.empty(per_group * nnz, dtype=np.int64)
    columns[dest] = b * pattern.shape[1] + pattern.indices[None, :]
    entry[dest] = b * nnz + np.arange(nnz)[None, :]
    return BlockTemplate(per_group * pattern.indptr, columns, entry)


def channel_blocks(
    layer: Layer, kernels: np.ndarray[Any, Any], *, transposed: bool
) -> tuple[Pattern, np.ndarray[Any, Any]]:
    """The pattern and the per-block kernels of C (or of Cᵀ), for any entry type.

    ``kernels`` has shape ``(C_out, C_in // groups, ∏k)`` (numbers or symbols). Block
    ``(a, b)`` of the result is the returned pattern filled with ``blocks[a, b]``, where
    row channel ``a`` meets the ``b``-th column channel of its group. For Cᵀ, row
    channel ``j`` (a forward input channel) meets the forward output channels of its
    group through ``kernels[g·C_out/G + b, j − g·C_in/G]``.
    """
    pattern = spatial_pattern(layer)
    if not transposed:
        return pattern, kernels
    groups, per_out = layer.groups, layer.out_channels // layer.groups
    swapped = kernels.reshape(groups, per_out, kernels.shape[1], -1).transpose(0, 2, 1, 3)
    return pattern.transpose(), swapped.reshape(layer.in_channels, per_out, -1)


def block_shifts(n_blocks: int, groups: int, per_group: int, n_cols: int) -> IntArray:
    """Column offset of every row channel's group: ``g(a) · per_group · n_cols``."""
    return (np.arange(n_blocks) // (n_blocks // groups)) * (per_group * n_cols)
