"""The public fast functions, :func:`conv`, :func:`conv_transpose` and :func:`explain_plan`.

Each checks its arguments (the one layer checker), then runs the method the
planner (:mod:`convmat._fast.planner`) picks for the layer, or the one asked
for, and returns a fresh array. The algorithms live one per module of this
package; :mod:`convmat._fast.direct` is the tap-sum engine.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convmat._args import (
    as_int,
    choice,
    float16_result,
    is_sequence,
    nonempty,
    numeric_array,
    scalar,
    spatial_shape,
)
from convmat._fast import planner
from convmat._fast.direct import QUIET
from convmat._fast.planner import Plan
from convmat._fast.teaching import (
    _conv_transpose_fractional,
    _conv_transpose_matrix,
    _conv_transpose_scatter,
)
from convmat._layer import Layer, conv_layer, conv_transpose_layer
from convmat._matrix import _weight

Array = np.ndarray[Any, Any]

#: ``method`` of :func:`conv`.
CONV_METHODS = ("auto", *planner.FORWARD_METHODS)
#: ``method`` of :func:`conv_transpose`: the planned ones, then the textbook recipes.
TEACHING = ("scatter", "fractional", "matrix")
METHODS = ("auto", *planner.TRANSPOSED_METHODS, *TEACHING)


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


def _refuse(method: str, layer: Layer, dtype: Any, *, transposed: bool) -> None:
    """A forced method that cannot compute the layer: ``ValueError`` before any work."""
    if method == "auto":
        return
    reason = planner.why_not(method, layer, dtype, transposed=transposed)
    if reason is not None:
        raise ValueError(f"method={method!r} {reason}")


@float16_result("x", "weight", "bias")
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
    method: str = "auto",
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
    method : {"auto", "direct", "winograd", "polyphase", "depthwise", "fft"}
        How to compute it; all give the same numbers up to rounding.

        * ``"auto"`` (default) — the method :func:`explain_plan` shows: the one
          predicted fastest from counted work, exact (``"direct"`` or an exact
          rearrangement of it) unless Winograd or FFT saves a good share of a
          large layer's time.
        * ``"direct"`` — one GEMM per kernel tap on shifted views of the padded,
          stride-phase-split input (exact on small-integer data).
        * ``"winograd"`` — Winograd's minimal filtering F(m, r), stride 1.
        * ``"polyphase"`` — a strided layer as the sum of stride-1 layers, one
          per stride phase, each run by the best stride-1 method.
        * ``"depthwise"`` — one kernel per channel (``groups == C_in``).
        * ``"fft"`` — products of Fourier transforms (overlap-add), for large kernels.

        A method that cannot compute the layer raises ``ValueError``.

    Returns
    -------
    numpy.ndarray, shape ``(N, C_out, *out)`` (or ``(C_out, *out)``)
        ``out`` from :func:`conv_output_shape`. The dtype is the common dtype of
        the inputs: float32 stays float32; integer arrays count as float64;
        float16 is computed in float32 and returned as float16.

    Raises
    ------
    ValueError
        For a bad geometry (the messages of :func:`conv_matrix`), an ``x`` of the
        wrong number of dims, a bias of the wrong shape, an unknown ``method`` or a
        method that cannot compute the layer (the message says why). A wrong channel
        count is reported against ``input_shape``, the per-sample shape ``x.shape[-d-1:]``.
    TypeError
        For a hyperparameter of the wrong kind or a non-numeric array.

    See Also
    --------
    conv_matrix : the same layer as a sparse matrix, ``conv(x, w).ravel() == C @ x.ravel()``.
    conv_transpose : its transpose.
    explain_plan : which method ``"auto"`` runs for a layer, and why.

    Notes
    -----
    .. math::

        y[n, c, \mathbf{o}] = b[c] + \sum_{j, \mathbf{t}}
            w[c, j, \mathbf{t}]\; x_{\text{pad}}[n,\, g(c)\,C_{in}/G + j,\,
            \mathbf{o}\mathbf{s} + \mathbf{t}\mathbf{d}]

    The tap sum (``"direct"``) computes it as one GEMM (or AXPY) per kernel tap on
    shifted views of the padded, stride-phase-split input, accumulated in place by
    BLAS; no im2col copy and no matrix is built. The other methods and when each
    wins are described on the page "How the fast path works". NaN and inf
    propagate as in any product (Winograd and FFT hand a non-finite input to the
    tap sum, so the pattern is the same).

    References
    ----------
    V. Dumoulin and F. Visin, "A guide to convolution arithmetic for deep learning",
    arXiv:1603.07285, 2016.

    A. Lavin and S. Gray, "Fast algorithms for convolutional neural networks",
    CVPR 2016 (Winograd's minimal filtering for convolution layers).

    Examples
    --------
    >>> import numpy as np
    >>> conv(np.arange(9.0).reshape(1, 3, 3), [[[[1, 2], [3, 4]]]])
    array([[[27., 37.],
            [57., 67.]]])
    >>> conv(np.arange(9.0).reshape(1, 3, 3), [[[[1, 2], [3, 4]]]], method="direct")
    array([[[27., 37.],
            [57., 67.]]])
    """
    choice(method, CONV_METHODS, "method")
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
    _refuse(method, layer, xb.dtype, transposed=False)
    with np.errstate(**QUIET):
        return _finish(planner.run(xb, w, layer, b, transposed=False, method=method), batched)


