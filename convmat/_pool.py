"""Max pooling and max unpooling with PyTorch's index convention, and their matrices.

Pooling picks one input per window; its indices are flat positions within each
channel plane, as ``F.max_pool{1,2,3}d(return_indices=True)`` returns them.
Once the indices are fixed both operations are linear: pooling is a 0/1
selection matrix S (one 1 per row), unpooling scatters back through the same
indices — the transpose of S whenever no input wins two windows.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from convmat._args import (
    as_int,
    axes_count,
    float16_result,
    is_sequence,
    ntuple,
    numeric_array,
    read_array,
    scalar,
    spatial_shape,
    split_planes,
)
from convmat._matrix import _index_dtype
from convmat._pattern import window_positions
from convmat._shapes import conv_transpose_length, pool_length


class PoolGeometry(NamedTuple):
    """Validated per-axis geometry of a max pooling (``spatial`` is its input)."""

    spatial: tuple[int, ...]
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    out: tuple[int, ...]


_is_seq = is_sequence
_rank = axes_count  # spatial dims fixed by the first per-axis sequence among the values


def pool_geometry(
    spatial: tuple[int, ...],
    kernel_size: Any,
    *,
    stride: Any,
    padding: Any,
    dilation: Any,
    ceil_mode: Any,
) -> PoolGeometry:
    """Check a max pooling's hyperparameters (torch's rules) and size its output."""
    ndim = len(spatial)
    k = ntuple(kernel_size, ndim, "kernel_size", minimum=1)
    s = k if stride is None else ntuple(stride, ndim, "stride", minimum=1)
    p = ntuple(padding, ndim, "padding", minimum=0)
    d = ntuple(dilation, ndim, "dilation", minimum=1)
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"ceil_mode must be a bool; got {ceil_mode!r}")
    if any(pi > ki // 2 for pi, ki in zip(p, k, strict=True)):
        raise ValueError(
            f"padding must be <= kernel_size // 2 on every axis (as torch); got padding {p} "
            f"with kernel_size {k}"
        )
    out = tuple(
        pool_length(n, ki, si, pi, di, bool(ceil_mode))
        for n, ki, si, pi, di in zip(spatial, k, s, p, d, strict=True)
    )
    if any(o < 1 for o in out):
        raise ValueError(
            f"kernel_size (dilated) must fit in the padded input on every axis; got kernel {k} "
            f"with dilation {d} on input {spatial} padded by {p} (output would be {out})"
        )
    return PoolGeometry(spatial, k, s, p, d, out)


def _real(x: Any) -> np.ndarray[Any, Any]:
    arr = numeric_array(x, "x")
    if arr.dtype.kind == "c":
        raise TypeError(f"x must be a real array (max needs an order); got dtype {arr.dtype}")
    return arr


def _window_positions(geo: PoolGeometry) -> list[np.ndarray[Any, Any]]:
    """Per axis, the input position ``o·s + t·d − p`` of output ``o`` through tap ``t``."""
    return [
        window_positions(o, k, s, d, p)
        for o, k, s, p, d in zip(
            geo.out, geo.kernel_size, geo.stride, geo.padding, geo.dilation, strict=True
        )
    ]


def empty_windows(geo: PoolGeometry) -> bool:
    """Whether some window reads no input at all (its taps straddle it, by dilation).

    Torch then outputs ``-inf`` with an index past the window (or the plane).
    """
    return any(
        not ((pos >= 0) & (pos < n)).any(axis=1).all()
        for pos, n in zip(_window_positions(geo), geo.spatial, strict=True)
    )


def _flat(parts: list[np.ndarray[Any, Any]], spatial: tuple[int, ...]) -> np.ndarray[Any, Any]:
    """C-order flat index of the outer product of per-axis positions."""
    total = np.zeros((), np.int64)
    for part, n in zip(parts, spatial, strict=True):
        total = np.multiply.outer(total * n, np.ones_like(part)) + part
    return total


def _pool_planes(
    planes: np.ndarray[Any, Any], geo: PoolGeometry, with_indices: bool
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None]:
    """Max over every window of ``planes`` ``(P, *spatial)``, with torch's flat indices.

    Taps are visited in row-major kernel order with torch's update rule
    ``v > best or isnan(v)``: the first maximum wins a tie, the last NaN wins,
    and a window of ``-inf`` keeps its first in-bounds position.
    """
    positions = _window_positions(geo)
    ends = [int(pos.max()) + 1 for pos in positions]
    pad_shape = [max(n + p, e) + p for n, p, e in zip(geo.spatial, geo.padding, ends, strict=True)]
    padded = np.full((planes.shape[0], *pad_shape), -np.inf, planes.dtype)
    inner = tuple(slice(p, p + n) for p, n in zip(geo.padding, geo.spatial, strict=True))
    interior = (slice(None), *inner)
    padded[interior] = planes
    best = np.full((planes.shape[0], *geo.out), -np.inf, planes.dtype)
    arg = None
    if with_indices:
        # A window's first in-bounds position, the index torch keeps when nothing beats -inf.
        first = [pos[np.arange(pos.shape[0]), np.argmax(pos >= 0, axis=1)] for pos in positions]
        arg = np.broadcast_to(_flat(first, geo.spatial), best.shape).copy()
    for tap in np.ndindex(*geo.kernel_size):
        steps = zip(tap, geo.dilation, geo.out, geo.stride, strict=True)
        window = tuple(slice(t * d, t * d + (o - 1) * s + 1, s) for t, d, o, s in steps)
        where = (slice(None), *window)
        view = padded[where]
        if arg is None:
            np.maximum(best, view, out=best)  # NaN propagates, as torch
            continue
        better = (view > best) | np.isnan(view)
        np.copyto(best, view, where=better)
        index = _flat([pos[:, t] for pos, t in zip(positions, tap, strict=True)], geo.spatial)
        np.copyto(arg, np.broadcast_to(index, arg.shape), where=better)
    return best, arg


@float16_result("x")
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
    """Max pooling as ``torch.nn.functional.max_pool{1,2,3}d``, in NumPy.

    Parameters
    ----------
    x : array_like, shape ``(N, C, *spatial)`` or ``(C, *spatial)``
        Real data. The number of spatial dims is the length of the first sequence
        among ``kernel_size``, ``stride``, ``padding``, ``dilation``; with ints only,
        ``x.ndim − 2`` (a batch, as torch's functional forms; a 2-d ``x`` is ``(C, L)``).
    kernel_size, stride, dilation : int or sequence of int
        ``stride`` defaults to ``kernel_size``.
    padding : int or sequence of int
        Implicit ``-inf`` on both sides, at most ``kernel_size // 2`` (torch's rule).
    ceil_mode : bool
        Ceiling instead of floor in the output size; the last window must still
        start inside the input or the left padding.
    return_indices : bool
        Also return the flat index, within each channel plane, of every maximum.

    Returns
    -------
    numpy.ndarray, or (numpy.ndarray, numpy.ndarray of int64)
        The pooled array ``(N, C, *out)`` or ``(C, *out)`` in ``x``'s dtype
        (integers become float64), and with ``return_indices`` the indices.

    Raises
    ------
    ValueError
        For a bad hyperparameter, padding above half the kernel, a window larger
        than the padded input, or an ``x`` whose shape does not fit.
    TypeError
        For a non-integer hyperparameter, a non-bool ``ceil_mode`` or complex ``x``.

    See Also
    --------
    max_unpool, max_pool_matrix

    Notes
    -----
    Output size per axis ``⌊(n + 2p − d·(k−1) − 1)/s⌋ + 1`` (``⌈·⌉`` with
    ``ceil_mode``, dropping a last window that would start in the right padding).
    Ties pick the first maximum in row-major window order; a NaN wins its window
    (the last NaN, as torch's ``val > max || isnan(val)`` scan).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    >>> y, i = max_pool(x, 2, return_indices=True)
    >>> y[0, 0], i[0, 0]
    (array([[ 6.,  8.],
           [14., 16.]]), array([[ 5,  7],
           [13, 15]]))
    """
    arr = _real(x)
    rank, lead = split_planes(arr, _rank(kernel_size, stride, padding, dilation), "kernel_size")
    geo = pool_geometry(
        arr.shape[arr.ndim - rank :],
        kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil_mode=ceil_mode,
    )
    if not isinstance(return_indices, (bool, np.bool_)):
        raise TypeError(f"return_indices must be a bool; got {return_indices!r}")
    planes = arr.reshape(-1, *geo.spatial)
    best, arg = _pool_planes(planes, geo, bool(return_indices))
    out = best.reshape(*lead, *geo.out)
    if arg is None:
        return out
    return out, arg.reshape(*lead, *geo.out)


def _indices(indices: Any) -> np.ndarray[Any, Any]:
    ind = read_array(indices, "indices")
    if ind.dtype.kind not in "iu":
        raise TypeError(f"indices must be an integer array; got dtype {ind.dtype}")
    return ind.astype(np.int64, copy=False)


def _check_range(ind: np.ndarray[Any, Any], size: int, spatial: tuple[int, ...]) -> None:
    if ind.size and (ind.min() < 0 or ind.max() >= size):
        bad = ind.min() if ind.min() < 0 else ind.max()
        raise ValueError(
            f"indices must be flat positions in [0, {size}) of an output plane of shape "
            f"{spatial}; got {bad}"
        )


def _last_writers(key: np.ndarray[Any, Any], total: int) -> np.ndarray[Any, Any]:
    """Mask of the entries that write last to their target: torch's sequential scatter."""
    order = np.full(total, -1, np.int64)
    np.maximum.at(order, key, np.arange(key.size))
    last: np.ndarray[Any, Any] = order[key] == np.arange(key.size)
    return last


def _same_bits(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> bool:
    """Bitwise equality (NaN equals itself, -0.0 differs from 0.0)."""
    kind = np.dtype(f"u{a.dtype.itemsize}")
    return bool(np.array_equal(a.view(kind), b.view(kind)))


def _unpool_size(
    pooled: tuple[int, ...],
    k: tuple[int, ...],
    s: tuple[int, ...],
    p: tuple[int, ...],
    output_size: Any,
) -> tuple[int, ...]:
    """Default ``(n − 1)·s − 2p + k``, or ``output_size`` within ``s`` of it (exclusive)."""
    ndim = len(pooled)
    default = tuple(
        conv_transpose_length(n, ki, si, 2 * pi, 0, 1)
        for n, ki, si, pi in zip(pooled, k, s, p, strict=True)
    )
    if output_size is None:
        if any(v < 1 for v in default):
            raise ValueError(
                f"padding must leave a non-empty unpooled output on every axis; got padding {p} "
                f"giving {default}"
            )
        return default
    if not _is_seq(output_size):
        raise TypeError(f"output_size must be a sequence of ints; got {output_size!r}")
    output_size = scalar(output_size)
    size = tuple(as_int(v, "output_size") for v in output_size)
    if len(size) > ndim:
        size = size[len(size) - ndim :]
    if len(size) != ndim:
        raise ValueError(
            f"output_size must have {ndim} spatial entries (or be a full shape ending in them); "
            f"got {tuple(output_size)!r}"
        )
    if any(not d - si < v < d + si for v, d, si in zip(size, default, s, strict=True)):
        ranges = ", ".join(f"{d - si + 1}..{d + si - 1}" for d, si in zip(default, s, strict=True))
        raise ValueError(
            f"output_size must be within stride of the default {default} on every axis "
            f"({ranges}); got {size}"
        )
    return spatial_shape(size, "output_size", ndim=ndim)


@float16_result("x")
def max_unpool(
    x: Any,
    indices: Any,
    kernel_size: Any,
    *,
    stride: Any = None,
    padding: Any = 0,
    output_size: Any = None,
) -> np.ndarray[Any, Any]:
    """Max unpooling as ``torch.nn.functional.max_unpool{1,2,3}d``: values back at their indices.

    Parameters
    ----------
    x : array_like, shape ``(N, C, *pooled)`` or ``(C, *pooled)``
        Values to place (usually pooled ones). The number of spatial dims is the
        length of the first sequence among ``kernel_size``, ``stride``, ``padding``,
        else ``x.ndim − 2`` (a 2-d ``x`` is ``(C, L)``).
    indices : array_like of int, shape of ``x``
        Flat positions within each output plane, as :func:`max_pool` returns them.
    kernel_size, stride, padding : int or sequence of int
        The pooling's; ``stride`` defaults to ``kernel_size``.
    output_size : sequence of int, optional
        Spatial output shape (or a full shape ending in it), within ``stride`` of
        the default ``(n − 1)·s − 2p + k`` on every axis, as torch requires.

    Returns
    -------
    numpy.ndarray, shape ``(N, C, *output)`` or ``(C, *output)``
        Zeros except at the indices. When one index repeats within a plane the
        last value written stays, as torch's CPU loop does.

    Raises
    ------
    ValueError
        For mismatched shapes, an index outside the output plane, an output size
        out of range or a bad hyperparameter.
    TypeError
        For non-integer indices or hyperparameters, or complex ``x``.

    See Also
    --------
    max_pool, max_unpool_matrix

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    >>> y, i = max_pool(x, 2, return_indices=True)
    >>> max_unpool(y, i, 2)[0, 0]
    array([[ 0.,  0.,  0.,  0.],
           [ 0.,  6.,  0.,  8.],
           [ 0.,  0.,  0.,  0.],
           [ 0., 14.,  0., 16.]])
    """
    arr = _real(x)
    ind = _indices(indices)
    rank, lead = split_planes(arr, _rank(kernel_size, stride, padding), "kernel_size")
    if ind.shape != arr.shape:
        raise ValueError(f"indices must have the shape of x {arr.shape}; got {ind.shape}")
    pooled = arr.shape[arr.ndim - rank :]
    k = ntuple(kernel_size, rank, "kernel_size", minimum=1)
    s = k if stride is None else ntuple(stride, rank, "stride", minimum=1)
    p = ntuple(padding, rank, "padding", minimum=0)
    out = _unpool_size(pooled, k, s, p, output_size)
    size = math.prod(out)
    _check_range(ind, size, out)
    n_planes = math.prod(lead)
    per_plane = ind.reshape(n_planes, math.prod(pooled))
    key = (np.arange(n_planes)[:, None] * size + per_plane).reshape(-1)
    values = arr.reshape(-1)
    result = np.zeros(n_planes * size, arr.dtype)
    result[key] = values
    if not _same_bits(result[key], values):  # a repeated index with different values
        keep = _last_writers(key, n_planes * size)
        result[key[keep]] = values[keep]
    return result.reshape(*lead, *out)


def max_unpool_matrix(indices: Any, spatial: Any) -> sp.csr_array:
    """Max unpooling of one sample as a sparse 0/1 matrix M: ``M @ x.ravel()`` unpools ``x``.

    Parameters
    ----------
    indices : array_like of int, shape ``(*pooled)`` or ``(C, *pooled)``
        Flat positions within each output plane (:func:`max_pool`'s indices).
        One plane gives that plane's matrix; ``C`` planes a block-diagonal one.
    spatial : int or sequence of int
        The output plane's spatial shape (the pooling's input).

    Returns
    -------
    scipy.sparse.csr_array of float64, shape ``(C·∏spatial, C·∏pooled)``
        Column ``j`` holds a single 1 at row ``indices[j]`` (plus its plane's
        offset); a row written by several columns keeps the last, so every row
        has at most one entry.

    Raises
    ------
    ValueError
        When the indices' rank does not fit ``spatial`` or an index is out of range.
    TypeError
        For non-integer indices.

    See Also
    --------
    max_pool_matrix : the selection S; ``max_unpool_matrix(i, spatial) == S.T``
        exactly when no input wins two windows (e.g. non-overlapping windows).

    Notes
    -----
    Unpooling is the transpose of pooling's selection, as a transposed convolution
    is the transpose of a convolution — except that an input winning several
    overlapping windows is written once (torch scatters, it does not add), so
    the matrix keeps one of the 1s that ``S.T`` would sum in that row.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[1.0, 3.0, 2.0, 0.0]]])
    >>> y, i = max_pool(x, 2, return_indices=True)
    >>> M = max_unpool_matrix(i[0, 0], 4)
    >>> M.toarray()
    array([[0., 0.],
           [1., 0.],
           [0., 1.],
           [0., 0.]])
    >>> M @ y[0, 0], max_unpool(y, i, 2)[0, 0]
    (array([0., 3., 2., 0.]), array([0., 3., 2., 0.]))
    """
    ind = _indices(indices)
    shape = spatial_shape(spatial, "spatial")
    if ind.ndim not in (len(shape), len(shape) + 1) or ind.size == 0:
        raise ValueError(
            f"indices must have shape (*pooled) or (C, *pooled) with {len(shape)} spatial dims "
            f"(those of spatial {shape}); got shape {ind.shape}"
        )
    size = math.prod(shape)
    _check_range(ind, size, shape)
    planes = ind.reshape(1 if ind.ndim == len(shape) else ind.shape[0], -1)
    n_planes, per_plane = planes.shape
    rows = (np.arange(n_planes)[:, None] * size + planes).reshape(-1)
    cols = np.arange(rows.size)
    keep = _last_writers(rows, n_planes * size)
    rows, cols = rows[keep], cols[keep]
    order = np.argsort(rows, kind="stable")
    matrix_shape = (n_planes * size, n_planes * per_plane)
    idx = _index_dtype(rows.size, matrix_shape)
    indptr = np.zeros(matrix_shape[0] + 1, idx)
    np.cumsum(np.bincount(rows, minlength=matrix_shape[0]), out=indptr[1:])
    matrix = sp.csr_array((np.ones(rows.size), cols[order].astype(idx), indptr), shape=matrix_shape)
    matrix.has_sorted_indices = True
    return matrix


def max_pool_matrix(
    x: Any,
    kernel_size: Any,
    *,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> sp.csr_array:
    """Max pooling of one given sample as its 0/1 selection matrix S: ``S @ x.ravel()`` pools.

    Parameters
    ----------
    x : array_like, shape ``(C, *spatial)`` or ``(*spatial)``
        One sample (real). The number of spatial dims is the length of the first
        sequence among the hyperparameters, else ``x.ndim − 1`` (one channel axis).
    kernel_size, stride, padding, dilation, ceil_mode
        As for :func:`max_pool`.

    Returns
    -------
    scipy.sparse.csr_array, shape ``(C·∏out, C·∏spatial)``
        Exactly one 1 per row, at the winner of that window (torch's choice);
        ``x``'s dtype (integers give float64).

    Raises
    ------
    ValueError, TypeError
        As :func:`max_pool`; also when a window holds no input position (a dilated
        kernel stepping over a small input), whose output is ``-inf``, not a selection.

    See Also
    --------
    max_unpool_matrix : equals ``S.T`` when no input wins two windows.

    Notes
    -----
    Max pooling is not linear, but once its winners are known it is a selection,
    and selections are matrices. ``S.T`` sums into an input once per window it
    wins; unpooling writes it once — the two agree exactly when windows do not
    overlap.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1.0, 3.0, 2.0, 0.0]])
    >>> S = max_pool_matrix(x, 2)
    >>> S.toarray()
    array([[0., 1., 0., 0.],
           [0., 0., 1., 0.]])
    >>> S @ x.ravel()
    array([3., 2.])
    >>> _, i = max_pool(x, 2, return_indices=True)  # x as one channel: (C, L)
    >>> bool((S.T != max_unpool_matrix(i, 4)).nnz == 0)  # windows do not overlap
    True
    """
    arr = _real(x)
    rank = _rank(kernel_size, stride, padding, dilation)
    if rank is None:
        rank = arr.ndim - 1
    if rank < 1 or arr.ndim not in (rank, rank + 1):
        raise ValueError(
            f"x must have shape (C, *spatial) or (*spatial) with {max(rank, 1)} spatial dims; "
            f"got shape {arr.shape}"
        )
    sample = arr if arr.ndim == rank + 1 else arr[None]
    geo = pool_geometry(
        sample.shape[1:],
        kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil_mode=ceil_mode,
    )
    if empty_windows(geo):
        raise ValueError(
            f"kernel_size with dilation {geo.dilation} must leave every window an input "
            f"position for a selection matrix; got a window that reads only padding or skips "
            f"the input {geo.spatial} (torch gives it -inf and an index outside it)"
        )
    _, ind = _pool_planes(sample, geo, True)
    assert ind is not None
    n_planes = sample.shape[0]
    plane = math.prod(geo.spatial)
    cols = (np.arange(n_planes)[:, None] * plane + ind.reshape(n_planes, -1)).reshape(-1)
    matrix_shape = (cols.size, n_planes * plane)
    idx = _index_dtype(cols.size, matrix_shape)
    matrix = sp.csr_array(
        (np.ones(cols.size, arr.dtype), cols.astype(idx), np.arange(cols.size + 1, dtype=idx)),
        shape=matrix_shape,
    )
    matrix.has_sorted_indices = True
    return matrix
