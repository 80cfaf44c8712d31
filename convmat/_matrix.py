"""The explicit sparse matrix C of a convolution layer, and Cᵀ of its transposed layer.

C is the spatial pattern (:mod:`convmat._pattern`) filled with the weights and
repeated over channels, written straight into CSR arrays: rows are regular, so
there is no COO stage, no sort and no Python loop over entries. The transposed
layer's matrix is exactly ``C.T`` of the forward layer it transposes.

Size is decided first, by arithmetic (:func:`convmat._pattern.pattern_nnz`, closed
form per axis), so a matrix above ``max_bytes`` is refused before anything of its
size exists. Building shows no progress bar: each step is one vectorised NumPy call
over all entries, with no Python loop to report from, and ``max_bytes`` bounds the
whole build (the default 4 GiB, ~360 M float64 entries, builds in seconds).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from convmat._args import numeric_array
from convmat._layer import Layer, _weight_shape, channel_layout, conv_layer, conv_transpose_layer
from convmat._pattern import (
    Pattern,
    block_shifts,
    block_template,
    channel_blocks,
    pattern_nnz,
)

DEFAULT_MAX_BYTES = 4 * 2**30
_INT32_MAX = 2**31 - 1


def human_bytes(n: float) -> str:
    """``37.5 GiB`` style sizes for messages.

    >>> human_bytes(40265318400)
    '37.5 GiB'
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _index_dtype(nnz: int, shape: tuple[int, int]) -> type[np.signedinteger[Any]]:
    return np.int32 if max(nnz, *shape) <= _INT32_MAX else np.int64


