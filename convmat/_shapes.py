"""Shape arithmetic: every output-size formula of the project, and only here.

The two per-axis formulas (PyTorch's, with ``(low, high)`` padding):

* convolution ``⌊(n + lo + hi − d·(k−1) − 1) / s⌋ + 1``
* transposed ``(n − 1)·s − (lo + hi) + d·(k−1) + output_padding + 1``

They agree with every relationship of Dumoulin & Visin's guide (tested).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from convmat._args import axes_count, ntuple, padding_pairs, spatial_shape

Pads = tuple[tuple[int, int], ...]


def conv_length(n: int, k: int, s: int, lo: int, hi: int, d: int) -> int:
    """Output length of a convolution along one axis (may be < 1 for an empty output)."""
    return (n + lo + hi - d * (k - 1) - 1) // s + 1


def conv_transpose_length(n: int, k: int, s: int, pad_total: int, op: int, d: int) -> int:
    """Output length of a transposed convolution along one axis."""
    return (n - 1) * s - pad_total + d * (k - 1) + op + 1


def pool_length(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """Output length of max pooling along one axis, as ``torch.nn.MaxPoolNd``.

    The convolution formula, or with ``ceil_mode`` its ceiling — except that the
    last window must start inside the input or the left padding.
    """
    out = conv_length(n + (s - 1 if ceil_mode else 0), k, s, p, p, d)
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def upsample_length(n: int, scale_factor: float) -> int:
    """Output length of ``F.interpolate`` with a scale factor: ``⌊n · scale_factor⌋``."""
    return math.floor(n * scale_factor)


class Geometry(NamedTuple):
    """Validated per-axis geometry of a convolution (``spatial`` is its input)."""

    spatial: tuple[int, ...]
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    out: tuple[int, ...]


def _ndim(spatial: Any, kernel_size: Any) -> int:
    return axes_count(spatial, kernel_size) or 1


def conv_geometry(
    spatial: Any, kernel_size: Any, *, stride: Any, padding: Any, dilation: Any
) -> Geometry:
    """Check a convolution's spatial arguments and compute its output size."""
    ndim = _ndim(spatial, kernel_size)
    n = spatial_shape(spatial, "spatial", ndim=ndim)
    k = ntuple(kernel_size, ndim, "kernel_size", minimum=1)
    s = ntuple(stride, ndim, "stride", minimum=1)
    d = ntuple(dilation, ndim, "dilation", minimum=1)
    pads = padding_pairs(padding, k, s, d)
    out = tuple(
        conv_length(*args) for args in zip(n, k, s, *zip(*pads, strict=True), d, strict=True)
    )
    if any(o < 1 for o in out):
        raise ValueError(
            f"kernel_size (dilated) must fit in the padded input on every axis; got kernel {k} "
            f"with dilation {d} on input {n} padded by {pads} (output would be {out})"
        )
    return Geometry(n, k, s, pads, d, out)


def _transpose_args(
    spatial: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...], Pads]:
    ndim = _ndim(spatial, kernel_size)
    n = spatial_shape(spatial, "spatial", ndim=ndim)
    k = ntuple(kernel_size, ndim, "kernel_size", minimum=1)
    s = ntuple(stride, ndim, "stride", minimum=1)
    d = ntuple(dilation, ndim, "dilation", minimum=1)
    return n, k, s, d, padding_pairs(padding, k, s, d, strings=False)


def _transpose_lengths(
    n: tuple[int, ...],
    k: tuple[int, ...],
    s: tuple[int, ...],
    d: tuple[int, ...],
    pads: Pads,
    op: tuple[int, ...],
) -> tuple[int, ...]:
    return tuple(
        conv_transpose_length(ni, ki, si, lo + hi, oi, di)
        for ni, ki, si, (lo, hi), oi, di in zip(n, k, s, pads, op, d, strict=True)
    )


def conv_transpose_geometry(
    spatial: Any,
    kernel_size: Any,
    *,
    stride: Any,
    padding: Any,
    output_padding: Any,
    dilation: Any,
) -> Geometry:
    """Check a transposed convolution's spatial arguments.

    Returns the geometry of the *forward* convolution it transposes: its input is
    the transposed layer's output and its ``out`` is the transposed layer's input.
    """
    n, k, s, d, pads = _transpose_args(spatial, kernel_size, stride, padding, dilation)
    op = ntuple(output_padding, len(n), "output_padding", minimum=0)
    if any(o >= max(si, di) for o, si, di in zip(op, s, d, strict=True)):
        raise ValueError(
            f"output_padding must be < max(stride, dilation) on every axis; got output_padding "
            f"{op} with stride {s} and dilation {d}"
        )
    big = _transpose_lengths(n, k, s, d, pads, op)
    if any(b < 1 for b in big):
        raise ValueError(
            f"padding must leave a non-empty output on every axis; got padding {pads} giving "
            f"output {big} for input {n}, kernel {k}, stride {s}, dilation {d}"
        )
    return Geometry(big, k, s, pads, d, n)


