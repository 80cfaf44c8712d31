"""The fast path's planner: every method forced against the matrix and torch, method="auto",
explain_plan, the operator going through the planner."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from convmat import conv, conv_matrix, conv_operator, conv_transpose, conv_transpose_matrix
from convmat._fast import cost, planner
from convmat._fast.api import CONV_METHODS, METHODS, explain_plan
from convmat._layer import conv_layer, conv_transpose_layer
from tests.strategies import conv_layers, conv_transpose_layers, geometry, small_ints

PLANNED_T = tuple(m for m in METHODS if m not in ("auto", "scatter", "fractional", "matrix"))
INEXACT = ("winograd", "fft")


def _layer(layer: dict[str, Any], transposed: bool) -> Any:
    make = conv_transpose_layer if transposed else conv_layer
    return make(layer["input_shape"], layer["weight_shape"], **geometry(layer))


def _check(got: np.ndarray, want: np.ndarray, method: str) -> None:
    if method in INEXACT:  # accurate, not bit-identical
        assert_allclose(got, want, rtol=0, atol=1e-12 * max(1.0, np.abs(want).max()))
    else:  # the tap sum's products in another order: exact on small integers
        assert_array_equal(got, want, err_msg=method)


# ---------------------------------------------------------------- every method, forced


@settings(max_examples=40, deadline=None)
@given(conv_layers(max_dims=3), st.data())
def test_every_conv_method_equals_the_matrix(layer: dict[str, Any], data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 3))
    x = data.draw(small_ints((n, *layer["input_shape"])))
    w = data.draw(small_ints(layer["weight_shape"]))
    matrix = conv_matrix(layer["input_shape"], w, **geometry(layer))
    want = (matrix @ x.reshape(n, -1).T).T.reshape(n, -1)
    lay = _layer(layer, False)
    for method in CONV_METHODS:
        reason = (
            None if method == "auto" else planner.why_not(method, lay, x.dtype, transposed=False)
        )
        if reason is not None:
            with pytest.raises(ValueError, match=f"method='{method}' "):
                conv(x, w, method=method, **geometry(layer))
            continue
        got = conv(x, w, method=method, **geometry(layer)).reshape(n, -1)
        _check(got, want, method)


@settings(max_examples=40, deadline=None)
@given(conv_transpose_layers(max_dims=3), st.data())
def test_every_transposed_method_equals_the_matrix(
    layer: dict[str, Any], data: st.DataObject
) -> None:
    n = data.draw(st.integers(1, 3))
    x = data.draw(small_ints((n, *layer["input_shape"])))
    w = data.draw(small_ints(layer["weight_shape"]))
    matrix = conv_transpose_matrix(layer["input_shape"], w, **geometry(layer))
    want = (matrix @ x.reshape(n, -1).T).T.reshape(n, -1)
    lay = _layer(layer, True)
    for method in METHODS:
        planned = method in PLANNED_T
        reason = planner.why_not(method, lay, x.dtype, transposed=True) if planned else None
        if reason is not None:
            with pytest.raises(ValueError, match=f"method='{method}' "):
                conv_transpose(x, w, method=method, **geometry(layer))
            continue
        got = conv_transpose(x, w, method=method, **geometry(layer)).reshape(n, -1)
        _check(got, want, method)


@settings(max_examples=25, deadline=None)
@given(conv_layers(max_dims=2), st.data(), st.booleans())
def test_every_method_matches_torch_in_float32(
    layer: dict[str, Any], data: st.DataObject, transposed: bool
) -> None:
    pytest.importorskip("torch")
    from convmat.testing import torch_conv, torch_conv_transpose

    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.standard_normal((2, *layer["input_shape"])).astype(np.float32)
    w = rng.standard_normal(layer["weight_shape"]).astype(np.float32)
    b = rng.standard_normal(layer["weight_shape"][0]).astype(np.float32)
    if transposed:
        if layer["padding_mode"] != "zeros" or isinstance(layer["padding"], str):
            return
        kw = geometry(layer, "padding_mode")
        y = conv(x, w, **kw)
        try:
            lay = conv_transpose_layer(y.shape[1:], w.shape, **kw)
        except ValueError:  # this padding leaves the transposed layer no output on y
            assume(False)
        bt = rng.standard_normal(w.shape[1] * layer["groups"]).astype(np.float32)
        want = torch_conv_transpose(y, w, bt, **kw)
        for method in PLANNED_T:
            if planner.why_not(method, lay, np.float32, transposed=True) is None:
                got = conv_transpose(y, w, bt, method=method, **kw)
                assert got.dtype == np.float32
                assert_allclose(
                    got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max(), err_msg=method
                )
        return
    lay = _layer(layer, False)
    want = torch_conv(x, w, b, **geometry(layer))
    for method in CONV_METHODS[1:]:
        if planner.why_not(method, lay, np.float32, transposed=False) is None:
            got = conv(x, w, b, method=method, **geometry(layer))
            assert got.dtype == np.float32
            assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max(), err_msg=method)


@settings(max_examples=40, deadline=None)
@given(conv_layers(max_dims=3), st.data())
def test_auto_equals_direct_and_plans_an_applicable_method(
    layer: dict[str, Any], data: st.DataObject
) -> None:
    x = data.draw(small_ints((2, *layer["input_shape"])))
    w = data.draw(small_ints(layer["weight_shape"]))
    assert_array_equal(
        conv(x, w, **geometry(layer)), conv(x, w, method="direct", **geometry(layer))
    )
    for transposed in (False, True):
        lay = _layer(layer, False)
        plan = planner.plan(lay, 2, np.float64, transposed=transposed, threads=1)
        if transposed and lay.padding_mode != "zeros":
            continue
        assert planner.why_not(plan.method, lay, np.float64, transposed=transposed) is None
        chosen = [c for c in plan.candidates if c.method == plan.method]
        assert chosen and chosen[0].seconds is not None


def test_large_layers_plan_the_fast_algorithms() -> None:
    """The planner's picks on the benchmark layers (geometry only: nothing is computed)."""
    fft = explain_plan((1, 1, 2048, 2048), (1, 1, 31, 31), padding="same", threads=1)
    assert fft.method == "fft"
    deep = explain_plan((8, 256, 14, 14), (256, 256, 3, 3), padding=1, threads=1)
    assert deep.method in ("direct", "winograd")
    assert all(c.seconds is not None for c in deep.candidates if c.method == "winograd")
    depthwise = explain_plan((4, 128, 56, 56), (128, 1, 3, 3), padding=1, groups=128, threads=1)
    assert depthwise.method == "depthwise"
    for plan in (fft, deep, depthwise):
        assert {c.method for c in plan.candidates} == set(planner.FORWARD_METHODS)
    dcgan = explain_plan(
        (16, 512, 8, 8), (512, 256, 4, 4), stride=2, padding=1, transposed=True, threads=1
    )
    assert dcgan.method in ("gemm", "subpixel")
    if dcgan.method == "subpixel":
        assert dcgan.inner is not None


