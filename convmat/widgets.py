"""An interactive explorer of one convolution layer, for Jupyter: :func:`explore`.

``import convmat`` does not import this module; write ``from convmat import widgets``.
The explorer needs the ``jupyter`` extra (``pip install "convmat[jupyter]"``: ipywidgets
and matplotlib); this module itself imports neither until they are used, so its plain
functions can be read, tested and documented without them.

The explorer is thin wiring around plain functions, each usable on its own:

- :func:`state` — the explorer's settings, checked, as a :class:`State` that holds the
  layer's output shape or the reason there is no layer;
- :func:`describe` — one line: the layer and its output shape, or that reason;
- :func:`formula` / :func:`formula_latex` — the exact formula of one output cell
  (``convmat.symbolic``);
- :func:`draw` — one frame of the animation: input, kernel and output with the cells
  of that step marked;
- :func:`draw_overlap` — :func:`convmat.overlap_map`, the taps landing on each position;
- :func:`draw_matrix` — the layer's matrix (:func:`convmat.plot.spy`) with the row of
  the selected output cell marked.

Everything is derived from the one sparsity pattern of the layer (the matrices, the
formulas, the overlap counts and the frames); nothing here computes a position itself.
"""

from __future__ import annotations

import functools
import importlib
import io
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from convmat._args import as_int, is_sequence, scalar
from convmat._frames import VIEWS as _VIEWS
from convmat._frames import Frames, resolve_view
from convmat._layer import Layer, conv_layer, conv_transpose_layer
from convmat._optional import require_matplotlib
from convmat._shapes import conv_output_shape, conv_transpose_output_shape

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "Explorer",
    "State",
    "describe",
    "draw",
    "draw_matrix",
    "draw_overlap",
    "explore",
    "formula",
    "formula_latex",
    "layer_frames",
    "matrix",
    "state",
]

#: The four pictures of a layer the explorer animates (the views of the frames): a
#: convolution's window per output, a transposed convolution's kernel scattered per input,
#: its zero-inserted input with a sliding window, and the matrix beside the window (or
#: the scatter). A convolution has ``"window"`` and ``"matrix"``, a transposed convolution
#: ``"scatter"``, ``"zeros"`` and ``"matrix"``.
VIEWS = _VIEWS

#: The range of every slider, ``(lowest, highest)``; :func:`explore` refuses values outside.
LIMITS: dict[str, tuple[int, int]] = {
    "input_size": (1, 16),
    "kernel_size": (1, 7),
    "stride": (1, 4),
    "padding": (0, 6),
    "dilation": (1, 3),
    "output_padding": (0, 3),
}

#: Grids with more cells than this are drawn without a symbol in every cell.
LABEL_CELLS = 64

#: Overlap maps with more cells than this show their counts as colours only (and a colorbar).
NUMBER_CELLS = 256

#: Pictures of at most this many cells (all panels, the matrix's included) write the symbols
#: ``x₀₀``, ``w₀₀`` and the outputs' formulas in their cells; larger ones only colour them.
SYMBOL_CELLS = 300
#: The widest (and tallest) picture of a frame the explorer shows, in pixels.
FRAME_PIXELS = 1000
#: Milliseconds between frames when playing (longer when a frame takes longer to draw).
PLAY_INTERVAL = 700
#: The colour that marks the selected output cell's row in :func:`draw_matrix`.
SELECTED = "tab:red"

_UNSET: Any = object()


# ---------------------------------------------------------------- the state


@dataclass(frozen=True)
class State:
    """The explorer's settings, checked one by one, and what they make together.

    Attributes
    ----------
    input_size : tuple of int
        The layer's input, one entry per spatial axis (one or two).
    kernel_size, stride, padding, dilation, output_padding : int
        One value for every axis. ``output_padding`` only counts when ``transposed``.
    transposed : bool
        A transposed convolution (``Cᵀ``) instead of a convolution (``C``).
    view : str
        One of ``widgets.VIEWS``.
    output_shape : tuple of int or None
        The layer's spatial output shape, from ``convmat._shapes``; ``None`` when the
        settings make no layer.
    error : str or None
        Why the settings make no layer (for instance a kernel larger than the padded
        input, or ``output_padding >= stride``); ``None`` when they do.
    """

    input_size: tuple[int, ...]
    kernel_size: int
    stride: int
    padding: int
    dilation: int
    output_padding: int
    transposed: bool
    view: str
    output_shape: tuple[int, ...] | None
    error: str | None

    @property
    def ok(self) -> bool:
        """Whether the settings make a layer."""
        return self.error is None

    @property
    def ndim(self) -> int:
        """The number of spatial axes."""
        return len(self.input_size)

    @property
    def kernel(self) -> tuple[int, ...]:
        """The kernel's shape, ``kernel_size`` on every axis."""
        return (self.kernel_size,) * self.ndim

    def geometry(self) -> dict[str, Any]:
        """The keyword arguments of the layer's functions (``output_padding`` if transposed)."""
        args: dict[str, Any] = dict(
            stride=self.stride, padding=self.padding, dilation=self.dilation
        )
        if self.transposed:
            args["output_padding"] = self.output_padding
        return args

    def layer(self) -> Layer:
        """The validated one-channel layer (transposed: the forward layer it transposes).

        Raises ``ValueError`` with ``error`` when the settings make no layer.
        """
        _require_ok(self)
        return _layer(self)


