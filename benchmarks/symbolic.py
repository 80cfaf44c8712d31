"""Symbolic transposed-convolution formulas: from the pattern against the naive dense product.

Run: ``python benchmarks/symbolic.py [--repeat 5]``. 16×16 input, 3×3 kernel, stride 2
(output 33×33), one channel. Both sides produce the same 1089 formulas (checked here):

* convmat: ``convmat.symbolic.conv_transpose(x, w, stride=2)`` — the sparsity pattern
  filled with the kernel's symbols, one product per stored entry, from scratch
  (pattern included);
* naive: the dense Cᵀ as a ``sympy.Matrix`` (1089×256, built outside the timer)
  times the input vector — what one writes first with SymPy.

Target (issue 4, item 5): convmat at least 5× faster. SymPy is single-threaded
pure Python, so thread settings do not matter here; the figures are medians, and
SymPy's cache is cleared before every run so that neither side reuses the other's work.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import sympy
from sympy.core.cache import clear_cache

from convmat import symbolic

SPATIAL, KERNEL, STRIDE = (16, 16), (3, 3), 2


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median seconds of ``repeat`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        clear_cache()  # no run reuses products SymPy cached in an earlier one
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    x = symbolic.symbols("x", SPATIAL)
    w = symbolic.symbols("w", KERNEL)
    dense_ct = sympy.Matrix(symbolic.conv_transpose_matrix(SPATIAL, w, stride=STRIDE))
    x_vec = sympy.Matrix(list(x))

    ours_t, ours = timed(lambda: symbolic.conv_transpose(x, w, stride=STRIDE), args.repeat)
    naive_t, naive = timed(lambda: dense_ct * x_vec, args.repeat)
    same = list(ours) == list(naive)

    print(f"python {platform.python_version()}, sympy {sympy.__version__}, {platform.machine()}")
    print(
        f"transposed conv {SPATIAL[0]}x{SPATIAL[1]} input, {KERNEL[0]}x{KERNEL[1]} kernel, "
        f"stride {STRIDE}: {ours.shape[0]}x{ours.shape[1]} formulas, dense C^T "
        f"{dense_ct.shape[0]}x{dense_ct.shape[1]}; results identical: {same}"
    )
    print(f"{'method':<44}{'median s':>10}{'ratio':>9}")
    print(f"{'convmat.symbolic.conv_transpose (pattern)':<44}{ours_t:>10.4f}{1.0:>9.1f}")
    print(f"{'naive: dense sympy.Matrix C^T * vec(x)':<44}{naive_t:>10.4f}{naive_t / ours_t:>9.1f}")
    verdict = "meets" if naive_t / ours_t >= 5 else "MISSES"
    print(f"speed-up {naive_t / ours_t:.1f}x ({verdict} the >= 5x target)")
    if not same:
        raise SystemExit("the two results differ")


if __name__ == "__main__":
    main()
