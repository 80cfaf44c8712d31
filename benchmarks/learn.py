"""Closed forms against the ways a deep-learning framework gets the same numbers, in one process.

Run: ``python benchmarks/learn.py [--reps 5] [--threads 1]``.

Rows (each checked for agreement before it is timed):

* **J** — ``weight_matrix`` (sparse, from the layer's pattern) against the dense
  Jacobian of the output in the weight by ``torch.func.jacrev``.
* **fit** — ``fit_kernel`` (normal equations on J, exact) against learning the same
  k=4, s=2 transposed convolution by gradient descent in torch (Adam, lr 0.01, full
  batch) for as many steps as it takes to come within 1 % of the least-squares
  residual (or 2000 steps). Data: the 600×512 photograph halved by 2×2 averaging.
* **overlap** — ``overlap_map`` (the pattern filled with ones) against torch's
  ``conv_transpose2d`` of a ones input with a ones kernel.
* **spectrum** — ``circular_singular_values`` (one FFT and one small SVD per
  frequency) against the dense SVD of the circular-padding matrix
  (``conv_singular_values``) and ``torch.linalg.svdvals`` of the same dense matrix.

Every library is pinned to ``--threads`` threads. A figure is the median of ``--reps``
timed calls after a warm-up (one call for the two slow peers, jacrev and Adam); ratios
are ``peer / convmat`` (above 1: convmat faster).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from _common import machine_header, median_time, prepare

import convmat
from convmat._demo import downscale


def bench_j(torch: Any, reps: int) -> tuple[str, float, float]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 8, 32, 32))
    shape = (8, 8, 3, 3)
    xt = torch.from_numpy(x)

    def jac() -> Any:
        f = lambda w: torch.nn.functional.conv2d(xt, w, stride=1, padding=1)  # noqa: E731
        return torch.func.jacrev(f)(torch.zeros(shape, dtype=torch.float64))

    J = convmat.weight_matrix(x, shape, padding=1)
    dense = jac().numpy().reshape(J.shape)
    assert np.allclose(J.toarray(), dense)
    ours = median_time(lambda: convmat.weight_matrix(x, shape, padding=1), reps)
    return "J  2x8x32x32, w 8x8x3x3 (jacrev)", ours, median_time(jac, 1)  # seconds per call


def bench_fit(torch: Any, reps: int) -> tuple[str, float, float, str]:
    photo = convmat.load_photo()
    low, high = downscale(photo)[None, None], photo[None, None]
    fit = convmat.fit_kernel(low, high, 4, stride=2, padding=1)
    target = fit.residual * 1.01
    lt, ht = torch.from_numpy(low), torch.from_numpy(high)

    def train() -> int:
        w = torch.zeros((1, 1, 4, 4), dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([w], lr=0.01)
        for step in range(1, 2001):
            opt.zero_grad()
            loss = (torch.nn.functional.conv_transpose2d(lt, w, stride=2, padding=1) - ht) ** 2
            total = loss.sum()
            total.backward()
            opt.step()
            if float(total.detach()) ** 0.5 <= target:
                return step
        return 2000

    steps = train()
    ours = median_time(lambda: convmat.fit_kernel(low, high, 4, stride=2, padding=1), reps)
    peer = median_time(train, 1)  # seconds per call
    return "fit k4 s2 on the photo (Adam)", ours, peer, f"Adam: {steps} steps to 1.01x"


def bench_overlap(torch: Any, reps: int) -> tuple[str, float, float]:
    ones = torch.ones((1, 1, 256, 256), dtype=torch.float64)
    k = torch.ones((1, 1, 3, 3), dtype=torch.float64)

    def peer() -> Any:
        return torch.nn.functional.conv_transpose2d(ones, k, stride=2)

    assert np.array_equal(convmat.overlap_map((256, 256), 3, stride=2), peer().numpy()[0, 0])
    ours = median_time(lambda: convmat.overlap_map((256, 256), 3, stride=2), reps)
    return "overlap 256x256, k3 s2 (torch ones)", ours, median_time(peer, reps)


def bench_spectrum(torch: Any, reps: int) -> list[tuple[str, float, float]]:
    w = np.random.default_rng(1).normal(size=(4, 4, 3, 3))
    shape = (4, 16, 16)
    args: dict[str, Any] = {"padding": "same"}
    fft = convmat.circular_singular_values(shape, w, **args)
    svd = convmat.conv_singular_values(shape, w, padding_mode="circular", **args)
    assert np.allclose(fft, svd)
    dense = torch.from_numpy(
        convmat.conv_matrix(shape, w, padding_mode="circular", **args).toarray()
    )
    ours = median_time(lambda: convmat.circular_singular_values(shape, w, **args), reps)
    ours_svd = median_time(
        lambda: convmat.conv_singular_values(shape, w, padding_mode="circular", **args), reps
    )
    peer = median_time(lambda: torch.linalg.svdvals(dense), reps)
    return [
        ("sigma 4x16x16, 4->4 k3: FFT vs dense SVD", ours, ours_svd),
        ("sigma 4x16x16, 4->4 k3: FFT vs torch svdvals", ours, peer),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    with prepare(args.threads, torch):
        print(machine_header(args.threads, torch))
        rows: list[tuple[Any, ...]] = [
            bench_j(torch, args.reps),
            bench_fit(torch, args.reps),
            bench_overlap(torch, args.reps),
            *bench_spectrum(torch, args.reps),
        ]
    print(f"{'case':<46} {'convmat ms':>11} {'peer ms':>10} {'peer/convmat':>13}")
    for name, ours, peer, *note in rows:
        extra = f"   {note[0]}" if note else ""
        print(f"{name:<46} {1e3 * ours:11.2f} {1e3 * peer:10.2f} {peer / ours:13.1f}{extra}")


if __name__ == "__main__":
    main()
