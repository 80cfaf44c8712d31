"""The validated layer: the geometry every matrix, fast path and formula derives from.

Every public function calls :func:`conv_layer` or :func:`conv_transpose_layer`
first, so all of them accept and refuse the same arguments with the same words.
A transposed layer is described by the *forward* convolution it transposes;
that is what makes ``Cᵀ`` a transpose of one pattern rather than a second
derivation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from convmat._args import PADDING_MODES, as_int, choice, is_sequence, scalar, spatial_shape
from convmat._shapes import (
    Geometry,
    conv_geometry,
    conv_transpose_geometry,
    conv_transpose_length,
)


@dataclass(frozen=True)
class Layer:
    """A validated convolution layer: channels, sizes and geometry per spatial dim.

    A transposed layer is stored as the forward convolution it transposes:
    ``in_spatial`` is then the transposed layer's *output* and ``out_spatial`` its
    input (a forward output restricted to it when ``output_padding >= stride``).
    """

    in_channels: int
    out_channels: int
    groups: int
    in_spatial: tuple[int, ...]
    out_spatial: tuple[int, ...]
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    padding_mode: str = "zeros"

    @property
    def ndim(self) -> int:
        return len(self.kernel_size)

    @property
    def in_size(self) -> int:
        """Length of one flattened input sample, ``C_in·∏in``."""
        return self.in_channels * math.prod(self.in_spatial)

    @property
    def out_size(self) -> int:
        """Length of one flattened output sample, ``C_out·∏out``."""
        return self.out_channels * math.prod(self.out_spatial)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.in_channels, *self.in_spatial)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (self.out_channels, *self.out_spatial)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    @property
    def output_padding(self) -> tuple[int, ...]:
        """The transposed layer's ``output_padding`` that this geometry encodes."""
        return tuple(
            n - conv_transpose_length(o, k, s, lo + hi, 0, d)
            for n, o, k, s, (lo, hi), d in zip(
                self.in_spatial,
                self.out_spatial,
                self.kernel_size,
                self.stride,
                self.padding,
                self.dilation,
                strict=True,
            )
        )


def _weight_shape(weight_shape: Any, name: str = "weight") -> tuple[int, ...]:
    shape = tuple(int(v) for v in weight_shape)
    if len(shape) < 3:
        raise ValueError(
            f"{name} must have shape (C_out, C_in // groups, *kernel_size) with at least one "
            f"spatial dim; got shape {shape}"
        )
    if any(v < 1 for v in shape):
        raise ValueError(f"{name} must have no empty axis; got shape {shape}")
    return shape


def channel_layout(
    input_shape: Any,
    weight_shape: tuple[int, ...],
    *,
    name: str = "input_shape",
    weight_name: str = "weight",
) -> tuple[tuple[Any, ...], tuple[int, ...], bool]:
    """``(input_shape, weight_shape, channels)`` in the full layout, from either convention.

    The one rule (see the conventions page), decided by the number of axes alone:

    * a kernel with as many axes as ``input_shape`` is one channel's kernel and
      ``input_shape`` is spatial (one channel in, one out): ``(1, *shape)``, ``(1, 1, *k)``;
    * a weight with one axis more is ``(C_out, C_in // groups, *k)`` and ``input_shape``
      is ``(C_in, *spatial)``, as torch;
    * a kernel with one axis fewer goes with ``input_shape = (1, *spatial)``.

    ``channels`` says whether the caller gave a channel axis (so results keep one).

    >>> channel_layout((3, 3), (2, 2))
    ((1, 3, 3), (1, 1, 2, 2), False)
    >>> channel_layout((1, 3, 3), (2, 2))
    ((1, 3, 3), (1, 1, 2, 2), True)
    """
    if isinstance(input_shape, (str, bytes)) or not is_sequence(input_shape):
        raise TypeError(f"{name} must be a sequence (C_in, *spatial); got {input_shape!r}")
    shape = tuple(scalar(input_shape))
    w = tuple(weight_shape)
    if len(w) == len(shape):
        return (1, *shape), (1, 1, *w), False
    if len(w) == len(shape) + 1:
        return shape, w, True
    if len(w) == len(shape) - 1 and len(w) >= 1 and scalar(shape[0]) == 1:
        return shape, (1, 1, *w), True
    raise ValueError(
        f"{weight_name} must have as many axes as {name} (one channel), one more (channels "
        f"first, weight (C_out, C_in // groups, *k)), or one fewer with {name} = (1, *spatial); "
        f"got {weight_name} of shape {w} for {name} {shape}"
    )


