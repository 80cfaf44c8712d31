"""Matrix-free operators of convolution layers, and the least-squares inverse through them.

A :class:`ConvOperator` is a :class:`scipy.sparse.linalg.LinearOperator` with the
shape of the layer's matrix whose products run the fast path (the method the
planner picks for the layer, as :func:`conv` does), so it serves
layers whose matrix would never fit in memory. ``C`` and ``Cᵀ`` are the same
object read two ways (``transposed``), exactly as the matrices are one pattern
read two ways: ``.T`` swaps them, ``.H`` also conjugates the weight.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from scipy.sparse import csr_array
from scipy.sparse.linalg import LinearOperator, lsmr

from convmat._args import TensorInput, as_int, nonnegative, numeric_array
from convmat._fast import QUIET
from convmat._fast.planner import run
from convmat._layer import Layer, conv_layer, conv_transpose_layer
from convmat._matrix import DEFAULT_MAX_BYTES, _operands, _weight, layer_matrix
from convmat._pattern import _fold

Array = np.ndarray[Any, Any]


def _pad_adjoint(z: Array, layer: Layer) -> Array:
    """The adjoint of ``numpy.pad`` with the layer's folded padding: sum pads back in."""
    for axis, ((lo, hi), n) in enumerate(zip(layer.padding, layer.in_spatial, strict=True)):
        ax = axis + 2
        source = _fold(np.arange(n + lo + hi) - lo, n, layer.padding_mode)
        core = np.take(z, np.arange(lo, lo + n), axis=ax)
        for position in [*range(lo), *range(lo + n, lo + n + hi)]:
            index = [slice(None)] * z.ndim
            index[ax] = slice(int(source[position]), int(source[position]) + 1)
            core[tuple(index)] += np.take(z, [position], axis=ax)
        z = core
    return z


def _apply(layer: Layer, weight: Array, x: Array, *, transposed: bool) -> Array:
    """``C x`` (or ``Cᵀ x``) for a batch ``x`` of flattened samples, shape ``(K, ·)``."""
    with np.errstate(**QUIET):
        return _apply_quietly(layer, weight, x, transposed=transposed)


def _apply_quietly(layer: Layer, weight: Array, x: Array, *, transposed: bool) -> Array:
    """The products through the planner (:func:`convmat._fast.planner.run`): each call runs
    the method planned for the layer and the batch size, the plan cached on the geometry."""
    if not transposed:
        batch = x.reshape(-1, *layer.input_shape)
        return run(batch, weight, layer, None, transposed=False).reshape(len(batch), layer.out_size)
    batch = x.reshape(-1, *layer.output_shape)
    if layer.padding_mode == "zeros":
        return run(batch, weight, layer, None, transposed=True).reshape(len(batch), layer.in_size)
    # Transpose onto the padded grid with zero padding, then fold the pads back.
    padded = Layer(
        layer.in_channels,
        layer.out_channels,
        layer.groups,
        tuple(n + lo + hi for n, (lo, hi) in zip(layer.in_spatial, layer.padding, strict=True)),
        layer.out_spatial,
        layer.kernel_size,
        layer.stride,
        layer.dilation,
        tuple((0, 0) for _ in layer.padding),
    )
    z = run(batch, weight, padded, None, transposed=True)
    return _pad_adjoint(z, layer).reshape(len(batch), layer.in_size)


