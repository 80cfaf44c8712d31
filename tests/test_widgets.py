"""convmat.widgets: the explorer's plain functions and the widget that wires them.

The logic is tested without a browser: the settings (:func:`state`), their one-line
description, the formula of a cell against :mod:`convmat.symbolic`, the pictures
against the library's matrices and overlap counts, and the widget driven from Python by
setting its controls' ``.value`` and reading its outputs.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

import convmat
from convmat import widgets

ipywidgets = pytest.importorskip("ipywidgets")
pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402

symbolic = pytest.importorskip("convmat.symbolic")


@st.composite
def explorer_settings(draw: Any) -> dict[str, Any]:
    """Any position of the explorer's sliders (valid layers and invalid ones)."""
    lo, hi = widgets.LIMITS["input_size"]
    ndim = draw(st.sampled_from([1, 2]))
    size = tuple(draw(st.integers(lo, min(hi, 7))) for _ in range(ndim))
    values = {
        name: draw(st.integers(*widgets.LIMITS[name]))
        for name in ("kernel_size", "stride", "padding", "dilation", "output_padding")
    }
    return dict(input_size=size, transposed=draw(st.booleans()), **values)


def library_output_shape(s: dict[str, Any]) -> tuple[int, ...]:
    """The output shape from the public shape functions (which raise for no layer)."""
    k = (s["kernel_size"],) * len(s["input_size"])
    common = dict(stride=s["stride"], padding=s["padding"], dilation=s["dilation"])
    if s["transposed"]:
        return convmat.conv_transpose_output_shape(
            s["input_size"], k, output_padding=s["output_padding"], **common
        )
    return convmat.conv_output_shape(s["input_size"], k, **common)


def walk(widget: Any) -> list[Any]:
    """A widget and all the widgets inside it."""
    found = [widget]
    for child in getattr(widget, "children", ()):
        found += walk(child)
    return found


def control(box: Any, description: str) -> Any:
    (found,) = [w for w in walk(box) if getattr(w, "description", None) == description]
    return found


# ---------------------------------------------------------------- state and describe


def test_state_of_a_valid_layer_has_the_library_output_shape() -> None:
    s = widgets.state(input_size=(5, 5), kernel_size=3, stride=2, padding=1)
    assert s.ok and s.error is None
    assert s.output_shape == (3, 3) == convmat.conv_output_shape((5, 5), 3, stride=2, padding=1)
    assert s.view == "window" and s.kernel == (3, 3) and s.ndim == 2
    t = widgets.state(input_size=4, kernel_size=3, stride=2, transposed=True)
    assert t.output_shape == (9,) and t.view == "scatter"
    assert s.layer().out_spatial == (3, 3)
    assert t.layer().in_spatial == (9,)  # a transposed layer is stored as its forward layer


@settings(max_examples=60, deadline=None)
@given(explorer_settings())
def test_state_never_raises_for_slider_values_and_agrees_with_the_shape_functions(
    s: dict[str, Any],
) -> None:
    got = widgets.state(**s)
    try:
        want = library_output_shape(s)
    except ValueError as err:
        assert not got.ok and got.output_shape is None
        assert got.error == str(err)
        assert widgets.describe(got) == f"no layer: {err}"
    else:
        assert got.ok and got.output_shape == want
        assert f"→ output {'×'.join(map(str, want))}" in widgets.describe(got)


@settings(max_examples=25, deadline=None)
@given(explorer_settings())
def test_valid_settings_are_exactly_those_torch_accepts(s: dict[str, Any]) -> None:
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    n, k = s["input_size"], s["kernel_size"]
    x = torch.zeros((1, 1, *n), dtype=torch.float64)
    w = torch.zeros((1, 1, *(k,) * len(n)), dtype=torch.float64)
    common = dict(stride=s["stride"], padding=s["padding"], dilation=s["dilation"])
    got = widgets.state(**s)
    try:
        if s["transposed"]:
            fn = f.conv_transpose1d if len(n) == 1 else f.conv_transpose2d
            y = fn(x, w, output_padding=s["output_padding"], **common)
        else:
            y = (f.conv1d if len(n) == 1 else f.conv2d)(x, w, **common)
    except RuntimeError:
        assert not got.ok
    else:
        # torch returns an empty tensor where a transposed output would be cropped away.
        if 0 in tuple(y.shape[2:]):
            assert not got.ok
        else:
            assert got.ok and got.output_shape == tuple(y.shape[2:])


