"""convmat.plot draws what it says: one text per cell, the array as the image, the nonzeros.

Every figure is a bare ``matplotlib.figure.Figure`` (the Agg canvas, no window), drawn
once with ``canvas.draw()`` where the rendering itself matters.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import convmat
from convmat import plot

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402


def axes() -> Any:
    return Figure().subplots()


def texts(ax: Any) -> list[str]:
    return [t.get_text() for t in ax.texts]


def ticks(labels: Any) -> list[str]:
    return [label.get_text() for label in labels]


# ---------------------------------------------------------------- grid


def test_grid_writes_one_text_per_cell_and_shows_the_array() -> None:
    ax = axes()
    values = np.array([[0.0, 1.0, 2.0], [3.0, -4.0, 5.5]])
    shown = plot.grid(ax, values, title="kernel")
    assert list(ax.images) == [shown]
    assert_array_equal(shown.get_array(), values)
    assert shown.get_clim() == (-5.5, 5.5)  # symmetric: zero is the middle colour
    assert texts(ax) == ["0", "1", "2", "3", "-4", "5.5"]
    assert [t.get_position() for t in ax.texts] == [(j, i) for i in range(2) for j in range(3)]
    assert ticks(ax.get_xticklabels()) == ["0", "1", "2"]
    assert ticks(ax.get_yticklabels()) == ["0", "1"]
    assert ax.get_title() == "kernel"
    ax.figure.canvas.draw()


def test_grid_fmt_and_integer_input() -> None:
    ax = axes()
    plot.grid(ax, np.arange(4).reshape(2, 2), fmt="{:.2f}")
    assert texts(ax) == ["0.00", "1.00", "2.00", "3.00"]


def test_grid_text_is_white_on_dark_cells_and_black_on_light_ones() -> None:
    ax = axes()
    plot.grid(ax, [[-10.0, -5.0, 0.0, 5.0, 6.5, 10.0]])
    colours = [t.get_color() for t in ax.texts]
    assert colours == ["white", "black", "black", "black", "white", "white"]


def test_grid_blank_zeros_nan_and_empty_labels_leave_cells_without_text() -> None:
    ax = axes()
    plot.grid(ax, [[0.0, 1.0], [np.nan, 2.0]], blank_zeros=True)
    assert texts(ax) == ["1", "2"]
    ax = axes()
    plot.grid(ax, [[0.0, 1.0], [np.nan, 2.0]])
    assert texts(ax) == ["0", "1", "2"]  # NaN is never written
    ax = axes()
    plot.grid(ax, [[0.0, 1.0]], labels=[["", "$w_1$"]])
    assert texts(ax) == ["$w_1$"]


def test_grid_all_zero_and_all_nan_use_unit_limits() -> None:
    for values in (np.zeros((2, 2)), np.full((2, 2), np.nan)):
        ax = axes()
        assert plot.grid(ax, values).get_clim() == (-1.0, 1.0)


def test_grid_labels_replace_the_numbers_not_the_colours() -> None:
    ax = axes()
    labels = np.array([["a", "b"], ["c", "d"]])
    shown = plot.grid(ax, [[1.0, 2.0], [3.0, 4.0]], labels=labels)
    assert texts(ax) == ["a", "b", "c", "d"]
    assert_array_equal(shown.get_array(), [[1.0, 2.0], [3.0, 4.0]])


def test_grid_one_dimensional_is_one_row_without_a_row_axis() -> None:
    ax = axes()
    shown = plot.grid(ax, [1.0, 2.0, 1.0, 2.0], labels=["x", "y", "x", "y"])
    assert shown.get_array().shape == (1, 4)
    assert texts(ax) == ["x", "y", "x", "y"]
    assert list(ax.get_yticks()) == []
    assert ticks(ax.get_xticklabels()) == ["0", "1", "2", "3"]


def test_grid_rows_and_cols_label_the_ticks() -> None:
    ax = axes()
    C = convmat.conv_matrix((1, 3, 3), np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    rows, cols = plot.position_labels((2, 2)), plot.position_labels((3, 3))
    plot.grid(ax, C.toarray(), blank_zeros=True, rows=rows, cols=cols)
    assert len(ax.texts) == C.nnz == 16
    assert ticks(ax.get_yticklabels()) == rows
    assert ticks(ax.get_xticklabels()) == cols


def test_grid_explicit_limits_and_colormap() -> None:
    ax = axes()
    shown = plot.grid(ax, [[0.9, 1.1]], cmap="coolwarm", vmin=0.8, vmax=1.2)
    assert shown.get_clim() == (0.8, 1.2)
    assert shown.get_cmap().name == "coolwarm"
    assert plot.grid(axes(), [[1.0, 2.0]], vmin=0.0).get_clim() == (0.0, 2.0)


def test_grid_title_none_keeps_the_title() -> None:
    ax = axes()
    ax.set_title("mine")
    plot.grid(ax, [[1.0]])
    assert ax.get_title() == "mine"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"values": np.zeros((1, 2, 2))}, ValueError, r"values must be 1-d or 2-d; got shape"),
        ({"values": np.zeros((0, 3))}, ValueError, r"values must not be empty"),
        ({"values": [[1.0, np.inf]]}, ValueError, r"values must be finite .*\(0, 1\)"),
        ({"values": [[1j]]}, TypeError, r"values must be real; got dtype complex"),
        ({"values": [["a"]]}, TypeError, r"values must be a real or complex numeric array"),
        ({"fmt": "{}{}"}, ValueError, r"fmt must be a format string with one field"),
        ({"fmt": "x"}, ValueError, r"fmt must be a format string with one field"),
        ({"fmt": "{:q}"}, ValueError, r"fmt must be a format string with one field"),
        ({"fmt": 2}, TypeError, r"fmt must be a str"),
        ({"labels": [["a", "b"]]}, ValueError, r"labels must have the shape of values"),
        ({"labels": [["a", "b"], ["c"]]}, ValueError, r"labels must have the shape of values"),
        ({"labels": [["a", "b"], ["c", 4]]}, TypeError, r"labels must hold str; got int"),
        ({"rows": ["a"]}, ValueError, r"rows must hold 2 tick labels"),
        ({"cols": "ab"}, ValueError, r"cols must hold 2 tick labels"),
        ({"cmap": "no such map"}, ValueError, r"cmap must be a matplotlib colormap"),
        ({"vmin": 1.0, "vmax": 1.0}, ValueError, r"vmin must be < vmax"),
    ],
)
def test_grid_rejects_bad_input(kwargs: dict[str, Any], error: type, match: str) -> None:
    arguments = {"values": [[1.0, 2.0], [3.0, 4.0]], **kwargs}
    ax = axes()
    values = arguments.pop("values")
    with pytest.raises(error, match=match):
        plot.grid(ax, values, **arguments)
    assert len(ax.images) == len(ax.texts) == 0  # checked before drawing


def test_every_function_wants_an_axes() -> None:
    for function in (plot.grid, plot.image, plot.spy):
        with pytest.raises(TypeError, match="ax must be a matplotlib Axes; got Figure"):
            function(Figure(), np.eye(2))


def test_missing_matplotlib_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for name in ("grid", "image", "spy"):
        with pytest.raises(
            ModuleNotFoundError, match=rf"convmat.plot.{name} needs matplotlib; pip install"
        ):
            getattr(plot, name)(None, np.eye(2))
    with pytest.raises(ImportError, match="pip install matplotlib"):
        convmat.load_photo()


def test_importing_the_module_does_not_import_matplotlib() -> None:
    code = "import sys, convmat.plot; print('matplotlib' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
    assert "plot" not in convmat.__all__


# ---------------------------------------------------------------- image


def test_image_shows_the_array_as_pixels_without_axes() -> None:
    ax = axes()
    photo = np.linspace(0, 1, 12).reshape(3, 4)
    shown = plot.image(ax, photo, title="photo")
    assert_array_equal(shown.get_array(), photo)
    assert shown.get_clim() == (0.0, 1.0)
    assert shown.get_cmap().name == "gray"
    assert shown.get_interpolation() == "nearest"
    assert not ax.axison and ax.get_title() == "photo"
    assert len(ax.texts) == 0


def test_image_limits_none_takes_the_image_range() -> None:
    shown = plot.image(axes(), [[2.0, 3.0], [4.0, 6.0]], vmin=None, vmax=None, cmap="RdBu_r")
    assert shown.get_clim() == (2.0, 6.0)


@pytest.mark.parametrize(
    ("values", "kwargs", "error", "match"),
    [
        (np.zeros((1, 1, 4, 4)), {}, ValueError, r"values must be 2-d; got shape \(1, 1, 4, 4\)"),
        (np.zeros(4), {}, ValueError, r"values must be 2-d; got shape \(4,\)"),
        (np.zeros((0, 4)), {}, ValueError, r"values must not be empty"),
        (np.zeros((2, 2), complex), {}, TypeError, r"values must be real"),
        (np.zeros((2, 2)), {"vmin": 1.0, "vmax": 0.0}, ValueError, r"vmin must be < vmax"),
        (np.zeros((2, 2)), {"cmap": "grey scale"}, ValueError, r"cmap must be"),
    ],
)
def test_image_rejects_bad_input(
    values: Any, kwargs: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        plot.image(axes(), values, **kwargs)


# ---------------------------------------------------------------- spy


def test_spy_marks_exactly_the_nonzeros_of_a_sparse_matrix() -> None:
    w = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    C = convmat.conv_matrix((1, 5, 5), w, stride=2)
    ax = axes()
    markers = plot.spy(ax, C, title="C, stride 2")
    coo = C.tocoo()
    marked = sorted(zip(markers.get_ydata(), markers.get_xdata(), strict=True))
    assert marked == sorted(zip(coo.row, coo.col, strict=True))
    assert markers.get_markersize() == 4.0  # 100 / 25 columns
    assert ax.get_title() == "C, stride 2"
    assert len(ax.lines) == 1


def test_spy_takes_dense_arrays_and_the_transpose() -> None:
    dense = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    markers = plot.spy(axes(), dense, markersize=3)
    assert list(zip(markers.get_ydata(), markers.get_xdata(), strict=True)) == [(0, 0), (1, 2)]
    assert markers.get_markersize() == 3.0
    T = convmat.conv_transpose_matrix((1, 2, 2), np.ones((1, 1, 2, 2)))
    assert len(plot.spy(axes(), T.T.tocsc()).get_xdata()) == T.nnz


def test_spy_default_markersize_is_clipped() -> None:
    assert plot.spy(axes(), np.eye(4)).get_markersize() == 6.0
    assert plot.spy(axes(), np.eye(400)).get_markersize() == 1.0


def test_spy_frames_the_channel_blocks() -> None:
    w = np.ones((4, 2, 3, 3))
    C = convmat.conv_matrix((4, 4, 4), w, padding=1, groups=2)
    ax = axes()
    plot.spy(ax, C, blocks=16)
    edges = [line.get_ydata()[0] for line in ax.lines[1:4]]
    assert edges == [15.5, 31.5, 47.5]
    assert [line.get_xdata()[0] for line in ax.lines[4:]] == [15.5, 31.5, 47.5]
    ax = axes()
    plot.spy(ax, np.ones((4, 6)), blocks=(2, 3))
    assert len(ax.lines) == 1 + 1 + 1


@pytest.mark.parametrize(
    ("matrix", "kwargs", "error", "match"),
    [
        (np.ones(4), {}, ValueError, r"matrix must be 2-d; got shape \(4,\)"),
        (np.ones((0, 4)), {}, ValueError, r"matrix must not be empty"),
        (np.array([["a"]]), {}, TypeError, r"matrix must be a real or complex numeric"),
        (np.eye(2), {"markersize": 0}, ValueError, r"markersize must be > 0; got 0"),
        (np.eye(2), {"blocks": 0}, ValueError, r"blocks must be >= 1 on every axis"),
        (np.eye(2), {"blocks": 1.5}, TypeError, r"blocks must be an int"),
        (np.eye(2), {"blocks": (1, 2, 3)}, ValueError, r"blocks must be an int or a sequence"),
    ],
)
def test_spy_rejects_bad_input(
    matrix: Any, kwargs: dict[str, Any], error: type, match: str
) -> None:
    ax = axes()
    with pytest.raises(error, match=match):
        plot.spy(ax, matrix, **kwargs)
    assert len(ax.lines) == 0


def test_spy_rejects_an_empty_sparse_matrix() -> None:
    from scipy import sparse

    with pytest.raises(ValueError, match=r"matrix must not be empty; got shape \(0, 3\)"):
        plot.spy(axes(), sparse.csr_array((0, 3)))


# ---------------------------------------------------------------- position_labels


def test_position_labels_follow_c_order() -> None:
    assert plot.position_labels((2, 2)) == ["0,0", "0,1", "1,0", "1,1"]
    assert plot.position_labels(3) == ["0", "1", "2"]
    labels = plot.position_labels((2, 3, 2))
    assert len(labels) == 12 and labels[7] == ",".join(map(str, np.unravel_index(7, (2, 3, 2))))


def test_position_labels_reject_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"shape must be >= 1 on every axis"):
        plot.position_labels((2, 0))
    with pytest.raises(TypeError, match=r"shape must be an int or a sequence of ints"):
        plot.position_labels((2.0, 2))


# ---------------------------------------------------------------- issue 12, class 9


def test_grid_draws_a_sparse_matrix_with_its_zeros_blank() -> None:
    C = convmat.conv_matrix((1, 3, 3), np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    ax = axes()
    shown = plot.grid(ax, C)
    assert_array_equal(shown.get_array(), C.toarray())
    assert len(ax.texts) == C.nnz == 16
    ax = axes()
    plot.grid(ax, C, blank_zeros=False)
    assert len(ax.texts) == 36


def test_grid_refuses_a_sparse_matrix_too_large_to_draw_cell_by_cell() -> None:
    from scipy import sparse

    big = sparse.eye_array(1000, format="csr")
    ax = axes()
    with pytest.raises(ValueError, match=r"values must have at most 250,000 cells .*plot\.spy"):
        plot.grid(ax, big)
    assert len(ax.images) == 0


def test_grid_draws_a_sympy_matrix_with_its_entries_as_labels() -> None:
    symbolic = pytest.importorskip("convmat.symbolic")
    C = symbolic.conv_matrix((3, 3), symbolic.symbols("w", (2, 2)))
    ax = axes()
    shown = plot.grid(ax, C)
    assert len(ax.texts) == 16  # the 20 zeros stay blank
    assert texts(ax)[:4] == ["$w_{00}$", "$w_{01}$", "$w_{10}$", "$w_{11}$"]
    colours = np.asarray(shown.get_array())
    assert colours.shape == (4, 9)
    # One colour per kernel tap: every w_00 alike, zero its own colour.
    assert set(colours[np.asarray(C) == C[0, 0]]) == {colours[0, 0]}
    assert len(set(colours.ravel())) == 5 and colours[0, 2] == 0


def test_grid_draws_a_sympy_matrix_of_numbers_as_numbers() -> None:
    sympy = pytest.importorskip("sympy")
    ax = axes()
    shown = plot.grid(ax, sympy.Matrix([[1, 0], [sympy.Rational(1, 2), 3]]))
    assert_array_equal(shown.get_array(), [[1.0, 0.0], [0.5, 3.0]])
    assert texts(ax) == ["1", "0.5", "3"]


def test_spy_draws_millions_of_entries_as_an_image_quickly() -> None:
    import time

    C = convmat.conv_matrix((4, 64, 64), np.ones((16, 4, 7, 7)), padding=3)
    assert C.nnz > 10_000_000
    fig = Figure(figsize=(4, 4))
    ax = fig.subplots()
    start = time.perf_counter()
    shown = plot.spy(ax, C, blocks=64 * 64)
    fig.canvas.draw()
    assert time.perf_counter() - start < 3.0  # 9 s with one marker per entry
    pattern = np.asarray(shown.get_array())
    assert pattern.shape == (1024, 256)  # square blocks of 64×64 entries
    rows, cols = C.nonzero()
    expected = np.zeros((1024, 256), dtype=bool)
    expected[rows // 64, cols // 64] = True
    assert_array_equal(pattern.astype(bool), expected)


def test_spy_switches_to_the_image_above_max_markers() -> None:
    C = convmat.conv_matrix((1, 5, 5), np.ones((1, 1, 3, 3)))
    ax = axes()
    shown = plot.spy(ax, C, max_markers=10)
    assert_array_equal(np.asarray(shown.get_array()), (C.toarray() != 0).astype(np.int8))
    assert len(ax.lines) == 0
    markers = plot.spy(axes(), C)
    assert len(markers.get_xdata()) == C.nnz
    with pytest.raises(ValueError, match=r"max_markers must be >= 0; got -1"):
        plot.spy(axes(), C, max_markers=-1)


def test_spy_leaves_out_explicitly_stored_zeros() -> None:
    from scipy import sparse

    m = sparse.csr_array((np.array([1.0, 0.0, 2.0]), (np.array([0, 1, 2]), np.array([0, 1, 2]))))
    assert m.nnz == 3
    assert len(plot.spy(axes(), m).get_xdata()) == 2