class ConvOperator(TensorInput, LinearOperator):  # type: ignore[misc]
    """The matrix ``C`` of a convolution layer (or ``Cᵀ``), applied without building it.

    Made by :func:`conv_operator` and :func:`conv_transpose_operator`. Vectors are
    samples flattened in C order (channel, then spatial), as for the matrices.

    Attributes
    ----------
    layer : the validated forward layer (geometry, channels, padding mode)
    weight : numpy.ndarray, the forward layer's weight ``(C_out, C_in // groups, *k)``
    transposed : bool, whether this is ``Cᵀ`` rather than ``C``
    input_shape, output_shape : tuple of int, the shapes of one sample in and out
    """

    def __init__(self, layer: Layer, weight: Array, *, transposed: bool) -> None:
        self.layer = layer
        self.weight = weight
        self.transposed = transposed
        self.input_shape = layer.output_shape if transposed else layer.input_shape
        self.output_shape = layer.input_shape if transposed else layer.output_shape
        shape = (math.prod(self.output_shape), math.prod(self.input_shape))
        super().__init__(dtype=weight.dtype, shape=shape)

    def _run(self, x: Any, *, adjoint: bool) -> Array:
        """The operator (or its adjoint) on a batch of flattened samples ``(K, ·)``.

        Vector and weight are brought to one dtype first, as :func:`conv` does (a real
        vector with a complex weight, a float64 vector with a float32 weight).
        """
        xa = np.asarray(x)
        w = self._conj_weight() if adjoint else self.weight
        dtype = np.result_type(xa, w)
        return _apply(
            self.layer,
            w.astype(dtype, copy=False),
            xa.astype(dtype, copy=False),
            transposed=self.transposed != adjoint,
        )

    def _conj_weight(self) -> Array:
        return self.weight.conj() if np.iscomplexobj(self.weight) else self.weight

    def _matmat(self, x: Array) -> Array:
        result: Array = self._run(np.asarray(x).T, adjoint=False).T
        return result

    def _matvec(self, x: Array) -> Array:
        return self._run(x, adjoint=False).reshape(-1)

    def _rmatmat(self, y: Array) -> Array:
        result: Array = self._run(np.asarray(y).T, adjoint=True).T
        return result

    def _rmatvec(self, y: Array) -> Array:
        return self._run(y, adjoint=True).reshape(-1)

    def _transpose(self) -> ConvOperator:
        return ConvOperator(self.layer, self.weight, transposed=not self.transposed)

    def _adjoint(self) -> ConvOperator:
        return ConvOperator(self.layer, self._conj_weight(), transposed=not self.transposed)

    def tosparse(self, *, max_bytes: Any = DEFAULT_MAX_BYTES) -> csr_array:
        """The explicit matrix: :func:`conv_matrix` (or its transpose), same checks."""
        return layer_matrix(
            self.layer, self.weight, transposed=self.transposed, max_bytes=max_bytes
        )

    def __repr__(self) -> str:
        kind = "conv_transpose" if self.transposed else "conv"
        rows, cols = self.shape
        return (
            f"<{rows}x{cols} ConvOperator ({kind}, {self.layer.ndim}-d): "
            f"{self.input_shape} -> {self.output_shape}, dtype={self.dtype}>"
        )