def _require_ok(st: State) -> None:
    if not isinstance(st, State):
        raise TypeError(f"state must be a convmat.widgets.State; got {type(st).__name__}")
    if st.error is not None:
        raise ValueError(f"state must describe a valid layer; got: {st.error}")


@functools.lru_cache(maxsize=64)
def _layer_of(
    input_size: tuple[int, ...],
    kernel: tuple[int, ...],
    transposed: bool,
    geometry: tuple[Any, ...],
) -> Layer:
    args = dict(geometry)
    make = conv_transpose_layer if transposed else conv_layer
    return make((1, *input_size), (1, 1, *kernel), **args)


def _layer(st: State) -> Layer:
    return _layer_of(st.input_size, st.kernel, st.transposed, tuple(st.geometry().items()))


def _bounded(value: Any, name: str) -> int:
    """One int in the slider's range; a sequence is refused (one value for every axis)."""
    if is_sequence(value):
        raise TypeError(
            f"{name} must be an int (the explorer uses one value for every axis); got {value!r}"
        )
    n = as_int(value, name)
    lo, hi = LIMITS[name]
    if not lo <= n <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi} in the explorer; got {n}")
    return n


def _input_size(value: Any) -> tuple[int, ...]:
    value = scalar(value)
    if isinstance(value, (str, bytes)) or not (is_sequence(value) or isinstance(value, int)):
        raise TypeError(
            f"input_size must be an int (1-d) or a sequence of one or two ints; got {value!r}"
        )
    sizes = tuple(value) if is_sequence(value) else (value,)
    if len(sizes) not in (1, 2):
        raise ValueError(f"input_size must have one or two axes; got {tuple(sizes)!r}")
    shape = tuple(as_int(v, "input_size") for v in sizes)
    lo, hi = LIMITS["input_size"]
    if not all(lo <= n <= hi for n in shape):
        raise ValueError(
            f"input_size must be between {lo} and {hi} on every axis in the explorer; got {shape}"
        )
    return shape


def state(
    *,
    input_size: Any = (5, 5),
    kernel_size: Any = 3,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    output_padding: Any = 0,
    transposed: bool = False,
    view: str | None = None,
) -> State:
    """The explorer's settings, checked, with the layer's output shape or the reason why not.

    Every argument is checked on its own first (its type, the range of its slider, see
    ``widgets.LIMITS``); a bad one raises. Arguments that are each fine but together make
    no layer — a dilated kernel larger than the padded input, ``output_padding >=
    max(stride, dilation)``, a padding that crops a transposed output away — do not
    raise: the returned state carries the message in ``error``, which the explorer
    shows in place of the output shape.

    Parameters
    ----------
    input_size : int or sequence of one or two ints
        The layer's spatial input (an int is a 1-d input).
    kernel_size, stride, padding, dilation, output_padding : int
        One value for every axis. ``output_padding`` is ignored unless ``transposed``.
    transposed : bool
        A transposed convolution instead of a convolution.
    view : str, optional
        One of ``widgets.VIEWS``; by default ``"scatter"`` for a transposed layer, else
        ``"window"``.

    Returns
    -------
    State

    Raises
    ------
    TypeError
        For a non-integer size, a sequence where one int is expected, a non-bool
        ``transposed`` or a non-str ``view``.
    ValueError
        For a value outside its slider's range, an ``input_size`` of neither one nor two
        axes, or an unknown ``view``.

    Examples
    --------
    >>> from convmat import widgets
    >>> widgets.state(input_size=(5, 5), kernel_size=3, stride=2, padding=1).output_shape
    (3, 3)
    >>> print(widgets.state(input_size=(3, 3), kernel_size=5).error)
    kernel_size (dilated) must fit in the padded input on every axis; got kernel (5, 5) with \
dilation (1, 1) on input (3, 3) padded by ((0, 0), (0, 0)) (output would be (-1, -1))
    """
    size = _input_size(input_size)
    values = {
        name: _bounded(value, name)
        for name, value in (
            ("kernel_size", kernel_size),
            ("stride", stride),
            ("padding", padding),
            ("dilation", dilation),
            ("output_padding", output_padding),
        )
    }
    if not isinstance(transposed, (bool, np.bool_)):
        raise TypeError(f"transposed must be a bool; got {transposed!r}")
    transposed = bool(transposed)
    view = resolve_view(view, transposed)
    k = values["kernel_size"]
    common = dict(stride=values["stride"], padding=values["padding"], dilation=values["dilation"])
    try:
        if transposed:
            out = conv_transpose_output_shape(
                size, (k,) * len(size), output_padding=values["output_padding"], **common
            )
        else:
            out = conv_output_shape(size, (k,) * len(size), **common)
        error = None
    except ValueError as err:
        out, error = None, str(err)
    return State(
        size,
        k,
        values["stride"],
        values["padding"],
        values["dilation"],
        values["output_padding"],
        transposed,
        view,
        out,
        error,
    )


