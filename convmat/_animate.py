"""Animations of a convolution's sliding window, a transposed convolution's scatter, and
the matrix beside them: the guide to convolution arithmetic's pictures, for any geometry.

Drawn from :func:`convmat.frames` (the frames as data, read from the one sparsity
pattern). matplotlib is imported when :func:`animate` is called, SymPy only with
``symbols=True``; ``import convmat`` imports neither.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from convmat._args import numeric_array
from convmat._color import LUMA
from convmat._frames import PADDING, REAL, ZERO, Frame, Frames, frames
from convmat._optional import require_matplotlib

if TYPE_CHECKING:
    from matplotlib.animation import FuncAnimation
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.image import AxesImage
    from matplotlib.patches import Rectangle
    from matplotlib.text import Text

__all__ = ["COLORS", "animate"]

Array = np.ndarray[Any, Any]

#: The colours of the pictures, after the conventions of Dumoulin & Visin's figures: the
#: input blue, the output teal, padding white, inserted zeros sand, the kernel orange;
#: the cells of the current step drawn darker.
COLORS = {
    "input": "#9cc8ec",
    "input lit": "#2b6cb0",
    "padding": "#ffffff",
    "padding lit": "#b4b4b4",
    "zero": "#f3e2b3",
    "zero lit": "#c9a544",
    "kernel": "#f6a65a",
    "hole": "#ffffff",
    "output": "#2a9d8f",
    "output lit": "#17594f",
    "output empty": "#ffffff",
    "window": "#1a1a1a",
    "grid": "#8c8c8c",
}
#: Text is white on a cell whose colour has BT.601 luma below this (as :mod:`convmat.plot`).
DARK = 0.5
#: Inches per cell of the pictures, and per cell of the matrix beside them.
CELL = 0.5
MATRIX_CELL = 0.28
#: Dots per inch of the frames (GIF and HTML).
DPI = 72
#: The most terms of one output's sum written out in the caption.
CAPTION_TERMS = 9
#: The most cells of a matrix drawn with its numbers; larger ones are drawn as a pattern.
MATRIX_NUMBERS = 900


def _rgb(name: str) -> Array:
    from matplotlib.colors import to_rgb

    return np.array(to_rgb(COLORS[name]))


def _text_colour(rgb: Array) -> str:
    return "white" if float(np.dot(LUMA, rgb)) < DARK else "black"


def _picture(shape: tuple[int, ...]) -> tuple[int, int]:
    """The 2-d shape a grid is drawn as (a 1-d grid is one row)."""
    return (1, shape[0]) if len(shape) == 1 else (shape[0], shape[1])


@dataclass
class _Grid:
    """One panel: a grid of coloured cells with an optional text in each."""

    ax: Axes
    shape: tuple[int, int]
    image: AxesImage
    texts: list[Text | None] = field(default_factory=list)
    colours: Array = field(default_factory=lambda: np.zeros(0))

    def paint(self, colours: Array) -> list[Artist]:
        """Set every cell's colour (flat ``(cells, 3)``); returns the changed artists."""
        changed: list[Artist] = []
        if self.colours.shape == colours.shape and np.array_equal(self.colours, colours):
            return changed
        self.image.set_data(colours.reshape(*self.shape, 3))
        changed.append(self.image)
        for i, text in enumerate(self.texts):
            if text is not None and (
                self.colours.shape != colours.shape
                or not np.array_equal(self.colours[i], colours[i])
            ):
                text.set_color(_text_colour(colours[i]))
                changed.append(text)
        self.colours = colours.copy()
        return changed

    def write(self, cell: int, words: str) -> list[Artist]:
        text = self.texts[cell]
        if text is None or text.get_text() == words:
            return []
        text.set_text(words)
        return [text]


def _grid(ax: Axes, shape: tuple[int, ...], title: str, fontsize: float) -> _Grid:
    rows, cols = _picture(shape)
    image = ax.imshow(np.ones((rows, cols, 3)), interpolation="nearest", aspect="equal")
    ax.set_axis_off()  # the cell borders are two line collections, cheaper than ticks
    ax.vlines(np.arange(cols + 1) - 0.5, -0.5, rows - 0.5, color=COLORS["grid"], linewidth=0.8)
    ax.hlines(np.arange(rows + 1) - 0.5, -0.5, cols - 0.5, color=COLORS["grid"], linewidth=0.8)
    ax.set_title(title, fontsize=10)
    texts: list[Text | None] = [
        ax.text(c, r, "", ha="center", va="center", fontsize=fontsize)
        for r, c in np.ndindex(rows, cols)
    ]
    return _Grid(ax, (rows, cols), image, texts)


