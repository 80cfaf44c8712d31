"""`convmat animate`: a layer drawn frame by frame into a GIF, an MP4 or a PNG strip.

The files are read back with Pillow: one GIF frame per frame of ``frames(...)``, all of one
size, and a PNG strip as large as its grid of frames. Refusals are one line on stderr,
exit status 2, before any drawing; the missing matplotlib or ffmpeg exit 1.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")
ImageSequence = pytest.importorskip("PIL.ImageSequence")

from convmat._frames import frames  # noqa: E402
from convmat.cli import (  # noqa: E402
    ANIMATE_MAX_FRAMES,
    STRIP_GAP,
    build_parser,
    main,
    strip_grid,
)


@pytest.fixture(autouse=True)
def _agg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPLBACKEND", "Agg")


def gif_frames(path: Path) -> list[tuple[int, int]]:
    """The size of every frame of a GIF (Pillow's n_frames of them)."""
    with Image.open(path) as im:
        sizes = [frame.size for frame in ImageSequence.Iterator(im)]
        assert len(sizes) == im.n_frames
        return sizes


def refusal(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run the verb, expect exit 2 and exactly one line on stderr; return that line."""
    assert main(["animate", *args]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert captured.out == "" and line.startswith("convmat animate: error: ")
    return line


# ---------------------------------------------------------------- the files


def test_a_gif_has_one_frame_per_frame_all_of_one_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "conv.gif"
    assert main(["animate", "conv:k=3,s=2,p=1", "--input", "5x5", "--out", str(out)]) == 0
    expected = len(frames((5, 5), 3, stride=2, padding=1))
    assert expected == 9
    sizes = gif_frames(out)
    assert len(sizes) == expected and len(set(sizes)) == 1
    with Image.open(out) as im:
        assert im.info["duration"] == 500 and im.info["loop"] == 0
    w, h = sizes[0]
    assert capsys.readouterr().out == f"wrote {out}: 9 frames of {w}x{h} pixels, 500 ms each\n"
    assert [p.name for p in tmp_path.iterdir()] == ["conv.gif"]  # no partial file left


def test_transposed_scatter_with_symbols_and_its_png_strip(tmp_path: Path) -> None:
    gif, png = tmp_path / "steps.gif", tmp_path / "sub" / "steps.png"
    spec = ["tconv:k=2", "--input", "2x2", "--view", "scatter", "--symbols"]
    assert main(["animate", *spec, "--out", str(gif)]) == 0
    count = len(frames((2, 2), 2, transposed=True, view="scatter"))
    sizes = gif_frames(gif)
    assert len(sizes) == count == 4 and len(set(sizes)) == 1
    w, h = sizes[0]
    # The strip: the same frames in a 2x2 grid, with STRIP_GAP white pixels between.
    assert main(["animate", *spec, "--out", str(png)]) == 0
    with Image.open(png) as strip:
        assert strip.format == "PNG" and not getattr(strip, "is_animated", False)
        assert strip.size == (2 * w + STRIP_GAP, 2 * h + STRIP_GAP)
        # The gaps are white; the first frame is the GIF's first frame.
        rgb = np.asarray(strip.convert("RGB"))
        assert (rgb[:, w : w + STRIP_GAP] == 255).all()
        with Image.open(gif) as first:
            first_rgb = np.asarray(first.convert("RGB"))
        assert np.abs(rgb[:h, :w].astype(int) - first_rgb).mean() < 8  # GIF's palette aside


def test_a_strip_in_one_row_at_twice_the_dpi(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gif, png = tmp_path / "row.gif", tmp_path / "row.png"
    assert main(["animate", "conv:k=2", "--input", "3", "--out", str(gif)]) == 0
    (w, h), _ = gif_frames(gif)
    capsys.readouterr()
    args = ["conv:k=2", "--input", "3", "--columns", "9", "--dpi", "144", "--out", str(png)]
    assert main(["animate", *args]) == 0
    count = len(frames(3, 2))
    assert count == 2 and strip_grid(count, 9) == (2, 1)
    line = capsys.readouterr().out
    big_w, big_h = (int(v) for v in line.split(" of ")[1].split(" ")[0].split("x"))
    assert abs(big_w - 2 * w) <= 1 and abs(big_h - 2 * h) <= 1
    with Image.open(png) as strip:
        assert strip.size == (2 * big_w + STRIP_GAP, big_h)
    assert line == f"wrote {png}: 2 frames of {big_w}x{big_h} pixels, 2 across, 1 down\n"


def test_strip_grid_is_near_square() -> None:
    assert [strip_grid(n) for n in (1, 2, 3, 4, 5, 9, 10, 16, 17)] == [
        (1, 1),
        (2, 1),
        (2, 2),
        (2, 2),
        (3, 2),
        (3, 3),
        (4, 3),
        (4, 4),
        (5, 4),
    ]
    assert strip_grid(6, 1) == (1, 6) and strip_grid(6, 4) == (4, 2)


def test_numbers_interval_and_geometry_reach_animate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import convmat._animate as animate_module

    calls: list[dict[str, Any]] = []
    real = animate_module.animate

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append({"args": args, **kwargs})
        return real(*args, **kwargs)

    monkeypatch.setattr(animate_module, "animate", spy)
    out = tmp_path / "numbers.gif"
    args = [
        "animate",
        "tconv:k=2,s=2,p=1,op=1",
        "--input",
        "2x3",
        "--values",
        "[[0, 1, 2], [3, -1/2, 2.5]]",
        "--kernel",
        "1,0,0,-1",
        "--view",
        "zeros",
        "--interval",
        "200",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    (call,) = calls
    assert call["args"] == ((2, 3),)
    assert_array_equal(call["values"], [[0, 1, 2], [3, -0.5, 2.5]])
    assert_array_equal(call["kernel"], [[1, 0], [0, -1]])
    assert call["interval"] == 200.0 and call["view"] == "zeros" and call["symbols"] is False
    assert call["transposed"] is True and call["output_padding"] == (1, 1)
    assert call["kernel_size"] == (2, 2) and call["stride"] == (2, 2) and call["padding"] == (1, 1)
    geometry = {k: call[k] for k in ("stride", "padding", "output_padding")}
    expected = len(frames((2, 3), 2, transposed=True, view="zeros", **geometry))
    assert len(gif_frames(out)) == expected
    with Image.open(out) as im:
        assert im.info["duration"] == 200


def test_force_overwrites_and_its_absence_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "conv.gif"
    out.write_bytes(b"an earlier run")
    args = ["conv:k=2", "--input", "2", "--out", str(out)]
    line = refusal(capsys, *args)
    assert line == (
        f"convmat animate: error: --out {str(out)!r} already exists; "
        "pass --force to overwrite, or another --out"
    )
    assert out.read_bytes() == b"an earlier run"
    assert main(["animate", *args, "--force"]) == 0
    assert len(gif_frames(out)) == 1


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pool:k=2", "--input", "4x4"], "layer must start with conv: or tconv:; got 'pool:k=2'"),
        (["conv:s=2", "--input", "4x4"], "layer must give its kernel size as k=..."),
        (["conv:k=3,q=1", "--input", "4x4"], "layer options must be among k, s, p, d, op, to"),
        (["conv:k=3,op=1", "--input", "4x4"], "op= applies to tconv layers only"),
        (["conv:k=3x3x3", "--input", "4x4"], "kernel_size must have 1 or 2 values; got 3x3x3"),
        (["tconv:k=3,to=8x8", "--input", "4x4"], "to= has no meaning for animate"),
        (["conv:k=3,p=same", "--input", "4x4"], "animate takes PyTorch's padding as numbers"),
        (["conv:k=3", "--input", "5y5"], "--input must look like 5, 3x4 or 2x3x4; got '5y5'"),
        (["conv:k=3", "--input", "2x2x2"], "--input must have 1 or 2 sizes, each >= 1, like 5x5"),
        (["conv:k=3", "--input", "0x3"], "--input must have 1 or 2 sizes, each >= 1"),
        (["conv:k=5", "--input", "3x3"], "kernel_size (dilated) must fit in the padded input"),
        (["conv:k=3", "--input", "4x4", "--view", "slide"], "--view must be one of window, "),
        (["tconv:k=3", "--input", "4x4", "--view", "window"], "view must be 'scatter', 'zeros'"),
        (["conv:k=3", "--input", "4x4", "--view", "scatter"], "view must be 'window' or 'matrix'"),
        (["conv:k=2", "--input", "2x2", "--values", "1,2,3"], "--values must have 4 numbers for"),
        (["conv:k=2", "--input", "2x2", "--kernel", "1,x,3,4"], "--kernel must give numbers such"),
        (["conv:k=2", "--input", "2x2", "--values", "1,2,3,1/0"], "must not divide by zero"),
        (["conv:k=2", "--input", "2x2", "--interval", "0"], "--interval must be a number of"),
        (["conv:k=2", "--input", "2x2", "--interval", "fast"], "--interval must be a number of"),
        (["conv:k=2", "--input", "2x2", "--interval", "inf"], "--interval must be a number of"),
        (["conv:k=2", "--input", "2x2", "--columns", "0"], "--columns must be a whole number"),
        (["conv:k=2", "--input", "2", "--dpi", "0"], "--dpi must be a number of dots per inch > 0"),
        (["conv:k=2", "--input", "2", "--dpi", "601"], "dots per inch > 0 and <= 600; got '601'"),
        (["conv:k=1", "--input", "30x30"], f"must give at most {ANIMATE_MAX_FRAMES} frames"),
    ],
)
def test_bad_arguments_are_one_line_exit_2_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    line = refusal(capsys, *args, "--out", str(tmp_path / "a.gif"))
    assert message in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["conv.avi", "conv", "conv.gif.txt", "conv.jpeg"])
def test_an_unknown_extension_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    line = refusal(capsys, "conv:k=2", "--input", "3x3", "--out", str(tmp_path / name))
    assert line.endswith(f"--out must end in .gif, .png or .mp4; got {str(tmp_path / name)!r}")


def test_out_paths_that_cannot_be_written_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "figure.gif"
    folder.mkdir()
    line = refusal(capsys, "conv:k=2", "--input", "3", "--out", str(folder), "--force")
    assert line.endswith(f"--out must be a file name; got {str(folder)!r}, which is a directory")
    (tmp_path / "file").write_text("")
    below = tmp_path / "file" / "conv.gif"
    line = refusal(capsys, "conv:k=2", "--input", "3", "--out", str(below))
    assert line.endswith(f"but {tmp_path / 'file'} is a file")
    line = refusal(
        capsys, "conv:k=2", "--input", "3", "--out", str(tmp_path / "a.gif"), "--columns", "2"
    )
    assert line.endswith(f"--columns lays out a .png strip; got --out {str(tmp_path / 'a.gif')!r}")


def test_mp4_without_ffmpeg_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from matplotlib.animation import writers

    monkeypatch.setattr(writers, "is_available", lambda name: False)
    out = tmp_path / "conv.mp4"
    assert main(["animate", "conv:k=2", "--input", "3x3", "--out", str(out)]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (
        f"convmat animate: error: writing {str(out)!r} needs ffmpeg; install it, or write a .gif"
    )
    assert list(tmp_path.iterdir()) == []


def test_mp4_with_ffmpeg(tmp_path: Path) -> None:
    from matplotlib.animation import writers

    if not writers.is_available("ffmpeg"):
        pytest.skip("ffmpeg is not installed")
    out = tmp_path / "conv.mp4"
    assert main(["animate", "conv:k=2", "--input", "3x3", "--out", str(out)]) == 0
    assert out.stat().st_size > 0 and out.read_bytes()[4:8] == b"ftyp"


def test_missing_matplotlib_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "conv.gif"
    assert main(["animate", "conv:k=2", "--input", "3x3", "--out", str(out)]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (
        "convmat animate: error: convmat animate needs matplotlib; "
        "pip install matplotlib (or convmat[test])"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def full(self: Any, fp: Any, *args: Any, **kwargs: Any) -> None:
        Path(fp).write_bytes(b"half a GIF")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full)  # the frames are drawn, then writing fails
    out = tmp_path / "conv.gif"
    assert main(["animate", "conv:k=2", "--input", "3x3", "--out", str(out)]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line == "convmat animate: error: [Errno 28] No space left on device"
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- as users run it


def run(*args: str, columns: int = 100) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MPLBACKEND": "Agg", "COLUMNS": str(columns)}
    return subprocess.run(
        [sys.executable, "-m", "convmat", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        check=False,
        timeout=300,
    )


def test_help_names_the_verb_its_views_and_examples() -> None:
    top = run("--help")
    assert top.returncode == 0 and "animate" in top.stdout
    result = run("animate", "--help", columns=80)
    assert result.returncode == 0 and result.stderr == ""
    text = result.stdout
    assert max(map(len, text.splitlines())) <= 80
    for word in ("--input", "--out", "--view", "--values", "--kernel", "--symbols"):
        assert word in text
    for word in (
        "--interval",
        "--dpi",
        "--columns",
        "--force",
        "window",
        "scatter",
        "zeros",
        "matrix",
    ):
        assert word in text
    assert "  convmat animate conv:k=3,s=2,p=1 --input 5x5 --out conv.gif\n" in text
    assert (
        "  convmat animate tconv:k=2 --input 2x2 --view scatter --symbols --out steps.gif\n" in text
    )


def help_examples() -> list[list[str]]:
    """The example commands of ``convmat animate --help``, as argv."""
    (action,) = build_parser()._subparsers._group_actions  # type: ignore[union-attr]
    choices: dict[str, argparse.ArgumentParser] = action.choices  # type: ignore[assignment]
    text = choices["animate"].description or ""
    return [shlex.split(line)[1:] for line in text.splitlines() if line.startswith("  convmat ")]


def test_help_examples_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # they write their --out into the working directory
    examples = help_examples()
    assert len(examples) == 4
    for argv in examples:
        assert main(argv) == 0, capsys.readouterr().err
        out = Path(argv[argv.index("--out") + 1])
        assert capsys.readouterr().out.startswith(f"wrote {out}: ")
        with Image.open(out) as im:
            assert im.format == out.suffix[1:].upper()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "conv.gif",
        "diff.gif",
        "steps.gif",
        "zeros.png",
    ]


def test_as_users_run_it(tmp_path: Path) -> None:
    out = tmp_path / "conv.gif"
    result = run("animate", "conv:k=2,s=2", "--input", "4x4", "--out", str(out))
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith(f"wrote {out}: 4 frames of ")
    assert len(gif_frames(out)) == len(frames((4, 4), 2, stride=2)) == 4
    again = run("animate", "conv:k=2,s=2", "--input", "4x4", "--out", str(out))
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr.splitlines() == [
        f"convmat animate: error: --out {str(out)!r} already exists; "
        "pass --force to overwrite, or another --out"
    ]


def test_other_verbs_do_not_import_matplotlib() -> None:
    code = (
        "import sys; from convmat.cli import main; "
        "main(['shape', '--input', '8', 'conv:k=3']); "
        "main(['explain', '--no-matrix']); "
        "main(['overlap', '--kernel', '3', '--stride', '2']); "
        "print('matplotlib' in sys.modules, file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stderr.strip() == "False"