def _size(shape: Sequence[int]) -> str:
    return "×".join(map(str, shape))


def _label(index: Sequence[Any]) -> str:
    """An output cell as the explorer names it: ``"1,2"``."""
    return ",".join(map(str, index))


def describe(st: State) -> str:
    """One line about the layer: its kind, input, kernel, output shape — or why there is none.

    Parameters
    ----------
    st : State
        From :func:`state`.

    Returns
    -------
    str
        ``"conv 2-d: input 5×5, kernel 3×3, stride 2, padding 1 → output 3×3"`` (with
        the matrix's shape), or ``"no layer: <reason>"`` when the settings make none.

    Raises
    ------
    TypeError
        If ``st`` is not a :class:`State`.

    Examples
    --------
    >>> from convmat import widgets
    >>> print(widgets.describe(widgets.state(input_size=(5, 5), stride=2, padding=1)))
    conv 2-d: input 5×5, kernel 3×3, stride 2, padding 1 → output 3×3; C is 9×25
    >>> st = widgets.state(input_size=4, stride=2, output_padding=2, transposed=True)
    >>> print(widgets.describe(st))
    no layer: output_padding must be < max(stride, dilation) on every axis; got \
output_padding (2,) with stride (2,) and dilation (1,)
    """
    if not isinstance(st, State):
        raise TypeError(f"st must be a convmat.widgets.State; got {type(st).__name__}")
    if st.error is not None or st.output_shape is None:
        return f"no layer: {st.error}"
    kind = "conv_transpose" if st.transposed else "conv"
    parts = [f"input {_size(st.input_size)}", f"kernel {_size(st.kernel)}"]
    for name in ("stride", "padding", "dilation"):
        value = getattr(st, name)
        if value != (0 if name == "padding" else 1):
            parts.append(f"{name} {value}")
    if st.transposed and st.output_padding:
        parts.append(f"output_padding {st.output_padding}")
    rows, cols = math.prod(st.output_shape), math.prod(st.input_size)
    matrix = f"Cᵀ is {rows}×{cols}" if st.transposed else f"C is {rows}×{cols}"
    return f"{kind} {st.ndim}-d: {', '.join(parts)} → output {_size(st.output_shape)}; {matrix}"


# ---------------------------------------------------------------- formulas


def _cell_index(st: State, cell: Any) -> tuple[int, ...]:
    """An output cell, given flat (C order) or as one index per axis, checked."""
    _require_ok(st)
    assert st.output_shape is not None
    shape = st.output_shape
    if is_sequence(cell):
        index = tuple(as_int(i, "cell") for i in cell)
        if len(index) != len(shape) or not all(
            0 <= i < n for i, n in zip(index, shape, strict=True)
        ):
            raise ValueError(f"cell must be an index into the output of shape {shape}; got {cell}")
        return index
    flat = as_int(cell, "cell")
    if not 0 <= flat < math.prod(shape):
        raise ValueError(
            f"cell must be a flat index in [0, {math.prod(shape)}) of the output of shape "
            f"{shape}; got {flat}"
        )
    return tuple(int(i) for i in np.unravel_index(flat, shape))


@functools.lru_cache(maxsize=16)
def _formulas(
    input_size: tuple[int, ...],
    kernel: tuple[int, ...],
    transposed: bool,
    geometry: tuple[Any, ...],
) -> tuple[Any, Any, Any]:
    """``(y, x, w)``: every output formula of the layer, with its input and kernel symbols."""
    from convmat import symbolic

    x, w = symbolic.symbols("x", input_size), symbolic.symbols("w", kernel)
    apply = symbolic.conv_transpose if transposed else symbolic.conv
    return apply(x, w, **dict(geometry)), x, w


def _symbolic(st: State) -> tuple[Any, Any, Any]:
    return _formulas(st.input_size, st.kernel, st.transposed, tuple(st.geometry().items()))


def formula(st: State, cell: Any) -> Any:
    """The exact formula of one output cell, as ``convmat.symbolic`` gives it.

    Parameters
    ----------
    st : State
        A state that makes a layer.
    cell : int or sequence of int
        The output cell: its flat index in C order, or one index per axis.

    Returns
    -------
    sympy.Expr
        In the symbols ``x_…`` of the input and ``w_…`` of the kernel
        (:func:`convmat.symbolic.symbols`).

    Raises
    ------
    ValueError
        If the state makes no layer, or ``cell`` is outside the output.
    TypeError
        If ``cell`` is not an int or a sequence of ints.

    Examples
    --------
    >>> from convmat import widgets
    >>> st = widgets.state(input_size=(2, 2), kernel_size=2, transposed=True)
    >>> widgets.formula(st, (1, 1))
    w_00*x_11 + w_01*x_10 + w_10*x_01 + w_11*x_00
    """
    index = _cell_index(st, cell)
    y, _, _ = _symbolic(st)
    return y[index]


def _output_symbol(st: State, index: tuple[int, ...]) -> Any:
    from convmat import symbolic

    assert st.output_shape is not None
    return symbolic.symbols("y", st.output_shape)[index]


