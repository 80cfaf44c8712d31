"""The ``convmat explain`` report drawn as text or LaTeX: a renderer, computing nothing.

:func:`convmat.symbolic._explanation` computes one single-channel layer's symbols,
formulas, matrices and numeric check; :func:`explain_lines` lays them out — the
title, the input and kernel grids, the scatter steps, the output formulas, C and Cᵀ
and the check — in Unicode or ASCII text for a terminal of a given width, or as LaTeX
for papers and slides, with the pieces of :mod:`convmat._render`.

Imports SymPy (through :mod:`convmat._render`); only the command line imports it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from convmat._render import Formatter, grid_lines, latex_array, nested, tile, walk_latex
from convmat._render import step_blocks as _step_blocks

if TYPE_CHECKING:
    from convmat.symbolic import _Explanation

Shape = tuple[int, ...]


def explain_lines(
    report: _Explanation,
    *,
    steps: bool | None,
    matrix: bool | None,
    style: str,
    width: int,
) -> list[str]:
    """The lines of the ``convmat explain`` report of ``report``.

    ``steps`` / ``matrix`` of ``None`` show the scatter steps (transposed layers) /
    the matrix when they are small. ``style`` is ``"unicode"``, ``"ascii"`` or
    ``"latex"``; text grids are tiled to ``width`` columns.
    """
    spatial, kernel, out, geometry = report.spatial, report.kernel, report.out, report.geometry
    transposed, xs, ks, ys, names = report.transposed, report.xs, report.ks, report.ys, report.names
    c, ct = report.c, report.ct
    show_steps = transposed and (steps if steps is not None else math.prod(spatial) <= 16)
    show_matrix = matrix if matrix is not None else c.shape[0] <= 16 and c.shape[1] <= 25

    fmt = Formatter(style, [*xs, *ks])
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

    plain = Formatter("ascii") if latex else fmt
    check = (
        f"Numeric check: X = {nested(report.xv, spatial, plain)}, "
        f"K = {nested(report.kv, kernel, plain)} {arrow} Y ="
    )
    verdict = (
        f"the formulas agree with convmat.{report.oracle}(...) @ vec(X): "
        f"{'yes' if report.ok else 'NO'}"
    )
    steps_caption = "Scatter steps: each input element times the whole kernel, at its stride offset"
    y_caption = "Output Y = the sum of the steps" if show_steps else "Output Y"
    m_caption = (
        f"Matrix: vec(Y) = C{tee} vec(X), with C ({size(c.shape)}) the convolution "
        f"{size(out)} {arrow} {size(spatial)} that this layer transposes"
        if transposed
        else f"Matrix: vec(Y) = C vec(X), C ({size(c.shape)})"
    )

    if latex:

        def tex(flat: list[Any], shape: Shape) -> str:
            return latex_array(flat, shape, fmt)

        lines = [f"% {title}", rf"\[ X = {tex(xs, spatial)}, \qquad K = {tex(ks, kernel)} \]"]
        if show_steps:
            lines += [f"% {steps_caption}", rf"\[ {walk_latex(report.walk())} \]"]
        lines += [f"% {y_caption}", r"\begin{align*}"]
        lines += [
            f"{fmt(n)} &= {fmt(e)}" + (r" \\" if i < len(ys) - 1 else "")
            for i, (n, e) in enumerate(zip(names, ys, strict=True))
        ]
        lines.append(r"\end{align*}")
        if show_matrix:
            mats = rf"C = {tex(list(c), c.shape)}"
            if ct is not None:
                mats += rf", \qquad C^{{T}} = {tex(list(ct), ct.shape)}"
            lines += [f"% {m_caption}", rf"\[ {mats} \]"]
        lines += [f"% {check}", rf"\[ Y = {tex(report.y_num, out)} \]", f"% {verdict}"]
        return lines

    def titled(name: str, flat: list[Any], shape: Shape, **kw: Any) -> list[str]:
        return [name, *grid_lines(flat, shape, fmt, **kw)]

    lines = [title, ""]
    lines += tile([titled("Input X", xs, spatial), titled("Kernel K", ks, kernel)], width)
    if show_steps:
        lines += ["", steps_caption, *tile(_step_blocks(report.walk(), fmt), width)]
    grid = grid_lines(ys, out, fmt)
    if max(map(len, grid)) > width:
        grid = [f"{fmt(n)} = {fmt(e)}" for n, e in zip(names, ys, strict=True)]
    lines += ["", y_caption, *grid]
    if show_matrix:
        blocks = [titled("C", list(c), c.shape, zero=fmt.dot, gap=1)]
        if ct is not None:
            blocks.append(titled(f"C{tee}", list(ct), ct.shape, zero=fmt.dot, gap=1))
        lines += ["", m_caption, *tile(blocks, width)]
    lines += ["", check, *grid_lines(report.y_num, out, fmt), verdict]
    return lines