def _box(ax: Axes) -> Rectangle:
    from matplotlib.patches import Rectangle

    box = Rectangle((-0.5, -0.5), 1, 1, fill=False, edgecolor=COLORS["window"], linewidth=2.5)
    ax.add_patch(box)
    return box


def _place(box: Rectangle, cells: Array, shape: tuple[int, ...]) -> None:
    """Put ``box`` around the flat ``cells`` of a grid of ``shape``."""
    rows, cols = np.unravel_index(cells, _picture(shape))
    box.set_bounds(
        cols.min() - 0.5, rows.min() - 0.5, cols.max() - cols.min() + 1, rows.max() - rows.min() + 1
    )


class _Values:
    """The numbers (or SymPy expressions) of the input and the kernel, with their labels."""

    def __init__(self, f: Frames, values: Any, kernel: Any, symbols: bool) -> None:
        size_in, size_k = math.prod(f.input_shape), math.prod(f.kernel_size)
        x = None if values is None else _numbers(values, f.input_shape, "values")
        w = None if kernel is None else _numbers(kernel, f.kernel_size, "kernel")
        self.symbolic = bool(symbols) and (x is None or w is None)
        self.shown = x is not None or w is not None or self.symbolic
        self.x: list[Any]
        self.w: list[Any]
        self.y_names: list[str] = []
        if self.symbolic:
            import sympy

            from convmat import symbolic

            def entries(a: Any) -> list[Any]:
                return [a[index] for index in np.ndindex(*a.shape)]

            self.x = (
                entries(symbolic.symbols("x", f.input_shape))
                if x is None
                else [sympy.sympify(v) for v in _exact(x)]
            )
            self.w = (
                entries(symbolic.symbols("w", f.kernel_size))
                if w is None
                else [sympy.sympify(v) for v in _exact(w)]
            )
            self._format = symbolic._Formatter("unicode", [*self.x, *self.w])
            self.y_names = [self._format(e) for e in entries(symbolic.symbols("y", f.output_shape))]
            self.zero: Any = sympy.S.Zero
        else:
            self.x = list(np.ones(size_in) if x is None else x.ravel())
            self.w = list(np.ones(size_k) if w is None else w.ravel())
            self.zero = 0.0

    def label(self, v: Any) -> str:
        if self.symbolic:
            return str(self._format(v))
        return f"{float(v):g}"


def _exact(a: Array) -> list[Any]:
    """Integral floats as ints (so SymPy writes 2, not 2.0)."""
    return [int(v) if float(v).is_integer() else float(v) for v in a.ravel()]


def _numbers(a: Any, shape: tuple[int, ...], name: str) -> Array:
    arr = numeric_array(a, name)
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} must be real; got dtype {arr.dtype}")
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite; got {arr!r}")
    return arr.astype(np.float64)


def _index(flat: int, shape: tuple[int, ...]) -> str:
    return ", ".join(str(int(i)) for i in np.unravel_index(flat, shape))


