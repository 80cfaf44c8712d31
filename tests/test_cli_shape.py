"""`convmat shape`: sizes through a stack of layers and the output_padding restoring them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from convmat.cli import main


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exact lines are checked at 200 columns; 80-column layout: tests/test_cli_terminal.py."""
    monkeypatch.setenv("COLUMNS", "200")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "convmat", *args], capture_output=True, text=True, check=False
    )


def test_mirror_restores_the_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["shape", "--input", "28x28", "--mirror", "conv:k=3,s=2,p=1", "conv:k=3,s=2,p=1"]) == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "input  28x28"
    assert "28x28 -> 14x14" in lines[1] and "14x14 -> 7x7" in lines[2]
    assert "7x7 -> 14x14  output_padding=1x1 restores 14x14 (input of layer 2)" in lines[3]
    assert "14x14 -> 28x28  output_padding=1x1 restores 28x28 (input of layer 1)" in lines[4]


def test_odd_sizes_get_per_axis_output_padding(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shape", "--input", "7x8", "conv:k=3,s=2,p=1", "tconv:k=3,s=2,p=1"]) == 0
    out = capsys.readouterr().out
    assert "4x4 -> 7x8  output_padding=0x1 restores 7x8 (input of layer 1)" in out


def test_explicit_target_and_output_padding(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shape", "--input", "16", "tconv:k=4,s=2,p=1,to=32", "tconv:k=3,s=2,op=1"]) == 0
    out = capsys.readouterr().out
    assert "16 -> 32  output_padding=0 restores 32 (to=)" in out
    assert "32 -> 66" in out


def test_dilated_and_per_axis_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shape", "--input", "10x12", "conv:k=3x5,s=1x2,p=0x2,d=2x1"]) == 0
    assert "10x12 -> 6x6" in capsys.readouterr().out


def test_unreachable_target_is_one_line_and_exit_2() -> None:
    result = run("shape", "--input", "64x64", "conv:k=3", "tconv:k=3,s=2")
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert "layer 2 (tconv:k=3,s=2) cannot restore 64x64 (the input of layer 1)" in line
    assert "valid sizes range over 125..126" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "6x", "conv:k=3"], "--input must look like 5, 3x4 or 2x3x4; got '6x'"),
        (["--input", "6", "pool:k=3"], "layer must start with conv: or tconv:"),
        (["--input", "6", "conv:s=2"], "layer must give its kernel size as k=..."),
        (["--input", "6", "conv:k=3,q=2"], "layer options must be among"),
        (["--input", "6", "conv:k=3,op=1"], "op= applies to tconv layers only"),
        (["--input", "6x6", "conv:k=3x3x3"], "kernel_size must have 1 or 2 values"),
        (["--input", "6x6", "tconv:k=3,to=5"], "to= must have 2 values"),
        (["--input", "3", "conv:k=5"], r"kernel_size \(dilated\) must fit"),
        (["--input", "6"], "shape needs at least one layer"),
        (
            ["--input", "6", "tconv:k=3,s=2,op=2"],
            r"output_padding must be < max\(stride, dilation\)",
        ),
    ],
)
def test_bad_arguments(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shape", *args]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err.startswith("convmat shape: error: ")
    import re

    assert re.search(message, err)


def test_no_verb_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "shape" in capsys.readouterr().out


def test_module_entry_point() -> None:
    result = run("shape", "--input", "5", "conv:k=3")
    assert result.returncode == 0
    assert "5 -> 3" in result.stdout
