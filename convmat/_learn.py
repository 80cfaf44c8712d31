"""Linear in the kernel: the matrix J with ``J @ w.ravel() == conv(x, w).ravel()``.

A convolution's output is linear in its input (the matrix C) *and* in its kernel.
J is the same sparsity pattern as C read the other way: where C puts the weight
``w[t]`` at (output ``o``, input ``i``), J puts the input value ``x[i]`` at
(output ``o``, kernel tap ``t``). So J comes from :func:`convmat._pattern.spatial_pattern`
(transposed for a transposed layer) filled with input values — no index is derived
again. Least squares on J is what "learnable upsampling" learns: :func:`fit_kernel`.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from convmat._args import as_int, choice, nonnegative, ntuple, numeric_array
from convmat._layer import Layer, conv_layer, conv_transpose_layer
from convmat._matrix import DEFAULT_MAX_BYTES, check_max_bytes
from convmat._pattern import IntArray, Pattern, pattern_nnz, spatial_pattern

Array = np.ndarray[Any, Any]

#: ``fit_kernel(method="auto")`` solves the normal equations up to this many unknowns.
NORMAL_EQUATIONS_LIMIT = 4096


def _batched(x: Any, ndim: int, name: str) -> tuple[Array, bool]:
    """``x`` as a float/complex ``(N, C, *spatial)`` array, and whether it came batched."""
    arr = numeric_array(x, name)
    if arr.ndim == ndim + 2:
        return arr, True
    if arr.ndim == ndim + 1:
        return arr[None], False
    raise ValueError(
        f"{name} must have shape (C, *spatial) or (N, C, *spatial) with {ndim} spatial dims; "
        f"got shape {arr.shape}"
    )


def _validated_layer(
    sample_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    *,
    transposed: bool,
    stride: Any,
    padding: Any,
    output_padding: Any,
    dilation: Any,
    groups: Any,
    padding_mode: str,
) -> Layer:
    """The shared checker for either direction (transposed layers take no padding_mode)."""
    if transposed:
        if padding_mode != "zeros":
            raise ValueError(
                f"padding_mode must be 'zeros' for a transposed layer (as torch); "
                f"got {padding_mode!r}"
            )
        return conv_transpose_layer(
            sample_shape,
            weight_shape,
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            dilation=dilation,
            groups=groups,
        )
    if isinstance(output_padding, (bool, np.bool_)) or not (
        np.ndim(output_padding) in (0, 1) and np.all(np.asarray(output_padding) == 0)
    ):
        raise ValueError(
            f"output_padding must be 0 for a convolution (transposed=False); got {output_padding!r}"
        )
    return conv_layer(
        sample_shape,
        weight_shape,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
    )


class _Items(NamedTuple):
    """A pattern listed per kernel tap: row ``row[q]`` reads column ``src[q]`` via ``tap[q]``.

    Sorted by (row, tap); ``ptr`` delimits the rows.
    """

    ptr: IntArray
    row: IntArray
    tap: IntArray
    src: IntArray


def _items(pattern: Pattern) -> _Items:
    """One item per (row, tap) pair of ``pattern`` — the pattern with kernel taps as columns."""
    rows = pattern.shape[0]
    entry_row = np.repeat(np.arange(rows), np.diff(pattern.indptr))
    if pattern.tap_ptr is None:
        row, src = entry_row, pattern.indices
    else:
        entry = np.repeat(np.arange(pattern.nnz), np.diff(pattern.tap_ptr))
        row, src = entry_row[entry], pattern.indices[entry]
    # Rows are already grouped; a stable sort on (row, tap) only reorders taps within rows,
    # which come ascending (forward pattern) or descending (transposed) — cheap runs.
    order = np.argsort(row.astype(np.int64) * pattern.n_taps + pattern.taps, kind="stable")
    row, tap, src = row[order], pattern.taps[order], src[order]
    ptr = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(row, minlength=rows), out=ptr[1:])
    return _Items(ptr, row, tap, src)


def _slots(items: _Items, per_in: int) -> tuple[IntArray, IntArray]:
    """For each position of a row channel's entries: which input channel ``m`` and item.

    A row lists its items once per input channel of the group (m-major), so the
    entries of row ``r`` start at ``per_in·ptr[r]``.
    """
    length = items.tap.size
    lengths = np.diff(items.ptr)
    slot = (
        per_in * items.ptr[items.row][None, :]
        + np.arange(per_in)[:, None] * lengths[items.row][None, :]
        + (np.arange(length) - items.ptr[items.row])[None, :]
    ).reshape(-1)
    m_at = np.empty(slot.size, dtype=np.int64)
    item_at = np.empty(slot.size, dtype=np.int64)
    m_at[slot] = np.repeat(np.arange(per_in), length)
    item_at[slot] = np.tile(np.arange(length), per_in)
    return m_at, item_at


def _tap_count(layer: Layer) -> int:
    """Items of one channel pair, cheaply: every tap of every row, minus zero-padding reads."""
    if layer.padding_mode == "zeros":
        return pattern_nnz(layer)
    return math.prod(layer.out_spatial) * math.prod(layer.kernel_size)


def layer_weight_matrix(
    layer: Layer, x: Array, *, transposed: bool, max_bytes: Any = DEFAULT_MAX_BYTES
) -> sp.csr_array:
    """J of ``layer`` for the batch ``x`` of shape ``(N, C, *spatial)`` (validated already).

    Row ``(n, c, r)`` (sample, output channel, output position) meets, for each of
    the ``M`` input channels of ``c``'s group, the taps of pattern row ``r``; the
    column is that weight's flat index and the value the input it multiplies.
    """
    groups, n_taps = layer.groups, math.prod(layer.kernel_size)
    n = x.shape[0]
    if transposed:
        # Transposed weight (A, B, *k): output channel c = g·B + b reads inputs g·A/G + m.
        a, b = layer.out_channels, layer.in_channels // groups
        per_in, c_out = a // groups, layer.in_channels
        g, b_of = np.divmod(np.arange(c_out), b)
        inputs = g[:, None] * per_in + np.arange(per_in)[None, :]
        col_base = (inputs * b + b_of[:, None]) * n_taps
    else:
        # Forward weight (C_out, M, *k): output channel c reads inputs g(c)·M + m.
        per_in, c_out = layer.in_channels // groups, layer.out_channels
        g = np.arange(c_out) // (c_out // groups)
        inputs = g[:, None] * per_in + np.arange(per_in)[None, :]
        col_base = (np.arange(c_out)[:, None] * per_in + np.arange(per_in)[None, :]) * n_taps
    n_weights = c_out * per_in * n_taps
    out_spatial = layer.in_spatial if transposed else layer.out_spatial
    shape = (n * c_out * math.prod(out_spatial), n_weights)
    per_channel = per_in * _tap_count(layer)
    check_max_bytes(n * c_out * per_channel, shape, x.dtype, max_bytes, "weight matrix")

    pattern = spatial_pattern(layer)
    items = _items(pattern.transpose() if transposed else pattern)
    length = items.tap.size
    # What each entry of a row channel holds: input channel m of the group, and item.
    if per_in == 1:
        m_at, item_at = np.zeros(length, dtype=np.int64), np.arange(length)
    else:
        m_at, item_at = _slots(items, per_in)

    flat = x.reshape(n, x.shape[1], -1)
    data = flat[:, inputs[:, m_at], items.src[item_at]]
    idx = np.int32 if max(shape) <= 2**31 - 1 and data.size <= 2**31 - 1 else np.int64
    columns = (col_base[:, m_at] + items.tap[item_at]).astype(idx)
    indices = np.broadcast_to(columns, data.shape)
    starts = np.arange(n * c_out)[:, None] * (per_in * length) + per_in * items.ptr[None, :-1]
    indptr = np.append(starts.reshape(-1), data.size).astype(idx)
    matrix = sp.csr_array((data.reshape(-1), indices.reshape(-1), indptr), shape=shape)
    matrix.has_sorted_indices = True
    return matrix


def weight_matrix(
    x: Any,
    weight_shape: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    padding_mode: str = "zeros",
    transposed: bool = False,
    max_bytes: Any = DEFAULT_MAX_BYTES,
) -> sp.csr_array:
    r"""The matrix J of a layer as a function of its kernel: ``J @ w.ravel() == conv(x, w)``.

    The output of a convolution is linear in the kernel as much as in the input;
    J is that linear map for a fixed input ``x`` (the whole batch). It is what makes
    a transposed convolution a *learnable* upsampler: fitting its kernel to data is
    least squares on J (:func:`fit_kernel`).

    Parameters
    ----------
    x : array_like, shape ``(C_in, *spatial)`` or ``(N, C_in, *spatial)``
        The layer's input (for ``transposed=True`` the transposed layer's input).
        Its dtype is the matrix's (integers become float64).
    weight_shape : sequence of int
        ``(C_out, C_in // groups, *k)`` for a convolution, ``(C_in, C_out // groups, *k)``
        for a transposed convolution — torch's layouts.
    stride, padding, dilation, groups
        As :func:`conv_matrix` (``transposed=False``) or :func:`conv_transpose_matrix`.
    output_padding : int or sequence of int
        Transposed layers only (must be 0 for a convolution).
    padding_mode : {"zeros", "reflect", "replicate", "circular"}
        Convolutions only, as :func:`conv_matrix`; a folded pad reads the input twice,
        so one kernel tap may then meet the same input value at several outputs.
    transposed : bool
        J of the transposed convolution ``conv_transpose(x, w)`` instead of ``conv(x, w)``.
    max_bytes : int
        Refuse (``MemoryError``) a matrix whose storage would be larger; default 4 GiB.

    Returns
    -------
    scipy.sparse.csr_array, shape ``(N·C_out·∏out, ∏weight_shape)``
        Rows are the flattened output of the whole batch (C order, ``N`` = 1 for an
        unbatched ``x``); columns the flattened weight. Zero padding stores nothing.

    Raises
    ------
    ValueError
        For an ``x`` whose dimensions or channels do not match ``weight_shape``, a bad
        geometry, ``output_padding`` on a convolution, ``padding_mode`` on a transposed one.
    TypeError
        For a non-numeric ``x`` or a non-integer hyperparameter.
    MemoryError
        When J would need more than ``max_bytes``; nothing is allocated first.

    See Also
    --------
    conv_matrix : the same layer as a function of its input.
    fit_kernel : least squares on J.

    Notes
    -----
    Where :func:`conv_matrix` has :math:`C[(c,\mathbf{o}), (j,\mathbf{i})] = w[c, j', \mathbf{t}]`
    for every tap :math:`\mathbf{t}` with :math:`\mathbf{o}\mathbf{s} + \mathbf{t}\mathbf{d}
    - \mathbf{lo} \mapsto \mathbf{i}`, J stores the other factor of the same product:

    .. math::

        J[(n, c, \mathbf{o}), (c, j', \mathbf{t})] = x[n, j, \mathbf{i}],

    so :math:`J w = C x` entry by entry. For a transposed layer the roles of
    :math:`\mathbf{o}` and :math:`\mathbf{i}` swap (the pattern transposed) and the
    column is the flat index of :math:`w[j, c', \mathbf{t}]` in torch's transposed layout.
    Each row of J has ``C_in/groups`` times as many entries as that output has taps.

    References
    ----------
    V. Dumoulin and F. Visin, "A guide to convolution arithmetic for deep learning",
    arXiv:1603.07285, 2016.

    Examples
    --------
    The d2l example, 2×2 input ``X`` and kernel ``K``: J holds ``X``'s values, and
    ``J @ K.ravel()`` is the transposed convolution ``[[0, 0, 1], [0, 4, 6], [4, 12, 9]]``.

    >>> import numpy as np
    >>> X = np.array([[[0.0, 1.0], [2.0, 3.0]]])           # (C_in, H, W)
    >>> J = weight_matrix(X, (1, 1, 2, 2), transposed=True)
    >>> J.toarray()
    array([[0., 0., 0., 0.],
           [1., 0., 0., 0.],
           [0., 1., 0., 0.],
           [2., 0., 0., 0.],
           [3., 2., 1., 0.],
           [0., 3., 0., 1.],
           [0., 0., 2., 0.],
           [0., 0., 3., 2.],
           [0., 0., 0., 3.]])
    >>> (J @ np.array([0.0, 1.0, 2.0, 3.0])).reshape(3, 3)
    array([[ 0.,  0.,  1.],
           [ 0.,  4.,  6.],
           [ 4., 12.,  9.]])
    """
    if not isinstance(transposed, (bool, np.bool_)):
        raise TypeError(f"transposed must be a bool; got {transposed!r}")
    ws = _shape_tuple(weight_shape)
    xb, _ = _batched(x, len(ws) - 2, "x")
    layer = _validated_layer(
        xb.shape[1:],
        ws,
        transposed=bool(transposed),
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
    )
    return layer_weight_matrix(layer, xb, transposed=bool(transposed), max_bytes=max_bytes)


def _shape_tuple(weight_shape: Any) -> tuple[int, ...]:
    if isinstance(weight_shape, (str, bytes)) or not hasattr(weight_shape, "__len__"):
        raise TypeError(
            f"weight_shape must be a sequence of ints (C_out, C_in // groups, *k); "
            f"got {weight_shape!r}"
        )
    shape = tuple(as_int(v, "weight_shape") for v in weight_shape)
    if len(shape) < 3:
        raise ValueError(
            f"weight_shape must be (C_out, C_in // groups, *kernel_size) with at least one "
            f"spatial dim; got {shape}"
        )
    if any(v < 1 for v in shape):
        raise ValueError(f"weight_shape must have no empty axis; got {shape}")
    return shape


class KernelFit(NamedTuple):
    """The least-squares kernel of :func:`fit_kernel` and how well it fits.

    Attributes
    ----------
    weight : ndarray
        ``(C_in, C_out // groups, *k)`` for a transposed layer, ``(C_out, C_in // groups, *k)``
        for a convolution — ready for ``conv_transpose`` / ``conv``.
    residual : float
        ``‖J w − y‖₂`` over the whole batch (the data misfit; ``damp`` not included).
    relative_residual : float
        ``residual / ‖y‖₂`` (0 when ``y`` is all zeros).
    method : str
        ``"normal"`` (normal equations) or ``"lsmr"``.
    iterations : int
        LSMR iterations (0 for the normal equations).
    converged : bool
        False only when LSMR stopped at ``iter_lim`` before its tolerances.
    """

    weight: Array
    residual: float
    relative_residual: float
    method: str
    iterations: int
    converged: bool


def fit_kernel(
    x_low: Any,
    y_high: Any,
    kernel_size: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    transposed: bool = True,
    damp: float = 0.0,
    method: str = "auto",
    atol: float = 1e-10,
    btol: float = 1e-10,
    iter_lim: int | None = None,
    max_bytes: Any = DEFAULT_MAX_BYTES,
) -> KernelFit:
    r"""The least-squares kernel that maps inputs ``x_low`` to targets ``y_high``.

    Minimises :math:`\|J w - y\|_2^2 + \mathrm{damp}^2 \|w\|_2^2` over the kernel
    ``w`` of a transposed convolution (default) or a convolution, where
    ``J = weight_matrix(x_low, ...)``. This is learnable upsampling in closed form:
    nearest, bilinear or bed-of-nails upsampling are fixed transposed convolutions,
    this one picks its kernel from data.

    Parameters
    ----------
    x_low : array_like, shape ``(N, C_in, *s)``
        A batch of layer inputs (low resolution for an upsampler); one sample is ``x[None]``.
    y_high : array_like, shape ``(N, C_out, *S)``
        The wanted outputs; ``S`` must be the layer's output size.
    kernel_size : int or sequence of int
    stride, padding, output_padding, dilation, groups
        As :func:`conv_transpose_matrix` (``transposed=True``) or :func:`conv_matrix`
        (``output_padding`` must then be 0).
    transposed : bool
        Fit a transposed convolution (default) or a convolution.
    damp : float
        Tikhonov damping, ``>= 0``.
    method : {"auto", "normal", "lsmr"}
        ``"normal"`` solves :math:`(J^H J + \mathrm{damp}^2 I) w = J^H y` densely
        (minimum-norm when singular) — there are only ``∏k·C_in·C_out/groups``
        unknowns; ``"lsmr"`` iterates on J (``scipy.sparse.linalg.lsmr``); ``"auto"``
        takes the normal equations up to 4096 unknowns.
    atol, btol, iter_lim
        LSMR's stopping tolerances and iteration limit (``None``: its default).
    max_bytes : int
        Limit on J's storage, as :func:`weight_matrix`.

    Returns
    -------
    KernelFit
        ``(weight, residual, relative_residual, method, iterations, converged)``.

    Raises
    ------
    ValueError
        For mismatched batches, channels or output size, a bad geometry, a negative
        ``damp`` or an unknown ``method``.
    TypeError
        For non-numeric data or a non-integer hyperparameter.
    MemoryError
        When J would need more than ``max_bytes``.

    See Also
    --------
    weight_matrix : the matrix J.
    conv_transpose : apply the fitted kernel.

    Notes
    -----
    Channels: ``x_low`` has the layer's input channels and ``y_high`` its output
    channels, so a transposed fit returns ``(C_in, C_out // groups, *k)``, torch's
    ``ConvTranspose`` layout, and a forward fit ``(C_out, C_in // groups, *k)``.
    The fit is exact (zero residual) whenever ``y_high`` is the output of some kernel
    and J has full column rank — e.g. random inputs of a few pixels more than the kernel.

    References
    ----------
    A. Odena, V. Dumoulin and C. Olah, "Deconvolution and Checkerboard Artifacts",
    Distill, 2016. doi:10.23915/distill.00003

    Examples
    --------
    Recover a 4×4, stride-2 upsampling kernel from one input and its output:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> w = rng.normal(size=(1, 1, 4, 4))
    >>> x = rng.normal(size=(1, 1, 6, 6))                   # (N, C_in, H, W)
    >>> y = weight_matrix(x, w.shape, stride=2, padding=1, transposed=True) @ w.ravel()
    >>> fit = fit_kernel(x, y.reshape(1, 1, 12, 12), 4, stride=2, padding=1)
    >>> bool(np.allclose(fit.weight, w)), fit.relative_residual < 1e-12
    (True, True)
    """
    if not isinstance(transposed, (bool, np.bool_)):
        raise TypeError(f"transposed must be a bool; got {transposed!r}")
    choice(method, ("auto", "normal", "lsmr"), "method")
    for name, value in (("damp", damp), ("atol", atol), ("btol", btol)):
        nonnegative(value, name)
    xb, yb = numeric_array(x_low, "x_low"), numeric_array(y_high, "y_high")
    if xb.ndim < 3 or yb.ndim != xb.ndim:
        raise ValueError(
            f"x_low and y_high must be batches (N, C, *spatial) with the same number of dims; "
            f"got shapes {xb.shape} and {yb.shape}"
        )
    if yb.shape[0] != xb.shape[0]:
        raise ValueError(
            f"y_high must have as many samples as x_low ({xb.shape[0]}); got {yb.shape[0]}"
        )
    kernel = ntuple(kernel_size, xb.ndim - 2, "kernel_size", minimum=1)
    g = as_int(groups, "groups")
    c_in, c_out = xb.shape[1], yb.shape[1]
    if g < 1:
        raise ValueError(f"groups must be >= 1; got {g}")
    if c_in % g or c_out % g:
        raise ValueError(
            f"groups must divide both channel counts; got groups={g} with {c_in} input and "
            f"{c_out} output channels"
        )
    ws = (c_in, c_out // g, *kernel) if transposed else (c_out, c_in // g, *kernel)
    layer = _validated_layer(
        xb.shape[1:],
        ws,
        transposed=bool(transposed),
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=g,
        padding_mode="zeros",
    )
    expected = layer.in_spatial if transposed else layer.out_spatial
    if yb.shape[2:] != expected:
        raise ValueError(
            f"y_high must have the layer's output size {expected} for input {xb.shape[2:]}; got "
            f"{yb.shape[2:]} (output_padding adjusts a transposed layer's size)"
        )
    if iter_lim is not None and as_int(iter_lim, "iter_lim") < 1:
        raise ValueError(f"iter_lim must be >= 1; got {iter_lim}")
    dtype = np.result_type(xb.dtype, yb.dtype)
    J = layer_weight_matrix(
        layer, xb.astype(dtype, copy=False), transposed=bool(transposed), max_bytes=max_bytes
    )
    target = yb.astype(dtype, copy=False).reshape(-1)
    chosen = method
    if method == "auto":
        chosen = "normal" if J.shape[1] <= NORMAL_EQUATIONS_LIMIT else "lsmr"
    if chosen == "normal":
        JH = J.conj().T
        gram = (JH @ J).toarray() + damp**2 * np.eye(J.shape[1])
        w = np.linalg.lstsq(gram, JH @ target, rcond=None)[0]
        iterations, converged = 0, True
    else:
        from scipy.sparse.linalg import lsmr

        w, istop, iterations = lsmr(J, target, damp=damp, atol=atol, btol=btol, maxiter=iter_lim)[
            :3
        ]
        converged = istop != 7
    residual = float(np.linalg.norm(J @ w - target))
    scale = float(np.linalg.norm(target))
    return KernelFit(
        w.reshape(ws),
        residual,
        residual / scale if scale else 0.0,
        chosen,
        int(iterations),
        bool(converged),
    )
