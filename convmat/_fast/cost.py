"""What one call of an algorithm costs, counted from the geometry alone (never timed).

Every algorithm module of :mod:`convmat._fast` reports its work as
:class:`Counts`; the planner (:mod:`convmat._fast.planner`) turns counts into
predicted seconds with :func:`seconds` and the machine constants :data:`RATES`,
calibrated once by ``python benchmarks/fast.py --calibrate`` and committed here.
Nothing is timed at import or call time: a plan depends on the geometry, the
dtype and the BLAS thread count only, so it is the same on every call.
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


#: GEMM shape classes, by the smaller of the two channel sides ``m``, ``k`` of the
#: per-group product ``(m × k) @ (k × positions)``: ``"axpy"`` when ``m`` or ``k`` is 1
#: (an AXPY, a GEMV or an outer product per tap: bound by memory, not by the
#: arithmetic), ``"thin"`` up to 16, ``"medium"`` up to 64,
#: ``"wide"`` beyond (OpenBLAS reaches its peak only there).
GEMM_CLASSES = ("axpy", "thin", "medium", "wide")


def gemm_class(m: int, k: int) -> str:
    """The shape class (:data:`GEMM_CLASSES`) of a ``(m × k) @ (k × n)`` product, ``n`` long.

    >>> gemm_class(1, 1), gemm_class(1, 4), gemm_class(8, 3), gemm_class(64, 64)
    ('axpy', 'axpy', 'thin', 'medium')
    >>> gemm_class(256, 128)
    'wide'
    """
    side = min(m, k)
    if side == 1:
        return "axpy"
    return "thin" if side <= 16 else "medium" if side <= 64 else "wide"


class Rates(NamedTuple):
    """The machine constants of one BLAS thread count.

    ``gemm`` — GFLOP/s of a long GEMM per shape class (:func:`gemm_class`), float32;
    float64 runs at half the rate. ``stream`` — GB/s of a NumPy pass, bytes read plus
    written. ``call`` — seconds of fixed cost per BLAS call or NumPy pass (Python,
    dispatch, a cold start of the kernel). ``fft`` — nanoseconds per ``n·log2 n``
    point of a real FFT (float32; float64 costs ``FFT_FLOAT64`` times more).
    ``scale`` — per method (``"winograd"``) and per method and shape class
    (``"winograd/wide"``, preferred when present), measured time over the time the
    counts predict, the median over the benchmark layers it runs (what counting
    misses: small transform GEMMs, elementwise complex products, cache behaviour,
    the junk positions of a 3-d tap sum); 1 if absent. A nested method's scale
    multiplies its whole prediction (its own passes plus its planned sub-layers);
    ``"subpixel"`` comes from timing it against the tap sum on layers C and H.
    """

    gemm: dict[str, float]
    stream: float
    call: float
    fft: float
    scale: dict[str, float]


# Calibrated by ``python benchmarks/fast.py --calibrate`` (env -u OPENBLAS_CORETYPE
# -u OPENBLAS_L2_SIZE) on the benchmark machine of docs/benchmarks.md: AMD EPYC
# (AVX-512), OpenBLAS 0.3.30 SkylakeX kernels, 2 vCPUs shared with other
# work (the fastest of several calls, so the least disturbed; the two-thread figures
# were measured with the second core often busy, which is why they are not twice
# the one-thread ones: they describe this machine as it was, not an ideal one).
RATES: dict[int, Rates] = {
    1: Rates(
        gemm={"thin": 40.4, "medium": 53.2, "wide": 84.5, "axpy": 13.6},
        stream=19.3,
        call=7.2e-06,
        fft=0.28,
        scale={
            "depthwise": 0.64,
            "depthwise/axpy": 0.64,
            "direct": 1.03,
            "direct/axpy": 1.22,
            "direct/medium": 0.89,
            "direct/thin": 1.22,
            "direct/wide": 1.03,
            "fft": 1.42,
            "fft/axpy": 1.22,
            "fft/medium": 1.76,
            "fft/thin": 0.82,
            "fft/wide": 2.8,
            "gemm": 1.23,
            "gemm/axpy": 1.38,
            "gemm/medium": 1.13,
            "gemm/thin": 1.51,
            "gemm/wide": 1.04,
            "subpixel": 0.77,
            "winograd": 0.65,
            "winograd/axpy": 0.7,
            "winograd/medium": 0.65,
            "winograd/thin": 0.35,
            "winograd/wide": 1.07,
        },
    ),
    2: Rates(
        gemm={"thin": 34.9, "medium": 127.0, "wide": 163.9, "axpy": 20.4},
        stream=17.8,
        call=1.1e-05,
        fft=0.31,
        scale={
            "depthwise": 0.48,
            "depthwise/axpy": 0.48,
            "direct": 1.28,
            "direct/axpy": 1.33,
            "direct/medium": 1.49,
            "direct/thin": 0.55,
            "direct/wide": 1.14,
            "fft": 1.21,
            "fft/axpy": 1.08,
            "fft/medium": 1.98,
            "fft/thin": 0.69,
            "fft/wide": 3.38,
            "gemm": 1.33,
            "gemm/axpy": 1.32,
            "gemm/medium": 1.58,
            "gemm/thin": 0.61,
            "gemm/wide": 1.24,
            "subpixel": 0.77,
            "winograd": 0.81,
            "winograd/axpy": 0.49,
            "winograd/medium": 1.01,
            "winograd/thin": 0.28,
            "winograd/wide": 1.2,
        },
    ),
}
FFT_FLOAT64 = 1.6


def rates(threads: int) -> Rates:
    """The constants of the largest calibrated thread count not above ``threads``.

    >>> rates(1) is RATES[1], rates(64) is RATES[max(RATES)]
    (True, True)
    """
    usable = [t for t in RATES if t <= max(threads, 1)]
    return RATES[max(usable) if usable else min(RATES)]


def scale(method: str, shape: str, threads: int) -> float:
    """The calibrated correction of ``method``'s prediction for GEMMs of class ``shape``.

    >>> scale("no such method", "wide", 1)
    1.0
    """
    factors = rates(threads).scale
    return factors.get(f"{method}/{shape}", factors.get(method, 1.0))


def seconds(counts: Counts, shape: str, itemsize: int, threads: int) -> float:
    """Predicted seconds of one call doing ``counts`` of work.

    ``shape`` is the :func:`gemm_class` of its products; ``itemsize`` 4 (float32)
    or 8 (float64: GEMMs and FFTs slower, bytes already counted as such).

    >>> seconds(Counts(gemm_flops=2e9, gemm_calls=1), "wide", 4, 1) > 0.01
    True
    """
    r = rates(threads)
    gemm = r.gemm[shape] * 1e9 / (2.0 if itemsize >= 8 else 1.0)
    fft = r.fft * 1e-9 * (FFT_FLOAT64 if itemsize >= 8 else 1.0)
    return (
        counts.gemm_flops / gemm
        + counts.stream_bytes / (r.stream * 1e9)
        + (counts.gemm_calls + counts.passes) * r.call
        + counts.fft_points * fft
    )