def formula_latex(st: State, cell: Any) -> str:
    """The formula of one output cell as LaTeX, ``y_{…} = …``, in convmat's term order.

    Terms follow the input's C order, factors SymPy's order, as every formula of
    ``convmat.symbolic`` prints (``w_{11} x_{00}``).

    Parameters
    ----------
    st, cell
        As :func:`formula`.

    Returns
    -------
    str
        LaTeX without delimiters; an output cell no input reaches reads ``y_{…} = 0``.

    Raises
    ------
    ValueError, TypeError
        As :func:`formula`.

    Examples
    --------
    >>> from convmat import widgets
    >>> st = widgets.state(input_size=(2, 2), kernel_size=2, transposed=True)
    >>> widgets.formula_latex(st, 4)
    'y_{11} = w_{11} x_{00} + w_{10} x_{01} + w_{01} x_{10} + w_{00} x_{11}'
    """
    from convmat import symbolic

    index = _cell_index(st, cell)
    y, x, w = _symbolic(st)
    fmt = symbolic._Formatter("latex", [*x, *w])
    return f"{fmt(_output_symbol(st, index))} = {fmt(y[index])}"


# ---------------------------------------------------------------- pictures


def _check_figure(figure: Any, caller: str, *, subfigure: bool = True) -> None:
    require_matplotlib(f"convmat.widgets.{caller}")
    from matplotlib.figure import Figure, FigureBase

    if subfigure and not isinstance(figure, FigureBase):
        raise TypeError(
            f"figure must be a matplotlib Figure or SubFigure; got {type(figure).__name__}"
        )
    if not subfigure and not isinstance(figure, Figure):
        raise TypeError(f"figure must be a matplotlib Figure; got {type(figure).__name__}")


@functools.lru_cache(maxsize=16)
def _frames_cached(
    input_size: tuple[int, ...],
    kernel: tuple[int, ...],
    transposed: bool,
    geometry: tuple[Any, ...],
    view: str,
) -> Frames:
    from convmat._frames import frames

    args = dict(geometry)
    args.setdefault("output_padding", 0)
    return frames(input_size, kernel, transposed=transposed, view=view, **args)


def layer_frames(st: State) -> Frames:
    """The frames of the state's layer in its view: ``convmat._frames.frames``.

    Parameters
    ----------
    st : State
        A state that makes a layer.

    Returns
    -------
    Frames
        One :class:`~convmat._frames.Frame` per step, with the grid they are drawn on.

    Raises
    ------
    ValueError
        If the state makes no layer.

    Examples
    --------
    >>> from convmat import widgets
    >>> frames = widgets.layer_frames(widgets.state(input_size=(2, 2), kernel_size=2,
    ...                                             transposed=True))
    >>> len(frames), frames[3].output
    (4, array([4, 5, 7, 8]))
    """
    _require_ok(st)
    return _frames_cached(
        st.input_size, st.kernel, st.transposed, tuple(st.geometry().items()), st.view
    )


def draw(st: State, step: Any, figure: Figure, *, symbols: bool | None = None) -> list[Axes]:
    """Draw one frame of the layer's animation, the picture ``convmat.animate`` plays.

    The panels of Dumoulin and Visin's pictures: the grid the kernel moves over (the
    padded input; the zero-inserted one in the ``"zeros"`` view; for the ``"scatter"``
    view the input, its current element framed), the kernel on its dilated footprint,
    the output (for the scatter view before the padding crops it, each cell as dark as
    the share of its products received so far), and for the ``"matrix"`` view the matrix
    with the frame's row of C (column of Cᵀ) framed; a caption says what the step does.

    Parameters
    ----------
    st : State
        A state that makes a layer.
    step : int
        The frame, ``0 <= step < len(layer_frames(st))``.
    figure : matplotlib.figure.Figure
        Where to draw; cleared first, then sized to the picture (half an inch a cell).
    symbols : bool, optional
        Write the symbols ``x₀₀ …``, ``w₀₀ …`` in the cells and the outputs' formulas
        (``convmat.symbolic``). By default only for pictures of at most
        ``widgets.SYMBOL_CELLS`` cells.

    Returns
    -------
    list of matplotlib.axes.Axes
        The panels, left to right.

    Raises
    ------
    ValueError
        If the state makes no layer or ``step`` is not a frame.
    TypeError
        If ``step`` is not an int, ``symbols`` not a bool or ``figure`` not a Figure.
    ModuleNotFoundError
        When matplotlib is not installed.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from convmat import widgets
    >>> st = widgets.state(input_size=(2, 2), kernel_size=2, transposed=True)
    >>> figure = Figure()
    >>> len(widgets.draw(st, 3, figure))          # input, kernel, output
    3
    """
    _require_ok(st)
    frames = layer_frames(st)
    n = as_int(step, "step")
    if not 0 <= n < len(frames):
        raise ValueError(f"step must be in [0, {len(frames)}) for this layer; got {n}")
    if symbols is not None and not isinstance(symbols, (bool, np.bool_)):
        raise TypeError(f"symbols must be a bool or None; got {symbols!r}")
    _check_figure(figure, "draw", subfigure=False)
    _scene(frames, figure, symbols).draw(n)
    return list(figure.axes)


