"""The public fast functions, :func:`conv` and :func:`conv_transpose`.

Each checks its arguments (the one layer checker), then runs the algorithm
chosen for the layer and returns a fresh array. The algorithms live one per
module of this package; :mod:`convmat._fast.direct` is the tap-sum engine.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convmat._args import choice, float16_result, nonempty, numeric_array
from convmat._fast.direct import QUIET, conv_engine, conv_transpose_engine
from convmat._fast.teaching import (
    _conv_transpose_fractional,
    _conv_transpose_matrix,
    _conv_transpose_scatter,
)
from convmat._layer import conv_layer, conv_transpose_layer
from convmat._matrix import _weight

Array = np.ndarray[Any, Any]

METHODS = ("gemm", "scatter", "fractional", "matrix")


# --------------------------------------------------------------------------- inputs


def _data(x: Any, weight: Any, bias: Any) -> tuple[Array, Array, Array | None, bool]:
    """Check the arrays and bring them to one dtype; returns ``(x batched, w, b, batched)``."""
    w = _weight(weight)
    xa = numeric_array(x, "x")
    ndim = w.ndim - 2
    if xa.ndim not in (ndim + 1, ndim + 2):
        raise ValueError(
            f"x must have shape (N, C_in, *spatial) or (C_in, *spatial) with {ndim} spatial "
            f"dims to match the weight; got shape {xa.shape}"
        )
    nonempty(xa.shape, ndim)
    b = None if bias is None else numeric_array(bias, "bias")
    dtype = np.result_type(xa, w, *(() if b is None else (b,)))
    batched = xa.ndim == ndim + 2
    xb = xa if batched else xa[None]
    return (
        xb.astype(dtype, copy=False),
        w.astype(dtype, copy=False),
        (None if b is None else b.astype(dtype, copy=False)),
        batched,
    )


def _check_bias(b: Array | None, channels: int) -> None:
    if b is not None and b.shape != (channels,):
        raise ValueError(f"bias must have shape (C_out,) = ({channels},); got shape {b.shape}")


def _finish(y: Array, batched: bool) -> Array:
    return y if batched else y[0]


def conv(
    x: Any,
    weight: Any,
    bias: Any = None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    padding_mode: str = "zeros",
) -> Array:
    r"""Convolution (cross-correlation) of a batch, as ``torch.nn.functional.conv{1,2,3}d``.

    Parameters
    ----------
    x : array_like, shape ``(N, C_in, *spatial)`` or ``(C_in, *spatial)``
        Any number of spatial dims; an unbatched input gives an unbatched output.
    weight : array_like, shape ``(C_out, C_in // groups, *kernel_size)``
    bias : array_like, shape ``(C_out,)``, optional
    stride, dilation : int or sequence of int
    padding : int, sequence of int, sequence of (low, high) pairs, or "valid" / "same" / "full"
    groups : int
    padding_mode : {"zeros", "reflect", "replicate", "circular"}
        As ``torch.nn.ConvNd``.

    Returns
    -------
    numpy.ndarray, shape ``(N, C_out, *out)`` (or ``(C_out, *out)``)
        ``out`` from :func:`conv_output_shape`. The dtype is the common dtype of
        the inputs: float32 stays float32; integer arrays count as float64.

    Raises
    ------
    ValueError
        For a bad geometry (the messages of :func:`conv_matrix`), an ``x`` of the
        wrong number of dims or a bias of the wrong shape. A wrong channel count is
        reported against ``input_shape``, the per-sample shape ``x.shape[-d-1:]``.
    TypeError
        For a hyperparameter of the wrong kind or a non-numeric array.

    See Also
    --------
    conv_matrix : the same layer as a sparse matrix, ``conv(x, w).ravel() == C @ x.ravel()``.
    conv_transpose : its transpose.

    Notes
    -----
    .. math::

        y[n, c, \mathbf{o}] = b[c] + \sum_{j, \mathbf{t}}
            w[c, j, \mathbf{t}]\; x_{\text{pad}}[n,\, g(c)\,C_{in}/G + j,\,
            \mathbf{o}\mathbf{s} + \mathbf{t}\mathbf{d}]

    computed as one GEMM (or AXPY) per kernel tap on shifted views of the
    padded, stride-phase-split input, accumulated in place by BLAS; no im2col
    copy and no matrix is built. NaN and inf propagate as in any product.

    References
    ----------
    V. Dumoulin and F. Visin, "A guide to convolution arithmetic for deep learning",
    arXiv:1603.07285, 2016.

    Examples
    --------
    >>> import numpy as np
    >>> conv(np.arange(9.0).reshape(1, 3, 3), [[[[1, 2], [3, 4]]]])
    array([[[27., 37.],
            [57., 67.]]])
    """
    xb, w, b, batched = _data(x, weight, bias)
    layer = conv_layer(
        xb.shape[1:],
        w.shape,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
        input_name="x",
    )
    _check_bias(b, layer.out_channels)
    with np.errstate(**QUIET):
        return _finish(conv_engine(xb, w, layer, b), batched)


_TRANSPOSED = {
    "gemm": conv_transpose_engine,
    "scatter": _conv_transpose_scatter,
    "fractional": _conv_transpose_fractional,
    "matrix": _conv_transpose_matrix,
}


@float16_result("x", "weight", "bias")
def conv_transpose(
    x: Any,
    weight: Any,
    bias: Any = None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    method: str = "gemm",
) -> Array:
    r"""Transposed convolution of a batch, as ``torch.nn.functional.conv_transpose{1,2,3}d``.

    Parameters
    ----------
    x : array_like, shape ``(N, C_in, *spatial)`` or ``(C_in, *spatial)``
    weight : array_like, shape ``(C_in, C_out // groups, *kernel_size)``
        The layout of the forward convolution it transposes.
    bias : array_like, shape ``(C_out,)``, optional
    stride, dilation, output_padding : int or sequence of int
        ``output_padding < max(stride, dilation)``.
    padding : int, sequence of int or of (low, high) pairs
        The forward layer's padding; it crops the output (no strings, as torch).
    groups : int
    method : {"gemm", "scatter", "fractional", "matrix"}
        Four ways to the same numbers (they agree to rounding):

        * ``"gemm"`` (default, fastest) — split the output into stride phases;
          each is a stride-1 sum of one GEMM per tap over shifted views.
        * ``"scatter"`` — the textbook recipe: every input element times the
          kernel, added into the output at its stride offset, then cropped
          (one Python step per input position: for teaching and checking).
        * ``"fractional"`` — :func:`zero_insert`, pad by ``d·(k−1) − p`` (a
          negative pad crops; ``output_padding`` extends the high side), then a
          stride-1 :func:`conv` with the flipped, channel-swapped kernel.
        * ``"matrix"`` — multiply by :func:`conv_transpose_matrix`.

    Returns
    -------
    numpy.ndarray, shape ``(N, C_out, *out)`` (or ``(C_out, *out)``)
        ``out`` from :func:`conv_transpose_output_shape`.

    Raises
    ------
    ValueError
        For a bad geometry (the messages of :func:`conv_transpose_matrix`), a wrong
        ``method``, an ``x`` of the wrong number of dims or a bias of the wrong shape.
    TypeError
        For a hyperparameter of the wrong kind or a non-numeric array.

    See Also
    --------
    conv : the forward convolution; ``conv_transpose`` is its adjoint.
    conv_transpose_matrix : ``Cᵀ`` as a sparse matrix.
    deconvolve : the inverse, which ``conv_transpose`` is not.

    Notes
    -----
    With the forward layer's geometry (padding ``lo``),

    .. math::

        x[n, g\,C_{out}/G + j, \mathbf{i}] = b + \sum_{c, \mathbf{o}, \mathbf{t}:\;
            \mathbf{o}\mathbf{s} + \mathbf{t}\mathbf{d} - \mathbf{lo} = \mathbf{i}}
            w[c, j, \mathbf{t}]\; y[n, c, \mathbf{o}],

    the sum running over the input channels ``c`` of group ``g``: the transpose
    of :func:`conv`, so ``conv_transpose`` of an output gradient is the input
    gradient of ``conv``.

    References
    ----------
    V. Dumoulin and F. Visin, "A guide to convolution arithmetic for deep learning",
    arXiv:1603.07285, 2016, section 4.

    Examples
    --------
    The example of Dive into Deep Learning, by all four methods:

    >>> import numpy as np
    >>> X = np.array([[[0.0, 1.0], [2.0, 3.0]]])
    >>> K = [[[[0, 1], [2, 3]]]]
    >>> conv_transpose(X, K, stride=2)
    array([[[0., 0., 0., 1.],
            [0., 0., 2., 3.],
            [0., 2., 0., 3.],
            [4., 6., 6., 9.]]])
    >>> all(np.array_equal(conv_transpose(X, K, stride=2, method=m), conv_transpose(X, K, stride=2))
    ...     for m in ("scatter", "fractional", "matrix"))
    True
    """
    choice(method, METHODS, "method")
    xb, w, b, batched = _data(x, weight, bias)
    layer = conv_transpose_layer(
        xb.shape[1:],
        w.shape,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
        input_name="x",
    )
    _check_bias(b, layer.in_channels)
    with np.errstate(**QUIET):
        return _finish(_TRANSPOSED[method](xb, w, layer, b), batched)
