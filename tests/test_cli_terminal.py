"""The command line at the edges a user meets: output paths, encodings, terminal widths.

Regression cases of issue 12, classes 6 (refuse before work, never clobber, help in
ASCII, ``--version``) and 12 (fit the terminal, 80 columns when unknown; summarise
large overlap maps; help examples whole). Run as users run it where it matters:
through a subprocess, behind a pipe, on a pseudo-terminal of a given width.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import shlex
import struct
import subprocess
import sys
import termios
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import convmat
from convmat import overlap_map
from convmat._checkerboard import format_counts
from convmat.cli import build_parser, main, summarise_counts, terminal_width

VERBS = [["explain"], ["shape"], ["overlap"], ["demo"], ["demo", "superres"], []]


def run(
    *args: str, env: dict[str, str] | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """``python -m convmat ARGS`` with stdin, stdout and stderr all off the terminal."""
    environ = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "convmat", *args],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        text=True,
        encoding="utf-8",
        env=environ,
        check=False,
        **kwargs,
    )


def widest(text: str) -> int:
    return max(map(len, text.splitlines()))


@pytest.fixture
def no_demo(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Replace the (slow) demo by a recorder: a refusal must come before it is called."""
    import convmat._demo as demo

    calls: list[Any] = []

    def fake(out: Any) -> Any:
        calls.append(out)
        raise ModuleNotFoundError("stop here: the demo was reached")

    monkeypatch.setattr(demo, "superres_demo", fake)
    return calls


# ---------------------------------------------------------------- class 6: refusals


