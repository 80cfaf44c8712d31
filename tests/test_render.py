"""The renderers: text grids, LaTeX arrays and the explain report drawn from computed data.

:mod:`convmat.symbolic` computes and :mod:`convmat._render` / :mod:`convmat._render_explain`
draw; these tests give the renderers data built by hand or by symbolic, and check that the
objects' ``str`` and LaTeX are exactly the renderers' drawings.
"""

from __future__ import annotations

import io
import subprocess
import sys

import sympy

from convmat import _render, symbolic
from convmat._render_explain import explain_lines
from convmat.symbolic import _Walk, scatter_steps, symbols

N = sympy.Integer


def test_a_walk_built_by_hand_is_drawn_as_text() -> None:
    """Any walk data draws, however it was made: the renderer derives nothing."""
    walk = _Walk(
        steps=[((0,), N(2), [N(4), N(6), N(0)]), ((1,), N(1), [N(0), N(2), N(3)])],
        shape=(3,),
        result=[N(4), N(8), N(3)],
        order=[],
    )
    assert _render.walk_text(walk, unicode=False, width=80).splitlines() == [
        "1. [0] = 2   2. [1] = 1",
        "[4  6  .]    [.  2  3]",
        "",
        "sum of the 2 steps:",
        "[4  8  3]",
    ]
    latex = _render.walk_latex(walk)
    assert latex.count(r"\underbrace") == 2 and latex.count("{") == latex.count("}")


def test_objects_delegate_their_text_and_latex_to_the_renderers() -> None:
    steps = scatter_steps(symbols("x", (2, 3)), symbols("w", (2, 2)), stride=(1, 2))
    walk = steps._walk
    for unicode in (True, False):
        assert steps.to_text(unicode=unicode, width=70) == _render.walk_text(
            walk, unicode=unicode, width=70
        )
    assert steps.to_latex(per_line=2) == _render.walk_latex(walk, per_line=2)
    assert steps._repr_latex_() == f"$${_render.walk_latex(walk)}$$"
    step = steps[4]
    shape, flat = step.partial.shape, list(step.partial)
    assert shape == (3, 6)
    assert repr(step) == _render.step_repr(step.index, step.value, shape, flat)
    assert repr(step) == "Step(index=(1, 1), value=x_11, partial=3x6 with 4 nonzero)"
    assert step._repr_latex_() == _render.step_latex(step.index, step.value, shape, flat)
    assert symbolic._Formatter is _render.Formatter


def test_tile_puts_equal_blocks_in_even_rows() -> None:
    block = ["abc", "def"]
    # Three fit in 15 columns, but four blocks tile as 2 + 2, not 3 + 1.
    assert _render.tile([block] * 4, 15) == [
        "abc   abc",
        "def   def",
        "",
        "abc   abc",
        "def   def",
    ]
    # Unequal blocks fill each row as far as the width allows.
    assert _render.tile([["a"], ["bbbb"], ["cc"]], 10) == ["a   bbbb", "", "cc"]


def test_grid_lines_and_nested_lists() -> None:
    fmt = _render.Formatter("ascii")
    values = [N(1), N(0), N(-12), N(0), N(3), N(4)]
    assert _render.grid_lines(values, (2, 3), fmt) == ["[1  0  -12]", "[0  3    4]"]
    # A sparse picture: zeros as dots, every column one width.
    assert _render.grid_lines(values, (2, 3), fmt, zero=".", gap=1) == [
        "[ 1   .  -12]",
        "[ .   3   4 ]",
    ]
    unicode = _render.grid_lines(values, (2, 3), _render.Formatter("unicode"))
    assert unicode == ["⎡1  0  -12⎤", "⎣0  3    4⎦"]
    assert _render.nested(values, (2, 3), fmt) == "[[1, 0, -12], [0, 3, 4]]"
    cube = _render.grid_lines(list(map(N, range(8))), (2, 2, 2), fmt)
    assert cube == ["[0, ...]   [1, ...]", "[0  1]     [4  5]", "[2  3]     [6  7]"]


def test_latex_array_of_a_grid_and_of_a_cube() -> None:
    fmt = _render.Formatter("latex")
    x = list(symbols("x", (2, 2)))
    assert _render.latex_array(x, (2, 2), fmt) == (
        r"\begin{bmatrix} x_{00} & x_{01} \\ x_{10} & x_{11} \end{bmatrix}"
    )
    cube = _render.latex_array(list(map(N, range(8))), (2, 2, 2), fmt)
    assert cube.startswith(r"\left[\begin{matrix}") and cube.count(r"\begin{bmatrix}") == 2


def test_can_encode_follows_the_stream() -> None:
    assert _render.can_encode(io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
    assert not _render.can_encode(io.TextIOWrapper(io.BytesIO(), encoding="ascii"))
    assert _render.can_encode(io.StringIO())  # no encoding: any text goes


def test_explain_report_draws_the_verdict_it_is_given() -> None:
    geometry = {"stride": (1, 1), "padding": (0, 0), "output_padding": (0, 0)}
    report = symbolic._explanation((2, 2), (2, 2), transposed=True, geometry=geometry)
    assert report.ok and report.oracle == "conv_transpose_matrix"
    text = explain_lines(report, steps=False, matrix=False, style="ascii", width=80)
    assert text[-1].endswith(": yes") and "Scatter steps" not in "\n".join(text)
    failed = explain_lines(
        report._replace(ok=False), steps=False, matrix=False, style="ascii", width=80
    )
    assert failed[-1] == "the formulas agree with convmat.conv_transpose_matrix(...) @ vec(X): NO"
    latex = explain_lines(report, steps=True, matrix=True, style="latex", width=80)
    body = "\n".join(latex)
    assert latex[0].startswith("% Transposed convolution") and r"C^{T} = " in body
    assert body.count("{") == body.count("}")


def test_renderers_load_with_symbolic_only() -> None:
    code = (
        "import sys, convmat, convmat.cli; "
        "before = sorted(m for m in ('sympy', 'convmat._render', 'convmat._render_explain') "
        "if m in sys.modules); "
        "from convmat import symbolic; "
        "after = sorted(m for m in ('convmat._render', 'convmat._render_explain') "
        "if m in sys.modules); "
        "print(before, after)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["[]", "['convmat._render']"]
