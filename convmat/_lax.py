"""JAX's ``lax`` convolutions as explicit sparse matrices, exact to ``jax.lax``.

``lax_conv_matrix`` mirrors ``jax.lax.conv_general_dilated`` and
``lax_conv_transpose_matrix`` mirrors ``jax.lax.conv_transpose``: the same
arguments, the same padding rules, any ``dimension_numbers``. JAX is never
imported: the matrices come from convmat's own layer machinery.

The window arithmetic is the project's one pattern (:mod:`convmat._pattern`):

* without ``lhs_dilation`` a lax convolution is a convmat :class:`~convmat._layer.Layer`
  whose padding may be negative (a crop);
* with ``lhs_dilation`` ``l`` (zeros inserted between input elements) and window
  stride 1, it is the *transpose* of the forward convolution with stride ``l``,
  dilation ``rhs_dilation``, low padding ``d·(k−1) − lo`` and the flipped kernel —
  Dumoulin & Visin's fractionally strided convolution read the other way. A window
  stride on top keeps every ``s``-th output row of that transpose.

The matrix spans the whole ``lhs`` (batch included): ``batch_group_count`` makes
output batch entries read several input batch entries, so no per-sample matrix
exists in general.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from convmat._args import as_int, is_sequence, ntuple, numeric_array, scalar, spatial_shape
from convmat._layer import Layer
from convmat._matrix import (
    DEFAULT_MAX_BYTES,
    _index_dtype,
    block_csr,
    check_max_bytes,
)
from convmat._pattern import IntArray, Pattern, spatial_pattern
from convmat._shapes import conv_length, conv_transpose_length

LAX_PADDINGS = ("SAME", "SAME_LOWER", "VALID")

#: ``jax.lax.conv_transpose``'s default dimension numbers (TensorFlow's), by lhs rank.
TRANSPOSE_DEFAULTS = {
    2: ("NC", "IO", "NC"),
    3: ("NHC", "HIO", "NHC"),
    4: ("NHWC", "HWIO", "NHWC"),
    5: ("NHWDC", "HWDIO", "NHWDC"),
}

_ALTERNATIVE = (
    "a smaller lhs_shape (the matrix spans the whole batch), or jax.lax itself for a "
    "matrix-free product"
)


class Dims(NamedTuple):
    """Axis positions ``(batch, feature, *spatial)`` in lhs and output, ``(O, I, *spatial)``
    in rhs — ``jax.lax.ConvDimensionNumbers`` in plain tuples; spatial dims in rhs order."""

    lhs: tuple[int, ...]
    rhs: tuple[int, ...]
    out: tuple[int, ...]


class _Geometry(NamedTuple):
    """One lax convolution, validated, in canonical order ``(N, C, *spatial)``."""

    lhs: tuple[int, ...]  # canonical lhs shape (N, C_in, *spatial)
    kernels: np.ndarray[Any, Any]  # (O, I, *k)
    strides: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    lhs_dilation: tuple[int, ...]
    rhs_dilation: tuple[int, ...]
    out: tuple[int, ...]  # output spatial shape
    groups: int
    batch_groups: int


# ---------------------------------------------------------------- arguments


def _string_dims(value: Sequence[str], ndim: int) -> Dims:
    """jax's rules for string dimension numbers (``conv_general_permutations``)."""
    pairs = (("N", "C"), ("O", "I"), ("N", "C"))
    for i, (spec, (a, b)) in enumerate(zip(value, pairs, strict=True)):
        if len(spec) != ndim:
            raise ValueError(
                f"dimension_numbers[{i}] must have one character per lhs axis ({ndim}); "
                f"got {spec!r}"
            )
        if spec.count(a) != 1 or spec.count(b) != 1 or len(set(spec)) != len(spec):
            raise ValueError(
                f"dimension_numbers[{i}] must contain {a!r} and {b!r} exactly once and no "
                f"repeated character; got {spec!r}"
            )
    spatial = [set(spec) - set(pair) for spec, pair in zip(value, pairs, strict=True)]
    if not spatial[0] == spatial[1] == spatial[2]:
        raise ValueError(
            f"dimension_numbers must name the same spatial characters in all three specs; "
            f"got {tuple(value)!r}"
        )
    rhs = value[1]

    def perm(spec: str, pair: tuple[str, str]) -> tuple[int, ...]:
        axes = sorted(
            (i for i, c in enumerate(spec) if c not in pair), key=lambda i: rhs.index(spec[i])
        )
        return (spec.index(pair[0]), spec.index(pair[1]), *axes)

    return Dims(*(perm(spec, pair) for spec, pair in zip(value, pairs, strict=True)))