@pytest.mark.parametrize(
    ("settings_", "reason"),
    [
        (dict(input_size=(3, 3), kernel_size=5), "kernel_size (dilated) must fit"),
        (dict(input_size=(4, 4), kernel_size=3, dilation=3), "kernel_size (dilated) must fit"),
        (
            dict(input_size=4, stride=2, output_padding=2, transposed=True),
            "output_padding must be < max(stride, dilation)",
        ),
        (dict(input_size=1, kernel_size=1, padding=1, transposed=True), "padding must leave"),
    ],
)
def test_invalid_geometry_is_a_message_not_an_exception(
    settings_: dict[str, Any], reason: str
) -> None:
    s = widgets.state(**settings_)
    assert not s.ok and s.output_shape is None
    assert s.error is not None and s.error.startswith(reason)
    assert widgets.describe(s).startswith(f"no layer: {reason}")
    for call in (
        lambda: s.layer(),
        lambda: widgets.formula(s, 0),
        lambda: widgets.matrix(s),
        lambda: widgets.draw_overlap(s, Figure()),
        lambda: widgets.draw_matrix(s, 0, Figure()),
        lambda: widgets.draw(s, 0, Figure()),
        lambda: widgets.layer_frames(s),
    ):
        with pytest.raises(ValueError, match=r"state must describe a valid layer; got: "):
            call()


def test_output_padding_counts_only_for_a_transposed_layer() -> None:
    s = widgets.state(input_size=(4, 4), output_padding=3)
    assert s.ok and s.output_shape == (2, 2)
    assert "output_padding" not in widgets.describe(s)
    t = widgets.state(input_size=3, kernel_size=3, stride=2, output_padding=1, transposed=True)
    assert widgets.describe(t) == (
        "conv_transpose 1-d: input 3, kernel 3, stride 2, output_padding 1 → output 8; Cᵀ is 8×3"
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(input_size="5x5"), TypeError, r"input_size must be an int \(1-d\) or a sequence"),
        (dict(input_size=2.5), TypeError, r"input_size must be an int \(1-d\)"),
        (dict(input_size=(2.5, 3)), TypeError, r"input_size must be an int or a sequence"),
        (dict(input_size=(3, 3, 3)), ValueError, r"input_size must have one or two axes"),
        (dict(input_size=()), ValueError, r"input_size must have one or two axes"),
        (dict(input_size=(0, 4)), ValueError, r"input_size must be between 1 and 16"),
        (dict(input_size=17), ValueError, r"input_size must be between 1 and 16"),
        (dict(kernel_size=(3, 3)), TypeError, r"kernel_size must be an int \(the explorer"),
        (dict(kernel_size=1.5), TypeError, r"kernel_size must be an int"),
        (dict(kernel_size=0), ValueError, r"kernel_size must be between 1 and 7"),
        (dict(kernel_size=8), ValueError, r"kernel_size must be between 1 and 7"),
        (dict(stride=True), TypeError, r"stride must be an int"),
        (dict(stride=5), ValueError, r"stride must be between 1 and 4"),
        (dict(padding=-1), ValueError, r"padding must be between 0 and 6"),
        (dict(padding="same"), TypeError, r"padding must be an int"),
        (dict(dilation=4), ValueError, r"dilation must be between 1 and 3"),
        (dict(output_padding=4), ValueError, r"output_padding must be between 0 and 3"),
        (dict(transposed="yes"), TypeError, r"transposed must be a bool; got 'yes'"),
        (dict(transposed=1), TypeError, r"transposed must be a bool; got 1"),
        (dict(view="sliding"), ValueError, r"view must be one of \('window', 'scatter'"),
        (dict(view=2), TypeError, r"view must be one of"),
        (dict(view="scatter"), ValueError, r"view must be 'window' or 'matrix' for a convolution"),
        (
            dict(view="window", transposed=True),
            ValueError,
            r"view must be 'scatter', 'zeros' or 'matrix' for a transposed convolution",
        ),
    ],
)
def test_bad_settings_raise_naming_the_argument(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        widgets.state(**kwargs)
    with pytest.raises(error, match=match):
        widgets.explore(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(step=-1), ValueError, r"step must be >= 0; got -1"),
        (dict(step=1.0), TypeError, r"step must be an int"),
        (dict(cell=9), ValueError, r"cell must be a flat index in \[0, 9\) .* got 9"),
        (dict(cell=(0, 3)), ValueError, r"cell must be an index into the output of shape"),
        (dict(cell="0,0"), TypeError, r"cell must be an int"),
    ],
)
def test_bad_start_of_the_explorer_raises_naming_the_argument(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        widgets.explore(input_size=(5, 5), kernel_size=3, **kwargs)


def test_describe_refuses_what_is_not_a_state() -> None:
    with pytest.raises(TypeError, match=r"st must be a convmat.widgets.State; got dict"):
        widgets.describe({})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"state must be a convmat.widgets.State; got str"):
        widgets.formula("state", 0)  # type: ignore[arg-type]