def _channels(input_shape: Any, ndim: int, name: str) -> tuple[int, tuple[int, ...]]:
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a sequence (C_in, *spatial); got {input_shape!r}")
    if len(input_shape) != ndim + 1:
        raise ValueError(
            f"{name} must be (C_in, *spatial) with {ndim} spatial dims to match the weight; "
            f"got {tuple(input_shape)!r}"
        )
    shape = spatial_shape(input_shape, name)
    return shape[0], shape[1:]


def _groups(groups: Any, c_in: int, c_out: int, per_group: int, in_name: str) -> int:
    g = as_int(groups, "groups")
    if g < 1:
        raise ValueError(f"groups must be >= 1; got {g}")
    if c_in % g or c_out % g:
        raise ValueError(
            f"groups must divide both channel counts; got groups={g} with {c_in} input and "
            f"{c_out} output channels"
        )
    if c_in // g != per_group:
        raise ValueError(
            f"{in_name} channels must equal weight.shape[1] * groups = {per_group * g}; got {c_in}"
        )
    return g


def conv_layer(
    input_shape: Any,
    weight_shape: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    padding_mode: str = "zeros",
    input_name: str = "input_shape",
) -> Layer:
    """Validate a convolution and return its :class:`Layer`.

    ``weight_shape`` is ``(C_out, C_in // groups, *kernel_size)`` as in ``torch.nn.ConvNd``.
    ``input_name`` names the input in messages (``"x"`` when it comes from an array).
    """
    w = _weight_shape(weight_shape)
    c_in, spatial = _channels(input_shape, len(w) - 2, input_name)
    g = _groups(groups, c_in, w[0], w[1], input_name)
    padding_mode = choice(padding_mode, PADDING_MODES, "padding_mode")
    geo = conv_geometry(spatial, w[2:], stride=stride, padding=padding, dilation=dilation)
    pads = geo.padding
    if padding_mode == "reflect" and any(max(p) >= n for p, n in zip(pads, spatial, strict=True)):
        raise ValueError(
            f"padding must be < the input size on every axis for padding_mode='reflect'; "
            f"got padding {pads} for input {spatial}"
        )
    if padding_mode == "circular" and any(max(p) > n for p, n in zip(pads, spatial, strict=True)):
        raise ValueError(
            f"padding must be <= the input size on every axis for padding_mode='circular'; "
            f"got padding {pads} for input {spatial}"
        )
    return _layer(c_in, w[0], g, geo, padding_mode)


def conv_transpose_layer(
    input_shape: Any,
    weight_shape: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    input_name: str = "input_shape",
) -> Layer:
    """Validate a transposed convolution and return the forward :class:`Layer` it transposes.

    ``weight_shape`` is ``(C_in, C_out // groups, *kernel_size)`` as in
    ``torch.nn.ConvTransposeNd`` — the layout of that forward convolution.
    ``input_name`` names the input in messages.
    """
    w = _weight_shape(weight_shape)
    c_in, spatial = _channels(input_shape, len(w) - 2, input_name)
    g = as_int(groups, "groups")
    if g < 1:
        raise ValueError(f"groups must be >= 1; got {g}")
    if c_in != w[0]:
        raise ValueError(f"{input_name} channels must equal weight.shape[0] = {w[0]}; got {c_in}")
    if c_in % g:
        raise ValueError(
            f"groups must divide the input channels; got groups={g} with {c_in} input channels"
        )
    geo = conv_transpose_geometry(
        spatial,
        w[2:],
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
    )
    return _layer(w[1] * g, c_in, g, geo, "zeros")


def _layer(c_in: int, c_out: int, groups: int, geo: Geometry, padding_mode: str) -> Layer:
    return Layer(
        c_in,
        c_out,
        groups,
        geo.spatial,
        geo.out,
        geo.kernel_size,
        geo.stride,
        geo.dilation,
        geo.padding,
        padding_mode,
    )
