"""The planner: one algorithm per layer, chosen by counted work and calibrated rates.

Every algorithm module of :mod:`convmat._fast` says whether it computes a layer
(``why_not``) and how much work one call does (``counts``: GEMM flops, BLAS
calls, bytes streamed by NumPy, FFT points). :func:`plan` turns each
candidate's counts into predicted seconds with the constants of
:mod:`convmat._fast.cost` (calibrated once by ``benchmarks/fast.py --calibrate``
and committed; nothing is timed at import or call time) and picks the fastest.
Plans are cached on the geometry, the dtype and the thread count.

Rules on top of the prediction:

* **Accuracy gate.** A variant whose float32 error exceeds 4× PyTorch's own on the
  same data (normwise, against a float64 reference) is never picked for float32
  (:data:`FLOAT32_GATES`). Other dtypes than float32 and float64 (complex) run
  the tap sum.
* **Small layers run the tap sum.** Below :data:`SWITCH_SECONDS` of predicted tap-sum
  time or :data:`SWITCH_VALUES` output values a call is mostly fixed costs, where
  the prediction is least sure and another method could save microseconds at most.
* **Exact first.** Winograd and FFT round differently from the tap sum (they are
  accurate, not bit-identical); they are picked only when they are predicted to
  save at least :data:`SWITCH_SAVING` of the best exact method's time. Polyphase,
  sub-pixel and depthwise do the tap sum's products in another order: on
  small-integer data they give the matrix's numbers exactly.
* **Threads.** The BLAS thread count is read from OpenBLAS
  (``openblas_get_num_threads``, a C call of a microsecond) on every call:
  ``threadpoolctl.threadpool_limits`` changes it, and with it the plan.
  Without OpenBLAS it counts as 1.
"""

from __future__ import annotations

import ctypes
import functools
import html
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from convmat._fast import direct
from convmat._fast.cost import Counts, gemm_class, scale, seconds
from convmat._layer import Layer

Array = np.ndarray[Any, Any]
Runner = Callable[[Array, Array, Layer, "Array | None"], Array]

#: Inexact methods (Winograd, FFT) must save this share of the best exact time ...
SWITCH_SAVING = 0.15
#: ... of a layer whose best exact method takes at least this long (seconds) ...
SWITCH_SECONDS = 1e-3
#: ... and whose output holds at least this many values (a call of fewer is mostly
#: overhead, where the prediction is least sure and the exact method costs little).
SWITCH_VALUES = 2**16

#: The public name of the tap sum, per direction.
DIRECT = {False: "direct", True: "gemm"}
#: Method names per direction, in the order explain_plan lists them.
FORWARD_METHODS = ("direct", "winograd", "polyphase", "depthwise", "fft")
TRANSPOSED_METHODS = ("gemm", "winograd", "subpixel", "depthwise", "fft")
#: Methods that do the tap sum's products in another order (exact on small integers).
EXACT = frozenset({"direct", "gemm", "polyphase", "subpixel", "depthwise"})
#: Methods whose work is a stride-1 sub-layer run by another method (``inner=``).
NESTED = frozenset({"polyphase", "subpixel"})
#: The module of each method.
MODULES = {
    "winograd": "winograd",
    "fft": "fft",
    "polyphase": "polyphase",
    "subpixel": "polyphase",
    "depthwise": "depthwise",
}


#: float32 accuracy gates: per method, a reason the float32 error of this layer
#: would exceed 4× PyTorch's (None: within it), as measured by the modules' authors.
FLOAT32_GATES: dict[str, Callable[..., str | None]] = {}


# --------------------------------------------------------------------------- threads


@functools.cache
def _openblas_threads() -> Callable[[], int] | None:
    """OpenBLAS's ``openblas_get_num_threads`` from the BLAS SciPy links, or ``None``."""
    try:
        from scipy.linalg import cython_blas

        library = ctypes.CDLL(cython_blas.__file__)
    except Exception:  # pragma: no cover - no SciPy BLAS to ask
        return None
    for symbol in ("scipy_openblas_get_num_threads", "openblas_get_num_threads"):
        fn = getattr(library, symbol, None)
        if fn is not None:
            fn.argtypes = []
            fn.restype = ctypes.c_int
            return fn  # type: ignore[no-any-return]
    return None  # pragma: no cover - not OpenBLAS


