"""Whole models as matrices: ``from_torch`` against the peers it is built from, in one process.

Run: ``python benchmarks/models.py [--reps 7] [--burst 3]``. One thread for every library.

Three tables, each checked for agreement before it is timed:

* **build** — ``from_torch(layer, shape).matrix`` (trace, run torch once, build) against
  :func:`convmat.conv_transpose_matrix` / :func:`convmat.conv_matrix` on the same layer
  and weights, for every layer of the DCGAN generator of Radford et al. (z of 100
  channels → 512×4×4 → 256×8×8 → 128×16×16 → 64×32×32 → 3×64×64, k4, float32).
  Rounds alternate the two; a figure is the median over rounds, memory freed between
  calls outside the timing.
* **apply** — ``.operator.matvec`` / ``.rmatvec`` (one sample) and ``.matmat`` (a batch of
  8 columns) against the module's own forward in torch (``no_grad``; the adjoint against
  ``conv_transpose2d`` / ``conv2d`` with the same weight), and against
  :func:`convmat.conv` / :func:`convmat.conv_transpose` (the fast path the operator runs,
  to separate the cost of the map's graph from the cost of the arithmetic). Layers: a
  64→64 3×3 convolution on 56×56 and the DCGAN's 128→64 k4 s2 transposed convolution on
  16×16. Timed in rounds of ``--burst`` calls per contender (:func:`_common.bursts`); the
  ratio is the median over rounds.
* **sigma** — the exact spectral norm of the 64→64 3×3 layer on 56×56 (float32):
  ``scipy.sparse.linalg.svds(A.operator, k=1)`` at a few ``ncv``/``tol`` settings against
  power iteration in torch (``v ← convᵀ(conv(v))``, normalised; what one writes by hand),
  100 and 1000 steps. The reference is ``eigsh`` on ``AᵀA`` of the same layer in float64
  to ``tol=1e-12``. Note that svds' ``tol`` is on σ; it runs ``eigsh`` on ``AᵀA`` with
  ``tol²``.
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
import scipy.sparse.linalg as sla
import torch
from _common import bursts, machine_header, prepare

import convmat

Array = np.ndarray[Any, Any]

# (C_in, C_out, kernel, stride, padding, input spatial): the DCGAN generator, 64×64 output
DCGAN = [
    (100, 512, 4, 1, 0, 1),
    (512, 256, 4, 2, 1, 4),
    (256, 128, 4, 2, 1, 8),
    (128, 64, 4, 2, 1, 16),
    (64, 3, 4, 2, 1, 32),
]


def _rounds(calls: dict[str, Callable[[], Any]], reps: int, burst: int) -> dict[str, float]:
    """Median seconds per contender, and ``ratio:<a>/<b>`` as medians of per-round ratios."""
    times = bursts(calls, reps, burst)
    per_round = {key: [statistics.median(r) for r in rounds] for key, rounds in times.items()}
    return {key: statistics.median(values) for key, values in per_round.items()} | {
        f"ratio:{a}/{b}": statistics.median(
            x / y for x, y in zip(per_round[a], per_round[b], strict=True)
        )
        for a in per_round
        for b in per_round
        if a != b
    }


def _timed_build(fn: Callable[[], Any]) -> float:
    gc.collect()
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    del result
    return elapsed


def bench_build(reps: int) -> None:
    print("\nbuild: from_torch(layer, shape).matrix against conv_transpose_matrix (float32)")
    header = (
        f"{'DCGAN layer':<34} {'nnz':>11} {'direct ms':>10} {'from_torch ms':>14} "
        f"{'ratio':>6} {'target':>6}"
    )
    print(header)
    print("-" * len(header))
    for c_in, c_out, k, s, p, n in DCGAN:
        layer = torch.nn.ConvTranspose2d(c_in, c_out, k, stride=s, padding=p, bias=False)
        shape = (c_in, n, n)
        w = layer.weight.detach().numpy()

        def direct(w: Array = w, shape: tuple[int, ...] = shape, s: int = s, p: int = p) -> Any:
            return convmat.conv_transpose_matrix(shape, w, stride=s, padding=p)

        def via_map(layer: Any = layer, shape: tuple[int, ...] = shape) -> Any:
            return convmat.from_torch(layer, shape).matrix

        a, b = direct(), via_map()
        assert a.shape == b.shape and (a != b).nnz == 0, shape
        nnz = a.nnz
        del a, b
        t_direct, t_map, ratios = [], [], []
        for _ in range(reps):
            t_d, t_m = _timed_build(direct), _timed_build(via_map)
            t_direct.append(t_d)
            t_map.append(t_m)
            ratios.append(t_m / t_d)
        out = (c_out, *convmat.conv_transpose_output_shape((n, n), k, stride=s, padding=p))
        name = f"{c_in}x{n}x{n} -> {'x'.join(map(str, out))} k{k} s{s}"
        print(
            f"{name:<34} {nnz:>11,} {statistics.median(t_direct) * 1e3:>10.1f} "
            f"{statistics.median(t_map) * 1e3:>14.1f} {statistics.median(ratios):>6.2f} "
            f"{2.0:>6.1f}"
        )
        gc.collect()


def bench_apply(reps: int, burst: int) -> None:
    print("\napply: the map's operator against the module's forward in torch (float32)")
    header = (
        f"{'layer':<28} {'op':<12} {'operator ms':>11} {'torch ms':>9} {'ratio':>6} "
        f"{'target':>6} {'fast path ms':>12} {'op/fast':>8} {'max rel err':>11}"
    )
    print(header)
    print("-" * len(header))
    f = torch.nn.functional
    rng = np.random.default_rng(0)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False)
    tconv = torch.nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1, bias=False)
    cases = [
        ("conv 64x56x56 -> 64 k3 s1 p1", conv, (64, 56, 56), False, {"padding": 1}),
        ("tconv 128x16x16 -> 64 k4 s2 p1", tconv, (128, 16, 16), True, {"stride": 2, "padding": 1}),
    ]
    for name, module, shape, transposed, geometry in cases:
        amap = convmat.from_torch(module, shape)
        op = amap.operator
        w = module.weight.detach()
        wn = w.numpy()
        forward_np = convmat.conv_transpose if transposed else convmat.conv
        adjoint_np = convmat.conv if transposed else convmat.conv_transpose
        adjoint_t = f.conv2d if transposed else f.conv_transpose2d
        for op_name, batch in (("matvec", 1), ("rmatvec", 1), ("matmat 8", 8)):
            adjoint = op_name == "rmatvec"
            in_shape = amap.output_shape if adjoint else amap.input_shape
            x = rng.standard_normal((batch, *in_shape)).astype(np.float32)
            xt = torch.from_numpy(x)
            cols = np.ascontiguousarray(x.reshape(batch, -1)).T  # (n, batch), no copy inside
            if op_name == "matvec":
                mine: Callable[[], Any] = partial(op.matvec, cols[:, 0])
            elif adjoint:
                mine = partial(op.rmatvec, cols[:, 0])
            else:
                mine = partial(op.matmat, cols)
            if adjoint:
                theirs: Callable[[], Any] = partial(adjoint_t, xt, w, **geometry)
                fast: Callable[[], Any] = partial(adjoint_np, x, wn, **geometry)
            else:
                theirs = partial(module, xt)
                fast = partial(forward_np, x, wn, **geometry)
            with torch.no_grad():
                expected = theirs().numpy().reshape(batch, -1)
                got = np.asarray(mine()).reshape(-1, batch).T
                err = float(np.abs(got - expected).max() / np.abs(expected).max())
                assert err < 1e-5, (name, op_name, err)
                r = _rounds({"op": mine, "torch": theirs, "fast": fast}, reps, burst)
            print(
                f"{name:<28} {op_name:<12} {r['op'] * 1e3:>11.2f} {r['torch'] * 1e3:>9.2f} "
                f"{r['ratio:op/torch']:>6.2f} {1.5:>6.1f} {r['fast'] * 1e3:>12.2f} "
                f"{r['ratio:op/fast']:>8.2f} {err:>11.1e}"
            )


class _Gram(sla.LinearOperator):  # type: ignore[misc]
    """``AᵀA`` of a linear operator, counting its products."""

    def __init__(self, op: Any) -> None:
        self.op = op
        self.calls = 0
        super().__init__(dtype=op.dtype, shape=(op.shape[1], op.shape[1]))

    def _matvec(self, v: Array) -> Array:
        self.calls += 1
        return np.asarray(self.op.rmatvec(self.op.matvec(v)))


class _Counted(sla.LinearOperator):  # type: ignore[misc]
    """A linear operator that counts its products with ``A`` and ``Aᵀ``."""

    def __init__(self, op: Any) -> None:
        self.op = op
        self.calls = 0
        super().__init__(dtype=op.dtype, shape=op.shape)

    def _matvec(self, v: Array) -> Array:
        self.calls += 1
        return np.asarray(self.op.matvec(v))

    def _rmatvec(self, v: Array) -> Array:
        return np.asarray(self.op.rmatvec(v))


def bench_sigma() -> None:
    print("\nsigma: spectral norm of conv 64x56x56 -> 64 k3 s1 p1 (float32 weights)")
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False)
    n = 64 * 56 * 56
    v0 = np.random.default_rng(0).standard_normal(n)

    start = time.perf_counter()
    gram = _Gram(convmat.from_torch(conv.double(), (64, 56, 56)).operator)
    lam = sla.eigsh(gram, k=1, which="LA", ncv=32, tol=1e-12, v0=v0, return_eigenvectors=False)
    reference = float(np.sqrt(lam[0]))
    t_ref = time.perf_counter() - start
    conv = conv.float()
    print(
        f"reference sigma_1 = {reference:.10f} (float64 eigsh on AᵀA, ncv 32, tol 1e-12: "
        f"{gram.calls} products AᵀA v, {t_ref:.1f} s)"
    )
    header = f"{'method':<44} {'seconds':>8} {'A v':>6} {'sigma_1':>12} {'rel err':>9}"
    print(header)
    print("-" * len(header))
    op = convmat.from_torch(conv, (64, 56, 56)).operator
    for ncv, tol in ((None, 0.0), (8, 1e-3), (16, 1e-3), (24, 1e-3), (16, 1e-4)):
        counted = _Counted(op)
        start = time.perf_counter()
        sigma = sla.svds(
            counted,
            k=1,
            ncv=ncv,
            tol=tol,
            v0=v0.astype(np.float32),
            return_singular_vectors=False,
        )[0]
        elapsed = time.perf_counter() - start
        label = f"svds(A.operator, k=1, ncv={ncv}, tol={tol:g})"
        err = abs(float(sigma) - reference) / reference
        print(f"{label:<44} {elapsed:>8.2f} {counted.calls:>6} {sigma:>12.8f} {err:>9.1e}")

    w = conv.weight.detach()
    f = torch.nn.functional
    for steps in (100, 1000):
        v = torch.from_numpy(v0.astype(np.float32).reshape(1, 64, 56, 56))
        start = time.perf_counter()
        with torch.no_grad():
            for _ in range(steps):
                v = f.conv_transpose2d(f.conv2d(v, w, padding=1), w, padding=1)
                v = v / v.norm()
            sigma = f.conv2d(v, w, padding=1).norm().item()
        elapsed = time.perf_counter() - start
        err = abs(sigma - reference) / reference
        label = f"torch power iteration, {steps} steps"
        print(f"{label:<44} {elapsed:>8.2f} {steps + 1:>6} {sigma:>12.8f} {err:>9.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--burst", type=int, default=3)
    args = parser.parse_args()
    prepare(1, torch)
    print(machine_header(1, torch))
    print(
        f"timing: build, median of {args.reps} alternating calls; apply, {args.reps} rounds "
        f"of {args.burst} calls per contender, ratio = median of per-round ratios"
    )
    bench_build(args.reps)
    bench_apply(args.reps, args.burst)
    bench_sigma()


if __name__ == "__main__":
    main()
