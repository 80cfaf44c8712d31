"""Average pooling and adaptive average pooling, fast and as matrices, exact to PyTorch.

Averaging is separable. Along one axis every output reads one contiguous run
of inputs, ``[lo, lo + width)``, and the divisor of an N-d window is the product
of per-axis counts (or ``divisor_override``, a constant). :func:`pool_windows`
and :func:`adaptive_windows` compute the runs and counts once; both paths read them:

* the matrices — the Kronecker product of per-axis 0/1 run matrices (via
  :func:`convmat._upsample.kron_csr`), every row then divided by its divisor,
  so an entry is ``1/divisor`` rounded once;
* the functions — one window-sum pass per axis (a loop over the few taps of
  the widest window, never over windows), then one division by the divisors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from convmat._args import (
    as_int,
    float16_result,
    is_sequence,
    numeric_array,
    scalar,
    spatial_shape,
    split_planes,
)
from convmat._matrix import DEFAULT_MAX_BYTES
from convmat._pattern import tap_count
from convmat._pool import _rank, pool_geometry
from convmat._upsample import _dtype, kron_csr, refuse_kron

IntArray = np.ndarray[Any, np.dtype[np.int64]]


class Windows(NamedTuple):
    """One axis of a pooling: output ``o`` sums input ``[lo[o], lo[o] + width[o])``.

    ``divisor[o]`` is that axis's factor of the divisor; ``n`` is the input length.
    """

    lo: IntArray
    width: IntArray
    divisor: IntArray
    n: int


def pool_windows(n: int, k: int, s: int, p: int, out: int, count_include_pad: bool) -> Windows:
    """Runs and counts of ``avg_pool`` along one axis (torch's ``AvgPoolKernel``).

    Window ``o`` starts at ``o·s − p``; it ends at ``min(start + k, n + p)`` (the
    padded input), and the inputs it reads are that range clipped to ``[0, n)``.
    """
    start = np.arange(out, dtype=np.int64) * s - p
    end = np.minimum(start + k, n + p)
    lo, hi = np.maximum(start, 0), np.minimum(end, n)
    return Windows(lo, hi - lo, end - start if count_include_pad else hi - lo, n)


def adaptive_windows(n: int, m: int) -> Windows:
    """Runs of adaptive average pooling ``n → m``: ``[⌊o·n/m⌋, ⌈(o+1)·n/m⌉)``."""
    o = np.arange(m, dtype=np.int64)
    lo = (o * n) // m
    hi = -((-(o + 1) * n) // m)
    return Windows(lo, hi - lo, hi - lo, n)


def adaptive_nnz(n: int, m: int) -> int:
    """Inputs read by all ``m`` adaptive windows over ``n``: ``n + m − gcd(n, m)``.

    Window ``o`` is ``[⌊o·n/m⌋, ⌈(o+1)·n/m⌉)``; the widths telescope to ``n`` plus one
    for every ``o = 1 … m`` whose ``o·n/m`` is fractional, and ``m | o·n`` for exactly
    ``gcd(n, m)`` of them.

    >>> adaptive_nnz(5, 3), adaptive_nnz(6, 2), adaptive_nnz(10**9, 10**9 - 1)
    (7, 6, 1999999998)
    """
    return n + m - math.gcd(n, m)


def _runs_matrix(w: Windows, dtype: Any) -> sp.csr_array:
    """The 0/1 matrix ``(m, n)`` of one axis: row ``o`` has ones on its run."""
    m = w.lo.size
    indptr = np.zeros(m + 1, np.int64)
    np.cumsum(w.width, out=indptr[1:])
    cols = np.arange(indptr[-1]) - np.repeat(indptr[:-1] - w.lo, w.width)
    out = sp.csr_array((np.ones(cols.size, dtype), cols, indptr), shape=(m, w.n))
    out.has_sorted_indices = True
    return out


def _divisors(axes: list[Windows], divisor_override: int | None) -> IntArray:
    """The divisor of every N-d window, C order: the outer product of per-axis counts."""
    if divisor_override is not None:
        return np.full(math.prod(w.lo.size for w in axes), divisor_override, np.int64)
    total = np.ones((), np.int64)
    for w in axes:
        total = np.multiply.outer(total, w.divisor)
    return total.reshape(-1)


def windows_matrix(
    axes: list[Windows],
    divisor_override: int | None,
    dtype: Any,
    max_bytes: Any,
    what: str,
    alternative: str,
) -> sp.csr_array:
    """The averaging matrix of one plane: runs ⊗ …, each row divided by its divisor.

    ``kron_csr`` refuses by arithmetic (nnz = ∏ per-axis nnz) before building.
    """
    ftype = _dtype(dtype)
    factors = [_runs_matrix(w, ftype) for w in axes]
    ones = kron_csr(factors, max_bytes, what, alternative)
    divisors = _divisors(axes, divisor_override)
    ones.data = ftype(1) / np.repeat(divisors, np.diff(ones.indptr)).astype(ftype)
    return ones


def _sum_axis(a: np.ndarray[Any, Any], axis: int, w: Windows) -> np.ndarray[Any, Any]:
    """``out[o] = Σ a[lo[o] + t]`` for ``t < width[o]`` along ``axis``: a loop over taps."""
    shape = [1] * a.ndim
    shape[axis] = -1
    top = int(w.width.max(initial=0))
    out = np.take(a, w.lo, axis=axis)
    if top > 1:
        tmp = np.empty_like(out)
        for t in range(1, top):
            np.take(a, np.minimum(w.lo + t, w.n - 1), axis=axis, out=tmp)
            short = (w.width <= t).reshape(shape)
            if short.any():
                np.copyto(tmp, 0, where=short)  # outside the run: no term, not 0·value
            out += tmp
    return out


def windows_apply(
    arr: np.ndarray[Any, Any], axes: list[Windows], divisor_override: int | None
) -> np.ndarray[Any, Any]:
    """Average ``arr`` ``(*lead, *spatial)`` over the windows, one axis at a time."""
    rank = len(axes)
    lead = arr.shape[: arr.ndim - rank]
    block = arr.reshape(-1, *arr.shape[arr.ndim - rank :])
    with np.errstate(invalid="ignore", over="ignore"):  # inf, nan spread as torch
        for axis in range(rank, 0, -1):  # last spatial axis first
            block = _sum_axis(block, axis, axes[axis - 1])
        real = arr.real.dtype
        divisors = _divisors(axes, divisor_override).astype(real)
        block /= divisors.reshape(block.shape[1:])
    result: np.ndarray[Any, Any] = block.reshape(*lead, *block.shape[1:])
    return result


def _divisor(divisor_override: Any) -> int | None:
    if divisor_override is None:
        return None
    try:
        value = as_int(divisor_override, "divisor_override")
    except TypeError:
        raise TypeError(
            f"divisor_override must be a nonzero int or None; got {divisor_override!r}"
        ) from None
    if value == 0:
        raise ValueError(f"divisor_override must be a nonzero int or None; got {value}")
    return value


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool; got {value!r}")
    return bool(value)


def _pool_axes(
    spatial: tuple[int, ...],
    kernel_size: Any,
    stride: Any,
    padding: Any,
    ceil_mode: Any,
    count_include_pad: Any,
    divisor_override: Any,
    refuse: Callable[[list[int], tuple[int, ...], tuple[int, ...]], None] | None = None,
) -> tuple[list[Windows], int | None]:
    """The windows of every axis and the divisor override.

    ``refuse(counts, out, spatial)``, if given, sees the per-axis entry counts of the
    matrix (closed form) once the arguments are checked and before any window is built.
    """
    geo = pool_geometry(
        spatial, kernel_size, stride=stride, padding=padding, dilation=1, ceil_mode=ceil_mode
    )
    include = _bool(count_include_pad, "count_include_pad")
    divisor = _divisor(divisor_override)
    if refuse is not None:
        # Window o reads [o·s − p, o·s − p + k) ∩ [0, n): a conv's taps with dilation 1.
        counts = [
            tap_count(n, o, k, s, 1, p)
            for n, k, s, p, o in zip(
                geo.spatial, geo.kernel_size, geo.stride, geo.padding, geo.out, strict=True
            )
        ]
        refuse(counts, geo.out, geo.spatial)
    axes = [
        pool_windows(n, k, s, p, o, include)
        for n, k, s, p, o in zip(
            geo.spatial, geo.kernel_size, geo.stride, geo.padding, geo.out, strict=True
        )
    ]
    return axes, divisor


@float16_result("x")
def avg_pool(
    x: Any,
    kernel_size: Any,
    *,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray[Any, Any]:
    r"""Average pooling as ``torch.nn.functional.avg_pool{1,2,3}d``, in NumPy.

    Parameters
    ----------
    x : array_like, shape ``(N, C, *spatial)`` or ``(C, *spatial)``
        The number of spatial dims is the length of the first sequence among
        ``kernel_size``, ``stride``, ``padding``; with ints only ``x.ndim − 2`` (a
        batch, as torch's functional forms; a 2-d ``x`` is ``(C, L)``) — the rule of
        :func:`max_pool`. Integers become float64; float32 stays float32.
    kernel_size, stride : int or sequence of int
        ``stride`` defaults to ``kernel_size``.
    padding : int or sequence of int
        Implicit zeros on both sides, at most ``kernel_size // 2`` (torch's rule).
    ceil_mode : bool
        Ceiling instead of floor in the output size; the last window must still
        start inside the input or the left padding.
    count_include_pad : bool
        Divide by the window clipped to the padded input (True, torch's default)
        or to the input itself.
    divisor_override : int, optional
        A nonzero constant divisor instead (accepted for every rank, though torch's
        ``avg_pool1d`` lacks it: it is ``avg_pool2d`` on a ``(1, L)`` plane).

    Returns
    -------
    numpy.ndarray, shape ``(N, C, *out)`` or ``(C, *out)``
        ``x``'s dtype; ``out`` per axis as :func:`max_pool`'s with dilation 1.

    Raises
    ------
    ValueError
        For a bad hyperparameter, padding above half the kernel, a window larger
        than the padded input, a zero ``divisor_override`` or an ``x`` whose shape
        does not fit.
    TypeError
        For a non-integer hyperparameter, a non-bool flag or non-numeric ``x``.

    See Also
    --------
    avg_pool_matrix : the same pooling of one plane as a sparse matrix.
    adaptive_avg_pool : windows sized from the output shape instead.

    Notes
    -----
    Along one axis window ``o`` starts at ``a = o·s − p`` and ends at
    ``b = min(a + k, n + p)``; it sums the inputs in ``[max(a, 0), min(b, n))``.
    The output is that N-d sum divided by ``∏ (b − a)`` with ``count_include_pad``,
    by ``∏ (min(b, n) − max(a, 0))`` without, or by ``divisor_override``. Computed
    one axis at a time (window sums, the last axis first), then divided once.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> avg_pool(x, 2)[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    >>> avg_pool(np.array([[1.0, 2.0, 3.0]]), 3, stride=1, padding=1)
    array([[1.        , 2.        , 1.66666667]])
    >>> avg_pool(np.array([[1.0, 2.0, 3.0]]), 3, stride=1, padding=1, count_include_pad=False)
    array([[1.5, 2. , 2.5]])
    """
    arr = numeric_array(x, "x")
    rank, _ = split_planes(arr, _rank(kernel_size, stride, padding), "kernel_size")
    axes, divisor = _pool_axes(
        arr.shape[arr.ndim - rank :],
        kernel_size,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
        divisor_override,
    )
    return windows_apply(arr, axes, divisor)


def _plane_shape(spatial: Any, *fixing: Any) -> tuple[int, ...]:
    """``spatial`` as a shape; an int takes its rank from the first sequence in ``fixing``."""
    given = is_sequence(spatial)
    return spatial_shape(spatial, "spatial", ndim=None if given else (_rank(*fixing) or 1))


def avg_pool_matrix(
    spatial: Any,
    kernel_size: Any,
    *,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    dtype: Any = np.float64,
    max_bytes: Any = DEFAULT_MAX_BYTES,
) -> sp.csr_array:
    r"""Average pooling of one channel plane as a sparse matrix P: ``y.ravel() == P @ x.ravel()``.

    Parameters
    ----------
    spatial : int or sequence of int
        The plane's spatial shape (an int takes its rank from the first sequence
        among ``kernel_size``, ``stride``, ``padding``, else is 1-d).
    kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        As for :func:`avg_pool`.
    dtype : {float64, float32}
        The matrix's dtype.
    max_bytes : int
        Refuse (``MemoryError``) a matrix whose storage would be larger; default 4 GiB.

    Returns
    -------
    scipy.sparse.csr_array, shape ``(∏out, ∏spatial)``
        Row ``o`` holds ``1/divisor(o)`` on every input of window ``o``; sorted int32
        indices when they fit, no stored zeros. Channels and a batch share it:
        ``avg_pool(x).reshape(N, C, -1) == x.reshape(N, C, -1) @ P.T``.

    Raises
    ------
    ValueError, TypeError
        As :func:`avg_pool`, and for an unsupported ``dtype`` (TypeError).
    MemoryError
        When the matrix would need more than ``max_bytes``; nothing is allocated first.

    See Also
    --------
    avg_pool : the same pooling applied to arrays, fast.
    adaptive_avg_pool_matrix : windows sized from the output shape.

    Notes
    -----
    ``P[o, i] = 1/D(o)`` when input ``i`` lies in window ``o`` (per axis
    ``max(a, 0) <= i < min(a + k, n + p, n)`` with ``a = o·s − p``), else 0; ``D`` as
    in :func:`avg_pool`. The 0/1 pattern is the Kronecker product of the per-axis
    patterns, its nnz their product, checked against ``max_bytes`` before building.

    Examples
    --------
    >>> P = avg_pool_matrix(4, 2)
    >>> P.toarray()
    array([[0.5, 0.5, 0. , 0. ],
           [0. , 0. , 0.5, 0.5]])
    >>> P2 = avg_pool_matrix((4, 4), 2)
    >>> P2.shape, P2.nnz
    ((4, 16), 16)
    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(4, 4)
    >>> bool(np.array_equal(P2 @ x.ravel(), avg_pool(x[None, None], 2).ravel()))
    True
    """
    shape = _plane_shape(spatial, kernel_size, stride, padding)
    what, alternative = "avg_pool matrix", "the matrix-free convmat.avg_pool"
    ftype = _dtype(dtype)

    def refuse(counts: list[int], out: tuple[int, ...], spatial: tuple[int, ...]) -> None:
        refuse_kron(counts, out, spatial, ftype, max_bytes, what, alternative)

    axes, divisor = _pool_axes(
        shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, refuse
    )
    return windows_matrix(axes, divisor, ftype, max_bytes, what, alternative)


def adaptive_size(output_size: Any, spatial: tuple[int, ...]) -> tuple[int, ...]:
    """``output_size`` as one positive int per axis, ``None`` keeping that axis's size."""
    ndim = len(spatial)
    output_size = scalar(output_size)
    if isinstance(output_size, (str, bytes)):
        raise TypeError(f"output_size must be an int or a sequence of ints; got {output_size!r}")
    if is_sequence(output_size):
        if len(output_size) != ndim:
            raise ValueError(
                f"output_size must be an int or a sequence of {ndim} ints or None (one per "
                f"spatial dim); got {tuple(output_size)!r}"
            )
        values = list(output_size)
    else:
        values = [output_size] * ndim
    size = tuple(
        n if v is None else as_int(v, "output_size") for v, n in zip(values, spatial, strict=True)
    )
    if any(v < 1 for v in size):
        raise ValueError(f"output_size must be >= 1 on every axis; got {size}")
    return size


def adaptive_axes(spatial: tuple[int, ...], output_size: Any) -> list[Windows]:
    """The adaptive windows of every axis, ``spatial → output_size``."""
    size = adaptive_size(output_size, spatial)
    return [adaptive_windows(n, m) for n, m in zip(spatial, size, strict=True)]


@float16_result("x")
def adaptive_avg_pool(x: Any, output_size: Any) -> np.ndarray[Any, Any]:
    r"""Adaptive average pooling as ``torch.nn.functional.adaptive_avg_pool{1,2,3}d``.

    Parameters
    ----------
    x : array_like, shape ``(N, C, *spatial)`` or ``(C, *spatial)``
        The number of spatial dims is the length of a sequence ``output_size``, else
        ``x.ndim − 2`` (a 2-d ``x`` is ``(C, L)``) — :func:`upsample`'s rule.
        Integers become float64; float32 stays float32.
    output_size : int or sequence of (int or None)
        The output's spatial shape; ``None`` keeps that axis's size.

    Returns
    -------
    numpy.ndarray, shape ``(N, C, *output_size)`` or ``(C, *output_size)``
        ``x``'s dtype.

    Raises
    ------
    ValueError
        For an output size below 1, a sequence of the wrong length or an ``x``
        whose shape does not fit.
    TypeError
        For a non-integer output size or non-numeric ``x``.

    See Also
    --------
    adaptive_avg_pool_matrix : the same pooling as a sparse matrix.
    avg_pool : fixed windows.
    upsample : ``mode="area"`` is this pooling.

    Notes
    -----
    Along an axis ``n → m`` output ``o`` averages ``[⌊o·n/m⌋, ⌈(o+1)·n/m⌉)``; windows
    may overlap (and differ in length) when ``m`` does not divide ``n``. The N-d
    divisor is the product of the per-axis window lengths.

    Examples
    --------
    >>> import numpy as np
    >>> adaptive_avg_pool(np.array([[0.0, 1.0, 2.0, 3.0, 4.0]]), 3)
    array([[0.5, 2. , 3.5]])
    >>> adaptive_avg_pool(np.arange(12.0).reshape(1, 1, 3, 4), (1, None))[0, 0]
    array([[4., 5., 6., 7.]])
    """
    arr = numeric_array(x, "x")
    rank, _ = split_planes(arr, _rank(output_size), "output_size")
    axes = adaptive_axes(arr.shape[arr.ndim - rank :], output_size)
    return windows_apply(arr, axes, None)


def adaptive_avg_pool_matrix(
    spatial: Any, output_size: Any, *, dtype: Any = np.float64, max_bytes: Any = DEFAULT_MAX_BYTES
) -> sp.csr_array:
    r"""Adaptive average pooling of one plane as a sparse matrix: ``y.ravel() == P @ x.ravel()``.

    Parameters
    ----------
    spatial : int or sequence of int
        The plane's spatial shape (an int takes its rank from a sequence
        ``output_size``, else is 1-d).
    output_size : int or sequence of (int or None)
        As for :func:`adaptive_avg_pool`.
    dtype : {float64, float32}
        The matrix's dtype.
    max_bytes : int
        Refuse (``MemoryError``) a matrix whose storage would be larger; default 4 GiB.

    Returns
    -------
    scipy.sparse.csr_array, shape ``(∏output_size, ∏spatial)``
        Row ``o`` holds ``1/|window(o)|`` on its window; sorted int32 indices when
        they fit. Every row sums to 1.

    Raises
    ------
    ValueError, TypeError
        As :func:`adaptive_avg_pool`, and for an unsupported ``dtype`` (TypeError).
    MemoryError
        When the matrix would need more than ``max_bytes``; nothing is allocated first.

    See Also
    --------
    adaptive_avg_pool : the same pooling applied to arrays, fast.
    upsample_matrix : ``mode="area"`` is this matrix.

    Notes
    -----
    ``P[o, i] = 1/∏(e − b)`` when ``b <= i < e`` on every axis, with
    ``b = ⌊o·n/m⌋``, ``e = ⌈(o+1)·n/m⌉``; the Kronecker product of per-axis matrices
    up to rounding (each entry is the reciprocal of the product, rounded once).

    Examples
    --------
    >>> adaptive_avg_pool_matrix(5, 3).toarray()
    array([[0.5       , 0.5       , 0.        , 0.        , 0.        ],
           [0.        , 0.33333333, 0.33333333, 0.33333333, 0.        ],
           [0.        , 0.        , 0.        , 0.5       , 0.5       ]])
    """
    shape = _plane_shape(spatial, output_size)
    what, alternative = "adaptive_avg_pool matrix", "the matrix-free convmat.adaptive_avg_pool"
    size = adaptive_size(output_size, shape)
    ftype = _dtype(dtype)
    counts = [adaptive_nnz(n, m) for n, m in zip(shape, size, strict=True)]
    refuse_kron(counts, size, shape, ftype, max_bytes, what, alternative)
    axes = [adaptive_windows(n, m) for n, m in zip(shape, size, strict=True)]
    return windows_matrix(axes, None, ftype, max_bytes, what, alternative)
