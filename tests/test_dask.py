"""convmat.dask: every blockwise function equals the in-memory one, on a dask.distributed cluster.

One module-scoped LocalCluster (2 worker processes, 1 thread each, a small memory
limit) runs every test. Small-integer float64 data makes blockwise and in-memory
results equal exactly (``assert_array_equal``); float32 is bounded separately.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import convmat
from tests.strategies import (
    avg_pool_cases,
    conv_layers,
    conv_transpose_layers,
    geometry,
    pool_cases,
    resize_cases,
)

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")

import convmat.dask as cd  # noqa: E402

LIMIT = 256 * 2**20  # each worker's memory limit, bytes

SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """Two single-threaded worker processes; spilling and pausing off, so memory is what the
    job holds (a worker above 95% of its limit would still be restarted)."""
    with dask.config.set(
        {
            "distributed.admin.system-monitor.interval": "20ms",
            "distributed.worker.memory.target": False,
            "distributed.worker.memory.spill": False,
            "distributed.worker.memory.pause": False,
        }
    ):
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            memory_limit=LIMIT,
            dashboard_address=None,
            worker_dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        with cluster, distributed.Client(cluster) as c:
            yield c


# --------------------------------------------------------------------------- random chunkings


@st.composite
def partitions(draw: Any, n: int) -> tuple[int, ...]:
    """An arbitrary chunking of an axis of length ``n`` (irregular allowed)."""
    cuts = draw(st.sets(st.integers(1, n - 1), max_size=min(4, n - 1))) if n > 1 else set()
    edges = [0, *sorted(cuts), n]
    return tuple(b - a for a, b in itertools.pairwise(edges))


@st.composite
def aligned(draw: Any, n: int, multiple: int) -> tuple[int, ...] | int:
    """A regular chunking whose size is a multiple of ``multiple`` (any chunking for 1)."""
    if multiple == 1:
        return draw(partitions(n))  # type: ignore[no-any-return]
    return multiple * draw(st.integers(1, max(1, -(-n // multiple))))


def _tuple(v: Any, ndim: int) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * ndim


def _data(draw: Any, shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray[Any, Any]:
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).integers(-3, 4, shape).astype(dtype)


# --------------------------------------------------------------------------- equality


@SETTINGS
@given(layer=conv_layers(max_dims=2, max_size=9), data=st.data())
def test_conv_equals_in_memory(client: Any, layer: dict[str, Any], data: Any) -> None:
    ndim = len(layer["input_shape"]) - 1
    batch = data.draw(st.integers(1, 3))
    x = _data(data.draw, (batch, *layer["input_shape"]))
    w = _data(data.draw, layer["weight_shape"])
    b = _data(data.draw, (layer["weight_shape"][0],)) if data.draw(st.booleans()) else None
    stride = _tuple(layer["stride"], ndim)
    chunks = (
        data.draw(partitions(batch)),
        -1,
        *(data.draw(aligned(n, s)) for n, s in zip(x.shape[2:], stride, strict=True)),
    )
    xd = da.from_array(x, chunks=chunks)
    got = cd.conv(xd, w, b, **geometry(layer))
    assert_array_equal(got.compute(), convmat.conv(x, w, b, **geometry(layer)))


@SETTINGS
@given(layer=conv_transpose_layers(max_dims=2, max_size=6), data=st.data())
def test_conv_transpose_equals_in_memory(client: Any, layer: dict[str, Any], data: Any) -> None:
    batch = data.draw(st.integers(1, 2))
    x = _data(data.draw, (batch, *layer["input_shape"]))
    w = _data(data.draw, layer["weight_shape"])
    b = _data(data.draw, (layer["weight_shape"][1] * layer["groups"],))
    chunks = (batch, -1, *(data.draw(partitions(n)) for n in x.shape[2:]))
    got = cd.conv_transpose(da.from_array(x, chunks=chunks), w, b, **geometry(layer))
    assert_array_equal(got.compute(), convmat.conv_transpose(x, w, b, **geometry(layer)))


@SETTINGS
@given(case=pool_cases(max_dims=2, max_size=10), data=st.data())
def test_max_pool_equals_in_memory(client: Any, case: dict[str, Any], data: Any) -> None:
    spatial = case.pop("spatial")
    x = _data(data.draw, (2, 3, *spatial))
    stride = _tuple(case["stride"] or case["kernel_size"], len(spatial))
    chunks = (
        1,
        data.draw(partitions(3)),
        *(data.draw(aligned(n, s)) for n, s in zip(spatial, stride, strict=True)),
    )
    y, i = cd.max_pool(da.from_array(x, chunks=chunks), return_indices=True, **case)
    y_ref, i_ref = convmat.max_pool(x, return_indices=True, **case)
    assert_array_equal(y.compute(), y_ref)
    finite = np.isfinite(y_ref)  # an empty window's index is past it; only real maxima compared
    assert_array_equal(i.compute()[finite], i_ref[finite])


@SETTINGS
@given(case=avg_pool_cases(max_dims=2, max_size=10), data=st.data())
def test_avg_pool_equals_in_memory(client: Any, case: dict[str, Any], data: Any) -> None:
    spatial = case.pop("spatial")
    case.pop("torch_ok")
    x = _data(data.draw, (2, 2, *spatial))
    stride = _tuple(case["stride"] or case["kernel_size"], len(spatial))
    chunks = (
        data.draw(partitions(2)),
        1,
        *(data.draw(aligned(n, s)) for n, s in zip(spatial, stride, strict=True)),
    )
    got = cd.avg_pool(da.from_array(x, chunks=chunks), **case)
    assert_array_equal(got.compute(), convmat.avg_pool(x, **case))


@SETTINGS
@given(case=resize_cases(max_size=9), data=st.data())
def test_upsample_equals_in_memory(client: Any, case: dict[str, Any], data: Any) -> None:
    spatial = case.pop("spatial")
    x = _data(data.draw, (2, 2, *spatial))
    chunks = (1, 2, *(data.draw(partitions(n)) for n in spatial))
    got = cd.upsample(da.from_array(x, chunks=chunks), **case).compute()
    want = convmat.upsample(x, **case)
    if case["mode"] in ("nearest", "nearest-exact", "bed_of_nails"):
        assert_array_equal(got, want)
    else:  # short axes are a dense GEMM in memory, gathers per block: rounding only
        assert_allclose(got, want, rtol=1e-13, atol=1e-13)


def test_upsample_dyadic_weights_are_exact(client: Any) -> None:
    x = np.random.default_rng(3).integers(-3, 4, (1, 2, 300, 7)).astype(float)
    xd = da.from_array(x, chunks=(1, 2, 64, 3))
    got = cd.upsample(xd, scale_factor=2, mode="bilinear").compute()
    assert_array_equal(got, convmat.upsample(x, scale_factor=2, mode="bilinear"))


def test_unbatched_and_float32_bound(client: Any) -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((8, 40, 33)).astype(np.float32)
    w = rng.standard_normal((6, 8, 3, 3)).astype(np.float32)
    got = cd.conv(da.from_array(x, chunks=(8, 16, 11)), w, padding="same").compute()
    want = convmat.conv(x, w, padding="same")
    assert got.shape == want.shape == (6, 40, 33) and got.dtype == np.float32
    # Blockwise GEMMs may sum the C_in·∏k products in another order: the difference is
    # bounded by the summation error bound, 2·n·eps·Σ|w||x| with n = C_in·∏k terms.
    scale = convmat.conv(np.abs(x), np.abs(w), padding="same")
    n = 8 * 9
    assert np.all(np.abs(got - want) <= 2 * n * np.finfo(np.float32).eps * scale)


def test_padding_modes_only_at_true_borders(client: Any) -> None:
    x = np.arange(2 * 13 * 11, dtype=float).reshape(1, 2, 13, 11) % 7
    w = np.arange(2 * 2 * 3 * 3, dtype=float).reshape(2, 2, 3, 3) % 5 - 2
    for mode in ("reflect", "replicate", "circular"):
        got = cd.conv(da.from_array(x, chunks=(1, 2, 4, 3)), w, padding=2, padding_mode=mode)
        assert_array_equal(got.compute(), convmat.conv(x, w, padding=2, padding_mode=mode))


def test_regular_output_chunks_write_to_zarr(client: Any, tmp_path: Any) -> None:
    x = np.random.default_rng(5).integers(-3, 4, (2, 1, 64, 48)).astype(float)
    src = tmp_path / "x.zarr"
    da.from_array(x, chunks=(1, 1, 16, 16)).to_zarr(str(src))
    y = cd.conv(da.from_zarr(str(src)), np.ones((3, 1, 3, 3)), stride=2, padding=1)
    assert y.chunks[2:] == ((8,) * 4, (8,) * 3)
    y.to_zarr(str(tmp_path / "y.zarr"))
    assert_array_equal(
        zarr.open_array(str(tmp_path / "y.zarr"))[...],
        convmat.conv(x, np.ones((3, 1, 3, 3)), stride=2, padding=1),
    )


# --------------------------------------------------------------------------- rechunking


def test_misaligned_chunks_are_rechunked_with_a_warning(client: Any) -> None:
    x = np.arange(60.0).reshape(1, 1, 60) % 5
    with pytest.warns(cd.RechunkWarning, match=r"axis 2 must be a multiple of 3 \(the stride\)"):
        y = cd.conv(da.from_array(x, chunks=(1, 1, 10)), np.ones((1, 1, 3)), stride=3)
    assert y.chunks[2] == (3, 3, 3, 3, 3, 3, 2) or len(set(y.chunks[2][:-1])) == 1
    assert_array_equal(y.compute(), convmat.conv(x, np.ones((1, 1, 3)), stride=3))
    with pytest.warns(cd.RechunkWarning, match=r"multiple of 2"):
        cd.max_pool(da.from_array(x, chunks=(1, 1, 7)), 2)
    with pytest.warns(cd.RechunkWarning, match=r"multiple of 2"):
        cd.avg_pool(da.from_array(x, chunks=(1, 1, 7)), 2)


def test_split_channels_are_rechunked_with_a_warning(client: Any) -> None:
    x = np.arange(48.0).reshape(1, 4, 12) % 3
    w = np.ones((2, 4, 3))
    with pytest.warns(cd.RechunkWarning, match=r"channels \(axis 1\) in one chunk"):
        y = cd.conv(da.from_array(x, chunks=(1, 2, 6)), w)
    assert_array_equal(y.compute(), convmat.conv(x, w))
    with pytest.warns(cd.RechunkWarning, match=r"channels \(axis 1\) in one chunk"):
        cd.conv_transpose(da.from_array(x, chunks=(1, 2, 6)), np.ones((4, 2, 3)))


# --------------------------------------------------------------------------- affine maps


def test_apply_affine_map_per_batch_chunk(client: Any) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(3 * 6 * 5, 4)
    ).double()
    amap = convmat.from_torch(model, (2, 6, 5))
    x = np.random.default_rng(6).integers(-3, 4, (7, 2, 6, 5)).astype(float)
    got = cd.apply(amap, da.from_array(x, chunks=(3, 2, 6, 5)))
    assert got.shape == (7, 4) and got.chunks[0] == (3, 3, 1)
    assert_allclose(got.compute(), amap(x), rtol=1e-12, atol=1e-12)


def test_apply_refuses(client: Any) -> None:
    torch = pytest.importorskip("torch")
    amap = convmat.from_torch(torch.nn.Conv1d(1, 1, 3).double(), (1, 8))
    with pytest.raises(ValueError, match=r"chunked along the batch axis only .* axis 2"):
        cd.apply(amap, da.zeros((4, 1, 8), chunks=(2, 1, 4)))
    with pytest.raises(
        ValueError, match=r"x must have shape \(N, \*map.input_shape\) = \(N, 1, 8\)"
    ):
        cd.apply(amap, da.zeros((4, 1, 9)))
    with pytest.raises(TypeError, match=r"map must be a convmat\.AffineMap"):
        cd.apply("conv", da.zeros((4, 1, 8)))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- larger than memory


def _band(r0: int, rows: int, width: int) -> np.ndarray[Any, Any]:
    """Rows of a cheap, reproducible small-integer image."""
    i = np.arange(r0, r0 + rows)[:, None]
    j = np.arange(width)[None, :]
    return ((i * 7 + j * 3) % 11 - 5).astype(np.float32)


def _peak_memory(dask_worker: Any) -> float:
    return float(max(dask_worker.monitor.quantities["memory"]))


def test_zarr_to_zarr_larger_than_a_worker(client: Any, tmp_path: Any) -> None:
    height, width, rows = 8192, 24576, 32  # 768 MiB of float32: 3 worker limits
    assert height * width * 4 >= 3 * LIMIT
    src = zarr.create_array(
        str(tmp_path / "in.zarr"),
        shape=(1, 1, height, width),
        chunks=(1, 1, rows, width),
        dtype="float32",
        compressors=None,
    )
    for r0 in range(0, height, rows):
        src[0, 0, r0 : r0 + rows] = _band(r0, rows, width)
    workers = set(client.scheduler_info()["workers"])
    w = np.array([[[[1, 0, -1], [2, 0, -2], [1, 0, -1]]]], np.float32)
    x = da.from_zarr(str(tmp_path / "in.zarr"))
    y = cd.conv(x, w, padding=1)
    y.to_zarr(str(tmp_path / "out.zarr"), compressors=None)
    peaks = client.run(_peak_memory)
    assert set(client.scheduler_info()["workers"]) == workers  # no worker was restarted
    assert max(peaks.values()) < LIMIT, {k: f"{v / 2**20:.0f} MiB" for k, v in peaks.items()}
    out = zarr.open_array(str(tmp_path / "out.zarr"))
    for r0 in (0, 1000, height - 130):  # bands across chunk borders, the borders included
        lo, hi = max(r0 - 1, 0), min(r0 + 131, height)
        band = convmat.conv(
            _band(lo, hi - lo, width)[None, None],
            w,
            padding=((1 - (r0 - lo), r0 + 131 - hi), (1, 1)),
        )
        assert_array_equal(out[0, 0, r0 : r0 + 130], band[0, 0])


# --------------------------------------------------------------------------- matrices in blocks


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=conv_layers(max_dims=3, max_size=6), data=st.data())
def test_conv_matrix_blocks_equal_conv_matrix(
    client: Any, layer: dict[str, Any], data: Any, tmp_path_factory: Any
) -> None:
    w = _data(data.draw, layer["weight_shape"])
    kwargs = geometry(layer)
    want = convmat.conv_matrix(layer["input_shape"], w, **kwargs)
    rows = data.draw(st.integers(1, want.shape[0] + 1))
    fmt = data.draw(st.sampled_from(["npz", "zarr", None]))
    path = None if fmt is None else tmp_path_factory.mktemp("blocks")
    blocks = cd.conv_matrix_blocks(
        layer["input_shape"], w, rows_per_block=rows, path=path, format=fmt or "npz", **kwargs
    )
    assert len(blocks) == -(-want.shape[0] // rows)
    got = blocks.tocsr()
    assert got.shape == want.shape and (got != want).nnz == 0
    assert_array_equal(got.indices, want.indices)
    if path is not None:
        assert (cd.open_matrix_blocks(path).tocsr() != want).nnz == 0
    op, ref = blocks.operator, convmat.conv_operator(layer["input_shape"], w, **kwargs)
    x = _data(data.draw, (want.shape[1],))
    y = _data(data.draw, (want.shape[0],))
    assert_array_equal(op @ x, ref @ x)
    assert_array_equal(op.rmatvec(y), ref.rmatvec(y))
    assert_array_equal(op.matmat(np.stack([x, 2 * x], 1)), ref.matmat(np.stack([x, 2 * x], 1)))
    assert np.vdot(y, op @ x) == np.vdot(op.H @ y, x)  # the dot test, exact on small integers


def test_matrix_blocks_default_rows_and_memory(client: Any) -> None:
    w = np.ones((4, 2, 3, 3))
    blocks = cd.conv_matrix_blocks((2, 40, 40), w, padding=1)
    assert len(blocks) == 1 and blocks.shape == (4 * 1600, 2 * 1600)
    with pytest.raises(MemoryError, match=r"conv matrix block .* max_bytes"):
        cd.conv_matrix_blocks((2, 40, 40), w, padding=1, rows_per_block=1600, max_bytes=1000)
    with pytest.raises(MemoryError, match="use the blocks"):
        blocks.tocsr(max_bytes=1000)


def test_matrix_blocks_refuse() -> None:
    w = np.ones((1, 1, 2))
    with pytest.raises(ValueError, match="rows_per_block must be >= 1; got 0"):
        cd.conv_matrix_blocks((1, 5), w, rows_per_block=0)
    with pytest.raises(TypeError, match="rows_per_block must be an int"):
        cd.conv_matrix_blocks((1, 5), w, rows_per_block=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="format must be one of"):
        cd.conv_matrix_blocks((1, 5), w, format="hdf5")
    with pytest.raises(ValueError, match="kernel_size"):
        cd.conv_matrix_blocks((1, 1), w)
    with pytest.raises(FileNotFoundError):
        cd.open_matrix_blocks(os.devnull + "-missing")


# --------------------------------------------------------------------------- errors


def test_errors() -> None:
    x = da.zeros((1, 2, 8, 8), chunks=4)
    w = np.ones((3, 2, 3, 3))
    with pytest.raises(TypeError, match=r"x must be a dask\.array\.Array"):
        cd.conv(np.zeros((1, 2, 8, 8)), w)
    with pytest.raises(TypeError, match="x must be a real or complex numeric array"):
        cd.conv(da.from_array(np.array([["a"]])), w)
    with pytest.raises(ValueError, match=r"weight must have shape \(C_out, C_in // groups"):
        cd.conv(x, np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"x must have shape \(N, C_in, \*spatial\)"):
        cd.conv(da.zeros((8,)), w)
    with pytest.raises(ValueError, match=r"bias must have shape \(C_out,\) = \(3,\)"):
        cd.conv(x, w, np.ones(2))
    with pytest.raises(ValueError, match="x channels must equal"):
        cd.conv(x, np.ones((3, 4, 3, 3)))
    with pytest.raises(ValueError, match=r"bias must have shape \(C_out,\) = \(4,\)"):
        cd.conv_transpose(x, np.ones((2, 4, 3, 3)), np.ones(3))
    with pytest.raises(ValueError, match="method must be one of"):
        cd.conv_transpose(x, np.ones((2, 4, 3, 3)), method="fft?")
    with pytest.raises(ValueError, match="padding must be <= kernel_size // 2"):
        cd.max_pool(x, 2, padding=2)
    with pytest.raises(TypeError, match="return_indices must be a bool"):
        cd.max_pool(x, 2, return_indices=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="x must be a real array"):
        cd.max_pool(x.astype(complex), 2)
    with pytest.raises(ValueError, match="divisor_override"):
        cd.avg_pool(x, 2, divisor_override=0)
    with pytest.raises(ValueError, match="mode must not be 'area'"):
        cd.upsample(x, size=(3, 3), mode="area")
    with pytest.raises(ValueError, match="size or scale_factor must be given"):
        cd.upsample(x)


def test_import_convmat_does_not_import_dask() -> None:
    import subprocess
    import sys

    code = "import sys, convmat; print('dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
