"""Exact formulas of convolution and transposed convolution, with SymPy: computing only.

This module computes — symbols, output formulas, the matrices C and Cᵀ, the scatter
steps, the worked ``convmat explain`` example — and draws nothing: text grids, LaTeX
and the explain report are the renderers' (:mod:`convmat._render`,
:mod:`convmat._render_explain`), which the objects' ``__str__`` and ``_repr_latex_``
call. A new view of these results is a new renderer, not a new derivation.

The one public module of convmat that imports SymPy (``from convmat import symbolic``;
``import convmat`` never loads it, nor the renderers). Every formula and matrix here is
the shared sparsity pattern of :mod:`convmat._pattern` filled with symbols instead of
numbers — which input feeds which output through which kernel tap is never
derived a second time, and no dense matrix is ever multiplied — so after
substituting numbers the results equal :func:`convmat.conv_matrix` and
:func:`convmat.conv_transpose_matrix` exactly.

Conventions are PyTorch's, as everywhere in convmat. A kernel ``w`` with as
many axes as ``x`` is one channel (``x`` and ``w`` purely spatial); a kernel
with one more axis is the full layout: ``x`` is ``(C_in, *spatial)`` and ``w``
is ``(C_out, C_in // groups, *k)`` for a convolution, ``(C_in, C_out // groups, *k)``
for a transposed one.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import sympy
from sympy.tensor.array import NDimArray

from convmat import _render
from convmat._args import as_array, spatial_shape
from convmat._layer import Layer, channel_layout, conv_layer, conv_transpose_layer
from convmat._pattern import block_shifts, block_template, channel_blocks

__all__ = [
    "ScatterSteps",
    "Step",
    "conv",
    "conv_matrix",
    "conv_transpose",
    "conv_transpose_matrix",
    "scatter_steps",
    "symbols",
]

Shape = tuple[int, ...]

_Formatter = _render.Formatter  # the one formula formatter, also reached as symbolic._Formatter


# ---------------------------------------------------------------- symbols and operands


def _shaped(flat: list[Any], shape: Shape) -> Any:
    """A ``sympy.Matrix`` for a 2-d shape, an immutable ``sympy.Array`` otherwise."""
    if len(shape) == 2:
        return sympy.Matrix(shape[0], shape[1], flat)
    return sympy.Array(flat, shape)


def _indices(shape: Shape) -> Iterator[Shape]:
    return itertools.product(*(range(n) for n in shape))


def symbols(name: str, shape: int | Sequence[int], *, real: bool = True) -> Any:
    """An array of distinct symbols ``name_<index>``, one per element of ``shape``.

    Parameters
    ----------
    name : str
        The base letter (or word), e.g. ``"x"`` or ``"w"``; an identifier without ``_``.
    shape : int or sequence of int
        An int is a 1-d shape.
    real : bool
        Give the symbols SymPy's ``real=True`` assumption (the default); ``False``
        leaves them without assumptions (complex).

    Returns
    -------
    sympy.Matrix or sympy.Array
        A ``Matrix`` when ``shape`` has two axes, an immutable ``Array`` otherwise.

    Raises
    ------
    TypeError
        For a non-string ``name``, a non-bool ``real`` or non-integer sizes.
    ValueError
        For an empty or ill-formed ``name`` or a size below 1.

    Notes
    -----
    The index is written in C order after an underscore: ``x_01`` pretty-prints as
    x₀₁ and as ``x_{01}`` in LaTeX. When a shape of two or more axes has an axis
    longer than 10, an index digit could belong to either axis, so the indices
    are separated by commas everywhere in that array: ``x_1,12`` (``x_{1,12}``).

    Examples
    --------
    >>> from convmat.symbolic import symbols
    >>> symbols("x", (2, 2))
    Matrix([
    [x_00, x_01],
    [x_10, x_11]])
    >>> symbols("w", 3)
    [w_0, w_1, w_2]
    >>> symbols("x", (2, 12))[1, 11]
    x_1,11
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str; got {name!r}")
    if not name.isidentifier() or "_" in name:
        raise ValueError(f"name must be an identifier without '_', such as 'x'; got {name!r}")
    if not isinstance(real, bool):
        raise TypeError(f"real must be a bool; got {real!r}")
    dims = spatial_shape(shape, "shape")
    sep = "," if len(dims) > 1 and max(dims) > 10 else ""
    assumptions = {"real": True} if real else {}
    flat = [
        sympy.Symbol(f"{name}_{sep.join(map(str, index))}", **assumptions)
        for index in _indices(dims)
    ]
    return _shaped(flat, dims)