# ---------------------------------------------------------------- formulas


@pytest.mark.parametrize(
    "settings_",
    [
        dict(input_size=(3, 3), kernel_size=2),
        dict(input_size=(5, 4), kernel_size=3, stride=2, padding=1, dilation=1),
        dict(input_size=7, kernel_size=3, dilation=2, padding=2),
        dict(input_size=(2, 2), kernel_size=2, transposed=True),
        dict(
            input_size=(3, 2), kernel_size=3, stride=2, padding=1, output_padding=1, transposed=True
        ),
        dict(input_size=4, kernel_size=2, stride=3, dilation=2, output_padding=2, transposed=True),
    ],
)
def test_the_formula_of_every_cell_is_symbolic_s(settings_: dict[str, Any]) -> None:
    s = widgets.state(**settings_)
    x = symbolic.symbols("x", s.input_size)
    w = symbolic.symbols("w", s.kernel)
    apply = symbolic.conv_transpose if s.transposed else symbolic.conv
    y = apply(x, w, **s.geometry())
    assert s.output_shape is not None
    for flat, index in enumerate(np.ndindex(*s.output_shape)):
        assert widgets.formula(s, flat) == y[index]
        assert widgets.formula(s, index) == y[index]


def test_formula_latex_of_the_textbook_example() -> None:
    # Dive into Deep Learning: 2×2 input, 2×2 kernel, stride 1 → 3×3; the centre cell.
    s = widgets.state(input_size=(2, 2), kernel_size=2, transposed=True)
    assert widgets.formula_latex(s, (1, 1)) == (
        "y_{11} = w_{11} x_{00} + w_{10} x_{01} + w_{01} x_{10} + w_{00} x_{11}"
    )
    assert widgets.formula_latex(s, 0) == "y_{00} = w_{00} x_{00}"
    subs = dict(
        zip(
            [*symbolic.symbols("x", (2, 2)), *symbolic.symbols("w", (2, 2))],
            [0, 1, 2, 3, 0, 1, 2, 3],
            strict=True,
        )
    )
    values = [widgets.formula(s, i).subs(subs) for i in range(9)]
    assert values == [0, 0, 1, 0, 4, 6, 4, 12, 9]


def test_formula_latex_of_a_cell_no_input_reaches_is_zero() -> None:
    # Stride 2, dilation 2: odd outputs receive no tap.
    s = widgets.state(input_size=3, kernel_size=2, stride=2, dilation=2, transposed=True)
    assert widgets.formula(s, 1) == 0
    assert widgets.formula_latex(s, 1) == "y_{1} = 0"