def dimension_numbers_of(value: Any, ndim: int, default: Any = None) -> Dims:
    """Read ``dimension_numbers`` as jax does: None, three strings or ``ConvDimensionNumbers``.

    ``None`` means ``default`` (itself None: lhs ``NC…``, rhs ``OI…``, output ``NC…``).

    >>> dimension_numbers_of(("NHWC", "HWIO", "NHWC"), 4)
    Dims(lhs=(0, 3, 1, 2), rhs=(3, 2, 0, 1), out=(0, 3, 1, 2))
    """
    if isinstance(value, Dims):
        return value
    if value is None:
        value = default
    if value is None:
        iota = tuple(range(ndim))
        return Dims(iota, iota, iota)
    if all(hasattr(value, f) for f in ("lhs_spec", "rhs_spec", "out_spec")):
        specs = (value.lhs_spec, value.rhs_spec, value.out_spec)
        result = []
        for name, spec in zip(("lhs_spec", "rhs_spec", "out_spec"), specs, strict=True):
            axes = tuple(as_int(v, "dimension_numbers") for v in spec) if is_sequence(spec) else ()
            if sorted(axes) != list(range(ndim)):
                raise ValueError(
                    f"dimension_numbers.{name} must be a permutation of range({ndim}); got {spec!r}"
                )
            result.append(axes)
        return Dims(*result)
    if (
        isinstance(value, (str, bytes))
        or not isinstance(value, Sequence)
        or len(value) != 3
        or not all(isinstance(v, str) for v in value)
    ):
        raise TypeError(
            f"dimension_numbers must be None, three strings such as ('NHWC', 'HWIO', 'NHWC') "
            f"or a jax.lax.ConvDimensionNumbers; got {value!r}"
        )
    return _string_dims(value, ndim)


def _lhs_shape(lhs_shape: Any) -> tuple[int, ...]:
    if isinstance(lhs_shape, (str, bytes)) or not is_sequence(lhs_shape):
        raise TypeError(
            f"lhs_shape must be a sequence of ints (the whole lhs, batch included); "
            f"got {lhs_shape!r}"
        )
    shape = spatial_shape(lhs_shape, "lhs_shape")
    if len(shape) < 3:
        raise ValueError(
            f"lhs_shape must have a batch, a feature and at least one spatial axis; got {shape}"
        )
    return shape


def _rhs(rhs: Any, ndim: int) -> np.ndarray[Any, Any]:
    w = numeric_array(rhs, "rhs")
    if w.ndim != ndim:
        raise ValueError(f"rhs must have as many axes as lhs_shape ({ndim}); got shape {w.shape}")
    if 0 in w.shape:
        raise ValueError(f"rhs must have no empty axis; got shape {w.shape}")
    return w


def _optional(value: Any, nsp: int, name: str) -> tuple[int, ...]:
    return (1,) * nsp if value is None else ntuple(value, nsp, name, minimum=1)