def conv_operator(
    input_shape: Any,
    weight: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    padding_mode: str = "zeros",
) -> ConvOperator:
    r"""The matrix of a convolution layer as a matrix-free ``LinearOperator``.

    Same arguments and shape as :func:`conv_matrix`, but nothing is built:
    ``matvec``/``matmat`` run :func:`conv`, ``rmatvec``/``rmatmat`` its adjoint
    (the transposed convolution, with the weight conjugated when complex), so it
    works for layers whose matrix would be refused for size.

    Parameters
    ----------
    input_shape : sequence of int
        ``(C_in, *spatial)`` of one sample, or, for one channel in and one out,
        ``spatial`` with the bare kernel as ``weight`` — the two shape conventions of
        :func:`conv_matrix`, decided by the number of axes alone.
    weight : array_like, shape ``(C_out, C_in // groups, *kernel_size)`` or ``kernel_size``
        A kernel with as many axes as ``input_shape`` (or one fewer, with
        ``input_shape = (1, *spatial)``) is one channel's, read as ``(1, 1, *kernel_size)``.
        Its dtype is the operator's (integers become float64).
    stride, padding, dilation, groups, padding_mode
        As :func:`conv_matrix`.

    Returns
    -------
    ConvOperator
        A :class:`scipy.sparse.linalg.LinearOperator` of shape ``(C_out·∏out, C_in·∏in)``;
        ``.T`` is :func:`conv_transpose_operator` of the same layer, ``.H`` its
        conjugate, ``.tosparse()`` the :func:`conv_matrix`.

    Raises
    ------
    ValueError, TypeError
        As :func:`conv_matrix` (the same checker), before anything is computed.

    See Also
    --------
    conv_matrix, conv_transpose_operator, deconvolve

    Notes
    -----
    ``C`` acts on samples flattened in C order; ``matmat`` treats the columns of
    its argument as a batch. The adjoint satisfies the dot test
    ``⟨C x, y⟩ = ⟨x, Cᴴ y⟩`` (:func:`convmat.testing.dot_test`).

    Examples
    --------
    >>> import numpy as np
    >>> C = conv_operator((1, 3, 3), [[[[1, 2], [3, 4]]]])
    >>> C
    <4x9 ConvOperator (conv, 2-d): (1, 3, 3) -> (1, 2, 2), dtype=float64>
    >>> C @ np.arange(9.0)
    array([27., 37., 57., 67.])
    >>> C.tosparse().toarray()[0]
    array([1., 2., 0., 3., 4., 0., 0., 0., 0.])
    >>> C.T @ np.ones(4)
    array([ 1.,  3.,  2.,  4., 10.,  6.,  3.,  7.,  4.])

    One channel, without the channel axes: the same operator, the same ``(1, *spatial)``
    sample shapes.

    >>> conv_operator((3, 3), [[1, 2], [3, 4]])
    <4x9 ConvOperator (conv, 2-d): (1, 3, 3) -> (1, 2, 2), dtype=float64>
    """
    input_shape, w = _operands(input_shape, weight)
    return _forward_operator(
        input_shape,
        w,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
    )


def _forward_operator(input_shape: Any, w: Array, **geometry: Any) -> ConvOperator:
    """The operator of a convolution in the full layout (``w`` already read and checked)."""
    return ConvOperator(conv_layer(input_shape, w.shape, **geometry), w, transposed=False)