def test_formula_latex_separates_indices_of_long_axes() -> None:
    s = widgets.state(input_size=(12, 3), kernel_size=1)
    assert widgets.formula_latex(s, (11, 2)) == "y_{11,2} = w_{00} x_{11,2}"


# ---------------------------------------------------------------- pictures


@pytest.mark.parametrize("transposed", [False, True])
def test_matrix_is_the_library_matrix_with_ones(transposed: bool) -> None:
    s = widgets.state(input_size=(4, 3), kernel_size=2, stride=2, padding=1, transposed=transposed)
    ones = np.ones((1, 1, 2, 2))
    build = convmat.conv_transpose_matrix if transposed else convmat.conv_matrix
    want = build((1, 4, 3), ones, **s.geometry())
    assert_array_equal(widgets.matrix(s).toarray(), want.toarray())


@pytest.mark.parametrize(
    ("settings_", "cell"),
    [
        (dict(input_size=(4, 4), kernel_size=3, stride=1, padding=1), (2, 1)),
        (dict(input_size=(3, 3), kernel_size=3, stride=2, transposed=True), (4, 5)),
        (dict(input_size=6, kernel_size=2, dilation=2), 3),
    ],
)
def test_the_spy_marks_the_row_of_the_selected_cell(settings_: dict[str, Any], cell: Any) -> None:
    s = widgets.state(**settings_)
    ax = widgets.draw_matrix(s, cell, Figure())
    assert s.output_shape is not None
    row = int(np.ravel_multi_index(tuple(np.atleast_1d(cell)), s.output_shape))
    dense = widgets.matrix(s).toarray()
    (markers,) = [line for line in ax.lines if line.get_gid() == "selected"]
    assert_array_equal(markers.get_ydata(), np.full(np.count_nonzero(dense[row]), row))
    assert_array_equal(markers.get_xdata(), np.flatnonzero(dense[row]))
    (band,) = [p for p in ax.patches if p.get_gid() == "selected"]
    assert band.get_window_extent() is not None
    ys = band.get_path().transformed(band.get_patch_transform()).vertices[:, 1]
    assert (ys.min(), ys.max()) == (row - 0.5, row + 0.5)
    # the spy of the whole matrix is there too, every nonzero once
    assert len(ax.lines[0].get_xdata()) == np.count_nonzero(dense)
    label = ",".join(map(str, np.atleast_1d(cell)))
    assert ax.get_title().endswith(f": row {row} = output cell {label}")
    ax.figure.canvas.draw()


def test_draw_matrix_refuses_a_cell_outside_the_output() -> None:
    s = widgets.state(input_size=(3, 3), kernel_size=2)
    with pytest.raises(ValueError, match=r"cell must be a flat index in \[0, 4\)"):
        widgets.draw_matrix(s, 4, Figure())
    with pytest.raises(
        TypeError, match=r"figure must be a matplotlib Figure or SubFig.*; got Axes"
    ):
        widgets.draw_matrix(s, 0, Figure().subplots())


@pytest.mark.parametrize("transposed", [False, True])
def test_draw_overlap_shows_overlap_map(transposed: bool) -> None:
    s = widgets.state(input_size=(3, 4), kernel_size=3, stride=2, transposed=transposed)
    ax = widgets.draw_overlap(s, Figure())
    layer = s.layer()
    counts = convmat.overlap_map(
        layer.out_spatial, 3, stride=2, output_padding=layer.output_padding
    )
    assert_array_equal(ax.images[0].get_array(), counts)
    assert [t.get_text() for t in ax.texts] == [str(v) for v in counts.ravel()]
    if transposed:  # the checkerboard of k=3, s=2
        assert_array_equal(counts, convmat.overlap_map((3, 4), 3, stride=2))
    else:  # how many windows read each input position
        reads = widgets.matrix(s).toarray().sum(axis=0).reshape(3, 4)
        assert_array_equal(counts, reads)


