"""Speed of convmat's NumPy fast path against PyTorch, SciPy and PyLops, in one process.

Run: ``python benchmarks/fast.py [--reps 21] [--burst 5] [--threads 1] [--layers ABCD]``.

Every library is pinned to the same number of threads (threadpoolctl for the BLAS
libraries, ``torch.set_num_threads``). After a warm-up, the contenders of a layer
take turns for ``--reps`` rounds; in a round each is called ``--burst`` times in a
row, as a loop calling it would (its time in the round is the median of the
burst). The ratio ``convmat / torch`` is the median of the per-round ratios
(neighbouring rounds see the same machine load, so a busy machine moves both
sides alike). "after torch" is the same ratio for the first call of each burst
only: a call straight after the other library's, which pays for the memory that
library just freed (page faults on fresh pages) and the caches it evicted. "peak MiB" is
the largest extra memory NumPy allocated during one cold convmat call
(tracemalloc; the output and the work buffers convmat keeps between calls
included). All layers are float32; results are checked against torch.

Layers (N, C_in, H, W → C_out, kernel k, stride s, padding p):

====  ===========================  ==========================================
A     1×1×512×512 → 1, k3 s1 p1     single channel
B     8×64×56×56 → 64, k3 s1 p1     channel-heavy (a ResNet block)
C     8×32×64×64 → 64, k4 s2 p1     DCGAN-like downsampling; its transpose
                                    is the 32→64 upsampling
D     1×1×1024×1024 → 1, k5 s2 p2   single channel, strided
====  ===========================  ==========================================

``conv_transpose`` runs on the forward layer's output shape with the same weight.
"""

from __future__ import annotations

import argparse
import statistics
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
from _common import bursts, machine_header, prepare

import convmat

LAYERS = {
    "A": (1, 1, 512, 512, 1, 3, 1, 1),
    "B": (8, 64, 56, 56, 64, 3, 1, 1),
    "C": (8, 32, 64, 64, 64, 4, 2, 1),
    "D": (1, 1, 1024, 1024, 1, 5, 2, 2),
}
TARGETS = {  # ratio convmat / torch the issue asks for
    ("conv", "A"): 1.0,
    ("conv", "B"): 1.5,
    ("conv", "C"): 1.5,
    ("conv", "D"): 1.5,
    ("conv_transpose", "A"): 0.5,
    ("conv_transpose", "B"): 1.5,
    ("conv_transpose", "C"): 1.5,
}


def peak_bytes(fn: Callable[[], Any]) -> int:
    """Peak NumPy allocation of one cold call: work buffers kept between calls count too."""
    from convmat._fast.direct import clear_scratch

    clear_scratch()
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def peers(kind: str, name: str, x: np.ndarray, w: np.ndarray, s: int, p: int) -> dict[str, Any]:
    """The callables to time for one layer: convmat first, then what applies."""
    import scipy.signal
    import torch

    f = torch.nn.functional
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    if kind == "conv":
        calls: dict[str, Any] = {
            "convmat": lambda: convmat.conv(x, w, stride=s, padding=p),
            "torch": lambda: f.conv2d(xt, wt, stride=s, padding=p),
        }
    else:
        calls = {
            "convmat": lambda: convmat.conv_transpose(x, w, stride=s, padding=p),
            "torch": lambda: f.conv_transpose2d(xt, wt, stride=s, padding=p),
        }
    if x.shape[:2] == (1, 1) and w.shape[:2] == (1, 1):
        img, ker = x[0, 0], w[0, 0]
        if kind == "conv":
            # SciPy has no stride: it computes every position, then we subsample.
            calls["scipy"] = lambda: scipy.signal.correlate(np.pad(img, p), ker, mode="valid")[
                ::s, ::s
            ]
        elif s == 1:
            calls["scipy"] = lambda: scipy.signal.convolve(img, ker, mode="full")[p:-p, p:-p]
        if s == 1:
            try:
                import pylops
            except ImportError:  # pragma: no cover
                pylops = None
            if pylops is not None:
                k = ker.shape[0]
                op = pylops.signalprocessing.Convolve2D(
                    img.shape,
                    h=ker[::-1, ::-1].copy(),
                    offset=(k // 2, k // 2),
                    dtype="float32",
                )
                calls["pylops"] = (
                    (lambda: op.matvec(img.ravel()))
                    if kind == "conv"
                    else (lambda: op.rmatvec(img.ravel()))
                )
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=21)
    parser.add_argument("--burst", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--layers", default="ABCD")
    args = parser.parse_args()

    import torch

    limits = prepare(args.threads, torch)
    print(machine_header(args.threads, torch))
    print(
        f"timing: {args.reps} rounds of {args.burst} calls in a row per contender; ratio = median "
        "over rounds of\n(median convmat call / median torch call); 'after torch': the same for "
        "the first call of each burst\n"
    )

    header = (
        f"{'layer':5} {'op':15} {'convmat ms':>10} {'torch ms':>9} {'ratio':>6} "
        f"{'target':>6} {'after torch':>11} {'scipy ms':>9} {'pylops ms':>9} {'peak MiB':>8} "
        f"{'max rel err':>11}"
    )
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    for name in args.layers:
        n, c_in, h, w_, c_out, k, s, p = LAYERS[name]
        x = rng.standard_normal((n, c_in, h, w_), dtype=np.float32)
        w = rng.standard_normal((c_out, c_in, k, k), dtype=np.float32)
        y = convmat.conv(x, w, stride=s, padding=p)
        for kind, data in (("conv", x), ("conv_transpose", y)):
            calls = peers(kind, name, data, w, s, p)
            rounds = bursts(calls, args.reps, args.burst)
            times = {key: [statistics.median(b) for b in v] for key, v in rounds.items()}
            ms = {key: 1e3 * statistics.median(v) for key, v in times.items()}
            ratio = statistics.median(
                c / t for c, t in zip(times["convmat"], times["torch"], strict=True)
            )
            first = statistics.median(
                c[0] / t[0] for c, t in zip(rounds["convmat"], rounds["torch"], strict=True)
            )
            ours = np.asarray(calls["convmat"]())
            ref = calls["torch"]().numpy()
            err = float(np.abs(ours - ref).max() / np.abs(ref).max())
            peak = peak_bytes(calls["convmat"]) / 2**20
            target = TARGETS.get((kind, name))
            cells = [f"{ms[key]:9.2f}" if key in ms else f"{'-':>9}" for key in ("scipy", "pylops")]
            print(
                f"{name:5} {kind:15} {ms['convmat']:10.2f} {ms['torch']:9.2f} "
                f"{ratio:6.2f} {target if target else '-':>6} {first:11.2f} "
                f"{cells[0]} {cells[1]} {peak:8.1f} {err:11.1e}"
            )
    limits.restore_original_limits()


if __name__ == "__main__":
    main()
