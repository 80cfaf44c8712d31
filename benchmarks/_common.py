"""What every benchmark shares: one thread per library, a warm heap, the machine, timers.

Benchmarks compare ratios measured in one process, so every peer runs with the
same thread count (threadpoolctl for the BLAS and OpenMP pools, ``torch`` too
when it is imported) and the same allocator state, and the header says which
BLAS each library called.
"""

from __future__ import annotations

import ctypes
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy

import convmat


def prepare(threads: int, torch: Any = None) -> Any:
    """Limit every thread pool (and torch, if given) to ``threads`` and warm the heap
    (:func:`warm_heap`); returns the thread limiter."""
    import threadpoolctl

    if torch is not None:
        torch.set_num_threads(threads)
    limits = threadpoolctl.threadpool_limits(threads)
    warm_heap()
    return limits


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
    from convmat._fast.planner import blas_threads

    lines.append(f"convmat's planner reads {blas_threads()} BLAS thread(s) from OpenBLAS")
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if name in os.environ:
            lines.append(
                f"  warning: {name}={os.environ[name]} is set (run with env -u {name}; "
                "users' machines do not set it)"
            )
    tunables = os.environ.get("GLIBC_TUNABLES", "glibc defaults")
    lines.append(f"malloc: {tunables}; heap warmed with a {WARM_BYTES >> 20} MiB block")
    return "\n".join(lines)


WARM_BYTES = 30 * 2**20


def warm_heap() -> None:
    """Put glibc's allocator in the state of a long-running program, for every contender.

    Fresh pages cost page faults, and glibc decides when freed memory goes back to
    the system: blocks above its mmap threshold (128 KiB at start) are unmapped
    on free, so the next call of a library faults its buffers in again. Freeing
    one large block raises that threshold (up to 32 MiB) for good, as any
    program that has run a while has done; from then on blocks below it are
    served and reused from the heap. Without this, a library's speed depends on
    what ran before it (PyTorch's conv B: 19 ms on a cold process, 12 ms warm).
    """
    block = np.ones(WARM_BYTES // 8)  # touched, so it is really mapped
    del block


def median_time(fn: Callable[[], Any], reps: int) -> float:
    """Median seconds of ``reps`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bursts(
    calls: dict[str, Callable[[], Any]], reps: int, burst: int = 1
) -> dict[str, list[list[float]]]:
    """Seconds of every call: ``reps`` rounds, each calling every contender ``burst`` times.

    Rounds keep the samples of the contenders close in time, so a change in the
    machine's load hits all of them alike. Within a burst, the first call runs
    straight after another contender (paying for its freed memory and evicted
    caches); the rest measure the steady state of a loop calling one library.
    One warm-up call each comes first.
    """
    for fn in calls.values():
        fn()
    times: dict[str, list[list[float]]] = {key: [] for key in calls}
    for _ in range(reps):
        for key, fn in calls.items():
            samples = []
            for _ in range(burst):
                start = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - start)
            times[key].append(samples)
    return times


def interleaved(calls: dict[str, Callable[[], Any]], reps: int) -> dict[str, list[float]]:
    """Seconds of ``reps`` round-robin calls of every callable (see :func:`bursts`)."""
    return {key: [round_[0] for round_ in rounds] for key, rounds in bursts(calls, reps).items()}


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _malloc_in_use() -> Any:
    """glibc's ``mallinfo2``: bytes in use (heap ``uordblks`` + mmapped ``hblkhd``), or None."""
    try:
        fn = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):  # pragma: no cover - not glibc >= 2.33
        return None
    fn.restype = _Mallinfo2

    def in_use() -> int:
        info = fn()
        return int(info.uordblks + info.hblkhd)

    return in_use


def peak_malloc(fn: Callable[[], Any]) -> int | None:
    """Peak extra bytes held through ``malloc`` during one call of ``fn`` (None without glibc).

    Every allocation of a C library goes through glibc's ``malloc`` (PyTorch's CPU
    allocator and oneDNN's scratchpads included), so a thread sampling glibc's own
    count of bytes in use (``mallinfo2``, about half a microsecond a read) every
    ~50 µs while ``fn`` runs sees the peak, minus the count before the call. The
    call must release the GIL (torch's operators do). The result is kept alive
    until after the last sample, so it counts too.
    """
    in_use = _malloc_in_use()
    if in_use is None:  # pragma: no cover
        return None
    base = in_use()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], in_use())
            time.sleep(5e-5)

    sampler = threading.Thread(target=sample)
    sampler.start()
    result = fn()
    peak[0] = max(peak[0], in_use())
    done.set()
    sampler.join()
    del result
    return peak[0] - base
