"""Two BLAS kernels the fast path needs and NumPy does not expose: GEMM and AXPY in place.

``np.matmul`` cannot accumulate into its output (BLAS ``beta = 1``) and has no
in-place ``y += a·x``; both matter when a convolution is a sum of one product per
kernel tap. SciPy ships the BLAS it was built with and exports its routines as C
function pointers (the ``__pyx_capi__`` of :mod:`scipy.linalg.cython_blas`, its
public Cython API); we call those through :mod:`ctypes` on NumPy views — no copy,
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
_INT_P = ctypes.POINTER(ctypes.c_int)
_GEMM_T = ctypes.CFUNCTYPE(
    None,
    ctypes.c_char_p,
    ctypes.c_char_p,
    _INT_P,
    _INT_P,
    _INT_P,
    ctypes.c_void_p,
    ctypes.c_void_p,
    _INT_P,
    ctypes.c_void_p,
    _INT_P,
    ctypes.c_void_p,
    ctypes.c_void_p,
    _INT_P,
)
_AXPY_T = ctypes.CFUNCTYPE(
    None, _INT_P, ctypes.c_void_p, ctypes.c_void_p, _INT_P, ctypes.c_void_p, _INT_P
)


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


def _load() -> tuple[dict[np.dtype[Any], Any], dict[np.dtype[Any], Any]]:
    gemm: dict[np.dtype[Any], Any] = {}
    axpy: dict[np.dtype[Any], Any] = {}
    for dtype, prefix in _PREFIX.items():
        address = _pointer(prefix + "gemm")
        if address is not None:
            gemm[dtype] = _GEMM_T(address)
        address = _pointer(prefix + "axpy")
        if address is not None:
            axpy[dtype] = _AXPY_T(address)
    return gemm, axpy


_GEMM, _AXPY = _load()
_ENABLED = True  # tests switch this off to check the NumPy fallback gives the same results


def _rows(a: Array) -> int | None:
    """Leading dimension (in elements) of a 2-d view with a unit inner stride, else ``None``."""
    item, columns = a.itemsize, int(a.shape[1])
    if columns > 1 and a.strides[1] != item:
        return None
    if a.shape[0] == 1:
        return max(1, columns)
    stride = int(a.strides[0])
    if stride % item or stride // item < max(1, columns):
        return None
    return stride // item


def gemm(a: Array, b: Array, c: Array, *, accumulate: bool) -> None:
    """``c = a @ b`` (``c += a @ b`` when ``accumulate``), in place.

    ``a (M, K)``, ``b (K, L)``, ``c (M, L)`` share one dtype; ``c`` is written,
    never reallocated.
    """
    fn = _GEMM.get(c.dtype) if _ENABLED and a.dtype == b.dtype == c.dtype else None
    lda, ldb, ldc = _rows(a), _rows(b), _rows(c)
    if (
        fn is None
        or lda is None
        or ldb is None
        or ldc is None
        or max(*a.shape, *b.shape, lda, ldb, ldc) > _INT_MAX
        or 0 in a.shape
        or 0 in c.shape
    ):
        if accumulate:
            c += a @ b
        else:
            np.matmul(a, b, out=c)
        return
    # Row-major c = a·b is column-major cᵀ = bᵀ·aᵀ: the views are passed as they are.
    m, k = a.shape
    n = b.shape[1]
    one = np.ones(1, dtype=c.dtype)
    beta = np.full(1, 1 if accumulate else 0, dtype=c.dtype)
    fn(
        b"N", b"N", ctypes.c_int(n), ctypes.c_int(m), ctypes.c_int(k), one.ctypes.data,
        b.ctypes.data, ctypes.c_int(ldb), a.ctypes.data, ctypes.c_int(lda),
        beta.ctypes.data, c.ctypes.data, ctypes.c_int(ldc),
    )  # fmt: skip


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
    fn(ctypes.c_int(x.size), a.ctypes.data, start, ctypes.c_int(incx), y.ctypes.data,
       ctypes.c_int(1))  # fmt: skip