def _pads(
    padding: Any,
    spatial: tuple[int, ...],
    window: tuple[int, ...],
    strides: tuple[int, ...],
    lhs_dilation: tuple[int, ...],
) -> tuple[tuple[int, int], ...]:
    """jax's padding rules: ``lax.padtype_to_pads`` for strings, pairs as given."""
    padding = scalar(padding)
    nsp = len(spatial)
    if isinstance(padding, str):
        kind = padding.upper()
        if kind not in LAX_PADDINGS:
            raise ValueError(
                f"padding must be one of {LAX_PADDINGS} or (low, high) pairs; got {padding!r}"
            )
        if any(v != 1 for v in lhs_dilation):
            raise ValueError(
                f"padding must be explicit (low, high) pairs when lhs_dilation is not 1 (as "
                f"jax.lax.conv_general_dilated; conv_transpose computes them); got {padding!r} "
                f"with lhs_dilation {lhs_dilation}"
            )
        if kind == "VALID":
            return ((0, 0),) * nsp
        pairs = []
        for n, k, s in zip(spatial, window, strides, strict=True):
            total = max(0, (-(-n // s) - 1) * s + k - n)
            small = total // 2
            pairs.append((small, total - small) if kind == "SAME" else (total - small, small))
        return tuple(pairs)
    return _pairs(padding, nsp)


def _pairs(padding: Any, nsp: int) -> tuple[tuple[int, int], ...]:
    """``nsp`` explicit ``(low, high)`` int pairs, negative allowed."""
    if isinstance(padding, (str, bytes)) or not is_sequence(padding) or len(padding) != nsp:
        raise ValueError(
            f"padding must be one of {LAX_PADDINGS} or {nsp} (low, high) pairs, one per spatial "
            f"dim; got {padding!r}"
        )
    result = []
    for p in padding:
        if not is_sequence(p) or len(p) != 2:
            raise ValueError(f"padding must be (low, high) pairs; got {padding!r}")
        result.append((as_int(p[0], "padding"), as_int(p[1], "padding")))
    return tuple(result)


def _geometry(
    lhs_shape: Any,
    rhs: Any,
    window_strides: Any,
    padding: Any,
    lhs_dilation: Any,
    rhs_dilation: Any,
    dimension_numbers: Any,
    feature_group_count: Any,
    batch_group_count: Any,
    *,
    strides_name: str = "window_strides",
    dims_default: Any = None,
    transpose_kernel: bool = False,
) -> tuple[_Geometry, Dims, tuple[int, ...]]:
    """Validate every argument of ``conv_general_dilated``; canonical geometry, dims, lhs shape."""
    shape = _lhs_shape(lhs_shape)
    ndim, nsp = len(shape), len(shape) - 2
    w = _rhs(rhs, ndim)
    dims = dimension_numbers_of(dimension_numbers, ndim, dims_default)
    if transpose_kernel:  # jax: flip the spatial axes, swap the O and I axes
        w = np.flip(w, axis=dims.rhs[2:]).swapaxes(dims.rhs[0], dims.rhs[1])
    strides = ntuple(window_strides, nsp, strides_name, minimum=1)
    ld = _optional(lhs_dilation, nsp, "lhs_dilation")
    rd = _optional(rhs_dilation, nsp, "rhs_dilation")
    lhs = tuple(shape[a] for a in dims.lhs)
    kernels = w.transpose(dims.rhs)
    (batch, c_in, *spatial), (c_out, per_group, *k) = lhs, kernels.shape
    g = as_int(feature_group_count, "feature_group_count")
    b = as_int(batch_group_count, "batch_group_count")
    if g < 1 or b < 1:
        raise ValueError(f"feature_group_count and batch_group_count must be >= 1; got {g} and {b}")
    if g > 1 and b > 1:
        raise ValueError(
            f"feature_group_count and batch_group_count must not both be > 1 (as jax); got "
            f"{g} and {b}"
        )
    if c_in % g or c_in // g != per_group:
        raise ValueError(
            f"feature_group_count must divide the lhs features into groups of the rhs input "
            f"features ({per_group}); got feature_group_count={g} with {c_in} lhs features"
        )
    if c_out % (g * b):
        raise ValueError(
            f"rhs output features must be a multiple of feature_group_count * "
            f"batch_group_count = {g * b}; got {c_out}"
        )
    if batch % b:
        raise ValueError(
            f"batch_group_count must divide the lhs batch size; got batch_group_count={b} with "
            f"batch {batch}"
        )
    window = tuple((ki - 1) * di + 1 for ki, di in zip(k, rd, strict=True))
    pads = _pads(padding, tuple(spatial), window, strides, ld)
    dilated = tuple((n - 1) * l_ + 1 for n, l_ in zip(spatial, ld, strict=True))
    out = tuple(
        conv_length(n, ki, s, lo, hi, di)
        for n, ki, s, (lo, hi), di in zip(dilated, k, strides, pads, rd, strict=True)
    )
    if any(o < 1 for o in out):
        raise ValueError(
            f"padding must leave room for the dilated kernel on every axis (a non-empty "
            f"output); got padding {pads} on the lhs-dilated input {dilated} with the dilated "
            f"kernel {window} (output would be {out})"
        )
    geo = _Geometry(lhs, kernels, strides, pads, ld, rd, out, g, b)
    return geo, dims, shape


# ---------------------------------------------------------------- the spatial pattern


def _gather_rows(indptr: IntArray, rows: IntArray) -> tuple[IntArray, IntArray]:
    """CSR rows ``rows`` of a matrix: the new ``indptr`` and the entries to take, in order."""
    lengths = np.diff(indptr)[rows]
    new = np.zeros(rows.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=new[1:])
    take = np.arange(new[-1], dtype=np.int64) + np.repeat(indptr[rows] - new[:-1], lengths)
    return new, take


def _spatial(geo: _Geometry, axes: Sequence[int]) -> Pattern:
    """One channel pair's pattern over the spatial ``axes``: output rows, lhs columns.

    Without lhs dilation this is a convmat Layer's own pattern (padding may be negative).
    With it, the transpose of the forward convolution of stride ``lhs_dilation`` that
    maps the stride-1 output onto the lhs, its taps flipped (kernel reversed in C order);
    a window stride then keeps every ``s``-th row.
    """
    pick = [tuple(v[a] for a in axes) for v in (geo.lhs[2:], geo.kernels.shape[2:])]
    spatial, k = pick
    s, ld, rd = (
        tuple(v[a] for a in axes) for v in (geo.strides, geo.lhs_dilation, geo.rhs_dilation)
    )
    pads = tuple(geo.padding[a] for a in axes)
    out = tuple(geo.out[a] for a in axes)
    if all(v == 1 for v in geo.lhs_dilation):
        return spatial_pattern(Layer(1, 1, 1, spatial, out, k, s, rd, pads, "zeros"))
    full = tuple((o - 1) * si + 1 for o, si in zip(out, s, strict=True))
    forward_pads = []
    for n, ki, li, di, m, (lo, _) in zip(spatial, k, ld, rd, full, pads, strict=True):
        low = di * (ki - 1) - lo
        forward_pads.append((low, conv_transpose_length(n, ki, li, low, 0, di) - m))
    forward = Layer(1, 1, 1, full, spatial, k, ld, rd, tuple(forward_pads), "zeros")
    pattern = spatial_pattern(forward).transpose()
    taps = pattern.n_taps - 1 - pattern.taps
    indptr, indices = pattern.indptr, pattern.indices
    if any(si > 1 for si in s):
        grids = np.meshgrid(
            *(np.arange(o) * si for o, si in zip(out, s, strict=True)), indexing="ij"
        )
        rows = np.ravel_multi_index([g.ravel() for g in grids], full)
        indptr, take = _gather_rows(indptr, rows)
        indices, taps = indices[take], taps[take]
    return Pattern((math.prod(out), pattern.shape[1]), pattern.n_taps, indptr, indices, taps)


def _spatial_nnz(geo: _Geometry) -> int:
    """Stored entries of one channel pair: the product of the 1-d patterns' counts."""
    return math.prod(_spatial(geo, (a,)).nnz for a in range(len(geo.out)))


# ---------------------------------------------------------------- the whole-batch matrix


def _matrix(geo: _Geometry, dims: Dims, shape: tuple[int, ...], max_bytes: Any) -> sp.csr_array:
    (batch, c_in, *spatial), kernels = geo.lhs, geo.kernels
    c_out, per_group = kernels.shape[:2]
    out_batch = batch // geo.batch_groups
    canon_out = (out_batch, c_out, *geo.out)
    n_rows, n_cols = math.prod(canon_out), math.prod(shape)
    nnz = out_batch * c_out * per_group * _spatial_nnz(geo)
    check_max_bytes(
        nnz, (n_rows, n_cols), kernels.dtype, max_bytes, "lax conv matrix", _ALTERNATIVE
    )

    # One sample's matrix K (canonical order), with the feature groups; then whole batch.
    pattern = _spatial(geo, range(len(geo.out)))
    flat = np.ascontiguousarray(kernels).reshape(c_out, per_group, -1)
    k = block_csr(pattern, flat, geo.groups, max_bytes, "lax conv matrix")
    per_out, per_in = k.shape[0], c_in * math.prod(spatial)

    # Final row f holds canonical row (n', r) of the output; its lhs batch entry is
    # b·(N/B) + n' for the batch group b of output channel row r (jax's batch groups).
    canon = np.arange(n_rows, dtype=np.int64).reshape(canon_out)
    source = canon.transpose(np.argsort(dims.out)).reshape(-1)
    n_prime, r = np.divmod(source, per_out)
    group = r // (per_out // geo.batch_groups)
    shift = (group * out_batch + n_prime) * per_in
    indptr, take = _gather_rows(k.indptr.astype(np.int64), r)
    idx = _index_dtype(nnz, (n_rows, n_cols))
    columns = k.indices[take].astype(np.int64) + np.repeat(shift, np.diff(indptr))
    if dims.lhs != tuple(range(len(shape))):
        # Canonical column c is lhs element where[c] in the lhs's own C-order flattening.
        where = np.arange(n_cols, dtype=np.int64).reshape(shape).transpose(dims.lhs).reshape(-1)
        columns = where[columns]
    matrix = sp.csr_array(
        (k.data[take], columns.astype(idx), indptr.astype(idx)), shape=(n_rows, n_cols)
    )
    matrix.sort_indices()
    return matrix


# ---------------------------------------------------------------- public


def lax_conv_matrix(
    lhs_shape: Any,
    rhs: Any,
    window_strides: Any,
    padding: Any,
    *,
    lhs_dilation: Any = None,
    rhs_dilation: Any = None,
    dimension_numbers: Any = None,
    feature_group_count: Any = 1,
    batch_group_count: Any = 1,
    max_bytes: Any = DEFAULT_MAX_BYTES,
) -> sp.csr_array:
    r"""The sparse matrix of ``jax.lax.conv_general_dilated`` over the whole ``lhs``.

    ``conv_general_dilated(lhs, rhs, ...).ravel() == M @ lhs.ravel()``, both flattened
    in C order of their own layout (``dimension_numbers``), batch included.

    Parameters
    ----------
    lhs_shape : sequence of int
        The whole lhs shape as jax takes it — batch, features and spatial axes in the
        layout of ``dimension_numbers`` (``(N, C, *spatial)`` by default).
    rhs : array_like
        The kernel, in the layout of ``dimension_numbers`` (``(O, I, *k)`` by default);
        its dtype is the matrix's (integers become float64). A ``jax.Array`` is read
        with ``numpy.asarray``.
    window_strides : int or sequence of int
        One per spatial dim, in the order of the spatial axes of the rhs spec.
    padding : "SAME", "SAME_LOWER", "VALID" or sequence of (low, high) pairs
        As jax: the strings (any case) are ``lax.padtype_to_pads`` of the input and the
        dilated kernel (odd extra on the high side for ``"SAME"``, the low side for
        ``"SAME_LOWER"``) and need ``lhs_dilation`` 1; pairs pad the *lhs-dilated*
        input, a negative entry crops it.
    lhs_dilation, rhs_dilation : None or int or sequence of int
        ``lhs_dilation`` inserts ``l − 1`` zeros between input elements (a transposed
        convolution); ``rhs_dilation`` spreads the kernel taps (atrous).
    dimension_numbers : None, three strings or ``jax.lax.ConvDimensionNumbers``
        E.g. ``("NHWC", "HWIO", "NHWC")``; None is ``NC…``, ``OI…``, ``NC…``.
    feature_group_count, batch_group_count : int
        As XLA: feature groups are torch's ``groups``; with ``B`` batch groups, output
        channel group ``b`` (of ``O / B`` channels) reads lhs batch entries
        ``b·N/B … (b+1)·N/B − 1`` and the output batch is ``N / B``. At most one is > 1.
    max_bytes : int
        Refuse (``MemoryError``) a matrix whose storage would be larger; default 4 GiB.

    Returns
    -------
    scipy.sparse.csr_array, shape ``(∏ out_shape, ∏ lhs_shape)``
        Columns are the lhs flattened in C order of ``lhs_shape``; rows the output
        flattened in C order of its own layout (the out spec). No stored zeros.

    Raises
    ------
    ValueError
        For a bad value (mismatched features, groups that do not divide, a string padding
        with ``lhs_dilation``, an empty output).
    TypeError
        For an argument of the wrong kind.
    MemoryError
        When the matrix would need more than ``max_bytes``; nothing is allocated first.

    See Also
    --------
    lax_conv_transpose_matrix, conv_matrix, conv_transpose_matrix

    Notes
    -----
    The matrix spans the batch because ``batch_group_count`` mixes batch entries; with
    ``batch_group_count=1`` it is block diagonal, one block ``K`` per sample (in the
    canonical ``NC…`` layouts, ``K`` is :func:`conv_matrix` of the same layer when
    ``lhs_dilation`` is 1). Per spatial axis, output ``o`` reads tap ``t`` at the
    lhs-dilated, padded position ``p = o·s + t·d − lo``, an input element exactly when
    ``p = i·l`` with ``0 <= i < n``:

    .. math::

        M[(n', c, \mathbf{o}), (n, g(c)\,I + j, \mathbf{i})]
            = \mathrm{rhs}[c, j, \mathbf{t}]
        \quad\text{where}\quad \mathbf{i}\mathbf{l} = \mathbf{o}\mathbf{s}
            + \mathbf{t}\mathbf{d} - \mathbf{lo},

    with ``n = n'`` (or ``b(c)·N/B + n'`` for batch groups). With ``l > 1`` this is
    the transpose of the forward convolution of stride ``l``, dilation ``d``, low
    padding ``d·(k−1) − lo`` and the flipped kernel — built as exactly that.

    References
    ----------
    V. Dumoulin and F. Visin, "A guide to convolution arithmetic for deep learning",
    arXiv:1603.07285, 2016, section 4.

    Examples
    --------
    In the default ``NCHW`` layout one sample's matrix is :func:`conv_matrix`'s:

    >>> import numpy as np
    >>> from convmat import conv_matrix
    >>> w = np.arange(1.0, 13.0).reshape(2, 3, 2, 1)
    >>> M = lax_conv_matrix((1, 3, 4, 4), w, (2, 1), ((1, 0), (0, 1)))
    >>> (M != conv_matrix((3, 4, 4), w, stride=(2, 1), padding=((1, 0), (0, 1)))).nnz
    0

    ``lhs_dilation`` is the transposed convolution: zeros inserted, full padding,
    the kernel flipped (the stride-2 example of Dive into Deep Learning):

    >>> from convmat import conv_transpose_matrix
    >>> K = np.array([[[[0.0, 1.0], [2.0, 3.0]]]])
    >>> M = lax_conv_matrix((1, 1, 2, 2), K[..., ::-1, ::-1], (1, 1), ((1, 1), (1, 1)),
    ...                     lhs_dilation=(2, 2))
    >>> (M @ np.array([0.0, 1.0, 2.0, 3.0])).reshape(4, 4)
    array([[0., 0., 0., 1.],
           [0., 0., 2., 3.],
           [0., 2., 0., 3.],
           [4., 6., 6., 9.]])
    >>> (M != conv_transpose_matrix((1, 2, 2), K, stride=2)).nnz
    0

    Channels last flattens the same map in another order, batch included:

    >>> x = np.arange(2 * 3 * 4 * 4.0).reshape(2, 3, 4, 4)
    >>> M = lax_conv_matrix((2, 4, 4, 3), w.transpose(2, 3, 1, 0), (1, 1), "SAME",
    ...                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    >>> y = (M @ x.transpose(0, 2, 3, 1).ravel()).reshape(2, 4, 4, 2)
    >>> C = conv_matrix((3, 4, 4), w, padding=((0, 1), (0, 0)))
    >>> np.array_equal(y[1].transpose(2, 0, 1).ravel(), C @ x[1].ravel())
    True
    """
    geo, dims, shape = _geometry(
        lhs_shape,
        rhs,
        window_strides,
        padding,
        lhs_dilation,
        rhs_dilation,
        dimension_numbers,
        feature_group_count,
        batch_group_count,
    )
    return _matrix(geo, dims, shape, max_bytes)


def _transpose_padding(k: int, s: int, padding: Any) -> tuple[int, int]:
    """jax's ``_conv_transpose_padding`` for one axis (``k`` the dilated kernel)."""
    if isinstance(padding, str) and padding == "SAME":
        total = k + s - 2
        low = k - 1 if s > k - 1 else -(-total // 2)
    elif isinstance(padding, str) and padding == "VALID":
        total = k + s - 2 + max(k - s, 0)
        low = k - 1
    else:
        low, high = k - padding[0] - 1, k - padding[1] - 1
        total = low + high
    return low, total - low


def transpose_geometry(
    lhs_shape: Any,
    rhs: Any,
    strides: Any,
    padding: Any,
    rhs_dilation: Any,
    dimension_numbers: Any,
    transpose_kernel: Any,
    use_consistent_padding: Any,
) -> tuple[_Geometry, Dims, tuple[int, ...]]:
    """``conv_transpose``'s arguments validated, as the ``conv_general_dilated`` it runs."""
    if not isinstance(transpose_kernel, (bool, np.bool_)):
        raise TypeError(f"transpose_kernel must be a bool; got {transpose_kernel!r}")
    if not isinstance(use_consistent_padding, (bool, np.bool_)):
        raise TypeError(f"use_consistent_padding must be a bool; got {use_consistent_padding!r}")
    shape = _lhs_shape(lhs_shape)
    ndim, nsp = len(shape), len(shape) - 2
    if dimension_numbers is None and ndim not in TRANSPOSE_DEFAULTS:
        raise ValueError(
            f"dimension_numbers must be given for {nsp} spatial dims (jax has defaults for 0 "
            f"to 3); got None with lhs_shape {shape}"
        )
    default = TRANSPOSE_DEFAULTS.get(ndim)
    dims = dimension_numbers_of(dimension_numbers, ndim, default)
    s = ntuple(strides, nsp, "strides", minimum=1)
    rd = _optional(rhs_dilation, nsp, "rhs_dilation")
    w = _rhs(rhs, ndim)
    padding = scalar(padding)
    pads = padding
    if use_consistent_padding or (isinstance(padding, str) and padding in ("SAME", "VALID")):
        if isinstance(padding, str):
            if padding not in ("SAME", "VALID"):
                raise ValueError(
                    f"padding must be 'SAME', 'VALID' or (low, high) pairs; got {padding!r}"
                )
            forward: Sequence[Any] = (padding,) * nsp
        else:
            forward = _pairs(padding, nsp)
        k = tuple(w.shape[a] for a in dims.rhs[2:])
        pads = tuple(
            _transpose_padding((ki - 1) * di + 1, si, p)
            for ki, di, si, p in zip(k, rd, s, forward, strict=True)
        )
    return _geometry(
        shape,
        w,
        (1,) * nsp,
        pads,
        s,
        rd,
        dims,
        1,
        1,
        transpose_kernel=bool(transpose_kernel),
    )


def lax_conv_transpose_matrix(
    lhs_shape: Any,
    rhs: Any,
    strides: Any,
    padding: Any,
    *,
    rhs_dilation: Any = None,
    dimension_numbers: Any = None,
    transpose_kernel: bool = False,
    use_consistent_padding: bool = False,
    max_bytes: Any = DEFAULT_MAX_BYTES,
) -> sp.csr_array:
    r"""The sparse matrix of ``jax.lax.conv_transpose`` over the whole ``lhs``.

    ``conv_transpose(lhs, rhs, ...).ravel() == M @ lhs.ravel()``: jax's fractionally
    strided convolution, :func:`lax_conv_matrix` with ``lhs_dilation=strides``,
    window stride 1 and the padding jax derives.

    Parameters
    ----------
    lhs_shape : sequence of int
        The whole lhs shape (batch included) in the layout of ``dimension_numbers``.
    rhs : array_like
        The kernel in the layout of ``dimension_numbers``.
    strides : int or sequence of int
        The fractional stride (zeros inserted between input elements).
    padding : "SAME", "VALID" or sequence of (low, high) pairs
        ``"SAME"`` / ``"VALID"`` are the *forward* convolution's (``jax``'s
        ``_conv_transpose_padding``: output ``n·s`` and ``n·s + max(k − s, 0)`` with
        ``k`` the dilated kernel). Pairs are the padding of the lhs-dilated input
        (jax's legacy rule) unless ``use_consistent_padding``, when they are the
        forward convolution's: ``d·(k − 1) − p`` on each side, PyTorch's rule.
    rhs_dilation : None or int or sequence of int
    dimension_numbers : None, three strings or ``jax.lax.ConvDimensionNumbers``
        None is TensorFlow's layout, as jax: ``NHC/HIO``, ``NHWC/HWIO``, ``NHWDC/HWDIO``.
    transpose_kernel : bool
        As jax: flip the kernel's spatial axes and swap its O and I axes. Then the
        result is the gradient of the forward convolution (TensorFlow's, Keras',
        PyTorch's transposed convolution, ``Cᵀ``); without it jax correlates the
        zero-inserted input with the unflipped kernel.
    use_consistent_padding : bool
        As jax: read pairs as the forward convolution's padding.
    max_bytes : int
        As :func:`lax_conv_matrix`.

    Returns
    -------
    scipy.sparse.csr_array, shape ``(∏ out_shape, ∏ lhs_shape)``
        Flattened in C order of the out and lhs layouts, batch included.

    Raises
    ------
    ValueError, TypeError, MemoryError
        As :func:`lax_conv_matrix`; a padding string other than ``"SAME"`` / ``"VALID"``
        is refused unless jax would pass it on (no ``use_consistent_padding``, strides 1).

    See Also
    --------
    lax_conv_matrix, conv_transpose_matrix

    Notes
    -----
    With ``transpose_kernel=True``, ``use_consistent_padding=True``, pairs ``p`` and the
    layout ``("NCHW", "OIHW", "NCHW")``, one sample's block equals
    ``conv_transpose_matrix(lhs_shape[1:], rhs, stride=strides, padding=p)``: jax's
    ``rhs`` is then torch's ``ConvTranspose`` weight ``(C_in, C_out, *k)``. A high pair
    entry ``p − output_padding`` gives torch's ``output_padding``.

    References
    ----------
    V. Dumoulin and F. Visin, "A guide to convolution arithmetic for deep learning",
    arXiv:1603.07285, 2016, section 4.

    Examples
    --------
    >>> import numpy as np
    >>> from convmat import conv_transpose_matrix
    >>> w = np.arange(1.0, 19.0).reshape(2, 1, 3, 3)
    >>> M = lax_conv_transpose_matrix((1, 2, 3, 3), w, (2, 2), ((1, 0), (1, 1)),
    ...                               dimension_numbers=("NCHW", "OIHW", "NCHW"),
    ...                               transpose_kernel=True, use_consistent_padding=True)
    >>> C = conv_transpose_matrix((2, 3, 3), w, stride=2, padding=1, output_padding=(1, 0))
    >>> (M != C).nnz
    0

    Keras' ``Conv2DTranspose(padding="same")`` with stride 2 doubles the size:

    >>> M = lax_conv_transpose_matrix((1, 3, 3, 2), np.ones((3, 3, 1, 2)), (2, 2), "SAME",
    ...                               transpose_kernel=True)
    >>> M.shape
    (36, 18)
    """
    geo, dims, shape = transpose_geometry(
        lhs_shape,
        rhs,
        strides,
        padding,
        rhs_dilation,
        dimension_numbers,
        transpose_kernel,
        use_consistent_padding,
    )
    return _matrix(geo, dims, shape, max_bytes)