def blas_threads() -> int:
    """The thread count of the BLAS the fast path calls (1 when it cannot be read).

    >>> blas_threads() >= 1
    True
    """
    fn = _openblas_threads()
    return max(1, int(fn())) if fn is not None else 1


# --------------------------------------------------------------------------- the tap sum's counts


def _channels(layer: Layer, transposed: bool) -> tuple[int, int]:
    """``(m, k)`` of the per-group channel product: output and input channels per group."""
    per_in, per_out = layer.in_channels // layer.groups, layer.out_channels // layer.groups
    return (per_in, per_out) if transposed else (per_out, per_in)


def direct_counts(layer: Layer, n_batch: int, itemsize: int, *, transposed: bool) -> Counts:
    """The work of :func:`~convmat._fast.direct.conv_engine` (or the transposed engine).

    Read off the engine's own cached layout plan: one product per kernel tap over
    every position of the padded planes (junk positions included), the packing
    of the input into the planes and the store of the result.
    """
    groups = layer.groups
    m, k = _channels(layer, transposed)
    taps = math.prod(layer.kernel_size)
    n_in = layer.out_spatial if transposed else layer.in_spatial
    n_out = layer.in_spatial if transposed else layer.out_spatial
    x_bytes = n_batch * groups * k * math.prod(n_in) * itemsize
    y_bytes = n_batch * groups * m * math.prod(n_out) * itemsize
    if transposed:
        t_plan = direct._conv_transpose_plan(layer, n_batch, direct._tuning())
        length, blocks_in, blocks_out = t_plan.length, 1, t_plan.blocks
        planes = groups * k * (t_plan.size + t_plan.tail)
        out = groups * blocks_out * m * t_plan.size
        offsets = len({tap[0] for tap in t_plan.taps})
        pad_bytes = 0
    else:
        c_plan = direct._conv_plan(layer, n_batch, direct._tuning())
        length, blocks_in, blocks_out = c_plan.length, c_plan.blocks, c_plan.shifts
        planes = groups * blocks_in * k * (c_plan.size + c_plan.tail)
        out = groups * blocks_out * m * (c_plan.size + blocks_out - 1)
        offsets = len({tap[0] for tap in c_plan.taps})
        pad_bytes = 0 if layer.padding_mode == "zeros" else 2 * x_bytes
    stacked = m * k > 1 and offsets < taps
    calls = groups * (offsets if stacked else taps)
    return Counts(
        gemm_flops=2.0 * groups * m * k * taps * length,
        gemm_calls=calls,
        stream_bytes=float(pad_bytes + x_bytes + (planes + out) * itemsize + y_bytes),
        passes=2 * layer.ndim * blocks_in + blocks_out * (1 + groups) + 2,
        work_bytes=(planes + out) * itemsize,
    )


# --------------------------------------------------------------------------- the candidates


class Algorithm(NamedTuple):
    """One method of one direction: its public name and the module's functions.

    ``counts(layer, n_batch, itemsize, inner_counts)`` and ``run(x, w, layer, bias,
    inner)``; ``inner_counts`` / ``inner`` only for the nested methods (polyphase,
    sub-pixel), which hand stride-1 forward sub-layers to another method.
    """

    name: str
    why_not: Callable[[Layer], str | None]
    counts: Callable[..., Counts]
    run: Callable[..., Array]
    nested: bool


def _direct(transposed: bool) -> Algorithm:
    engine = direct.conv_transpose_engine if transposed else direct.conv_engine
    return Algorithm(
        DIRECT[transposed],
        lambda layer: None,
        lambda layer, n, item, inner=None: direct_counts(layer, n, item, transposed=transposed),
        lambda x, w, layer, bias, inner=None: engine(x, w, layer, bias),
        False,
    )