def _elements(a: Any, name: str) -> tuple[Shape, list[Any]]:
    """Shape and C-ordered elements of an array of numbers or SymPy expressions."""
    if isinstance(a, (str, bytes)):
        raise TypeError(f"{name} must be an array of numbers or SymPy expressions; got {a!r}")
    if isinstance(a, sympy.MatrixBase):
        shape: Shape = tuple(a.shape)
        flat = list(a)
    elif isinstance(a, NDimArray):
        shape = tuple(int(n) for n in a.shape)
        flat = list(a.reshape(len(a))) if shape else [a[()]]
    else:
        try:
            arr = np.asarray(as_array(a), dtype=object)
        except ValueError:
            raise ValueError(
                f"{name} must be a rectangular array; got ragged nested sequences"
            ) from None
        shape = arr.shape
        if any(isinstance(v, (Sequence, np.ndarray)) for v in arr.flat):
            raise ValueError(f"{name} must be a rectangular array; got ragged nested sequences")
        try:
            flat = [sympy.sympify(v, strict=True) for v in arr.ravel()]
        except sympy.SympifyError as err:
            raise TypeError(
                f"{name} must hold numbers or SymPy expressions; got {err.expr!r}"
            ) from None
    bad = next((v for v in flat if not isinstance(v, sympy.Expr)), None)
    if bad is not None:
        raise TypeError(f"{name} must hold numbers or SymPy expressions; got {bad!r}")
    if not shape:
        raise ValueError(f"{name} must be an array with at least one axis; got the scalar {a!r}")
    if 0 in shape:
        raise ValueError(f"{name} must have no empty axis; got shape {shape}")
    return shape, flat


def _layout(x_shape: Shape, w_shape: Shape, x_name: str = "x") -> tuple[Shape, Shape, bool]:
    """``(input_shape, weight_shape, channels)`` of a layer from the operands' shapes."""
    return channel_layout(x_shape, w_shape, name=x_name, weight_name="w")


# ---------------------------------------------------------------- the pattern, filled


class _Row(NamedTuple):
    row: int
    columns: list[int]
    values: list[Any]


def _rows(layer: Layer, kernels: np.ndarray[Any, Any], *, transposed: bool) -> Iterator[_Row]:
    """Every row of C (or of Cᵀ) in order: its columns and their kernel sums.

    The spatial pattern is filled once with the symbolic ``kernels`` (taps read by
    one entry are summed, as in folded padding) and repeated over channel blocks
    with :func:`convmat._pattern.block_template`, exactly as the numeric matrix is.
    """
    pattern, kernels = channel_blocks(layer, kernels, transposed=transposed)
    n_blocks, per_group = kernels.shape[:2]
    values = pattern.fill(kernels).reshape(n_blocks, -1)
    block = block_template(pattern, per_group)
    if block.entry is not None:
        values = values[:, block.entry]
    n_rows, n_cols = pattern.shape
    bounds = block.indptr.tolist()
    shifts = block_shifts(n_blocks, layer.groups, per_group, n_cols)
    for a in range(n_blocks):
        columns = (block.columns + shifts[a]).tolist()
        row_values = values[a].tolist()
        for r in range(n_rows):
            lo, hi = bounds[r], bounds[r + 1]
            yield _Row(a * n_rows + r, columns[lo:hi], row_values[lo:hi])


_CANONICAL = functools.cmp_to_key(sympy.Basic.compare)  # SymPy's own order of Add/Mul args


