"""Speed, accuracy and memory of convmat's fast path against PyTorch, in one process.

Run (this machine sets two OpenBLAS variables users' machines do not; unset them)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/fast.py --threads 1
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/fast.py --threads 2
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/fast.py --calibrate

Options: ``--reps 15 --burst 3 --layers ABCDEFGHI`` (``--threads 2`` defaults to
``BCEH``), ``--no-operator`` to skip the operator rows.

Every library is pinned to the same number of threads (threadpoolctl for the BLAS
libraries, ``torch.set_num_threads``). After a warm-up, convmat and torch take
turns for ``--reps`` rounds; in a round each is called ``--burst`` times in a row
(its time in the round is the median of the burst). ``ratio`` is the median of
the per-round ratios convmat / torch (neighbouring rounds see the same machine
load, so a busy machine moves both sides alike). ``method`` is what
``method="auto"`` ran (:func:`convmat.explain_plan`).

``err`` columns: the normwise float32 error ``max|y − ref| / max|ref|`` of convmat
and of torch on the same float32 data, ``ref`` torch's float64 result.

``MiB`` columns: the peak extra memory of one call. convmat: tracemalloc over a
cold call (its work buffers, kept between calls, freed first and counted).
torch: tracemalloc cannot see its allocations, so a thread samples glibc's count
of bytes in use (``mallinfo2``) every ~50 µs during the call, minus the count
before it (torch's allocator and oneDNN's scratchpads allocate through malloc).
Both include the result.

``operator`` rows: ``conv_operator(...).matvec`` (and ``rmatvec``) of one sample
over torch's conv (conv_transpose) of the same sample: the products svds, lsmr
and from_torch maps run thousands of times.

``--calibrate`` measures the constants of :mod:`convmat._fast.cost` (GEMM rates by
shape class, stream rate, per-call cost, FFT rate, per thread count; then each
method's measured time over its counted prediction on these layers) and prints
them as Python to paste into ``RATES``.

Layers (N, C_in, spatial → C_out, kernel k, stride s, padding p), float32:

====  ===============================  ===========================================
A     1×1×512² → 1, k3 s1 p1            single channel
B     8×64×56² → 64, k3 s1 p1           channel-heavy (a ResNet block)
C     8×32×64² → 64, k4 s2 p1           DCGAN-like downsampling; transposed: 32→64
D     1×1×1024² → 1, k5 s2 p2           single channel, strided
E     8×256×14² → 256, k3 s1 p1         deep ResNet stage
F     4×128×56² → 128, k3 s1 p1, g128   depthwise (MobileNet)
G     2×16×32³ → 16, k3 s1 p1           3-d
H     16×256×16² → 512, k4 s2 p1        transposed: 16×512×8² → 256, the DCGAN generator
I     1×1×2048² → 1, k31 "same"         a wide blur (FFT territory)
====  ===============================  ===========================================

``conv_transpose`` runs on the forward layer's output shape with the same weight.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from _common import bursts, machine_header, peak_malloc, prepare

import convmat


class Spec(NamedTuple):
    n: int
    c_in: int
    spatial: tuple[int, ...]
    c_out: int
    k: int
    s: int
    p: int | str
    groups: int = 1


LAYERS = {
    "A": Spec(1, 1, (512, 512), 1, 3, 1, 1),
    "B": Spec(8, 64, (56, 56), 64, 3, 1, 1),
    "C": Spec(8, 32, (64, 64), 64, 4, 2, 1),
    "D": Spec(1, 1, (1024, 1024), 1, 5, 2, 2),
    "E": Spec(8, 256, (14, 14), 256, 3, 1, 1),
    "F": Spec(4, 128, (56, 56), 128, 3, 1, 1, 128),
    "G": Spec(2, 16, (32, 32, 32), 16, 3, 1, 1),
    "H": Spec(16, 256, (16, 16), 512, 4, 2, 1),
    "I": Spec(1, 1, (2048, 2048), 1, 31, 1, "same"),
}
#: Targets of convmat / torch: 1.0 everywhere, 0.2 on I (a wide kernel: FFT).
TARGETS = {"I": 0.2}


def _transposed_padding(spec: Spec) -> int:
    """The transposed layer's padding (torch takes no string): "same" is (k−1)/2."""
    return (spec.k - 1) // 2 if spec.p == "same" else int(spec.p)


