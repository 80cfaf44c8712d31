"""`convmat overlap`: the overlap map of a transposed convolution (and a stack) as a grid."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from convmat import overlap_map, stack_overlap
from convmat.cli import main


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exact lines are checked at 200 columns; 80-column layout: tests/test_cli_terminal.py."""
    monkeypatch.setenv("COLUMNS", "200")


def grid(text: str) -> np.ndarray:
    return np.array([[int(v) for v in line.split()] for line in text.strip().splitlines()])


def test_k3_s2_prints_the_checkerboard(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["overlap", "--kernel", "3", "--stride", "2", "--input", "6x6"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "taps per output position of tconv:k=3,s=2 on 6x6 -> 13x13"
    np.testing.assert_array_equal(grid("\n".join(lines[1:14])), overlap_map((6, 6), 3, stride=2))
    assert lines[14].startswith("tconv:k=3,s=2: interior taps per phase")
    assert lines[14].endswith("checkerboard, period 2x2, max/min 4/1")


def test_k4_s2_is_uniform_and_the_default_input_is_4x4(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["overlap", "--kernel", "4", "--stride", "2", "--padding", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "taps per output position of tconv:k=4,s=2,p=1 on 4x4 -> 8x8"
    np.testing.assert_array_equal(
        grid("\n".join(lines[1:9])), overlap_map((4, 4), 4, stride=2, padding=1)
    )
    assert lines[9].endswith("-> uniform")


def test_per_axis_options_and_output_padding(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "overlap",
        "--kernel",
        "3x4",
        "--stride",
        "2",
        "--padding",
        "1x1",
        "--output-padding",
        "1x0",
        "--dilation",
        "1",
        "--input",
        "3x2",
    ]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "taps per output position of tconv:k=3x4,s=2,p=1x1,op=1x0 on 3x2 -> 6x4"
    expected = overlap_map((3, 2), (3, 4), stride=2, padding=1, output_padding=(1, 0))
    np.testing.assert_array_equal(grid("\n".join(lines[1:7])), expected)


def test_stack_compounds_and_names_every_layer(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "overlap",
        "--kernel",
        "3",
        "--stride",
        "2",
        "--input",
        "3",
        "--stack",
        "tconv:k=3,s=2",
        "conv:k=3,p=1",
    ]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "taps per output position of tconv:k=3,s=2 -> tconv:k=3,s=2 -> conv:k=3,p=1 on 3 -> 15"
    )
    expected = stack_overlap(
        3,
        [{"kernel_size": 3, "stride": 2}] * 2 + [{"kind": "conv", "kernel_size": 3, "padding": 1}],
    )
    assert [int(v) for v in lines[1].split()] == expected.tolist()
    assert len(lines) == 4  # one checkerboard line per transposed layer


def test_stack_alone_without_kernel(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["overlap", "--input", "2x2", "--stack", "tconv:k=2,s=2"]) == 0
    out = capsys.readouterr().out
    assert "tconv:k=2,s=2 on 2x2 -> 4x4" in out and out.rstrip().endswith("uniform")


def test_resize_convolution_stack_is_even_inside(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["overlap", "--input", "4x4", "--stack", "up:s=2", "conv:k=3,p=1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "taps per output position of up:s=2 -> conv:k=3,p=1 on 4x4 -> 8x8"
    counts = grid("\n".join(lines[1:9]))
    assert np.all(counts[1:-1, 1:-1] == 9) and len(lines) == 9  # no tconv: no verdict line


def test_fractional_counts_print_compactly(capsys: pytest.CaptureFixture[str]) -> None:
    # Linear rows sum to 1, so a constant stays whole; after a tconv the counts blend.
    assert main(["overlap", "--input", "3", "--stack", "up:s=2,mode=linear"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "1 1 1 1 1 1"
    assert main(["overlap", "--input", "2", "--stack", "tconv:k=3,s=2", "up:s=2,mode=linear"]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert line == "   1    1    1 1.25 1.75 1.75 1.25    1    1    1"


def test_three_d_maps_print_as_slices(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["overlap", "--kernel", "3", "--stride", "2", "--input", "2x2x2"]) == 0
    out = capsys.readouterr().out
    assert "[0, :, :]" in out and "[4, :, :]" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "overlap needs --kernel or --stack layers"),
        (["--kernel", "3", "--input", "4xa"], "--input must look like 5, 3x4"),
        (["--kernel", "3", "--stride", "0"], "stride must be >= 1"),
        (["--kernel", "3", "--stack", "tconv:k=2,to=8x8"], "to= has no meaning for overlap"),
        (["--kernel", "3", "--stack", "pool:k=2"], "layer must start with conv:, tconv: or up:"),
        (["--stack", "up:k=2"], "up layers take s= and mode= as key=value; got 'k=2'"),
        (["--stack", "up:mode=nearest"], "up layers must give the scale as s="),
        (["--stack", "up:s=2x2x2"], "s must have 1 or 2 values"),
        (["--stack", "up:s=2,mode=cubic"], "mode must be"),
        (["--kernel", "3x3x3", "--input", "4x4"], "kernel_size must have 1 or 2 values"),
        (["--kernel", "3", "--input", "1", "--padding", "2"], "padding must leave a non-empty"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "convmat", "overlap", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("convmat overlap: error: ")
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