def _module_algorithm(name: str, transposed: bool) -> Algorithm | None:
    """The method ``name`` from its module, or ``None`` while that module is absent."""
    try:
        module = importlib.import_module(f"convmat._fast.{MODULES[name]}")
    except ImportError:
        return None
    names = getattr(module, "NAMES", {False: getattr(module, "NAME", None), True: None})
    if names.get(transposed, getattr(module, "NAME", None)) not in (name, None):
        return None  # the module's method of the other direction has another name
    run = getattr(module, "conv_transpose" if transposed else "conv", None)
    why_not = getattr(module, "why_not", None)
    counts = getattr(module, "counts", None)
    if run is None or why_not is None or counts is None:
        return None
    nested = name in NESTED

    def count(layer: Layer, n: int, item: int, inner: Any = None) -> Counts:
        if nested:
            return counts(layer, n, item, transposed=transposed, inner_counts=inner)  # type: ignore[no-any-return]
        return counts(layer, n, item, transposed=transposed)  # type: ignore[no-any-return]

    def call(x: Array, w: Array, layer: Layer, bias: Array | None, inner: Any = None) -> Array:
        if nested:
            return run(x, w, layer, bias, inner=inner)  # type: ignore[no-any-return]
        return run(x, w, layer, bias)  # type: ignore[no-any-return]

    return Algorithm(name, lambda layer: why_not(layer, transposed=transposed), count, call, nested)


@functools.cache
def algorithms(transposed: bool) -> dict[str, Algorithm]:
    """The methods available in this installation for one direction, by public name."""
    found = {DIRECT[transposed]: _direct(transposed)}
    for name in TRANSPOSED_METHODS if transposed else FORWARD_METHODS:
        if name not in found:
            algorithm = _module_algorithm(name, transposed)
            if algorithm is not None:
                found[name] = algorithm
    return found


# --------------------------------------------------------------------------- plans


class Candidate(NamedTuple):
    """One method considered for a layer: its counted work and predicted time, or why not."""

    method: str
    counts: Counts | None
    seconds: float | None
    reason: str | None  # why it cannot (or may not) run this layer; None when it may


def _shape_text(layer: Layer, n_batch: int, transposed: bool) -> str:
    def dims(values: tuple[int, ...]) -> str:
        return "×".join(str(v) for v in values)

    if transposed:
        source = (n_batch, layer.out_channels, *layer.out_spatial)
        result = (n_batch, layer.in_channels, *layer.in_spatial)
    else:
        source = (n_batch, layer.in_channels, *layer.in_spatial)
        result = (n_batch, layer.out_channels, *layer.out_spatial)
    parts = [f"kernel {dims(layer.kernel_size)}"]
    if any(s > 1 for s in layer.stride):
        parts.append(f"stride {dims(layer.stride)}")
    if any(d > 1 for d in layer.dilation):
        parts.append(f"dilation {dims(layer.dilation)}")
    if any(p != (0, 0) for p in layer.padding):
        parts.append("padding " + ", ".join(f"{lo}/{hi}" for lo, hi in layer.padding))
    if layer.groups > 1:
        parts.append(f"groups {layer.groups}")
    if layer.padding_mode != "zeros":
        parts.append(layer.padding_mode)
    return f"{dims(source)} → {dims(result)}, " + ", ".join(parts)


