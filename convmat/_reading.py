"""Steps shared by the model readers (:func:`convmat.from_torch`, :func:`convmat.from_keras`).

Framework-neutral: each helper takes NumPy weights in convmat's (PyTorch's) conventions
and returns a :class:`convmat._affine.Step`; the readers only translate their framework's
layers into these calls.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from convmat._affine import OperatorStep, Step
from convmat._args import as_array
from convmat._layer import Layer
from convmat._matrix import layer_matrix
from convmat._operator import ConvOperator
from convmat._pattern import pattern_nnz

Array = np.ndarray[Any, Any]


def require_at(at: bool, name: str, kind: str) -> None:
    """Refuse a nonlinear module or layer read without ``at=``, naming it (both readers)."""
    if not at:
        raise ValueError(
            f"{name} ({kind}) is not linear; pass at= (one input sample) to get the exact "
            f"local map of the model there"
        )


def conv_step(name: str, kind: str, layer: Layer, w: Array, bias: Any, transposed: bool) -> Step:
    """A convolution (or transposed one) as a matrix-free step; ``w`` in PyTorch's layout."""
    op = ConvOperator(layer, w, transposed=transposed)
    c_out = layer.in_channels if transposed else layer.out_channels
    out_shape = layer.input_shape if transposed else layer.output_shape
    in_shape = layer.output_shape if transposed else layer.input_shape
    offset = None
    if bias is not None:
        b = np.asarray(as_array(bias)).astype(w.dtype)
        offset = np.broadcast_to(b.reshape(c_out, *(1,) * layer.ndim), out_shape)
    count = pattern_nnz(layer) * layer.out_channels * (layer.in_channels // layer.groups)
    step = OperatorStep(
        name,
        kind,
        in_shape,
        out_shape,
        w.dtype,
        run=lambda x, adjoint: op._run(x, adjoint=adjoint),
        count=lambda: count,
        build=lambda: layer_matrix(layer, w, transposed=transposed, max_bytes=math.inf),
        offset=offset,
    )
    geometry = {
        "kernel_size": layer.kernel_size,
        "stride": layer.stride,
        "padding": layer.padding,
        "dilation": layer.dilation,
    }
    if transposed:
        step.spec = {"kind": "tconv", **geometry, "output_padding": layer.output_padding}
    else:
        step.spec = {"kind": "conv", **geometry, "padding_mode": layer.padding_mode}
    return step