def conv_output_shape(
    spatial: Any, kernel_size: Any, *, stride: Any = 1, padding: Any = 0, dilation: Any = 1
) -> tuple[int, ...]:
    """Spatial output shape of a convolution, per axis as in ``torch.nn.ConvNd``.

    Parameters
    ----------
    spatial : int or sequence of int
        Input spatial shape (an int is a 1-d shape unless ``kernel_size`` has more entries).
    kernel_size, stride, dilation : int or sequence of int
        One value for every axis or one per axis.
    padding : int, sequence, (low, high) pairs, or "valid" / "same" / "full"
        As accepted by :func:`conv_matrix`.

    Returns
    -------
    tuple of int
        ``⌊(n + lo + hi − d·(k−1) − 1) / s⌋ + 1`` on every axis.

    Raises
    ------
    ValueError
        For a bad value, or a dilated kernel larger than the padded input.
    TypeError
        For a non-integer size (``1.5``, ``True``).

    See Also
    --------
    conv_transpose_output_shape, conv_transpose_output_padding

    References
    ----------
    V. Dumoulin and F. Visin, "A guide to convolution arithmetic for deep learning",
    arXiv:1603.07285, 2016 — relationships 1–6 and 15.

    Examples
    --------
    >>> conv_output_shape((5, 5), 3, stride=2, padding=1)
    (3, 3)
    >>> conv_output_shape((7,), 4, padding="same")
    (7,)
    """
    return conv_geometry(
        spatial, kernel_size, stride=stride, padding=padding, dilation=dilation
    ).out


def conv_transpose_output_shape(
    spatial: Any,
    kernel_size: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
) -> tuple[int, ...]:
    """Spatial output shape of a transposed convolution, as ``torch.nn.ConvTransposeNd``.

    Parameters
    ----------
    spatial : int or sequence of int
        Input spatial shape of the transposed layer.
    kernel_size, stride, dilation, output_padding : int or sequence of int
        One value for every axis or one per axis; ``output_padding < max(stride, dilation)``.
    padding : int, sequence of int or of (low, high) pairs
        The padding of the forward convolution being transposed (no strings, as torch).

    Returns
    -------
    tuple of int
        ``(n − 1)·s − (lo + hi) + d·(k − 1) + output_padding + 1`` on every axis.

    Raises
    ------
    ValueError
        For a bad value, ``output_padding >= max(stride, dilation)``, or an empty output.
    TypeError
        For a non-integer value or a padding string.

    See Also
    --------
    conv_output_shape, conv_transpose_output_padding

    References
    ----------
    V. Dumoulin and F. Visin, "A guide to convolution arithmetic for deep learning",
    arXiv:1603.07285, 2016 — relationships 8–14.

    Examples
    --------
    >>> conv_transpose_output_shape((3, 3), 3, stride=2, padding=1, output_padding=1)
    (6, 6)
    """
    return conv_transpose_geometry(
        spatial,
        kernel_size,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
    ).spatial


def conv_transpose_output_padding(
    spatial: Any,
    target: Any,
    kernel_size: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
) -> tuple[int, ...]:
    """The ``output_padding`` that makes a transposed convolution produce ``target``.

    This is the encoder–decoder round trip: a convolution maps several input sizes
    to one output size when ``stride > 1``; the transposed layer picks one of them
    through ``output_padding`` (what ``ConvTranspose.forward(output_size=...)`` does).

    Parameters
    ----------
    spatial : int or sequence of int
        Input spatial shape of the transposed layer.
    target : int or sequence of int
        Wanted output spatial shape.
    kernel_size, stride, padding, dilation
        As for :func:`conv_transpose_output_shape`.

    Returns
    -------
    tuple of int
        ``target − min_size`` per axis, where ``min_size`` is the output with
        ``output_padding = 0``.

    Raises
    ------
    ValueError
        When no ``output_padding`` in ``[0, max(stride, dilation))`` reaches ``target``;
        the message gives the sizes that are reachable.

    Examples
    --------
    >>> conv_output_shape((7, 8), 3, stride=2, padding=1)
    (4, 4)
    >>> conv_transpose_output_padding((4, 4), (7, 8), 3, stride=2, padding=1)
    (0, 1)
    """
    n, k, s, d, pads = _transpose_args(spatial, kernel_size, stride, padding, dilation)
    want = spatial_shape(target, "target", ndim=len(n))
    low = _transpose_lengths(n, k, s, d, pads, (0,) * len(n))
    limit = tuple(max(si, di) for si, di in zip(s, d, strict=True))
    op = tuple(t - m for t, m in zip(want, low, strict=True))
    if any(not 0 <= o < lim for o, lim in zip(op, limit, strict=True)):
        ranges = ", ".join(f"{m}..{m + lim - 1}" for m, lim in zip(low, limit, strict=True))
        raise ValueError(
            f"target must be reachable by some output_padding; got {want}, but valid sizes "
            f"range over {ranges} per axis"
        )
    return op
