"""Checkerboard artifacts, counted: how many kernel taps land on each output position.

A transposed convolution scatters every input element through its kernel into
the output. Where the scattered windows overlap unevenly, a constant input comes
out as a periodic pattern — the checkerboard of Odena, Dumoulin & Olah (2016).
The counts are the sparsity pattern of the layer (:mod:`convmat._pattern`)
filled with ones: the column sums of the forward convolution's pattern, i.e.
the response of the ones-kernel transposed layer to a ones input.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from convmat._args import axes_count, choice, is_sequence, ntuple, numeric_array, spatial_shape
from convmat._layer import Layer, conv_layer, conv_transpose_layer
from convmat._matrix import DEFAULT_MAX_BYTES, conv_matrix
from convmat._pattern import spatial_pattern
from convmat._shapes import conv_transpose_geometry
from convmat._upsample import resize_plan, upsample_matrix

IntArray = np.ndarray[Any, np.dtype[np.int64]]


def ones_matrix(layer: Layer) -> sp.csr_array:
    """One channel pair's pattern filled with ones (an entry counts the taps it carries)."""
    pattern = spatial_pattern(layer)
    values = pattern.fill(np.ones(pattern.n_taps, dtype=np.int64))
    return sp.csr_array((values, pattern.indices, pattern.indptr), shape=pattern.shape)


def _transpose_layer(spatial: tuple[int, ...], **geometry: Any) -> Layer:
    """The one-channel transposed layer of ``geometry`` on ``spatial``, validated."""
    geo = conv_transpose_geometry(spatial, **geometry)
    return conv_transpose_layer(
        (1, *geo.out),
        (1, 1, *geo.kernel_size),
        stride=geo.stride,
        padding=geo.padding,
        output_padding=geometry["output_padding"],
        dilation=geo.dilation,
    )


def overlap_map(
    spatial: Any,
    kernel_size: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    output_padding: Any = 0,
) -> IntArray:
    r"""How many kernel taps of a transposed convolution land on each output position.

    Parameters
    ----------
    spatial : int or sequence of int
        Input spatial shape of the transposed layer (any number of dims).
    kernel_size, stride, dilation, output_padding : int or sequence of int
    padding : int, sequence of int or of (low, high) pairs
        The forward layer's padding, as :func:`conv_transpose_matrix` takes it; it crops.

    Returns
    -------
    ndarray of int64, shape :func:`conv_transpose_output_shape`
        ``counts[i]`` = number of (input position, kernel tap) pairs that write output ``i``.

    Raises
    ------
    ValueError, TypeError
        As :func:`conv_transpose_output_shape`.

    See Also
    --------
    checkerboard : the interior pattern in closed form, per axis and combined.
    stack_overlap : the same counts through several layers.

    Notes
    -----
    The counts are the row sums of the layer's matrix :math:`C^T` with every weight
    set to 1 — the transposed convolution of a ones input with a ones kernel:

    .. math::

        \mathrm{counts}[\mathbf{i}] = \#\{(\mathbf{o}, \mathbf{t}) :
        \mathbf{o}\mathbf{s} + \mathbf{t}\mathbf{d} - \mathbf{lo} = \mathbf{i}\}
        = \prod_{\mathrm{axes}} \mathrm{counts}_{1\text{-d}}[i_a],

    a product of the per-axis counts, so in 2-d the unevenness is squared. Away
    from the borders the 1-d count is ``⌈k/s⌉`` or ``⌊k/s⌋`` (dilation 1): uniform
    exactly when ``s`` divides ``k``.

    References
    ----------
    A. Odena, V. Dumoulin and C. Olah, "Deconvolution and Checkerboard Artifacts",
    Distill, 2016. doi:10.23915/distill.00003

    Examples
    --------
    Kernel 3, stride 2: the interior alternates 1, 2 per axis — 1, 2, 4 in 2-d.

    >>> overlap_map(4, 3, stride=2)
    array([1, 1, 2, 1, 2, 1, 2, 1, 1])
    >>> overlap_map((3, 3), 3, stride=2)
    array([[1, 1, 2, 1, 2, 1, 1],
           [1, 1, 2, 1, 2, 1, 1],
           [2, 2, 4, 2, 4, 2, 2],
           [1, 1, 2, 1, 2, 1, 1],
           [2, 2, 4, 2, 4, 2, 2],
           [1, 1, 2, 1, 2, 1, 1],
           [1, 1, 2, 1, 2, 1, 1]])
    >>> overlap_map(4, 4, stride=2, padding=1)             # s | k: even inside
    array([1, 2, 2, 2, 2, 2, 2, 1])
    """
    layer = _transpose_layer(
        spatial,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
    )
    # Zero padding makes the N-d pattern the product of the per-axis ones, so are the counts.
    counts = np.ones((), dtype=np.int64)
    for n, k, s, pad, op, d in zip(
        layer.out_spatial,
        layer.kernel_size,
        layer.stride,
        layer.padding,
        layer.output_padding,
        layer.dilation,
        strict=True,
    ):
        axis = _transpose_layer(
            (n,), kernel_size=k, stride=s, padding=(pad,), output_padding=op, dilation=d
        )
        counts = np.multiply.outer(counts, ones_matrix(axis).sum(axis=0))
    return np.asarray(counts, dtype=np.int64)


