"""Upsampling as matrices: every mode of ``torch.nn.functional.interpolate``, and bed of nails.

Every mode is separable. Along one axis, resized from ``n`` to ``m``, output
``o`` reads a few input positions ("taps") with fixed weights: one for
``nearest``, ``nearest-exact`` and ``bed_of_nails``, two for ``linear``, four
for cubic. :func:`axis_taps` computes them once, with PyTorch's exact
coordinate arithmetic; both paths read them:

* :func:`upsample_matrix` — the taps as a 1-d CSR matrix per axis, and the
  N-d matrix as their Kronecker product (C-order flattening makes
  ``y.ravel() == (A₀ ⊗ A₁ ⊗ …) @ x.ravel()``);
* :func:`upsample` — one gather-and-weight pass per axis over the array,
  the last axis first, as torch's separable CPU kernel evaluates it.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from convmat._args import (
    axes_count,
    choice,
    float16_result,
    is_sequence,
    ntuple,
    numeric_array,
    scalar,
    spatial_shape,
    split_planes,
)
from convmat._matrix import DEFAULT_MAX_BYTES, _index_dtype, check_max_bytes
from convmat._shapes import upsample_length

MODES = (
    "nearest",
    "nearest-exact",
    "linear",
    "bilinear",
    "bicubic",
    "trilinear",
    "area",
    "bed_of_nails",
)
#: The interpolating modes, which take ``align_corners``, and their fixed number of spatial dims.
INTERPOLATING = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}
#: Keys' cubic convolution parameter, as torch (``A = −0.75``).
CUBIC_A = -0.75
#: The modes that take ``antialias=True``, with their filter's support (half-width, in samples).
ANTIALIAS = {"bilinear": 1, "bicubic": 2}
#: Keys' parameter of torch's anti-aliased bicubic filter (Pillow's, ``A = −0.5``).
CUBIC_AA_A = -0.5

IntArray = np.ndarray[Any, np.dtype[np.int64]]
FloatArray = np.ndarray[Any, np.dtype[np.floating[Any]]]


class Resize(NamedTuple):
    """A validated resize: mode, sizes, per-axis scale factors (``None`` when a size was given)."""

    mode: str
    in_spatial: tuple[int, ...]
    out_spatial: tuple[int, ...]
    scales: tuple[float | None, ...]
    align_corners: bool
    antialias: bool = False


def _mode(mode: Any) -> str:
    return choice(mode, MODES, "mode")


def spatial_rank(mode: Any, size: Any, scale_factor: Any) -> int | None:
    """The number of spatial dims the arguments fix, if any (checks ``mode`` first)."""
    fixed = INTERPOLATING.get(_mode(mode))
    if fixed is not None:
        return fixed
    return axes_count(size, scale_factor)


def _scale_factors(scale_factor: Any, ndim: int) -> tuple[float, ...]:
    scale_factor = scalar(scale_factor)
    if is_sequence(scale_factor):
        if len(scale_factor) != ndim:
            raise ValueError(
                f"scale_factor must be a number or a sequence of {ndim} numbers (one per spatial "
                f"dim); got {tuple(scale_factor)!r}"
            )
        values = list(scale_factor)
    else:
        values = [scale_factor] * ndim
    values = [scalar(v) for v in values]
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
            raise TypeError(f"scale_factor must be a real number or a sequence of them; got {v!r}")
    scales = tuple(float(v) for v in values)
    if not all(math.isfinite(v) and v > 0 for v in scales):
        raise ValueError(f"scale_factor must be finite and > 0 on every axis; got {scales}")
    return scales


def _antialias(antialias: Any, mode: str) -> bool:
    if not isinstance(antialias, (bool, np.bool_)):
        raise TypeError(f"antialias must be a bool; got {antialias!r}")
    if antialias and mode not in ANTIALIAS:
        raise ValueError(
            f"antialias must be False for mode={mode!r} (torch anti-aliases bilinear and bicubic "
            f"only); got True"
        )
    return bool(antialias)


def resize_plan(
    spatial: Any,
    *,
    size: Any,
    scale_factor: Any,
    mode: Any,
    align_corners: Any,
    antialias: Any = False,
) -> Resize:
    """Check the arguments of :func:`upsample_matrix` / :func:`upsample` and size the output."""
    mode = _mode(mode)
    aa = _antialias(antialias, mode)
    fixed = INTERPOLATING.get(mode)
    given = is_sequence(spatial)
    rank = None if given else spatial_rank(mode, size, scale_factor)
    shape = spatial_shape(spatial, "spatial", ndim=rank)
    if fixed is not None and len(shape) != fixed:
        raise ValueError(
            f"spatial must have {fixed} dims for mode={mode!r}; got {shape} (linear is 1-d, "
            f"bilinear and bicubic 2-d, trilinear 3-d)"
        )
    if fixed is None:
        if align_corners is not None:
            raise ValueError(
                f"align_corners must be None for mode={mode!r} (it applies to linear, bilinear, "
                f"bicubic and trilinear only); got {align_corners!r}"
            )
        corners = False
    elif align_corners is None:
        corners = False
    elif isinstance(align_corners, (bool, np.bool_)):
        corners = bool(align_corners)
    else:
        raise TypeError(f"align_corners must be a bool or None; got {align_corners!r}")
    if (size is None) == (scale_factor is None):
        raise ValueError(
            "size or scale_factor must be given, exactly one of them; got "
            + ("neither" if size is None else f"size={size!r} and scale_factor={scale_factor!r}")
        )
    ndim = len(shape)
    if size is not None:
        out = ntuple(size, ndim, "size", minimum=1)
        scales: tuple[float | None, ...] = (None,) * ndim
        if mode == "bed_of_nails" and any(m % n for m, n in zip(out, shape, strict=True)):
            raise ValueError(
                f"size must be a multiple of the input on every axis for mode='bed_of_nails'; "
                f"got size {out} for input {shape}"
            )
    else:
        factors = _scale_factors(scale_factor, ndim)
        if mode == "bed_of_nails" and not all(f.is_integer() for f in factors):
            raise ValueError(
                f"scale_factor must be a whole number on every axis for mode='bed_of_nails'; "
                f"got {factors}"
            )
        out = tuple(upsample_length(n, f) for n, f in zip(shape, factors, strict=True))
        if any(m < 1 for m in out):
            raise ValueError(
                f"scale_factor must give an output of at least 1 on every axis; got "
                f"scale_factor {factors} for input {shape} (output {out})"
            )
        scales = factors
    return Resize(mode, shape, out, scales, corners, aa)


def _floorf(v: FloatArray) -> IntArray:
    """``floorf`` of torch's kernels: the coordinate is rounded to float32 first."""
    return np.floor(v.astype(np.float32)).astype(np.int64)


