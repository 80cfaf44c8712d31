"""Padding as a matrix: ``torch.nn.functional.pad`` in NumPy, and its 0/1 matrix per plane.

Along one axis of size ``n`` padded by ``(lo, hi)`` (negative entries crop), output
``o`` (``0 <= o < n + lo + hi``) reads the input at

    i = fold(o − lo)

with :func:`convmat._pattern._fold` — the same folding the padded convolutions use —
for ``constant`` (no source: the padded value), ``reflect`` and ``replicate``. torch's
``circular`` mode crops first and then wraps around the *cropped* extent
``n' = n + min(lo, 0) + min(hi, 0)``: ``i = max(−lo, 0) + (o − max(lo, 0)) mod n'``
(the two orders agree unless one side pads and the other crops). The N-d map is the
product of the per-axis ones, in C order; both :func:`pad` and :func:`pad_matrix`
read these per-axis sources and nothing else.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from convmat._args import as_int, choice, float16_result, nonempty, numeric_array, spatial_shape
from convmat._matrix import DEFAULT_MAX_BYTES, _index_dtype, check_max_bytes
from convmat._pattern import _fold, tap_count

PAD_MODES = ("constant", "reflect", "replicate", "circular")

IntArray = np.ndarray[Any, np.dtype[np.signedinteger[Any]]]


def _mode(mode: Any) -> str:
    return choice(mode, PAD_MODES, "mode")


def _pairs(pad: Any, ndim: int) -> tuple[tuple[int, int], ...]:
    """torch's flat ``pad`` (last axis first) as one ``(lo, hi)`` pair per axis, first axis first.

    Axes that ``pad`` does not reach get ``(0, 0)``.
    """
    if isinstance(pad, (str, bytes)) or not isinstance(pad, (Sequence, np.ndarray)):
        raise TypeError(
            f"pad must be a sequence of ints (left, right, top, bottom, ...); got {pad!r}"
        )
    flat = tuple(as_int(v, "pad") for v in pad)
    if len(flat) % 2:
        raise ValueError(
            f"pad must have an even number of entries (a (low, high) pair per axis, last axis "
            f"first); got {flat}"
        )
    if len(flat) // 2 > ndim:
        raise ValueError(
            f"pad must cover at most the {ndim} axes of the input ({2 * ndim} entries); "
            f"got {len(flat)} entries"
        )
    pairs = [(flat[2 * j], flat[2 * j + 1]) for j in range(len(flat) // 2)][::-1]
    return ((0, 0),) * (ndim - len(pairs)) + tuple(pairs)


def _check(shape: tuple[int, ...], pairs: tuple[tuple[int, int], ...], mode: str) -> None:
    """torch's limits per mode, on every padded axis (raised before any work)."""
    for n, (lo, hi) in zip(shape, pairs, strict=True):
        if (lo, hi) == (0, 0):  # an axis left alone (a batch may be empty)
            continue
        out = n + lo + hi
        if mode == "reflect" and max(lo, hi) >= n:
            raise ValueError(
                f"pad must be < the input size on every axis for mode='reflect'; got pad "
                f"{(lo, hi)} for size {n}"
            )
        if mode == "circular":
            if max(lo, hi) > n:
                raise ValueError(
                    f"pad must be <= the input size on every axis for mode='circular'; got pad "
                    f"{(lo, hi)} for size {n}"
                )
            kept = n + min(lo, 0) + min(hi, 0)
            if out > 0 and max(lo, hi, 0) > kept:
                raise ValueError(
                    f"pad must be <= the size left after cropping for mode='circular' (torch "
                    f"crops first, then wraps once); got pad {(lo, hi)} for size {n}, {kept} "
                    f"left after cropping"
                )
        if mode == "constant" and n + min(lo, 0) + min(hi, 0) < 0:
            raise ValueError(
                f"pad must crop at most the input size on every axis for mode='constant'; got "
                f"pad {(lo, hi)} for size {n}"
            )
        least = 1 if mode in ("reflect", "replicate") else 0
        if out < least:
            raise ValueError(
                f"pad must leave an output size >= {least} on every axis for mode={mode!r}; "
                f"got pad {(lo, hi)} for size {n} (output {out})"
            )


def _sources(n: int, lo: int, hi: int, mode: str) -> IntArray:
    """Input index read by every output position along one axis (``-1``: constant padding)."""
    if mode == "circular":
        kept = n + min(lo, 0) + min(hi, 0)
        o = np.arange(n + lo + hi, dtype=np.int64) - max(lo, 0)
        return max(-lo, 0) + _fold(o, max(kept, 1), "circular")
    o = np.arange(n + lo + hi, dtype=np.int64) - lo
    return _fold(o, n, "zeros" if mode == "constant" else mode)


