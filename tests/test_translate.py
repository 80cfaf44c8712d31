"""translate: one convolution in PyTorch, Keras and JAX — each translation checked numerically.

Keras 3 (JAX backend), JAX and PyTorch are the oracles; every case runs in float64.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_allclose

from convmat._translate import LayerSpec, read, spec_matrix, translate, write_torch

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
jax = pytest.importorskip("jax")


@pytest.fixture(autouse=True)
def float64() -> Iterator[None]:
    """float64 everywhere for the test, every global setting put back after it."""
    floatx, policy, x64 = (
        keras.config.floatx(),
        keras.config.dtype_policy(),
        jax.config.jax_enable_x64,
    )
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    jax.config.update("jax_enable_x64", True)
    yield
    keras.config.set_dtype_policy(policy)
    keras.config.set_floatx(floatx)
    jax.config.update("jax_enable_x64", x64)


def _last(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.moveaxis(x, 1, -1)


def _first(x: Any) -> np.ndarray[Any, Any]:
    return np.moveaxis(np.asarray(x), -1, 1)


def _torch_out(m: Any, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    with torch.no_grad():
        return np.asarray(m(torch.from_numpy(x)).numpy())


def torch_layers() -> Iterator[tuple[str, Any, tuple[int, ...]]]:
    """A seeded grid of PyTorch convolutions and transposed convolutions, 1-d and 2-d."""
    rng = np.random.default_rng(0)
    for nd, transposed, s, k, d, p in itertools.product(
        (1, 2), (False, True), (1, 2, 3), (2, 3, 4), (1, 2), (0, 2)
    ):
        groups = int(rng.integers(1, 3))
        op = int(rng.integers(0, max(s, d))) if transposed else 0
        if (transposed and p > d * (k - 1)) or (not transposed and d * (k - 1) + 1 > 6 + 2 * p):
            continue
        if nd == 2 and rng.random() < 0.6:  # 2-d: a sample (the per-axis logic is 1-d's)
            continue
        cls = getattr(torch.nn, f"ConvTranspose{nd}d" if transposed else f"Conv{nd}d")
        kw: dict[str, Any] = {"stride": s, "padding": p, "dilation": d, "groups": groups}
        if transposed:
            kw["output_padding"] = op
        m = cls(2 * groups, 2 * groups, k, **kw).double()
        name = f"{cls.__name__}-s{s}k{k}d{d}p{p}op{op}g{groups}"
        yield name, m, (2 * groups, *(6,) * nd)


def test_torch_to_keras_and_back_round_trips() -> None:
    """Every translatable geometry: Keras equals torch, and torch → keras → torch is exact."""
    rng = np.random.default_rng(1)
    done, single, refused = 0, 0, set()
    for name, m, shape in torch_layers():
        try:
            t = translate(m, "keras")
        except ValueError as err:
            refused.add(str(err).split(";")[0])
            continue
        model = t.build(shape)
        x = rng.standard_normal((2, *shape))
        assert_allclose(_first(model(_last(x))), _torch_out(m, x), atol=1e-10, err_msg=name)
        back = translate(model, "torch", input_shape=shape)
        assert back.spec.pads == read(m)[1].pads, name
        assert (spec_matrix(back.spec, shape) != spec_matrix(read(m)[1], shape)).nnz == 0
        assert_allclose(_torch_out(back.build(), x), _torch_out(m, x), atol=1e-12, err_msg=name)
        done += 1
        single += t.exact_single_layer
    assert done > 40 and 0 < single < done
    assert refused <= {
        "bias must be absent to append output cells beyond Keras' output_padding < strides: "
        "the source gives them the bias, a padding layer would give zeros",
        "groups must be 1 to translate a transposed convolution to Keras (Conv*DTranspose "
        "has no groups)",
        "stride and dilation must not both exceed 1 to translate to Keras (its convolutions "
        "refuse the pair)",
    }


def keras_layers() -> Iterator[tuple[str, Any, tuple[int, ...]]]:
    """A grid of built Keras convolutions (channels-last input of 5 per axis, 3 channels)."""
    rng = np.random.default_rng(2)
    for nd, transposed, pad, s, k, d in itertools.product(
        (1, 2), (False, True), ("same", "valid"), (1, 2, 3), (1, 2, 3, 4), (1, 2)
    ):
        if s > 1 and d > 1:
            continue
        for op in [None, *range(s)] if transposed else [None]:
            cls = getattr(keras.layers, f"Conv{nd}DTranspose" if transposed else f"Conv{nd}D")
            kw: dict[str, Any] = {"strides": s, "padding": pad, "dilation_rate": d}
            if transposed:
                kw["output_padding"] = op
            layer = cls(2, k, **kw)
            try:
                layer.build((1, *(5,) * nd, 3))
                layer.compute_output_shape((1, *(5,) * nd, 3))
            except ValueError:  # a kernel longer than the input: Keras refuses it too
                continue
            for v in layer.weights:
                v.assign(rng.standard_normal(v.shape))
            yield f"{cls.__name__}-{pad}-s{s}k{k}d{d}op{op}", layer, (3, *(5,) * nd)


def test_keras_layers_read_exactly_and_translate_to_torch_and_jax() -> None:
    rng = np.random.default_rng(3)
    count = 0
    for i, (name, layer, shape) in enumerate(keras_layers()):
        if i % 3:  # a third of the grid: each case compiles its own XLA convolutions
            continue
        x = rng.standard_normal((2, *shape))
        want = _first(layer(_last(x)))
        _, spec = read(layer, shape)
        got = (spec_matrix(spec, shape) @ x.reshape(2, -1).T).T.reshape(want.shape)
        if spec.bias is not None:
            got = got + spec.bias.reshape(-1, *(1,) * (len(shape) - 1))
        assert_allclose(got, want, atol=1e-10, err_msg=name)
        t = translate(layer, "torch", input_shape=shape)
        assert_allclose(_torch_out(t.build(), x), want, atol=1e-10, err_msg=name)
        j = translate(layer, "jax", input_shape=shape)
        assert_allclose(np.asarray(j.build()(x)), want, atol=1e-10, err_msg=name)
        count += 1
    assert count > 50


def test_torch_to_jax() -> None:
    rng = np.random.default_rng(4)
    for i, (name, m, shape) in enumerate(torch_layers()):
        if i % 4:  # a quarter of the grid: each case compiles its own XLA convolution
            continue
        t = translate(m, "jax")
        assert t.exact_single_layer
        x = rng.standard_normal((2, *shape))
        assert_allclose(np.asarray(t.build()(x)), _torch_out(m, x), atol=1e-10, err_msg=name)


def test_the_asymmetric_extra_row() -> None:
    """Keras 'same' ×2 transposed layers: k=4 is one ConvTranspose, k=3 needs a crop."""
    for k, single in ((4, True), (3, False)):
        layer = keras.layers.Conv2DTranspose(1, k, strides=2, padding="same")
        layer.build((1, 4, 4, 1))
        t = translate(layer, "torch")
        assert t.exact_single_layer is single
        if single:
            assert t.layers[0][1]["padding"] == (1, 1) and t.layers[0][1]["output_padding"] == (
                0,
                0,
            )
        else:
            assert [n for n, _ in t.layers] == ["ConvTranspose2d", "ZeroPad2d"]
            assert "not of that form" in t.notes


def test_keras_same_with_stride_depends_on_the_input() -> None:
    layer = keras.layers.Conv2D(1, 3, strides=2, padding="same")
    layer.build((1, 6, 7, 1))
    with pytest.raises(ValueError, match="input_shape must be given to translate"):
        translate(layer, "torch")
    even = translate(layer, "torch", input_shape=(1, 6, 6)).spec.pads
    odd = translate(layer, "torch", input_shape=(1, 7, 7)).spec.pads
    assert even == ((0, 1), (0, 1)) and odd == ((1, 1), (1, 1))


def test_refusals() -> None:
    with pytest.raises(ValueError, match="padding_mode must be 'zeros' to translate to Keras"):
        translate(torch.nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect"), "keras")
    with pytest.raises(ValueError, match="groups must be 1 to translate a transposed"):
        translate(torch.nn.ConvTranspose1d(2, 2, 3, groups=2), "keras")
    with pytest.raises(TypeError, match=r"to must be one of \('torch', 'keras', 'jax'\)"):
        translate(torch.nn.Conv1d(1, 1, 3), "tensorflow")
    with pytest.raises(TypeError, match=r"layer must be a torch\.nn Conv/ConvTranspose module"):
        translate(np.ones(3), "torch")
    with pytest.raises(TypeError, match="layer must hold exactly one convolution"):
        translate(torch.nn.Sequential(torch.nn.Conv1d(1, 1, 3), torch.nn.Conv1d(1, 1, 3)), "jax")
    with pytest.raises(ValueError, match="data_format must be"):
        translate(torch.nn.Conv1d(1, 1, 3), "keras", data_format="NCHW")


def test_spec_docstring_case_without_frameworks() -> None:
    spec = LayerSpec(True, np.ones((1, 1, 3)), None, (2,), (1,), 1, ((0, 1),))
    t = write_torch(spec)
    assert [name for name, _ in t.layers] == ["ConvTranspose1d", "ZeroPad1d"]
    assert t.layers[1][1]["padding"] == (0, -1)