class Checkerboard(NamedTuple):
    """The interior overlap of a transposed convolution: per axis and combined.

    Attributes
    ----------
    kernel_size, stride, dilation : tuple of int
        The layer, per axis.
    phase_counts : tuple of tuple of int
        Per axis, the interior count at output positions ``≡ 0, 1, …, s−1 (mod s)``.
    period : tuple of int
        Per axis, the smallest period of those counts (1 when uniform).
    uniform : bool
        Whether every axis is uniform, i.e. a constant input comes out constant inside.
    max_count, min_count : int
        The largest and smallest interior count over all positions: the products
        of the per-axis extremes (``⌈k/s⌉^d`` and ``⌊k/s⌋^d`` at dilation 1).
    """

    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    phase_counts: tuple[tuple[int, ...], ...]
    period: tuple[int, ...]
    uniform: bool
    max_count: int
    min_count: int

    @property
    def axis_uniform(self) -> tuple[bool, ...]:
        """Per axis: all phases receive the same number of taps."""
        return tuple(len(set(c)) == 1 for c in self.phase_counts)

    @property
    def ratio(self) -> float:
        """``max_count / min_count`` (``inf`` when some position receives nothing)."""
        return self.max_count / self.min_count if self.min_count else math.inf

    @property
    def tile(self) -> IntArray:
        """The combined interior counts over one period cell, shape ``stride``."""
        tile = np.ones((), dtype=np.int64)
        for counts in self.phase_counts:
            tile = np.multiply.outer(tile, np.asarray(counts, dtype=np.int64))
        return tile

    def __str__(self) -> str:
        axes = ", ".join(
            f"k={k} s={s}" + (f" d={d}" if d != 1 else "") + f": {'/'.join(map(str, c))}"
            for k, s, d, c in zip(
                self.kernel_size, self.stride, self.dilation, self.phase_counts, strict=True
            )
        )
        verdict = (
            "uniform"
            if self.uniform
            else (
                f"checkerboard, period {'x'.join(map(str, self.period))}, "
                f"max/min {self.max_count}/{self.min_count}"
            )
        )
        return f"interior taps per phase ({axes}) -> {verdict}"

    def __repr__(self) -> str:
        return f"Checkerboard({self})"

    def _repr_html_(self) -> str:
        from convmat._display import html_table

        tile = self.tile
        if tile.ndim != 2:
            return f"<p><b>Checkerboard</b>: {html.escape(str(self))}</p>"
        rows = [[f"{i} mod {self.stride[0]}", *map(int, row)] for i, row in enumerate(tile)]
        head = ["taps", *(f"{j} mod {self.stride[1]}" for j in range(tile.shape[1]))]
        return f"<p><b>Checkerboard</b>: {html.escape(str(self))}</p>" + html_table(head, rows)


def _smallest_period(counts: tuple[int, ...]) -> int:
    return next(p for p in range(1, len(counts) + 1) if counts == counts[p:] + counts[:p])