def _value(value: Any, dtype: np.dtype[Any]) -> Any:
    allowed = numbers.Complex if dtype.kind == "c" else numbers.Real
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, allowed):
        kind = "a number" if dtype.kind == "c" else "a real number"
        raise TypeError(f"value must be {kind}; got {value!r}")
    return value


@float16_result("x")
def pad(x: Any, pad: Any, *, mode: str = "constant", value: Any = 0.0) -> np.ndarray[Any, Any]:
    r"""Pad (or crop) the last axes of ``x``: ``torch.nn.functional.pad`` in NumPy.

    Parameters
    ----------
    x : array_like
        Any shape; the last ``len(pad) // 2`` axes are padded. Integer input becomes
        float64; float32 stays float32. A ``torch.Tensor`` is read as an array.
    pad : sequence of int
        torch's flat form, last axis first: ``(left, right)``, ``(left, right, top,
        bottom)``, … Negative entries crop that side.
    mode : {"constant", "reflect", "replicate", "circular"}
        As torch. ``reflect`` mirrors without repeating the edge, ``replicate``
        repeats it, ``circular`` wraps around.
    value : number
        The fill of ``constant`` mode; other modes take no value (it must be 0).

    Returns
    -------
    numpy.ndarray
        Shape of ``x`` with every padded axis ``n`` turned into ``n + left + right``.

    Raises
    ------
    ValueError
        For an odd-length ``pad``, one longer than ``2·x.ndim``, an unknown ``mode``, a
        ``value`` with a non-constant mode, or a pad beyond torch's limits: ``reflect``
        needs every entry ``< n``, ``circular`` every entry ``<= n`` (and, as torch
        crops first, ``<=`` what is left after cropping), ``reflect`` and ``replicate``
        an output of at least 1, ``constant`` and ``circular`` of at least 0.
    TypeError
        For a non-integer ``pad`` entry, a non-numeric ``x`` or ``value``.

    See Also
    --------
    pad_matrix : the same map as a sparse 0/1 matrix per plane.

    Notes
    -----
    Along each padded axis output ``o`` copies input ``fold(o − left)``: the identity
    inside, the mirror (``reflect``), the clamp (``replicate``) or nothing (``constant``,
    the cell holds ``value``). ``circular`` wraps around the extent left after cropping:
    ``max(−left, 0) + (o − max(left, 0)) mod n'``. Unlike torch, every mode pads any
    number of axes of an array of any rank; on the shapes torch accepts the results are
    the same. (torch's ``circular`` reads uninitialised memory when one side pads by
    more than is left after the other side's crop; that is refused here.)

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(1.0, 5.0)
    >>> pad(x, (2, 1), mode="reflect")
    array([3., 2., 1., 2., 3., 4., 3.])
    >>> pad(x, (1, -2), value=9)
    array([9., 1., 2.])
    >>> pad(np.arange(4.0).reshape(2, 2), (1, 1, 0, 1), mode="replicate")
    array([[0., 0., 1., 1.],
           [2., 2., 3., 3.],
           [2., 2., 3., 3.]])
    """
    arr = numeric_array(x, "x")
    pairs = _pairs(pad, arr.ndim)
    nonempty(arr.shape, len(pad) // 2)  # the padded axes are spatial, the one before channels
    mode = _mode(mode)
    fill = _value(value, arr.dtype)
    if mode != "constant" and fill != 0:
        raise ValueError(
            f"value must be 0 for mode={mode!r} (it pads with no value); got {value!r}"
        )
    _check(arr.shape, pairs, mode)
    if mode == "constant":
        inner = tuple(
            slice(max(-lo, 0), n - max(-hi, 0))
            for n, (lo, hi) in zip(arr.shape, pairs, strict=True)
        )
        where = tuple((max(lo, 0), max(hi, 0)) for lo, hi in pairs)
        return np.pad(arr[inner], where, mode="constant", constant_values=fill)
    out = arr
    for axis, (n, (lo, hi)) in enumerate(zip(arr.shape, pairs, strict=True)):
        if lo or hi:
            out = np.take(out, _sources(n, lo, hi, mode), axis=axis)
    return out if out is not arr else arr.copy()


def pad_matrix(
    spatial: Any,
    pad: Any,
    *,
    mode: str = "constant",
    dtype: Any = np.float64,
    max_bytes: Any = DEFAULT_MAX_BYTES,
) -> sp.csr_array:
    r"""The 0/1 matrix P of padding one channel plane: ``pad(x, pad).ravel() == P @ x.ravel()``.

    Parameters
    ----------
    spatial : int or sequence of int
        The plane's shape; ``pad`` covers its last ``len(pad) // 2`` axes.
    pad : sequence of int
        torch's flat form, last axis first, as :func:`pad`; negative entries crop.
    mode : {"constant", "reflect", "replicate", "circular"}
    dtype : dtype
        Of the stored ones (default float64).
    max_bytes : int
        Refuse (``MemoryError``) a matrix whose storage would be larger; default 4 GiB.

    Returns
    -------
    scipy.sparse.csr_array, shape ``(∏out, ∏spatial)``
        At most one 1 per row, int32 indices when they fit. In ``constant`` mode the
        rows of padded cells are empty; in the other modes every row holds one 1.

    Raises
    ------
    ValueError, TypeError
        As :func:`pad`, and for a bad ``spatial``.
    MemoryError
        When the matrix would need more than ``max_bytes``; nothing is allocated first.

    See Also
    --------
    pad, conv_matrix

    Notes
    -----
    ``P[o, fold(o − left)] = 1`` with the per-axis map of :func:`pad`, the N-d index
    in C order. Constant padding is *affine*, not linear: with ``v`` the value,

    .. math::

        \operatorname{pad}(x, p, v) = P x + v\,(\mathbf{1} - P\,\mathbf{1}),

    the second term filling exactly the empty rows. A batch ``X`` of planes (one per
    row) maps as ``X @ P.T``. ``P.T`` sums the copies back onto their sources (the
    adjoint); for ``replicate`` it piles the whole border onto the edge.

    Examples
    --------
    >>> import numpy as np
    >>> P = pad_matrix(3, (1, 2), mode="reflect")
    >>> P.toarray()
    array([[0., 1., 0.],
           [1., 0., 0.],
           [0., 1., 0.],
           [0., 0., 1.],
           [0., 1., 0.],
           [1., 0., 0.]])
    >>> Z = pad_matrix((2, 2), (1, 0, 0, 1))
    >>> x = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> (Z @ x.ravel() + 7 * (1 - Z @ np.ones(4))).reshape(3, 3)
    array([[7., 1., 2.],
           [7., 3., 4.],
           [7., 7., 7.]])
    >>> pad(x, (1, 0, 0, 1), value=7)
    array([[7., 1., 2.],
           [7., 3., 4.],
           [7., 7., 7.]])
    """
    shape = spatial_shape(spatial, "spatial")
    pairs = _pairs(pad, len(shape))
    mode = _mode(mode)
    np_dtype = np.dtype(dtype)
    if np_dtype.kind not in "fc":
        raise TypeError(f"dtype must be a float or complex dtype; got {np_dtype}")
    _check(shape, pairs, mode)
    # Refused from arithmetic: an output cell has a source on every axis but where a
    # constant pad reads outside [0, n) (one tap of a stride-1 window, in closed form).
    out_shape = tuple(n + lo + hi for n, (lo, hi) in zip(shape, pairs, strict=True))
    mat_shape = (math.prod(out_shape), math.prod(shape))
    nnz = math.prod(
        tap_count(n, m, 1, 1, 1, lo) if mode == "constant" else m
        for n, m, (lo, _) in zip(shape, out_shape, pairs, strict=True)
    )
    check_max_bytes(nnz, mat_shape, np_dtype, max_bytes, "pad matrix", "convmat.pad")
    sources = [_sources(n, lo, hi, mode) for n, (lo, hi) in zip(shape, pairs, strict=True)]
    idx = _index_dtype(nnz, mat_shape)
    # Flat column of every output cell; any axis without a source makes the cell empty.
    column = np.zeros(out_shape, dtype=np.int64)
    valid = np.ones(out_shape, dtype=bool)
    for axis, s in enumerate(sources):
        along = (slice(None),) + (None,) * (len(shape) - axis - 1)
        column += np.maximum(s, 0)[along] * math.prod(shape[axis + 1 :])
        valid &= (s >= 0)[along]
    keep = valid.reshape(-1)
    indptr = np.zeros(mat_shape[0] + 1, dtype=idx)
    np.cumsum(keep, out=indptr[1:])
    indices = column.reshape(-1)[keep].astype(idx)
    matrix = sp.csr_array((np.ones(nnz, dtype=np_dtype), indices, indptr), shape=mat_shape)
    matrix.has_sorted_indices = True
    return matrix
