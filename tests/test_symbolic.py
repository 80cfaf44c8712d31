"""convmat.symbolic: exact formulas, symbolic matrices and the scatter walkthrough.

Oracles: the textbook 2×2 example and the Dive-into-Deep-Learning numbers by hand;
the numeric sparse matrices of convmat (themselves checked against PyTorch) and the
fast path after substitution; hypothesis properties (Cᵀ = C.T, steps sum to the
result, the directly built SymPy objects equal SymPy's own).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

import convmat
from convmat import symbolic
from convmat.symbolic import (
    ScatterSteps,
    Step,
    conv,
    conv_matrix,
    conv_transpose,
    conv_transpose_matrix,
    scatter_steps,
    symbols,
)
from tests.strategies import conv_layers, conv_transpose_layers, geometry, small_ints

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
D2L = [[0, 1], [2, 3]]


def as_float(a: Any) -> np.ndarray[Any, Any]:
    """A Matrix, Array or SparseMatrix of numbers as a float array of its own shape."""
    return np.array(a.tolist(), dtype=float).reshape(a.shape)


def substituted(a: Any, x: Any, xv: Any, w: Any, wv: Any) -> np.ndarray[Any, Any]:
    """``a`` with the symbols of ``x`` and ``w`` replaced by the values ``xv``, ``wv``."""
    subs = dict(zip(np.ravel(np.array(x.tolist(), dtype=object)), np.ravel(xv), strict=True))
    subs |= dict(zip(np.ravel(np.array(w.tolist(), dtype=object)), np.ravel(wv), strict=True))
    subs = {s: sympy.Integer(int(v)) for s, v in subs.items()}
    if isinstance(a, sympy.SparseMatrix):
        dense = np.zeros(a.shape)
        for (i, j), v in a.todok().items():
            dense[i, j] = float(v.xreplace(subs))
        return dense
    return np.array([float(v.xreplace(subs)) for v in flat(a)]).reshape(a.shape)


def flat(a: Any) -> list[Any]:
    return list(a) if isinstance(a, sympy.MatrixBase) else list(a.reshape(len(a)))


# ---------------------------------------------------------------- symbols


def test_symbols_are_a_matrix_in_2d_and_an_array_otherwise() -> None:
    x = symbols("x", (2, 3))
    assert isinstance(x, sympy.Matrix) and x.shape == (2, 3)
    assert [s.name for s in x] == ["x_00", "x_01", "x_02", "x_10", "x_11", "x_12"]
    v = symbols("v", 4)
    assert isinstance(v, sympy.Array) and v.shape == (4,)
    assert [s.name for s in v] == ["v_0", "v_1", "v_2", "v_3"]
    t = symbols("t", (2, 1, 2))
    assert isinstance(t, sympy.Array) and t.shape == (2, 1, 2)
    assert t[1, 0, 1].name == "t_101"


def test_symbol_names_print_with_subscripts() -> None:
    x = symbols("x", (2, 2))
    assert sympy.pretty(x[0, 1]) == "x₀₁"
    assert sympy.latex(x[1, 0]) == "x_{10}"
    assert x[0, 0].is_real is True
    assert symbols("x", (2, 2), real=False)[0, 0].is_real is None  # no assumption


def test_two_digit_indices_are_separated_everywhere_in_the_array() -> None:
    x = symbols("x", (2, 12))
    assert x[1, 11].name == "x_1,11" and x[0, 0].name == "x_0,0"
    assert sympy.latex(x[1, 11]) == "x_{1,11}"
    assert len(set(x)) == 24
    assert symbols("v", 12)[11].name == "v_11"  # one axis: never ambiguous


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((3, (2, 2)), {}, TypeError, "name must be a str; got 3"),
        (("", (2, 2)), {}, ValueError, "name must be an identifier without '_'"),
        (("x_", (2, 2)), {}, ValueError, "name must be an identifier without '_'"),
        (("x", (2, 2)), {"real": 1}, TypeError, "real must be a bool; got 1"),
        (("x", (2, 0)), {}, ValueError, "shape must be >= 1 on every axis"),
        (("x", (2, 1.5)), {}, TypeError, "shape must be an int or a sequence of ints"),
    ],
)
def test_symbols_errors(args: Any, kwargs: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        symbols(*args, **kwargs)


# ---------------------------------------------------------------- the textbook example


def test_the_classic_example_formula_by_formula() -> None:
    x, w = symbols("x", (2, 2)), symbols("w", (2, 2))
    (x00, x01, x10, x11), (w00, w01, w10, w11) = list(x), list(w)
    y = conv_transpose(x, w)
    assert isinstance(y, sympy.Matrix) and y.shape == (3, 3)
    expected = sympy.Matrix(
        [
            [x00 * w00, x00 * w01 + x01 * w00, x01 * w01],
            [
                x00 * w10 + x10 * w00,
                x00 * w11 + x01 * w10 + x10 * w01 + x11 * w00,
                x01 * w11 + x11 * w01,
            ],
            [x10 * w10, x10 * w11 + x11 * w10, x11 * w11],
        ]
    )
    assert y == expected
    assert [len(sympy.Add.make_args(e)) for e in y] == [1, 2, 1, 2, 4, 2, 1, 2, 1]
    assert y[1, 1] == x00 * w11 + x01 * w10 + x10 * w01 + x11 * w00


def test_dive_into_deep_learning_numbers() -> None:
    assert conv_transpose(D2L, D2L) == sympy.Matrix([[0, 0, 1], [0, 4, 6], [4, 12, 9]])
    assert conv_transpose(D2L, D2L, padding=1) == sympy.Matrix([[4]])
    assert conv_transpose(D2L, D2L, stride=2) == sympy.Matrix(
        [[0, 0, 0, 1], [0, 0, 2, 3], [0, 2, 0, 3], [4, 6, 6, 9]]
    )
    # The 3×3 input, 2×2 kernel [[1, 2], [3, 4]]: W is 4×9 and the transpose is Wᵀ.
    W = conv_matrix((3, 3), [[1, 2], [3, 4]])
    assert W == sympy.Matrix(
        [
            [1, 2, 0, 3, 4, 0, 0, 0, 0],
            [0, 1, 2, 0, 3, 4, 0, 0, 0],
            [0, 0, 0, 1, 2, 0, 3, 4, 0],
            [0, 0, 0, 0, 1, 2, 0, 3, 4],
        ]
    )
    assert conv_transpose_matrix((2, 2), [[1, 2], [3, 4]]) == W.T


def test_matrices_are_sparse_and_hold_the_kernel_symbols() -> None:
    w = symbols("w", (2, 2))
    C = conv_matrix((3, 3), w)
    assert isinstance(C, sympy.SparseMatrix) and C.shape == (4, 9)
    assert C.nnz() == 16
    assert C.free_symbols == set(w)
    CT = conv_transpose_matrix((2, 2), w)
    assert isinstance(CT, sympy.SparseMatrix)
    assert (CT - C.T).is_zero_matrix


def test_folded_padding_sums_the_taps_reading_one_input() -> None:
    x, w = symbols("x", 3), symbols("w", 3)
    (x0, x1, x2), (w0, w1, w2) = list(x), list(w)
    y = conv(x, w, padding=1, padding_mode="reflect")  # padded: x1 x0 x1 x2 x1
    assert y[0] == w1 * x0 + (w0 + w2) * x1  # the matrix entry w0 + w2, not expanded
    expected = [
        w0 * x1 + w1 * x0 + w2 * x1,
        w0 * x0 + w1 * x1 + w2 * x2,
        w0 * x1 + w1 * x2 + w2 * x1,
    ]
    assert [sympy.expand(a - b) for a, b in zip(y, expected, strict=True)] == [0, 0, 0]
    C = conv_matrix(3, w, padding=1, padding_mode="reflect")
    assert C[0, 1] == w0 + w2 and C[2, 1] == w0 + w2 and C[1, 1] == w1
    y = conv(x, w, padding=2, padding_mode="circular")  # padded: x1 x2 x0 x1 x2 x0 x1
    assert y[0] == w0 * x1 + w1 * x2 + w2 * x0 and len(y) == 5
    assert conv_matrix(3, w, padding=1, padding_mode="replicate")[0, 0] == w0 + w1


def test_channels_groups_and_layout() -> None:
    x = symbols("x", (2, 3))  # 2 channels, length 3
    w = symbols("w", (4, 1, 2))  # depthwise-style: groups=2, 2 outputs per group
    y = conv(x, w, groups=2)
    assert isinstance(y, sympy.Matrix) and y.shape == (4, 2)
    assert y[3, 1] == w[3, 0, 0] * x[1, 1] + w[3, 0, 1] * x[1, 2]
    yt = conv_transpose(symbols("u", (2, 2, 2)), symbols("k", (2, 3, 2, 2)))
    assert isinstance(yt, sympy.Array) and yt.shape == (3, 3, 3)
    assert conv_matrix((2, 3), w, groups=2).shape == (8, 6)


def test_outputs_that_no_tap_reaches_are_zero() -> None:
    y = conv_transpose(symbols("x", 2), symbols("w", 2), stride=1, dilation=3, output_padding=2)
    assert y.shape == (7,) and list(y)[5:] == [0, 0]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: conv("ab", [1]), TypeError, "x must be an array of numbers or SymPy"),
        (lambda: conv([[1, 2], [3]], [1]), ValueError, "x must be a rectangular array"),
        (lambda: conv([1, 2], [object()]), TypeError, "w must hold numbers or SymPy expr"),
        (lambda: conv([True, False], [1]), TypeError, "x must hold numbers or SymPy expr"),
        (lambda: conv(3, [1]), ValueError, "x must be an array with at least one axis"),
        (lambda: conv(np.zeros((2, 0)), [[1]]), ValueError, "x must have no empty axis"),
        (lambda: conv(sympy.Array(5), [1]), ValueError, "x must be an array with at least"),
        (lambda: conv([1, 2], [[[[1]]]]), ValueError, "w must have as many axes as x"),
        (
            lambda: conv_matrix((3, 3), [1]),
            ValueError,
            "w must have as many axes as spatial_or_input_shape",
        ),
        (lambda: conv([1, 2], [1, 2, 3]), ValueError, "kernel_size .dilated. must fit"),
        (lambda: conv([1, 2], [1], stride=0), ValueError, "stride must be >= 1"),
        (lambda: conv_transpose([1, 2], [1], padding="same"), TypeError, "no strings"),
        (
            lambda: conv_transpose([1, 2], [1], output_padding=1),
            ValueError,
            "output_padding must be < max",
        ),
        (lambda: conv([[1, 2]], [[[1]]], groups=2), ValueError, "groups must divide"),
        (lambda: conv_matrix("3", [1]), TypeError, "spatial_or_input_shape must be a sequence"),
        (lambda: scatter_steps([1], [1], stride=(1, 1)), ValueError, "stride must be an int"),
    ],
)
def test_errors(call: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------- against the numeric path


def _numeric_operands(draw: Any, layer: dict[str, Any]) -> tuple[Any, Any]:
    x = draw(small_ints(layer["input_shape"]))
    w = draw(small_ints(layer["weight_shape"]))
    return x, w


@SETTINGS
@given(data=st.data(), layer=conv_layers(max_dims=2, max_size=5))
def test_conv_equals_the_numeric_matrix(data: st.DataObject, layer: dict[str, Any]) -> None:
    x, w = _numeric_operands(data.draw, layer)
    geo = geometry(layer)
    C = convmat.conv_matrix(layer["input_shape"], w, **geo)
    y = conv(x.astype(int), w.astype(int), **geo)
    assert_array_equal(as_float(y).ravel(), C @ x.ravel())
    # One channel: the same geometry with purely spatial operands.
    single = {**geo, "groups": 1}
    y1 = conv(x[0].astype(int), w[0, 0].astype(int), **single)
    C1 = convmat.conv_matrix((1, *x.shape[1:]), w[:1, :1], **single)
    assert_array_equal(as_float(y1).ravel(), C1 @ x[0].ravel())


@SETTINGS
@given(data=st.data(), layer=conv_transpose_layers(max_dims=2, max_size=4))
def test_conv_transpose_equals_the_numeric_matrix(
    data: st.DataObject, layer: dict[str, Any]
) -> None:
    x, w = _numeric_operands(data.draw, layer)
    geo = geometry(layer)
    CT = convmat.conv_transpose_matrix(layer["input_shape"], w, **geo)
    y = conv_transpose(x.astype(int), w.astype(int), **geo)
    assert_array_equal(as_float(y).ravel(), CT @ x.ravel())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), layer=conv_layers(max_dims=2, max_size=4))
def test_symbolic_conv_and_matrix_after_substitution(
    data: st.DataObject, layer: dict[str, Any]
) -> None:
    xv, wv = _numeric_operands(data.draw, layer)
    geo = geometry(layer)
    x, w = symbols("x", layer["input_shape"]), symbols("w", layer["weight_shape"])
    C = convmat.conv_matrix(layer["input_shape"], wv, **geo)
    assert_array_equal(substituted(conv(x, w, **geo), x, xv, w, wv).ravel(), C @ xv.ravel())
    assert_array_equal(substituted(conv_matrix(x.shape, w, **geo), x, xv, w, wv), C.toarray())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), layer=conv_transpose_layers(max_dims=2, max_size=4))
def test_symbolic_conv_transpose_after_substitution_and_the_transpose_identity(
    data: st.DataObject, layer: dict[str, Any]
) -> None:
    xv, wv = _numeric_operands(data.draw, layer)
    geo = geometry(layer)
    x, w = symbols("x", layer["input_shape"]), symbols("w", layer["weight_shape"])
    CT = convmat.conv_transpose_matrix(layer["input_shape"], wv, **geo)
    y = conv_transpose(x, w, **geo)
    assert_array_equal(substituted(y, x, xv, w, wv).ravel(), CT @ xv.ravel())
    CTs = conv_transpose_matrix(layer["input_shape"], w, **geo)
    assert_array_equal(substituted(CTs, x, xv, w, wv), CT.toarray())
    # Cᵀ is the forward matrix transposed, symbol for symbol (when no restriction applies).
    out = (y.shape[0], *y.shape[1:]) if len(y.shape) > 1 else y.shape
    forward = {key: geo[key] for key in ("stride", "padding", "dilation", "groups")}
    C = conv_matrix(out, w, **forward)
    assume(C.shape == CTs.T.shape)
    assert (CTs - C.T).is_zero_matrix


@SETTINGS
@given(data=st.data(), layer=conv_transpose_layers(max_dims=2, max_size=3))
def test_scatter_steps_sum_to_conv_transpose(data: st.DataObject, layer: dict[str, Any]) -> None:
    geo = geometry(layer)
    x, w = symbols("x", layer["input_shape"]), symbols("w", layer["weight_shape"])
    steps = scatter_steps(x, w, **geo)
    y = conv_transpose(x, w, **geo)
    assert len(steps) == len(flat(x))
    assert [s.value for s in steps] == flat(x)
    assert [s.index for s in steps] == list(np.ndindex(*x.shape))
    total = [sympy.Add(*parts) for parts in zip(*(flat(s.partial) for s in steps), strict=True)]
    assert total == flat(y)
    assert flat(steps.result) == flat(y)
    for step in steps:  # each partial holds one element times kernel entries, nothing else
        assert all(v == 0 or step.value in v.free_symbols for v in flat(step.partial))


@pytest.mark.skipif(not hasattr(convmat, "conv_transpose"), reason="fast path not available")
@SETTINGS
@given(data=st.data(), layer=conv_transpose_layers(max_dims=2, max_size=4))
def test_conv_transpose_equals_the_fast_path(data: st.DataObject, layer: dict[str, Any]) -> None:
    x, w = _numeric_operands(data.draw, layer)
    geo = geometry(layer)
    y = conv_transpose(x.astype(int), w.astype(int), **geo)
    assert_array_equal(as_float(y), convmat.conv_transpose(x, w, **geo))


@pytest.mark.skipif(not hasattr(convmat, "conv"), reason="fast path not available")
@SETTINGS
@given(data=st.data(), layer=conv_layers(max_dims=2, max_size=5))
def test_conv_equals_the_fast_path(data: st.DataObject, layer: dict[str, Any]) -> None:
    x, w = _numeric_operands(data.draw, layer)
    geo = geometry(layer)
    y = conv(x.astype(int), w.astype(int), **geo)
    assert_array_equal(as_float(y), convmat.conv(x, w, **geo))


# ---------------------------------------------------------------- canonical objects, built fast


names = st.from_regex(r"[a-zA-Z]{1,2}(_[0-9,]{1,4})?", fullmatch=True)


@settings(max_examples=100, deadline=None)
@given(
    pairs=st.lists(st.tuples(names, names, st.booleans()), min_size=1, max_size=6),
)
def test_direct_products_and_sums_are_sympys_own_objects(
    pairs: list[tuple[str, str, bool]],
) -> None:
    made = [
        (sympy.Symbol(a, real=real), sympy.Symbol(b, positive=not real)) for a, b, real in pairs
    ]
    terms = symbolic._Terms([s for pair in made for s in pair])
    built = [terms.product(a, b) for a, b in made]
    expected = [a * b for a, b in made]
    assert [t for t, _ in built] == expected
    assert [sympy.srepr(t) for t, _ in built] == [sympy.srepr(e) for e in expected]
    total, reference = terms.total(built), sympy.Add(*expected)
    assert total == reference and hash(total) == hash(reference)
    assert total.args == reference.args and sympy.srepr(total) == sympy.srepr(reference)


def test_products_outside_the_fast_case_are_evaluated_normally() -> None:
    x = sympy.Symbol("x")
    terms = symbolic._Terms([x])
    assert terms.product(x, x) == (x**2, None)
    assert terms.product(x, sympy.Integer(2)) == (2 * x, None)
    assert terms.total([terms.product(x, x), terms.product(x, x)]) == 2 * x**2


# ---------------------------------------------------------------- rendering


def test_scatter_steps_object() -> None:
    x, w = symbols("x", (2, 2)), symbols("w", (2, 2))
    steps = scatter_steps(x, w)
    assert isinstance(steps, ScatterSteps) and len(steps) == 4
    first = steps[0]
    assert isinstance(first, Step) and first.index == (0, 0) and first.value == x[0, 0]
    assert first.partial == sympy.Matrix(
        [
            [x[0, 0] * w[0, 0], x[0, 0] * w[0, 1], 0],
            [x[0, 0] * w[1, 0], x[0, 0] * w[1, 1], 0],
            [0, 0, 0],
        ]
    )
    index, _, partial = steps[3]
    assert index == (1, 1) and partial[2, 2] == x[1, 1] * w[1, 1]
    assert "4 steps" in repr(steps)


def test_scatter_steps_render_as_text_and_latex() -> None:
    steps = scatter_steps(symbols("x", (2, 2)), symbols("w", (2, 2)))
    text = steps.to_text(unicode=True, width=200)
    assert text.splitlines()[0].split() == ["1.", "x₀₀", "2.", "x₀₁", "3.", "x₁₀", "4.", "x₁₁"]
    assert "w₁₁x₀₀ + w₁₀x₀₁ + w₀₁x₁₀ + w₀₀x₁₁" in text
    assert "⎡w₀₀x₀₀  w₀₁x₀₀    ·   ⎤" in text
    ascii_text = steps.to_text(unicode=False, width=200)
    ascii_text.encode("ascii")
    assert "w_11*x_00 + w_10*x_01 + w_01*x_10 + w_00*x_11" in ascii_text
    latex = steps._repr_latex_()
    assert latex.startswith("$$") and latex.endswith("$$")
    assert latex.count("{") == latex.count("}")
    assert latex.count(r"\underbrace") == 4 and latex.count(r"\begin{bmatrix}") == 5
    assert r"w_{11} x_{00} + w_{10} x_{01} + w_{01} x_{10} + w_{00} x_{11}" in latex


def test_str_falls_back_to_ascii_for_an_ascii_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    class AsciiOut:
        encoding = "ascii"

    steps = scatter_steps(symbols("x", 2), symbols("w", 2))
    monkeypatch.setattr("sys.stdout", AsciiOut())
    str(steps).encode("ascii")
    assert "w_0*x_0" in str(steps)


def test_steps_with_numbers_and_channels_render() -> None:
    steps = scatter_steps(D2L, D2L, stride=2)
    text = steps.to_text(unicode=True, width=100)
    assert "1. [0, 0] = 0" in text and "4. [1, 1] = 3" in text
    chan = scatter_steps(symbols("x", (2, 1, 2)), symbols("w", (2, 1, 1, 2)))
    assert chan[0].partial.shape == (1, 1, 3)
    text = chan.to_text(unicode=False, width=100)
    assert "[0, ...]" in text and "w_0000*x_000" in text
    latex = chan.to_latex()
    assert latex.count("{") == latex.count("}")


@pytest.mark.parametrize(
    ("expr", "unicode", "ascii", "latex"),
    [
        ("-w_1*x_0 + 3*x_1", "-w₁x₀ + 3x₁", "-w_1*x_0 + 3*x_1", "- w_{1} x_{0} + 3 x_{1}"),
        ("x_0*(w_1 + w_0)", "x₀(w₀ + w₁)", "x_0*(w_0 + w_1)", r"x_{0} \left(w_{0} + w_{1}\right)"),
        (
            "x_0**2/2 - 1",
            "(1/2)x₀² - 1",
            "(1/2)*x_0**2 - 1",
            r"\left(\frac{1}{2}\right) {x_{0}}^{2} - 1",
        ),
        ("alpha*x_0", "alpha·x₀", "alpha*x_0", r"\alpha x_{0}"),
        ("0.25*x_0", "0.25x₀", "0.25*x_0", "0.25 x_{0}"),
    ],
)
def test_formatter_order_and_styles(expr: str, unicode: str, ascii: str, latex: str) -> None:
    e = sympy.sympify(expr)
    order = sympy.symbols("x_0 x_1 w_0 w_1")
    for style, expected in (("unicode", unicode), ("ascii", ascii), ("latex", latex)):
        assert symbolic._Formatter(style, order)(e).replace("- ", "-") == expected.replace(
            "- ", "-"
        )
