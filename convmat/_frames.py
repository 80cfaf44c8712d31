"""The frames of a convolution's animation: which cells light up at every step.

One frame per step of the picture in Dumoulin & Visin's guide to convolution arithmetic,
for any geometry and any number of spatial dims, as plain data (no matplotlib): the
explorer widget, :func:`convmat.animate` and the ``convmat animate`` command all draw
from these frames.

Every lit (input, output, tap) triple is read from the layer's sparsity pattern
(:mod:`convmat._pattern`), the one that fills ``conv_matrix`` and
``conv_transpose_matrix``: a window frame lists the stored columns of one row of C, a
scatter frame the stored rows of one column of Cᵀ. Only *where the kernel is drawn* (the
cells it covers on the padded or zero-inserted grid, padding included) is placed here,
through the pattern's own :func:`~convmat._pattern.window_positions`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np

from convmat._args import axes_count, choice, ntuple, spatial_shape
from convmat._layer import Layer, conv_layer, conv_transpose_layer
from convmat._pattern import Pattern, spatial_pattern, window_positions

__all__ = ["VIEWS", "Frame", "Frames", "frames"]

IntArray = np.ndarray[Any, np.dtype[np.int64]]

#: The views of an animation: a convolution's sliding window, a transposed convolution's
#: scatter, the transposed convolution as zero insertion plus a stride-1 convolution, and
#: the window (or scatter) beside its row of C (column of Cᵀ).
VIEWS = ("window", "scatter", "zeros", "matrix")
#: What a cell of :meth:`Frames.kinds` is: a real cell (an input; for the scatter view an
#: output), padding (for the scatter view: output cropped by the padding), an inserted zero.
KINDS = ("real", "padding", "zero")
REAL, PADDING, ZERO = 0, 1, 2


class Frame(NamedTuple):
    """One step of an animation (all indices flat, in C order of their grid).

    Attributes
    ----------
    step : int
        The frame's number, from 0.
    input : ndarray of int64
        The input cells lit, ascending. Window and matrix views: the cells the window
        reads (the stored columns of row ``output[0]`` of C; padding is not an input).
        Scatter: the one input element scattered. Zeros: the real inputs under the window
        (the stored columns of row ``output[0]`` of Cᵀ).
    output : ndarray of int64
        The output cells lit, ascending. Window, matrix and zeros views: the one output
        computed. Scatter: the outputs the element adds ``x·K`` to (the stored rows of
        column ``input[0]`` of Cᵀ).
    taps : ndarray of int64
        The kernel tap (flat index into the kernel, C order) of each lit pair, aligned
        with ``input`` (window, matrix, zeros) or with ``output`` (scatter): the entry of
        C or Cᵀ at that pair is ``weight.ravel()[tap]``.
    window : ndarray of int64, shape ``(∏kernel_size,)``
        Where the kernel is drawn: ``window[t]`` is the cell of the padded grid
        (``Frames.padded_shape``) under kernel position ``t``, for every position,
        those on padding, on inserted zeros or cropped included. In the zeros view the
        kernel slides flipped: position ``t`` holds tap ``∏k − 1 − t`` of the weight.
    received : ndarray of int64
        Aligned with ``output``: how many products each lit output has summed so far,
        this frame's included (scatter: the running count of contributions; the other
        views finish an output in one frame).
    """

    step: int
    input: IntArray
    output: IntArray
    taps: IntArray
    window: IntArray
    received: IntArray


class Frames(tuple[Frame, ...]):
    """The frames of one animation, with the geometry to draw them.

    A tuple of :class:`Frame`, in the order they play. Window, matrix and zeros views
    have one frame per output position, the scatter view (and the matrix view of a
    transposed convolution) one per input position, in C order.

    Attributes
    ----------
    view : str
        One of ``"window"``, ``"scatter"``, ``"zeros"``, ``"matrix"``.
    transposed : bool
        Whether the layer is a transposed convolution.
    input_shape, output_shape, kernel_size : tuple of int
        The layer's spatial input and output shapes and its kernel size (for a
        transposed layer, its own input and output, not the forward layer's).
    stride, dilation, output_padding : tuple of int
    padding : tuple of (int, int)
        The ``(low, high)`` padding of every axis (of the forward layer, when transposed).
    padded_shape : tuple of int
        The grid the kernel is drawn on, which ``Frame.window`` indexes. Window and
        matrix views of a convolution: the padded input. Scatter (and matrix) views of a
        transposed convolution: the output before the padding crops it. Zeros view: the
        input with ``stride − 1`` zeros inserted, padded by ``d·(k−1) − padding`` (plus
        ``output_padding`` high); a negative pad crops, so the grid keeps only what the
        window reaches.
    origin, spacing : tuple of int
        Real cell ``j`` (multi-index) sits at ``origin + j·spacing`` of the padded grid.
    """

    view: str
    transposed: bool
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    output_padding: tuple[int, ...]
    padded_shape: tuple[int, ...]
    origin: tuple[int, ...]
    spacing: tuple[int, ...]

    def __new__(cls, items: Iterable[Frame], **geometry: Any) -> Frames:
        self = super().__new__(cls, items)
        for name, value in geometry.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        kind = "transposed convolution" if self.transposed else "convolution"
        return (
            f"<Frames: {len(self)} frames, view={self.view!r} of a {kind} "
            f"{self.input_shape} -> {self.output_shape}, kernel {self.kernel_size}>"
        )

    @property
    def real_shape(self) -> tuple[int, ...]:
        """The shape of the real cells on the padded grid: the output for the scatter
        view and the matrix view of a transposed layer, the input otherwise."""
        return self.output_shape if self._on_output else self.input_shape

    @property
    def _on_output(self) -> bool:
        return self.transposed and self.view in ("scatter", "matrix")

    def cells(self) -> IntArray:
        """The padded grid, each cell holding the flat index of its real cell or ``-1``.

        Returns
        -------
        ndarray of int64, shape ``padded_shape``
            Window and zeros views: the input index; scatter: the output index.
        """
        axes = []
        for size, o, sp, n in zip(
            self.padded_shape, self.origin, self.spacing, self.real_shape, strict=True
        ):
            offset = np.arange(size) - o
            j = offset // sp
            axes.append(np.where((offset % sp == 0) & (j >= 0) & (j < n), j, -1))
        flat = np.full(self.padded_shape, -1, dtype=np.int64)
        grids = np.meshgrid(*axes, indexing="ij")
        real = np.all([g >= 0 for g in grids], axis=0)
        flat[real] = np.ravel_multi_index(tuple(g[real] for g in grids), self.real_shape)
        return flat

    def kinds(self) -> np.ndarray[Any, np.dtype[np.int8]]:
        """What every cell of the padded grid is: 0 real, 1 padding, 2 an inserted zero.

        Returns
        -------
        ndarray of int8, shape ``padded_shape``
            Codes into ``KINDS = ("real", "padding", "zero")``. A cell is an inserted zero
            (zeros view) when it lies inside the box the real cells span; any other cell that is
            not real is padding.
        """
        inside = []
        for size, o, sp, n in zip(
            self.padded_shape, self.origin, self.spacing, self.real_shape, strict=True
        ):
            offset = np.arange(size) - o
            inside.append((offset >= 0) & (offset <= (n - 1) * sp))
        within = np.all(np.meshgrid(*inside, indexing="ij"), axis=0)
        kind = np.where(within, ZERO, PADDING).astype(np.int8)
        kind[self.cells() >= 0] = REAL
        return kind

    def received(self, step: int) -> IntArray:
        """How many products every output has summed once frame ``step`` has played.

        Returns
        -------
        ndarray of int64, shape ``output_shape``
            After the last frame, the number of taps landing on each output
            (:func:`convmat.overlap_map` for a transposed layer).
        """
        n = len(self)
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
            raise TypeError(f"step must be an int; got {step!r}")
        if not -n <= step < n:
            raise ValueError(f"step must be in [{-n}, {n}); got {step}")
        counts = np.zeros(math.prod(self.output_shape), dtype=np.int64)
        for frame in self[: step % n + 1]:
            counts[frame.output] = frame.received
        return counts.reshape(self.output_shape)


def _window_cells(
    out: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    low: tuple[int, ...],
    grid: tuple[int, ...],
) -> IntArray:
    """``(∏out, ∏k)``: the flat cell of ``grid`` under tap ``t`` of the window of output
    ``o``, at ``o·s + t·d − low`` per axis (the pattern's :func:`window_positions`)."""
    ndim = len(out)
    total = np.zeros((*out, *kernel), dtype=np.int64)
    for axis in range(ndim):
        pos = window_positions(out[axis], kernel[axis], stride[axis], dilation[axis], low[axis])
        shape = [1] * (2 * ndim)
        shape[axis], shape[ndim + axis] = out[axis], kernel[axis]
        total = total + pos.reshape(shape) * math.prod(grid[axis + 1 :])
    return total.reshape(math.prod(out), math.prod(kernel))


def _rows(pattern: Pattern) -> Iterable[tuple[int, IntArray, IntArray]]:
    """``(row, columns, taps)`` of every row of a zero-padded pattern."""
    taps = pattern.taps.astype(np.int64)
    indices = pattern.indices.astype(np.int64)
    for row in range(pattern.shape[0]):
        lo, hi = pattern.indptr[row], pattern.indptr[row + 1]
        yield row, indices[lo:hi], taps[lo:hi]


def _gather_frame(row: int, columns: IntArray, taps: IntArray, cells: IntArray) -> Frame:
    """The frame of one output that gathers ``columns`` (a row of C, or of the zeros view)."""
    return Frame(
        row,
        _readonly(columns),
        _readonly([row]),
        _readonly(taps),
        _readonly(cells),
        _readonly([columns.size]),
    )


def _readonly(a: Any) -> IntArray:
    out: IntArray = np.array(a, dtype=np.int64)
    out.flags.writeable = False
    return out


def _layer(
    input_shape: Any,
    kernel_size: Any,
    *,
    stride: Any,
    padding: Any,
    dilation: Any,
    transposed: bool,
    output_padding: Any,
) -> Layer:
    """The one-channel layer, validated by the library's one checker."""
    if not isinstance(transposed, (bool, np.bool_)):
        raise TypeError(f"transposed must be a bool; got {transposed!r}")
    ndim = axes_count(input_shape, kernel_size) or 1
    spatial = spatial_shape(input_shape, "input_shape", ndim=ndim)
    k = ntuple(kernel_size, ndim, "kernel_size", minimum=1)
    if transposed:
        return conv_transpose_layer(
            (1, *spatial),
            (1, 1, *k),
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            dilation=dilation,
        )
    op = ntuple(output_padding, ndim, "output_padding")
    if any(op):
        raise ValueError(
            f"output_padding must be 0 for a convolution (it belongs to transposed=True); "
            f"got {output_padding!r}"
        )
    return conv_layer((1, *spatial), (1, 1, *k), stride=stride, padding=padding, dilation=dilation)


def resolve_view(view: Any, transposed: bool) -> str:
    """``view``, defaulted and checked against ``transposed``."""
    if view is None:
        return "scatter" if transposed else "window"
    name = choice(view, VIEWS, "view")
    if transposed and name == "window":
        raise ValueError(
            "view must be 'scatter', 'zeros' or 'matrix' for a transposed convolution "
            "(its window view is view='zeros'); got 'window'"
        )
    if not transposed and name in ("scatter", "zeros"):
        raise ValueError(
            f"view must be 'window' or 'matrix' for a convolution ({name!r} shows a "
            f"transposed convolution: pass transposed=True); got {name!r}"
        )
    return name


def frames(
    input_shape: Any,
    kernel_size: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    transposed: bool = False,
    output_padding: Any = 0,
    view: str | None = None,
) -> Frames:
    r"""The frames of a convolution's (or transposed convolution's) animation, as data.

    Parameters
    ----------
    input_shape : int or sequence of int
        The spatial input shape (an int is 1-d unless ``kernel_size`` has more entries);
        for ``transposed=True`` the transposed layer's input. Any number of dims; the
        pictures of :func:`convmat.animate` draw 1-d and 2-d.
    kernel_size, stride, dilation : int or sequence of int
    padding : int, sequence of int or of (low, high) pairs, or a string
        As :func:`convmat.conv_matrix` (``"valid"``, ``"same"``, ``"full"`` for a
        convolution), or the forward layer's padding for ``transposed=True``, as
        :func:`convmat.conv_transpose_matrix` takes it (it crops the output).
    transposed : bool
        Animate the transposed convolution instead.
    output_padding : int or sequence of int
        Transposed only (0 otherwise): extra output on the high side.
    view : {"window", "scatter", "zeros", "matrix"}, optional
        ``"window"`` (the default for a convolution): one frame per output position, the
        cells its window reads. ``"scatter"`` (the default when transposed): one frame per
        input element, the outputs it adds ``x·K`` to, with running counts. ``"zeros"``
        (transposed only): the transposed convolution as zero insertion plus a stride-1
        convolution, one frame per output position on the zero-inserted, padded input.
        ``"matrix"``: the window frames of a convolution (each is row ``output[0]`` of C),
        or the scatter frames of a transposed one (each is column ``input[0]`` of Cᵀ), to
        be drawn beside the matrix.

    Returns
    -------
    Frames
        A tuple of :class:`Frame` ``(step, input, output, taps, window, received)`` with the
        geometry (``input_shape``, ``output_shape``, ``padded_shape``, ...) as attributes.

    Raises
    ------
    ValueError
        For a bad geometry (as :func:`convmat.conv_matrix` or
        :func:`convmat.conv_transpose_matrix`), an unknown ``view``, ``"window"`` with
        ``transposed=True`` (its sliding window is ``"zeros"``), ``"scatter"`` or
        ``"zeros"`` without it, or a non-zero ``output_padding`` without it.
    TypeError
        For arguments of the wrong kind (a float size, a non-string view, a non-bool
        ``transposed``).

    See Also
    --------
    animate : the frames drawn and played.
    conv_matrix, conv_transpose_matrix : the matrices whose rows and columns the frames light.
    convmat.symbolic.scatter_steps : the scatter frames as formulas.

    Notes
    -----
    Window frame ``o`` of a convolution lights the pairs ``(i, o)`` with
    :math:`C_{o,i} = w_t \ne 0`: along every axis ``i = o·s + t·d − lo`` inside the input.
    Scatter frame ``i`` of a transposed convolution lights the same pairs of its forward
    layer read the other way: the column ``i`` of Cᵀ. The zeros view's frame ``o`` lights
    row ``o`` of Cᵀ, where it sits on the zero-inserted input: the input ``j`` read through
    tap ``t`` lies at ``j·s`` of the dilated input, under position ``k − 1 − t`` of the
    flipped kernel.

    References
    ----------
    V. Dumoulin and F. Visin, "A guide to convolution arithmetic for deep learning",
    arXiv:1603.07285, 2016.

    Examples
    --------
    A 3×3 kernel on a 4×4 input: four windows of nine cells each.

    >>> from convmat import frames
    >>> f = frames((4, 4), 3)
    >>> f
    <Frames: 4 frames, view='window' of a convolution (4, 4) -> (2, 2), kernel (3, 3)>
    >>> f[1].input, f[1].output
    (array([ 1,  2,  3,  5,  6,  7,  9, 10, 11]), array([1]))

    The classic transposed example, 2×2 input, 2×2 kernel: input element 3 scatters into
    four outputs; the centre has then received all four of its contributions.

    >>> f = frames((2, 2), 2, transposed=True)
    >>> f[3].input, f[3].output, f[3].taps, f[3].received
    (array([3]), array([4, 5, 7, 8]), array([0, 1, 2, 3]), array([4, 2, 2, 1]))
    >>> f.received(3)
    array([[1, 2, 1],
           [2, 4, 2],
           [1, 2, 1]])

    The same layer as zero insertion: a 4×4 grid (the input padded by 1), the kernel
    flipped: output 0 reads input 0 through tap 0, under the window's last position.

    >>> f = frames((2, 2), 2, transposed=True, view="zeros")
    >>> f.padded_shape, f.kinds()[0], f[0].input, f[0].taps
    ((4, 4), array([1, 1, 1, 1], dtype=int8), array([0]), array([0]))
    >>> f[0].window  # cells (0, 0), (0, 1), (1, 0), (1, 1) of the grid
    array([0, 1, 4, 5])
    """
    layer = _layer(
        input_shape,
        kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        transposed=transposed,
        output_padding=output_padding,
    )
    view = resolve_view(view, bool(transposed))
    pattern = spatial_pattern(layer)
    # The forward layer's geometry; a transposed layer is stored as the forward one.
    n, out, k = layer.in_spatial, layer.out_spatial, layer.kernel_size
    s, d = layer.stride, layer.dilation
    low = tuple(lo for lo, _ in layer.padding)
    padded = tuple(ni + lo + hi for ni, (lo, hi) in zip(n, layer.padding, strict=True))
    geometry: dict[str, Any] = dict(
        view=view,
        transposed=bool(transposed),
        input_shape=out if transposed else n,
        output_shape=n if transposed else out,
        kernel_size=k,
        stride=s,
        padding=layer.padding,
        dilation=d,
        output_padding=layer.output_padding if transposed else (0,) * len(k),
    )
    items: list[Frame] = []
    if view != "zeros":
        # The forward layer's windows on its padded input — for a transposed layer, the
        # uncropped output each input element scatters into.
        windows = _window_cells(out, k, s, d, (0,) * len(k), padded)
        counts = np.zeros(math.prod(n), dtype=np.int64)
        for row, columns, taps in _rows(pattern):
            if transposed:
                counts[columns] += 1
                items.append(
                    Frame(
                        row,
                        _readonly([row]),
                        _readonly(columns),
                        _readonly(taps),
                        _readonly(windows[row]),
                        _readonly(counts[columns]),
                    )
                )
            else:
                items.append(_gather_frame(row, columns, taps, windows[row]))
        return Frames(items, padded_shape=padded, origin=low, spacing=(1,) * len(k), **geometry)

    # Zeros view: the transposed input with s − 1 zeros inserted, padded by d·(k − 1) − lo
    # below and d·(k − 1) − lo + output_padding above (a negative pad crops).
    reach = tuple(di * (ki - 1) for ki, di in zip(k, d, strict=True))
    pad_lo = tuple(r - lo for r, lo in zip(reach, low, strict=True))
    dilated = tuple((o - 1) * si + 1 for o, si in zip(out, s, strict=True))
    # d·(k − 1) − hi + output_padding: where the last window ends, past the last input.
    pad_hi = tuple(
        ni - 1 - p + r - (L - 1) for ni, p, r, L in zip(n, pad_lo, reach, dilated, strict=True)
    )
    origin = tuple(max(p, 0) for p in pad_lo)
    grid = tuple(L + o + max(p, 0) for L, o, p in zip(dilated, origin, pad_hi, strict=True))
    windows = _window_cells(
        n, k, (1,) * len(k), d, tuple(p - o for p, o in zip(pad_lo, origin, strict=True)), grid
    )
    for row, columns, taps in _rows(pattern.transpose()):
        items.append(_gather_frame(row, columns, taps, windows[row]))
    return Frames(items, padded_shape=grid, origin=origin, spacing=s, **geometry)
