"""What one call of an algorithm costs, counted from the geometry alone (never timed).

Every algorithm module of :mod:`convmat._fast` reports its work as
:class:`Counts`; the planner turns counts into predicted seconds with constants
calibrated once by ``benchmarks/fast.py`` and committed.
"""

from __future__ import annotations

from typing import NamedTuple


class Counts(NamedTuple):
    """The work of one call, by kind.

    ``gemm_flops`` — floating-point operations done inside BLAS GEMMs (2 per
    multiply-add); ``gemm_calls`` — how many BLAS calls issue them;
    ``stream_bytes`` — bytes read plus written by NumPy passes outside BLAS
    (packing, transforms done elementwise, padding, the final store);
    ``passes`` — how many such NumPy calls; ``fft_points`` — Σ n·log2(n) over the
    FFTs (0 when none); ``work_bytes`` — the largest extra memory alive at once.
    """

    gemm_flops: float = 0.0
    gemm_calls: int = 0
    stream_bytes: float = 0.0
    passes: int = 0
    fft_points: float = 0.0
    work_bytes: int = 0