@dataclass(frozen=True)
class Plan:
    """Which algorithm runs a layer, and why: every candidate with its counted work.

    Made by :func:`convmat.explain_plan` (and cached by the fast path for every
    geometry it runs). ``method`` is the chosen method's name as ``conv`` /
    ``conv_transpose`` accept it; ``candidates`` lists every method of the
    direction with its counts and predicted seconds, or the reason it does not
    apply; ``reason`` says why the chosen one won.
    """

    kind: str  # "conv" or "conv_transpose"
    shape: str  # the layer in words
    dtype: str
    threads: int
    method: str
    reason: str
    candidates: tuple[Candidate, ...]
    inner: str | None = None  # the stride-1 method a nested method runs (polyphase, subpixel)

    @property
    def predicted_seconds(self) -> float:
        """The chosen method's predicted time of one call."""
        return next(c.seconds for c in self.candidates if c.method == self.method) or 0.0

    def _rows(self) -> list[tuple[str, str, str, str, str]]:
        rows = []
        for c in self.candidates:
            mark = "→ " if c.method == self.method else "  "
            if c.counts is None or c.seconds is None:
                rows.append((mark + c.method, "", "", "", f"not applicable: {c.reason}"))
                continue
            note = c.reason or ""
            if c.method == self.method and self.inner is not None:
                note = f"inner: {self.inner}"
            rows.append(
                (
                    mark + c.method,
                    f"{c.counts.gemm_flops / 1e9:.3g}",
                    f"{c.counts.stream_bytes / 2**20:.3g}",
                    f"{c.seconds * 1e3:.3g}",
                    note,
                )
            )
        return rows

    def __str__(self) -> str:
        head = ("method", "GFLOP", "MiB moved", "predicted ms", "")
        rows = [head, *self._rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = [
            f"{self.kind} {self.shape}; {self.dtype}, {self.threads} BLAS thread"
            f"{'s' if self.threads != 1 else ''}: {self.method}",
        ]
        for r in rows:
            cells = [r[0].ljust(widths[0]), *(r[i].rjust(widths[i]) for i in (1, 2, 3))]
            lines.append(("  " + "  ".join(cells) + "  " + r[4]).rstrip())
        lines.append(f"chosen: {self.method} — {self.reason}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Plan {self}>"

    def _repr_html_(self) -> str:
        head = ("method", "GFLOP", "MiB moved", "predicted ms", "")
        cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        body = []
        for r in self._rows():
            style = ' style="font-weight:bold"' if r[0].startswith("→") else ""
            tds = "".join(
                f'<td style="text-align:{"left" if i in (0, 4) else "right"}">{html.escape(v)}</td>'
                for i, v in enumerate(r)
            )
            body.append(f"<tr{style}>{tds}</tr>")
        title = html.escape(
            f"{self.kind} {self.shape}; {self.dtype}, {self.threads} BLAS thread"
            f"{'s' if self.threads != 1 else ''}"
        )
        return (
            f"<div><p><b>Plan</b>: {title} → <b>{html.escape(self.method)}</b></p>"
            f"<table><thead><tr>{cells}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f"<p>{html.escape(self.reason)}</p></div>"
        )


def _gate(method: str, layer: Layer, dtype: np.dtype[Any], transposed: bool) -> str | None:
    """Why ``method`` may not be picked for this dtype (None: it may)."""
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        return f"computes float32 and float64 only; got {dtype}"
    check = FLOAT32_GATES.get(method)
    if dtype == np.float32 and check is not None:
        reason = check(layer, transposed=transposed)
        if reason is not None:
            return f"float32 error above 4× torch's: {reason}"
    return None


def _candidate(
    algorithm: Algorithm,
    layer: Layer,
    n_batch: int,
    dtype: np.dtype[Any],
    transposed: bool,
    threads: int,
) -> tuple[Candidate, str | None]:
    """One method's counts and predicted seconds (and, nested, its inner methods)."""
    item = dtype.itemsize if dtype.kind == "f" else dtype.itemsize // 2
    if not algorithm.nested:
        counts = algorithm.counts(layer, n_batch, item)
        shape = gemm_class(*_channels(layer, transposed))
        predicted = scale(algorithm.name, shape, threads) * seconds(counts, shape, item, threads)
        return Candidate(algorithm.name, counts, predicted, None), None
    # A nested method: its own rearrangement plus the planned stride-1 sub-layers.
    subs: dict[Layer, Plan] = {}

    def inner_plan(sub: Layer) -> Plan:
        if sub not in subs:
            subs[sub] = _plan(sub, n_batch, dtype, False, threads)
        return subs[sub]

    def nothing(sub: Layer) -> Counts:
        inner_plan(sub)
        return Counts()

    def chosen(sub: Layer) -> Counts:
        p = inner_plan(sub)
        return next(c.counts for c in p.candidates if c.method == p.method) or Counts()

    own = algorithm.counts(layer, n_batch, item, nothing)
    factor = scale(algorithm.name, "thin", threads)
    predicted = factor * (
        seconds(own, "thin", item, threads) + sum(p.predicted_seconds for p in subs.values())
    )
    inner = ", ".join(sorted({p.method for p in subs.values()})) or None
    counts = algorithm.counts(layer, n_batch, item, chosen)
    return Candidate(algorithm.name, counts, predicted, None), inner


@functools.lru_cache(maxsize=256)
def _plan(layer: Layer, n_batch: int, dtype: np.dtype[Any], transposed: bool, threads: int) -> Plan:
    found = algorithms(transposed)
    names = TRANSPOSED_METHODS if transposed else FORWARD_METHODS
    candidates: list[Candidate] = []
    inners: dict[str, str | None] = {}
    for name in names:
        algorithm = found.get(name)
        if algorithm is None:
            candidates.append(Candidate(name, None, None, "not installed"))
            continue
        reason = algorithm.why_not(layer)
        if reason is None and name != DIRECT[transposed]:
            reason = _gate(name, layer, dtype, transposed)
        if reason is not None:
            candidates.append(Candidate(name, None, None, reason))
            continue
        candidate, inners[name] = _candidate(algorithm, layer, n_batch, dtype, transposed, threads)
        candidates.append(candidate)
    timed = [c for c in candidates if c.seconds is not None]
    tap_sum = candidates[0]  # the direct method always applies
    exact = min((c for c in timed if c.method in EXACT), key=lambda c: c.seconds or 0.0)
    best = min(timed, key=lambda c: c.seconds or 0.0)
    assert exact.seconds is not None and best.seconds is not None
    values = n_batch * (layer.in_size if transposed else layer.out_size)
    large = (tap_sum.seconds or 0.0) >= SWITCH_SECONDS and values >= SWITCH_VALUES
    chosen, reason = exact, "the fastest predicted"
    if len(timed) == 1:
        reason = "the only method that applies"
    elif not large:
        chosen = tap_sum
        reason = (
            f"the layer is small (under {SWITCH_SECONDS * 1e3:g} ms or {SWITCH_VALUES} output "
            "values): the tap sum, exact and with the fewest passes"
        )
    elif best.method not in EXACT:
        saving = 1 - best.seconds / exact.seconds
        if saving >= SWITCH_SAVING:
            chosen = best
            reason = f"predicted {saving:.0%} faster than {exact.method}, the best exact method"
        else:
            reason = (
                f"the fastest exact method; {best.method} would save {saving:.0%} "
                f"(under {SWITCH_SAVING:.0%})"
            )
    if reason == "the fastest predicted":
        following = sorted(timed, key=lambda c: c.seconds or 0.0)[1]
        ratio = (following.seconds or 0.0) / (chosen.seconds or 1.0)
        reason = f"the fastest predicted; the next, {following.method}, takes {ratio:.2g}× as long"
    return Plan(
        "conv_transpose" if transposed else "conv",
        _shape_text(layer, n_batch, transposed),
        str(dtype),
        threads,
        chosen.method,
        reason,
        tuple(candidates),
        inners.get(chosen.method),
    )


def plan(
    layer: Layer,
    n_batch: int,
    dtype: Any,
    *,
    transposed: bool,
    threads: int | None = None,
) -> Plan:
    """The plan of one call: which method runs ``layer`` for ``n_batch`` samples, and why.

    ``threads`` defaults to the BLAS thread count now (:func:`blas_threads`).
    Cached on all arguments; a plan is immutable.
    """
    return _plan(layer, int(n_batch), np.dtype(dtype), bool(transposed), threads or blas_threads())


# --------------------------------------------------------------------------- running


def _inner(x: Array, w: Array, layer: Layer, bias: Array | None) -> Array:
    """The stride-1 forward runner handed to polyphase and sub-pixel: the planned method."""
    return run(x, w, layer, bias, transposed=False)


def run(
    x: Array,
    w: Array,
    layer: Layer,
    bias: Array | None,
    *,
    transposed: bool,
    method: str = "auto",
) -> Array:
    """Run ``method`` (``"auto"``: the planned one) on a batch; the caller checked everything.

    A forced method that cannot compute the layer raises ``ValueError`` with its reason.
    """
    found = algorithms(transposed)
    if x.shape[0] == 0:
        return found[DIRECT[transposed]].run(x, w, layer, bias)
    if method == "auto":
        chosen = _plan(layer, x.shape[0], x.dtype, transposed, blas_threads()).method
    else:
        chosen = method
        refusal = why_not(method, layer, x.dtype, transposed=transposed)
        if refusal is not None:
            raise ValueError(f"method={method!r} {refusal}")
    return found[chosen].run(x, w, layer, bias, _inner)


def why_not(method: str, layer: Layer, dtype: Any, *, transposed: bool) -> str | None:
    """Why a forced ``method`` cannot compute ``layer`` in ``dtype`` (None: it can)."""
    found = algorithms(transposed)
    if method not in found:
        return "is not available in this installation"
    if method == DIRECT[transposed]:
        return None
    reason = found[method].why_not(layer)
    if reason is None:
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            reason = f"computes float32 and float64 only; got {dtype}"
    return reason