def data(spec: Spec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((spec.n, spec.c_in, *spec.spatial), dtype=np.float32)
    w = rng.standard_normal(
        (spec.c_out, spec.c_in // spec.groups, *(spec.k,) * len(spec.spatial)), dtype=np.float32
    )
    return x, w


def peers(kind: str, spec: Spec, x: np.ndarray, w: np.ndarray) -> dict[str, Callable[[], Any]]:
    """convmat and torch on one layer (``x`` is the input of ``kind``)."""
    import torch

    f = torch.nn.functional
    d = len(spec.spatial)
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    geo = {"stride": spec.s, "groups": spec.groups}
    if kind == "conv":
        fwd = getattr(f, f"conv{d}d")
        return {
            "convmat": lambda: convmat.conv(x, w, padding=spec.p, **geo),
            "torch": lambda: fwd(xt, wt, padding=spec.p, **geo),
        }
    back = getattr(f, f"conv_transpose{d}d")
    p = _transposed_padding(spec)
    return {
        "convmat": lambda: convmat.conv_transpose(x, w, padding=p, **geo),
        "torch": lambda: back(xt, wt, padding=p, **geo),
    }


def reference(kind: str, spec: Spec, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """torch's float64 result: the reference of both float32 errors.

    torch runs float64 convolutions through im2col, which for I would need 30 GiB;
    there the reference is convmat's tap sum in float64 (``method="direct"``).
    """
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    if spec.k ** len(spec.spatial) * x.size * 8 < 2**31:
        return np.asarray(peers(kind, spec, x64, w64)["torch"]())
    if kind == "conv":
        return convmat.conv(x64, w64, padding=spec.p, stride=spec.s, method="direct")
    return convmat.conv_transpose(
        x64, w64, padding=_transposed_padding(spec), stride=spec.s, method="gemm"
    )


def error(y: Any, ref: np.ndarray) -> float:
    y = np.asarray(y, dtype=np.float64)
    return float(np.abs(y - ref).max() / np.abs(ref).max())


def peak_tracemalloc(fn: Callable[[], Any]) -> int:
    """Peak NumPy allocation of one cold call: work buffers kept between calls count too."""
    from convmat._fast.direct import clear_scratch

    clear_scratch()
    tracemalloc.start()
    tracemalloc.reset_peak()
    result = fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del result
    return peak


def ratio_of(calls: dict[str, Callable[[], Any]], reps: int, burst: int) -> tuple[float, ...]:
    """``(convmat ms, torch ms, median per-round ratio)``."""
    rounds = bursts(calls, reps, burst)
    times = {key: [statistics.median(b) for b in v] for key, v in rounds.items()}
    ratio = statistics.median(c / t for c, t in zip(times["convmat"], times["torch"], strict=True))
    ms = {key: 1e3 * statistics.median(v) for key, v in times.items()}
    return ms["convmat"], ms["torch"], ratio


def _plan_method(kind: str, spec: Spec, x: np.ndarray, w: np.ndarray) -> str:
    plan = convmat._fast.explain_plan(
        x.shape,
        w.shape,
        stride=spec.s,
        padding=spec.p if kind == "conv" else _transposed_padding(spec),
        groups=spec.groups,
        transposed=kind == "conv_transpose",
    )
    return plan.method + (f"/{plan.inner}" if plan.inner else "")


def operator_rows(spec: Spec, x: np.ndarray, w: np.ndarray, reps: int) -> tuple[float, float]:
    """matvec / torch conv and rmatvec / torch conv_transpose, on one sample."""
    op = convmat.conv_operator(x.shape[1:], w, stride=spec.s, padding=spec.p, groups=spec.groups)
    one = x[:1]
    fwd = peers("conv", spec, one, w)
    y = np.asarray(fwd["torch"]())
    back = peers("conv_transpose", spec, y, w)
    v, u = one.ravel(), y.ravel()
    _, _, r1 = ratio_of({"convmat": lambda: op.matvec(v), "torch": fwd["torch"]}, reps, 3)
    _, _, r2 = ratio_of({"convmat": lambda: op.rmatvec(u), "torch": back["torch"]}, reps, 3)
    return r1, r2


def run(args: argparse.Namespace) -> None:
    import torch

    limits = prepare(args.threads, torch)
    print(machine_header(args.threads, torch))
    print(
        f"timing: {args.reps} rounds of up to {args.burst} calls in a row per contender; "
        "ratio = median over rounds of (median convmat call / median torch call)\n"
        "err: max|y - ref| / max|ref| of float32 results against torch's float64; "
        "MiB: peak extra memory of one call\n"
    )
    header = (
        f"{'layer':5} {'op':15} {'method':19} {'convmat ms':>10} {'torch ms':>9} {'ratio':>6} "
        f"{'target':>6} {'err convmat':>11} {'err torch':>9} {'MiB convmat':>11} "
        f"{'MiB torch':>9}"
    )
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    operator = []
    for name in args.layers:
        spec = LAYERS[name]
        x, w = data(spec, rng)
        y = np.asarray(peers("conv", spec, x, w)["torch"]())
        for kind, source in (("conv", x), ("conv_transpose", y)):
            calls = peers(kind, spec, source, w)
            start = time.perf_counter()
            calls["torch"]()
            slow = time.perf_counter() - start > 0.05
            reps = max(5, args.reps // 2) if slow else args.reps
            ours_ms, torch_ms, ratio = ratio_of(calls, reps, 1 if slow else args.burst)
            ref = reference(kind, spec, source, w)
            err_ours, err_torch = error(calls["convmat"](), ref), error(calls["torch"](), ref)
            mib_ours = peak_tracemalloc(calls["convmat"]) / 2**20
            torch_peak = peak_malloc(calls["torch"])
            mib_torch = f"{torch_peak / 2**20:9.1f}" if torch_peak is not None else f"{'-':>9}"
            target = TARGETS.get(name, 1.0)
            print(
                f"{name:5} {kind:15} {_plan_method(kind, spec, source, w):19} {ours_ms:10.2f} "
                f"{torch_ms:9.2f} {ratio:6.2f} {target:6.1f} {err_ours:11.1e} {err_torch:9.1e} "
                f"{mib_ours:11.1f} {mib_torch}",
                flush=True,
            )
        if args.operator and name != "I":  # torch takes seconds a call on I: skipped
            operator.append((name, *operator_rows(spec, x, w, max(5, args.reps // 2))))
    if operator:
        print("\nconv_operator on one sample: matvec / torch conv, rmatvec / torch conv_transpose")
        for name, r1, r2 in operator:
            print(f"{name:5} matvec {r1:5.2f}   rmatvec {r2:5.2f}")
    limits.restore_original_limits()


# --------------------------------------------------------------------------- calibration


def _best(fn: Callable[[], Any], reps: int = 7) -> float:
    """Fastest of ``reps`` calls after one warm-up: on a shared machine the least
    disturbed call is the best estimate of what the hardware does."""
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _machine_rates(threads: int) -> dict[str, Any]:
    """GEMM GFLOP/s per shape class, stream GB/s, per-call seconds, FFT ns per n·log2 n."""
    import scipy.fft

    from convmat import _blas

    rng = np.random.default_rng(1)
    gemm = {}
    n = 12544  # the positions of a 8×56×56 / 4 block: long, as the tap sums' products
    for cls, (m, k) in {"thin": (8, 8), "medium": (64, 64), "wide": (256, 256)}.items():
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        c = np.zeros((m, n), np.float32)
        took = _best(lambda a=a, b=b, c=c: _blas.gemm(a, b, c, accumulate=True))
        gemm[cls] = 2 * m * k * n / took / 1e9
    v = rng.standard_normal(2**20, dtype=np.float32)
    u = np.zeros_like(v)
    gemm["axpy"] = 2 * v.size / _best(lambda: _blas.axpy(np.float32(0.5), v, u)) / 1e9
    big = rng.standard_normal(2**24, dtype=np.float32)
    out = np.empty_like(big)
    stream = 2 * big.nbytes / _best(lambda: np.copyto(out, big)) / 1e9
    small_a = np.ones((4, 4), np.float32)
    small_c = np.zeros((4, 4), np.float32)
    call = _best(lambda: _blas.gemm(small_a, small_a, small_c, accumulate=True), 201)
    img = rng.standard_normal((2048, 2048), dtype=np.float32)
    points = 2 * img.size * np.log2(img.size)  # forward and inverse
    fft_time = _best(lambda: scipy.fft.irfft2(scipy.fft.rfft2(img), img.shape), 5)
    return {"gemm": gemm, "stream": stream, "call": call, "fft": fft_time / points * 1e9}


def calibrate(args: argparse.Namespace) -> None:
    import threadpoolctl
    import torch

    from convmat._fast import cost, planner

    print(machine_header(1, torch))
    found: dict[int, Any] = {}
    for threads in (1, 2):
        with threadpoolctl.threadpool_limits(threads):
            torch.set_num_threads(threads)
            measured = _machine_rates(threads)
            found[threads] = measured
            print(f"# threads {threads}: {measured}", flush=True)
    # Install the machine rates (no scale yet), then fit each method's scale.
    for threads, m in found.items():
        cost.RATES[threads] = cost.Rates(
            {k: round(v, 1) for k, v in m["gemm"].items()},
            round(m["stream"], 1),
            float(f"{m['call']:.2g}"),
            round(m["fft"], 2),
            {},
        )
    planner._plan.cache_clear()
    rng = np.random.default_rng(0)
    for threads in (1, 2):
        ratios: dict[str, list[float]] = {}
        with threadpoolctl.threadpool_limits(threads):
            torch.set_num_threads(threads)
            for name in args.layers:
                spec = LAYERS[name]
                x, w = data(spec, rng)
                y = convmat.conv(x, w, stride=spec.s, padding=spec.p, groups=spec.groups)
                for kind, source in (("conv", x), ("conv_transpose", y)):
                    transposed = kind == "conv_transpose"
                    padding = _transposed_padding(spec) if transposed else spec.p
                    plan = convmat._fast.explain_plan(
                        source.shape,
                        w.shape,
                        stride=spec.s,
                        padding=padding,
                        groups=spec.groups,
                        transposed=transposed,
                        threads=threads,
                    )
                    fn = convmat.conv_transpose if transposed else convmat.conv
                    options = {"stride": spec.s, "padding": padding, "groups": spec.groups}
                    for c in plan.candidates:
                        if c.seconds is None or c.method in planner.NESTED:
                            continue
                        if c.seconds > 0.5:  # a hopeless candidate (direct on I): skip
                            continue
                        took = _best(
                            lambda f=fn, a=source, b=w, o=options, m=c.method: f(
                                a, b, method=m, **o
                            ),
                            5,
                        )
                        ratios.setdefault(c.method, []).append(took / c.seconds)
                        m, k = (w.shape[1], w.shape[0] // spec.groups)
                        shape = cost.gemm_class(*((k, m) if not transposed else (m, k)))
                        ratios.setdefault(f"{c.method}/{shape}", []).append(took / c.seconds)
                        print(
                            f"#   {name} {kind:15} {c.method:10} measured {took * 1e3:8.2f} ms, "
                            f"counted {c.seconds * 1e3:8.2f} ms",
                            flush=True,
                        )
        scale = {m: round(statistics.median(r), 2) for m, r in sorted(ratios.items())}
        found[threads]["scale"] = scale
    print("\nRATES: dict[int, Rates] = {")
    for threads, m in found.items():
        gemm = ", ".join(f'"{k}": {v:.1f}' for k, v in m["gemm"].items())
        scale = ", ".join(f'"{k}": {v}' for k, v in m["scale"].items())
        print(
            f"    {threads}: Rates(\n        gemm={{{gemm}}},\n        stream={m['stream']:.1f},\n"
            f"        call={m['call']:.2g},\n        fft={m['fft']:.2f},\n"
            f"        scale={{{scale}}},\n    ),"
        )
    print("}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--burst", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--layers", default=None)
    parser.add_argument("--no-operator", dest="operator", action="store_false")
    parser.add_argument("--calibrate", action="store_true")
    args = parser.parse_args()
    if args.layers is None:
        args.layers = "BCEH" if args.threads == 2 and not args.calibrate else "ABCDEFGHI"
    if args.calibrate:
        calibrate(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
