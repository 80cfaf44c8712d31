"""Issue 12, class 8: result objects display short (shapes and key figures), not as dumps.

Each test fails on the code before the fix: a NamedTuple's default repr prints every
array in full, Checkerboard printed its fields, symbolic.Step had no LaTeX.
"""

from __future__ import annotations

import numpy as np
import pytest

import convmat
from convmat import symbolic


def test_deconvolve_result_repr_summarises_x() -> None:
    w = np.ones((1, 1, 2, 2))
    x = np.arange(400.0).reshape(1, 20, 20)
    result = convmat.deconvolve(convmat.conv(x, w), w, x.shape)
    text = repr(result)
    assert text.startswith("DeconvolveResult(x: float64 (1, 20, 20) in [")
    assert "converged (istop=" in text and f"itn={result.itn}" in text
    assert len(text) < 250 and "399." not in text  # no data dump
    html = result._repr_html_()
    assert html.startswith("<table>") and "(1, 20, 20)" in html and "‖y − Cx‖" in html


def test_deconvolution_report_repr_is_its_table_not_its_arrays() -> None:
    x = np.arange(64.0).reshape(1, 8, 8)
    report = convmat.deconvolution_report(x, np.ones((1, 1, 3, 3)))
    text = repr(report)
    assert text.splitlines()[0] == "DeconvolutionReport"
    assert str(report) in text
    assert "transposed, deconvolved: float64 (1, 8, 8) in [" in text
    assert len(text) < 600 and "array(" not in text
    html = report._repr_html_()
    assert "<b>DeconvolutionReport</b>" in html and "<table>" in html
    assert f"{report.singular_values.size} singular values" in html


def test_checkerboard_repr_is_its_summary_sentence() -> None:
    board = convmat.checkerboard(3, 2)
    assert repr(board) == (
        "Checkerboard(interior taps per phase (k=3 s=2: 2/1) -> checkerboard, period 2, "
        "max/min 2/1)"
    )
    assert repr(convmat.checkerboard(4, 2)) == (
        "Checkerboard(interior taps per phase (k=4 s=2: 2/2) -> uniform)"
    )
    html = convmat.checkerboard((3, 3), 2)._repr_html_()
    assert "checkerboard, period 2x2" in html and html.count("<tr>") == 3  # head + 2 phases
    assert "<td style='text-align:right'>4</td>" in html
    assert "<table>" not in convmat.checkerboard(3, 2)._repr_html_()  # 1-d: the sentence


def test_symbolic_step_repr_and_latex() -> None:
    steps = symbolic.scatter_steps(
        symbolic.symbols("x", (2, 2)), symbolic.symbols("w", (3, 3)), stride=2
    )
    step = steps[1]
    assert repr(step) == "Step(index=(0, 1), value=x_01, partial=5x5 with 9 nonzero)"
    latex = step._repr_latex_()
    assert latex.startswith(r"$$\underbrace{\begin{bmatrix}") and latex.endswith("_{x_{01}}$$")
    assert r"w_{00} x_{01}" in latex
    numeric = symbolic.scatter_steps(np.arange(8.0).reshape(2, 2, 2), np.ones((2, 1, 2, 2)))
    assert repr(numeric[1]) == "Step(index=(0, 0, 1), value=1, partial=1x3x3 with 4 nonzero)"
    assert numeric[1]._repr_latex_().endswith("_{x_{0,0,1} = 1}$$")


def test_step_latex_gives_every_column_one_width() -> None:
    """Issue 12, class 10: the zeros of a partial were narrower than its products."""
    steps = symbolic.scatter_steps(
        symbolic.symbols("x", (2, 2)), symbolic.symbols("w", (3, 3)), stride=2
    )
    for latex, widest in (
        (steps.to_latex(), "w_{00} x_{00}"),
        (steps[3]._repr_latex_(), "w_{00} x_{11}"),
    ):
        phantom = rf"\smash[b]{{\underset{{\displaystyle\hphantom{{{widest}}}}}{{"
        partial = latex.split(r"\begin{bmatrix}")[1].split(r"\end{bmatrix}")[0]
        cells = [c.strip() for row in partial.split(r"\\") for c in row.split("&")]
        assert len(cells) == 25 and all(c.startswith(phantom) for c in cells)
    # The sum keeps its natural widths.
    total = steps.to_latex().split(r"\begin{bmatrix}")[-1]
    assert r"\hphantom" not in total


@pytest.mark.slow
def test_superresolution_repr_is_short() -> None:
    pytest.importorskip("matplotlib")
    result = convmat.superres_demo()
    text = repr(result)
    assert text.startswith("SuperResolution: 600x512 photo from 300x256, 7 methods, best ")
    assert result.table() in text and text.endswith("files: none")
    assert len(text) < 1200  # was ~9k characters of arrays
    html = result._repr_html_()
    assert "<table>" in html and html.count("<tr>") == 8 and len(html) < 3000