def checkerboard(kernel_size: Any, stride: Any, *, dilation: Any = 1) -> Checkerboard:
    """Summary of a transposed convolution's interior overlap: uniform, or a checkerboard.

    Parameters
    ----------
    kernel_size, stride : int or sequence of int
        One value for every axis or one per axis.
    dilation : int or sequence of int

    Returns
    -------
    Checkerboard
        Per-axis phase counts and periods, ``uniform``, ``max_count``, ``min_count``
        (plus ``ratio``, ``tile`` and ``axis_uniform``).

    Raises
    ------
    ValueError, TypeError
        For a size below 1 or a non-integer value.

    See Also
    --------
    overlap_map : the counts at every position of a given input, borders included.

    Notes
    -----
    Read off :func:`overlap_map` of a 1-d input just long enough to have one full
    period of interior positions (those every kernel tap can reach). With dilation
    1 the phase counts are ``⌈k/s⌉`` on ``k mod s`` phases and ``⌊k/s⌋`` on the others,
    so an axis is uniform exactly when ``s`` divides ``k``. A dilation sharing a
    factor with the stride leaves some phases with no tap at all.

    References
    ----------
    A. Odena, V. Dumoulin and C. Olah, "Deconvolution and Checkerboard Artifacts",
    Distill, 2016. doi:10.23915/distill.00003

    Examples
    --------
    >>> cb = checkerboard(3, 2)
    >>> cb.uniform, cb.max_count, cb.min_count, cb.period
    (False, 2, 1, (2,))
    >>> cb = checkerboard((3, 3), 2)                 # 2-d squares the unevenness
    >>> cb.tile                                       # phases (even, odd) per axis
    array([[4, 2],
           [2, 1]])
    >>> print(checkerboard((4, 4), 2))
    interior taps per phase (k=4 s=2: 2/2, k=4 s=2: 2/2) -> uniform
    """
    lengths = [axes_count(v) or 1 for v in (kernel_size, stride, dilation)]
    ndim = max(lengths, default=1)
    k = ntuple(kernel_size, ndim, "kernel_size", minimum=1)
    s = ntuple(stride, ndim, "stride", minimum=1)
    d = ntuple(dilation, ndim, "dilation", minimum=1)
    phases, periods = [], []
    for ki, si, di in zip(k, s, d, strict=True):
        span = di * (ki - 1)
        n = 1 + (span + 2 * si - 2) // si  # interior [span, (n-1)·s] holds >= s positions
        counts = overlap_map(n, ki, stride=si, dilation=di)
        phase = tuple(int(counts[span + ((r - span) % si)]) for r in range(si))
        phases.append(phase)
        periods.append(_smallest_period(phase))
    uniform = all(len(set(c)) == 1 for c in phases)
    return Checkerboard(
        k,
        s,
        d,
        tuple(phases),
        tuple(periods),
        uniform,
        math.prod(max(c) for c in phases),
        math.prod(min(c) for c in phases),
    )


_STEP_KEYS = {
    "tconv": ("kernel_size", "stride", "padding", "dilation", "output_padding"),
    "conv": ("kernel_size", "stride", "padding", "dilation", "padding_mode"),
    "upsample": ("size", "scale_factor", "mode", "align_corners"),
}
#: Upsampling modes whose matrix has integer entries (the counts stay integers).
_INTEGER_MODES = ("nearest", "nearest-exact", "bed_of_nails")


def _step(
    counts: np.ndarray[Any, Any], spec: Mapping[str, Any], where: str
) -> np.ndarray[Any, Any]:
    """Counts after one layer of a stack: its ones-filled matrix applied to ``counts``."""
    if not isinstance(spec, Mapping):
        raise TypeError(f"{where} must be a mapping of a layer's keyword arguments; got {spec!r}")
    kind = choice(spec.get("kind", "tconv"), tuple(_STEP_KEYS), f"{where} kind")
    unknown = sorted(set(spec) - {"kind", *_STEP_KEYS[kind]})
    if unknown:
        raise ValueError(
            f"{where} keys must be among {('kind', *_STEP_KEYS[kind])} for kind {kind!r}; "
            f"got {unknown}"
        )
    args = {key: value for key, value in spec.items() if key not in ("kind", "kernel_size")}
    if kind == "upsample":
        plan = resize_plan(
            counts.shape,
            size=args.get("size"),
            scale_factor=args.get("scale_factor"),
            mode=args.get("mode", "nearest"),
            align_corners=args.get("align_corners"),
        )
        U = upsample_matrix(counts.shape, **args)
        return np.asarray(U @ counts.ravel()).reshape(plan.out_spatial)
    if "kernel_size" not in spec:
        raise ValueError(f"{where} must give kernel_size; got {dict(spec)!r}")
    k = ntuple(spec["kernel_size"], counts.ndim, "kernel_size", minimum=1)
    if kind == "tconv":
        layer = conv_transpose_layer((1, *counts.shape), (1, 1, *k), **args)
        return np.asarray(ones_matrix(layer).T @ counts.ravel()).reshape(layer.in_spatial)
    layer = conv_layer((1, *counts.shape), (1, 1, *k), **args)
    return np.asarray(ones_matrix(layer) @ counts.ravel()).reshape(layer.out_spatial)


