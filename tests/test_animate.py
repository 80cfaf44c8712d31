"""The animations: one GIF frame per frame, the right numbers and symbols in the cells."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import convmat

pytest.importorskip("matplotlib")
pytest.importorskip("PIL")

import matplotlib

matplotlib.use("Agg")

from PIL import Image

from convmat._animate import animate
from convmat._frames import frames

DOCS = Path(__file__).resolve().parents[1] / "docs"


def texts(anim: Any, panel: int) -> list[str]:
    """The texts of one panel's cells, in C order of its grid."""
    return [t.get_text() for t in anim.figure.axes[panel].texts]


def output_texts(anim: Any) -> np.ndarray[Any, Any]:
    """The output panel's texts at the output's cells (the scatter view's are cropped)."""
    f = anim.frames
    shown = np.array(texts(anim, 2), dtype=object)
    if f.transposed and f.view in ("scatter", "matrix"):
        cells = f.cells()
        return shown.reshape(f.padded_shape)[cells >= 0].reshape(f.output_shape)
    return shown.reshape(f.output_shape)


def as_text(y: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.array([f"{v:g}" for v in y.ravel()], dtype=object).reshape(y.shape)


def render(anim: Any, path: Path) -> tuple[int, set[tuple[int, int]]]:
    """Save ``anim`` as a GIF: its number of frames and their sizes."""
    anim.save(path, writer="pillow")
    with Image.open(path) as image:
        sizes = set()
        for i in range(image.n_frames):
            image.seek(i)
            sizes.add(image.size)
        return image.n_frames, sizes


def play(anim: Any, step: int = -1) -> None:
    """Draw frame ``step`` (default the last) as the animation would, without a file."""
    anim._init_draw()  # marks the animation drawn: no "deleted without rendering" warning
    anim._func(step % len(anim.frames))


GIFS = [
    ((5, 5), 3, {}),
    ((5, 5), 3, dict(view="matrix")),
    (6, 3, dict(stride=2, padding=1)),
    ((2, 2), 3, dict(transposed=True, stride=2)),
    ((2, 2), 3, dict(transposed=True, stride=2, view="zeros")),
    ((2, 3), 2, dict(transposed=True, view="matrix", padding=1)),
]


@pytest.mark.parametrize(("shape", "k", "kwargs"), GIFS)
def test_a_gif_has_one_frame_per_frame_all_the_same_size(
    shape: Any, k: Any, kwargs: dict[str, Any], tmp_path: Path
) -> None:
    anim = animate(shape, k, interval=100, **kwargs)
    n_frames, sizes = render(anim, tmp_path / "a.gif")
    assert n_frames == len(anim.frames) == len(frames(shape, k, **kwargs))
    assert len(sizes) == 1


CASES = [
    ((5, 5), 3, {}),
    ((5, 5), 3, dict(padding=1, stride=2)),
    ((6, 5), (2, 3), dict(dilation=(2, 1), padding=((1, 0), 2))),
    (7, 3, dict(stride=2, padding="valid")),
]
TRANSPOSED = [
    ((2, 2), 2, {}),
    ((3, 3), 3, dict(stride=2, padding=1, output_padding=1)),
    ((2, 3), 2, dict(dilation=2, padding=1)),
    (4, 3, dict(stride=2)),
]


@pytest.mark.parametrize(("shape", "k", "kwargs"), CASES)
@pytest.mark.parametrize("view", ["window", "matrix"])
def test_the_last_frame_shows_the_convolution(
    shape: Any, k: Any, kwargs: dict[str, Any], view: str
) -> None:
    rng = np.random.default_rng(1)
    size = (k,) * (1 if isinstance(shape, int) else 2) if isinstance(k, int) else k
    x = rng.integers(-4, 5, size=shape).astype(float)
    w = rng.integers(-2, 3, size=size).astype(float)
    anim = animate(shape, k, values=x, kernel=w, view=view, **kwargs)
    play(anim)
    y = convmat.conv(x[None], w[None, None], **kwargs)[0]
    assert (output_texts(anim) == as_text(y)).all()
    assert anim.figure.axes[1].texts[0].get_text() == f"{w.ravel()[0]:g}"
    assert anim.figure.texts[-1].get_text().endswith(f"= {y.ravel()[-1]:g}")


@pytest.mark.parametrize(("shape", "k", "kwargs"), TRANSPOSED)
@pytest.mark.parametrize("view", ["scatter", "zeros", "matrix"])
def test_the_last_frame_shows_the_transposed_convolution(
    shape: Any, k: Any, kwargs: dict[str, Any], view: str
) -> None:
    rng = np.random.default_rng(2)
    size = (k,) * (1 if isinstance(shape, int) else 2)
    x = rng.integers(-4, 5, size=shape).astype(float)
    w = rng.integers(1, 4, size=size).astype(float)
    anim = animate(shape, k, transposed=True, values=x, kernel=w, view=view, **kwargs)
    play(anim)
    y = convmat.conv_transpose(x[None], w[None, None], **kwargs)[0]
    assert (output_texts(anim) == as_text(y)).all()


def test_the_walkthrough_example_scatter_by_scatter() -> None:
    # X = K = [[0, 1], [2, 3]], stride 1: each step adds x_ij·K, the sums fill in.
    anim = animate((2, 2), 2, transposed=True, values=[[0, 1], [2, 3]], kernel=[[0, 1], [2, 3]])
    expected = [
        [["0", "0", ""], ["0", "0", ""], ["", "", ""]],
        [["0", "0", "1"], ["0", "2", "3"], ["", "", ""]],
        [["0", "0", "1"], ["0", "4", "3"], ["4", "6", ""]],
        [["0", "0", "1"], ["0", "4", "6"], ["4", "12", "9"]],
    ]
    captions = []
    for step, shown in enumerate(expected):
        play(anim, step)
        assert output_texts(anim).tolist() == shown
        captions.append(anim.figure.texts[-1].get_text())
    assert captions[1] == "x[0, 1] = 1 times the kernel, added to 4 outputs"


def test_symbols_in_the_cells() -> None:
    anim = animate((3, 3), 2, symbols=True)
    play(anim)
    assert texts(anim, 0)[:2] == ["x₀₀", "x₀₁"]
    assert texts(anim, 1) == ["w₀₀", "w₀₁", "w₁₀", "w₁₁"]
    assert texts(anim, 2) == ["y₀₀", "y₀₁", "y₁₀", "y₁₁"]
    assert anim.figure.texts[-1].get_text() == "y₁₁ = w₀₀x₁₁ + w₀₁x₁₂ + w₁₀x₂₁ + w₁₁x₂₂"


def test_symbols_with_numbers_and_in_the_matrix() -> None:
    # Numbers for the input, symbols for the kernel; the matrix names its taps.
    anim = animate((2, 2), 2, transposed=True, symbols=True, values=[[1, 2], [3, 4]], view="matrix")
    play(anim)
    assert texts(anim, 0) == ["1", "2", "3", "4"]
    assert output_texts(anim).tolist() == [
        ["y₀₀", "y₀₁", "y₀₂"],
        ["y₁₀", "4w₀₀", "4w₀₁"],
        ["y₂₀", "4w₁₀", "4w₁₁"],
    ]
    matrix = [t.get_text() for t in anim.figure.axes[3].texts]
    assert matrix[:3] == ["w₀₀", "w₀₁", "w₀₀"] and len(matrix) == 16


def test_padding_and_inserted_zeros_are_written_as_zeros() -> None:
    anim = animate((2, 2), 3, transposed=True, stride=2, view="zeros", values=np.ones((2, 2)))
    play(anim)
    grid = np.array(texts(anim, 0)).reshape(anim.frames.padded_shape)
    assert grid[2].tolist() == ["0", "0", "1", "0", "1", "0", "0"]
    assert anim.figure.axes[1].get_title() == "kernel (flipped)"


def test_to_jshtml_has_every_frame() -> None:
    anim = animate(5, 3, padding=1)
    html = anim.to_jshtml()
    assert html.count("data:image/png;base64") == len(anim.frames) == 5


def test_import_convmat_imports_neither_matplotlib_nor_sympy() -> None:
    code = (
        "import sys, convmat, convmat._animate; convmat._frames.frames((3, 3), 2);"
        "print('matplotlib' in sys.modules, 'sympy' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(values=np.ones((4, 4))), ValueError, r"values must have shape \(5, 5\)"),
        (dict(kernel=np.ones(3)), ValueError, r"kernel must have shape \(3, 3\)"),
        (dict(values=np.ones((5, 5)) * 1j), TypeError, "values must be real"),
        (dict(values=[["a"] * 5] * 5), TypeError, "values must be a real or complex"),
        (dict(kernel=np.full((3, 3), np.inf)), ValueError, "kernel must be finite"),
        (dict(symbols="yes"), TypeError, "symbols must be a bool"),
        (dict(interval=0), ValueError, "interval must be > 0"),
        (dict(interval="fast"), TypeError, "interval must be a number"),
        (dict(view="scatter"), ValueError, "pass transposed=True"),
        (dict(input_shape=(3, 3, 3)), ValueError, "input_shape must be 1-d or 2-d"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    shape = kwargs.pop("input_shape", (5, 5))
    with pytest.raises(error, match=match):
        animate(shape, 3 if len(shape) < 3 else 2, **kwargs)


def gallery() -> dict[str, str]:
    """The docs build's list of gallery animations, read from docs/conf.py without running it."""
    tree = ast.parse((DOCS / "conf.py").read_text())
    (value,) = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "GALLERY" for t in node.targets)
    ]
    result: dict[str, str] = ast.literal_eval(value)
    return result


def test_the_gallery_page_shows_what_the_docs_build_draws() -> None:
    # Each image of the page follows the call that draws it, as docs/conf.py makes it.
    page = (DOCS / "gallery.md").read_text()
    shown = re.findall(
        r"```python\n(convmat\.animate\(.*?\))\n```\s*\n!\[[^\]]+\]\(generated/animations/(\w+)\.gif\)",
        page,
        re.DOTALL,
    )
    made = gallery()
    assert [name for _, name in shown] == list(made)
    for code, name in shown:
        assert " ".join(code.split()).replace("( ", "(").replace(" )", ")") == (
            f"convmat.animate({made[name]})"
        )


@pytest.mark.parametrize("name", list(gallery()))
def test_every_gallery_geometry_is_valid(name: str) -> None:
    args = eval(f"(lambda *a, **k: (a, k))({gallery()[name]})")
    kwargs = {key: v for key, v in args[1].items() if key not in ("values", "kernel", "symbols")}
    assert len(frames(*args[0], **kwargs)) >= 4