def _scene(frames: Frames, figure: Figure, symbols: bool | None) -> Any:
    """The animation's scene of ``frames`` on a cleared ``figure``, ready to draw a step."""
    from convmat._animate import _Scene, _Values

    if symbols is None:
        cells = sum(
            math.prod(shape)
            for shape in (frames.padded_shape, frames.input_shape, frames.output_shape)
        )
        if frames.view == "matrix":  # the matrix's cells would carry the kernel's symbols
            cells += math.prod(frames.input_shape) * math.prod(frames.output_shape)
        symbols = cells <= SYMBOL_CELLS
    figure.clear()
    return _Scene(frames, _Values(frames, None, None, bool(symbols)), figure)


def _overlap(st: State) -> Any:
    """Taps per position: the transposed layer's output, or the convolution's input."""
    from convmat import overlap_map

    layer = st.layer()
    return overlap_map(
        layer.out_spatial,
        layer.kernel_size,
        stride=layer.stride,
        padding=layer.padding,
        dilation=layer.dilation,
        output_padding=layer.output_padding,
    )


def draw_overlap(st: State, figure: Figure) -> Axes:
    """Draw how many kernel taps meet each position: :func:`convmat.overlap_map`.

    For a transposed layer, the taps landing on each output position (uneven counts are
    the checkerboard); for a convolution, the taps that read each input position — the
    same counts, since the two layers share one pattern.

    Parameters
    ----------
    st : State
        A state that makes a layer.
    figure : matplotlib.figure.Figure or SubFigure
        Where to draw; cleared first.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        If the state makes no layer.
    TypeError
        If ``figure`` is not a matplotlib Figure or SubFigure.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from convmat import widgets
    >>> ax = widgets.draw_overlap(widgets.state(input_size=4, stride=2, transposed=True),
    ...                           Figure())
    >>> [text.get_text() for text in ax.texts]
    ['1', '1', '2', '1', '2', '1', '2', '1', '1']
    """
    _require_ok(st)
    _check_figure(figure, "draw_overlap")
    from convmat import plot

    counts = _overlap(st)
    figure.clear()
    ax = figure.subplots()
    title = "taps per output position" if st.transposed else "taps reading each input position"
    many = counts.size > NUMBER_CELLS
    shown = plot.grid(
        ax,
        counts,
        labels=np.full(counts.shape, "", dtype=object) if many else None,
        cmap="viridis",
        vmin=0.0,
        vmax=max(float(counts.max()), 1.0) * 1.25,
        title=title,
    )
    if many:
        figure.colorbar(shown, ax=ax, shrink=0.8)
    return ax


@functools.lru_cache(maxsize=16)
def _ones_matrix(
    input_size: tuple[int, ...],
    kernel: tuple[int, ...],
    transposed: bool,
    geometry: tuple[Any, ...],
) -> Any:
    from convmat import conv_matrix, conv_transpose_matrix

    build = conv_transpose_matrix if transposed else conv_matrix
    return build((1, *input_size), np.ones((1, 1, *kernel)), **dict(geometry))


def matrix(st: State) -> Any:
    """The layer's matrix with every weight 1: ``C`` (or ``Cᵀ`` when transposed).

    Parameters
    ----------
    st : State
        A state that makes a layer.

    Returns
    -------
    scipy.sparse.csr_array, shape ``(∏output, ∏input)``
        :func:`convmat.conv_matrix` (or :func:`convmat.conv_transpose_matrix`) of a
        ones kernel: row ``r`` is output cell ``r`` (C order), its nonzeros the inputs
        that cell reads.

    Raises
    ------
    ValueError
        If the state makes no layer.

    Examples
    --------
    >>> from convmat import widgets
    >>> widgets.matrix(widgets.state(input_size=3, kernel_size=2)).toarray()
    array([[1., 1., 0.],
           [0., 1., 1.]])
    """
    _require_ok(st)
    return _ones_matrix(st.input_size, st.kernel, st.transposed, tuple(st.geometry().items()))


def draw_matrix(st: State, cell: Any, figure: Figure) -> Axes:
    """Draw the layer's matrix (:func:`convmat.plot.spy`) with one output cell's row marked.

    Parameters
    ----------
    st : State
        A state that makes a layer.
    cell : int or sequence of int
        The output cell whose row is marked (flat in C order, or one index per axis).
    figure : matplotlib.figure.Figure or SubFigure
        Where to draw; cleared first.

    Returns
    -------
    matplotlib.axes.Axes
        The spy plot; the marked row is a band and markers on its nonzeros, both with
        the gid ``"selected"`` (their y data is the row).

    Raises
    ------
    ValueError
        If the state makes no layer or ``cell`` is outside the output.
    TypeError
        If ``cell`` or ``figure`` has the wrong type.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from convmat import widgets
    >>> ax = widgets.draw_matrix(widgets.state(input_size=3, kernel_size=2), 1, Figure())
    >>> [line for line in ax.lines if line.get_gid() == "selected"][0].get_xydata().tolist()
    [[1.0, 1.0], [2.0, 1.0]]
    """
    _require_ok(st)
    index = _cell_index(st, cell)
    _check_figure(figure, "draw_matrix")

    assert st.output_shape is not None
    row = int(np.ravel_multi_index(index, st.output_shape))
    m = matrix(st)
    figure.clear()
    ax = figure.subplots()
    name = "Cᵀ" if st.transposed else "C"
    title = f"{name} ({m.shape[0]}×{m.shape[1]}): row {row} = output cell {_label(index)}"
    _spy_marked(ax, m, row=row, title=title)
    return ax


