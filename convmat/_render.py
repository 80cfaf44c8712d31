"""Text and LaTeX drawings of :mod:`convmat.symbolic`'s results: the renderers.

:mod:`convmat.symbolic` computes formulas, matrices and scatter steps; this module
only draws them — formulas on one line (:class:`Formatter`, in Unicode, ASCII or
LaTeX), arrays as aligned text grids and as LaTeX ``bmatrix`` arrays, text blocks
tiled to a width, and the scatter steps as text and as LaTeX (what ``print(steps)``
and Jupyter show). A new view of the same results is a new renderer beside these,
never a second derivation. The ``convmat explain`` report is drawn by
:mod:`convmat._render_explain` from these pieces.

Imports SymPy, so it is imported only by :mod:`convmat.symbolic` and the command line,
never by ``import convmat``.
"""

from __future__ import annotations

import itertools
import math
import shutil
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import sympy

if TYPE_CHECKING:
    from convmat.symbolic import _Walk

Shape = tuple[int, ...]


# ---------------------------------------------------------------- formulas


_SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_UNICODE_PROBE = "w₁₁x₀₀⎡⎢⎣⎤⎥⎦·×→ᵀ"


def can_encode(stream: Any, text: str = _UNICODE_PROBE) -> bool:
    """Whether ``stream`` can print ``text`` (a text buffer without an encoding can)."""
    encoding = getattr(stream, "encoding", None)
    if encoding is None:
        return True
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


class Formatter:
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


# ---------------------------------------------------------------- arrays


def _slices(flat: list[Any], shape: Shape) -> Iterator[tuple[Shape, list[Any], Shape]]:
    """The 2-d (or 1-d) trailing slices of an N-d array, with their leading index."""
    plane = shape[-2:]
    size = math.prod(plane)
    for n, lead in enumerate(itertools.product(*map(range, shape[:-2]))):
        yield lead, flat[n * size : (n + 1) * size], plane


def grid_lines(
    flat: list[Any], shape: Shape, fmt: Formatter, *, zero: str | None = None, gap: int = 2
) -> list[str]:
    """An array as aligned text rows in brackets; N-d arrays as labelled 2-d slices."""
    if len(shape) > 2:
        blocks = [
            [f"[{', '.join(map(str, lead))}, ...]", *grid_lines(part, plane, fmt, zero=zero)]
            for lead, part, plane in _slices(flat, shape)
        ]
        return tile(blocks, 10**6)
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


def tile(blocks: list[list[str]], width: int, gap: int = 3) -> list[str]:
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


def latex_array(flat: list[Any], shape: Shape, fmt: Formatter, widest: str = "") -> str:
    """``bmatrix`` of a 1-d or 2-d array; higher ranks nest brackets of 2-d slices.

    With ``widest`` (LaTeX), every cell is centred in a box that wide, so all columns
    have one width and a stride offset lines up as it does in the text grid.
    """
    if len(shape) > 2:
        parts = [latex_array(part, plane, fmt, widest) for _, part, plane in _slices(flat, shape)]
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


def nested(flat: list[Any], shape: Shape, fmt: Formatter) -> str:
    """``[[0, 1], [2, 3]]`` from C-ordered values."""
    if len(shape) == 1:
        return "[" + ", ".join(fmt(v) for v in flat) + "]"
    step = math.prod(shape[1:])
    parts = (nested(flat[i * step : (i + 1) * step], shape[1:], fmt) for i in range(shape[0]))
    return "[" + ", ".join(parts) + "]"


# ---------------------------------------------------------------- scatter steps


def step_repr(index: Shape, value: Any, shape: Shape, flat: list[Any]) -> str:
    """``repr`` of one :class:`convmat.symbolic.Step`: its element and the partial's size."""
    return (
        f"Step(index={index}, value={Formatter('ascii')(value)}, "
        f"partial={'x'.join(map(str, shape))} with {sum(1 for v in flat if v != 0)} nonzero)"
    )


def step_latex(index: Shape, value: Any, shape: Shape, flat: list[Any]) -> str:
    """One step's partial in LaTeX, underbraced by the element that scattered the kernel."""
    fmt = Formatter("latex", [value])
    widest = max((fmt(v) for v in flat), key=len, default="")
    label = fmt(value)
    if not isinstance(value, sympy.Symbol):
        label = rf"x_{{{','.join(map(str, index))}}} = {label}"
    return rf"$$\underbrace{{{latex_array(flat, shape, fmt, widest)}}}_{{{label}}}$$"


def step_titles(walk: _Walk, fmt: Formatter) -> list[str]:
    """``1. x₀₀`` for a symbol, ``1. [0, 1] = 2`` for any other value."""
    return [
        f"{n}. {fmt(value)}"
        if isinstance(value, sympy.Symbol)
        else f"{n}. {list(index)} = {fmt(value)}"
        for n, (index, value, _) in enumerate(walk.steps, start=1)
    ]


def step_blocks(walk: _Walk, fmt: Formatter) -> list[list[str]]:
    """Each step as a titled text grid (zeros as dots), ready for :func:`tile`."""
    return [
        [title, *grid_lines(partial, walk.shape, fmt, zero=fmt.dot)]
        for title, (_, _, partial) in zip(step_titles(walk, fmt), walk.steps, strict=True)
    ]


def walk_text(walk: _Walk, *, unicode: bool | None = None, width: int | None = None) -> str:
    """The steps as text grids side by side, then their sum.

    ``unicode=None`` uses Unicode when ``sys.stdout`` can encode it; ``width``
    defaults to the terminal's.
    """
    fmt = Formatter(
        "unicode" if (can_encode(sys.stdout) if unicode is None else unicode) else "ascii",
        walk.order,
    )
    width = width or shutil.get_terminal_size((100, 24)).columns
    lines = tile(step_blocks(walk, fmt), width)
    lines += ["", f"sum of the {len(walk.steps)} steps:"]
    lines += grid_lines(walk.result, walk.shape, fmt)
    return "\n".join(lines)


def walk_latex(walk: _Walk, *, per_line: int | None = None) -> str:
    """LaTeX (an ``aligned`` block): the partials, underbraced by element, and the sum."""
    fmt = Formatter("latex", walk.order)
    cols = walk.shape[-1]
    per_line = per_line or max(1, min(4, 12 // cols))
    widest = max((fmt(v) for _, _, p in walk.steps for v in p), key=len, default="")
    terms = [
        rf"\underbrace{{{latex_array(p, walk.shape, fmt, widest)}}}_{{{fmt(v)}}}"
        for _, v, p in walk.steps
    ]
    lines = [" + ".join(terms[i : i + per_line]) for i in range(0, len(terms), per_line)]
    body = r" \\ &+ ".join(lines)
    total = latex_array(walk.result, walk.shape, fmt)
    return rf"\begin{{aligned}} Y ={{}}& {body} \\ ={{}}& {total} \end{{aligned}}"