def conv_transpose_operator(
    input_shape: Any,
    weight: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
) -> ConvOperator:
    r"""The matrix of a transposed convolution as a matrix-free ``LinearOperator``.

    Same arguments and shape as :func:`conv_transpose_matrix`; ``matvec`` runs
    :func:`conv_transpose`, ``rmatvec`` the forward :func:`conv` (the adjoint).

    Parameters
    ----------
    input_shape : sequence of int
        ``(C_in, *spatial)`` of the transposed layer, or ``spatial`` with a bare kernel
        (one channel in and one out), as :func:`conv_operator`.
    weight : array_like, shape ``(C_in, C_out // groups, *kernel_size)`` or ``kernel_size``
    stride, padding, output_padding, dilation, groups
        As :func:`conv_transpose_matrix`.

    Returns
    -------
    ConvOperator
        Shape ``(C_out·∏out, C_in·∏in)``; ``.T`` is the forward layer's operator.

    Raises
    ------
    ValueError, TypeError
        As :func:`conv_transpose_matrix`.

    See Also
    --------
    conv_transpose_matrix, conv_operator

    Examples
    --------
    >>> import numpy as np
    >>> T = conv_transpose_operator((1, 2, 2), [[[[0, 1], [2, 3]]]], stride=2)
    >>> (T @ np.array([0.0, 1.0, 2.0, 3.0])).reshape(4, 4)
    array([[0., 0., 0., 1.],
           [0., 0., 2., 3.],
           [0., 2., 0., 3.],
           [4., 6., 6., 9.]])
    >>> T.T
    <4x16 ConvOperator (conv, 2-d): (1, 4, 4) -> (1, 2, 2), dtype=float64>
    >>> conv_transpose_operator((2, 2), [[0, 1], [2, 3]], stride=2)
    <16x4 ConvOperator (conv_transpose, 2-d): (1, 2, 2) -> (1, 4, 4), dtype=float64>
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
    return ConvOperator(layer, w, transposed=True)


def _widened(op: ConvOperator, wide: np.dtype[Any]) -> ConvOperator:
    """``op`` with its weight in ``wide`` (float64 or complex128), the dtype LSMR runs in."""
    if op.dtype == wide:
        return op
    return ConvOperator(op.layer, op.weight.astype(wide), transposed=op.transposed)


class DeconvolveResult(NamedTuple):
    """What :func:`deconvolve` returns: the estimate and how the solver stopped.

    Fields after ``x`` are those of :func:`scipy.sparse.linalg.lsmr`.
    """

    x: Array
    """The least-squares input estimate, shape ``input_shape``."""
    istop: int
    """Why LSMR stopped: 0 (x = 0 solves it), 1–2 (tolerances met), 3 (condition
    limit), 4–5 (machine precision), 7 (``iter_lim`` reached)."""
    itn: int
    """Iterations run."""
    normr: float
    """``‖y − C x‖`` (with ``damp``: ``sqrt(‖y − C x‖² + damp²‖x‖²)``)."""
    normar: float
    """``‖Cᴴ (y − C x) − damp² x‖``: zero at the least-squares solution."""
    norma: float
    """Estimate of the Frobenius norm of ``[C; damp·I]``."""
    conda: float
    """Estimate of the condition number of ``[C; damp·I]``."""
    normx: float
    """``‖x‖``."""

    @property
    def converged(self) -> bool:
        """Whether a tolerance was met (``istop`` in 0, 1, 2, 4, 5)."""
        return self.istop in (0, 1, 2, 4, 5)

    def _figures(self) -> list[tuple[str, Any]]:
        stop = "converged" if self.converged else "not converged"
        return [
            ("stopped", f"{stop} (istop {self.istop}) after {self.itn} iterations"),
            ("‖y − Cx‖", float(self.normr)),
            ("‖Cᴴ(y − Cx)‖", float(self.normar)),
            ("cond estimate", float(self.conda)),
            ("‖x‖", float(self.normx)),
        ]

    def __repr__(self) -> str:
        from convmat._display import summary

        return (
            f"DeconvolveResult(x: {summary(self.x)}; "
            f"{'converged' if self.converged else 'NOT converged'} (istop={self.istop}) "
            f"in itn={self.itn}; normr={self.normr:.3g}, normar={self.normar:.3g}, "
            f"conda={self.conda:.3g}, normx={self.normx:.3g})"
        )

    def _repr_html_(self) -> str:
        from convmat._display import html_table, summary

        rows = [("x", summary(self.x)), *self._figures()]
        return html_table(("DeconvolveResult", ""), rows)


def deconvolve(
    y: Any,
    weight: Any,
    input_shape: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    padding_mode: str = "zeros",
    damp: Any = 0.0,
    atol: Any = 1e-6,
    btol: Any = 1e-6,
    conlim: Any = 1e8,
    iter_lim: Any = None,
) -> DeconvolveResult:
    r"""The least-squares inverse of a convolution layer: the ``x`` that best explains ``y``.

    Solves ``min ‖C x − y‖² + damp²‖x‖²`` with LSMR on :func:`conv_operator`,
    so no matrix is built. This is what "deconvolution" means; the transposed
    convolution :func:`conv_transpose` computes ``Cᵀ y`` instead, which is not
    the inverse unless ``C`` is orthogonal. The iteration runs in float64
    (complex128 for complex data) whatever the dtype of ``y`` and ``weight``;
    ``x`` comes back in their dtype.

    Parameters
    ----------
    y : array_like, shape ``(C_out, *out)``
        One output sample of the layer.
    weight : array_like, shape ``(C_out, C_in // groups, *kernel_size)``
    input_shape : sequence of int
        ``(C_in, *spatial)`` of the unknown input. Channel axes are required, as
        :func:`conv` requires them (no single-channel shorthand).
    stride, padding, dilation, groups, padding_mode
        As :func:`conv`.
    damp : float
        Tikhonov damping (0: plain least squares).
    atol, btol, conlim : float
        LSMR's stopping tolerances and condition limit; tighten ``atol`` and
        ``btol`` (say to ``1e-12``) for an exact recovery.
    iter_lim : int, optional
        Iteration cap (default: LSMR's, ``min(rows, columns)``).

    Returns
    -------
    DeconvolveResult
        ``(x, istop, itn, normr, normar, norma, conda, normx)`` and ``.converged``;
        ``x`` has shape ``input_shape`` and the dtype ``y`` and ``weight`` promote to
        (float32 data gives a float32 ``x``; integers read as float64).

    Raises
    ------
    ValueError
        For a bad geometry (the messages of :func:`conv_matrix`), a ``y`` whose shape
        is not the layer's output, or a negative tolerance.
    TypeError
        For an argument of the wrong kind.

    See Also
    --------
    conv_operator, conv_transpose, scipy.sparse.linalg.lsmr

    Notes
    -----
    When ``C`` has full column rank (e.g. stride 1, enough padding, a kernel without
    zeros in its transfer function) the solution is unique and equals the true
    input of a noise-free ``y``. Otherwise LSMR returns the minimum-norm solution.

    SciPy's LSMR computes its norms and recurrences in the dtype of its operands and
    mixes them with float64 bounds (``1e100``). In float32 that overflows on ordinary
    data, and a small ``y`` (about ``1e-20``) has a norm that underflows to zero, so
    ``x = 0`` would come back as the solution; hence the float64 iteration, on a
    float64 copy of the weight.

    References
    ----------
    D. C.-L. Fong and M. A. Saunders, "LSMR: An iterative algorithm for sparse
    least-squares problems", SIAM J. Sci. Comput. 33(5), 2011.

    Examples
    --------
    >>> import numpy as np
    >>> from convmat import conv, conv_transpose
    >>> w = np.array([[[[1.0, 0.5], [0.25, 0.125]]]])
    >>> x = np.arange(9.0).reshape(1, 3, 3)
    >>> y = conv(x, w, padding=1)
    >>> est = deconvolve(y, w, (1, 3, 3), padding=1, atol=1e-12, btol=1e-12)
    >>> est.converged, np.allclose(est.x, x)
    (True, True)
    >>> np.allclose(conv_transpose(y, w, padding=1), x)
    False
    """
    # Channel axes required, as conv (which gives y) requires them.
    op = _forward_operator(
        input_shape,
        _weight(weight),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
    )
    b = numeric_array(y, "y")
    if b.shape != op.output_shape:
        raise ValueError(
            f"y must have shape {op.output_shape} (the layer's output for input_shape "
            f"{op.input_shape}); got shape {b.shape}"
        )
    options = {
        name: nonnegative(value, name)
        for name, value in (("damp", damp), ("atol", atol), ("btol", btol), ("conlim", conlim))
    }
    limit = None if iter_lim is None else as_int(iter_lim, "iter_lim")
    if limit is not None and limit < 1:
        raise ValueError(f"iter_lim must be >= 1; got {limit}")
    dtype = np.result_type(op.dtype, b.dtype)
    wide = np.result_type(dtype, np.float64)
    x, istop, itn, normr, normar, norma, conda, normx = lsmr(
        _widened(op, wide), b.ravel().astype(wide), maxiter=limit, **options
    )
    return DeconvolveResult(
        np.asarray(x).astype(dtype, copy=False).reshape(op.input_shape),
        int(istop),
        int(itn),
        float(normr),
        float(normar),
        float(norma),
        float(conda),
        float(normx),
    )
