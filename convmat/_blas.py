"""BLAS kernels the fast path needs and NumPy lacks: GEMM and AXPY in place, a transpose.

``np.matmul`` cannot accumulate into its output (BLAS ``beta = 1``) and has no
in-place ``y += a·x``; both matter when a convolution is a sum of one product per
kernel tap. ``np.copyto(b, a.T)`` walks one side with a large stride, element by
element; OpenBLAS's ``?omatcopy`` extension transposes in register tiles, several
times faster (when SciPy's BLAS is not OpenBLAS, NumPy does it).

SciPy ships the BLAS it was built with and exports its routines as C function
pointers (the ``__pyx_capi__`` of :mod:`scipy.linalg.cython_blas`, its public
Cython API; ``?omatcopy`` is found through the same module's file by the dynamic
linker); we call those through :mod:`ctypes` on NumPy views — no copy,
any leading dimension. Every call falls back to plain NumPy when a pointer is
unavailable or an operand does not fit BLAS (32-bit sizes, non-unit inner strides,
other dtypes), so results never depend on the route, only the speed does.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]

_INT_MAX = 2**31 - 1
_PREFIX: dict[np.dtype[Any], str] = {
    np.dtype(np.float32): "s",
    np.dtype(np.float64): "d",
    np.dtype(np.complex64): "c",
    np.dtype(np.complex128): "z",
}
_VOID_P = ctypes.c_void_p
_CHAR_P = ctypes.c_char_p
# Every argument travels as a raw address (integers through one small ctypes array
# per call): a call then costs a few microseconds, not the ~13 µs that building
# one ctypes object per argument took (chunked callers make hundreds of calls).
# ?gemm_(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
_GEMM_T = ctypes.CFUNCTYPE(None, _CHAR_P, _CHAR_P, *[_VOID_P] * 11)
# ?axpy_(n, alpha, x, incx, y, incy)
_AXPY_T = ctypes.CFUNCTYPE(None, *[_VOID_P] * 6)
# ?omatcopy_(order, trans, rows, cols, alpha, a, lda, b, ldb)
_OMATCOPY_ARGTYPES = [_CHAR_P, _CHAR_P, *[_VOID_P] * 7]
_INT = ctypes.sizeof(ctypes.c_int)
_INTS = {n: ctypes.c_int * n for n in (3, 4, 6)}


def _ints(*values: int) -> tuple[Any, int]:
    """The values as consecutive C ``int``s and the address of the first (``+ _INT`` per next).

    Keep the first item alive for the duration of the call.
    """
    array = _INTS[len(values)](*values)
    return array, ctypes.addressof(array)


def _pointer(name: str) -> int | None:
    """Address of ``scipy.linalg.cython_blas.<name>``, or ``None`` when unavailable."""
    try:
        from scipy.linalg import cython_blas

        capsule = cython_blas.__pyx_capi__[name]
        api = ctypes.pythonapi
        api.PyCapsule_GetName.restype = ctypes.c_char_p
        api.PyCapsule_GetName.argtypes = [ctypes.py_object]
        api.PyCapsule_GetPointer.restype = ctypes.c_void_p
        api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        address: int | None = api.PyCapsule_GetPointer(capsule, api.PyCapsule_GetName(capsule))
    except Exception:  # pragma: no cover - any failure means "use NumPy"
        return None
    return address or None


def _extension(name: str) -> Any:
    """OpenBLAS's ``<name>_`` (not in SciPy's Cython API) from the BLAS SciPy links, or ``None``.

    A library opened by ``dlopen`` resolves names through its dependencies too,
    so ``cython_blas``'s own file reaches the BLAS it was linked with; SciPy's
    OpenBLAS wheels prefix their symbols with ``scipy_``.
    """
    try:
        from scipy.linalg import cython_blas

        library = ctypes.CDLL(cython_blas.__file__)
    except Exception:  # pragma: no cover - any failure means "use NumPy"
        return None
    for symbol in (f"scipy_{name}_", f"{name}_"):
        fn = getattr(library, symbol, None)
        if fn is not None:
            fn.argtypes = _OMATCOPY_ARGTYPES
            fn.restype = None
            return fn
    return None  # pragma: no cover - not OpenBLAS


def _load() -> tuple[dict[np.dtype[Any], Any], ...]:
    gemm: dict[np.dtype[Any], Any] = {}
    axpy: dict[np.dtype[Any], Any] = {}
    omatcopy: dict[np.dtype[Any], Any] = {}
    for dtype, prefix in _PREFIX.items():
        address = _pointer(prefix + "gemm")
        if address is not None:
            gemm[dtype] = _GEMM_T(address)
        address = _pointer(prefix + "axpy")
        if address is not None:
            axpy[dtype] = _AXPY_T(address)
        # Complex ?omatcopy multiplies by alpha = 1 + 0i, which turns inf + 0i into inf + nan·i.
        fn = _extension(prefix + "omatcopy") if dtype.kind == "f" else None
        if fn is not None:
            omatcopy[dtype] = fn
    return gemm, axpy, omatcopy


_GEMM, _AXPY, _OMATCOPY = _load()
_ENABLED = True  # tests switch this off to check the NumPy fallback gives the same results
# alpha and beta live in fixed arrays: (0, 1) per dtype, addressed once.
_SCALARS = {dtype: np.array([0, 1], dtype=dtype) for dtype in _PREFIX}
_ZERO_ONE = {dtype: (a.ctypes.data, a.ctypes.data + a.itemsize) for dtype, a in _SCALARS.items()}


def _layout(a: Array) -> tuple[bool, int] | None:
    """``(row_major, leading dimension)`` of a 2-d view BLAS can read as it is, else ``None``.

    Row-major: unit stride along axis 1; column-major: unit stride along axis 0.
    """
    item = a.itemsize
    rows, columns = a.shape
    stride_r, stride_c = a.strides
    if stride_c == item or columns == 1:
        if rows == 1:
            return True, max(1, columns)
        if stride_r > 0 and stride_r % item == 0 and stride_r // item >= max(1, columns):
            return True, stride_r // item
    if stride_r == item or rows == 1:
        if columns == 1:
            return False, max(1, rows)
        if stride_c > 0 and stride_c % item == 0 and stride_c // item >= max(1, rows):
            return False, stride_c // item
    return None


def gemm(a: Array, b: Array, c: Array, *, accumulate: bool) -> None:
    """``c = a @ b`` (``c += a @ b`` when ``accumulate``), in place.

    ``a (M, K)``, ``b (K, L)``, ``c (M, L)`` share one dtype and may each be
    row-major or column-major views; ``c`` is written, never reallocated.
    """
    fn = _GEMM.get(c.dtype) if _ENABLED and a.dtype == b.dtype == c.dtype else None
    la = lb = lc = None
    if fn is not None and a.size and c.size:
        la, lb, lc = _layout(a), _layout(b), _layout(c)
    if (
        fn is None
        or la is None
        or lb is None
        or lc is None
        or max(*a.shape, *b.shape, la[1], lb[1], lc[1]) > _INT_MAX
    ):
        if accumulate:
            c += a @ b
        else:
            np.matmul(a, b, out=c)
        return
    m, k = a.shape
    n = b.shape[1]
    zero, one = _ZERO_ONE[c.dtype]
    # BLAS is column-major. A column-major c is c = op(a)·op(b); a row-major c is
    # read as cᵀ = op(b)ᵀ·op(a)ᵀ. A row-major operand is its own transpose in
    # column-major terms, so it takes "T" where a column-major one takes "N".
    if lc[0]:
        first, second, lf, ls, rows, cols = b, a, lb, la, n, m
        flags = (b"N" if lb[0] else b"T", b"N" if la[0] else b"T")
    else:
        first, second, lf, ls, rows, cols = a, b, la, lb, m, n
        flags = (b"T" if la[0] else b"N", b"T" if lb[0] else b"N")
    keep, p = _ints(rows, cols, k, lf[1], ls[1], lc[1])
    fn(flags[0], flags[1], p, p + _INT, p + 2 * _INT, one, first.ctypes.data, p + 3 * _INT,
       second.ctypes.data, p + 4 * _INT, one if accumulate else zero, c.ctypes.data,
       p + 5 * _INT)  # fmt: skip
    del keep


def axpy(alpha: Any, x: Array, y: Array) -> None:
    """``y += alpha · x`` in place, for 1-d views of one dtype (any strides of ``x``).

    Unlike reference BLAS, a zero ``alpha`` still multiplies (so ``0·inf`` is NaN, as
    in a product), by taking the NumPy route.
    """
    fn = _AXPY.get(y.dtype) if _ENABLED else None
    item = y.itemsize
    if (
        fn is None
        or alpha == 0
        or x.dtype != y.dtype
        or y.strides[0] != item
        or x.strides[0] % item
        or x.size > _INT_MAX
        or abs(x.strides[0] // item) > _INT_MAX
        or x.size == 0
    ):
        y += alpha * x
        return
    a = np.full(1, alpha, dtype=y.dtype)
    incx = x.strides[0] // item
    # BLAS walks a negative increment from the far end: hand it the lowest address.
    start = x.ctypes.data + (incx * (x.size - 1) * item if incx < 0 else 0)
    keep, p = _ints(x.size, incx, 1)
    fn(p, a.ctypes.data, start, p + _INT, y.ctypes.data, p + 2 * _INT)
    del keep


def transpose(a: Array, b: Array) -> None:
    """``b[...] = a.T`` for 2-d views of one dtype, each with unit stride along axis 1;
    for 3-d views ``b[i] = a[i].T`` for every ``i`` (one check, one BLAS call each).

    The values are copied exactly: BLAS serves real dtypes only (it multiplies by
    ``alpha = 1``, exact for every real value).
    """
    fn = _OMATCOPY.get(b.dtype) if _ENABLED and a.dtype == b.dtype else None
    batch = a.ndim == 3
    first_a, first_b = (a[0], b[0]) if batch and len(a) else (a, b)
    la = lb = None
    if fn is not None and a.size:
        la, lb = _layout(first_a), _layout(first_b)
    if (
        fn is None
        or la is None
        or lb is None
        or not (la[0] and lb[0])
        or max(*first_a.shape, la[1], lb[1]) > _INT_MAX
        or (batch and (a.strides[0] % a.itemsize or b.strides[0] % b.itemsize))
    ):
        np.copyto(b, np.swapaxes(a, -1, -2))
        return
    rows, cols = first_a.shape
    keep, p = _ints(rows, cols, la[1], lb[1])
    one = _ZERO_ONE[b.dtype][1]
    pa, pb = a.ctypes.data, b.ctypes.data
    step_a, step_b = (a.strides[0], b.strides[0]) if batch else (0, 0)
    for i in range(len(a) if batch else 1):
        fn(b"R", b"T", p, p + _INT, one, pa + i * step_a, p + 2 * _INT, pb + i * step_b,
           p + 3 * _INT)  # fmt: skip
    del keep
