"""Throughput of ``convmat.dask.conv`` on a zarr image larger than memory, against dask-image.

Run (each step separately; the data lives under ``--data``):

* ``python benchmarks/dask.py make``  — write the synthetic input (zarr, compressed);
* ``python benchmarks/dask.py run``   — the measured runs, printed as a table;
* ``python benchmarks/dask.py clean`` — delete the data.

``--size`` sets the side of the square image (default 100 000: 40 GB of float32).
"""

from __future__ import annotations

import os
import sys

# ``python benchmarks/dask.py`` puts benchmarks/ first on sys.path, where this very file
# would shadow the dask package itself: drop the script's directory before importing dask.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import dask  # noqa: E402
import numpy as np  # noqa: E402
import zarr  # noqa: E402
from zarr.codecs import BloscCodec  # noqa: E402

ROWS = 250  # rows per chunk: full-width row bands, 100 MB of float32 at the default size


def image_band(r0: int, rows: int, width: int, noise: np.ndarray) -> np.ndarray:
    """Rows ``r0 … r0+rows`` of the synthetic image: smooth structure, texture, sensor noise.

    Values are 8-bit levels / 255 as float32 (a photograph's dynamic range).
    """
    i = np.arange(r0, r0 + rows, dtype=np.float32)[:, None]
    j = np.arange(width, dtype=np.float32)[None, :]
    # Separable terms (outer products) keep it cheap: sin(a + b) = sin a cos b + cos a sin b.
    img = 60 * np.sin(i / 211) * np.cos(j / 157)
    img += 30 * (np.sin(i / 23) * np.cos(2 * j / 23) + np.cos(i / 23) * np.sin(2 * j / 23))
    img += 128
    img += np.roll(noise[:rows, :width], r0 % 997, axis=1)
    np.clip(np.round(img), 0, 255, out=img)
    img /= 255
    return img


def make(path: str, size: int) -> None:
    store = zarr.create_array(
        store=os.path.join(path, "input.zarr"),
        shape=(1, 1, size, size),
        chunks=(1, 1, ROWS, size),
        dtype="float32",
        compressors=BloscCodec(cname="zstd", clevel=1, shuffle="bitshuffle"),
        overwrite=True,
    )
    noise = np.random.default_rng(0).integers(-8, 9, size=(ROWS, size)).astype(np.float32)
    start = time.perf_counter()
    for r0 in range(0, size, ROWS):
        rows = min(ROWS, size - r0)
        store[0, 0, r0 : r0 + rows] = image_band(r0, rows, size, noise)
        if r0 // ROWS % 40 == 0:
            done = (r0 + rows) / size
            print(f"{done:6.1%} written, {time.perf_counter() - start:.0f} s", flush=True)
    print(f"input: {store.nbytes / 1e9:.1f} GB logical in {time.perf_counter() - start:.0f} s")


KERNEL = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 16  # a 3x3 binomial blur


def machine() -> str:
    """Cores, memory, load, BLAS and versions, for the top of the output."""
    import importlib.metadata as md

    import threadpoolctl

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    blas = "; ".join(
        f"{p['internal_api']} {p.get('version')} ({p['user_api']})"
        for p in threadpoolctl.threadpool_info()
    )
    versions = ", ".join(
        f"{name} {md.version(name)}"
        for name in ("numpy", "scipy", "dask", "distributed", "zarr", "dask-image", "convmat")
    )
    return (
        f"{os.cpu_count()} cores, {mem:.1f} GiB memory, load average "
        f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}\nBLAS: {blas}\n{versions}"
    )


def _peak(dask_worker: Any) -> float:
    return float(max(dask_worker.monitor.quantities["memory"]))


def _store(path: str) -> Any:
    return zarr.storage.LocalStore(path)


COMPRESSORS = BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle")


