"""Flax in: a ``flax.linen.Conv`` or ``ConvTranspose`` with its parameters as an :class:`AffineMap`.

Flax's convolutions are thin wrappers of ``jax.lax``: ``Conv`` calls
``conv_general_dilated`` (after padding the input itself for ``"CIRCULAR"``,
``"REFLECT"`` and ``"CAUSAL"``), ``ConvTranspose`` calls ``conv_transpose``. So the
map is one step whose matrix is :func:`convmat.lax_conv_matrix` or
:func:`convmat.lax_conv_transpose_matrix` on one sample — channels last, as Flax lays
out its inputs — preceded, for the self-padding modes, by the gather that pads.
flax is never imported here: the module is read through its attributes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from convmat._affine import AffineMap, MatrixStep, Node
from convmat._args import as_array, numeric_array, spatial_shape
from convmat._lax import _geometry, _matrix, transpose_geometry
from convmat._matrix import DEFAULT_MAX_BYTES

Array = np.ndarray[Any, Any]


def _per_axis(value: Any, ndim: int) -> tuple[int, ...]:
    if value is None:
        return (1,) * ndim
    if isinstance(value, int):
        return (value,) * ndim
    return tuple(int(v) for v in value)


def _params(params: Any, name: str) -> Mapping[str, Any]:
    """The module's own parameter dict from ``{"params": {...}}`` or the dict itself."""
    if isinstance(params, Mapping) and "params" in params:
        params = params["params"]
    if not isinstance(params, Mapping) or "kernel" not in params:
        raise ValueError(
            f"params must hold {name}'s 'kernel' (as module.init returns it, or its "
            f"'params' entry); got {type(params).__name__}"
        )
    return params


def _padding(padding: Any, ndim: int) -> Any:
    """Flax's padding argument as a string or one (low, high) pair per axis."""
    if isinstance(padding, str):
        return padding.upper()
    if isinstance(padding, int):
        return ((padding, padding),) * ndim
    pairs = [(p, p) if isinstance(p, int) else tuple(p) for p in padding]
    return tuple((int(lo), int(hi)) for lo, hi in pairs)


def _self_pad(sample: tuple[int, ...], pads: Sequence[tuple[int, int]], mode: str) -> Node:
    """The gather that pads a channels-last sample as ``jnp.pad`` does (wrap or reflect)."""
    index = np.arange(math.prod(sample)).reshape(sample)
    pad: Any = np.pad
    source = pad(index, [*pads, (0, 0)], mode=mode)
    return Node("gather", source.shape, (0,), source=source, name="pad", label=f"pad ({mode})")


