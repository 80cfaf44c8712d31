"""from_keras: every supported Keras 3 layer against Keras itself (JAX backend), models, errors.

Each live case checks ``map(x)`` and ``map.matrix @ x + offset`` against ``layer(x)``, the
matrix against ``jax.jacfwd`` of the layer, and the dot test on ``map.operator``; layers run
in float64 (jax x64 on, Keras floatx float64) so agreement is to rounding. The committed
fixtures (tests/fixtures/keras.npz) rebuild a handful of layers from their configs and
weights through the private ``_from_config`` path, so they run without Keras.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_allclose

import convmat
from convmat._keras import _from_config, same_padding, transpose_padding
from convmat.testing import dot_test

RTOL, ATOL = 1e-10, 1e-12
FIXTURES = Path(__file__).parent / "fixtures" / "keras.npz"


# ----------------------------------------------------------------------------- without keras


def _fixture_cases() -> list[tuple[str, dict[str, Any], list[Any], Any, Any]]:
    data = np.load(FIXTURES)
    count = len({k.split("/")[0] for k in data.files})
    cases = []
    for i in range(count):
        weights = []
        while f"{i}/w{len(weights)}" in data.files:
            weights.append(data[f"{i}/w{len(weights)}"])
        config = json.loads(str(data[f"{i}/config"]))
        cases.append((str(data[f"{i}/class"]), config, weights, data[f"{i}/x"], data[f"{i}/y"]))
    return cases


@pytest.mark.parametrize("case", _fixture_cases(), ids=lambda c: c[0])
def test_fixture_layers_rebuilt_from_config(case: Any) -> None:
    kind, config, weights, x, y = case
    layout = config.get("data_format", "channels_last")
    amap = _from_config([(kind, config, weights)], x.shape, layout=layout)
    assert amap.output_shape == y.shape
    tol = 1e-7 if kind == "BatchNormalization" else RTOL  # XLA's rsqrt is not correctly rounded
    assert_allclose(amap(x), y, rtol=tol, atol=tol)
    assert_allclose(amap.matrix @ x.ravel() + amap.offset, y.ravel(), rtol=tol, atol=tol)
    dot_test(amap.operator)


def test_import_convmat_does_not_import_keras_or_jax() -> None:
    code = "import sys, convmat; print('keras' in sys.modules, 'jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    ("n", "k", "s", "d", "expected"),
    [
        (7, 3, 2, 1, (1, 1)),
        (6, 3, 2, 1, (0, 1)),
        (5, 2, 1, 1, (0, 1)),
        (4, 3, 1, 2, (2, 2)),
        (5, 1, 3, 1, (0, 0)),
    ],
)
def test_same_padding_puts_the_extra_one_after(
    n: int, k: int, s: int, d: int, expected: Any
) -> None:
    assert same_padding(n, k, s, d) == expected
    lo, hi = expected
    assert (n + lo + hi - d * (k - 1) - 1) // s + 1 == -(-n // s)


@pytest.mark.parametrize(
    ("padding", "op"), [("valid", None), ("valid", 0), ("valid", 1), ("same", None), ("same", 1)]
)
def test_transpose_padding_gives_keras_output_sizes(padding: str, op: int | None) -> None:
    for n, k, s, d in itertools.product((1, 3, 4), (1, 2, 3, 4), (2, 3), (1, 2)):
        (lo, hi), out_pad = transpose_padding(k, s, d, padding, op)
        size = (n - 1) * s - lo - hi + d * (k - 1) + out_pad + 1
        k_eff = d * (k - 1) + 1
        if op is None:
            want = n * s + max(k_eff - s, 0) if padding == "valid" else n * s
        else:
            want = (n - 1) * s + (k_eff if padding == "valid" else k_eff % 2) + op
        assert size == want
        assert out_pad < max(s, d)


def test_config_path_refuses_unknown_layers() -> None:
    with pytest.raises(TypeError, match=r"mystery \(LSTM\) is not supported.*Conv2D"):
        _from_config([("LSTM", {"name": "mystery"}, [])], (4, 3))


# ----------------------------------------------------------------------------- with keras


@pytest.fixture(scope="module")
def keras() -> Any:
    keras = pytest.importorskip("keras")
    jax = pytest.importorskip("jax")
    # Keras caches a global dtype policy from floatx on first use: save and restore it too.
    x64, floatx, policy = (
        jax.config.jax_enable_x64,
        keras.config.floatx(),
        keras.config.dtype_policy(),
    )
    jax.config.update("jax_enable_x64", True)
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    yield keras
    keras.config.set_dtype_policy(policy)
    keras.config.set_floatx(floatx)
    jax.config.update("jax_enable_x64", x64)


def check(
    keras: Any,
    layer: Any,
    shape: tuple[int, ...],
    *,
    at: bool = False,
    tol: float = RTOL,
    seed: int = 0,
) -> convmat.AffineMap:
    """The four routes of one layer or model against Keras, and the Jacobian."""
    import jax

    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    amap = convmat.from_keras(layer, shape, at=x if at else None)
    y = np.asarray(layer(x[None]))[0]
    assert amap.output_shape == y.shape
    assert_allclose(amap(x), y, rtol=tol, atol=tol)
    assert_allclose(amap.matrix @ x.ravel() + amap.offset, y.ravel(), rtol=tol, atol=tol)
    assert_allclose(amap.operator @ x.ravel() + amap.offset, y.ravel(), rtol=tol, atol=tol)
    if x.size * y.size <= 6_000:
        jac = jax.jacfwd(lambda t: layer(t[None])[0])(jax.numpy.asarray(x))
        dense = np.asarray(jac).reshape(y.size, x.size)
        assert_allclose(amap.matrix.toarray(), dense, rtol=tol, atol=tol)
    dot_test(amap.operator)
    return amap


CONV_GRID = list(
    itertools.product(
        (1, 2, 3),  # spatial rank
        ("valid", "same"),
        (1, 2),  # stride
        (1, 2),  # dilation
        ("channels_last", "channels_first"),
    )
)


@pytest.mark.parametrize(("nd", "padding", "s", "d", "fmt"), CONV_GRID)
def test_conv(keras: Any, nd: int, padding: str, s: int, d: int, fmt: str) -> None:
    if s > 1 and d > 1:
        pytest.skip("Keras refuses strides > 1 with dilation_rate > 1")
    spatial = (7, 6, 5)[:nd] if nd < 3 else (5, 4, 5)
    c = 4
    shape = (*spatial, c) if fmt == "channels_last" else (c, *spatial)
    groups = 2 if nd == 2 else 1
    layer = getattr(keras.layers, f"Conv{nd}D")(
        2,
        (3, 2, 3)[:nd],
        strides=s,
        padding=padding,
        dilation_rate=d,
        groups=groups,
        data_format=fmt,
        bias_initializer="random_normal",
    )
    amap = check(keras, layer, shape)
    assert amap.layout == fmt


def test_conv1d_causal(keras: Any) -> None:
    check(keras, keras.layers.Conv1D(3, 3, padding="causal", dilation_rate=2), (9, 2))


CONV_T_GRID = list(
    itertools.product(
        (1, 2, 3), ("valid", "same"), (1, 2, 3), (None, 0, 1), ("channels_last", "channels_first")
    )
)


@pytest.mark.parametrize(("nd", "padding", "s", "op", "fmt"), CONV_T_GRID)
def test_conv_transpose(keras: Any, nd: int, padding: str, s: int, op: Any, fmt: str) -> None:
    if op is not None and op >= s:
        pytest.skip("Keras requires output_padding < strides")
    spatial = (4, 3, 3)[:nd]
    shape = (*spatial, 3) if fmt == "channels_last" else (3, *spatial)
    for k in (1, 2, 3) if nd < 3 else (2, 3):
        layer = getattr(keras.layers, f"Conv{nd}DTranspose")(
            2,
            k,
            strides=s,
            padding=padding,
            output_padding=op,
            data_format=fmt,
            bias_initializer="random_normal",
        )
        check(keras, layer, shape, seed=k)


@pytest.mark.parametrize(("padding", "k"), [("valid", 2), ("same", 3), ("same", 2)])
def test_conv_transpose_dilated(keras: Any, padding: str, k: int) -> None:
    layer = keras.layers.Conv2DTranspose(2, k, dilation_rate=2, padding=padding)
    check(keras, layer, (4, 5, 3))


@pytest.mark.parametrize(
    ("s", "m", "padding", "fmt"),
    list(itertools.product((1, 2), (1, 2), ("valid", "same"), ("channels_last", "channels_first"))),
)
def test_depthwise_and_separable(keras: Any, s: int, m: int, padding: str, fmt: str) -> None:
    shape = (7, 6, 3) if fmt == "channels_last" else (3, 7, 6)
    kw = {"strides": s, "padding": padding, "depth_multiplier": m, "data_format": fmt}
    check(keras, keras.layers.DepthwiseConv2D(3, bias_initializer="random_normal", **kw), shape)
    check(keras, keras.layers.SeparableConv2D(4, 3, bias_initializer="random_normal", **kw), shape)
    shape1 = shape[1:] if fmt == "channels_last" else (3, 7)
    check(keras, keras.layers.DepthwiseConv1D(3, **kw), shape1)


@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
def test_upsampling(keras: Any, fmt: str) -> None:
    L = keras.layers
    last = fmt == "channels_last"
    check(keras, L.UpSampling1D(3), (4, 2))
    for size, mode in itertools.product(((2, 2), (2, 3), (3, 1)), ("nearest", "bilinear")):
        layer = L.UpSampling2D(size, interpolation=mode, data_format=fmt)
        check(keras, layer, (4, 5, 2) if last else (2, 4, 5))
    check(keras, L.UpSampling3D((2, 1, 3), data_format=fmt), (2, 3, 2, 2))


@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
def test_padding_and_cropping(keras: Any, fmt: str) -> None:
    L = keras.layers
    last = fmt == "channels_last"
    check(keras, L.ZeroPadding1D((1, 2)), (4, 3))
    check(
        keras, L.ZeroPadding2D(((1, 2), (0, 3)), data_format=fmt), (4, 5, 2) if last else (2, 4, 5)
    )
    check(keras, L.ZeroPadding3D(1, data_format=fmt), (2, 3, 2, 2))
    check(keras, L.Cropping1D((1, 2)), (6, 3))
    check(keras, L.Cropping2D(((1, 0), (2, 1)), data_format=fmt), (4, 5, 2) if last else (2, 4, 5))
    check(
        keras,
        L.Cropping3D(((1, 0), (0, 1), (1, 1)), data_format=fmt),
        (3, 3, 4, 2) if last else (2, 3, 3, 4),
    )


@pytest.mark.parametrize(
    ("nd", "padding", "fmt"),
    list(itertools.product((1, 2, 3), ("valid", "same"), ("channels_last", "channels_first"))),
)
def test_average_pooling(keras: Any, nd: int, padding: str, fmt: str) -> None:
    spatial = (7, 6, 5)[:nd]
    shape = (*spatial, 2) if fmt == "channels_last" else (2, *spatial)
    for pool, strides in [(2, None), (3, 2), (2, 3)]:
        layer = getattr(keras.layers, f"AveragePooling{nd}D")(
            pool, strides=strides, padding=padding, data_format=fmt
        )
        check(keras, layer, shape)


def test_dense_flatten_reshape_permute_batchnorm(keras: Any) -> None:
    L = keras.layers
    check(keras, L.Dense(4, bias_initializer="random_normal"), (5,))
    check(keras, L.Dense(4, use_bias=False), (3, 5))
    check(keras, L.Flatten(), (3, 4, 2))
    check(keras, L.Flatten(data_format="channels_first"), (2, 3, 4))
    check(keras, L.Reshape((4, -1)), (3, 4, 2))
    check(keras, L.Permute((2, 1, 3)), (3, 4, 2))
    for axis, center, scale in [(-1, True, True), (1, False, True), (2, True, False)]:
        bn = L.BatchNormalization(
            axis=axis,
            center=center,
            scale=scale,
            epsilon=0.01,
            moving_mean_initializer="random_normal",
            gamma_initializer="random_normal",
            beta_initializer="random_normal",
        )
        bn.build((None, 4, 3, 2))
        check(keras, bn, (4, 3, 2), tol=1e-7)  # XLA's rsqrt is not correctly rounded


def test_sequential_model(keras: Any) -> None:
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.Conv2D(4, 3, strides=2, padding="same"),
            L.BatchNormalization(),
            L.Conv2DTranspose(2, 4, strides=2, padding="same"),
            L.ZeroPadding2D(1),
            L.AveragePooling2D(2),
            L.Flatten(),
            L.Dropout(0.5),
            L.Dense(3),
        ]
    )
    amap = check(keras, model, (8, 8, 1), tol=1e-7)
    kinds = [row.kind for row in amap.layers]
    # each spatial step runs channels-first between two permutations (BatchNormalization and
    # ZeroPadding2D act in Keras' layout directly)
    assert kinds.count("to channels_first") == 3
    assert kinds.count("to channels_last") == 3


def test_functional_model_with_add_and_concatenate(keras: Any) -> None:
    L = keras.layers
    inp = keras.Input((6, 6, 2))
    a = L.Conv2D(3, 3, padding="same")(inp)
    b = L.Conv2D(3, 1, bias_initializer="random_normal")(inp)
    c = L.Add()([a, b])
    d = L.Subtract()([c, a])
    e = L.Concatenate()([d, L.Average()([a, b])])
    f = L.Concatenate(axis=1)([e, e])
    inner = keras.Sequential([L.Conv2DTranspose(2, 2, strides=2), L.Cropping2D(1)])
    out = L.Flatten()(inner(f))
    model = keras.Model(inp, L.Dense(5)(out))
    amap = check(keras, model, (6, 6, 2))
    assert amap.layout == "channels_last"


def test_nonlinear_at(keras: Any) -> None:
    L = keras.layers
    inp = keras.Input((6, 6, 2))
    a = L.Conv2D(3, 3, padding="same", activation="relu")(inp)
    b = L.Conv2D(3, 3, padding="same", activation="tanh")(inp)
    c = L.Multiply()([a, b])
    d = L.LeakyReLU(negative_slope=0.1)(c)
    e = L.Activation("sigmoid")(L.ELU()(d))
    model = keras.Model(inp, L.Dense(2, activation="gelu")(L.Flatten()(L.ReLU()(e))))
    check(keras, model, (6, 6, 2), at=True, tol=1e-7)  # XLA's tanh, erf: not correctly rounded
    prelu = L.PReLU(alpha_initializer="random_normal")
    check(keras, prelu, (4, 3), at=True)


def test_channels_first_matches_from_torch_layout(keras: Any) -> None:
    layer = keras.layers.Conv2D(3, 3, strides=2, padding="same")
    amap = convmat.from_keras(layer, (7, 6, 2))
    first = convmat.to_channels_first(amap)
    kernel = np.asarray(layer.kernel.value)
    weight = np.moveaxis(kernel, (3, 2), (0, 1))
    direct = convmat.conv_matrix((2, 7, 6), weight, stride=2, padding=((1, 1), (0, 1)))
    assert first.layout == "channels_first"
    assert first.input_shape == (2, 7, 6) and first.output_shape == (3, 4, 3)
    assert_allclose(first.matrix.toarray(), direct.toarray(), rtol=RTOL, atol=ATOL)
    assert convmat.to_channels_first(first) is first


def test_refusals(keras: Any) -> None:
    L = keras.layers
    with pytest.raises(TypeError, match=r"lstm \(keras\.src.*LSTM\) is not supported.*Conv2D"):
        convmat.from_keras(L.LSTM(3, name="lstm"), (4, 3))
    with pytest.raises(ValueError, match=r"relu_1 \(ReLU\) is not linear; pass at="):
        convmat.from_keras(L.ReLU(name="relu_1"), (4, 3))
    with pytest.raises(ValueError, match=r"activation must be linear.*got 'softmax'"):
        convmat.from_keras(L.Dense(3, activation="softmax"), (4,), at=np.ones(4))
    with pytest.raises(ValueError, match="interpolation must be 'nearest' or 'bilinear'"):
        convmat.from_keras(L.UpSampling2D(2, interpolation="bicubic"), (3, 3, 1))
    with pytest.raises(ValueError, match="at must be one sample of input_shape"):
        convmat.from_keras(L.Dense(3), (4,), at=np.ones(5))
    with pytest.raises(TypeError, match=r"layer_or_model must be a keras\.Layer"):
        convmat.from_keras("conv", (4,))
    with pytest.raises(TypeError, match="input_shape must be a sequence of ints"):
        convmat.from_keras(L.Dense(3), (4.5,))
    with pytest.raises(ValueError, match=r"input_shape must be non-empty"):
        convmat.from_keras(L.Dense(3), (0,))
    with pytest.raises(TypeError, match="amap must be an AffineMap"):
        convmat.to_channels_first("map")

    class Custom(keras.Model):
        def call(self, x: Any) -> Any:
            return x

    with pytest.raises(TypeError, match="subclassed Model"):
        convmat.from_keras(Custom(), (3,))