def one_run(
    contender: str, workers: int, src: str, out: str, rows: int, limit: str
) -> dict[str, Any]:
    """One measured zarr-to-zarr pass on a fresh cluster; returns seconds and peak memory."""
    import dask.array as da
    from distributed import Client, LocalCluster, progress

    import convmat.dask

    shutil.rmtree(out, ignore_errors=True)
    with dask.config.set(
        {
            "distributed.admin.system-monitor.interval": "100ms",
            "distributed.worker.memory.spill": False,
            "distributed.worker.memory.target": False,
        }
    ):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=limit,
            dashboard_address=None,
            worker_dashboard_address=None,
            silence_logs=50,
        )
        with cluster, Client(cluster) as client:
            x = da.from_zarr(src)
            if rows:
                x = x[:, :, :rows]
            if contender == "convmat":
                y = convmat.dask.conv(x, KERNEL[None, None], padding=1)
            else:
                from dask_image import ndfilters

                y = ndfilters.correlate(x[0, 0], KERNEL, mode="constant", cval=0.0)[None, None]
            job = y.to_zarr(out, compressors=COMPRESSORS, compute=False)
            start = time.perf_counter()
            future = client.compute(job)
            if PROGRESS:
                progress(future)
            future.result()
            seconds = time.perf_counter() - start
            peaks = client.run(_peak)
            restarted = len(client.scheduler_info()["workers"]) != workers
    return {
        "contender": contender,
        "workers": workers,
        "seconds": seconds,
        "gbps": x.nbytes / 1e9 / seconds,
        "peak": max(peaks.values()) / 2**30,
        "restarted": restarted,
    }


PROGRESS = False


def first_rows(out: str, rows: int = 600) -> np.ndarray:
    """The first rows of an output, kept to compare the contenders once the store is gone."""
    return np.asarray(zarr.open_array(out)[0, 0, :rows])


def run(path: str, rows: int, limit: str, plan: list[tuple[str, int]]) -> None:
    src = os.path.join(path, "input.zarr")
    size = zarr.open_array(src).nbytes
    print(machine())
    used = rows * zarr.open_array(src).shape[3] * 4 if rows else size
    print(
        f"input: {src}, {used / 1e9:.1f} GB of float32 (zarr, blosc zstd-1 bitshuffle, "
        f"{ROWS}-row bands); output: zarr, blosc lz4 bitshuffle"
    )
    print(f"layer: 3x3 binomial, padding 1 (zeros); workers: 1 thread, memory_limit {limit}")
    results = []
    bands: dict[str, np.ndarray] = {}
    compared = False
    for contender, workers in plan:
        out = os.path.join(path, f"out-{contender}.zarr")
        r = one_run(contender, workers, src, out, rows, limit)
        results.append(r)
        print(
            f"{r['contender']:>10} {r['workers']} worker(s): {r['seconds']:7.1f} s  "
            f"{r['gbps']:.3f} GB/s  peak worker memory {r['peak']:.2f} GiB"
            f"{'  (a worker was restarted!)' if r['restarted'] else ''}",
            flush=True,
        )
        band = first_rows(out)
        shutil.rmtree(out, ignore_errors=True)  # one output on disk at a time
        if contender in bands:
            diff = float(np.abs(band - bands[contender]).max())
            print(f"   max |difference| to the first {contender} run, first rows: {diff:.2e}")
        bands.setdefault(contender, band)
        if {"convmat", "dask-image"} <= bands.keys() and not compared:
            diff = float(np.abs(bands["convmat"] - bands["dask-image"]).max())
            print(f"   max |convmat - dask-image| on the first rows: {diff:.2e}")
            compared = True
    by = {(r["contender"], r["workers"]): r["gbps"] for r in results}
    if ("convmat", 1) in by and ("convmat", 2) in by:
        print(f"convmat speed-up 1 -> 2 workers: {by[('convmat', 2)] / by[('convmat', 1)]:.2f}x")
    for w in (1, 2):
        if ("convmat", w) in by and ("dask-image", w) in by:
            print(
                f"convmat / dask-image, {w} worker(s): "
                f"{by[('convmat', w)] / by[('dask-image', w)]:.2f}x"
            )
    print(f"load average after: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")


def main() -> None:
    global PROGRESS
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("step", choices=("make", "run", "clean"))
    parser.add_argument("--data", default="/tmp/convmat_dask_bench")
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=0, help="use the first rows only (0: all)")
    parser.add_argument("--limit", default="4GiB", help="each worker's memory limit")
    parser.add_argument(
        "--plan",
        default="convmat:2,dask-image:2,convmat:1",
        help="contender:workers runs, in order",
    )
    parser.add_argument("--progress", action="store_true", help="show dask's progress bar")
    args = parser.parse_args()
    PROGRESS = args.progress
    if args.step == "make":
        make(args.data, args.size)
    elif args.step == "run":
        plan = [(c, int(w)) for c, w in (p.split(":") for p in args.plan.split(","))]
        run(args.data, args.rows, args.limit, plan)
    else:
        shutil.rmtree(args.data, ignore_errors=True)


if __name__ == "__main__":
    main()
