"""Winograd minimal filtering: a stride-1 convolution with fewer multiplications per output.

``F(m, r)`` computes ``m`` outputs of an ``r``-tap correlation from one tile of
``α = m + r − 1`` inputs with ``α`` multiplications instead of ``m·r``
(Toom-Cook: evaluate at ``α`` points, multiply pointwise, interpolate):
``y = Aᵀ[(G g) ⊙ (Bᵀ d)]``. Along ``d`` axes the transforms are Kronecker
products: F(2×2, 3×3) takes 16 multiplies for 4 outputs where the direct sum
takes 36 (2.25× fewer), F(4×4, 3×3) 36 for 16 against 144 (4×), F(2×2×2, 3×3×3)
64 for 8 against 216 (3.4×). In a channel-heavy layer the multiplications are
GEMMs over channels — one ``(C_out × C_in) @ (C_in × tiles)`` product per
transformed tap, ``α^d`` of them instead of the ``r^d`` tap products of
:mod:`convmat._fast.direct` — while the transforms are elementwise passes whose
cost grows with ``C_in + C_out``, not their product. It wins when the channels
are many against the transforms' terms: stride-1 ``k = 3`` layers with 64 or
more channels, and the stride-1 parts of polyphase and sub-pixel layers (``k = 2``
after the split). Measured, float32, one thread (docs/fast.md): layer E (256
channels) ~0.9-1.1× torch, B (64) ~1.15-1.3×, H through polyphase ~1.1-1.5×; G
(16 channels, 3-d) loses by 2-3×; float64 beats torch 2-3× on B and G.

The pipeline runs block by block — a few samples, or a band of tile rows of one
sample: about ``CHUNK_BYTES`` of transformed input, so that every pass of a block
finds its operands in cache, but at least ``GEMM_POSITIONS`` tiles, so that the
GEMMs pay for packing the transformed kernel (layer B: a sample a block, measured
1.2× faster than half samples; E: the batch of 8; H's 2×2 parts: the batch of 16):

1. copy the block's padded input into ``m^d`` stride phases ("phase planes",
   channel-major and flat, ``np.pad`` first for the non-zero padding modes as
   :func:`convmat._fast.direct.conv_engine`): tile ``t`` reads phase ``i mod m``
   at ``t + ⌊i/m⌋``, so every overlapping tile is a *shifted flat view* — no
   tile gather, no Python loop over tiles;
2. the input transform ``Bᵀ``, one axis after the other: each transformed
   component is a sum of shifted planes, one NumPy pass per nonzero of ``Bᵀ``
   and component of the other axes, each operand one contiguous run (NumPy's
   loops read a strided operand two to three times slower, whatever its inner
   run; the matrices are sparse with ±1 entries: F(2, 3)'s ``Bᵀ`` has two per row);
3. the ``α^d · groups`` tap GEMMs, one stacked ``np.matmul``, with the kernel
   transformed once per call (``G g Gᵀ``, one GEMM with the Kronecker product of the
   ``G``, from the tap-major weight the polyphase split hands over without a copy);
4. the output transform ``Aᵀ`` (elementwise passes again, no shifts) and one
   strided copy per output phase into ``(N, C_out, *out)``; the bias is added last,
   in one contiguous pass.

A plane row is ``⌊(α − 1)/m⌋`` positions longer than its tiles (the shifted
reads run on into it). Those junk positions are dropped before the GEMMs by one
copy when they would make them more than ``CROP_JUNK`` larger (E: 64 positions a
sample for 49 tiles; H's 2×2 kernels after the split: 25 for 16), else they ride
along and the store crops them (B: 29² for 28²).

The passes of a block shape — every NumPy call with its operands as views of the
block's own buffers — are prepared once per thread and kept (``PROGRAMS`` shapes,
the most recently used; :func:`convmat._fast.direct.clear_scratch` drops them), so
a block costs its arithmetic and about a microsecond per call, not the Python that
lays the passes out. The peak extra memory is ``counts(...).work_bytes``: one
block's buffers and the transformed kernel (layer B float32: ~8 MB counted, ~14 MB
measured besides the 6 MB result).

The transform matrices come from exact rational arithmetic
(:class:`fractions.Fraction`) for any ``m`` and ``r`` from interpolation points
``0, ±1, ±2, ±1/2, ±4, 1/4`` and ``∞`` (Lavin & Gray 2016; Barabasz et al. 2020;
``POINT_SETS`` for the better-conditioned sets found by measurement), then are
cast to the working dtype. Larger tiles lose accuracy (the coefficients grow
with ``α``): :func:`variant` keeps float32 to the tiles whose error stays within
4× PyTorch's (``TILES``) and picks among the allowed ones by predicted work.

Non-finite input: a tile mixes all its ``α^d`` inputs in every transformed value
(and the kernel transform mixes taps), so a single ``inf`` would turn a whole
tile's outputs into NaN where the direct sum gives ``inf`` or a finite value in
some of them. Inputs and weights holding NaN or inf therefore go to the direct
engine (a sum decides, an exact ``np.isfinite`` pass confirms), so the
non-finite pattern is exactly the direct path's.

Dilation > 1 is refused (:func:`why_not`): a dilated stride-1 layer splits into
``∏d`` undilated ones on sub-lattices, but each is small and pays the transforms
and the splitting again.

References
----------
A. Lavin and S. Gray, "Fast algorithms for convolutional neural networks", CVPR 2016.
B. Barabasz, A. Anderson, K. M. Soodhalter and D. Gregg, "Error analysis and
improving the accuracy of Winograd convolution for deep neural networks",
ACM TOMS 46(4), 2020.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np

from convmat._blas import transpose
from convmat._fast.cost import Counts
from convmat._fast.direct import (
    _key,
    _programs,
    _scratch,
    _view,
    conv_engine,
    conv_transpose_engine,
    pad_mode,
)
from convmat._fast.teaching import _flipped_swapped
from convmat._layer import Layer

Array = np.ndarray[Any, Any]

NAME = "winograd"

#: Interpolation points: F(m, r) uses the first ``m + r − 2`` of them and ``∞``,
#: unless ``POINT_SETS`` names a better set of that size (measured: the float32 error
#: of 2-d F(3, 3) drops from 6× to 3× PyTorch's with {0, −1, 2, 1/2} instead of
#: {0, ±1, 2}; F(4, 3)'s from 15× to 6× with {0, ±1, −2, 1/2}).
POINTS: tuple[Fraction, ...] = tuple(
    Fraction(p) for p in (0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2), 4, -4, Fraction(1, 4))
)
POINT_SETS: dict[int, tuple[Fraction, ...]] = {
    4: (Fraction(0), Fraction(-1), Fraction(2), Fraction(1, 2)),
    5: (Fraction(0), Fraction(1), Fraction(-1), Fraction(-2), Fraction(1, 2)),
}
MAX_TAPS = 7  # kernel taps per axis served
#: Output tile sizes allowed per kernel size and dtype. float32 keeps the normwise
#: error within 4× PyTorch's own float32 error (measured on 1-, 2- and 3-d layers with
#: 16-64 channels: F(2, 3) 0.3-2.5×, F(3, 3) 2-6×, F(4, 3) 5-20×, F(3, 4) 3-5×), so
#: only F(2, 2), F(3, 2), F(2, 3) and F(2, 4) (1-3×); an axis with no entry runs
#: F(1, r), the direct sum.
#: float64 stays far inside 1e-12 with these (and larger) tiles; larger tiles' transforms
#: cost more than their fewer products save.
TILES: dict[str, dict[int, tuple[int, ...]]] = {
    "f4": {2: (2, 3), 3: (2,), 4: (2,)},
    "f8": {2: (2, 3, 4, 5, 6), 3: (2, 3, 4), 4: (2, 3, 4), 5: (2, 3), 6: (2,), 7: (2,)},
}
#: Flops a GEMM does in the time of one elementwise term per plane position (measured
#: 50-100 on layers B and E, float32 and float64): the exchange rate of :func:`variant`.
ELEMENT_FLOPS = 64
CHUNK_BYTES = 2 * 2**20  # transformed input per block
GEMM_POSITIONS = 1024  # tiles per block at least
PROGRAMS = 8  # block programs kept per thread (the most recently used)
#: Junk positions (a plane row's reach past its tiles) are dropped before the GEMMs when
#: they would make them this much larger (one copy of the transformed input).
CROP_JUNK = 1.1


# --------------------------------------------------------------------------- the transforms

Matrix = tuple[tuple[Fraction, ...], ...]


def _poly_from_roots(roots: Sequence[Fraction]) -> list[Fraction]:
    """Coefficients (ascending powers) of ``∏ (x − root)``."""
    coeffs = [Fraction(1)]
    for root in roots:
        shifted = [Fraction(0), *coeffs]
        coeffs = [a - root * b for a, b in zip(shifted, [*coeffs, Fraction(0)], strict=True)]
    return coeffs


@functools.cache
def exact_transforms(m: int, r: int) -> tuple[Matrix, Matrix, Matrix]:
    """``(Aᵀ, G, Bᵀ)`` of F(m, r) as exact fractions: ``y = Aᵀ[(G g) ⊙ (Bᵀ d)]``.

    ``Aᵀ`` is ``m × α``, ``G`` ``α × r`` and ``Bᵀ`` ``α × α`` (``α = m + r − 1``);
    ``y[i] = Σ_k g[k] d[i + k]`` for every ``d`` of length ``α`` and ``g`` of length
    ``r``. Toom-Cook: the correlation is the transpose of the linear convolution of
    an ``m``-vector with ``g``, computed by evaluating both polynomials at the
    finite points and at ``∞`` (the leading coefficient) and interpolating
    (Lagrange). The Lagrange denominators go into ``G``, so ``Bᵀ`` holds the
    coefficients of ``∏_{l≠j} (x − p_l)``. ``m = 1`` or ``r = 1`` give the trivial
    (direct) transforms.

    >>> at, g, bt = exact_transforms(2, 3)
    >>> [[str(v) for v in row] for row in bt]
    [['-1', '0', '1', '0'], ['0', '1', '1', '0'], ['0', '-1', '1', '0'], ['0', '-1', '0', '1']]
    """
    if m < 1 or r < 1:
        raise ValueError(f"m and r must be >= 1; got m={m}, r={r}")
    one, zero = Fraction(1), Fraction(0)

    def eye(n: int) -> Matrix:
        return tuple(tuple(one if i == j else zero for j in range(n)) for i in range(n))

    if r == 1:
        return eye(m), tuple((one,) for _ in range(m)), eye(m)
    if m == 1:
        return (tuple(one for _ in range(r)),), eye(r), eye(r)
    alpha = m + r - 1
    if alpha - 1 > len(POINTS):
        raise ValueError(f"m + r must be <= {len(POINTS) + 2}; got m={m}, r={r}")
    points = POINT_SETS.get(alpha - 1, POINTS[: alpha - 1])
    # Aᵀ: the transposed evaluation of the m-vector's polynomial (∞: its top coefficient).
    at = tuple((*(p**i for p in points), one if i == m - 1 else zero) for i in range(m))
    # G: the kernel's polynomial evaluated, over the Lagrange denominators.
    rows = []
    for p in points:
        denominator = math.prod((p - q for q in points if q != p), start=one)
        rows.append(tuple(p**k / denominator for k in range(r)))
    rows.append(tuple(one if k == r - 1 else zero for k in range(r)))
    g = tuple(rows)
    # Bᵀ: the transposed interpolation, row j the coefficients of ∏_{l≠j} (x − p_l).
    bt_rows = [(*_poly_from_roots([q for q in points if q != p]), zero) for p in points]
    bt_rows.append(tuple(_poly_from_roots(points)))
    return at, g, tuple(bt_rows)


@functools.lru_cache(maxsize=64)
def transforms(m: int, r: int, dtype: Any) -> tuple[Array, Array, Array]:
    """``(Aᵀ, G, Bᵀ)`` of F(m, r) cast to ``dtype`` (read-only, cached per ``(m, r, dtype)``).

    >>> at, g, bt = transforms(4, 3, np.float64)
    >>> at.shape, g.shape, bt.shape
    ((4, 6), (6, 3), (6, 6))
    """
    arrays = []
    for matrix in exact_transforms(m, r):
        array = np.array([[float(v) for v in row] for row in matrix], dtype=np.dtype(dtype))
        array.flags.writeable = False
        arrays.append(array)
    return arrays[0], arrays[1], arrays[2]


# --------------------------------------------------------------------------- the plan


def why_not(layer: Layer, *, transposed: bool) -> str | None:
    """``None`` when :func:`conv` (or :func:`conv_transpose`) computes ``layer``; else why not."""
    if any(s != 1 for s in layer.stride):
        return f"needs stride 1 on every axis; got {layer.stride}"
    if any(d != 1 for d in layer.dilation):
        return f"needs dilation 1 on every axis; got {layer.dilation}"
    if max(layer.kernel_size) > MAX_TAPS:
        return f"needs at most {MAX_TAPS} kernel taps per axis; got {layer.kernel_size}"
    if transposed and layer.padding_mode != "zeros":  # pragma: no cover - the checker refuses
        return f"needs zero padding when transposed; got {layer.padding_mode!r}"
    return None


def _geometry(
    layer: Layer, transposed: bool
) -> tuple[tuple[int, ...], tuple[int, ...], list[tuple[int, int]]]:
    """``(input spatial, output spatial, (lo, hi) padding)`` of the stride-1 forward
    correlation computed (the transposed layer's flipped-kernel conv; negative pads crop)."""
    if transposed:
        pads = [
            (k - 1 - lo, k - 1 - hi + op)
            for k, (lo, hi), op in zip(
                layer.kernel_size, layer.padding, layer.output_padding, strict=True
            )
        ]
        return layer.out_spatial, layer.in_spatial, pads
    return layer.in_spatial, layer.out_spatial, list(layer.padding)


def variant(
    layer: Layer, itemsize: int, *, transposed: bool = False
) -> tuple[tuple[int, int], ...]:
    """Per axis, the ``(m, r)`` of the F(m, r) run: ``r`` the kernel taps, ``m`` the tile.

    Among the tile sizes accurate enough for the dtype (``TILES``), the combination
    with the least predicted work: the tap GEMMs' flops plus ``ELEMENT_FLOPS`` per
    plane position and term of the elementwise transforms (a term with a coefficient
    other than ±1 counts twice). Measured on layers B, E and G (64, 256 and 16
    channels) F(2, 3) beats F(3, 3) and F(4, 3) in float64 too: the transforms of the
    larger tiles cost more than their fewer products save. With a few hundred channels
    the model moves to F(4, 3) on some axes (not measured).

    >>> from convmat._layer import conv_layer
    >>> variant(conv_layer((64, 56, 56), (64, 64, 3, 3), padding=1), 8)
    ((2, 3), (2, 3))
    >>> variant(conv_layer((512, 28, 28), (512, 512, 3, 3), padding=1), 8)
    ((4, 3), (2, 3))
    >>> variant(conv_layer((512, 28, 28), (512, 512, 3, 3), padding=1), 4)
    ((2, 3), (2, 3))
    """
    table = TILES["f4" if itemsize <= 4 else "f8"]
    _, out, _ = _geometry(layer, transposed)
    c_in, c_out = (
        (layer.out_channels, layer.in_channels)
        if transposed
        else (layer.in_channels, layer.out_channels)
    )
    options = []
    for r, o in zip(layer.kernel_size, out, strict=True):
        sizes = [(m, r) for m in table.get(r, ()) if m <= max(o, 2)]
        options.append(sizes if r > 1 and sizes else [(1, r)])

    def work(tiles: tuple[tuple[int, int], ...]) -> tuple[float, tuple[int, ...]]:
        plan = _plan(tiles, out)
        rows = math.prod(plan.rows)
        taps = 2.0 * math.prod(plan.alpha) * (c_out // layer.groups) * c_in * rows
        terms_in, terms_out, _, _ = _terms(tiles, itemsize, weighted=True)
        elements = ELEMENT_FLOPS * rows * (terms_in * c_in + terms_out * c_out)
        return taps + elements, tuple(m for m, _ in tiles)

    return min(itertools.product(*options), key=work)


class _Plan(NamedTuple):
    """The layout of one call (see :func:`_winograd`), from the geometry alone."""

    tiles: tuple[tuple[int, int], ...]  # (m, r) per axis
    alpha: tuple[int, ...]  # m + r − 1 per axis
    grid: tuple[int, ...]  # tiles per axis
    reach: tuple[int, ...]  # ⌊(α − 1)/m⌋: how many tiles further a tile reads per axis
    rows: tuple[int, ...]  # phase-plane positions per axis: grid + reach
    pitch: tuple[int, ...]  # flat distance of one position per axis in a plane


def _plan(tiles: tuple[tuple[int, int], ...], out: Sequence[int]) -> _Plan:
    alpha = tuple(m + r - 1 for m, r in tiles)
    grid = tuple(-(-o // m) for o, (m, _) in zip(out, tiles, strict=True))
    reach = tuple((a - 1) // m for a, (m, _) in zip(alpha, tiles, strict=True))
    rows = tuple(t + q for t, q in zip(grid, reach, strict=True))
    pitch = tuple(math.prod(rows[a + 1 :]) for a in range(len(rows)))
    return _Plan(tiles, alpha, grid, reach, rows, pitch)


def _nonzeros(matrix: Array) -> list[list[tuple[Any, int]]]:
    """Per row of a transform matrix, its ``(coefficient, column)`` pairs."""
    return [[(v, i) for i, v in enumerate(row) if v != 0] for row in matrix]


def _terms(
    tiles: Sequence[tuple[int, int]], itemsize: int, *, weighted: bool = False
) -> tuple[int, int, int, int]:
    """``(component terms in, out, NumPy calls in, out)`` of one block's elementwise
    transforms: the terms count one plane-sized read per nonzero of a matrix and
    component of the other axes (``weighted``: twice for a coefficient other than ±1, a
    multiply and an add); the calls are the passes :func:`_transform` prepares, those
    of :func:`_combine` for each row and component of the other axes."""
    dtype = np.float32 if itemsize <= 4 else np.float64
    found = [0, 0, 0, 0]
    nothing = np.empty(0, dtype)
    for which, sizes in ((0, [m for m, _ in tiles]), (1, [m + r - 1 for m, r in tiles])):
        for axis, (m, r) in enumerate(tiles):
            matrix = transforms(m, r, dtype)[2 if which == 0 else 0]
            rows = _nonzeros(matrix)
            nnz = sum(len(row) for row in rows)
            if weighted:
                nnz += sum(1 for row in rows for c, _ in row if abs(c) != 1)
            calls = sum(len(_combine(nothing, [(c, nothing) for c, _ in row], nothing))
                        for row in rows)  # fmt: skip
            other = math.prod(sizes) // sizes[axis]
            found[which] += other * nnz
            found[2 + which] += other * calls
            sizes[axis] = matrix.shape[0]
    return found[0], found[1], found[2], found[3]


def counts(layer: Layer, n_batch: int, itemsize: int, *, transposed: bool) -> Counts:
    """The counted work of one call (see :class:`convmat._fast.cost.Counts`).

    GEMM flops: the ``α^d·groups`` tap GEMMs over the tiles (with the junk positions
    when they are not cropped, :func:`_crop`) and the kernel transform.
    Streamed bytes: the finiteness check, the split into phase planes, the elementwise
    transforms (each term reads a block-sized run, and writes or updates one), the
    crop, the final store and the bias. ``passes``: the NumPy calls of every block's
    program (:func:`_build`). ``work_bytes``: the largest block's program (planes,
    transform buffers, products), the transformed kernel.
    """
    tiles = variant(layer, itemsize, transposed=transposed)
    spatial, out, _ = _geometry(layer, transposed)
    c_in, c_out = (
        (layer.out_channels, layer.in_channels)
        if transposed
        else (layer.in_channels, layer.out_channels)
    )
    groups, item = layer.groups, itemsize
    plan = _plan(tiles, out)
    samples, band = _chunks(plan, c_in, n_batch, item)
    per_sample = -(-plan.grid[0] // band)
    blocks = -(-n_batch // samples) * per_sample
    # Planes rows computed: each band of a sample recomputes the reach rows below it.
    rows = n_batch * math.prod(plan.rows) * (1 + plan.reach[0] * (per_sample - 1) / plan.rows[0])
    crop = _crop(plan)
    kept = n_batch * math.prod(plan.grid) if crop else rows
    alpha_all, phases = math.prod(plan.alpha), math.prod(m for m, _ in tiles)
    taps = math.prod(layer.kernel_size)
    flops = 2.0 * alpha_all * (c_out // groups) * c_in * kept
    flops += 2.0 * alpha_all * taps * c_out * (c_in // groups)
    terms_in, terms_out, ops_in, ops_out = _terms(tiles, item)
    x_bytes = n_batch * c_in * math.prod(spatial) * item
    y_bytes = n_batch * c_out * math.prod(out) * item
    stream = 2 * x_bytes + phases * c_in * rows * item
    stream += 2 * item * (terms_in * c_in * rows + terms_out * c_out * kept)
    stream += 2 * alpha_all * c_in * kept * item if crop else 0
    stream += phases * c_out * kept * item + 3 * y_bytes
    # The largest block's program: planes, two transform buffers, a spare, the products
    # (and the cropped input); and the transformed kernel.
    block_rows = samples * math.prod(plan.rows[1:]) * (min(band, plan.grid[0]) + plan.reach[0])
    block_kept = block_rows * (math.prod(plan.grid) / math.prod(plan.rows) if crop else 1)
    largest = alpha_all * max(c_in * block_rows, c_out * block_kept)
    work = phases * c_in * block_rows + 3 * largest + alpha_all * c_out * block_kept
    work += alpha_all * c_in * block_kept if crop else 0
    work = (work + alpha_all * c_out * (c_in // groups)) * item
    return Counts(
        gemm_flops=flops,
        gemm_calls=blocks * alpha_all * groups + 1,
        stream_bytes=float(stream),
        passes=3 + blocks * (2 * phases + ops_in + ops_out + crop),
        work_bytes=int(work),
    )


# --------------------------------------------------------------------------- the engine


def _kernel(w: Array, tiles: Sequence[tuple[int, int]], groups: int, dtype: Any) -> Array:
    """``G g Gᵀ`` per axis as ``(α^d·G, C_out/G, C_in/G)``: one GEMM with the Kronecker
    product of the ``G`` (a float32 kernel in float32: the GEMM has only ``r^d`` terms
    and float64 would triple its time)."""
    wide = w.dtype
    kron: Array = np.ones((1, 1), dtype=wide)
    for m, r in tiles:
        kron = np.kron(kron, transforms(m, r, wide)[1])
    c_out, per_in = w.shape[:2]
    n_taps = math.prod(w.shape[2:])
    # (r^d, C_out·C_in/G): free when w is a view of tap-major memory (the polyphase
    # weight), else one BLAS transpose.
    taps = np.moveaxis(w, tuple(range(2, w.ndim)), tuple(range(w.ndim - 2)))
    if taps.flags.c_contiguous:
        taps = taps.reshape(n_taps, c_out * per_in)
    else:
        taps = np.empty((n_taps, c_out * per_in), dtype=w.dtype)
        transpose(np.ascontiguousarray(w).reshape(c_out * per_in, n_taps), taps)
    u = _scratch("winograd_kernel", (kron.shape[0], taps.shape[1]), dtype)
    np.matmul(kron.astype(dtype), taps.astype(dtype, copy=False), out=u)
    return u.reshape(kron.shape[0] * groups, c_out // groups, per_in)


Op = tuple[Callable[..., Any], tuple[Any, ...]]


def _combine(out: Array, terms: Sequence[tuple[Any, Array]], spare: Array) -> list[Op]:
    """The passes computing ``out = Σ coefficient · array``: one NumPy call per term
    (±1 need no multiply), each ``(function, arguments)``, the output positional."""
    terms = sorted(terms, key=lambda term: term[0] != 1)  # a +1 term first, when there is one
    (c0, a0), rest = terms[0], terms[1:]
    ops: list[Op] = []
    if c0 == 1 and rest and rest[0][0] in (1, -1):
        (c1, a1), rest = rest[0], rest[1:]
        ops.append((np.add if c1 == 1 else np.subtract, (a0, a1, out)))
    elif c0 == 1:
        ops.append((np.copyto, (out, a0)))
    else:
        ops.append((np.multiply, (a0, c0, out)))
    for c, a in rest:
        if c == 1:
            ops.append((np.add, (out, a, out)))
        elif c == -1:
            ops.append((np.subtract, (out, a, out)))
        else:
            ops += [(np.multiply, (a, c, spare)), (np.add, (out, spare, out))]
    return ops


def _transform(
    source: Array,
    matrices: Sequence[Array],
    sizes: Sequence[int],
    shifts: Sequence[Sequence[int]] | None,
    length: int,
    tails: Sequence[int],
    buffers: tuple[Array, Array, Array],
) -> tuple[list[Op], Array]:
    """The passes applying ``matrices[a]`` along axis ``a`` of the components of
    ``source``, and the array they leave the result in.

    ``source`` is ``(∏ sizes, length + tails[0])``: one flat plane per combination of
    per-axis indices. Along axis ``a``, output component ``j`` is
    ``Σ_i M[j, i] · (component i % s, read shifts[a][i] positions further)`` where ``s``
    is that axis' input count — the phase planes of the input transform read
    ``(i mod m, ⌊i / m⌋ tiles on)``; the output transform has no shifts and ``s = α``.
    One pass per nonzero of ``M`` and combination of the other axes' components, so
    every operand is one contiguous run (NumPy's loops read strided operands several
    times slower); the axes alternate between ``buffers[0]`` and ``buffers[1]``
    (``buffers[2]`` is the spare of a coefficient other than ±1). The last axis
    leaves ``(∏ rows of M, length + tails[-1])``.
    """
    dims = list(sizes)
    current = source
    ops: list[Op] = []
    for axis, matrix in enumerate(matrices):
        rows = _nonzeros(matrix)
        count = dims[axis]
        before, after = math.prod(dims[:axis]), math.prod(dims[axis + 1 :])
        span = length + tails[axis + 1]
        dims[axis] = len(rows)
        src = _view(current, (before, count, after, current.shape[-1]))
        target = _view(buffers[axis % 2][: math.prod(dims) * span], (math.prod(dims), span))
        dst = _view(target, (before, len(rows), after, span))
        spare = buffers[2][:span]
        for b, f in itertools.product(range(before), range(after)):
            for j, row in enumerate(rows):
                terms = []
                for c, i in row:
                    shift = 0 if shifts is None else shifts[axis][i]
                    terms.append((c, src[b, i % count, f, shift : shift + span]))
                ops += _combine(dst[b, j, f], terms, spare)
        current = target
    return ops, current


class _Program(NamedTuple):
    """Everything one block shape runs, built once (per thread) and reused by every
    block of that shape: its own buffers, views into them, and the passes between."""

    boxes: list[tuple[Array, tuple[slice, ...]]]  # per phase: data box in the planes, x index
    transform_in: list[Op]  # input transform (and the junk crop)
    v: Array  # the GEMM operand (α^d·G, C_in/G, positions)
    products: Array  # (α^d·G, C_out/G, positions)
    transform_out: list[Op]
    stores: list[tuple[Array, tuple[slice, ...]]]  # per output phase: result view, y index


class _Shape(NamedTuple):
    """What a block's program depends on: the chunk ``x (n, C_in, *)`` and its zero
    padding, the tiles, the groups and the output ``(n, C_out, *out)``."""

    shape: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    tiles: tuple[tuple[int, int], ...]
    groups: int
    c_out: int
    out: tuple[int, ...]
    dtype: np.dtype[Any]


def _program(shape: _Shape) -> _Program:
    """The :class:`_Program` of a block shape, built the first time this thread meets it."""
    key = ("winograd", *shape)
    programs = _programs()
    found = programs.pop(key, None)
    if found is None:
        found = _build(shape)
        while len(programs) >= PROGRAMS:
            programs.pop(next(iter(programs)))
    programs[key] = found  # the most recently used last
    program: _Program = found
    return program


def _build(key: _Shape) -> _Program:
    shape, pads, tiles, groups, c_out, out, dtype = key
    nc, c_in = shape[:2]
    per_in, per_out = c_in // groups, c_out // groups
    plan = _plan(tiles, out)
    steps = [m for m, _ in tiles]
    alpha_all = math.prod(plan.alpha)
    length = c_in * nc * math.prod(plan.rows)
    # Reads past a plane's end stay within the tail: Σ reach·pitch after each axis.
    reach = [q * pitch for q, pitch in zip(plan.reach, plan.pitch, strict=True)]
    tails = [sum(reach[a:]) for a in range(len(tiles) + 1)]
    planes = np.zeros((math.prod(steps), length + tails[0]), dtype=dtype)
    boxes = _boxes(planes, shape, pads, plan, length)
    kept = plan.grid if _crop(plan) else plan.rows
    positions = nc * math.prod(kept)
    largest = max(alpha_all * (length + tails[0]), alpha_all * c_out * positions)
    spare = max(length + tails[0], c_out * positions)
    buffers = (np.empty(largest, dtype), np.empty(largest, dtype), np.empty(spare, dtype))
    shifts = [[(i // m) * pitch for i in range(a)] for m, a, pitch in
              zip(steps, plan.alpha, plan.pitch, strict=True)]  # fmt: skip
    b_t = [transforms(m, r, dtype)[2] for m, r in tiles]
    transform_in, v = _transform(planes, b_t, steps, shifts, length, tails, buffers)
    if kept != plan.rows:  # drop the junk positions before the GEMMs: one copy
        computed = _view(v[:, :length], (alpha_all, c_in * nc, *plan.rows))
        dense = np.empty((alpha_all, c_in * nc, *kept), dtype)
        transform_in.append((np.copyto, (dense, computed[_key(slice(None), slice(None),
                                                               *map(slice, kept))])))  # fmt: skip
        v = dense
    v = _view(v, (alpha_all * groups, per_in, positions))
    products = np.empty((alpha_all * groups, per_out, positions), dtype)
    a_t = [transforms(m, r, dtype)[0] for m, r in tiles]
    transform_out, result = _transform(
        _view(products, (alpha_all, c_out * positions)),
        a_t,
        plan.alpha,
        None,
        c_out * positions,
        [0] * (len(tiles) + 1),
        buffers,
    )
    # Output phase q holds y[m·t + q] at tile t: one strided copy per phase.
    stores = []
    for block, phase in enumerate(itertools.product(*(range(m) for m in steps))):
        counts_ = [-(-(o - q) // m) for o, q, m in zip(out, phase, steps, strict=True)]
        if min(counts_) <= 0:
            continue
        grid = _view(result[block], (c_out, nc, *kept))
        src = grid[_key(slice(None), slice(None), *(slice(0, c) for c in counts_))]
        every = tuple(slice(q, None, m) for q, m in zip(phase, steps, strict=True))
        stores.append((src.transpose(1, 0, *range(2, src.ndim)), every))
    return _Program(boxes, transform_in, v, products, transform_out, stores)


def _boxes(
    planes: Array, shape: tuple[int, ...], pads: Sequence[tuple[int, int]], plan: _Plan,
    length: int,
) -> list[tuple[Array, tuple[slice, ...]]]:  # fmt: skip
    """Per phase of ``planes (∏m, length + tail)`` (zeros), the box its data fills and
    the index of the padded chunk ``x (n, C, *)`` it copies (as ``(C, n, *)``).

    Phase ``p`` holds padded position ``m·r + p`` at plane position ``r`` along each
    axis (channel-major: ``(C, n, *rows)`` flat); the zeros around never change.
    """
    n, channels = shape[:2]
    steps = [m for m, _ in plan.tiles]
    boxes = []
    for block, phase in enumerate(itertools.product(*(range(m) for m in steps))):
        dest = _view(planes[block, :length], (channels, n, *plan.rows))
        dst, src = [], []
        for p, m, (lo, _), size, rows in zip(phase, steps, pads, shape[2:], plan.rows, strict=True):
            first = min(max(-((p - lo) // m), 0), rows)  # ⌈(lo − p) / m⌉, clipped
            stop = min(max(-((p - lo - size) // m), first), rows)
            dst.append(slice(first, stop))
            start = m * first + p - lo
            src.append(slice(start, start + m * (stop - first), m))
        if all(d.stop > d.start for d in dst):
            boxes.append((dest[_key(slice(None), slice(None), *dst)], tuple(src)))
    return boxes


def _run(program: _Program, x: Array, u: Array, y: Array) -> None:
    """One block: ``y (n, C_out, *out)`` = the correlation of the chunk ``x`` by the
    transformed kernel ``u``."""
    for box, index in program.boxes:
        np.copyto(box, x[_key(slice(None), slice(None), *index)].transpose(1, 0, *range(2, x.ndim)))
    for function, arguments in program.transform_in:
        function(*arguments)
    np.matmul(u, program.v, out=program.products)
    for function, arguments in program.transform_out:
        function(*arguments)
    for source, every in program.stores:
        np.copyto(y[_key(slice(None), slice(None), *every)], source)


def _crop(plan: _Plan) -> bool:
    """Whether the junk positions are dropped before the GEMMs (one copy of the
    transformed input) rather than carried through them and the output transform."""
    return math.prod(plan.rows) > CROP_JUNK * math.prod(plan.grid)


def _chunks(plan: _Plan, c_in: int, n_batch: int, item: int) -> tuple[int, int]:
    """``(samples, tile rows)`` per block: the transformed input of a block stays near
    ``CHUNK_BYTES`` (in cache from one pass to the next), but its GEMMs get at least
    ``GEMM_POSITIONS`` tiles (BLAS packs the transformed kernel once per GEMM: fewer
    tiles leave it unpaid). Whole samples when one fits, else bands of the first
    axis' tiles, the blocks balanced (one block shape, one prepared program, serves
    them all but the edges).

    >>> _chunks(_plan(((2, 3), (2, 3)), (56, 56)), 64, 8, 4)  # layer B: one sample
    (1, 28)
    >>> _chunks(_plan(((2, 3), (2, 3), (2, 3)), (32, 32, 32)), 16, 2, 4)  # G: bands
    (1, 2)
    """
    alpha_all = math.prod(plan.alpha)
    per_position = alpha_all * c_in * item
    positions = max(CHUNK_BYTES // per_position, GEMM_POSITIONS)
    per_sample = math.prod(plan.rows)
    if per_sample <= positions:
        samples = max(1, min(n_batch, positions // per_sample))
        return -(-n_batch // -(-n_batch // samples)), plan.grid[0]
    per_row = math.prod(plan.rows[1:])
    band = max(1, positions // per_row - plan.reach[0])
    return 1, -(-plan.grid[0] // -(-plan.grid[0] // band))


def _winograd(
    x: Array,
    w: Array,
    pads: Sequence[tuple[int, int]],
    groups: int,
    bias: Array | None,
    out: Sequence[int],
    tiles: tuple[tuple[int, int], ...],
) -> Array:
    """The stride-1 correlation of ``x (N, C_in, *n)`` with ``w (C_out, C_in/G, *k)``.

    ``pads`` are zero paddings per axis (negative: crop); ``out`` the output size.
    Block by block (a few samples, or a band of tile rows of one sample, so the
    intermediates stay in cache): :func:`_block`.
    """
    n_batch, c_in = x.shape[:2]
    c_out = w.shape[0]
    dtype = x.dtype
    y = np.empty((n_batch, c_out, *out), dtype=dtype)
    if n_batch == 0:
        return y
    plan = _plan(tiles, out)
    samples, band = _chunks(plan, c_in, n_batch, dtype.itemsize)
    u = _kernel(w, tiles, groups, dtype)
    (m, r), (lo, _), size = tiles[0], pads[0], x.shape[2]
    later = tuple((before, after) for before, after in pads[1:])  # the other axes' pads
    for start in range(0, n_batch, samples):
        for t0 in range(0, plan.grid[0], band):
            t1 = min(t0 + band, plan.grid[0])
            # The band's tiles read padded positions [m·t0, m·t1 + r − 1) of the first axis.
            first, stop = m * t0 - lo, m * t1 + r - 1 - lo
            a, b = min(max(first, 0), size), min(max(stop, 0), size)
            o0, o1 = m * t0, min(m * t1, out[0])
            chunk = x[start : start + samples, :, a : max(a, b)]
            target = y[start : start + samples, :, o0:o1]
            shape = _Shape(chunk.shape, ((a - first, 0), *later), tiles, groups, c_out,
                           target.shape[2:], dtype)  # fmt: skip
            program = _program(shape)
            _run(program, chunk, u, target)
    if bias is not None:  # one contiguous pass (the stores above are strided)
        y += bias.reshape(1, -1, *(1,) * len(tiles))
    return y


def _finite(*arrays: Array) -> bool:
    """Whether every value is finite: a sum first (one fast reduction, no mask), the
    exact test only when the sum is not finite (NaN, inf, or an overflow)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return all(np.isfinite(np.sum(a)) or bool(np.isfinite(a).all()) for a in arrays)


def conv(x: Array, w: Array, layer: Layer, bias: Array | None) -> Array:
    """``conv`` of a batch ``x (N, C_in, *spatial)`` for a validated stride-1 layer.

    Non-finite ``x`` or ``w`` go to :func:`convmat._fast.direct.conv_engine`.
    """
    reason = why_not(layer, transposed=False)
    if reason is not None:
        raise ValueError(f"layer {reason}")
    if not _finite(x, w):
        return conv_engine(x, w, layer, bias)
    x = pad_mode(x, layer)
    pads = list(layer.padding) if layer.padding_mode == "zeros" else [(0, 0)] * layer.ndim
    tiles = variant(layer, x.dtype.itemsize)
    return _winograd(x, w, pads, layer.groups, bias, layer.out_spatial, tiles)


def conv_transpose(y: Array, w: Array, layer: Layer, bias: Array | None) -> Array:
    """``conv_transpose`` of a batch ``y (N, C_in, *spatial)`` for a validated stride-1 layer.

    A stride-1 transposed convolution is the stride-1 correlation of ``y`` with the
    flipped, channel-swapped kernel, padded by ``k − 1 − lo`` low and
    ``k − 1 − hi + output_padding`` high (a negative pad crops). Non-finite ``y``
    or ``w`` go to :func:`convmat._fast.direct.conv_transpose_engine`.
    """
    reason = why_not(layer, transposed=True)
    if reason is not None:
        raise ValueError(f"layer {reason}")
    if not _finite(y, w):
        return conv_transpose_engine(y, w, layer, bias)
    _, out, pads = _geometry(layer, True)
    kernel = _flipped_swapped(w, layer.groups)
    tiles = variant(layer, y.dtype.itemsize, transposed=True)
    return _winograd(y, kernel, pads, layer.groups, bias, out, tiles)