class _Scene:
    """The figure of an animation and how each frame changes it."""

    def __init__(self, f: Frames, vals: _Values, figure: Any) -> None:
        self.f, self.vals, self.figure = f, vals, figure
        on_output = f.transposed and f.view in ("scatter", "matrix")
        self.scatter = on_output
        fontsize = 8 if vals.symbolic else 9
        kinds = f.kinds().ravel()
        self.kinds = kinds
        self.cells = f.cells().ravel()
        k, d = f.kernel_size, f.dilation
        footprint = tuple(di * (ki - 1) + 1 for ki, di in zip(k, d, strict=True))
        self.footprint = footprint
        panels = [f.input_shape if on_output else f.padded_shape, footprint]
        panels.append(f.padded_shape if on_output else f.output_shape)
        widths = [_picture(p)[1] * CELL for p in panels]
        heights = [_picture(p)[0] * CELL for p in panels]
        matrix = f.view == "matrix"
        m_shape = (math.prod(f.output_shape), math.prod(f.input_shape)) if matrix else (0, 0)
        if matrix:
            cell = MATRIX_CELL * (1.6 if vals.symbolic else 1.0)
            widths.append(m_shape[1] * cell)
            heights.append(m_shape[0] * cell)
        gap = 0.6
        width = sum(widths) + gap * (len(widths) + 1)
        height = max(heights) + 1.6
        figure.set_size_inches(width, height)
        grid_spec = figure.add_gridspec(
            1,
            len(widths),
            width_ratios=widths,
            left=gap / width,
            right=1 - gap / width,
            bottom=1.0 / height,
            top=1 - 0.5 / height,
            wspace=gap * len(widths) / sum(widths),
        )
        axes = [figure.add_subplot(grid_spec[0, i]) for i in range(len(widths))]
        for ax, h in zip(axes, heights, strict=True):
            ax.set_anchor("N")
            del h
        titles = {
            "window": ("input (padded)", "kernel", "output"),
            "zeros": ("input, zeros inserted, padded", "kernel (flipped)", "output"),
            "scatter": ("input", "kernel", "output (before cropping)"),
        }
        names = titles["scatter" if on_output else f.view if f.view != "matrix" else "window"]
        if on_output and not (kinds == PADDING).any():
            names = (names[0], names[1], "output")  # nothing to crop
        self.left = _grid(axes[0], panels[0], names[0], fontsize)
        self.kernel = _grid(axes[1], footprint, names[1], fontsize)
        self.right = _grid(axes[2], panels[2], names[2], fontsize)
        self.box_left = _box(axes[0])
        self.box_right = _box(axes[2])
        self.caption: Text = figure.text(
            0.5, 0.35 / height, "", ha="center", va="center", fontsize=10
        )
        self.matrix_box: Rectangle | None = None
        if matrix:
            self._matrix(axes[3], m_shape)
        self._legend(kinds)
        self._static()

    # ------------------------------------------------------------ static parts

    def _legend(self, kinds: Array) -> None:
        from matplotlib.patches import Patch

        entries = [("input", "input")]
        if (kinds == PADDING).any():
            entries.append(("padding", "cropped" if self.scatter else "padding"))
        if (kinds == ZERO).any():
            entries.append(("zero", "inserted zero"))
        entries += [("kernel", "kernel tap")]
        if any(di > 1 for di in self.f.dilation):
            entries.append(("hole", "dilation hole"))
        entries.append(("output", "output"))
        handles = [
            Patch(facecolor=COLORS[c], edgecolor=COLORS["grid"], label=label)
            for c, label in entries
        ]
        self.figure.legend(
            handles=handles,
            loc="lower center",
            ncol=len(handles),
            fontsize=8,
            frameon=False,
            bbox_to_anchor=(0.5, 0.55 / self.figure.get_size_inches()[1]),
        )

    def _static(self) -> None:
        f, vals = self.f, self.vals
        # The kernel: taps on their dilated footprint, holes between them.
        taps = self._footprint_taps()
        colours = np.tile(_rgb("hole"), (math.prod(self.footprint), 1))
        colours[taps] = _rgb("kernel")
        self.kernel.paint(colours)
        if vals.shown:
            order = np.arange(len(taps))
            if f.view == "zeros":
                order = order[::-1]  # the flipped kernel: position t holds tap ∏k − 1 − t
            for position, cell in enumerate(taps):
                self.kernel.write(int(cell), vals.label(vals.w[order[position]]))
        # The input's labels (the picture of the values) never change.
        if vals.shown:
            if self.scatter:
                for i, v in enumerate(vals.x):
                    self.left.write(i, vals.label(v))
            else:
                for cell, (kind, j) in enumerate(zip(self.kinds, self.cells, strict=True)):
                    self.left.write(cell, vals.label(vals.x[j]) if kind == REAL else "0")

    def _footprint_taps(self) -> Array:
        """The footprint cell of every kernel position, in C order."""
        k, d = self.f.kernel_size, self.f.dilation
        index = np.indices(k).reshape(len(k), -1) * np.array(d)[:, None]
        taps: Array = np.ravel_multi_index(tuple(index), self.footprint)
        return taps

    def _matrix(self, ax: Axes, shape: tuple[int, int]) -> None:
        from matplotlib.patches import Rectangle

        import convmat
        from convmat import plot

        f, vals = self.f, self.vals
        name = "Cᵀ" if f.transposed else "C"
        geometry: dict[str, Any] = dict(stride=f.stride, padding=f.padding, dilation=f.dilation)
        if f.transposed:
            geometry["output_padding"] = f.output_padding
        build = convmat.conv_transpose_matrix if f.transposed else convmat.conv_matrix
        if vals.symbolic and not all(getattr(w, "is_number", False) for w in vals.w):
            # Entry = tap + 1, so every tap has its colour; the cells name the tap.
            taps = np.arange(1.0, len(vals.w) + 1).reshape(1, 1, *f.kernel_size)
            dense = build((1, *f.input_shape), taps, **geometry).toarray()
            names = ["", *(vals.label(w) for w in vals.w)]
            labels = [[names[int(v)] for v in row] for row in dense]
            plot.grid(ax, dense, labels=labels, blank_zeros=True)
        else:
            weight = np.array([float(v) for v in vals.w]).reshape(1, 1, *f.kernel_size)
            m = build((1, *f.input_shape), weight, **geometry)
            if vals.shown and math.prod(shape) <= MATRIX_NUMBERS:
                plot.grid(ax, m)
            else:
                plot.spy(ax, m, markersize=max(2.0, 12.0 / math.sqrt(max(shape))))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{name}, {shape[0]}×{shape[1]}", fontsize=10)
        ax.set_anchor("N")
        self.matrix_box = Rectangle(
            (-0.5, -0.5), 1, 1, fill=False, edgecolor=COLORS["window"], linewidth=2
        )
        ax.add_patch(self.matrix_box)

    # ------------------------------------------------------------ one frame

    def draw(self, step: int) -> list[Artist]:
        f = self.f
        frame = f[step]
        changed: list[Artist] = []
        if self.scatter:
            changed += self._scatter(step, frame)
        else:
            changed += self._window(step, frame)
        if self.matrix_box is not None:
            rows, cols = math.prod(f.output_shape), math.prod(f.input_shape)
            if f.transposed:
                self.matrix_box.set_bounds(frame.input[0] - 0.5, -0.5, 1, rows)
            else:
                self.matrix_box.set_bounds(-0.5, frame.output[0] - 0.5, cols, 1)
            changed.append(self.matrix_box)
        return changed

    def _canvas_colours(self, window: Array, lit: str) -> Array:
        """The padded grid's colours, the window's cells darker."""
        base = {REAL: _rgb(lit), PADDING: _rgb("padding"), ZERO: _rgb("zero")}
        lit_colour = {
            REAL: _rgb(f"{lit} lit"),
            PADDING: _rgb("padding lit"),
            ZERO: _rgb("zero lit"),
        }
        colours = np.array([base[int(k)] for k in self.kinds])
        for cell in window:
            colours[cell] = lit_colour[int(self.kinds[cell])]
        return colours

    def _window(self, step: int, frame: Frame) -> list[Artist]:
        f = self.f
        changed = self.left.paint(self._canvas_colours(frame.window, "input"))
        _place(self.box_left, frame.window, f.padded_shape)
        n_out = math.prod(f.output_shape)
        colours = np.tile(_rgb("output empty"), (n_out, 1))
        colours[:step] = _rgb("output")
        colours[step] = _rgb("output lit")
        changed += self.right.paint(colours)
        _place(self.box_right, frame.output, f.output_shape)
        changed += [self.box_left, self.box_right]
        for o in range(n_out):
            changed += self.right.write(o, self._result(o) if o <= step else "")
        changed.append(self._caption_window(frame))
        return changed

    def _terms(self, frame: Frame) -> list[Any]:
        vals = self.vals
        if self.scatter:
            x = vals.x[int(frame.input[0])]
            return [vals.w[int(t)] * x for t in frame.taps]
        return [
            vals.w[int(t)] * vals.x[int(i)] for i, t in zip(frame.input, frame.taps, strict=True)
        ]

    def _result(self, o: int) -> str:
        vals = self.vals
        if not vals.shown:
            return ""
        if vals.symbolic:
            return vals.y_names[o]
        return vals.label(self._total(self.f[o]))

    def _total(self, frame: Frame) -> Any:
        total = self.vals.zero
        for term in self._terms(frame):
            total = total + term
        return total

    def _caption_window(self, frame: Frame) -> Text:
        f, vals = self.f, self.vals
        o = int(frame.output[0])
        where = _index(o, f.output_shape)
        if not vals.shown:
            n = frame.input.size
            words = f"output ({where}) sums {n} product{'s' * (n != 1)}"
        elif vals.symbolic:
            terms = [vals.label(t) for t in self._terms(frame)] or ["0"]
            more = " + …" if len(terms) > CAPTION_TERMS else ""
            words = f"{vals.y_names[o]} = {' + '.join(terms[:CAPTION_TERMS])}{more}"
            total = vals.label(self._total(frame))
            if total != " + ".join(terms) and len(total) < 40:
                words = f"{words} = {total}"
        else:
            pairs = [
                f"{float(vals.w[int(t)]):g}·{float(vals.x[int(i)]):g}"
                for i, t in zip(frame.input, frame.taps, strict=True)
            ] or ["0"]
            more = " + …" if len(pairs) > CAPTION_TERMS else ""
            words = (
                f"y[{where}] = {' + '.join(pairs[:CAPTION_TERMS])}{more}"
                f" = {float(self._total(frame)):g}"
            )
        self.caption.set_text(words)
        return self.caption

    def _scatter(self, step: int, frame: Frame) -> list[Artist]:
        f, vals = self.f, self.vals
        i = int(frame.input[0])
        n_in = math.prod(f.input_shape)
        colours = np.tile(_rgb("input"), (n_in, 1))
        colours[i] = _rgb("input lit")
        changed = self.left.paint(colours)
        _place(self.box_left, frame.input, f.input_shape)
        # The output before cropping: each output as full as the share of its products
        # received so far; the cells this element writes darker.
        received = f.received(step).ravel()
        final = f.received(-1).ravel()
        empty, full = _rgb("output empty"), _rgb("output")
        colours = np.tile(_rgb("padding"), (len(self.kinds), 1))
        real = self.kinds == REAL
        share = received / np.maximum(final, 1)
        colours[real] = empty + (full - empty) * share[self.cells[real]][:, None]
        for cell in frame.window:
            colours[cell] = _rgb("output lit" if self.kinds[cell] == REAL else "padding lit")
        changed += self.right.paint(colours)
        _place(self.box_right, frame.window, f.padded_shape)
        changed += [self.box_left, self.box_right]
        if vals.shown:
            sums = None if vals.symbolic else self._sums(step)
            lit = {int(o): term for o, term in zip(frame.output, self._terms(frame), strict=True)}
            for cell, flat in enumerate(self.cells):
                o = int(flat)
                if o < 0:
                    continue
                if vals.symbolic:
                    words = (
                        vals.label(lit[o])
                        if o in lit
                        else vals.y_names[o]
                        if received[o] == final[o] and final[o]
                        else ""
                    )
                else:
                    assert sums is not None
                    words = vals.label(sums[o]) if received[o] else ""
                changed += self.right.write(cell, words)
        where = _index(i, f.input_shape)
        n = frame.output.size
        if vals.shown:
            name = f"x[{where}] = {vals.label(vals.x[i])}"
            words = f"{name} times the kernel, added to {n} output{'s' * (n != 1)}"
        else:
            words = f"input ({where}) scatters into {n} output{'s' * (n != 1)}"
        self.caption.set_text(words)
        changed.append(self.caption)
        return changed

    def _sums(self, step: int) -> Array:
        """The outputs' running sums once frame ``step`` has played (numbers only)."""
        if getattr(self, "_cache_step", None) != step - 1:
            self._running = np.zeros(math.prod(self.f.output_shape))
            start = 0
        else:
            start = step
        for frame in self.f[start : step + 1]:
            x = float(self.vals.x[int(frame.input[0])])
            self._running[frame.output] += x * np.array(
                [float(self.vals.w[int(t)]) for t in frame.taps]
            )
        self._cache_step = step
        return self._running


