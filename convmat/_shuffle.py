"""Pixel shuffle and unshuffle (sub-pixel rearrangement) as functions and permutation matrices.

``pixel_shuffle`` moves channel ``c·r² + a·r + b`` of an ``(C·r², H, W)`` sample to the
sub-pixel offset ``(a, b)`` of channel ``c`` at ``(H·r, W·r)``; ``pixel_unshuffle`` is its
inverse. Both are reshapes and one axis permutation; the matrices are those functions
applied to the flat positions ``0 … size−1`` (output ``o`` reads input ``perm[o]``), so
the matrix and the function cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from convmat._args import as_int, float16_result, nonempty, numeric_array, spatial_shape
from convmat._matrix import DEFAULT_MAX_BYTES, _index_dtype, check_max_bytes


def _factor(value: Any, name: str) -> int:
    r = as_int(value, name)
    if r < 1:
        raise ValueError(f"{name} must be >= 1; got {r}")
    return r


def _check_shape(shape: tuple[int, ...], r: int, name: str, *, shuffle: bool) -> None:
    if len(shape) < 3:
        raise ValueError(f"{name} must have shape (*, C, H, W) with at least 3 dims; got {shape}")
    nonempty(shape, 2, name)
    c, h, w = shape[-3:]
    if shuffle and c % (r * r):
        raise ValueError(
            f"{name} channels must be divisible by upscale_factor² = {r * r}; got {c} channels"
        )
    if not shuffle and (h % r or w % r):
        raise ValueError(
            f"{name} height and width must be divisible by downscale_factor = {r}; got {(h, w)}"
        )


def _shuffle(x: np.ndarray[Any, Any], r: int) -> np.ndarray[Any, Any]:
    *lead, c, h, w = x.shape
    y = x.reshape(*lead, c // (r * r), r, r, h, w)
    n = len(lead)
    y = y.transpose(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    out: np.ndarray[Any, Any] = y.reshape(*lead, c // (r * r), h * r, w * r)
    return out


def _unshuffle(x: np.ndarray[Any, Any], r: int) -> np.ndarray[Any, Any]:
    *lead, c, h, w = x.shape
    y = x.reshape(*lead, c, h // r, r, w // r, r)
    n = len(lead)
    y = y.transpose(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    out: np.ndarray[Any, Any] = y.reshape(*lead, c * r * r, h // r, w // r)
    return out


@float16_result("x")
def pixel_shuffle(x: Any, upscale_factor: Any) -> np.ndarray[Any, Any]:
    r"""Rearrange ``(*, C·r², H, W)`` into ``(*, C, H·r, W·r)``: ``F.pixel_shuffle`` in NumPy.

    Parameters
    ----------
    x : array_like, shape ``(*, C·r², H, W)``
        ``(N, C·r², H, W)``, one sample ``(C·r², H, W)`` or more leading axes, as torch.
    upscale_factor : int
        ``r >= 1``.

    Returns
    -------
    numpy.ndarray, shape ``(*, C, H·r, W·r)``
        A new array of ``x``'s dtype (integers become float64).

    Raises
    ------
    ValueError
        When ``x`` has fewer than 3 dims, its channels are not divisible by ``r²``,
        or ``r < 1``.
    TypeError
        For a non-integer ``upscale_factor`` or non-numeric ``x``.

    See Also
    --------
    pixel_unshuffle, pixel_shuffle_matrix, pixel_shuffle_as_conv_transpose

    Notes
    -----
    .. math:: y[c,\ h r + a,\ w r + b] = x[c r^2 + a r + b,\ h,\ w].

    References
    ----------
    W. Shi et al., "Real-time single image and video super-resolution using an
    efficient sub-pixel convolutional neural network", CVPR 2016.

    Examples
    --------
    >>> import numpy as np
    >>> pixel_shuffle(np.arange(8.0).reshape(4, 1, 2), 2)
    array([[[0., 2., 1., 3.],
            [4., 6., 5., 7.]]])
    """
    arr = numeric_array(x, "x")
    r = _factor(upscale_factor, "upscale_factor")
    _check_shape(arr.shape, r, "x", shuffle=True)
    return np.ascontiguousarray(_shuffle(arr, r))


@float16_result("x")
def pixel_unshuffle(x: Any, downscale_factor: Any) -> np.ndarray[Any, Any]:
    r"""Rearrange ``(*, C, H·r, W·r)`` into ``(*, C·r², H, W)``: ``F.pixel_unshuffle`` in NumPy.

    Parameters
    ----------
    x : array_like, shape ``(*, C, H·r, W·r)``
        ``(N, C, H·r, W·r)``, one sample, or more leading axes, as torch.
    downscale_factor : int
        ``r >= 1``.

    Returns
    -------
    numpy.ndarray, shape ``(*, C·r², H, W)``
        The inverse of :func:`pixel_shuffle`.

    Raises
    ------
    ValueError
        When ``x`` has fewer than 3 dims, its height or width is not divisible by
        ``r``, or ``r < 1``.
    TypeError
        For a non-integer ``downscale_factor`` or non-numeric ``x``.

    See Also
    --------
    pixel_shuffle, pixel_unshuffle_matrix

    Notes
    -----
    .. math:: y[c r^2 + a r + b,\ h,\ w] = x[c,\ h r + a,\ w r + b].

    Examples
    --------
    >>> import numpy as np
    >>> pixel_unshuffle(np.arange(4.0).reshape(1, 2, 2), 2)[:, 0, 0]
    array([0., 1., 2., 3.])
    """
    arr = numeric_array(x, "x")
    r = _factor(downscale_factor, "downscale_factor")
    _check_shape(arr.shape, r, "x", shuffle=False)
    return np.ascontiguousarray(_unshuffle(arr, r))


def _sample(input_shape: Any) -> tuple[int, ...]:
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, (Sequence, np.ndarray)):
        raise TypeError(f"input_shape must be a sequence (C, H, W); got {input_shape!r}")
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be one sample (C, H, W); got {tuple(input_shape)!r}")
    return spatial_shape(input_shape, "input_shape")


def _refuse(size: int, dtype: Any, max_bytes: Any, what: str, alternative: str) -> None:
    """Check ``dtype`` and refuse a ``size × size`` permutation matrix, before any work."""
    np_dtype = np.dtype(dtype)
    if np_dtype.kind not in "fc":
        raise TypeError(f"dtype must be a float or complex dtype; got {np_dtype}")
    check_max_bytes(size, (size, size), np_dtype, max_bytes, what, alternative)


def _permutation(perm: np.ndarray[Any, Any], dtype: Any) -> sp.csr_array:
    """The matrix whose row ``o`` holds a single 1 in column ``perm[o]`` (refused already)."""
    size = perm.size
    np_dtype = np.dtype(dtype)
    idx = _index_dtype(size, (size, size))
    indptr = np.arange(size + 1, dtype=idx)
    matrix = sp.csr_array(
        (np.ones(size, dtype=np_dtype), perm.astype(idx), indptr), shape=(size, size)
    )
    matrix.has_sorted_indices = True
    return matrix


def pixel_shuffle_matrix(
    input_shape: Any,
    upscale_factor: Any,
    *,
    dtype: Any = np.float64,
    max_bytes: Any = DEFAULT_MAX_BYTES,
) -> sp.csr_array:
    r"""The permutation matrix S of :func:`pixel_shuffle` on one sample.

    ``pixel_shuffle(x, r).ravel() == S @ x.ravel()`` for ``x`` of shape ``input_shape``.

    Parameters
    ----------
    input_shape : sequence of int
        One sample ``(C·r², H, W)``.
    upscale_factor : int
        ``r >= 1``.
    dtype : dtype
        Of the stored ones (default float64).
    max_bytes : int
        Refuse (``MemoryError``) a matrix whose storage would be larger; default 4 GiB.

    Returns
    -------
    scipy.sparse.csr_array, shape ``(size, size)``
        ``size = C·r²·H·W``; one 1 per row and per column, int32 indices when they fit.

    Raises
    ------
    ValueError, TypeError
        As :func:`pixel_shuffle`, for an ``input_shape`` that is not ``(C, H, W)``, and a
        non-float ``dtype``.
    MemoryError
        When the matrix would need more than ``max_bytes``.

    See Also
    --------
    pixel_shuffle, pixel_unshuffle_matrix : its transpose (and inverse).

    Notes
    -----
    ``S[(c, h r + a, w r + b), (c r² + a r + b, h, w)] = 1``, flattened in C order. A
    permutation, so ``S.T @ S = I`` and ``S.T`` is :func:`pixel_unshuffle_matrix`.

    Examples
    --------
    >>> import numpy as np
    >>> S = pixel_shuffle_matrix((4, 1, 1), 2)
    >>> S.toarray()
    array([[1., 0., 0., 0.],
           [0., 1., 0., 0.],
           [0., 0., 1., 0.],
           [0., 0., 0., 1.]])
    >>> S = pixel_shuffle_matrix((4, 2, 1), 2)
    >>> x = np.arange(8.0).reshape(4, 2, 1)
    >>> bool(np.array_equal(S @ x.ravel(), pixel_shuffle(x, 2).ravel()))
    True
    """
    shape = _sample(input_shape)
    r = _factor(upscale_factor, "upscale_factor")
    _check_shape(shape, r, "input_shape", shuffle=True)
    size = math.prod(shape)
    _refuse(size, dtype, max_bytes, "pixel_shuffle matrix", "convmat.pixel_shuffle")
    perm = _shuffle(np.arange(size, dtype=np.int64).reshape(shape), r).reshape(-1)
    return _permutation(perm, dtype)


def pixel_unshuffle_matrix(
    input_shape: Any,
    downscale_factor: Any,
    *,
    dtype: Any = np.float64,
    max_bytes: Any = DEFAULT_MAX_BYTES,
) -> sp.csr_array:
    r"""The permutation matrix of :func:`pixel_unshuffle` on one sample (``(C, H·r, W·r)``).

    Parameters
    ----------
    input_shape : sequence of int
        One sample ``(C, H·r, W·r)``.
    downscale_factor : int
        ``r >= 1``.
    dtype : dtype
        Of the stored ones (default float64).
    max_bytes : int
        As :func:`pixel_shuffle_matrix`.

    Returns
    -------
    scipy.sparse.csr_array, shape ``(size, size)``
        Equal to ``pixel_shuffle_matrix((C·r², H, W), r).T``.

    Raises
    ------
    ValueError, TypeError, MemoryError
        As :func:`pixel_unshuffle` and :func:`pixel_shuffle_matrix`.

    See Also
    --------
    pixel_unshuffle, pixel_shuffle_matrix

    Notes
    -----
    ``U[(c r² + a r + b, h, w), (c, h r + a, w r + b)] = 1``.

    Examples
    --------
    >>> U = pixel_unshuffle_matrix((1, 2, 2), 2)
    >>> S = pixel_shuffle_matrix((4, 1, 1), 2)
    >>> (U != S.T).nnz
    0
    """
    shape = _sample(input_shape)
    r = _factor(downscale_factor, "downscale_factor")
    _check_shape(shape, r, "input_shape", shuffle=False)
    size = math.prod(shape)
    _refuse(size, dtype, max_bytes, "pixel_unshuffle matrix", "convmat.pixel_unshuffle")
    perm = _unshuffle(np.arange(size, dtype=np.int64).reshape(shape), r).reshape(-1)
    return _permutation(perm, dtype)