class _Terms:
    """Products of two symbols, and sums of them, made directly in SymPy's canonical form.

    SymPy stores ``a*b`` (distinct commutative symbols) as a ``Mul`` of its factors
    sorted by ``Basic.compare``, and a sum of distinct such products as an ``Add``
    of them sorted the same way — lexicographically by their factors. Ranking the
    operands' symbols once in that order lets every formula be assembled without
    SymPy's general simplification, about ten times faster, into the identical
    objects (``==``, hash, printing; tested). Anything else — numbers, repeated
    factors, sums of taps from folded padding — takes the ordinary ``a * b`` / ``Add``.
    """

    def __init__(self, *operands: Iterable[Any]) -> None:
        plain = {
            s for group in operands for s in group if type(s) is sympy.Symbol and s.is_commutative
        }
        self.rank = {s: i for i, s in enumerate(sorted(plain, key=_CANONICAL))}

    def product(self, a: Any, b: Any) -> tuple[Any, tuple[int, int] | None]:
        """``a * b`` and, when built directly, its sort key (else ``None``)."""
        ra, rb = self.rank.get(a), self.rank.get(b)
        if ra is None or rb is None or ra == rb:
            return a * b, None
        if ra < rb:
            return sympy.Mul._from_args((a, b), True), (ra, rb)
        return sympy.Mul._from_args((b, a), True), (rb, ra)

    def total(self, terms: list[tuple[Any, tuple[int, int] | None]]) -> Any:
        """The sum of :meth:`product` results."""
        keys = [key for _, key in terms]
        if len(terms) > 1 and None not in keys and len(set(keys)) == len(keys):
            ordered = sorted(terms, key=lambda term: term[1])  # type: ignore[arg-type,return-value]
            return sympy.Add._from_args([t for t, _ in ordered], True)
        return sympy.Add(*[t for t, _ in terms])


def _formulas(rows: Iterable[_Row], x: list[Any], w: list[Any], size: int) -> list[Any]:
    """``y = M x`` row by row, as sums of products, straight from the filled pattern."""
    terms = _Terms(x, w)
    y: list[Any] = [sympy.S.Zero] * size
    for row, columns, values in rows:
        y[row] = terms.total([terms.product(x[c], v) for c, v in zip(columns, values, strict=True)])
    return y


def _sparse(rows: Iterable[_Row], shape: tuple[int, int]) -> Any:
    entries = {
        (row, c): v
        for row, columns, values in rows
        for c, v in zip(columns, values, strict=True)
        if v != 0
    }
    return sympy.SparseMatrix(shape[0], shape[1], entries)