def test_float32_gate_keeps_a_method_out(monkeypatch: pytest.MonkeyPatch) -> None:
    lay = conv_layer((256, 14, 14), (256, 256, 3, 3), padding=1)
    monkeypatch.setattr(planner, "SWITCH_SAVING", -10.0)  # any saving would do
    planner._plan.cache_clear()
    assert planner.plan(lay, 8, np.float32, transposed=False, threads=1).method == "winograd"
    planner._plan.cache_clear()
    monkeypatch.setitem(
        planner.FLOAT32_GATES, "winograd", lambda layer, transposed: "tiles too large"
    )
    planner._plan.cache_clear()
    try:
        plan = planner.plan(lay, 8, np.float32, transposed=False, threads=1)
        assert plan.method != "winograd"
        (wino,) = [c for c in plan.candidates if c.method == "winograd"]
        assert wino.reason == "float32 error above 4× torch's: tiles too large"
        # float64 is not gated
        assert planner.plan(lay, 8, np.float64, transposed=False, threads=1).method == "winograd"
    finally:
        planner._plan.cache_clear()


def test_small_layers_stay_exact() -> None:
    plan = explain_plan((2, 3, 9, 9), (4, 3, 3, 3), padding=1, dtype="float64")
    assert plan.method == "direct"
    assert "exact" in plan.reason or "fastest" in plan.reason