def _ratio(n: int, m: int, align_corners: bool, scale: float | None, ftype: Any) -> Any:
    """``area_pixel_compute_scale``: input step per output step, in the coordinate precision."""
    if align_corners:
        return ftype(n - 1) / ftype(m - 1) if m > 1 else ftype(0)
    if scale is not None:
        return ftype(1.0 / scale)
    return ftype(n) / ftype(m)


def _two_product(a: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``a·b`` in float64 and its exact rounding error (Dekker's product, Veltkamp split)."""

    def split(v: FloatArray) -> tuple[FloatArray, FloatArray]:
        c = (2.0**27 + 1) * v
        hi = c - (c - v)
        return hi, v - hi

    p = a * b
    (ah, al), (bh, bl) = split(a), split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _source(ratio: Any, m: int, align_corners: bool, ftype: Any) -> FloatArray:
    """Source coordinate of every output index (``area_pixel_compute_source_index``).

    ``ratio·(o + ½) − ½`` is rounded once, as the fused multiply-add of torch's
    compiled kernel does: the product is split exactly (error-free transformation)
    and the subtraction of ½ cancels into the error term, so coordinates that land
    a hair off an integer keep torch's sign — which decides floors and zero weights.
    """
    o = np.arange(m, dtype=np.float64)
    if align_corners:
        aligned: FloatArray = (ratio * o.astype(ftype)).astype(ftype)
        return aligned
    p, err = _two_product(np.full(m, np.float64(ratio)), o + 0.5)
    head = p - 0.5
    back = head - p  # Knuth's two-sum: head + tail == p − ½ exactly
    tail = (p - (head - back)) + (-0.5 - back)
    return (head + (tail + err)).astype(ftype)


def _keys_near(x: FloatArray, a: Any) -> FloatArray:
    """Keys' cubic for ``|x| <= 1`` (torch's ``cubic_convolution1``)."""
    result: FloatArray = ((a + 2) * x - (a + 3)) * x * x + 1
    return result


def _keys_far(x: FloatArray, a: Any) -> FloatArray:
    """Keys' cubic for ``1 < |x| < 2`` (torch's ``cubic_convolution2``)."""
    result: FloatArray = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return result


def keys_cubic(x: Any) -> FloatArray:
    """Keys' cubic convolution kernel ``W(x)`` with ``A = −0.75`` (zero for ``|x| >= 2``)."""
    v = np.abs(np.asarray(x, dtype=np.float64))
    a = np.float64(CUBIC_A)
    result: FloatArray = np.where(v <= 1, _keys_near(v, a), np.where(v < 2, _keys_far(v, a), 0.0))
    return result


def _cubic_weights(t: FloatArray) -> FloatArray:
    """Weights of the four taps around a fractional offset ``t``, in ``t``'s precision."""
    ftype = t.dtype.type
    a = ftype(CUBIC_A)
    s = 1 - t
    taps = [_keys_far(t + 1, a), _keys_near(t, a), _keys_near(s, a), _keys_far(s + 1, a)]
    return np.stack(taps, axis=1).astype(ftype)


def _nearest_idx(n: int, m: int, scale: float | None, exact: bool) -> IntArray:
    """``nearest_idx`` / ``nearest_exact_idx`` of ``UpSample.h``: float32 step, product rounded.

    ``nearest`` copies an axis of unchanged size and halves indices for exactly
    twice the size, whatever the scale factor says.
    """
    o = np.arange(m)
    if not exact and m == n:
        return o
    if not exact and m == 2 * n:
        return o >> 1
    ratio = np.float64(_ratio(n, m, False, scale, np.float32))
    return np.minimum(_floorf((o + 0.5 if exact else o) * ratio), n - 1)


def legacy_nearest(plan: Resize) -> bool:
    """Whether torch's CPU kernel takes :func:`_nearest_idx`, not its separable kernel.

    Measured on torch 2.13 (float32 and float64, any batch and channel count):
    2-d ``nearest`` and ``nearest-exact`` whose output height plus width is at
    most 128. Elsewhere indices come from the separable kernel, in the data's precision.
    """
    return (
        plan.mode in ("nearest", "nearest-exact")
        and len(plan.out_spatial) == 2
        and sum(plan.out_spatial) <= 128
    )


def _aa_filter(x: FloatArray, mode: str) -> FloatArray:
    """torch's anti-aliasing filters in ``x``'s precision: the tent, or Keys' cubic with A = −½."""
    ftype = x.dtype.type
    v = np.abs(x)
    if mode == "bilinear":
        tent: FloatArray = np.where(v < 1, 1 - v, 0).astype(ftype)
        return tent
    a = ftype(CUBIC_AA_A)
    with np.errstate(over="ignore", invalid="ignore"):
        near, far = _keys_near(v, a), _keys_far(v, a)
    cubic: FloatArray = np.where(v < 1, near, np.where(v < 2, far, 0)).astype(ftype)
    return cubic


def _aa_taps(
    n: int, m: int, mode: str, align_corners: bool, scale: float | None, ftype: Any
) -> tuple[IntArray, FloatArray]:
    """Taps of torch's anti-aliased (separable) resampling, ``_compute_indices_weights_aa``.

    The step ``r`` is :func:`_ratio`'s (``align_corners`` changes only ``r``: centres
    stay at ``r·(o + ½)``); when shrinking (``r > 1``) the filter is stretched by
    ``r`` and its support widened to ``r`` times the plain one. Output ``o`` reads
    ``[xmin, xmin + xsize)`` with the filter's weights normalised to sum 1; the
    mixed float32/float64 arithmetic of the C++ source is reproduced for float32.
    Taps past ``xsize`` are marked absent with index −1.
    """
    ratio = _ratio(n, m, align_corners, scale, ftype)
    half = ANTIALIAS[mode]
    wide = ratio >= 1
    support = ftype(half * np.float64(ratio)) if wide else ftype(half)
    invscale = ftype(1.0 / np.float64(ratio)) if wide else ftype(1)
    width = math.ceil(support) * 2 + 1
    o = np.arange(m, dtype=np.float64)
    center = (np.float64(ratio) * (o + 0.5)).astype(ftype)
    xmin = np.maximum(np.trunc((center - support).astype(np.float64) + 0.5), 0).astype(np.int64)
    xmax = np.trunc((center + support).astype(np.float64) + 0.5).astype(np.int64)
    xsize = np.clip(np.minimum(xmax, n) - xmin, 0, width)
    j = np.arange(width)
    taps = xmin[:, None] + j
    valid = j < xsize[:, None]
    offset = (taps.astype(ftype) - center[:, None]).astype(ftype)
    arg = ((offset.astype(np.float64) + 0.5) * np.float64(invscale)).astype(ftype)
    w = np.where(valid, _aa_filter(arg, mode), ftype(0)).astype(ftype)
    total = np.zeros(m, ftype)
    for t in range(width):  # torch's running float sum, tap by tap
        total = (total + w[:, t]).astype(ftype)
    safe = np.where(total != 0, total, ftype(1)).astype(ftype)
    w = (w / safe[:, None]).astype(ftype)
    return np.where(valid, taps, -1), w


def axis_taps(
    n: int,
    m: int,
    *,
    mode: str,
    align_corners: bool,
    scale: float | None,
    ftype: Any,
    legacy: bool = False,
    antialias: bool = False,
) -> tuple[IntArray, FloatArray]:
    """Input indices and weights, each ``(m, taps)``, of one axis resized from ``n`` to ``m``.

    Reproduces ``aten/src/ATen/native/UpSample.h`` and the separable CPU kernel:
    coordinates in ``ftype`` (torch's ``opmath`` type: float32 for float32 data),
    floors taken of the float32-rounded coordinate, indices clamped to the input;
    ``legacy`` selects the nearest-neighbour formulas of :func:`legacy_nearest`.
    Columns never decrease along a row; duplicates and zero weights are kept
    (the fast path computes them, as torch does). Index −1 marks an absent tap
    (past a row's window: ``area`` and ``antialias``), always after the present ones.
    """
    o = np.arange(m)
    if mode == "area":
        from convmat._avgpool import adaptive_windows

        win = adaptive_windows(n, m)
        j = np.arange(int(win.width.max()))
        present = j < win.width[:, None]
        idx = np.where(present, win.lo[:, None] + j, -1)
        return idx, np.where(present, 1 / win.divisor[:, None], 0).astype(ftype)
    if antialias:
        if m == n:  # torch's separable kernel skips an axis of unchanged size
            return o[:, None], np.ones((m, 1), ftype)
        return _aa_taps(n, m, mode, align_corners, scale, ftype)
    if mode == "bed_of_nails":
        s = m // n
        return (o // s)[:, None], (o % s == 0).astype(ftype)[:, None]
    if legacy:
        return _nearest_idx(n, m, scale, mode == "nearest-exact")[:, None], np.ones((m, 1), ftype)
    ratio = _ratio(n, m, align_corners, scale, ftype)
    if mode == "nearest":
        idx = np.minimum(_floorf(ratio * o.astype(ftype)), n - 1)
        return idx[:, None], np.ones((m, 1), ftype)
    if mode == "nearest-exact":
        src = np.maximum(_source(ratio, m, False, ftype), 0)
        idx = np.minimum(_floorf(src.astype(np.float64) + 0.5), n - 1)
        return idx[:, None], np.ones((m, 1), ftype)
    if mode == "bicubic":
        src = _source(ratio, m, align_corners, ftype)
        base = np.minimum(_floorf(src), n - 1)
        t = np.clip(src - base.astype(ftype), 0, 1).astype(ftype)
        return np.clip(base[:, None] + np.arange(-1, 3), 0, n - 1), _cubic_weights(t)
    if m == n:  # torch copies a linear axis of unchanged size
        return np.stack([o, o], axis=1), np.tile(np.array([1, 0], ftype), (m, 1))
    src = np.maximum(_source(ratio, m, align_corners, ftype), 0)
    i0 = np.minimum(_floorf(src), n - 1)
    lam = np.clip(src - i0.astype(ftype), 0, 1).astype(ftype)
    i1 = i0 + (i0 < n - 1)
    return np.stack([i0, i1], axis=1), np.stack([1 - lam, lam], axis=1).astype(ftype)


def plan_taps(plan: Resize, ftype: Any) -> list[tuple[IntArray, FloatArray]]:
    """:func:`axis_taps` of every axis of ``plan``."""
    legacy = legacy_nearest(plan)
    return [
        axis_taps(
            n,
            m,
            mode=plan.mode,
            align_corners=plan.align_corners,
            scale=s,
            ftype=ftype,
            legacy=legacy,
            antialias=plan.antialias,
        )
        for n, m, s in zip(plan.in_spatial, plan.out_spatial, plan.scales, strict=True)
    ]


def taps_matrix(idx: IntArray, w: FloatArray, n: int) -> sp.csr_array:
    """The 1-d resize matrix ``(m, n)``: repeated columns summed, zero weights not stored."""
    m = idx.shape[0]
    if (idx < 0).any():  # absent taps: the row's last index again, weight 0
        w = np.where(idx < 0, 0, w)
        idx = np.maximum(np.maximum.accumulate(idx, axis=1), 0)
    key = (np.arange(m)[:, None] * n + idx).reshape(-1)  # non-decreasing: rows, then columns
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    sums = np.add.reduceat(w.reshape(-1), first)
    keep = sums != 0
    rows, cols = np.divmod(key[first][keep], n)
    indptr = np.searchsorted(rows, np.arange(m + 1)).astype(np.int64)
    out = sp.csr_array((sums[keep], cols, indptr), shape=(m, n))
    out.has_sorted_indices = True
    return out


def _padded(a: sp.csr_array) -> tuple[IntArray, FloatArray, np.ndarray[Any, Any]]:
    """Rows of ``a`` as equal-length ``(rows, width)`` arrays: columns, values, real-entry mask."""
    counts = np.diff(a.indptr)
    width = max(int(counts.max(initial=0)), 1)
    mask = np.arange(width)[None, :] < counts[:, None]
    cols = np.zeros(mask.shape, np.int64)
    vals = np.zeros(mask.shape, a.dtype)
    cols[mask] = a.indices
    vals[mask] = a.data
    return cols, vals, mask


#: Per-axis resize factors whose storage bound is below this are built before the size
#: check (an exact count, in milliseconds); longer axes are refused by arithmetic alone.
_FACTOR_BUDGET = 2**20


def refuse_kron(
    counts: list[int],
    out_spatial: tuple[int, ...],
    in_spatial: tuple[int, ...],
    dtype: Any,
    max_bytes: Any,
    what: str,
    alternative: str = "the matrix-free convmat.upsample",
    *,
    at_least: bool = False,
) -> None:
    """:func:`check_max_bytes` for ``factor₀ ⊗ factor₁ ⊗ …`` from per-axis entry counts alone.

    ``counts[i]`` is the number of stored entries of axis ``i``'s ``(m, n)`` factor (a
    lower bound when ``at_least``), known in closed form, so the refusal comes before
    any factor is built.
    """
    shape = (math.prod(out_spatial), math.prod(in_spatial))
    nnz, np_dtype = math.prod(counts), np.dtype(dtype)
    check_max_bytes(nnz, shape, np_dtype, max_bytes, what, alternative, at_least=at_least)


def axis_nnz_floor(n: int, m: int, plan: Resize) -> int:
    """A lower bound on the stored entries of one axis's resize factor: exact where
    :func:`axis_nnz_bound` is, else one per row (every row's weights sum to 1)."""
    return n if plan.mode == "bed_of_nails" else m


def axis_nnz_bound(n: int, m: int, plan: Resize, scale: float | None, ftype: Any) -> int:
    """Stored entries of one axis's resize factor ``(m, n)``, in closed form; never fewer.

    Exact for ``nearest``, ``nearest-exact``, ``bed_of_nails`` (one entry per row, or
    per nail) and for an axis of unchanged size; otherwise every row's taps, at most
    ``n``: 2 for linear, 4 for bicubic, ``2⌈support⌉ + 1`` with antialias. Rows that
    merge or zero a tap (at a border, or on an input sample) store fewer, so the bound
    is a few rows' worth above the truth. ``area`` is counted by the caller.
    """
    mode = plan.mode
    if plan.antialias:  # the branches of axis_taps, in its order
        if m == n:
            return m
        ratio = _ratio(n, m, plan.align_corners, scale, ftype)
        half = ANTIALIAS[mode]
        support = ftype(half * np.float64(ratio)) if ratio >= 1 else ftype(half)
        return m * min(2 * math.ceil(float(support)) + 1, n)
    if mode == "bed_of_nails":
        return n
    if mode in ("nearest", "nearest-exact"):
        return m
    if mode == "bicubic":
        return m * min(4, n)
    return m if m == n else m * min(2, n)


def kron_csr(
    factors: list[sp.csr_array],
    max_bytes: Any,
    what: str,
    alternative: str = "the matrix-free convmat.upsample",
) -> sp.csr_array:
    """``factors[0] ⊗ factors[1] ⊗ …`` in CSR, sorted, built by broadcasting (no COO stage).

    Row ``(r₀, r₁, …)`` holds the products of the rows' entries; taking them in
    order keeps the columns ``c₀·n₁ + c₁`` increasing.
    """
    shape = (math.prod(f.shape[0] for f in factors), math.prod(f.shape[1] for f in factors))
    nnz = math.prod(f.nnz for f in factors)
    dtype = np.result_type(*factors)
    check_max_bytes(nnz, shape, dtype, max_bytes, what, alternative)
    cols, vals, mask = _padded(factors[0])
    for f in factors[1:]:
        c, v, k = _padded(f)
        rows = cols.shape[0] * c.shape[0]
        cols = (cols[:, None, :, None] * f.shape[1] + c[None, :, None, :]).reshape(rows, -1)
        vals = (vals[:, None, :, None] * v[None, :, None, :]).reshape(rows, -1)
        mask = (mask[:, None, :, None] & k[None, :, None, :]).reshape(rows, -1)
    idx = _index_dtype(nnz, shape)
    indptr = np.zeros(shape[0] + 1, idx)
    np.cumsum(mask.sum(axis=1), out=indptr[1:])
    out = sp.csr_array((vals[mask], cols[mask].astype(idx), indptr), shape=shape)
    out.has_sorted_indices = True
    return out


def _dtype(dtype: Any) -> Any:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64; got {dtype!r}") from None
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64; got {dt}")
    return dt.type


def upsample_matrix(
    spatial: Any,
    *,
    size: Any = None,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    antialias: bool = False,
    dtype: Any = np.float64,
    max_bytes: Any = DEFAULT_MAX_BYTES,
) -> sp.csr_array:
    r"""The resize of one channel plane as a sparse matrix U: ``y.ravel() == U @ x.ravel()``.

    Parameters
    ----------
    spatial : int or sequence of int
        The plane's spatial shape (an int is 1-d, or 2-d/3-d when ``mode`` says so).
    size : int or sequence of int, optional
        Output spatial shape. Exactly one of ``size`` and ``scale_factor``.
    scale_factor : float or sequence of float, optional
        Output size ``⌊n · scale_factor⌋`` per axis; as in torch (whose default
        ``recompute_scale_factor=None``), coordinates then step by ``1/scale_factor``.
        Factors below 1 shrink: a resize, not only an up-size.
    mode : str
        One of ``"nearest"``, ``"nearest-exact"``, ``"linear"``, ``"bilinear"``,
        ``"bicubic"``, ``"trilinear"``, ``"area"``, ``"bed_of_nails"``:
        ``torch.nn.functional.interpolate``'s modes (``linear`` is 1-d, ``bilinear``
        and ``bicubic`` 2-d, ``trilinear`` 3-d; the nearest modes and ``area`` any), plus
        ``bed_of_nails`` (whole-number scales): each value at the first position of
        its block, zeros elsewhere. ``area`` is :func:`adaptive_avg_pool_matrix` to
        the output size (a scale factor only sizes the output).
    align_corners : bool, optional
        For the interpolating modes only, as in torch (``None`` means ``False``).
    antialias : bool
        ``bilinear`` and ``bicubic`` only: torch's anti-aliased resampling
        (``F.interpolate(..., antialias=True)``), which widens the filter when shrinking.
    dtype : {float64, float32}
        The matrix's dtype, and the precision of the coordinate arithmetic: torch
        computes coordinates in float32 for float32 data, so a fractional scale can
        pick different nearest neighbours for the two dtypes (e.g. scale 2.3).
    max_bytes : int
        Refuse (``MemoryError``) a matrix whose storage would be larger; default 4 GiB.

    Returns
    -------
    scipy.sparse.csr_array, shape ``(∏out, ∏in)``
        Rows and columns in C order of the plane; ``A₀ ⊗ A₁ ⊗ …`` of the per-axis
        matrices. No stored zeros, sorted int32 indices when they fit. A batch or
        several channels share it: ``(U @ X.reshape(-1, ∏in).T).T``.

    Raises
    ------
    ValueError
        For an unknown mode, neither or both of ``size`` and ``scale_factor``,
        non-positive sizes or scales, ``align_corners`` with a mode it does not apply
        to, a mode whose dimensionality does not match ``spatial``, a fractional
        scale for ``bed_of_nails``, or ``antialias`` with a mode other than bilinear
        and bicubic.
    TypeError
        For a non-integer size, a non-numeric scale, a non-bool ``align_corners`` or
        ``antialias``, or an unsupported ``dtype``.
    MemoryError
        When the matrix would need more than ``max_bytes``; decided by arithmetic
        before the matrix (or any per-axis factor above 1 MiB) is allocated.

    See Also
    --------
    upsample : the same resize applied to arrays, fast.
    adaptive_avg_pool_matrix : ``mode="area"``.
    upsample_as_conv_transpose : the transposed convolutions behind nearest, bed of nails
        and linear upsampling.

    Notes
    -----
    Along one axis (``n`` → ``m``) torch's step is ``r = (n − 1)/(m − 1)`` with
    ``align_corners``, else ``1/scale_factor`` when a scale is given, else ``n/m``.
    Output ``o`` reads the source coordinate

    * ``nearest``: ``⌊r·o⌋`` (OpenCV's ``INTER_NEAREST``);
    * ``nearest-exact``: ``⌊r·(o + ½)⌋`` (Pillow, ``scipy.ndimage.zoom``);
    * linear: ``c = r·o`` with ``align_corners``, else ``max(r·(o + ½) − ½, 0)``; with
      ``i = ⌊c⌋`` and ``λ = c − i`` the row holds ``1 − λ`` at ``i`` and ``λ`` at
      ``min(i + 1, n − 1)`` — clamping is edge-value (replicate) padding; an axis
      whose size does not change is copied, as torch does;
    * ``bicubic``: ``c`` without the clamp, weights ``W(1+λ), W(λ), W(1−λ), W(2−λ)`` of
      Keys' kernel ``W(x) = (A+2)|x|³ − (A+3)|x|² + 1`` for ``|x| ≤ 1``,
      ``A|x|³ − 5A|x|² + 8A|x| − 4A`` for ``1 < |x| < 2``, ``A = −0.75``, at
      ``i − 1 … i + 2`` clamped to the input (repeats summed).

    Indices are clamped to ``n − 1``; floors are taken of the float32-rounded
    coordinate, as torch's ``floorf`` does, and ``r·(o + ½) − ½`` is rounded once, as
    its fused multiply-add, so the matrix matches ``F.interpolate`` for the dtype
    given, entry for entry. One more torch 2.13 CPU detail is reproduced: 2-d
    ``nearest`` / ``nearest-exact`` whose output height plus width is at most 128
    compute indices in float32 whatever the dtype, and ``nearest`` there copies an
    axis of unchanged size and halves indices for exactly twice the size. Every row
    of an interpolating mode sums to 1; nearest rows hold a single 1; bed-of-nails
    rows one 1 or nothing.

    With ``antialias`` (torch's ``_compute_indices_weights_aa``, as Pillow) output ``o``
    of an axis whose size changes is centred at ``c = r·(o + ½)`` — with
    ``align_corners`` too, which only changes ``r``. With ``σ = max(r, 1)`` the filter
    is ``K(x/σ)`` over inputs ``i`` in ``[⌊c − σh + ½⌋, ⌊c + σh + ½⌋)`` clipped to the
    input, ``K`` the tent (``h = 1``) or Keys' cubic with ``A = −½`` (``h = 2``), at
    ``x = i + ½ − c``; the weights are divided by their sum. So shrinking averages over
    ``σ`` times the plain support; enlarging (``r < 1``) gives plain bilinear with
    ``align_corners=False`` but differs with ``align_corners=True`` and for bicubic
    (``A = −½``, renormalised at the borders). An axis of unchanged size is copied.

    References
    ----------
    A. Odena, V. Dumoulin and C. Olah, "Deconvolution and checkerboard artifacts",
    Distill, 2016. R. Keys, "Cubic convolution interpolation for digital image
    processing", IEEE Trans. ASSP 29(6), 1981.

    Examples
    --------
    >>> import numpy as np
    >>> U = upsample_matrix(2, scale_factor=2, mode="linear")
    >>> U.toarray()
    array([[1.  , 0.  ],
           [0.75, 0.25],
           [0.25, 0.75],
           [0.  , 1.  ]])
    >>> U2 = upsample_matrix((2, 2), scale_factor=2, mode="bilinear")
    >>> U2.shape, U2.nnz
    ((16, 4), 36)
    >>> upsample_matrix(6, size=2, mode="area").toarray()  # adaptive average pooling
    array([[0.33333333, 0.33333333, 0.33333333, 0.        , 0.        , 0.        ],
           [0.        , 0.        , 0.        , 0.33333333, 0.33333333, 0.33333333]])
    >>> A = upsample_matrix((1, 4), size=(1, 2), mode="bilinear", antialias=True)
    >>> A.toarray()  # the tent stretched by 2, cut by the border: (3, 3, 1)/7
    array([[0.42857143, 0.42857143, 0.14285714, 0.        ],
           [0.        , 0.14285714, 0.42857143, 0.42857143]])
    >>> import scipy.sparse as sp
    >>> bool((abs(U2 - sp.kron(U, U)) > 0).nnz == 0)
    True
    >>> x = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> (upsample_matrix((2, 2), scale_factor=2, mode="bed_of_nails") @ x.ravel()).reshape(4, 4)
    array([[1., 0., 2., 0.],
           [0., 0., 0., 0.],
           [3., 0., 4., 0.],
           [0., 0., 0., 0.]])
    """
    ftype = _dtype(dtype)
    plan = resize_plan(
        spatial,
        size=size,
        scale_factor=scale_factor,
        mode=mode,
        align_corners=align_corners,
        antialias=antialias,
    )
    if plan.mode == "area":
        from convmat._avgpool import adaptive_avg_pool_matrix

        return adaptive_avg_pool_matrix(
            plan.in_spatial, plan.out_spatial, dtype=ftype, max_bytes=max_bytes
        )
    # Long axes are refused from arithmetic alone: at once when one entry per row is
    # already too much ("at least"), else by the closed-form upper bound. Factors that
    # are cheap to build (under _FACTOR_BUDGET) are built, and kron_csr decides exactly.
    axes = (plan.out_spatial, plan.in_spatial, ftype, max_bytes, "upsample matrix")
    low = [
        axis_nnz_floor(n, m, plan) for n, m in zip(plan.in_spatial, plan.out_spatial, strict=True)
    ]
    high = [
        axis_nnz_bound(n, m, plan, s, ftype)
        for n, m, s in zip(plan.in_spatial, plan.out_spatial, plan.scales, strict=True)
    ]
    factor_bytes = sum(
        h * (ftype(0).itemsize + 8) + 8 * (m + 1)
        for h, m in zip(high, plan.out_spatial, strict=True)
    )
    if factor_bytes > _FACTOR_BUDGET:
        refuse_kron(low, *axes, at_least=low != high)
        refuse_kron(high, *axes)
    factors = [
        taps_matrix(idx, w, n)
        for (idx, w), n in zip(plan_taps(plan, ftype), plan.in_spatial, strict=True)
    ]
    return kron_csr(factors, max_bytes, "upsample matrix")


def _chunk(planes: int, per_plane: int) -> int:
    """Planes per block so that a block's largest intermediate stays cache-sized."""
    return max(1, min(planes, (1 << 16) // max(per_plane, 1)))


def _apply_axis(
    a: np.ndarray[Any, Any],
    taps: tuple[IntArray, FloatArray],
    axis: int,
    out: np.ndarray[Any, Any],
    mode: str,
) -> None:
    """One separable pass along ``axis``: ``out[o] = Σ_t w[o, t] · a[idx[o, t]]``."""
    idx, w = taps
    if mode == "bed_of_nails":
        out[...] = 0
        s = out.shape[axis] // a.shape[axis]
        out[(slice(None),) * axis + (slice(None, None, s),)] = a
        return
    np.take(a, idx[:, 0], axis=axis, out=out, mode="clip")
    if mode in ("nearest", "nearest-exact"):
        return
    shape = [1] * a.ndim
    shape[axis] = -1
    out *= w[:, 0].reshape(shape)
    tmp = np.empty_like(out)
    absent = idx < 0
    for t in range(1, idx.shape[1]):
        np.take(a, idx[:, t], axis=axis, out=tmp, mode="clip")
        tmp *= w[:, t].reshape(shape)
        if absent[:, t].any():  # no term at all, not 0·value (which is NaN for ±inf)
            np.copyto(tmp, 0, where=absent[:, t].reshape(shape))
        out += tmp


#: Axes at most this long are resized by a dense GEMM when the data is finite.
DENSE_MAX = 256


def _apply_dense(
    a: np.ndarray[Any, Any], matrix: np.ndarray[Any, Any], axis: int, out: np.ndarray[Any, Any]
) -> None:
    """The pass along ``axis`` as a GEMM with the dense 1-d matrix ``(m, n)``.

    Zero weights multiply every other sample, so this is only for finite data; it
    trades ``2n`` flops per output for the gathers, which BLAS wins for short axes.
    """
    m, n = matrix.shape
    if axis == a.ndim - 1:
        np.matmul(a.reshape(-1, n), matrix.T, out=out.reshape(-1, m))
    else:
        before, after = math.prod(a.shape[:axis]), math.prod(a.shape[axis + 1 :])
        np.matmul(matrix, a.reshape(before, n, after), out=out.reshape(before, m, after))


@float16_result("x")
def upsample(
    x: Any,
    *,
    size: Any = None,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    antialias: bool = False,
) -> np.ndarray[Any, Any]:
    r"""Resize ``x`` as ``torch.nn.functional.interpolate`` does, or by bed of nails — in NumPy.

    Parameters
    ----------
    x : array_like, shape ``(N, C, *spatial)`` or ``(C, *spatial)``
        The number of spatial dims is fixed by ``mode`` (``linear`` 1, ``bilinear``
        and ``bicubic`` 2, ``trilinear`` 3), else by a sequence ``size`` or
        ``scale_factor``, else it is ``x.ndim − 2`` (a batch, as torch's input;
        a 2-d ``x`` is ``(C, L)``).
        Integers become float64; float32 stays float32 (and gets torch's float32
        coordinates); complex is resized part by part.
    size, scale_factor, mode, align_corners, antialias
        As for :func:`upsample_matrix` (``area`` is :func:`adaptive_avg_pool`).

    Returns
    -------
    numpy.ndarray, shape ``(N, C, *out)`` or ``(C, *out)``
        ``x``'s dtype. Equal to ``upsample_matrix`` applied to every channel plane
        (up to rounding: the matrix sums repeated border taps first).

    Raises
    ------
    ValueError, TypeError
        As :func:`upsample_matrix`, and for an ``x`` whose shape does not fit the
        spatial rank, or a non-numeric ``x``.

    See Also
    --------
    upsample_matrix : the same resize as a sparse matrix.

    Notes
    -----
    One pass per axis, the last axis first (the order of torch's separable CPU
    kernel), over blocks of channel planes small enough to stay in cache. A pass
    gathers the taps and weights them; for finite data and an axis of at most
    ``DENSE_MAX`` samples an interpolating pass is instead one GEMM with the dense
    1-d matrix (``2n`` flops per output beat the gathers on short axes). The
    gathers compute every tap, zero weights included, so non-finite inputs spread
    as in torch. Results agree with torch to rounding (float32: a few ulps).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(4.0).reshape(1, 1, 2, 2)
    >>> upsample(x, scale_factor=2)[0, 0]
    array([[0., 0., 1., 1.],
           [0., 0., 1., 1.],
           [2., 2., 3., 3.],
           [2., 2., 3., 3.]])
    >>> upsample(np.array([[0.0, 4.0]]), scale_factor=2, mode="linear")
    array([[0., 1., 3., 4.]])
    >>> upsample(x, size=(3, 3), mode="bilinear", align_corners=True)[0, 0]
    array([[0. , 0.5, 1. ],
           [1. , 1.5, 2. ],
           [2. , 2.5, 3. ]])
    """
    arr = numeric_array(x, "x")
    rank, lead = split_planes(arr, spatial_rank(mode, size, scale_factor), f"mode={mode!r}")
    plan = resize_plan(
        arr.shape[arr.ndim - rank :],
        size=size,
        scale_factor=scale_factor,
        mode=mode,
        align_corners=align_corners,
        antialias=antialias,
    )
    if plan.mode == "area":
        from convmat._avgpool import adaptive_avg_pool

        return adaptive_avg_pool(arr, plan.out_spatial)
    ftype = np.float32 if arr.real.dtype == np.float32 else np.float64
    taps = plan_taps(plan, ftype)
    dense: list[np.ndarray[Any, Any] | None] = [None] * rank
    if plan.mode in INTERPOLATING and np.isfinite(arr).all():
        dense = [
            taps_matrix(idx, w, n).toarray() if n <= DENSE_MAX else None
            for (idx, w), n in zip(taps, plan.in_spatial, strict=True)
        ]
    n_planes = math.prod(lead)
    planes = arr.reshape(n_planes, *plan.in_spatial)
    result = np.empty((n_planes, *plan.out_spatial), arr.dtype)
    chunk = _chunk(
        n_planes,
        math.prod(max(n, m) for n, m in zip(plan.in_spatial, plan.out_spatial, strict=True)),
    )
    for start in range(0, n_planes, chunk):
        block = planes[start : start + chunk]
        for axis in range(rank, 0, -1):  # last spatial axis first
            target_shape = list(block.shape)
            target_shape[axis] = plan.out_spatial[axis - 1]
            target = (
                result[start : start + chunk] if axis == 1 else np.empty(target_shape, arr.dtype)
            )
            matrix = dense[axis - 1]
            if matrix is not None:
                _apply_dense(block, matrix, axis, target)
            else:
                with np.errstate(invalid="ignore", over="ignore"):  # inf, nan spread as torch
                    _apply_axis(block, taps[axis - 1], axis, target, plan.mode)
            block = target
    return result.reshape(*lead, *plan.out_spatial)