def test_a_large_overlap_map_is_colours_and_a_colorbar() -> None:
    s = widgets.state(input_size=(16, 16), kernel_size=3, stride=2, transposed=True)
    figure = Figure()
    ax = widgets.draw_overlap(s, figure)
    assert ax.texts == [] or all(t.get_text() == "" for t in ax.texts)
    assert len(figure.axes) == 2  # the map and its colorbar


def panels(figure: Any) -> list[tuple[Any, list[str]]]:
    """Every panel's picture (RGB cells) and cell texts."""
    return [
        (np.asarray(ax.images[0].get_array()), [t.get_text() for t in ax.texts])
        for ax in figure.axes
    ]


def play(anim: Any, step: int) -> None:
    """Draw frame ``step`` of an animation as it plays."""
    anim._init_draw()
    anim._func(step)


DRAWN = [
    dict(input_size=(5, 5), kernel_size=3, stride=2, padding=1),
    dict(input_size=7, kernel_size=3, dilation=2, padding=1),
    dict(input_size=(3, 3), kernel_size=2, view="matrix"),
    dict(input_size=(3, 3), kernel_size=3, stride=2, padding=1, transposed=True),
    dict(input_size=(3, 3), kernel_size=3, stride=2, padding=1, transposed=True, view="zeros"),
    dict(input_size=(2, 3), kernel_size=2, padding=1, transposed=True, view="matrix"),
]