def _spy_marked(
    ax: Axes, m: Any, *, row: int | None = None, col: int | None = None, title: str
) -> None:
    """:func:`convmat.plot.spy` of ``m`` with one row (or column) banded and its entries marked.

    The band and the markers carry the gid ``"selected"``.
    """
    from convmat import plot

    plot.spy(ax, m, title=title)
    if max(m.shape) > 3 * min(m.shape):  # a long thin matrix fills the panel instead
        ax.set_aspect("auto")
    size = float(np.clip(100 / max(m.shape), 1, 6))
    if row is not None:
        band = ax.axhspan(row - 0.5, row + 0.5, color=SELECTED, alpha=0.3, lw=0)
        cols = m.indices[m.indptr[row] : m.indptr[row + 1]]
        rows = np.full(cols.size, row)
    else:
        assert col is not None
        band = ax.axvspan(col - 0.5, col + 0.5, color=SELECTED, alpha=0.3, lw=0)
        rows = np.flatnonzero(m[:, [col]].toarray().ravel())
        cols = np.full(rows.size, col)
    band.set_gid("selected")
    ax.plot(cols, rows, "s", color=SELECTED, markersize=size, gid="selected")


def _png(figure: Figure, dpi: float = 80.0) -> bytes:
    """The figure as PNG bytes (what the explorer's image widgets show)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight", dpi=dpi)
    return buffer.getvalue()


# ---------------------------------------------------------------- the widget


def _require_jupyter() -> Any:
    """``ipywidgets``, or a ``ModuleNotFoundError`` that says what to install."""
    try:
        widgets = importlib.import_module("ipywidgets")
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            'convmat.widgets.explore needs ipywidgets; pip install "convmat[jupyter]"'
        ) from err
    require_matplotlib("convmat.widgets.explore")
    return widgets


class Explorer:
    """The widgets of :func:`explore` and the callbacks that keep them in step.

    Build it with the arguments of :func:`state` (plus ``step`` and ``cell``);
    ``widget`` is what :func:`explore` returns. Setting any control's ``.value``
    (from the browser or from Python) updates the outputs at once.

    Attributes
    ----------
    controls : dict of str to ipywidgets.Widget
        ``"ndim"`` (1-d / 2-d), ``"height"``, ``"width"``, ``"kernel_size"``,
        ``"stride"``, ``"padding"``, ``"dilation"``, ``"output_padding"``,
        ``"transposed"``, ``"view"``, ``"step"`` (the frame; ``"play"`` animates it) and
        ``"cell"`` (the output cell whose formula and matrix row are shown).
    outputs : dict of str to ipywidgets.Widget
        ``"shape"`` (HTML: :func:`describe`), ``"formula"`` (HTMLMath),
        ``"frame"``, ``"overlap"`` and ``"matrix"`` (PNG images), ``"message"`` (HTML:
        what could not be drawn).
    widget : ipywidgets.VBox
        All of it, laid out.

    Examples
    --------
    >>> from convmat import widgets
    >>> ex = widgets.Explorer(input_size=(5, 5), kernel_size=3)
    >>> ex.controls["stride"].value = 2
    >>> widgets.describe(ex.state()) in ex.outputs["shape"].value
    True
    >>> widgets.describe(ex.state())
    'conv 2-d: input 5×5, kernel 3×3, stride 2 → output 2×2; C is 4×25'
    """

    def __init__(
        self,
        *,
        input_size: Any = (5, 5),
        kernel_size: Any = 3,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        output_padding: Any = 0,
        transposed: bool = False,
        view: str | None = None,
        step: Any = 0,
        cell: Any = 0,
    ) -> None:
        first = state(
            input_size=input_size,
            kernel_size=kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            output_padding=output_padding,
            transposed=transposed,
            view=view,
        )
        step = as_int(step, "step")
        if step < 0:
            raise ValueError(f"step must be >= 0; got {step}")
        flat_cell = (
            int(np.ravel_multi_index(_cell_index(first, cell), first.output_shape or ()))
            if first.ok
            else as_int(cell, "cell")
        )
        ipw = _require_jupyter()
        from matplotlib.figure import Figure

        self._figures = {
            "frame": Figure(figsize=(9, 3.4)),
            "overlap": Figure(figsize=(4.6, 3.6)),
            "matrix": Figure(figsize=(4.6, 3.6)),
        }
        lo, hi = LIMITS["input_size"]
        sizes = first.input_size
        style = {"description_width": "110px"}

        def slider(name: str, value: int, description: str) -> Any:
            low, high = LIMITS.get(name, (lo, hi))
            return ipw.IntSlider(
                value=value,
                min=low,
                max=high,
                description=description,
                continuous_update=False,
                style=style,
            )

        self.controls: dict[str, Any] = {
            "ndim": ipw.ToggleButtons(
                options=[("1-d", 1), ("2-d", 2)],
                value=first.ndim,
                description="input",
                style={"description_width": "110px", "button_width": "60px"},
            ),
            "height": slider("input_size", sizes[0] if first.ndim == 2 else 4, "height"),
            "width": slider("input_size", sizes[-1], "width"),
            "kernel_size": slider("kernel_size", first.kernel_size, "kernel_size"),
            "stride": slider("stride", first.stride, "stride"),
            "padding": slider("padding", first.padding, "padding"),
            "dilation": slider("dilation", first.dilation, "dilation"),
            "output_padding": slider("output_padding", first.output_padding, "output_padding"),
            "transposed": ipw.ToggleButton(
                value=first.transposed, description="transposed", icon="exchange"
            ),
            "view": ipw.ToggleButtons(
                options=list(VIEWS),
                value=first.view,
                description="view",
                style={"description_width": "110px", "button_width": "70px"},
            ),
            "step": ipw.IntSlider(
                value=0, min=0, max=0, description="step", continuous_update=True, style=style
            ),
            "play": ipw.Play(value=0, min=0, max=0, interval=PLAY_INTERVAL, description="play"),
            "cell": ipw.Dropdown(
                options=[("0", 0)], value=0, description="output cell", style=style
            ),
        }
        ipw.jslink((self.controls["play"], "value"), (self.controls["step"], "value"))
        self.outputs: dict[str, Any] = {
            "shape": ipw.HTML(),
            "message": ipw.HTML(),
            "formula": ipw.HTMLMath(),
            "frame": ipw.Image(format="png", layout=_image_layout(ipw)),
            "overlap": ipw.Image(format="png", layout=_image_layout(ipw)),
            "matrix": ipw.Image(format="png", layout=_image_layout(ipw)),
        }
        self._frames: Sequence[Any] = ()
        self._scene: Any = None
        self._quiet = False
        self._state = first
        self._wanted = (step, flat_cell)

        c, o = self.controls, self.outputs
        settings = ipw.VBox(
            [
                c["ndim"],
                c["height"],
                c["width"],
                c["kernel_size"],
                c["stride"],
                c["padding"],
                c["dilation"],
                c["output_padding"],
                c["transposed"],
                c["view"],
            ]
        )
        self._player = ipw.HBox([c["play"], c["step"]])
        animation = ipw.VBox([self._player, o["frame"]], layout=ipw.Layout(min_width="0", flex="1"))
        self._cell_box = ipw.VBox([c["cell"], o["formula"], o["matrix"]])
        details = ipw.HBox([self._cell_box, o["overlap"]])
        self.widget = ipw.VBox([o["shape"], o["message"], ipw.HBox([settings, animation]), details])
        for name in (
            "ndim",
            "height",
            "width",
            "kernel_size",
            "stride",
            "padding",
            "dilation",
            "output_padding",
            "transposed",
            "view",
        ):
            c[name].observe(self._on_settings, names="value")
        c["step"].observe(self._on_step, names="value")
        c["cell"].observe(self._on_cell, names="value")
        self._refresh()

    # -- reading the controls

    def state(self) -> State:
        """The :class:`State` the controls show now."""
        c = self.controls
        size = (
            (c["height"].value, c["width"].value) if c["ndim"].value == 2 else (c["width"].value,)
        )
        return state(
            input_size=size,
            kernel_size=c["kernel_size"].value,
            stride=c["stride"].value,
            padding=c["padding"].value,
            dilation=c["dilation"].value,
            output_padding=c["output_padding"].value,
            transposed=c["transposed"].value,
            view=c["view"].value,
        )

    # -- callbacks

    def _on_settings(self, change: Any) -> None:
        if self._quiet:
            return
        c = self.controls
        # A view belongs to one kind of layer: switching one switches the other along.
        if change["owner"] is c["transposed"]:
            self._quietly(c["view"], "matrix" if c["view"].value == "matrix" else None)
        elif change["owner"] is c["view"] and not _fits(c["view"].value, c["transposed"].value):
            self._quietly(c["transposed"], not c["transposed"].value)
        self._wanted = (c["step"].value, c["cell"].value)
        self._refresh()

    def _quietly(self, control: Any, value: Any) -> None:
        """Set a control without its callback (``None``: the default view of the layer)."""
        if control is self.controls["view"]:
            value = resolve_view(value, self.controls["transposed"].value)
        self._quiet = True
        try:
            control.value = value
        finally:
            self._quiet = False

    def _on_step(self, _change: Any) -> None:
        if not self._quiet:
            self._draw_frame()

    def _on_cell(self, _change: Any) -> None:
        if not self._quiet:
            self._draw_cell()

    # -- updating the outputs

    def _refresh(self) -> None:
        """Read the settings, then redraw everything (the step and cell kept where possible)."""
        c, o = self.controls, self.outputs
        _show(c["height"], c["ndim"].value == 2)
        c["output_padding"].disabled = not c["transposed"].value
        st = self._state = self.state()
        colour = "inherit" if st.ok else "#b00020"
        o["shape"].value = f'<b style="color:{colour}">{_html(describe(st))}</b>'
        step, cell = self._wanted
        self._frames, self._scene, message = (), None, ""
        if st.ok:
            try:
                self._frames = layer_frames(st)
            except (ImportError, ValueError) as err:
                message = f"no frames: {err}"
        o["message"].value = _html(message)
        last = max(len(self._frames) - 1, 0)
        assert st.output_shape is not None or not st.ok
        cells = math.prod(st.output_shape) if st.output_shape is not None else 1
        self._quiet = True  # the controls below change together; draw once, after
        try:
            c["cell"].options = [
                (_label(i), n) for n, i in enumerate(np.ndindex(*(st.output_shape or (1,))))
            ]
            c["cell"].value = cell if 0 <= cell < cells else 0
            for name in ("play", "step"):
                c[name].max = last
            c["step"].value = min(step, last)
        finally:
            self._quiet = False
        self._draw_frame()
        self._draw_cell()
        if st.ok:
            figure = self._figures["overlap"]
            draw_overlap(st, figure)
            o["overlap"].value = _png(figure)
        else:
            o["overlap"].value = b""
        # Nothing to show is shown as nothing (an empty image would be a broken one).
        for name in ("frame", "overlap", "matrix"):
            _show(o[name], len(o[name].value) > 0)
        _show(o["message"], bool(o["message"].value))
        _show(self._player, bool(self._frames))
        _show(self._cell_box, st.ok)

    def _draw_frame(self) -> None:
        st, o = self._state, self.outputs
        if not st.ok or not self._frames:
            o["frame"].value = b""
            return
        start = time.perf_counter()
        figure = self._figures["frame"]
        if self._scene is None:  # one scene per layer; a step only repaints its cells
            self._scene = _scene(cast("Frames", self._frames), figure, None)
        self._scene.draw(self.controls["step"].value)
        inches = float(max(figure.get_size_inches()))
        o["frame"].value = _png(figure, dpi=min(80.0, FRAME_PIXELS / inches))
        # Play no faster than frames can be drawn, so steps do not queue up.
        took = int(1000 * (time.perf_counter() - start))
        self.controls["play"].interval = max(PLAY_INTERVAL, 2 * took)

    def _draw_cell(self) -> None:
        st, o = self._state, self.outputs
        if not st.ok:
            o["formula"].value, o["matrix"].value = "", b""
            return
        cell = self.controls["cell"].value
        o["formula"].value = f"$${formula_latex(st, cell)}$$"
        figure = self._figures["matrix"]
        draw_matrix(st, cell, figure)
        o["matrix"].value = _png(figure)


def _image_layout(ipw: Any) -> Any:
    """Pictures keep their proportions: never stretched by their row, scaled down to fit."""
    return ipw.Layout(
        max_width="100%",
        max_height=f"{FRAME_PIXELS}px",
        height="auto",
        object_fit="contain",
        align_self="flex-start",
    )


def _show(widget: Any, visible: bool) -> None:
    widget.layout.display = None if visible else "none"


def _fits(view: str, transposed: bool) -> bool:
    try:
        resolve_view(view, transposed)
    except ValueError:
        return False
    return True


def _html(text: str) -> str:
    import html

    return html.escape(text)


def explore(
    *,
    input_size: Any = (5, 5),
    kernel_size: Any = 3,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    output_padding: Any = 0,
    transposed: bool = False,
    view: str | None = None,
    step: Any = 0,
    cell: Any = 0,
) -> Any:
    """An interactive explorer of one convolution or transposed convolution layer.

    Sliders and toggles set the input size (1-d or 2-d), kernel size, stride, padding,
    dilation, output padding, transposed or not, and the view; the explorer shows, live,
    the layer's picture frame by frame (with a play button), its output shape — or why
    the settings make no layer —, the exact formula of a chosen output cell, the overlap
    map and the layer's matrix with that cell's row marked.

    Parameters
    ----------
    input_size, kernel_size, stride, padding, dilation, output_padding, transposed, view
        The starting settings, as :func:`state` takes them (a combination that makes no
        layer is shown with its reason, not refused).
    step : int
        The starting frame (the last one if there are fewer).
    cell : int or sequence of int
        The starting output cell, flat (C order) or one index per axis.

    Returns
    -------
    ipywidgets.VBox
        The explorer; shown when it is the last expression of a cell.

    Raises
    ------
    TypeError, ValueError
        For a bad argument, as :func:`state`, or a ``step`` below 0 or a ``cell`` outside
        the starting output.
    ModuleNotFoundError
        When ipywidgets or matplotlib is missing (``pip install "convmat[jupyter]"``).

    See Also
    --------
    Explorer : the same, with its controls and outputs at hand.

    Examples
    --------
    >>> from convmat import widgets
    >>> box = widgets.explore(input_size=(4, 4), kernel_size=3, stride=2, transposed=True)
    >>> type(box).__name__
    'VBox'
    """
    return Explorer(
        input_size=input_size,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        output_padding=output_padding,
        transposed=transposed,
        view=view,
        step=step,
        cell=cell,
    ).widget
