"""im2col and col2im: ``F.unfold`` / ``F.fold`` and the 0/1 matrix between them.

Unfolding lists, for every output position ``l`` of a convolution and every kernel
tap ``t``, the input value that tap reads — exactly the convolution's sparsity
pattern (:func:`convmat._pattern.spatial_pattern`) filled with ones and laid out
as rows ``(c, t, l)``. Folding is the adjoint, ``Uᵀ``: every column entry is added
back onto the input position it came from, so overlapping windows sum. Neither
re-derives window arithmetic: both read the one pattern of a ones-kernel layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from convmat._args import (
    axes_count,
    float16_result,
    nonempty,
    ntuple,
    numeric_array,
    spatial_shape,
)
from convmat._layer import Layer, conv_layer
from convmat._matrix import DEFAULT_MAX_BYTES, _index_dtype, check_max_bytes
from convmat._pattern import pattern_nnz, spatial_pattern

#: torch's fold and unfold take 2 spatial dims; a sequence argument may set another rank.
_DEFAULT_NDIM = 2


def _rank(*args: Any) -> int:
    """The number of spatial dims set by the first sequence among ``args`` (else 2, as torch)."""
    return axes_count(*args) or _DEFAULT_NDIM


def _layer(
    input_shape: tuple[int, ...],
    kernel_size: Any,
    dilation: Any,
    padding: Any,
    stride: Any,
    input_name: str,
) -> Layer:
    """The one-channel convolution layer with a ones kernel whose pattern unfolding reads."""
    ndim = len(input_shape) - 1
    k = ntuple(kernel_size, ndim, "kernel_size", minimum=1)
    return conv_layer(
        (1, *input_shape[1:]),
        (1, 1, *k),
        stride=stride,
        padding=padding,
        dilation=dilation,
        input_name=input_name,
    )


def _plane_matrix(layer: Layer, dtype: np.dtype[Any], max_bytes: Any) -> sp.csr_array:
    """One channel's unfolding matrix, shape ``(∏k·L, ∏spatial)``: rows ``(t, l)``."""
    n_taps, n_out, n_in = math.prod(layer.kernel_size), math.prod(layer.out_spatial), layer.in_size
    nnz = pattern_nnz(layer)
    shape = (n_taps * n_out, n_in)
    check_max_bytes(nnz, shape, dtype, max_bytes, "unfold matrix", "convmat.unfold / convmat.fold")
    pattern = spatial_pattern(layer)
    # The pattern's grid: row l reads tap t at grid[l, t] (-1 where that tap reads padding).
    if pattern.grid_keep is None:
        grid = pattern.indices
    else:
        grid = np.full(n_out * n_taps, -1, dtype=pattern.indices.dtype)
        grid[pattern.grid_keep] = pattern.indices
    cols = grid.reshape(n_out, n_taps).T.reshape(-1)  # rows (t, l)
    keep = cols >= 0
    idx = _index_dtype(nnz, shape)
    indptr = np.zeros(shape[0] + 1, dtype=idx)
    np.cumsum(keep, out=indptr[1:])
    matrix = sp.csr_array((np.ones(nnz, dtype=dtype), cols[keep].astype(idx), indptr), shape=shape)
    matrix.has_sorted_indices = True
    return matrix


def _dtype(dtype: Any) -> np.dtype[Any]:
    np_dtype: np.dtype[Any] = np.dtype(dtype)
    if np_dtype.kind not in "fc":
        raise TypeError(f"dtype must be a float or complex dtype; got {np_dtype}")
    return np_dtype


