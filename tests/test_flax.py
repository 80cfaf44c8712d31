"""from_flax: flax.linen Conv / ConvTranspose with their params as maps, against Flax itself."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_allclose

from convmat.testing import dot_test

jax = pytest.importorskip("jax")
nn = pytest.importorskip("flax.linen")

from convmat._flax import from_flax  # noqa: E402


@pytest.fixture(autouse=True)
def x64() -> Iterator[None]:
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


def check(module: Any, sample: tuple[int, ...], seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, *sample))
    params = module.init(jax.random.key(seed), jax.numpy.asarray(x))
    params = jax.tree_util.tree_map(
        lambda v: jax.numpy.asarray(rng.standard_normal(v.shape)), params
    )
    want = np.asarray(module.apply(params, x))
    amap = from_flax(module, params, sample)
    assert amap.layout == "channels_last" and amap.output_shape == want.shape[1:]
    assert_allclose(amap(x), want, atol=1e-10)
    flat = x.reshape(2, -1)
    assert_allclose((amap.matrix @ flat.T).T + amap.offset, want.reshape(2, -1), atol=1e-10)
    if amap.matrix.shape[0] * amap.matrix.shape[1] < 40_000:
        jac = jax.jacfwd(lambda v: module.apply(params, v[None])[0])(x[0])
        assert_allclose(
            amap.matrix.toarray(), np.asarray(jac).reshape(amap.matrix.shape), atol=1e-12
        )
    dot_test(amap.operator)
    return amap


CONVS = [
    dict(kernel_size=(3,), strides=2, padding=p)
    for p in ("SAME", "VALID", 1, [(2, 0)], "CAUSAL", "CIRCULAR", "REFLECT")
] + [
    dict(kernel_size=(3, 2), strides=(1, 2), padding="SAME", kernel_dilation=(2, 1)),
    dict(kernel_size=(2, 3), padding=((1, 0), (2, 1)), input_dilation=(2, 1)),
    dict(kernel_size=(3, 3), padding="CIRCULAR", feature_group_count=2),
    dict(kernel_size=(2, 2, 2), strides=2, padding="VALID", use_bias=False),
]


@pytest.mark.parametrize("kwargs", CONVS, ids=range(len(CONVS)))
def test_conv(kwargs: dict[str, Any]) -> None:
    ndim = len(kwargs["kernel_size"])
    check(nn.Conv(features=4, **kwargs), (*(7,) * ndim, 4))


TRANSPOSED = [
    dict(kernel_size=(k,), strides=s, padding=p, transpose_kernel=t)
    for k, s, p, t in itertools.product((2, 3), (1, 2), ("SAME", "VALID", [(1, 2)]), (False, True))
] + [
    dict(kernel_size=(3, 4), strides=(2, 1), padding="SAME", kernel_dilation=(1, 2)),
    dict(kernel_size=(2, 2, 3), strides=2, padding="VALID", use_bias=False),
]


@pytest.mark.parametrize("kwargs", TRANSPOSED, ids=range(len(TRANSPOSED)))
def test_conv_transpose(kwargs: dict[str, Any]) -> None:
    ndim = len(kwargs["kernel_size"])
    check(nn.ConvTranspose(features=3, **kwargs), (*(5,) * ndim, 2))


def test_refusals() -> None:
    with pytest.raises(TypeError, match=r"module must be a flax\.linen Conv or ConvTranspose"):
        from_flax(nn.Dense(3), {"kernel": np.ones((2, 3))}, (2,))
    with pytest.raises(ValueError, match="params must hold Conv's 'kernel'"):
        from_flax(nn.Conv(2, (3,)), {"bias": np.ones(2)}, (5, 1))
    with pytest.raises(ValueError, match="padding 'CAUSAL' must be for a 1-d Conv"):
        from_flax(
            nn.Conv(2, (3, 3), padding="CAUSAL"), {"kernel": np.ones((3, 3, 1, 2))}, (5, 5, 1)
        )
    with pytest.raises(ValueError, match="padding 'CIRCULAR' must not be used"):
        from_flax(
            nn.ConvTranspose(2, (3,), padding="CIRCULAR"), {"kernel": np.ones((3, 1, 2))}, (5, 1)
        )


def test_import_convmat_imports_no_flax_jax_or_keras() -> None:
    code = (
        "import sys, convmat; "
        "print(sorted(m for m in ('flax', 'jax', 'keras') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