def from_flax(
    module: Any, params: Any, input_shape: Any, *, max_bytes: Any = DEFAULT_MAX_BYTES
) -> AffineMap:
    r"""The exact map ``y = M x + b`` of a Flax ``Conv`` or ``ConvTranspose`` on one sample.

    Parameters
    ----------
    module : flax.linen.Conv or flax.linen.ConvTranspose
        Padding ``"SAME"``, ``"VALID"``, ints or ``(low, high)`` pairs; ``Conv`` also
        ``"CAUSAL"``, ``"CIRCULAR"`` and ``"REFLECT"``, ``input_dilation``,
        ``kernel_dilation``, ``feature_group_count`` and ``mask``; ``ConvTranspose`` also
        ``kernel_dilation`` and ``transpose_kernel``.
    params : mapping
        What ``module.init`` returned (or its ``"params"`` entry): ``kernel`` (and
        ``bias``).
    input_shape : sequence of int
        One sample, channels last: ``(*spatial, C)``.
    max_bytes : int
        The largest matrix built (default 4 GiB).

    Returns
    -------
    AffineMap
        With ``layout == "channels_last"``; ``map(x)`` equals ``module.apply(params, x)``.

    Raises
    ------
    TypeError
        For a module that is not a Flax ``Conv`` / ``ConvTranspose`` (or a local one).
    ValueError
        For bad params or input shape, and for ``ConvTranspose(padding="CIRCULAR")``.

    Notes
    -----
    ``Conv`` is ``conv_general_dilated(x, kernel, strides, padding, lhs_dilation=
    input_dilation, rhs_dilation=kernel_dilation, feature_group_count)`` in NHWC/HWIO
    layout, ``ConvTranspose`` is ``conv_transpose(x, kernel, strides, padding,
    rhs_dilation=kernel_dilation, transpose_kernel)``; both plus the bias.

    Examples
    --------
    The map of a Flax layer needs Flax; its matrix is the one of the ``jax.lax`` call
    it wraps, which needs nothing:

    >>> import numpy as np
    >>> from convmat import lax_conv_matrix
    >>> M = lax_conv_matrix((1, 5, 2), np.ones((3, 2, 4)), (1,), "SAME",
    ...                     dimension_numbers=("NWC", "WIO", "NWC"))
    >>> M.shape
    (20, 10)
    """
    kind = type(module).__name__
    if not type(module).__module__.startswith("flax") or kind not in ("Conv", "ConvTranspose"):
        raise TypeError(
            f"module must be a flax.linen Conv or ConvTranspose; got "
            f"{type(module).__module__}.{kind}"
        )
    p = _params(params, kind)
    kernel = numeric_array(as_array(np.asarray(p["kernel"])), "kernel")
    ndim = kernel.ndim - 2
    if getattr(module, "mask", None) is not None:
        kernel = kernel * np.asarray(module.mask)
    bias = p.get("bias")
    sample = spatial_shape(input_shape, "input_shape", ndim=ndim + 1)
    strides = _per_axis(module.strides, ndim)
    dilation = _per_axis(module.kernel_dilation, ndim)
    padding = _padding(module.padding, ndim)
    letters = "DHW"[-ndim:] if ndim <= 3 else "".join(chr(ord("a") + i) for i in range(ndim))
    dn = ("N" + letters + "C", letters + "IO", "N" + letters + "C")
    nodes = [Node("input", sample)]
    if kind == "Conv":
        if not getattr(module, "shared_weights", True):
            raise TypeError("module must share its kernel (a ConvLocal is not supported)")
        span = [(k - 1) * d + 1 for k, d in zip(kernel.shape[:ndim], dilation, strict=True)]
        if padding in ("CIRCULAR", "REFLECT"):
            pads = [((s - 1) // 2, s // 2) for s in span]
            nodes.append(_self_pad(sample, pads, "wrap" if padding == "CIRCULAR" else "reflect"))
            padding = "VALID"
        elif padding == "CAUSAL":
            if ndim != 1:
                raise ValueError(f"padding 'CAUSAL' must be for a 1-d Conv; got {ndim}-d")
            padding = ((span[0] - 1, 0),)
        geo, dims, lhs = _geometry(
            (1, *nodes[-1].shape),
            kernel,
            strides,
            padding,
            _per_axis(module.input_dilation, ndim),
            dilation,
            dn,
            module.feature_group_count,
            1,
        )
    else:
        if padding == "CIRCULAR":
            raise ValueError(
                "padding 'CIRCULAR' must not be used: its periodic wrap of a "
                "transposed convolution is not supported"
            )
        geo, dims, lhs = transpose_geometry(
            (1, *sample),
            kernel,
            strides,
            padding,
            dilation,
            dn,
            bool(module.transpose_kernel),
            False,
        )
    matrix = _matrix(geo, dims, lhs, max_bytes)
    out_shape = (*geo.out, geo.kernels.shape[0])
    offset = None if bias is None else np.broadcast_to(np.asarray(bias, kernel.dtype), out_shape)
    step = MatrixStep(kind, kind, nodes[-1].shape, out_shape, matrix, offset)
    nodes.append(Node("step", out_shape, (len(nodes) - 1,), step, name=kind))
    return AffineMap(nodes, max_bytes=max_bytes, name=kind, layout="channels_last")