def test_demo_out_existing_file_is_refused_before_work(
    tmp_path: Path, no_demo: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me")
    assert main(["demo", "superres", "--out", str(existing)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"convmat demo: error: --out must be a directory; got {str(existing)!r}, "
        "which is an existing file"
    ]
    assert no_demo == [] and existing.read_text() == "keep me"


def test_demo_out_existing_file_exits_2_in_one_line_as_users_run_it(tmp_path: Path) -> None:
    existing = tmp_path / "figure.png"
    existing.write_bytes(b"not yours")
    result = run("demo", "superres", "--out", str(existing), timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("convmat demo: error: --out must be a directory")
    assert existing.read_bytes() == b"not yours"


def test_demo_never_overwrites_its_pngs_without_force(
    tmp_path: Path, no_demo: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "superres_errors.png").write_bytes(b"an earlier run")
    assert main(["demo", "superres", "--out", str(tmp_path)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "already holds superres_errors.png; pass --force to overwrite" in line
    assert no_demo == [] and (tmp_path / "superres_errors.png").read_bytes() == b"an earlier run"
    # --force is the explicit way to overwrite: the demo then runs.
    assert main(["demo", "superres", "--out", str(tmp_path), "--force"]) == 1
    assert no_demo == [str(tmp_path)]


def test_demo_out_below_a_file_is_refused(
    tmp_path: Path, no_demo: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("")
    assert main(["demo", "superres", "--out", str(tmp_path / "file" / "pictures")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith(f"but {tmp_path / 'file'} is a file") and no_demo == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_demo_unwritable_out_is_refused(
    no_demo: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # /proc refuses new files even to root, where a chmod-ed directory would not.
    assert main(["demo", "superres", "--out", "/proc/convmat-demo"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("convmat demo: error: --out must be a writable directory")
    assert no_demo == []


def test_demo_new_directory_is_not_created_by_the_check(tmp_path: Path, no_demo: list[Any]) -> None:
    assert main(["demo", "superres", "--out", str(tmp_path / "a" / "b")]) == 1  # reached the demo
    assert no_demo == [str(tmp_path / "a" / "b")] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("verb", VERBS, ids=lambda v: " ".join(v) or "convmat")
def test_help_falls_back_to_ascii(verb: list[str]) -> None:
    result = run(*verb, "--help", env={"PYTHONIOENCODING": "ascii"})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    result.stdout.encode("ascii")
    assert "usage: convmat" in result.stdout


def test_explain_help_spells_unicode_in_ascii() -> None:
    out = run("explain", "--help", env={"PYTHONIOENCODING": "ascii"}).stdout
    assert "the matrix C and C^T" in " ".join(out.split())
    assert "show C and C^T" in out
    utf8 = run("explain", "--help", env={"PYTHONIOENCODING": "utf-8"}).stdout
    assert "show C and Cᵀ" in utf8  # Unicode where the output can show it
    overlap = run("overlap", "--help", env={"PYTHONIOENCODING": "ascii"}).stdout
    assert "transposed convolution - the response" in " ".join(overlap.split())


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout == f"convmat {convmat.__version__}\n"
    assert convmat.__version__ == version("convmat")  # the installed metadata agrees
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0


# ---------------------------------------------------------------- class 12: terminal width


def test_width_is_80_when_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert terminal_width() == 80  # pytest's capture: no terminal on any stream
    monkeypatch.setenv("COLUMNS", "123")
    assert terminal_width() == 123
    monkeypatch.setenv("COLUMNS", "wide")
    assert terminal_width() == 80


def test_explain_in_a_pipe_fits_80_columns() -> None:
    # No terminal anywhere (stdout piped, as into `less` from a script): 80, not 100.
    result = run("explain", "--input", "3x3", "--kernel", "3x3", "--stride", "2")
    assert result.returncode == 0
    assert widest(result.stdout) <= 80
    assert "Numeric check: X = [[0, 1, 2], [3, 4, 5], [6, 7, 8]], K = [[0, 1, 2], [3, 4, 5]," in (
        result.stdout
    )


def run_on_terminal(columns: int, *args: str) -> str:
    """``convmat ARGS | cat`` from a terminal of ``columns``: stdout piped, stderr the tty."""
    leader, follower = pty.openpty()
    try:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        environ = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
        result = subprocess.run(
            [sys.executable, "-m", "convmat", *args],
            stdin=follower,
            stdout=subprocess.PIPE,
            stderr=follower,
            env=environ | {"PYTHONIOENCODING": "utf-8"},
            check=True,
        )
    finally:
        os.close(follower)
        os.close(leader)
    return result.stdout.decode("utf-8")


def test_explain_piped_into_less_uses_the_terminal_width() -> None:
    wide = run_on_terminal(140, "explain")
    narrow = run_on_terminal(60, "explain")
    assert widest(narrow) <= 60 < widest(wide)
    assert "Matrix: vec(Y) = Cᵀ vec(X), with C (4×9) the convolution 3×3 → 2×2 that this" in wide
    # At 60 the output grid no longer fits: formulas come one per line.
    assert re.search(r"^y₁₁ = ", narrow, re.MULTILINE)


def test_shape_mirror_fits_80_columns(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    args = ["shape", "--input", "28x28", "--mirror", "conv:k=3,s=2,p=1", "conv:k=3,s=2,p=1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert widest(out) <= 80
    assert out.splitlines() == [
        "input  28x28",
        " 1. conv:k=3,s=2,p=1   28x28 -> 14x14",
        " 2. conv:k=3,s=2,p=1   14x14 -> 7x7",
        " 3. tconv:k=3,s=2,p=1    7x7 -> 14x14",
        "      output_padding=1x1 restores 14x14 (input of layer 2)",
        " 4. tconv:k=3,s=2,p=1  14x14 -> 28x28",
        "      output_padding=1x1 restores 28x28 (input of layer 1)",
    ]
    monkeypatch.setenv("COLUMNS", "100")  # room enough: the notes stay on their lines
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[3].endswith("7x7 -> 14x14  output_padding=1x1 restores 14x14 (input of layer 2)")
    assert len(lines) == 5 and widest("\n".join(lines)) <= 100


def test_overlap_32x32_is_summarised_at_80_columns(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["overlap", "--input", "32x32", "--kernel", "3", "--stride", "2"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert widest(out) <= 80 and len(lines) < 20
    assert lines[0] == "taps per output position of tconv:k=3,s=2 on 32x32 -> 65x65"
    full = overlap_map((32, 32), 3, stride=2)
    rows = lines[1:14]
    assert rows[6] == "..."
    for line, expected in zip(rows[:6] + rows[7:], [*full[:6], *full[-6:]], strict=True):
        left, right = line.split(" ... ")
        e = len(left.split())
        assert e >= 3 and len(right.split()) == e
        assert [int(v) for v in left.split()] == expected[:e].tolist()
        assert [int(v) for v in right.split()] == expected[-e:].tolist()
    assert lines[14] == "(65x65 summarised; --full prints every entry)"


def test_overlap_full_prints_every_entry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["overlap", "--input", "32x32", "--kernel", "3", "--stride", "2", "--full"]) == 0
    lines = capsys.readouterr().out.splitlines()
    grid = np.array([[int(v) for v in line.split()] for line in lines[1:66]])
    np.testing.assert_array_equal(grid, overlap_map((32, 32), 3, stride=2))
    assert "summarised" not in "\n".join(lines)


def test_overlap_small_maps_print_whole(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["overlap", "--input", "8x8", "--kernel", "3", "--stride", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    grid = np.array([[int(v) for v in line.split()] for line in lines[1:18]])
    np.testing.assert_array_equal(grid, overlap_map((8, 8), 3, stride=2))
    # The verdict wraps at a space, continuation indented.
    assert lines[18:] == [
        "tconv:k=3,s=2: interior taps per phase (k=3 s=2: 2/1, k=3 s=2: 2/1) ->",
        "  checkerboard, period 2x2, max/min 4/1",
    ]


def test_summarise_counts_1d_and_3d() -> None:
    line, cut = summarise_counts(overlap_map(40, 3, stride=2), 80)
    left, right = line.split(" ... ")
    assert cut and len(line) <= 80 and left.startswith("1 1 2 1") and right.endswith("2 1 1")
    text, cut = summarise_counts(overlap_map((12, 12, 12), 3, stride=2), 80)
    labels = re.findall(r"^\[.*\]$", text, re.MULTILINE)
    assert cut and labels == [f"[{i}, :, :]" for i in (0, 1, 2, 22, 23, 24)]
    assert "\n\n...\n\n[22, :, :]" in text
    assert summarise_counts(overlap_map((12, 12, 12), 3, stride=2), 80, full=True)[1] is False
    small = overlap_map((3, 3), 3, stride=2)
    assert summarise_counts(small, 80) == (format_counts(small), False)


@pytest.mark.parametrize("verb", VERBS, ids=lambda v: " ".join(v) or "convmat")
def test_help_fits_80_columns(verb: list[str]) -> None:
    result = run(*verb, "--help", env={"COLUMNS": "80"})
    assert result.returncode == 0 and widest(result.stdout) <= 80


@pytest.mark.parametrize("verb", ["explain", "shape", "overlap"])
def test_help_examples_are_whole_lines_at_80_columns(verb: str) -> None:
    out = run(verb, "--help", env={"COLUMNS": "80"}).stdout
    commands = [line.strip() for line in out.splitlines() if line.startswith("  convmat ")]
    assert commands, out
    for command in commands:  # each parses as a whole command line, nothing cut off
        argv = shlex.split(command.split("|")[0])[1:]
        assert build_parser().parse_args(argv).verb == verb
    if verb == "shape":
        assert commands == [
            "convmat shape --input 28x28 --mirror conv:k=3,s=2,p=1 conv:k=3,s=2,p=1"
        ]


def examples() -> list[list[str]]:
    """Every example command of every help page, as argv."""
    found = []
    for action in build_parser()._subparsers._group_actions:  # type: ignore[union-attr]
        for name, sub in action.choices.items():
            for line in (sub.epilog or "").splitlines():
                if line.startswith("  convmat "):
                    found.append(shlex.split(line.split("|")[0])[1:])
            assert name
    return found


@pytest.mark.parametrize("argv", examples(), ids=" ".join)
def test_help_examples_run(argv: list[str]) -> None:
    result = run(*argv)
    assert result.returncode == 0, result.stderr