def animate(
    input_shape: Any,
    kernel_size: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    transposed: bool = False,
    output_padding: Any = 0,
    view: str | None = None,
    values: Any = None,
    symbols: bool = False,
    kernel: Any = None,
    interval: float = 500,
) -> FuncAnimation:
    r"""Animate a convolution's sliding window or a transposed convolution's scatter.

    Parameters
    ----------
    input_shape, kernel_size, stride, padding, dilation, transposed, output_padding, view
        As :func:`frames`: a 1-d or 2-d geometry and one of the views ``"window"`` (the
        default for a convolution), ``"scatter"`` (the default when transposed),
        ``"zeros"`` (transposed: zero insertion and a stride-1 convolution) and
        ``"matrix"`` (the window or scatter beside C or Cᵀ, the current row or column
        framed).
    values : array_like, optional
        The input's numbers, shape ``input_shape``: written in the input's cells, and
        the outputs fill in with their (partial) sums.
    symbols : bool
        Write SymPy symbols (:func:`convmat.symbolic.symbols`) ``x₀₀ …`` for the input
        and ``w₀₀ …`` for the kernel where no numbers are given.
    kernel : array_like, optional
        The kernel's numbers, shape ``kernel_size``. With ``values`` but no kernel (or
        the other way round, without ``symbols``) the missing one is all ones.
    interval : float
        Milliseconds between frames.

    Returns
    -------
    matplotlib.animation.FuncAnimation
        One frame per :class:`Frame`. ``.to_jshtml()`` plays it in Jupyter,
        ``.save("conv.gif", writer="pillow")`` writes a GIF (``.mp4`` where ffmpeg is
        installed). Two attributes more: ``.frames``, the :class:`Frames` drawn, and
        ``.figure``, the matplotlib Figure (made without pyplot: nothing is shown twice).

    Raises
    ------
    ValueError
        As :func:`frames`; for a geometry that is not 1-d or 2-d; for ``values`` or
        ``kernel`` of the wrong shape or not finite; for ``interval <= 0``.
    TypeError
        As :func:`frames`; for non-numeric or complex ``values`` or ``kernel``, a
        non-bool ``symbols`` or a non-numeric ``interval``.
    ModuleNotFoundError
        When matplotlib is not installed.

    See Also
    --------
    frames : the frames as data.
    conv, conv_transpose : the numbers the last frame shows.
    convmat.symbolic.scatter_steps : the scatter steps as formulas.

    Notes
    -----
    Panels, left to right: the grid the kernel moves over (the padded input; for the
    scatter view the input, whose current element is framed), the kernel on its dilated
    footprint (holes white; flipped in the zeros view), the output (for the scatter view
    before the padding crops it: each cell as dark as the share of its products
    received so far), and for ``view="matrix"`` the matrix. Colours
    (``convmat._animate.COLORS``) follow the guide: input blue, output teal, padding
    white, inserted zeros sand, kernel orange. Each frame changes only the cells and
    texts that differ from the previous one.

    References
    ----------
    V. Dumoulin and F. Visin, "A guide to convolution arithmetic for deep learning",
    arXiv:1603.07285, 2016 (and its animations, github.com/vdumoulin/conv_arithmetic).

    Examples
    --------
    >>> import numpy as np
    >>> from convmat import animate
    >>> anim = animate((2, 2), 2, transposed=True, values=[[0, 1], [2, 3]],
    ...                kernel=[[0, 1], [2, 3]])
    >>> html = anim.to_jshtml()          # plays in Jupyter: HTML(html)
    >>> len(anim.frames), [t.get_text() for t in anim.figure.axes[2].texts]
    (4, ['0', '0', '1', '0', '4', '6', '4', '12', '9'])
    """
    require_matplotlib("convmat.animate")
    f = frames(
        input_shape,
        kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        transposed=transposed,
        output_padding=output_padding,
        view=view,
    )
    if len(f.input_shape) > 2:
        raise ValueError(
            f"input_shape must be 1-d or 2-d to be drawn (frames() gives the frames of any "
            f"rank); got {f.input_shape}"
        )
    if not isinstance(symbols, (bool, np.bool_)):
        raise TypeError(f"symbols must be a bool; got {symbols!r}")
    delay: Any = interval
    if isinstance(delay, (bool, np.bool_)) or not isinstance(delay, numbers.Real):
        raise TypeError(f"interval must be a number of milliseconds; got {delay!r}")
    if not float(delay) > 0:
        raise ValueError(f"interval must be > 0 milliseconds; got {delay!r}")
    vals = _Values(f, values, kernel, bool(symbols))

    from matplotlib.animation import FuncAnimation
    from matplotlib.figure import Figure

    figure = Figure(dpi=DPI)
    scene = _Scene(f, vals, figure)
    anim = FuncAnimation(
        figure,
        scene.draw,
        frames=len(f),
        init_func=lambda: scene.draw(0),
        interval=float(delay),
        blit=False,
        cache_frame_data=False,
    )
    setattr(anim, "frames", f)  # noqa: B010 - attributes FuncAnimation does not declare
    setattr(anim, "figure", figure)  # noqa: B010
    return anim