def unfold_matrix(
    input_shape: Any,
    kernel_size: Any,
    *,
    dilation: Any = 1,
    padding: Any = 0,
    stride: Any = 1,
    dtype: Any = np.float64,
    max_bytes: Any = DEFAULT_MAX_BYTES,
) -> sp.csr_array:
    r"""The 0/1 im2col matrix U of one sample: ``unfold(x, ...).ravel() == U @ x.ravel()``.

    Parameters
    ----------
    input_shape : sequence of int
        One sample ``(C, *spatial)``, any number ``d >= 1`` of spatial dims.
    kernel_size, dilation, stride : int or sequence of int
        One int per spatial dim or one for all.
    padding : int, sequence of int, sequence of (low, high) pairs, or "valid" / "same" / "full"
        Zero padding, as :func:`conv_matrix` takes it (torch takes an int per dim).
    dtype : dtype
        Of the stored ones (default float64).
    max_bytes : int
        Refuse (``MemoryError``) a matrix whose storage would be larger; default 4 GiB.

    Returns
    -------
    scipy.sparse.csr_array, shape ``(C·∏k·L, C·∏spatial)``
        ``L = ∏out``, the convolution's output positions. Rows flattened as ``(c, t, l)``
        (``F.unfold``'s ``(C·∏k, L)`` in C order). At most one 1 per row; a tap that
        reads padding stores nothing. int32 indices when they fit.

    Raises
    ------
    ValueError
        For a bad value, or a (dilated) kernel larger than the padded input.
    TypeError
        For an argument of the wrong kind.
    MemoryError
        When the matrix would need more than ``max_bytes``; nothing is allocated first.

    See Also
    --------
    unfold, fold : the functions; ``fold`` applies ``U.T``.
    conv_matrix : equals ``kron(W, I_L) @ U`` with ``W = w.reshape(C_out, -1)``.

    Notes
    -----
    With ``i = l·s + t·d − lo`` per axis (the convolution's read),

    .. math::

        U[(c, \mathbf{t}, \mathbf{l}), (c, \mathbf{i})] = 1 \quad\text{when}\quad
        0 \le \mathbf{i} < \mathbf{n},

    so a convolution is the matrix product of its flattened kernel with the unfolded
    input — the GEMM formulation. The rows are the pattern of :func:`conv_matrix` for
    a ones kernel, one row per (tap, position) instead of one per position.

    Examples
    --------
    >>> import numpy as np
    >>> U = unfold_matrix((1, 3), 2, padding=1)
    >>> U.toarray()
    array([[0., 0., 0.],
           [1., 0., 0.],
           [0., 1., 0.],
           [0., 0., 1.],
           [1., 0., 0.],
           [0., 1., 0.],
           [0., 0., 1.],
           [0., 0., 0.]])
    >>> x = np.arange(1.0, 4.0)[None]  # one channel, 1-d: a kernel_size tuple sets the rank
    >>> unfold(x, (2,), padding=1)
    array([[0., 1., 2., 3.],
           [1., 2., 3., 0.]])
    """
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, (Sequence, np.ndarray)):
        raise TypeError(f"input_shape must be a sequence (C, *spatial); got {input_shape!r}")
    shape = spatial_shape(input_shape, "input_shape")
    if len(shape) < 2:
        raise ValueError(f"input_shape must be (C, *spatial) with d >= 1 spatial dims; got {shape}")
    np_dtype = _dtype(dtype)
    layer = _layer(shape, kernel_size, dilation, padding, stride, "input_shape")
    c = shape[0]
    plane_shape = (math.prod(layer.kernel_size) * math.prod(layer.out_spatial), layer.in_size)
    full = (c * plane_shape[0], c * plane_shape[1])
    check_max_bytes(
        c * pattern_nnz(layer), full, np_dtype, max_bytes, "unfold matrix", "convmat.unfold"
    )
    plane = _plane_matrix(layer, np_dtype, max_bytes)
    if c == 1:
        return plane
    idx = _index_dtype(c * plane.nnz, full)
    indptr = np.empty(full[0] + 1, dtype=idx)
    indptr[:-1] = (
        plane.indptr[:-1].astype(idx)[None, :] + (np.arange(c, dtype=idx) * plane.nnz)[:, None]
    ).reshape(-1)
    indptr[-1] = c * plane.nnz
    shifts = (np.arange(c, dtype=idx) * plane_shape[1])[:, None]
    indices = (plane.indices.astype(idx)[None, :] + shifts).reshape(-1)
    matrix = sp.csr_array((np.ones(c * plane.nnz, dtype=np_dtype), indices, indptr), shape=full)
    matrix.has_sorted_indices = True
    return matrix


