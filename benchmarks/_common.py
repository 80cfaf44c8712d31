"""What every benchmark shares: one thread for every library, the machine's facts, a timer.

Benchmarks compare ratios measured in one process, so every peer runs with the
same thread count (threadpoolctl for the BLAS and OpenMP pools, ``torch`` too
when it is imported) and the header says which BLAS each library called.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy

import convmat


def pin_threads(threads: int, torch: Any = None) -> Any:
    """Limit every thread pool (and torch, if given) to ``threads``; returns the limiter."""
    import threadpoolctl

    if torch is not None:
        torch.set_num_threads(threads)
    return threadpoolctl.threadpool_limits(threads)


def machine_header(threads: int, torch: Any = None) -> str:
    """Versions, the CPU and every thread pool in use, for the top of a benchmark's output."""
    import threadpoolctl

    versions = [
        f"python {platform.python_version()}",
        f"numpy {np.__version__}",
        f"scipy {scipy.__version__}",
        *([f"torch {torch.__version__}"] if torch is not None else []),
        f"convmat {convmat.__version__}",
    ]
    lines = [", ".join(versions) + f"; {platform.machine()}, {os.cpu_count()} cpus"]
    torch_threads = f" (torch {torch.get_num_threads()})" if torch is not None else ""
    lines.append(f"threads: {threads}{torch_threads}")
    for pool in threadpoolctl.threadpool_info():
        lines.append(
            f"  {pool['user_api']}: {pool['internal_api']} {pool.get('version')} "
            f"{pool.get('architecture') or ''} threads={pool['num_threads']} ({pool['prefix']})"
        )
    return "\n".join(lines)


def median_time(fn: Callable[[], Any], reps: int) -> float:
    """Median seconds of ``reps`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved(calls: dict[str, Callable[[], Any]], reps: int) -> dict[str, list[float]]:
    """Time every callable ``reps`` times, round-robin, after one warm-up call each.

    Round-robin keeps the samples of one round close in time, so a change in the
    machine's load hits every contender of that round alike.
    """
    for fn in calls.values():
        fn()
    times: dict[str, list[float]] = {key: [] for key in calls}
    for _ in range(reps):
        for key, fn in calls.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return times