@pytest.mark.parametrize("settings_", DRAWN)
def test_a_frame_is_the_picture_animate_plays(settings_: dict[str, Any]) -> None:
    from convmat._animate import animate

    s = widgets.state(**settings_)
    frames = widgets.layer_frames(s)
    anim = animate(
        s.input_size, s.kernel, symbols=True, view=s.view, transposed=s.transposed, **s.geometry()
    )
    for step in (0, len(frames) // 2, len(frames) - 1):
        figure = Figure()
        axes = widgets.draw(s, step, figure, symbols=True)
        assert len(axes) == (4 if s.view == "matrix" else 3)
        play(anim, step)
        for (mine, my_texts), (theirs, their_texts) in zip(
            panels(figure)[:3], panels(anim.figure)[:3], strict=True
        ):
            assert_array_equal(mine, theirs)
            assert my_texts == their_texts
        assert figure.texts[-1].get_text() == anim.figure.texts[-1].get_text()


def test_the_window_is_framed_where_the_frame_says() -> None:
    s = widgets.state(input_size=(5, 5), kernel_size=3, stride=2, padding=1)
    frames = widgets.layer_frames(s)
    for step in range(len(frames)):
        (grid, *_) = widgets.draw(s, step, Figure())
        rows, cols = np.unravel_index(frames[step].window, frames.padded_shape)
        (box,) = [p for p in grid.patches if not p.get_fill()]
        assert box.get_bbox().bounds == (
            cols.min() - 0.5,
            rows.min() - 0.5,
            cols.max() - cols.min() + 1,
            rows.max() - rows.min() + 1,
        )


def test_symbols_are_written_in_small_pictures_only() -> None:
    small = widgets.state(input_size=(3, 3), kernel_size=2)
    texts = [t.get_text() for t in widgets.draw(small, 0, Figure())[0].texts]
    assert texts[:3] == ["x₀₀", "x₀₁", "x₀₂"]
    large = widgets.state(input_size=(16, 16), kernel_size=3)
    figure = Figure()
    texts = [t.get_text() for t in widgets.draw(large, 0, figure)[0].texts]
    assert set(texts) == {""}
    assert figure.texts[-1].get_text() == "output (0, 0) sums 9 products"
    texts = [t.get_text() for t in widgets.draw(large, 0, Figure(), symbols=True)[0].texts]
    assert texts[:2] == ["x₀,₀", "x₀,₁"]  # indices of long axes are separated


def test_draw_refuses_a_step_that_is_not_a_frame_and_what_is_not_a_figure() -> None:
    s = widgets.state(input_size=3, kernel_size=2)
    with pytest.raises(ValueError, match=r"step must be in \[0, 2\) for this layer; got 2"):
        widgets.draw(s, 2, Figure())
    with pytest.raises(TypeError, match=r"step must be an int"):
        widgets.draw(s, 0.0, Figure())
    with pytest.raises(TypeError, match=r"figure must be a matplotlib Figure; got SubFigure"):
        widgets.draw(s, 0, Figure().subfigures(1, 2)[0])
    with pytest.raises(TypeError, match=r"symbols must be a bool or None; got 1"):
        widgets.draw(s, 0, Figure(), symbols=1)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the widget


def test_explore_returns_a_widget_and_shows_the_start() -> None:
    box = widgets.explore(input_size=(4, 4), kernel_size=3, stride=2, transposed=True)
    assert isinstance(box, ipywidgets.Widget) and isinstance(box, ipywidgets.VBox)
    shape = next(w for w in walk(box) if isinstance(w, ipywidgets.HTML) and "output" in w.value)
    assert "conv_transpose 2-d: input 4×4, kernel 3×3, stride 2 → output 9×9" in shape.value
    assert control(box, "stride").value == 2
    assert control(box, "transposed").value is True
    assert control(box, "view").value == "scatter"


def test_changing_a_slider_updates_the_outputs() -> None:
    ex = widgets.Explorer(input_size=(4, 4), kernel_size=3)
    c, o = ex.controls, ex.outputs
    assert "output 2×2; C is 4×16" in o["shape"].value
    before = {name: bytes(o[name].value) for name in ("matrix", "overlap")}
    assert all(before.values())  # PNG bytes
    assert before["matrix"].startswith(b"\x89PNG")
    assert o["formula"].value == f"$${widgets.formula_latex(ex.state(), 0)}$$"

    c["padding"].value = 1
    assert "padding 1 → output 4×4; C is 16×16" in o["shape"].value
    assert [label for label, _ in c["cell"].options] == [
        f"{i},{j}" for i in range(4) for j in range(4)
    ]
    assert bytes(o["matrix"].value) != before["matrix"]
    assert bytes(o["overlap"].value) != before["overlap"]

    c["cell"].value = 5
    assert o["formula"].value == f"$${widgets.formula_latex(ex.state(), 5)}$$"
    assert o["formula"].value.startswith("$$y_{11} = ")

    c["transposed"].value = True
    assert "conv_transpose 2-d" in o["shape"].value
    assert not c["output_padding"].disabled
    c["ndim"].value = 1
    assert c["height"].layout.display == "none"
    assert "conv_transpose 1-d: input 4, kernel 3, padding 1 → output 4" in o["shape"].value


def test_the_step_slider_draws_the_frame_and_follows_the_layer() -> None:
    ex = widgets.Explorer(input_size=(4, 4), kernel_size=3)
    c, o = ex.controls, ex.outputs
    assert (c["step"].max, c["play"].max) == (3, 3)  # four windows
    assert o["message"].value == ""
    first = bytes(o["frame"].value)
    assert first.startswith(b"\x89PNG")
    c["step"].value = 3
    last = bytes(o["frame"].value)
    assert last != first
    c["padding"].value = 1  # sixteen windows; the step stays where it was
    assert (c["step"].max, c["play"].max, c["step"].value) == (15, 15, 3)
    c["padding"].value = 0
    c["kernel_size"].value = 4  # one window: the step follows it down
    assert (c["step"].max, c["step"].value) == (0, 0)


def test_a_view_and_the_kind_of_layer_switch_together() -> None:
    ex = widgets.Explorer(input_size=(3, 3), kernel_size=2)
    c, o = ex.controls, ex.outputs
    assert c["view"].value == "window"
    c["transposed"].value = True  # a transposed layer has no window view: its scatter
    assert c["view"].value == "scatter" and "conv_transpose" in o["shape"].value
    c["view"].value = "zeros"
    assert c["transposed"].value is True
    c["view"].value = "window"  # the window view is a convolution's
    assert c["transposed"].value is False and "conv 2-d" in o["shape"].value
    c["view"].value = "matrix"
    c["transposed"].value = True  # the matrix view belongs to both
    assert c["view"].value == "matrix"
    assert (c["step"].max + 1) == 9  # one frame per input element: columns of Cᵀ
    c["view"].value = "scatter"
    assert c["transposed"].value is True


def test_an_invalid_geometry_shows_the_reason_and_clears_the_pictures() -> None:
    box = widgets.explore(input_size=(3, 3), kernel_size=2)
    ex_outputs = [w for w in walk(box) if isinstance(w, ipywidgets.Image)]
    control(box, "kernel_size").value = 5
    shape = [w for w in walk(box) if isinstance(w, ipywidgets.HTML) and "layer" in w.value]
    assert len(shape) == 1 and "no layer: kernel_size (dilated) must fit" in shape[0].value
    assert "#b00020" in shape[0].value  # shown in red
    assert all(bytes(image.value) == b"" for image in ex_outputs)
    assert all(image.layout.display == "none" for image in ex_outputs)  # no broken images
    cell = control(box, "output cell")
    (cell_box,) = [w for w in walk(box) if cell in getattr(w, "children", ())]
    assert cell_box.layout.display == "none"  # no cell to choose, no formula
    control(box, "kernel_size").value = 2  # back to a layer: everything is drawn again
    assert all(bytes(image.value).startswith(b"\x89PNG") for image in ex_outputs)
    assert all(image.layout.display is None for image in ex_outputs)
    assert cell_box.layout.display is None


def test_output_padding_too_large_is_a_message_in_the_widget() -> None:
    ex = widgets.Explorer(input_size=3, kernel_size=3, stride=2, transposed=True)
    ex.controls["output_padding"].value = 2
    assert "no layer: output_padding must be &lt; max(stride, dilation)" in (
        ex.outputs["shape"].value
    )
    ex.controls["stride"].value = 3
    assert "stride 3, output_padding 2 → output 11" in ex.outputs["shape"].value


def test_output_padding_is_disabled_for_a_convolution() -> None:
    ex = widgets.Explorer(input_size=(4, 4))
    assert ex.controls["output_padding"].disabled
    ex.controls["output_padding"].value = 3  # ignored by a convolution
    assert "output 2×2" in ex.outputs["shape"].value


def test_the_selected_cell_survives_a_change_that_keeps_it() -> None:
    ex = widgets.Explorer(input_size=(5, 5), kernel_size=3, cell=(1, 2))
    assert ex.controls["cell"].value == 5
    ex.controls["dilation"].value = 2  # output 1×1: cell 5 is gone, back to 0
    assert ex.controls["cell"].value == 0
    ex.controls["dilation"].value = 1
    ex.controls["cell"].value = 7
    ex.controls["padding"].value = 1  # output 5×5: cell 7 still exists
    assert ex.controls["cell"].value == 7
    assert ex.outputs["formula"].value.startswith("$$y_{12} = ")


def test_the_explorer_reads_its_state_from_the_controls() -> None:
    ex = widgets.Explorer(
        input_size=(6, 5),
        kernel_size=2,
        stride=2,
        padding=1,
        dilation=2,
        output_padding=1,
        transposed=True,
        view="matrix",
    )
    assert ex.state() == widgets.state(
        input_size=(6, 5),
        kernel_size=2,
        stride=2,
        padding=1,
        dilation=2,
        output_padding=1,
        transposed=True,
        view="matrix",
    )


def test_without_ipywidgets_explore_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    with pytest.raises(ModuleNotFoundError, match=r'pip install "convmat\[jupyter\]"'):
        widgets.explore()


def test_importing_convmat_or_its_widgets_module_stays_light() -> None:
    code = (
        "import sys, convmat; assert 'convmat.widgets' not in sys.modules; "
        "from convmat import widgets; "
        "print([m for m in ('ipywidgets', 'matplotlib', 'sympy') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