@float16_result("x")
def unfold(
    x: Any,
    kernel_size: Any,
    *,
    dilation: Any = 1,
    padding: Any = 0,
    stride: Any = 1,
) -> np.ndarray[Any, Any]:
    r"""Extract sliding windows (im2col): ``torch.nn.functional.unfold`` in NumPy, any rank.

    Parameters
    ----------
    x : array_like, shape ``(N, C, *spatial)`` or ``(C, *spatial)``
        The number of spatial dims is the length of the first sequence among
        ``kernel_size``, ``dilation``, ``padding``, ``stride``, else 2 (as torch,
        which takes 2 only). A ``torch.Tensor`` is read as an array.
    kernel_size, dilation, padding, stride
        As :func:`unfold_matrix`.

    Returns
    -------
    numpy.ndarray, shape ``(N, C·∏k, L)`` or ``(C·∏k, L)``
        ``out[n, c·∏k + t, l]`` is the value tap ``t`` of window ``l`` reads (0 on
        padding); ``x``'s dtype (integers become float64).

    Raises
    ------
    ValueError, TypeError
        As :func:`unfold_matrix`, and for an ``x`` of the wrong rank.

    See Also
    --------
    unfold_matrix, fold

    Notes
    -----
    ``out[n, (c, t), l] = x[n, c, l·s + t·d − lo]`` per axis, zero outside. Computed
    as one sparse product per channel plane with the one-channel :func:`unfold_matrix`,
    which copies values exactly.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> unfold(x, 2)
    array([[[0., 1., 3., 4.],
            [1., 2., 4., 5.],
            [3., 4., 6., 7.],
            [4., 5., 7., 8.]]])
    """
    arr = numeric_array(x, "x")
    ndim = _rank(kernel_size, dilation, padding, stride)
    if arr.ndim not in (ndim + 1, ndim + 2):
        raise ValueError(
            f"x must have shape (C, *spatial) or (N, C, *spatial) with {ndim} spatial dims; "
            f"got shape {arr.shape}"
        )
    nonempty(arr.shape, ndim)
    layer = _layer(arr.shape[-ndim - 1 :], kernel_size, dilation, padding, stride, "x")
    plane = _plane_matrix(layer, arr.dtype, np.inf)
    planes = arr.reshape(-1, layer.in_size)
    cols = np.asarray((plane @ planes.T).T, dtype=arr.dtype)
    channels = arr.shape[-ndim - 1]
    rows, blocks = channels * math.prod(layer.kernel_size), math.prod(layer.out_spatial)
    return cols.reshape(*arr.shape[: -ndim - 1], rows, blocks)


@float16_result("x")
def fold(
    x: Any,
    output_size: Any,
    kernel_size: Any,
    *,
    dilation: Any = 1,
    padding: Any = 0,
    stride: Any = 1,
) -> np.ndarray[Any, Any]:
    r"""Sum sliding windows back into an array (col2im): ``torch.nn.functional.fold`` in NumPy.

    The adjoint of :func:`unfold`: ``fold(u, ...).ravel() == U.T @ u.ravel()`` with ``U``
    from :func:`unfold_matrix`; overlapping entries add up.

    Parameters
    ----------
    x : array_like, shape ``(N, C·∏k, L)`` or ``(C·∏k, L)``
        Columns as :func:`unfold` makes them.
    output_size : int or sequence of int
        The spatial shape of the result (the unfolded input's).
    kernel_size, dilation, padding, stride
        As :func:`unfold_matrix`. The number of spatial dims is the length of the
        first sequence among ``output_size``, ``kernel_size``, ``dilation``, ``padding``,
        ``stride``, else 2 (as torch).

    Returns
    -------
    numpy.ndarray, shape ``(N, C, *output_size)`` or ``(C, *output_size)``

    Raises
    ------
    ValueError
        For a bad value, an ``x`` that is not 2- or 3-dimensional, a channel axis not
        divisible by ``∏k``, or a block count ``L`` that does not match ``output_size``.
    TypeError
        For an argument of the wrong kind.

    See Also
    --------
    unfold, unfold_matrix

    Notes
    -----
    ``out[n, c, i] = Σ x[n, (c, t), l]`` over every ``(t, l)`` with ``l·s + t·d − lo = i``
    per axis. Folding the unfolded input multiplies each position by the number of
    windows that cover it, not by one: fold is the adjoint of unfold, not its inverse.

    Examples
    --------
    >>> import numpy as np
    >>> u = unfold(np.ones((1, 1, 3, 3)), 2)
    >>> fold(u, (3, 3), 2)[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    arr = numeric_array(x, "x")
    ndim = _rank(output_size, kernel_size, dilation, padding, stride)
    size = spatial_shape(output_size, "output_size", ndim=ndim)
    if arr.ndim not in (2, 3):
        raise ValueError(f"x must have shape (C·∏k, L) or (N, C·∏k, L); got shape {arr.shape}")
    k = ntuple(kernel_size, ndim, "kernel_size", minimum=1)
    n_taps = math.prod(k)
    nonempty(arr.shape, 1)
    if arr.shape[-2] % n_taps:
        raise ValueError(
            f"x must have a channel axis divisible by ∏kernel_size = {n_taps}; "
            f"got shape {arr.shape}"
        )
    channels = arr.shape[-2] // n_taps
    layer = _layer((channels, *size), k, dilation, padding, stride, "output_size")
    blocks = math.prod(layer.out_spatial)
    if arr.shape[-1] != blocks:
        raise ValueError(
            f"x must have L = {blocks} blocks (the windows of output_size {size}); "
            f"got shape {arr.shape}"
        )
    plane = _plane_matrix(layer, arr.dtype, np.inf)
    planes = arr.reshape(-1, n_taps * blocks)
    out = np.asarray((plane.T @ planes.T).T, dtype=arr.dtype)
    return out.reshape(*arr.shape[:-2], channels, *size)