def stack_overlap(spatial: Any, layers: Sequence[Mapping[str, Any]]) -> IntArray:
    """The overlap counts through a stack of layers: where artifacts compound.

    Parameters
    ----------
    spatial : int or sequence of int
        Input spatial shape of the first layer.
    layers : sequence of mappings
        Each a layer's keyword arguments plus an optional ``"kind"``:
        ``"tconv"`` (default; ``kernel_size``, ``stride``, ``padding``, ``dilation``,
        ``output_padding`` as :func:`overlap_map`), ``"conv"`` (``kernel_size``,
        ``stride``, ``padding``, ``dilation``, ``padding_mode`` as :func:`conv_matrix`)
        or ``"upsample"`` (``size``, ``scale_factor``, ``mode``, ``align_corners`` as
        :func:`upsample_matrix`) — with a conv after it, the resize-convolution.

    Returns
    -------
    ndarray, the last layer's output spatial shape
        The number of paths (input position, tap, …, tap) that reach each output:
        the stack with every weight set to 1 applied to a ones input. An upsampling
        step keeps its own weights, so the counts are ``int64`` unless an
        interpolating mode makes them fractional (``float64``).

    Raises
    ------
    ValueError
        For an empty stack, an unknown kind or key, a missing ``kernel_size`` or a
        bad geometry; ``TypeError`` for a layer that is not a mapping.

    See Also
    --------
    overlap_map : one layer.

    Notes
    -----
    With :math:`A_\\ell` the pattern of layer :math:`\\ell` filled with ones
    (:math:`C_\\ell^T` for a transposed layer, :math:`C_\\ell` for a convolution),
    the counts are the row sums of the composed matrix :math:`A_L \\cdots A_1`.
    For one transposed layer they are :func:`overlap_map`. Two k=3, s=2 layers
    compound: the second's 1-2 pattern multiplies the first's, upsampled.

    References
    ----------
    A. Odena, V. Dumoulin and C. Olah, "Deconvolution and Checkerboard Artifacts",
    Distill, 2016. doi:10.23915/distill.00003

    Examples
    --------
    >>> stack_overlap(3, [{"kernel_size": 3, "stride": 2}, {"kernel_size": 3, "stride": 2}])
    array([1, 1, 2, 1, 3, 2, 3, 1, 3, 2, 3, 1, 2, 1, 1])

    Resize-convolution — nearest ×2, then a 3-tap convolution — is even inside:

    >>> stack_overlap(4, [{"kind": "upsample", "scale_factor": 2},
    ...                   {"kind": "conv", "kernel_size": 3, "padding": 1}])
    array([2, 3, 3, 3, 3, 3, 3, 2])

    A stride-1 convolution after a k=4, s=2 layer keeps the interior even:

    >>> stack_overlap(4, [{"kernel_size": 4, "stride": 2, "padding": 1},
    ...                   {"kind": "conv", "kernel_size": 3, "padding": 1}])
    array([3, 5, 6, 6, 6, 6, 5, 3])
    """
    if isinstance(layers, (Mapping, str)) or not isinstance(layers, Sequence) or not layers:
        raise ValueError(f"layers must be a non-empty sequence of layer mappings; got {layers!r}")
    first = layers[0].get("kernel_size") if isinstance(layers[0], Mapping) else None
    ndim = axes_count(first) if not is_sequence(spatial) else None
    shape = spatial_shape(spatial, "spatial", ndim=ndim)
    counts: np.ndarray[Any, Any] = np.ones(shape, dtype=np.float64)
    for index, spec in enumerate(layers):
        counts = _step(counts, spec, f"layers[{index}]")
    integral = all(
        spec.get("kind", "tconv") != "upsample" or spec.get("mode", "nearest") in _INTEGER_MODES
        for spec in layers
    )
    return np.asarray(np.rint(counts) if integral else counts, dtype=np.int64 if integral else None)


