"""Speed of convmat's upsampling and pooling against PyTorch, and of matrix against fast path.

Run: ``python benchmarks/upsample.py [--reps 7] [--rounds 5] [--threads 1]``.

Every library is pinned to the same number of threads (threadpoolctl for the BLAS
libraries, ``torch.set_num_threads``). Each figure is the median over ``--rounds``
rounds of the median of ``--reps`` timed calls after a warm-up; ratios are taken
round by round (the peers run interleaved, so a busy machine slows both sides of
a ratio alike) and their median reported.

Data: a batch of 8×64 channel planes of 64×64, float32 (the issue's case).

* ``upsample`` against ``F.interpolate`` (target: within 2× of torch);
* ``matrix``: the same resize as ``upsample_matrix`` applied to all 512 planes,
  ``(U @ X.reshape(512, -1).T).T`` copied back to the batch layout — a reference
  and teaching path, timed against the fast path (``build`` is the matrix's
  construction, once; SciPy's sparse-times-dense product is single-threaded);
* ``max_pool`` (kernel 2, with indices) and ``max_unpool`` against
  ``F.max_pool2d`` / ``F.max_unpool2d``, for scale.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _common import machine_header, median_time, prepare

import convmat

SHAPE = (8, 64, 64, 64)
TARGET = 2.0
RESIZES = {  # name: upsample / F.interpolate keyword arguments
    "nearest x2": {"scale_factor": 2, "mode": "nearest"},
    "bilinear x2": {"scale_factor": 2, "mode": "bilinear", "align_corners": False},
    "bicubic x2": {"scale_factor": 2, "mode": "bicubic", "align_corners": False},
}


def rounds(calls: dict[str, Callable[[], Any]], reps: int, n: int) -> dict[str, list[float]]:
    """Per call, one median time (s) per round; the calls interleave within a round."""
    out: dict[str, list[float]] = {key: [] for key in calls}
    for _ in range(n):
        for key, fn in calls.items():
            out[key].append(median_time(fn, reps))
    return out


def ratio(times: dict[str, list[float]], top: str, bottom: str) -> float:
    return statistics.median(a / b for a, b in zip(times[top], times[bottom], strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    f = torch.nn.functional
    limits = prepare(args.threads, torch)
    print(machine_header(args.threads, torch))
    print(f"data: {'x'.join(map(str, SHAPE))} float32")
    print(f"timing: median of {args.reps} calls, median over {args.rounds} rounds\n")

    x = np.random.default_rng(0).standard_normal(SHAPE, dtype=np.float32)
    xt = torch.from_numpy(x)
    planes = x.reshape(-1, SHAPE[2] * SHAPE[3])
    header = (
        f"{'case':13} {'convmat ms':>10} {'torch ms':>9} {'ratio':>6} {'target':>6} "
        f"{'matrix ms':>9} {'matrix/fast':>11} {'build ms':>8} {'max rel err':>11}"
    )
    print(header)
    print("-" * len(header))
    for name, kwargs in RESIZES.items():
        start = time.perf_counter()
        U = convmat.upsample_matrix(SHAPE[2:], dtype=np.float32, **kwargs)
        build = time.perf_counter() - start
        calls = {
            "convmat": lambda kw=kwargs: convmat.upsample(x, **kw),
            "torch": lambda kw=kwargs: f.interpolate(xt, **kw),
            "matrix": lambda u=U: (u @ planes.T).T.reshape(*SHAPE[:2], -1),  # copies to NCHW
        }
        times = rounds(calls, args.reps, args.rounds)
        ours = convmat.upsample(x, **kwargs)
        ref = f.interpolate(xt, **kwargs).numpy()
        via = (U @ planes.T).T.reshape(ref.shape)
        err = max(np.abs(a - ref).max() for a in (ours, via)) / np.abs(ref).max()
        ms = {key: 1e3 * statistics.median(v) for key, v in times.items()}
        print(
            f"{name:13} {ms['convmat']:10.2f} {ms['torch']:9.2f} "
            f"{ratio(times, 'convmat', 'torch'):6.2f} {TARGET:6.1f} {ms['matrix']:9.2f} "
            f"{ratio(times, 'matrix', 'convmat'):11.2f} {1e3 * build:8.2f} {err:11.1e}"
        )

    y, i = convmat.max_pool(x, 2, return_indices=True)
    yt, it = f.max_pool2d(xt, 2, return_indices=True)
    pools = {
        "max_pool k2": {
            "convmat": lambda: convmat.max_pool(x, 2, return_indices=True),
            "torch": lambda: f.max_pool2d(xt, 2, return_indices=True),
        },
        "max_unpool k2": {
            "convmat": lambda: convmat.max_unpool(y, i, 2),
            "torch": lambda: f.max_unpool2d(yt, it, 2),
        },
    }
    exact = np.array_equal(y, yt.numpy()) and np.array_equal(i, it.numpy())
    exact = exact and np.array_equal(convmat.max_unpool(y, i, 2), f.max_unpool2d(yt, it, 2))
    for name, calls in pools.items():
        times = rounds(calls, args.reps, args.rounds)
        ms = {key: 1e3 * statistics.median(v) for key, v in times.items()}
        print(
            f"{name:13} {ms['convmat']:10.2f} {ms['torch']:9.2f} "
            f"{ratio(times, 'convmat', 'torch'):6.2f} {'-':>6} {'-':>9} {'-':>11} {'-':>8} "
            f"{'exact' if exact else 'DIFFERS':>11}"
        )
    limits.restore_original_limits()


if __name__ == "__main__":
    main()