class _Operands(NamedTuple):
    layer: Layer
    x: list[Any]
    w: list[Any]
    x_shape: Shape
    channels: bool

    @property
    def kernels(self) -> np.ndarray[Any, Any]:
        """The weights as an object array ``(C_out, C_in // groups, ∏k)`` of the forward layer."""
        kernels = np.empty(len(self.w), dtype=object)
        kernels[:] = self.w
        layer = self.layer
        return kernels.reshape(layer.out_channels, layer.in_channels // layer.groups, -1)


def _operands(
    x: Any, w: Any, transposed: bool, geometry: dict[str, Any], *, shape_only: bool = False
) -> _Operands:
    """Check the operands and validate the layer; ``shape_only``: ``x`` is only a shape."""
    xs: list[Any] = []
    if shape_only:  # SymPy's own shapes are sympy.Tuple
        name = "spatial_or_input_shape"
        x_shape = spatial_shape(tuple(x) if isinstance(x, sympy.Tuple) else x, name)
    else:
        name = "x"
        x_shape, xs = _elements(x, name)
    w_shape, ws = _elements(w, "w")
    input_shape, weight_shape, channels = _layout(x_shape, w_shape, name)
    make = conv_transpose_layer if transposed else conv_layer
    return _Operands(make(input_shape, weight_shape, **geometry), xs, ws, x_shape, channels)


def _apply(x: Any, w: Any, transposed: bool, geometry: dict[str, Any]) -> Any:
    """The output formulas of :func:`conv` (Cx) or :func:`conv_transpose` (Cᵀx)."""
    ops = _operands(x, w, transposed, geometry)
    layer = ops.layer
    rows = _rows(layer, ops.kernels, transposed=transposed)
    if transposed:
        size, shape = layer.in_size, layer.input_shape if ops.channels else layer.in_spatial
    else:
        size, shape = layer.out_size, layer.output_shape if ops.channels else layer.out_spatial
    return _shaped(_formulas(rows, ops.x, ops.w, size), shape)


def _matrix(shape: Any, w: Any, transposed: bool, geometry: dict[str, Any]) -> Any:
    """:func:`conv_matrix` (C) or :func:`conv_transpose_matrix` (Cᵀ)."""
    layer = (ops := _operands(shape, w, transposed, geometry, shape_only=True)).layer
    size = (layer.in_size, layer.out_size) if transposed else (layer.out_size, layer.in_size)
    return _sparse(_rows(layer, ops.kernels, transposed=transposed), size)


# ---------------------------------------------------------------- public formulas


def conv(
    x: Any,
    w: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    padding_mode: str = "zeros",
) -> Any:
    r"""Exact output formulas of a convolution (cross-correlation, as in PyTorch).

    Parameters
    ----------
    x : array_like of numbers or SymPy expressions
        One channel ``(*spatial)`` when ``w`` has as many axes, else ``(C_in, *spatial)``.
    w : array_like of numbers or SymPy expressions
        ``(*k)`` for one channel, else ``(C_out, C_in // groups, *k)``.
    stride, dilation : int or sequence of int
    padding : int, sequence of int, sequence of (low, high) pairs, or "valid" / "same" / "full"
    groups : int
    padding_mode : {"zeros", "reflect", "replicate", "circular"}
        Folded padding reads some inputs through several taps: their weights are summed.

    Returns
    -------
    sympy.Matrix or sympy.Array
        Shape ``(*out)`` for one channel, ``(C_out, *out)`` otherwise (a ``Matrix``
        when that is 2-d).

    Raises
    ------
    ValueError, TypeError
        As :func:`convmat.conv_matrix`, and for operands that are not arrays of numbers
        or expressions or whose axes do not match.

    See Also
    --------
    conv_transpose, conv_matrix, convmat.conv_matrix

    Notes
    -----
    Row ``(c, o)`` of the convolution matrix gives

    .. math::

        y[c, \mathbf{o}] = \sum_{j} \sum_{\mathbf{t}} w[c, j, \mathbf{t}]\,
            x[g(c)\,C_{in}/G + j,\ \mathbf{o}\mathbf{s} + \mathbf{t}\mathbf{d} - \mathbf{lo}],

    built from the shared sparsity pattern: one product per stored entry.

    References
    ----------
    V. Dumoulin and F. Visin, "A guide to convolution arithmetic for deep learning",
    arXiv:1603.07285, 2016.

    Examples
    --------
    >>> from convmat.symbolic import conv, symbols
    >>> x, w = symbols("x", (3, 3)), symbols("w", (2, 2))
    >>> conv(x, w)[0, 0]
    w_00*x_00 + w_01*x_01 + w_10*x_10 + w_11*x_11
    >>> conv(x, [[1, 2], [3, 4]]).subs({s: v for s, v in zip(x, range(9))})
    Matrix([
    [27, 37],
    [57, 67]])
    """
    return _apply(
        x,
        w,
        False,
        dict(
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            padding_mode=padding_mode,
        ),
    )


def conv_transpose(
    x: Any,
    w: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
) -> Any:
    r"""Exact output formulas of a transposed convolution (``vec(y) = Cᵀ vec(x)``).

    Parameters
    ----------
    x : array_like of numbers or SymPy expressions
        One channel ``(*spatial)`` when ``w`` has as many axes, else ``(C_in, *spatial)``.
    w : array_like of numbers or SymPy expressions
        ``(*k)`` for one channel, else ``(C_in, C_out // groups, *k)`` as
        ``torch.nn.ConvTransposeNd.weight``.
    stride, dilation, output_padding : int or sequence of int
    padding : int, sequence of int or of (low, high) pairs
        The forward layer's padding; it crops the output.
    groups : int

    Returns
    -------
    sympy.Matrix or sympy.Array
        Shape ``(*out)`` for one channel, ``(C_out, *out)`` otherwise, with ``out``
        from :func:`convmat.conv_transpose_output_shape`.

    Raises
    ------
    ValueError, TypeError
        As :func:`convmat.conv_transpose_matrix`, and for bad operands.

    See Also
    --------
    scatter_steps : the same result as a sum of scattered kernels.
    conv_transpose_matrix

    Notes
    -----
    Every input element scatters the whole kernel into the output at its stride
    offset; output ``o`` collects

    .. math::

        y[\mathbf{o}] = \sum_{\mathbf{i}, \mathbf{t}:\ \mathbf{i}\mathbf{s} + \mathbf{t}\mathbf{d}
            - \mathbf{lo} = \mathbf{o}} x[\mathbf{i}]\, w[\mathbf{t}],

    read off the rows of the transposed pattern.

    References
    ----------
    V. Dumoulin and F. Visin, "A guide to convolution arithmetic for deep learning",
    arXiv:1603.07285, 2016, section 4.

    Examples
    --------
    The textbook example: a 2×2 input, a 2×2 kernel, stride 1.

    >>> from convmat.symbolic import conv_transpose, symbols
    >>> x, w = symbols("x", (2, 2)), symbols("w", (2, 2))
    >>> y = conv_transpose(x, w)
    >>> y.shape, y[1, 1]
    ((3, 3), w_00*x_11 + w_01*x_10 + w_10*x_01 + w_11*x_00)
    >>> conv_transpose([[0, 1], [2, 3]], [[0, 1], [2, 3]])
    Matrix([
    [0,  0, 1],
    [0,  4, 6],
    [4, 12, 9]])
    """
    return _apply(
        x,
        w,
        True,
        dict(
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            dilation=dilation,
            groups=groups,
        ),
    )


def conv_matrix(
    spatial_or_input_shape: int | Sequence[int],
    w: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    padding_mode: str = "zeros",
) -> Any:
    """The convolution matrix C with the kernel's entries: ``vec(conv(x, w)) == C vec(x)``.

    Parameters
    ----------
    spatial_or_input_shape : int or sequence of int
        The input's spatial shape when ``w`` is one channel's kernel (as many axes),
        else ``(C_in, *spatial)``.
    w : array_like of numbers or SymPy expressions
        ``(*k)``, or ``(C_out, C_in // groups, *k)``.
    stride, padding, dilation, groups, padding_mode
        As :func:`conv`.

    Returns
    -------
    sympy.SparseMatrix, shape ``(C_out·∏out, C_in·∏in)``
        Entries are kernel entries (sums of them where folded padding reads one input
        through several taps); rows and columns in C order.

    Raises
    ------
    ValueError, TypeError
        As :func:`conv`.

    See Also
    --------
    conv_transpose_matrix : its transpose, the transposed convolution.
    convmat.conv_matrix : the same matrix with numbers, as SciPy CSR.

    Notes
    -----
    The same pattern as :func:`convmat.conv_matrix`, filled with ``w``'s entries; no
    dense matrix is formed.

    Examples
    --------
    >>> from convmat.symbolic import conv_matrix, symbols
    >>> conv_matrix((3, 3), symbols("w", (2, 2)))
    Matrix([
    [w_00, w_01,    0, w_10, w_11,    0,    0,    0,    0],
    [   0, w_00, w_01,    0, w_10, w_11,    0,    0,    0],
    [   0,    0,    0, w_00, w_01,    0, w_10, w_11,    0],
    [   0,    0,    0,    0, w_00, w_01,    0, w_10, w_11]])
    """
    return _matrix(
        spatial_or_input_shape,
        w,
        False,
        dict(
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            padding_mode=padding_mode,
        ),
    )


def conv_transpose_matrix(
    spatial_or_input_shape: int | Sequence[int],
    w: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
) -> Any:
    """The transposed convolution's matrix Cᵀ: ``vec(conv_transpose(x, w)) == Cᵀ vec(x)``.

    Parameters
    ----------
    spatial_or_input_shape : int or sequence of int
        The transposed layer's input: spatial shape for one channel, else ``(C_in, *spatial)``.
    w : array_like of numbers or SymPy expressions
        ``(*k)``, or ``(C_in, C_out // groups, *k)``.
    stride, padding, output_padding, dilation, groups
        As :func:`conv_transpose`.

    Returns
    -------
    sympy.SparseMatrix, shape ``(C_out·∏out, C_in·∏in)``
        The transpose of :func:`conv_matrix` of the forward layer (restricted to the
        transposed input when ``output_padding >= stride``).

    Raises
    ------
    ValueError, TypeError
        As :func:`conv_transpose`.

    See Also
    --------
    conv_matrix, convmat.conv_transpose_matrix

    Notes
    -----
    The forward pattern read transposed (:meth:`convmat._pattern.Pattern.transpose`),
    so ``conv_transpose_matrix(...) - conv_matrix(...).T`` is the zero matrix.

    Examples
    --------
    >>> from convmat.symbolic import conv_matrix, conv_transpose_matrix, symbols
    >>> w = symbols("w", (2, 2))
    >>> CT = conv_transpose_matrix((2, 2), w)
    >>> CT.shape, CT == conv_matrix((3, 3), w).T
    ((9, 4), True)
    """
    return _matrix(
        spatial_or_input_shape,
        w,
        True,
        dict(
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            dilation=dilation,
            groups=groups,
        ),
    )


# ---------------------------------------------------------------- scatter steps


class Step(NamedTuple):
    """One step of the scatter walkthrough: an input element times the kernel, placed."""

    index: Shape  # type: ignore[assignment]  # the contract's name; shadows tuple.index
    """The input element's index (channel first when there are channels)."""
    value: Any
    """The input element."""
    partial: Any
    """Output-shaped: ``value`` times the kernel at its stride offset, zeros elsewhere."""

    def __repr__(self) -> str:
        shape, flat = _elements(self.partial, "partial")
        return _render.step_repr(self.index, self.value, shape, flat)

    def _repr_latex_(self) -> str:
        """The partial, underbraced by the element that scattered the kernel."""
        shape, flat = _elements(self.partial, "partial")
        return _render.step_latex(self.index, self.value, shape, flat)


class _Walk(NamedTuple):
    """Scatter steps as flat C-ordered lists: the data every renderer of them draws."""

    steps: list[tuple[Shape, Any, list[Any]]]  # (index, value, partial) per input element
    shape: Shape  # the output's
    result: list[Any]  # the sum of the partials
    order: list[Any]  # the operands' symbols, x then w: the reading order of a sum's terms


class ScatterSteps:
    """The steps of a transposed convolution, one per input element in C order.

    Iterate (or index) for :class:`Step` named tuples; :attr:`result` is their sum,
    equal to :func:`conv_transpose`. Prints as text grids (``str``), shows as LaTeX
    in Jupyter (``_repr_latex_``); both are drawn by :mod:`convmat._render`.
    """

    def __init__(
        self,
        steps: Sequence[tuple[Shape, Any, list[Any]]],
        output_shape: Shape,
        result: list[Any],
        order: Sequence[Any],
    ) -> None:
        self._walk = _Walk(list(steps), output_shape, result, list(order))
        self.output_shape = output_shape
        self.steps = tuple(Step(i, v, _shaped(p, output_shape)) for i, v, p in self._walk.steps)

    @property
    def result(self) -> Any:
        """The sum of the partials: the transposed convolution's output formulas."""
        return _shaped(self._walk.result, self.output_shape)

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __getitem__(self, i: int) -> Step:
        return self.steps[i]

    def __repr__(self) -> str:
        return (
            f"<ScatterSteps: {len(self)} steps, output {self.output_shape}; "
            f"print() it or show it in Jupyter>"
        )

    def to_text(self, *, unicode: bool | None = None, width: int | None = None) -> str:
        """The steps as text grids side by side, then their sum.

        ``unicode=None`` uses Unicode when ``sys.stdout`` can encode it; ``width``
        defaults to the terminal's.
        """
        return _render.walk_text(self._walk, unicode=unicode, width=width)

    def __str__(self) -> str:
        return self.to_text()

    def to_latex(self, *, per_line: int | None = None) -> str:
        """LaTeX (an ``aligned`` block): the partials, underbraced by element, and the sum."""
        return _render.walk_latex(self._walk, per_line=per_line)

    def _repr_latex_(self) -> str:
        return f"$${self.to_latex()}$$"


def scatter_steps(
    x: Any,
    w: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
) -> ScatterSteps:
    r"""The textbook walkthrough of a transposed convolution, one step per input element.

    Parameters
    ----------
    x, w, stride, padding, output_padding, dilation, groups
        As :func:`conv_transpose`.

    Returns
    -------
    ScatterSteps
        An iterable of :class:`Step` ``(index, value, partial)`` in C order of ``x``
        (channel first); ``partial`` has the output's shape and holds ``value`` times
        the kernel placed at the element's stride offset (cropped by padding, spread
        by dilation, over the output channels of its group), zeros elsewhere. The
        partials sum to :func:`conv_transpose` (``.result``).

    Raises
    ------
    ValueError, TypeError
        As :func:`conv_transpose`.

    See Also
    --------
    conv_transpose

    Notes
    -----
    Step ``i`` is column ``i`` of Cᵀ scaled by ``x[i]`` — row ``i`` of the forward
    convolution's pattern, read from the same filled pattern as every other result.

    References
    ----------
    V. Dumoulin and F. Visin, "A guide to convolution arithmetic for deep learning",
    arXiv:1603.07285, 2016, section 4.

    Examples
    --------
    >>> from convmat.symbolic import scatter_steps, symbols
    >>> steps = scatter_steps(symbols("x", (2, 2)), symbols("w", (2, 2)))
    >>> len(steps), steps[0].index, steps[0].value
    (4, (0, 0), x_00)
    >>> steps[3].partial
    Matrix([
    [0,         0,         0],
    [0, w_00*x_11, w_01*x_11],
    [0, w_10*x_11, w_11*x_11]])
    >>> print(steps.to_text(unicode=False, width=80))  # doctest: +NORMALIZE_WHITESPACE
    1. x_00                              2. x_01
    [w_00*x_00  w_01*x_00      .    ]   [    .      w_00*x_01  w_01*x_01]
    [w_10*x_00  w_11*x_00      .    ]   [    .      w_10*x_01  w_11*x_01]
    [    .          .          .    ]   [    .          .          .    ]
    <BLANKLINE>
    3. x_10                              4. x_11
    [    .          .          .    ]   [    .          .          .    ]
    [w_00*x_10  w_01*x_10      .    ]   [    .      w_00*x_11  w_01*x_11]
    [w_10*x_10  w_11*x_10      .    ]   [    .      w_10*x_11  w_11*x_11]
    <BLANKLINE>
    sum of the 4 steps:
    [      w_00*x_00                 w_01*x_00 + w_00*x_01                w_01*x_01      ]
    [w_10*x_00 + w_00*x_10  w_11*x_00 + w_10*x_01 + w_01*x_10 + w_00*x_11  w_11*x_01 + w_01*x_11]
    [      w_10*x_10                 w_11*x_10 + w_10*x_11                w_11*x_11      ]
    """
    ops = _operands(
        x,
        w,
        True,
        dict(
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            dilation=dilation,
            groups=groups,
        ),
    )
    layer = ops.layer
    size = layer.in_size
    terms = _Terms(ops.x, ops.w)
    result: list[list[tuple[Any, tuple[int, int] | None]]] = [[] for _ in range(size)]
    steps = []
    # Column i of Cᵀ is row i of the forward C: the kernel scattered by x[i].
    for row, columns, values in _rows(layer, ops.kernels, transposed=False):
        value = ops.x[row]
        partial: list[Any] = [sympy.S.Zero] * size
        for c, v in zip(columns, values, strict=True):
            term = terms.product(value, v)
            partial[c] = term[0]
            result[c].append(term)
        index = tuple(int(i) for i in np.unravel_index(row, ops.x_shape))
        steps.append((index, value, partial))
    out_shape = layer.input_shape if ops.channels else layer.in_spatial
    return ScatterSteps(steps, out_shape, [terms.total(t) for t in result], [*ops.x, *ops.w])


# ---------------------------------------------------------------- convmat explain


def _flat_elements(a: Any) -> list[Any]:
    """The C-ordered elements of a ``Matrix`` or ``Array`` returned here."""
    return _elements(a, "a")[1]


def _number(token: str) -> Any:
    """An exact Rational for ``3`` or ``-1/2``, a Float for ``0.25``."""
    return sympy.Float(token) if any(c in token for c in ".eE") else sympy.Rational(token)


class _Explanation(NamedTuple):
    """One single-channel layer worked out for ``convmat explain``; drawn by
    :func:`convmat._render_explain.explain_lines`. Flat lists are in C order."""

    spatial: Shape
    kernel: Shape
    transposed: bool
    geometry: dict[str, Any]
    x: Any  # the input's symbols, as symbols() returns them
    k: Any  # the kernel's symbols
    xs: list[Any]
    ks: list[Any]
    out: Shape
    ys: list[Any]  # the output formulas
    names: list[Any]  # the output's symbols y_...
    c: Any  # the convolution matrix C (of the forward layer, for a transposed one)
    ct: Any  # Cᵀ for a transposed layer, else None
    xv: list[Any]  # the numbers substituted for x and k in the check
    kv: list[Any]
    y_num: list[Any]  # the formulas with those numbers
    oracle: str  # the numeric matrix builder checked against
    ok: bool  # whether the formulas agree with it

    def walk(self) -> _Walk:
        """The scatter steps of the (transposed) layer, computed when asked for."""
        return scatter_steps(self.x, self.k, **self.geometry)._walk


def _explanation(
    spatial: Shape,
    kernel: Shape,
    *,
    transposed: bool,
    geometry: dict[str, Any],
    x_values: Sequence[str] | None = None,
    k_values: Sequence[str] | None = None,
) -> _Explanation:
    """Formulas, matrices and the numeric check of one single-channel layer.

    ``geometry`` holds the layer's keywords (validated here, by the layer checker);
    ``x_values`` / ``k_values`` are number tokens for the check (default 0, 1, 2, ...).
    """
    from convmat._matrix import conv_matrix as numeric_conv_matrix
    from convmat._matrix import conv_transpose_matrix as numeric_conv_transpose_matrix

    x, k = symbols("x", spatial), symbols("w", kernel)
    xs, ks = _flat_elements(x), _flat_elements(k)
    ct = None
    if transposed:
        y = conv_transpose(x, k, **geometry)
        ct = conv_transpose_matrix(spatial, k, **geometry)
        c = ct.T
    else:
        y = conv(x, k, **geometry)
        c = conv_matrix(spatial, k, **geometry)
    out: Shape = tuple(y.shape)
    ys = _flat_elements(y)

    # The numeric check: the formulas with numbers substituted, against the numeric matrix.
    xv = [_number(t) for t in x_values] if x_values else [sympy.Integer(i) for i in range(len(xs))]
    kv = [_number(t) for t in k_values] if k_values else [sympy.Integer(i) for i in range(len(ks))]
    subs = dict(zip([*xs, *ks], [*xv, *kv], strict=True))
    y_num = [e.xreplace(subs) for e in ys]
    weight = np.array([float(v) for v in kv]).reshape(1, 1, *kernel)
    if transposed:
        numeric = numeric_conv_transpose_matrix((1, *spatial), weight, **geometry)
        oracle = "conv_transpose_matrix"
    else:
        numeric = numeric_conv_matrix((1, *spatial), weight, **geometry)
        oracle = "conv_matrix"
    reference = numeric @ np.array([float(v) for v in xv])
    ok = bool(np.allclose([float(v) for v in y_num], reference, rtol=1e-12, atol=1e-12))
    names = _flat_elements(symbols("y", out))
    return _Explanation(
        spatial,
        kernel,
        transposed,
        geometry,
        x,
        k,
        xs,
        ks,
        out,
        ys,
        names,
        c,
        ct,
        xv,
        kv,
        y_num,
        oracle,
        ok,
    )