def format_counts(counts: np.ndarray[Any, Any]) -> str:
    """A count map as a text grid: rows of right-aligned numbers, 3-d and up as labelled slices.

    >>> print(format_counts(overlap_map((2, 2), 3, stride=2)))
    1 1 2 1 1
    1 1 2 1 1
    2 2 4 2 2
    1 1 2 1 1
    1 1 2 1 1
    """
    arr = np.asarray(counts)
    text = [f"{v:g}" for v in arr.ravel().tolist()]
    width = max(map(len, text))
    cells = np.array([t.rjust(width) for t in text], dtype=object).reshape(arr.shape)
    if arr.ndim == 1:
        return " ".join(cells)
    if arr.ndim == 2:
        return "\n".join(" ".join(row) for row in cells)
    return "\n\n".join(
        f"[{', '.join(map(str, index))}, :, :]\n" + format_counts(arr[index])
        for index in np.ndindex(*arr.shape[:-2])
    )


def phase_means(x: Any, stride: Any) -> np.ndarray[Any, Any]:
    """The mean of ``x`` over the positions of each stride phase: shape ``stride``.

    Entry ``a`` averages ``x`` over every position ``i`` with ``i ≡ a (mod s)`` on each
    axis — one number per cell of a transposed convolution's period.

    Parameters
    ----------
    x : array_like, shape ``(*spatial)``
        A map, e.g. the squared error of an upsampled image.
    stride : int or sequence of int
        The period per axis (an int applies to every axis).

    Returns
    -------
    ndarray, shape ``stride`` per axis

    Raises
    ------
    ValueError
        For a stride below 1 or larger than ``x`` on some axis.

    Examples
    --------
    >>> import numpy as np
    >>> phase_means(np.array([[4.0, 1.0, 4.0], [1.0, 1.0, 1.0]]), 2)
    array([[4., 1.],
           [1., 1.]])
    """
    arr = numeric_array(x, "x")
    if arr.ndim == 0:
        raise ValueError(f"x must have at least one axis; got shape {arr.shape}")
    s = ntuple(stride, arr.ndim, "stride", minimum=1)
    if any(si > n for si, n in zip(s, arr.shape, strict=True)):
        raise ValueError(f"stride must be <= the size of x on every axis; got {s} for {arr.shape}")
    means = np.empty(s, dtype=arr.dtype)
    for phase in np.ndindex(*s):
        means[phase] = arr[tuple(slice(a, None, si) for a, si in zip(phase, s, strict=True))].mean()
    return means


def periodic_energy(x: Any, stride: Any) -> float:
    r"""How strongly a map repeats with the stride's period: its checkerboard energy.

    Parameters
    ----------
    x : array_like, shape ``(*spatial)``
        A non-negative map, typically the squared error ``(ŷ − y)²`` of an upsampler.
    stride : int or sequence of int
        The period per axis.

    Returns
    -------
    float
        :math:`P = \sum_{\mathbf{f} \ne 0} |M(\mathbf{f})|^2 / |M(0)|^2`, where
        :math:`M` is the ``s``-point DFT of :func:`phase_means` — 0 when every phase has
        the same mean, 0 also for an all-zero map.

    Raises
    ------
    ValueError
        As :func:`phase_means`.

    See Also
    --------
    phase_means, checkerboard

    Notes
    -----
    When every axis length is a multiple of its stride, :math:`P` is exactly the
    energy of the DFT of ``x`` at the stride-periodic frequencies
    :math:`\mathbf{f} N/s \ne 0` (for ``s = 2``: the period-2 "checkerboard"
    frequencies) relative to the energy at frequency 0. For a squared-error map it
    says how much the local error power depends on the position modulo the stride,
    which is what the eye sees as a checkerboard in the error image; it equals
    :math:`\prod s` times the squared coefficient of variation of the phase means.
    (The *signed* residual's phase means are no measure: least squares makes them
    nearly 0 on every phase.)

    References
    ----------
    A. Odena, V. Dumoulin and C. Olah, "Deconvolution and Checkerboard Artifacts",
    Distill, 2016. doi:10.23915/distill.00003

    Examples
    --------
    >>> import numpy as np
    >>> periodic_energy(np.ones((4, 4)), 2)
    0.0
    >>> x = np.array([[4.0, 1.0] * 2, [1.0, 1.0] * 2] * 2)      # phase means 4, 1, 1, 1
    >>> round(periodic_energy(x, 2), 4)                          # (3² + 3² + 3²) / 7²
    0.551
    """
    means = phase_means(x, stride)
    spectrum = np.abs(np.fft.fftn(means)) ** 2
    dc = float(spectrum.flat[0])
    return float((spectrum.sum() - dc) / dc) if dc else 0.0