def test_complex_runs_the_tap_sum() -> None:
    lay = conv_layer((64, 56, 56), (64, 64, 3, 3), padding=1)
    plan = planner.plan(lay, 8, np.complex128, transposed=False, threads=1)
    assert plan.method == "direct"
    x = np.ones((1, 1, 5, 5), np.complex128)
    with pytest.raises(ValueError, match="method='winograd' computes float32 and float64 only"):
        conv(x, np.ones((1, 1, 3, 3)), method="winograd")


def test_forced_method_errors_name_method_and_reason() -> None:
    x, w = np.ones((1, 2, 8, 8)), np.ones((2, 2, 3, 3))
    with pytest.raises(
        ValueError, match=r"method='winograd' needs stride 1 on every axis; got \(2, 2\)"
    ):
        conv(x, w, stride=2, method="winograd")
    with pytest.raises(ValueError, match="method='polyphase' needs a stride above 1"):
        conv(x, w, method="polyphase")
    with pytest.raises(ValueError, match="method='depthwise' needs one input channel per group"):
        conv(x, w, method="depthwise")
    with pytest.raises(ValueError, match="method='subpixel' needs a stride above 1"):
        conv_transpose(x, w, method="subpixel")
    with pytest.raises(ValueError, match="method must be one of"):
        conv(x, w, method="gemm")  # the transposed tap sum's name
    with pytest.raises(ValueError, match="method must be one of"):
        conv_transpose(x, w, method="direct")
    with pytest.raises(TypeError, match="method must be one of"):
        conv(x, w, method=None)  # type: ignore[arg-type]


def test_non_finite_input_matches_direct_for_every_method() -> None:
    x = np.zeros((1, 2, 12, 12))
    x[0, 1, 5, 6] = np.inf
    x[0, 0, 2, 2] = np.nan
    w = np.ones((2, 2, 3, 3))
    want = conv(x, w, padding=1, method="direct")
    for method in ("winograd", "fft"):
        assert_array_equal(np.isnan(conv(x, w, padding=1, method=method)), np.isnan(want))


def test_float16_is_computed_in_float32_and_returned_in_float16() -> None:
    x = np.ones((1, 2, 6, 6), np.float16)
    w = np.ones((3, 2, 3, 3), np.float16)
    assert conv(x, w).dtype == np.float16
    assert conv_transpose(conv(x, w), w).dtype == np.float16
    assert explain_plan(x.shape, w.shape, dtype=np.float16).dtype == "float32"


# ---------------------------------------------------------------- explain_plan


def test_explain_plan_text_and_html() -> None:
    plan = explain_plan((8, 64, 56, 56), (64, 64, 3, 3), padding=1, threads=1)
    text = str(plan)
    assert text.startswith("conv 8×64×56×56 → 8×64×56×56, kernel 3×3, padding 1/1, 1/1; float32")
    assert "1 BLAS thread:" in text
    for method in planner.FORWARD_METHODS:
        assert method in text
    assert "not applicable: needs a stride above 1 on some axis" in text
    assert f"chosen: {plan.method} — {plan.reason}" in text
    assert repr(plan).startswith("<Plan conv")
    html = plan._repr_html_()
    assert html.startswith("<div>") and "<table>" in html and plan.method in html
    assert plan.predicted_seconds > 0
    assert plan.threads == 1
    assert explain_plan((64, 56, 56), (64, 64, 3, 3), padding=1, threads=2).threads == 2
    strided = explain_plan((1, 2, 10, 10), (2, 2, 3, 3), stride=2, transposed=True)
    assert strided.kind == "conv_transpose" and "stride 2×2" in strided.shape


def test_explain_plan_matches_what_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []
    found = planner.algorithms(False)
    for name, algorithm in found.items():

        def spy(*args: Any, _name: str = name, _run: Any = algorithm.run) -> Any:
            ran.append(_name)
            return _run(*args)

        monkeypatch.setitem(found, name, algorithm._replace(run=spy))
    x, w = np.ones((2, 3, 9, 9)), np.ones((4, 3, 3, 3))
    conv(x, w, padding=1)
    assert ran == [explain_plan(x.shape, w.shape, padding=1, dtype=x.dtype).method]