_TEACHING = {
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
    method: str = "auto",
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
    method : str
        One of "auto", "gemm", "winograd", "subpixel", "depthwise", "fft",
        "scatter", "fractional", "matrix": ways to the same numbers (they agree to rounding):

        * ``"auto"`` (default) — the method :func:`explain_plan` shows
          (``transposed=True``), predicted fastest from counted work.
        * ``"gemm"`` — split the output into stride phases; each is a stride-1
          sum of one GEMM per tap over shifted views (exact on small integers).
        * ``"winograd"`` — Winograd's minimal filtering, stride 1.
        * ``"subpixel"`` — a strided transposed layer as stride-1 convolutions,
          one per output phase, interleaved (depth-to-space), each run by the
          best stride-1 method.
        * ``"depthwise"`` — one kernel per channel.
        * ``"fft"`` — products of Fourier transforms, for large kernels.
        * ``"scatter"`` — the textbook recipe: every input element times the
          kernel, added into the output at its stride offset, then cropped
          (one Python step per input position: for teaching and checking).
        * ``"fractional"`` — :func:`zero_insert`, pad by ``d·(k−1) − p`` (a
          negative pad crops; ``output_padding`` extends the high side), then a
          stride-1 :func:`conv` with the flipped, channel-swapped kernel.
        * ``"matrix"`` — multiply by :func:`conv_transpose_matrix`.

        A method that cannot compute the layer raises ``ValueError``.

    Returns
    -------
    numpy.ndarray, shape ``(N, C_out, *out)`` (or ``(C_out, *out)``)
        ``out`` from :func:`conv_transpose_output_shape`.

    Raises
    ------
    ValueError
        For a bad geometry (the messages of :func:`conv_transpose_matrix`), a wrong
        ``method`` or one that cannot compute the layer, an ``x`` of the wrong number
        of dims or a bias of the wrong shape.
    TypeError
        For a hyperparameter of the wrong kind or a non-numeric array.

    See Also
    --------
    conv : the forward convolution; ``conv_transpose`` is its adjoint.
    conv_transpose_matrix : ``Cᵀ`` as a sparse matrix.
    explain_plan : which method ``"auto"`` runs, and why.
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

    W. Shi et al., "Real-time single image and video super-resolution using an
    efficient sub-pixel convolutional neural network", CVPR 2016.

    Examples
    --------
    The example of Dive into Deep Learning, by the tap sum and the three recipes:

    >>> import numpy as np
    >>> X = np.array([[[0.0, 1.0], [2.0, 3.0]]])
    >>> K = [[[[0, 1], [2, 3]]]]
    >>> conv_transpose(X, K, stride=2)
    array([[[0., 0., 0., 1.],
            [0., 0., 2., 3.],
            [0., 2., 0., 3.],
            [4., 6., 6., 9.]]])
    >>> all(np.array_equal(conv_transpose(X, K, stride=2, method=m), conv_transpose(X, K, stride=2))
    ...     for m in ("gemm", "scatter", "fractional", "matrix"))
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
    if method in _TEACHING:
        with np.errstate(**QUIET):
            return _finish(_TEACHING[method](xb, w, layer, b), batched)
    _refuse(method, layer, xb.dtype, transposed=True)
    with np.errstate(**QUIET):
        return _finish(planner.run(xb, w, layer, b, transposed=True, method=method), batched)


# --------------------------------------------------------------------------- explain_plan


def _plan_dtype(dtype: Any) -> np.dtype[Any]:
    """The dtype the fast path computes in for arrays of ``dtype`` (float16 in float32)."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be a NumPy float or complex dtype; got {dtype!r}") from None
    if dt.kind not in "biufc":
        raise TypeError(f"dtype must be a NumPy float or complex dtype; got {dtype!r}")
    if dt.kind in "biu":  # integer arrays count as float64
        return np.dtype(np.float64)
    return np.dtype(np.float32) if dt == np.float16 else dt


def _nonzero(value: Any) -> bool:
    """Whether an int-or-sequence argument has a nonzero entry (checked as ints)."""
    values = scalar(value) if is_sequence(value) else (value,)
    return any(as_int(v, "output_padding") != 0 for v in values)


def explain_plan(
    x_shape: Any,
    weight_shape: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    padding_mode: str = "zeros",
    transposed: bool = False,
    output_padding: Any = 0,
    dtype: Any = "float32",
    threads: Any = None,
) -> Plan:
    r"""Which method ``conv`` (or ``conv_transpose``) runs for a layer, and why.

    Takes the arguments of :func:`conv` / :func:`conv_transpose` with shapes in
    place of arrays; nothing is computed but the plan the fast path would use.

    Parameters
    ----------
    x_shape : sequence of int
        ``(N, C_in, *spatial)`` or ``(C_in, *spatial)`` (one sample), the shape of
        ``x`` in the call.
    weight_shape : sequence of int
        ``(C_out, C_in // groups, *kernel_size)`` (``(C_in, C_out // groups, *k)``
        when ``transposed``), as the weight of the call.
    stride, padding, dilation, groups, padding_mode
        As :func:`conv` (``padding_mode`` only for the forward layer).
    transposed : bool
        Explain :func:`conv_transpose` instead of :func:`conv`.
    output_padding : int or sequence of int
        As :func:`conv_transpose` (only with ``transposed``).
    dtype : dtype-like
        The dtype of the call's arrays (float16 computes in float32, integers in float64).
    threads : int, optional
        The BLAS thread count to plan for (default: the current one).

    Returns
    -------
    Plan
        ``.method`` (the name ``method=`` accepts), ``.reason``, ``.candidates``
        (every method with its counted GEMM flops, bytes moved by NumPy passes and
        predicted time, or the reason it does not apply) and ``.inner`` (the
        stride-1 method a polyphase or sub-pixel plan runs). Printed as a table;
        shown as an HTML table in Jupyter.

    Raises
    ------
    ValueError
        For a bad geometry (the messages of :func:`conv` / :func:`conv_transpose`),
        ``padding_mode`` with ``transposed`` or ``output_padding`` without it, or
        ``threads < 1``.
    TypeError
        For an argument of the wrong kind (a non-numeric ``dtype``, a float ``threads``).

    See Also
    --------
    conv, conv_transpose

    Notes
    -----
    Predicted time is ``flops / GEMM rate + bytes / stream rate + calls · overhead
    (+ FFT points · FFT rate)``, the rates calibrated once per thread count by
    ``benchmarks/fast.py --calibrate`` on the benchmark machine and committed
    (:mod:`convmat._fast.cost`); nothing is timed. Winograd and FFT round
    differently from the tap sum, so they are chosen only when they save a good
    share of a layer of at least a millisecond.

    Examples
    --------
    >>> plan = explain_plan((1, 3, 3), (1, 1, 2, 2))
    >>> plan.method
    'direct'
    >>> explain_plan((8, 64, 16, 16), (64, 1, 3, 3), groups=64, padding=1).candidates[0].method
    'direct'
    >>> explain_plan((1, 2, 2), (1, 1, 2, 2), transposed=True, stride=2).method
    'gemm'
    """
    if not isinstance(transposed, (bool, np.bool_)):
        raise TypeError(f"transposed must be a bool; got {transposed!r}")
    w_shape = spatial_shape(weight_shape, "weight_shape")
    if len(w_shape) < 3:
        raise ValueError(
            f"weight_shape must have shape (C_out, C_in // groups, *kernel_size) with at least "
            f"one spatial dim; got {w_shape}"
        )
    if isinstance(scalar(x_shape), (str, bytes)) or not is_sequence(x_shape):
        raise TypeError(f"x_shape must be a sequence of ints; got {x_shape!r}")
    shape = tuple(as_int(v, "x_shape") for v in scalar(x_shape))
    ndim = len(w_shape) - 2
    if len(shape) not in (ndim + 1, ndim + 2):
        raise ValueError(
            f"x_shape must be (N, C_in, *spatial) or (C_in, *spatial) with {ndim} spatial dims "
            f"to match weight_shape; got {shape}"
        )
    if len(shape) == ndim + 2:
        n_batch, sample = shape[0], shape[1:]
        if n_batch < 0:
            raise ValueError(f"x_shape must have a batch size >= 0; got {shape}")
    else:
        n_batch, sample = 1, shape
    dt = _plan_dtype(dtype)
    if threads is not None:
        threads = as_int(threads, "threads")
        if threads < 1:
            raise ValueError(f"threads must be >= 1; got {threads}")
    if transposed:
        if padding_mode != "zeros":
            raise ValueError(
                f"padding_mode must be 'zeros' for a transposed layer (as torch); got "
                f"{padding_mode!r}"
            )
        layer = conv_transpose_layer(
            sample,
            w_shape,
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            dilation=dilation,
            groups=groups,
            input_name="x_shape",
        )
    else:
        if _nonzero(output_padding):
            raise ValueError(
                f"output_padding must be 0 for a forward layer (transposed=False); got "
                f"{output_padding!r}"
            )
        layer = conv_layer(
            sample,
            w_shape,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            padding_mode=padding_mode,
            input_name="x_shape",
        )
    return planner.plan(layer, max(n_batch, 1), dt, transposed=bool(transposed), threads=threads)
