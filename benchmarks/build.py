"""Building the sparse matrix of a layer: convmat against the obvious COO -> CSR construction.

Run: ``python benchmarks/build.py [--repeat 5]``. One thread, float32 weights; both
constructions are timed in this process on the same layers and checked to agree.
The baseline is what one writes first: every (output channel, output position,
input channel, tap) quadruple by broadcasting, masked for padding, into
``scipy.sparse.coo_array(...).tocsr()``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp
from _common import machine_header, prepare

import convmat

# name: (input_shape (C, H, W), weight_shape, stride, padding, groups, kind)
LAYERS: dict[str, tuple[tuple[int, ...], tuple[int, ...], int, int, int, str]] = {
    "A 1x512x512 k3 s1 p1": ((1, 512, 512), (1, 1, 3, 3), 1, 1, 1, "single-channel"),
    "D 1x1024x1024 k5 s2 p2": ((1, 1024, 1024), (1, 1, 5, 5), 2, 2, 1, "single-channel"),
    "B 64x56x56 -> 64 k3 s1 p1": ((64, 56, 56), (64, 64, 3, 3), 1, 1, 1, "channel-heavy"),
    "C 32x64x64 -> 64 k4 s2 p1": ((32, 64, 64), (64, 32, 4, 4), 2, 1, 1, "channel-heavy"),
    "E depthwise 128x64x64 k3": ((128, 64, 64), (128, 1, 3, 3), 1, 1, 128, "depthwise"),
}


def coo_baseline(
    input_shape: tuple[int, ...],
    weight: np.ndarray[Any, Any],
    stride: int,
    padding: int,
    groups: int,
) -> sp.csr_array:
    """The obvious vectorised construction (2-d): broadcast, mask, COO, convert."""
    c_in, h, w = input_shape
    c_out, per_group, kh, kw = weight.shape
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (w + 2 * padding - kw) // stride + 1
    co = np.arange(c_out)[:, None, None, None, None, None, None]
    oy = np.arange(oh)[None, :, None, None, None, None, None]
    ox = np.arange(ow)[None, None, :, None, None, None, None]
    ci = np.arange(per_group)[None, None, None, :, None, None, None]
    ty = np.arange(kh)[None, None, None, None, :, None, None]
    tx = np.arange(kw)[None, None, None, None, None, :, None]
    iy = (oy * stride + ty - padding)[..., 0]
    ix = (ox * stride + tx - padding)[..., 0]
    shape = (c_out, oh, ow, per_group, kh, kw)
    valid = np.broadcast_to((iy >= 0) & (iy < h) & (ix >= 0) & (ix < w), shape)
    channel = (co[..., 0] // (c_out // groups)) * per_group + ci[..., 0]
    rows = np.broadcast_to((co[..., 0] * oh + oy[..., 0]) * ow + ox[..., 0], shape)[valid]
    cols = np.broadcast_to((channel * h + iy) * w + ix, shape)[valid]
    data = np.broadcast_to(weight[:, None, None], shape)[valid]
    return sp.coo_array((data, (rows, cols)), shape=(c_out * oh * ow, c_in * h * w)).tocsr()


def best(fn: Callable[[], sp.csr_array], repeat: int) -> tuple[float, sp.csr_array]:
    """Median seconds of ``repeat`` calls (memory freed between calls, outside the timing)."""
    times = []
    result = fn()
    for _ in range(repeat):
        del result
        gc.collect()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    prepare(1)
    print(machine_header(1))
    print("one thread; times are medians; both constructions give identical matrices\n")
    header = (
        f"{'layer':<28} {'kind':<15} {'nnz':>11} {'CSR MiB':>8} {'C ms':>8} {'M nnz/s':>8} "
        f"{'Cᵀ ms':>8} {'COO ms':>8} {'C vs COO':>8}"
    )
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    for name, (input_shape, weight_shape, stride, padding, groups, kind) in LAYERS.items():
        weight = rng.standard_normal(weight_shape).astype(np.float32)
        kw = {"stride": stride, "padding": padding, "groups": groups}
        t_c, c = best(partial(convmat.conv_matrix, input_shape, weight, **kw), args.repeat)
        out = (
            weight_shape[0],
            *convmat.conv_output_shape(
                input_shape[1:], weight_shape[2:], stride=stride, padding=padding
            ),
        )
        t_t, ct = best(partial(convmat.conv_transpose_matrix, out, weight, **kw), args.repeat)
        del ct
        baseline = partial(coo_baseline, input_shape, weight, stride, padding, groups)
        t_coo, reference = best(baseline, max(1, args.repeat // 2))
        assert (c != reference).nnz == 0 and c.nnz == reference.nnz, name
        del reference
        mib = (c.data.nbytes + c.indices.nbytes + c.indptr.nbytes) / 2**20
        print(
            f"{name:<28} {kind:<15} {c.nnz:>11,} {mib:>8.1f} {t_c * 1e3:>8.1f} "
            f"{c.nnz / t_c / 1e6:>8.0f} {t_t * 1e3:>8.1f} {t_coo * 1e3:>8.1f} "
            f"{t_coo / t_c:>7.1f}x"
        )
        del c
        gc.collect()
    print("\nC vs COO = COO->CSR time / convmat time (higher is better); int32 indices.")


if __name__ == "__main__":
    main()
