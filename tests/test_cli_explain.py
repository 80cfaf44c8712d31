"""`convmat explain`: the symbolic walkthrough of one layer, run as users run it.

Output, encodings and exit statuses are checked through a subprocess, as users run
it; the many one-line refusals and the value parser are also checked in-process.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import pytest
import sympy

from convmat.cli import UsageError, main, parse_values
from convmat.symbolic import conv_transpose, symbols


def run(
    *args: str, encoding: str = "utf-8", columns: int = 100
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": encoding, "COLUMNS": str(columns)}
    return subprocess.run(
        [sys.executable, "-m", "convmat", "explain", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        check=False,
    )


def numbers(lines: list[str]) -> list[list[int]]:
    return [[int(v) for v in re.findall(r"-?\d+", line)] for line in lines]


def test_the_classic_example() -> None:
    result = run()
    assert result.returncode == 0 and result.stderr == ""
    out = result.stdout
    lines = out.splitlines()
    assert lines[0] == (
        "Transposed convolution: input 2×2, kernel 2×2, stride 1, padding 0 → output 3×3"
    )
    # The input and kernel as symbol grids.
    assert "⎡x₀₀  x₀₁⎤   ⎡w₀₀  w₀₁⎤" in out and "⎣x₁₀  x₁₁⎦   ⎣w₁₀  w₁₁⎦" in out
    # Four numbered scatter steps, each the kernel scaled by one element.
    titles = re.findall(r"(\d)\. (x\S+)", out)
    assert titles == [("1", "x₀₀"), ("2", "x₀₁"), ("3", "x₁₀"), ("4", "x₁₁")]
    assert "⎡w₀₀x₀₀  w₀₁x₀₀    ·   ⎤" in out
    # The 3×3 formulas as a grid, centre in input order.
    start = lines.index("Output Y = the sum of the steps")
    grid = lines[start + 1 : start + 4]
    assert grid[1].startswith("⎢w₁₀x₀₀ + w₀₀x₁₀  w₁₁x₀₀ + w₁₀x₀₁ + w₀₁x₁₀ + w₀₀x₁₁  ")
    assert [
        cell.count("+") for row in grid for cell in re.split(r"\s{2,}", row.strip("⎡⎢⎣⎤⎥⎦ "))
    ] == [0, 1, 0, 1, 3, 1, 0, 1, 0]
    # C (4×9) and Cᵀ side by side.
    assert "Matrix: vec(Y) = Cᵀ vec(X), with C (4×9) the convolution 3×3 → 2×2" in out
    c_header = next(line for line in lines if line.startswith("C "))
    assert c_header.split() == ["C", "Cᵀ"]
    assert "⎡w₀₀ w₀₁  ·  w₁₀ w₁₁  ·   ·   ·   · ⎤   ⎡w₀₀  ·   ·   · ⎤" in out
    # Ending with the numeric check.
    assert "Numeric check: X = [[0, 1], [2, 3]], K = [[0, 1], [2, 3]] → Y =" in out
    assert numbers(lines[-4:-1]) == [[0, 0, 1], [0, 4, 6], [4, 12, 9]]
    assert lines[-1].endswith("conv_transpose_matrix(...) @ vec(X): yes")


def test_ascii_fallback() -> None:
    result = run(encoding="ascii")
    assert result.returncode == 0
    result.stdout.encode("ascii")  # nothing outside ASCII
    out = result.stdout
    assert "input 2x2, kernel 2x2, stride 1, padding 0 -> output 3x3" in out
    assert "w_11*x_00 + w_10*x_01 + w_01*x_10 + w_00*x_11" in out
    assert "Matrix: vec(Y) = C^T vec(X)" in out and "C^T" in out
    assert "[4  12  9]" in out


def test_design_example_stride_and_padding() -> None:
    result = run("--input", "3x3", "--kernel", "2x2", "--stride", "2", "--padding", "1")
    assert result.returncode == 0
    out = result.stdout
    assert "stride 2, padding 1 → output 4×4" in out
    assert "1. x₀₀" in out and "9. x₂₂" in out
    assert "C (9×16)" in out
    assert out.splitlines()[-1].endswith(": yes")


def test_dive_into_deep_learning_stride_2_numbers() -> None:
    lines = run("--stride", "2", "--no-steps", "--no-matrix").stdout.splitlines()
    assert numbers(lines[-5:-1]) == [[0, 0, 0, 1], [0, 0, 2, 3], [0, 2, 0, 3], [4, 6, 6, 9]]
    assert numbers(run("--padding", "1").stdout.splitlines()[-2:-1]) == [[4]]


def test_conv_mode() -> None:
    result = run("--conv", "--input", "3x3", "--values", "K=1,2,3,4")
    assert result.returncode == 0
    out = result.stdout
    assert out.startswith("Convolution: input 3×3, kernel 2×2")
    assert "Scatter steps" not in out and "Cᵀ" not in out
    assert "Matrix: vec(Y) = C vec(X), C (4×9)" in out
    assert "w₀₀x₀₀ + w₀₁x₀₁ + w₁₀x₁₀ + w₁₁x₁₁" in out
    assert numbers(out.splitlines()[-3:-1]) == [[27, 37], [57, 67]]
    assert "conv_matrix(...) @ vec(X): yes" in out


def test_steps_and_matrix_switches() -> None:
    plain = run("--no-steps", "--no-matrix").stdout
    assert "Scatter steps" not in plain and "Matrix:" not in plain
    assert "Output Y\n" in plain
    big = run("--input", "5x5", "--kernel", "3x3").stdout  # 25 elements: both off by default
    assert "Scatter steps" not in big and "Matrix:" not in big
    forced = run("--input", "5x5", "--kernel", "3x3", "--steps", "--matrix").stdout
    assert "25. x₄₄" in forced and "C (25×49)" in forced


def test_values_substitute_numbers() -> None:
    out = run("--values", "X=[[1, -1], [0.5, 2]],K=1/2,0,0,1").stdout
    assert "X = [[1, -1], [0.5, 2]], K = [[1/2, 0], [0, 1]]" in out
    assert out.splitlines()[-1].endswith(": yes")


def test_narrow_terminal_lists_formulas_one_per_line() -> None:
    out = run("--input", "3x3", "--kernel", "3x3", "--no-steps", columns=60).stdout
    assert (
        "y₂₂ = w₂₂x₀₀ + w₂₁x₀₁ + w₂₀x₀₂ + w₁₂x₁₀ + w₁₁x₁₁ + w₁₀x₁₂ + w₀₂x₂₀ + w₀₁x₂₁ + w₀₀x₂₂"
        in out
    )


def test_one_and_three_dimensions() -> None:
    out = run("--input", "3", "--kernel", "2", "--stride", "2").stdout
    assert "[w₀x₀  w₁x₀  w₀x₁  w₁x₁  w₀x₂  w₁x₂]" in out
    assert out.splitlines()[-1].endswith(": yes")
    out = run("--input", "2x1x2", "--kernel", "1x2x1", "--dilation", "1x2x1").stdout
    assert "[0, ...]" in out and out.splitlines()[-1].endswith(": yes")


def test_latex_output() -> None:
    result = run("--latex")
    assert result.returncode == 0
    out = result.stdout
    out.encode("ascii")
    assert out.count("{") == out.count("}")
    assert out.count(r"\begin{") == out.count(r"\end{")
    assert out.count(r"\[") == out.count(r"\]")
    assert r"X = \begin{bmatrix} x_{00} & x_{01} \\ x_{10} & x_{11} \end{bmatrix}" in out
    assert r"C^{T} = \begin{bmatrix}" in out
    assert r"\[ Y = \begin{bmatrix} 0 & 0 & 1 \\ 0 & 4 & 6 \\ 4 & 12 & 9 \end{bmatrix} \]" in out
    formulas = re.findall(r"^(y_\{\d\d\}) &= (.*?)(?: \\\\)?$", out, flags=re.MULTILINE)
    assert len(formulas) == 9
    assert formulas[4] == (
        "y_{11}",
        r"w_{11} x_{00} + w_{10} x_{01} + w_{01} x_{10} + w_{00} x_{11}",
    )


def test_latex_formulas_parse_back_to_the_library_formulas() -> None:
    pytest.importorskip("antlr4")
    from sympy.parsing.latex import parse_latex

    out = run("--latex", "--stride", "2", "--input", "2x3").stdout
    formulas = re.findall(r"^y_\{\d\d\} &= (.*?)(?: \\\\)?$", out, flags=re.MULTILINE)
    x, w = symbols("x", (2, 3)), symbols("w", (2, 2))
    # SymPy's LaTeX parser reads a subscript as a number, and 01 is not one: give every
    # index a leading 1 for the parser (x_{01} -> x_{101}) and map the names back.
    names = {sympy.Symbol(f"{s.name[0]}_{{1{s.name[2:]}}}"): s for s in [*x, *w]}
    parsed = [parse_latex(re.sub(r"_\{(\d+)\}", r"_{1\1}", f)).xreplace(names) for f in formulas]
    assert parsed == list(conv_transpose(x, w, stride=2))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "0x2"], "--input must have 1 to 3 sizes, each >= 1, like 2x2; got '0x2'"),
        (["--input", "2x2x2x2"], "--input must have 1 to 3 sizes"),
        (["--input", "2y2"], "--input must look like 5, 3x4 or 2x3x4; got '2y2'"),
        (["--input", "40x40"], "--input must have at most 256 elements"),
        (["--kernel", "9x9"], "--kernel must have at most 64 elements"),
        (["--kernel", "2"], "--kernel must have 2 sizes like --input 2x2; got '2'"),
        (["--stride", "1x2x3"], "--stride must have 1 or 2 values; got '1x2x3'"),
        (["--stride", "0"], "stride must be >= 1 on every axis; got (0, 0)"),
        (["--conv", "--kernel", "3x3"], "kernel_size (dilated) must fit in the padded input"),
        (["--output-padding", "1"], "output_padding must be < max(stride, dilation)"),
        (["--conv", "--output-padding", "1"], "--output-padding applies to --transposed only"),
        (["--conv", "--steps"], "--steps shows the scatter steps of --transposed only"),
        (["--padding", "same"], "--padding same needs --conv"),
        (["--padding", "5"], "padding must leave a non-empty output"),
        (["--values", "X=1,2"], "--values X must have 4 numbers for size 2x2; got 2"),
        (["--values", "X=1,2,3,4,X=1,2,3,4"], "--values keys must be X and K, each once"),
        (["--values", "K=a,b,c,d"], "--values must give numbers such as 3, -0.5 or 1/2"),
        (["--values", "1,2,3,4"], "--values must look like X=0,1,2,3,K=0,1,2,3"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith("convmat explain: error: ")
    assert message in line


@pytest.mark.parametrize(
    "args", [["--input", "0x2"], ["--conv", "--kernel", "3x3"], ["--values", "X=1,2"]]
)
def test_bad_arguments_never_show_a_traceback(args: list[str]) -> None:
    result = run(*args)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("X=0,1,2,3", {"X": ["0", "1", "2", "3"]}),
        (
            "K = [[1, 2], [3, 4]] , X=(1;2;3;4)",
            {"K": ["1", "2", "3", "4"], "X": ["1", "2", "3", "4"]},
        ),
        ("X=-1,.5,1e-3,2/3", {"X": ["-1", ".5", "1e-3", "2/3"]}),
    ],
)
def test_parse_values(text: str, expected: dict[str, Any]) -> None:
    assert parse_values(text, {"X": (2, 2), "K": (2, 2)}) == expected


def test_parse_values_refuses_unknown_keys() -> None:
    with pytest.raises(UsageError, match="--values keys must be X and K, each once; got 'Y=1'"):
        parse_values("Y=1", {"X": (1,), "K": (1,)})


def test_only_explain_imports_sympy() -> None:
    code = (
        "import sys, io, contextlib; from convmat.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['shape', '--input', '8', 'conv:k=3'])\n"
        "print('sympy' in sys.modules)\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['explain'])\n"
        "print('sympy' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "True"]