def resize_conv_matrix(
    input_shape: Any,
    weight: Any,
    *,
    size: Any = None,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    padding_mode: str = "zeros",
    max_bytes: Any = DEFAULT_MAX_BYTES,
) -> sp.csr_array:
    r"""Resize-convolution as one sparse matrix: ``upsample`` then ``conv``, ``C (I ⊗ U)``.

    The alternative to a strided transposed convolution that Odena et al. recommend:
    resize every channel (nearest or bilinear), then convolve with stride 1. Both are
    linear, so the pair is one matrix; its ones-kernel row sums are even inside for
    every kernel size, where a transposed convolution's are even only when ``s | k``.

    Parameters
    ----------
    input_shape : sequence of int
        ``(C_in, *spatial)`` before the resize.
    weight : array_like, shape ``(C_out, C_in // groups, *kernel_size)``
    size, scale_factor, mode, align_corners
        The resize, as :func:`upsample_matrix`.
    stride, padding, dilation, groups, padding_mode
        The convolution on the resized input, as :func:`conv_matrix`.
    max_bytes : int
        Limit for each factor, as :func:`conv_matrix`.

    Returns
    -------
    scipy.sparse.csr_array, shape ``(C_out·∏out, C_in·∏spatial)``
        ``conv(upsample(x), weight).ravel() == R @ x.ravel()``.

    Raises
    ------
    ValueError, TypeError, MemoryError
        As :func:`upsample_matrix` and :func:`conv_matrix`.

    See Also
    --------
    stack_overlap : its ones-kernel counts (``kind="upsample"`` then ``"conv"``).
    upsample_matrix, conv_matrix

    Notes
    -----
    :math:`R = C\,(I_{C_{in}} \otimes U)` with :math:`U` the one-plane resize matrix.
    Every row of a nearest or linear :math:`U` sums to 1, so with a ones kernel a
    row of :math:`R` sums to the number of taps that fall inside the (padded) input:
    :math:`\prod k` everywhere inside — no checkerboard by construction.

    References
    ----------
    A. Odena, V. Dumoulin and C. Olah, "Deconvolution and Checkerboard Artifacts",
    Distill, 2016. doi:10.23915/distill.00003

    Examples
    --------
    Nearest ×2 then a 3×3 ones kernel: every interior output sums 9 inputs' worth.

    >>> import numpy as np
    >>> R = resize_conv_matrix((1, 3, 3), np.ones((1, 1, 3, 3)), scale_factor=2, padding=1)
    >>> R.shape
    (36, 9)
    >>> R.sum(axis=1).reshape(6, 6).astype(int)
    array([[4, 6, 6, 6, 6, 4],
           [6, 9, 9, 9, 9, 6],
           [6, 9, 9, 9, 9, 6],
           [6, 9, 9, 9, 9, 6],
           [6, 9, 9, 9, 9, 6],
           [4, 6, 6, 6, 6, 4]])
    """
    w = numeric_array(weight, "weight")
    shape = spatial_shape(input_shape, "input_shape")
    if len(shape) < 2:
        raise ValueError(f"input_shape must be (C_in, *spatial); got {shape}")
    plan = resize_plan(
        shape[1:], size=size, scale_factor=scale_factor, mode=mode, align_corners=align_corners
    )
    dtype = np.float32 if w.dtype == np.float32 else np.float64
    U = upsample_matrix(
        shape[1:],
        size=size,
        scale_factor=scale_factor,
        mode=mode,
        align_corners=align_corners,
        dtype=dtype,
        max_bytes=max_bytes,
    )
    C = conv_matrix(
        (shape[0], *plan.out_spatial),
        w,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
        max_bytes=max_bytes,
    )
    resize = sp.kron(sp.eye_array(shape[0], dtype=dtype), U, format="csr")
    return sp.csr_array(C @ resize)
