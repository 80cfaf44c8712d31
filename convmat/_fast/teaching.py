"""The textbook recipes of transposed convolution, written as the recipes they are.

``"scatter"`` (every input element times the kernel, added at its stride
offset), ``"fractional"`` (zero insertion, padding, a stride-1 convolution with
the flipped, channel-swapped kernel) and ``"matrix"`` (multiply by Cᵀ). They
are slower than the planned algorithms on purpose: :func:`convmat.conv_transpose`
runs them by name so that their agreement with the fast path can be seen.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convmat._args import float16_result, is_sequence, nonempty, ntuple, numeric_array, scalar
from convmat._fast.direct import _key, conv_engine
from convmat._layer import Layer, conv_layer
from convmat._matrix import DEFAULT_MAX_BYTES, layer_matrix
from convmat._shapes import conv_transpose_length

Array = np.ndarray[Any, Any]


@float16_result("x")
def zero_insert(x: Any, stride: Any) -> Array:
    """Insert ``stride − 1`` zeros between neighbours: the input of a fractionally strided conv.

    Parameters
    ----------
    x : array_like
        A batch ``(N, C, *spatial)`` when ``stride`` is an int (it applies to every
        spatial dim); with a sequence of ``m`` strides, any array whose last ``m``
        axes are spatial.
    stride : int or sequence of int
        ``>= 1``.

    Returns
    -------
    numpy.ndarray
        ``(n − 1)·s + 1`` along every strided axis; ``x`` at multiples of ``s``,
        zeros elsewhere. Integer input becomes float64, as everywhere in convmat.

    Raises
    ------
    ValueError
        For a stride < 1 or an array with too few axes.
    TypeError
        For a non-integer stride or a non-numeric array.

    Examples
    --------
    >>> zero_insert(np.array([[[1.0, 2.0, 3.0]]]), 2)
    array([[[1., 0., 2., 0., 3.]]])
    """
    xa = numeric_array(x, "x")
    if is_sequence(stride):
        m = len(scalar(stride))
        if xa.ndim < m:
            raise ValueError(f"x must have at least {m} axes for {m} strides; got shape {xa.shape}")
    else:
        m = xa.ndim - 2
        if m < 1:
            raise ValueError(
                f"x must have shape (N, C, *spatial) with at least one spatial dim for an int "
                f"stride; got shape {xa.shape}"
            )
    s = ntuple(stride, m, "stride", minimum=1)
    nonempty(xa.shape, m)
    lead = xa.shape[: xa.ndim - m]
    spatial = xa.shape[xa.ndim - m :]
    out = np.zeros(
        (*lead, *((n - 1) * si + 1 for n, si in zip(spatial, s, strict=True))), dtype=xa.dtype
    )
    out[_key(..., *(slice(None, None, si) for si in s))] = xa
    return out


def _flipped_swapped(w: Array, groups: int) -> Array:
    """The forward kernel of a transposed layer: channels swapped per group, taps flipped."""
    c_in, per_out = w.shape[:2]
    k = w.shape[2:]
    per_in = c_in // groups
    swapped = w.reshape(groups, per_in, per_out, *k).swapaxes(1, 2)
    flipped = swapped[_key(..., *(slice(None, None, -1) for _ in k))]
    return np.ascontiguousarray(flipped).reshape(groups * per_out, per_in, *k)


def _conv_transpose_fractional(y: Array, w: Array, layer: Layer, bias: Array | None) -> Array:
    """Zero-insert, pad by d·(k−1) − p (a negative pad crops), stride-1 conv, flipped kernel."""
    z = zero_insert(y, layer.stride)
    pads = [
        (d * (k - 1) - lo, d * (k - 1) - hi + op)
        for k, d, (lo, hi), op in zip(
            layer.kernel_size, layer.dilation, layer.padding, layer.output_padding, strict=True
        )
    ]
    z = np.pad(z, ((0, 0), (0, 0), *((max(lo, 0), max(hi, 0)) for lo, hi in pads)))
    crop = (
        slice(max(-lo, 0), n - max(-hi, 0)) for (lo, hi), n in zip(pads, z.shape[2:], strict=True)
    )
    z = z[_key(slice(None), slice(None), *crop)]
    kernel = _flipped_swapped(w, layer.groups)
    forward = conv_layer(z.shape[1:], kernel.shape, dilation=layer.dilation, groups=layer.groups)
    return conv_engine(z, kernel, forward, bias)


def _conv_transpose_scatter(y: Array, w: Array, layer: Layer, bias: Array | None) -> Array:
    """Every input element times its kernels, added into the output at its stride offset."""
    n_batch, c_in = y.shape[:2]
    groups = layer.groups
    per_in, per_out = c_in // groups, w.shape[1]
    kernels = w.reshape(groups, per_in, per_out, *layer.kernel_size)
    full = tuple(  # the output before the padding crops it
        conv_transpose_length(o, k, s, 0, op, d)
        for o, s, d, k, op in zip(
            layer.out_spatial,
            layer.stride,
            layer.dilation,
            layer.kernel_size,
            layer.output_padding,
            strict=True,
        )
    )
    out = np.zeros((n_batch, groups, per_out, *full), dtype=y.dtype)
    values = y.reshape(n_batch, groups, per_in, *layer.out_spatial)
    for index in np.ndindex(*layer.out_spatial):
        # The element's window: kernel tap t lands on output index·s + t·d.
        window = tuple(
            slice(i * s, i * s + d * (k - 1) + 1, d)
            for i, s, d, k in zip(
                index, layer.stride, layer.dilation, layer.kernel_size, strict=True
            )
        )
        element = values[_key(..., *index)]  # (N, G, per_in)
        out[_key(..., *window)] += np.einsum("ngi,gio...->ngo...", element, kernels)
    out = out.reshape(n_batch, groups * per_out, *full)
    crop = tuple(
        slice(lo, lo + n) for (lo, _), n in zip(layer.padding, layer.in_spatial, strict=True)
    )
    x = np.ascontiguousarray(out[_key(slice(None), slice(None), *crop)])
    if bias is not None:
        x += bias.reshape(-1, *(1,) * layer.ndim)
    return x


def _conv_transpose_matrix(y: Array, w: Array, layer: Layer, bias: Array | None) -> Array:
    """Cᵀ built by :func:`conv_transpose_matrix`, times every sample."""
    matrix = layer_matrix(layer, w, transposed=True, max_bytes=DEFAULT_MAX_BYTES)
    n_batch = y.shape[0]
    x = (matrix @ y.reshape(n_batch, layer.out_size).T).T.reshape(n_batch, *layer.input_shape)
    x = np.ascontiguousarray(x, dtype=y.dtype)
    if bias is not None:
        x += bias.reshape(-1, *(1,) * layer.ndim)
    return x