def check_max_bytes(
    nnz: int,
    shape: tuple[int, int],
    dtype: np.dtype[Any],
    max_bytes: Any,
    what: str,
    alternative: str = "the matrix-free conv_operator / conv_transpose_operator",
    *,
    at_least: bool = False,
) -> None:
    """Refuse, with ``MemoryError``, a CSR matrix whose storage would exceed ``max_bytes``.

    The message gives the estimate in human units and the two ways out: a larger
    ``max_bytes``, or ``alternative`` (what computes the same without the matrix).
    ``at_least`` says that ``nnz`` is a lower bound (the message then says so).
    Arithmetic only: callers pass counts known in closed form, before allocating.
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, float, np.integer)):
        raise TypeError(f"max_bytes must be a number of bytes; got {max_bytes!r}")
    if not max_bytes > 0:
        raise ValueError(f"max_bytes must be > 0; got {max_bytes!r}")
    index_size = np.dtype(_index_dtype(nnz, shape)).itemsize
    estimate = nnz * (dtype.itemsize + index_size) + (shape[0] + 1) * index_size
    if estimate > max_bytes:
        raise MemoryError(
            f"{what} of shape {shape} with {'at least ' if at_least else ''}{nnz:,} stored "
            f"entries needs {'at least' if at_least else 'about'} "
            f"{human_bytes(estimate)}, more than max_bytes={human_bytes(float(max_bytes))}; raise "
            f"max_bytes= if you have the memory, or use {alternative}"
        )


def block_csr(
    pattern: Pattern, kernels: np.ndarray[Any, Any], groups: int, max_bytes: Any, what: str
) -> sp.csr_array:
    """Repeat ``pattern`` over channel blocks, filled from ``kernels`` of shape ``(A, B, ∏k)``.

    Takes ownership of ``pattern`` (its arrays may become the matrix's).

    Row channel ``a`` meets the ``B`` column channels of its group ``a // (A / groups)``;
    block ``(a, b)`` is the pattern filled with ``kernels[a, b]``. Checked against
    ``max_bytes`` before anything is allocated.
    """
    n_rows, per_group, n_taps = kernels.shape
    shape = (n_rows * pattern.shape[0], groups * per_group * pattern.shape[1])
    nnz = n_rows * per_group * pattern.nnz
    check_max_bytes(nnz, shape, kernels.dtype, max_bytes, what)
    idx = _index_dtype(nnz, shape)
    block = block_template(pattern, per_group)
    per_block = block.columns.size
    flat = np.ascontiguousarray(kernels).reshape(n_rows, -1)
    if pattern.tap_ptr is not None or block.entry is None:
        values = pattern.fill(kernels).reshape(n_rows, -1)
        data = values if block.entry is None else np.take(values, block.entry, axis=1)
    else:
        # Compose (b, e) -> kernel position once; one gather writes every value.
        b, e = np.divmod(block.entry, pattern.nnz)
        data = np.take(flat, b * n_taps + pattern.taps[e], axis=1)

    # The pattern is the caller's to give away: a single row channel uses its columns as is.
    indices = block.columns.astype(idx, copy=False)
    if n_rows > 1:
        shift = block_shifts(n_rows, groups, per_group, pattern.shape[1])
        indices = np.add(indices, shift[:, None].astype(idx), dtype=idx)
    indptr = np.empty(shape[0] + 1, dtype=idx)
    np.add(
        block.indptr[:-1].astype(idx, copy=False),
        (np.arange(n_rows, dtype=idx) * per_block)[:, None],
        out=indptr[:-1].reshape(n_rows, pattern.shape[0]),
    )
    indptr[-1] = nnz
    matrix = sp.csr_array((data.reshape(-1), indices.reshape(-1), indptr), shape=shape)
    matrix.has_sorted_indices = True
    return matrix


def layer_matrix(
    layer: Layer, weight: np.ndarray[Any, Any], *, transposed: bool = False, max_bytes: Any
) -> sp.csr_array:
    """C of ``layer`` filled with ``weight``, or Cᵀ (the same pattern, transposed)."""
    c_out, groups = layer.out_channels, layer.groups
    per_group = layer.in_channels // groups
    what = "conv_transpose matrix" if transposed else "conv matrix"
    shape = (layer.in_size, layer.out_size) if transposed else (layer.out_size, layer.in_size)
    check_max_bytes(pattern_nnz(layer) * c_out * per_group, shape, weight.dtype, max_bytes, what)
    kernels = np.ascontiguousarray(weight).reshape(c_out, per_group, -1)
    pattern, blocks = channel_blocks(layer, kernels, transposed=transposed)
    return block_csr(pattern, blocks, groups, max_bytes, what)


def _operands(input_shape: Any, weight: Any) -> tuple[Any, np.ndarray[Any, Any]]:
    """``input_shape`` and the weight in the full layout, either convention accepted.

    A kernel with as many axes as ``input_shape`` is one channel's (see :func:`channel_layout`).
    """
    w = numeric_array(weight, "weight")
    try:
        shape, layout, _ = channel_layout(input_shape, w.shape)
    except ValueError:  # neither convention: the layer checks say what is wrong
        shape, layout = input_shape, w.shape
    w = w.reshape(layout)
    _weight_shape(w.shape)
    return shape, w


def _weight(weight: Any) -> np.ndarray[Any, Any]:
    """A weight array, its shape checked as the layer checker does (before any input is)."""
    w = numeric_array(weight, "weight")
    _weight_shape(w.shape)
    return w


def conv_matrix(
    input_shape: Any,
    weight: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    padding_mode: str = "zeros",
    max_bytes: Any = DEFAULT_MAX_BYTES,
) -> sp.csr_array:
    r"""The sparse matrix C of a convolution layer: ``conv(x, weight).ravel() == C @ x.ravel()``.

    Parameters
    ----------
    input_shape : sequence of int
        ``(C_in, *spatial)`` — one sample, any number of spatial dims.
    weight : array_like, shape ``(C_out, C_in // groups, *kernel_size)``
        As ``torch.nn.ConvNd.weight``; its dtype is the matrix's (integers become float64).
    stride, dilation : int or sequence of int
    padding : int, sequence of int, sequence of (low, high) pairs, or "valid" / "same" / "full"
        ``"same"`` needs stride 1 and puts an odd extra on the high side, as torch does;
        ``"full"`` pads ``d·(k−1)`` on both sides, as MATLAB/SciPy ``full``.
    groups : int
        Channel groups; ``groups == C_in`` is a depthwise convolution.
    padding_mode : {"zeros", "reflect", "replicate", "circular"}
        As ``torch.nn.ConvNd``; the folded padding is part of the matrix (repeats summed).
    max_bytes : int
        Refuse (``MemoryError``) a matrix whose storage would be larger; default 4 GiB.

    Returns
    -------
    scipy.sparse.csr_array, shape ``(C_out·∏out, C_in·∏in)``
        Rows and columns flattened in C order of one sample (channel, then spatial).
        Padding stores no zeros; indices are int32 when they fit.

    Raises
    ------
    ValueError
        For a bad argument value or an input too small for the kernel.
    TypeError
        For an argument of the wrong kind (a float stride, a non-numeric weight).
    MemoryError
        When the matrix would need more than ``max_bytes``; nothing is allocated first.

    See Also
    --------
    conv_transpose_matrix : Cᵀ, the transposed convolution.
    conv_output_shape : the spatial output size.

    Notes
    -----
    With ``g(c) = c // (C_out/groups)`` the group of output channel ``c``,

    .. math::

        C[(c, \mathbf{o}), (g(c)\,C_{in}/G + j, \mathbf{i})]
            = \sum_{\mathbf{t}:\ \mathbf{o}\mathbf{s} + \mathbf{t}\mathbf{d}
              - \mathbf{lo} \mapsto \mathbf{i}} w[c, j, \mathbf{t}],

    where the map is the identity inside the input (no entry outside it for zero
    padding) and the fold of ``padding_mode`` otherwise. It is cross-correlation:
    the kernel is not flipped.

    References
    ----------
    V. Dumoulin and F. Visin, "A guide to convolution arithmetic for deep learning",
    arXiv:1603.07285, 2016, section 4.1.

    Examples
    --------
    The 3×3 input and 2×2 kernel of Dive into Deep Learning:

    >>> import numpy as np
    >>> C = conv_matrix((1, 3, 3), [[[[1, 2], [3, 4]]]])
    >>> C.toarray()
    array([[1., 2., 0., 3., 4., 0., 0., 0., 0.],
           [0., 1., 2., 0., 3., 4., 0., 0., 0.],
           [0., 0., 0., 1., 2., 0., 3., 4., 0.],
           [0., 0., 0., 0., 1., 2., 0., 3., 4.]])
    >>> (C @ np.arange(9.0)).reshape(2, 2)
    array([[27., 37.],
           [57., 67.]])
    """
    input_shape, w = _operands(input_shape, weight)
    layer = conv_layer(
        input_shape,
        w.shape,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
    )
    return layer_matrix(layer, w, max_bytes=max_bytes)


def conv_transpose_matrix(
    input_shape: Any,
    weight: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    max_bytes: Any = DEFAULT_MAX_BYTES,
) -> sp.csr_array:
    r"""The sparse matrix of a transposed convolution: Cᵀ of the forward layer it transposes.

    ``conv_transpose(y, weight).ravel() == conv_transpose_matrix(y.shape, weight) @ y.ravel()``.

    Parameters
    ----------
    input_shape : sequence of int
        ``(C_in, *spatial)`` of the transposed layer.
    weight : array_like, shape ``(C_in, C_out // groups, *kernel_size)``
        As ``torch.nn.ConvTransposeNd.weight`` — the forward convolution's layout.
    stride, dilation, output_padding : int or sequence of int
        ``output_padding < max(stride, dilation)`` on every axis.
    padding : int, sequence of int or of (low, high) pairs
        The forward layer's padding (no strings, as torch); it crops the output.
    groups : int
    max_bytes : int
        As :func:`conv_matrix`.

    Returns
    -------
    scipy.sparse.csr_array, shape ``(C_out·∏out, C_in·∏in)``
        With ``∏out`` from :func:`conv_transpose_output_shape`.

    Raises
    ------
    ValueError, TypeError, MemoryError
        As :func:`conv_matrix`, plus ``output_padding >= max(stride, dilation)``.

    See Also
    --------
    conv_matrix, conv_transpose_output_shape

    Notes
    -----
    The forward convolution maps an input of the transposed layer's output size to
    (at least) its input size; this matrix is that forward matrix transposed,
    restricted to the transposed input's positions when ``output_padding >= stride``
    (which a dilation larger than the stride allows). Every input element scatters
    its channel's kernels into the output at its stride offset:

    .. math::

        C^T[(j, \mathbf{i}), (c, \mathbf{o})] = w[c, j', \mathbf{t}]
        \quad\text{where}\quad
        \mathbf{i} = \mathbf{o}\mathbf{s} + \mathbf{t}\mathbf{d} - \mathbf{lo}.

    References
    ----------
    V. Dumoulin and F. Visin, "A guide to convolution arithmetic for deep learning",
    arXiv:1603.07285, 2016, section 4.

    Examples
    --------
    >>> import numpy as np
    >>> K = [[[[0, 1], [2, 3]]]]
    >>> X = np.array([[0.0, 1.0], [2.0, 3.0]])
    >>> (conv_transpose_matrix((1, 2, 2), K) @ X.ravel()).reshape(3, 3)
    array([[ 0.,  0.,  1.],
           [ 0.,  4.,  6.],
           [ 4., 12.,  9.]])
    >>> (conv_transpose_matrix((1, 2, 2), K, stride=2) @ X.ravel()).reshape(4, 4)
    array([[0., 0., 0., 1.],
           [0., 0., 2., 3.],
           [0., 2., 0., 3.],
           [4., 6., 6., 9.]])
    """
    input_shape, w = _operands(input_shape, weight)
    layer = conv_transpose_layer(
        input_shape,
        w.shape,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
    )
    return layer_matrix(layer, w, transposed=True, max_bytes=max_bytes)