def test_explain_plan_threads_follow_the_blas() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1):
        assert planner.blas_threads() == 1
        assert explain_plan((1, 5, 5), (1, 1, 3, 3)).threads == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"x_shape": "abc"}, TypeError, "x_shape must be a sequence of ints"),
        ({"x_shape": (1, 2, 5, 5, 5, 5)}, ValueError, r"x_shape must be \(N, C_in, \*spatial\)"),
        ({"x_shape": (1, 3, 5, 5)}, ValueError, r"x_shape channels must equal weight.shape\[1\]"),
        ({"weight_shape": (2, 2)}, ValueError, "weight_shape must have shape"),
        ({"weight_shape": (2, 0, 3)}, ValueError, "weight_shape must be >= 1"),
        ({"stride": 0}, ValueError, "stride must be >= 1"),
        ({"padding_mode": "edge"}, ValueError, "padding_mode must be one of"),
        ({"transposed": 1}, TypeError, "transposed must be a bool"),
        ({"transposed": True, "padding_mode": "reflect"}, ValueError, "padding_mode must be"),
        ({"output_padding": 1}, ValueError, "output_padding must be 0 for a forward layer"),
        ({"output_padding": (0, 1)}, ValueError, "output_padding must be 0 for a forward"),
        ({"dtype": "str"}, TypeError, "dtype must be a NumPy float or complex dtype"),
        ({"dtype": "no such dtype"}, TypeError, "dtype must be a NumPy float or complex"),
        ({"threads": 0}, ValueError, "threads must be >= 1; got 0"),
        ({"threads": 1.5}, TypeError, "threads must be an int"),
    ],
)
def test_explain_plan_errors(kwargs: dict[str, Any], error: type, match: str) -> None:
    args = {"x_shape": (1, 2, 5, 5), "weight_shape": (2, 2, 3, 3), **kwargs}
    with pytest.raises(error, match=match):
        explain_plan(args.pop("x_shape"), args.pop("weight_shape"), **args)


def test_explain_plan_accepts_sequences_and_integer_dtypes() -> None:
    assert explain_plan([2, 5, 5], [2, 2, 3, 3], output_padding=(0, 0)).dtype == "float32"
    assert explain_plan((2, 5, 5), (2, 2, 3, 3), dtype=int).dtype == "float64"
    assert explain_plan((0, 2, 5, 5), (2, 2, 3, 3)).method == "direct"


# ---------------------------------------------------------------- the operator and the cost model


def test_the_operator_goes_through_the_planner(monkeypatch: pytest.MonkeyPatch) -> None:
    import convmat._operator as operator_module

    calls: list[bool] = []

    def spy(*args: Any, transposed: bool, **kwargs: Any) -> Any:
        calls.append(transposed)
        return planner.run(*args, transposed=transposed, **kwargs)

    monkeypatch.setattr(operator_module, "run", spy)
    w = np.arange(18.0).reshape(2, 1, 3, 3)
    op = conv_operator((1, 6, 6), w, padding=1)
    x = np.arange(36.0)
    assert_array_equal(op.matvec(x), conv(x.reshape(1, 6, 6), w, padding=1).ravel())
    op.rmatvec(np.ones(op.shape[0]))
    reflect = conv_operator((1, 6, 6), w, padding=1, padding_mode="reflect")
    reflect.rmatvec(np.ones(reflect.shape[0]))
    assert calls == [False, True, True]


def test_cost_model() -> None:
    assert cost.gemm_class(1, 1) == "axpy"
    assert cost.rates(3) is cost.RATES[max(cost.RATES)]
    work = cost.Counts(gemm_flops=1e9, gemm_calls=10, stream_bytes=1e8, passes=5)
    one, two = cost.seconds(work, "wide", 4, 1), cost.seconds(work, "wide", 8, 1)
    assert 0 < one < two
    assert cost.seconds(cost.Counts(fft_points=1e9), "thin", 4, 1) > 0
    lay = conv_layer((3, 9, 9), (4, 3, 3, 3), padding=1)
    counts = planner.direct_counts(lay, 2, 8, transposed=False)
    assert counts.gemm_flops >= 2 * 2 * 4 * 3 * 9 * 81  # every output, every tap
    assert counts.work_bytes > 0
