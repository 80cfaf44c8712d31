"""Exact formulas of convolution and transposed convolution, with SymPy.

The one module of convmat that imports SymPy (``from convmat import symbolic``;
``import convmat`` never loads it). Every formula and matrix here is the shared
sparsity pattern of :mod:`convmat._pattern` filled with symbols instead of
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
import math
import shutil
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import sympy
from sympy.tensor.array import NDimArray

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
        entries = _flat_elements(self.partial)
        shape = "x".join(map(str, _elements(self.partial, "partial")[0]))
        return (
            f"Step(index={self.index}, value={_Formatter('ascii')(self.value)}, "
            f"partial={shape} with {sum(1 for v in entries if v != 0)} nonzero)"
        )

    def _repr_latex_(self) -> str:
        """The partial, underbraced by the element that scattered the kernel."""
        fmt = _Formatter("latex", [self.value])
        shape, flat = _elements(self.partial, "partial")
        widest = max((fmt(v) for v in flat), key=len, default="")
        label = fmt(self.value)
        if not isinstance(self.value, sympy.Symbol):
            label = rf"x_{{{','.join(map(str, self.index))}}} = {label}"
        return rf"$$\underbrace{{{_latex_array(flat, shape, fmt, widest)}}}_{{{label}}}$$"


class ScatterSteps:
    """The steps of a transposed convolution, one per input element in C order.

    Iterate (or index) for :class:`Step` named tuples; :attr:`result` is their sum,
    equal to :func:`conv_transpose`. Prints as text grids (``str``), shows as LaTeX
    in Jupyter (``_repr_latex_``).
    """

    def __init__(
        self,
        steps: Sequence[tuple[Shape, Any, list[Any]]],
        output_shape: Shape,
        result: list[Any],
        order: Sequence[Any],
    ) -> None:
        self._flat = list(steps)
        self.output_shape = output_shape
        self.steps = tuple(Step(i, v, _shaped(p, output_shape)) for i, v, p in self._flat)
        self._result = result
        self._order = list(order)

    @property
    def result(self) -> Any:
        """The sum of the partials: the transposed convolution's output formulas."""
        return _shaped(self._result, self.output_shape)

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

    def _titles(self, fmt: _Formatter) -> list[str]:
        """``1. x₀₀`` for a symbol, ``1. [0, 1] = 2`` for any other value."""
        return [
            f"{n}. {fmt(value)}"
            if isinstance(value, sympy.Symbol)
            else f"{n}. {list(index)} = {fmt(value)}"
            for n, (index, value, _) in enumerate(self._flat, start=1)
        ]

    def _text_blocks(self, fmt: _Formatter) -> list[list[str]]:
        """Each step as a titled grid (zeros as dots)."""
        return [
            [title, *_grid_lines(partial, self.output_shape, fmt, zero=fmt.dot)]
            for title, (_, _, partial) in zip(self._titles(fmt), self._flat, strict=True)
        ]

    def to_text(self, *, unicode: bool | None = None, width: int | None = None) -> str:
        """The steps as text grids side by side, then their sum.

        ``unicode=None`` uses Unicode when ``sys.stdout`` can encode it; ``width``
        defaults to the terminal's.
        """
        fmt = _Formatter(
            "unicode" if (_can_encode(sys.stdout) if unicode is None else unicode) else "ascii",
            self._order,
        )
        width = width or shutil.get_terminal_size((100, 24)).columns
        lines = _tile(self._text_blocks(fmt), width)
        lines += ["", f"sum of the {len(self)} steps:"]
        lines += _grid_lines(self._result, self.output_shape, fmt)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def to_latex(self, *, per_line: int | None = None) -> str:
        """LaTeX (an ``aligned`` block): the partials, underbraced by element, and the sum."""
        fmt = _Formatter("latex", self._order)
        cols = self.output_shape[-1]
        per_line = per_line or max(1, min(4, 12 // cols))
        widest = max((fmt(v) for _, _, p in self._flat for v in p), key=len, default="")
        terms = [
            rf"\underbrace{{{_latex_array(p, self.output_shape, fmt, widest)}}}_{{{fmt(v)}}}"
            for _, v, p in self._flat
        ]
        lines = [" + ".join(terms[i : i + per_line]) for i in range(0, len(terms), per_line)]
        body = r" \\ &+ ".join(lines)
        total = _latex_array(self._result, self.output_shape, fmt)
        return rf"\begin{{aligned}} Y ={{}}& {body} \\ ={{}}& {total} \end{{aligned}}"

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


# ---------------------------------------------------------------- text and LaTeX


_SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_UNICODE_PROBE = "w₁₁x₀₀⎡⎢⎣⎤⎥⎦·×→ᵀ"


def _can_encode(stream: Any, text: str = _UNICODE_PROBE) -> bool:
    """Whether ``stream`` can print ``text`` (a text buffer without an encoding can)."""
    encoding = getattr(stream, "encoding", None)
    if encoding is None:
        return True
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


class _Formatter:
    """One-line formulas in ``"unicode"``, ``"ascii"`` or ``"latex"``, in a readable order.

    Terms of a sum follow ``order`` (with ``order = [*x, *w]``, the input's C order);
    factors of a product keep SymPy's canonical order, as ``print(expr)`` shows them
    (``w₁₁x₀₀``), so every display of a formula reads the same. The output is
    deterministic. Nothing heavier than walking ``Add`` / ``Mul`` is used.
    """

    def __init__(self, style: str, order: Iterable[Any] = ()) -> None:
        self.style = style
        self.rank: dict[Any, int] = {}
        for s in order:
            if isinstance(s, sympy.Symbol):
                self.rank.setdefault(s, len(self.rank))
        self.dot = {"unicode": "·", "ascii": ".", "latex": "0"}[style]

    def key(self, expr: Any) -> tuple[Any, ...]:
        ranks = sorted(self.rank.get(s, math.inf) for s in expr.free_symbols)
        return (bool(expr.is_number), ranks, sympy.default_sort_key(expr))

    def __call__(self, expr: Any) -> str:
        return self._expr(sympy.sympify(expr))

    def _symbol(self, s: Any) -> str:
        if self.style == "latex":
            return str(sympy.latex(s))
        name = str(s.name)
        base, sep, sub = name.partition("_")
        if self.style == "unicode" and sep and sub.replace(",", "").isdigit():
            return base + sub.translate(_SUBSCRIPT)
        return name

    def _number(self, v: Any) -> str:
        if v.is_Integer:
            return str(v)
        if v.is_Rational:
            return rf"\frac{{{v.p}}}{{{v.q}}}" if self.style == "latex" else f"{v.p}/{v.q}"
        if v.is_Float:
            return f"{float(v):g}"
        return str(sympy.latex(v)) if self.style == "latex" else str(v)

    def _factor(self, f: Any) -> str:
        text = self._expr(f)
        if f.is_Add or (f.is_Rational and not f.is_Integer):
            return rf"\left({text}\right)" if self.style == "latex" else f"({text})"
        return text

    def _expr(self, e: Any) -> str:
        if e.is_Symbol:
            return self._symbol(e)
        if e.is_Number:
            if e.is_negative:
                return "-" + self._number(-e)
            return self._number(e)
        if e.is_Add:
            terms = sorted(e.args, key=self.key)
            text = self._expr(terms[0])
            for t in terms[1:]:
                negative = t.could_extract_minus_sign()
                text += (" - " if negative else " + ") + self._expr(-t if negative else t)
            return text
        if e.is_Mul:
            c, rest = e.as_coeff_Mul()
            if c.is_negative:
                return "-" + self._expr(-e)
            # Inside a product, SymPy's own order (w₁₁x₀₀, as print(expr) shows it), so every
            # display of a formula — SymPy's, the CLI's, the LaTeX steps — reads alike.
            factors = sorted(sympy.Mul.make_args(rest), key=sympy.default_sort_key)
            parts = [self._factor(f) for f in factors]
            if c != 1:
                parts.insert(0, self._factor(c))
            return self._join(parts, factors)
        if e.is_Pow and e.exp.is_Integer and e.exp > 1:
            base = self._factor(e.base)
            if self.style == "latex":
                return f"{{{base}}}^{{{e.exp}}}"
            if self.style == "unicode":
                return base + str(e.exp).translate(_SUPERSCRIPT)
            return f"{base}**{e.exp}"
        return str(sympy.latex(e)) if self.style == "latex" else str(e)

    def _join(self, parts: list[str], factors: Sequence[Any]) -> str:
        if self.style == "latex":
            return " ".join(parts)
        if self.style == "ascii":
            return "*".join(parts)
        # w₁₁x₀₀ reads well; a multi-letter name needs a visible product.
        short = all(not f.is_Symbol or len(f.name.partition("_")[0]) <= 1 for f in factors)
        return ("" if short else "·").join(parts)


def _slices(flat: list[Any], shape: Shape) -> Iterator[tuple[Shape, list[Any], Shape]]:
    """The 2-d (or 1-d) trailing slices of an N-d array, with their leading index."""
    plane = shape[-2:]
    size = math.prod(plane)
    for n, lead in enumerate(_indices(shape[:-2])):
        yield lead, flat[n * size : (n + 1) * size], plane


def _grid_lines(
    flat: list[Any], shape: Shape, fmt: _Formatter, *, zero: str | None = None, gap: int = 2
) -> list[str]:
    """An array as aligned text rows in brackets; N-d arrays as labelled 2-d slices."""
    if len(shape) > 2:
        blocks = [
            [f"[{', '.join(map(str, lead))}, ...]", *_grid_lines(part, plane, fmt, zero=zero)]
            for lead, part, plane in _slices(flat, shape)
        ]
        return _tile(blocks, 10**6)
    rows, cols = (1, shape[0]) if len(shape) == 1 else shape
    cells = [zero if zero is not None and v == 0 else fmt(v) for v in flat]
    widths = [max(len(cells[r * cols + j]) for r in range(rows)) for j in range(cols)]
    if zero is not None:  # a sparse picture: equal columns show where the entries sit
        widths = [max(widths)] * cols
    numeric = [
        zero is None and all(flat[r * cols + j].is_number for r in range(rows)) for j in range(cols)
    ]
    body = [
        (" " * gap).join(
            cells[r * cols + j].rjust(widths[j])
            if numeric[j]
            else cells[r * cols + j].center(widths[j])
            for j in range(cols)
        )
        for r in range(rows)
    ]
    if fmt.style != "unicode":
        return [f"[{line}]" for line in body]
    if rows == 1:
        return [f"[{body[0]}]"]
    ends = [("⎡", "⎤")] + [("⎢", "⎥")] * (rows - 2) + [("⎣", "⎦")]
    return [f"{a}{line}{b}" for (a, b), line in zip(ends, body, strict=True)]


def _tile(blocks: list[list[str]], width: int, gap: int = 3) -> list[str]:
    """Text blocks side by side, wrapped to ``width`` columns (blank line between rows)."""
    lines: list[str] = []
    row: list[list[str]] = []

    def flush() -> None:
        if not row:
            return
        if lines:
            lines.append("")
        widths = [max(map(len, b)) for b in row]
        height = max(map(len, row))
        for i in range(height):
            parts = [
                (b[i] if i < len(b) else "").ljust(w) for b, w in zip(row, widths, strict=True)
            ]
            lines.append((" " * gap).join(parts).rstrip())
        row.clear()

    widths = [max(map(len, block)) for block in blocks]
    if blocks and len(set(widths)) == 1:
        # Equal blocks: as many per row as fit, spread evenly (2 + 2 rather than 3 + 1).
        fit = max(1, (width + gap) // (widths[0] + gap))
        rows = -(-len(blocks) // fit)
        per_row = -(-len(blocks) // rows)
    used = 0
    for block, w in zip(blocks, widths, strict=True):
        full = len(row) == per_row if len(set(widths)) == 1 else used + gap + w > width
        if row and full:
            flush()
            used = 0
        used = w if not row else used + gap + w
        row.append(block)
    flush()
    return lines


def _latex_array(flat: list[Any], shape: Shape, fmt: _Formatter, widest: str = "") -> str:
    """``bmatrix`` of a 1-d or 2-d array; higher ranks nest brackets of 2-d slices.

    With ``widest`` (LaTeX), every cell is centred in a box that wide, so all columns
    have one width and a stride offset lines up as it does in the text grid.
    """
    if len(shape) > 2:
        parts = [_latex_array(part, plane, fmt, widest) for _, part, plane in _slices(flat, shape)]
        return r"\left[\begin{matrix}" + " & ".join(parts) + r"\end{matrix}\right]"
    rows, cols = (1, shape[0]) if len(shape) == 1 else shape

    def cell(v: Any) -> str:
        text = fmt(v)
        # The cell over a full-size phantom of the widest entry; smash drops the phantom's
        # depth, so the rows keep their spacing (amsmath, MathJax and KaTeX alike).
        return rf"\smash[b]{{\underset{{\displaystyle\hphantom{{{widest}}}}}{{{text}}}}}"

    show = cell if widest else fmt
    body = r" \\ ".join(
        " & ".join(show(flat[r * cols + j]) for j in range(cols)) for r in range(rows)
    )
    return rf"\begin{{bmatrix}} {body} \end{{bmatrix}}"


def _flat_elements(a: Any) -> list[Any]:
    """The C-ordered elements of a ``Matrix`` or ``Array`` returned here."""
    return _elements(a, "a")[1]


# ---------------------------------------------------------------- convmat explain


def _number(token: str) -> Any:
    """An exact Rational for ``3`` or ``-1/2``, a Float for ``0.25``."""
    return sympy.Float(token) if any(c in token for c in ".eE") else sympy.Rational(token)


def _nested(flat: list[Any], shape: Shape, fmt: _Formatter) -> str:
    """``[[0, 1], [2, 3]]`` from C-ordered values."""
    if len(shape) == 1:
        return "[" + ", ".join(fmt(v) for v in flat) + "]"
    step = math.prod(shape[1:])
    parts = (_nested(flat[i * step : (i + 1) * step], shape[1:], fmt) for i in range(shape[0]))
    return "[" + ", ".join(parts) + "]"


def _explain(
    spatial: Shape,
    kernel: Shape,
    *,
    transposed: bool,
    geometry: dict[str, Any],
    steps: bool | None,
    matrix: bool | None,
    style: str,
    width: int,
    x_values: Sequence[str] | None = None,
    k_values: Sequence[str] | None = None,
) -> tuple[list[str], bool]:
    """The ``convmat explain`` report of one single-channel layer, and whether its check passed.

    ``geometry`` holds the layer's keywords (validated here, by the layer checker);
    ``steps`` / ``matrix`` of ``None`` show the steps / matrix when they are small.
    ``style`` is ``"unicode"``, ``"ascii"`` or ``"latex"``.
    """
    from convmat._matrix import conv_matrix as numeric_conv_matrix
    from convmat._matrix import conv_transpose_matrix as numeric_conv_transpose_matrix

    x, k = symbols("x", spatial), symbols("w", kernel)
    xs, ks = _flat_elements(x), _flat_elements(k)
    if transposed:
        y = conv_transpose(x, k, **geometry)
        ct = conv_transpose_matrix(spatial, k, **geometry)
        c = ct.T
    else:
        y = conv(x, k, **geometry)
        c = conv_matrix(spatial, k, **geometry)
    out: Shape = tuple(y.shape)
    ys = _flat_elements(y)
    show_steps = transposed and (steps if steps is not None else math.prod(spatial) <= 16)
    show_matrix = matrix if matrix is not None else c.shape[0] <= 16 and c.shape[1] <= 25

    fmt = _Formatter(style, [*xs, *ks])
    latex = style == "latex"
    times, arrow, tee = ("×", "→", "ᵀ") if style == "unicode" else ("x", "->", "^T")

    def size(shape: Sequence[int]) -> str:
        return times.join(map(str, shape))

    def axes(value: Any) -> str:
        if isinstance(value, str):
            return value
        values = tuple(value) if isinstance(value, Sequence) else (value,)
        return str(values[0]) if len(set(values)) == 1 else size(values)

    facts = [f"input {size(spatial)}", f"kernel {size(kernel)}"]
    facts += [f"{key.replace('_', ' ')} {axes(geometry[key])}" for key in ("stride", "padding")]
    for key, default in (("dilation", "1"), ("output_padding", "0")):
        if key in geometry and axes(geometry[key]) != default:
            facts.append(f"{key.replace('_', ' ')} {axes(geometry[key])}")
    kind = "Transposed convolution" if transposed else "Convolution"
    title = f"{kind}: {', '.join(facts)} {arrow} output {size(out)}"

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
    plain = _Formatter("ascii") if latex else fmt
    check = (
        f"Numeric check: X = {_nested(xv, spatial, plain)}, K = {_nested(kv, kernel, plain)} "
        f"{arrow} Y ="
    )
    verdict = f"the formulas agree with convmat.{oracle}(...) @ vec(X): {'yes' if ok else 'NO'}"
    steps_caption = "Scatter steps: each input element times the whole kernel, at its stride offset"
    y_caption = "Output Y = the sum of the steps" if show_steps else "Output Y"
    m_caption = (
        f"Matrix: vec(Y) = C{tee} vec(X), with C ({size(c.shape)}) the convolution "
        f"{size(out)} {arrow} {size(spatial)} that this layer transposes"
        if transposed
        else f"Matrix: vec(Y) = C vec(X), C ({size(c.shape)})"
    )
    names = _flat_elements(symbols("y", out))

    if latex:

        def tex(flat: list[Any], shape: Shape) -> str:
            return _latex_array(flat, shape, fmt)

        lines = [f"% {title}", rf"\[ X = {tex(xs, spatial)}, \qquad K = {tex(ks, kernel)} \]"]
        if show_steps:
            walk = scatter_steps(x, k, **geometry)
            lines += [f"% {steps_caption}", rf"\[ {walk.to_latex()} \]"]
        lines += [f"% {y_caption}", r"\begin{align*}"]
        lines += [
            f"{fmt(n)} &= {fmt(e)}" + (r" \\" if i < len(ys) - 1 else "")
            for i, (n, e) in enumerate(zip(names, ys, strict=True))
        ]
        lines.append(r"\end{align*}")
        if show_matrix:
            mats = rf"C = {tex(_flat_elements(c), c.shape)}"
            if transposed:
                mats += rf", \qquad C^{{T}} = {tex(_flat_elements(ct), ct.shape)}"
            lines += [f"% {m_caption}", rf"\[ {mats} \]"]
        lines += [f"% {check}", rf"\[ Y = {tex(y_num, out)} \]", f"% {verdict}"]
        return lines, ok

    def titled(name: str, flat: list[Any], shape: Shape, **kw: Any) -> list[str]:
        return [name, *_grid_lines(flat, shape, fmt, **kw)]

    lines = [title, ""]
    lines += _tile([titled("Input X", xs, spatial), titled("Kernel K", ks, kernel)], width)
    if show_steps:
        walk = scatter_steps(x, k, **geometry)
        lines += ["", steps_caption, *_tile(walk._text_blocks(fmt), width)]
    grid = _grid_lines(ys, out, fmt)
    if max(map(len, grid)) > width:
        grid = [f"{fmt(n)} = {fmt(e)}" for n, e in zip(names, ys, strict=True)]
    lines += ["", y_caption, *grid]
    if show_matrix:
        blocks = [titled("C", _flat_elements(c), c.shape, zero=fmt.dot, gap=1)]
        if transposed:
            blocks.append(titled(f"C{tee}", _flat_elements(ct), ct.shape, zero=fmt.dot, gap=1))
        lines += ["", m_caption, *_tile(blocks, width)]
    lines += ["", check, *_grid_lines(y_num, out, fmt), verdict]
    return lines, ok
