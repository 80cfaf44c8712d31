"""Helpers for checking convolution code against references, usable in your own scripts.

* :func:`torch_conv` and :func:`torch_conv_transpose` call PyTorch (when it is
  installed) with every convmat padding form translated to what torch accepts,
  so any layer convmat can describe can be checked against torch.

PyTorch is never a dependency of convmat: it is imported inside these functions
only, and :func:`has_torch` tells whether it is there.
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any

import numpy as np

from convmat._layer import conv_layer, conv_transpose_layer

__all__ = ["has_torch", "torch_conv", "torch_conv_transpose"]


def has_torch() -> bool:
    """Whether PyTorch can be imported (without importing it)."""
    return importlib.util.find_spec("torch") is not None


def _torch() -> Any:
    if not has_torch():
        raise ModuleNotFoundError("PyTorch is needed for this reference; pip install torch")
    import torch

    return torch


def _batched(x: np.ndarray[Any, Any], ndim: int) -> tuple[np.ndarray[Any, Any], bool]:
    if x.ndim == ndim + 1:
        return x[None], True
    return x, False


def torch_conv(
    x: Any,
    weight: Any,
    bias: Any = None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    padding_mode: str = "zeros",
) -> np.ndarray[Any, Any]:
    """``torch.nn.functional.conv{1,2,3}d`` of ``x`` with convmat's arguments, as NumPy.

    ``padding`` may take every convmat form; pairs, ``"full"`` and non-zero
    ``padding_mode`` are applied with ``torch.nn.functional.pad`` first, as
    ``torch.nn.ConvNd`` does for its padding modes.

    Examples
    --------
    >>> import numpy as np
    >>> if has_torch():
    ...     y = torch_conv(np.ones((1, 1, 4)), np.ones((1, 1, 3)), padding=((0, 2),))
    ...     assert y.tolist() == [[[3.0, 3.0, 2.0, 1.0]]]
    """
    torch = _torch()
    x, w = np.asarray(x), np.asarray(weight)
    xb, unbatched = _batched(x, w.ndim - 2)
    layer = conv_layer(
        xb.shape[1:],
        w.shape,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
    )
    xt = torch.from_numpy(np.ascontiguousarray(xb))
    pads = layer.padding
    symmetric = all(lo == hi for lo, hi in pads)
    if padding_mode == "zeros" and isinstance(padding, str) and padding != "full":
        torch_padding: Any = padding
    elif padding_mode == "zeros" and symmetric:
        torch_padding = tuple(lo for lo, _ in pads)
    else:
        flat = [v for pair in reversed(pads) for v in pair]
        mode = "constant" if padding_mode == "zeros" else padding_mode
        xt = torch.nn.functional.pad(xt, flat, mode=mode)
        torch_padding = 0
    fn = getattr(torch.nn.functional, f"conv{layer.ndim}d")
    bt = None if bias is None else torch.from_numpy(np.asarray(bias))
    with warnings.catch_warnings():
        # torch notes that an even kernel with padding="same" pads a copy internally.
        warnings.filterwarnings("ignore", message="Using padding='same'", category=UserWarning)
        y = fn(
            xt,
            torch.from_numpy(np.ascontiguousarray(w)),
            bt,
            stride=layer.stride,
            padding=torch_padding,
            dilation=layer.dilation,
            groups=layer.groups,
        ).numpy()
    result: np.ndarray[Any, Any] = y[0] if unbatched else y
    return result


def torch_conv_transpose(
    x: Any,
    weight: Any,
    bias: Any = None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
) -> np.ndarray[Any, Any]:
    """``torch.nn.functional.conv_transpose{1,2,3}d`` with convmat's arguments, as NumPy.

    ``(low, high)`` padding pairs, which torch does not take, are applied by
    cropping the unpadded result.

    Examples
    --------
    >>> import numpy as np
    >>> if has_torch():
    ...     K = np.array([[[[0.0, 1.0], [2.0, 3.0]]]])
    ...     y = torch_conv_transpose(K[0], K, stride=2)
    ...     assert y[0].tolist()[3] == [4.0, 6.0, 6.0, 9.0]
    """
    torch = _torch()
    x, w = np.asarray(x), np.asarray(weight)
    xb, unbatched = _batched(x, w.ndim - 2)
    layer = conv_transpose_layer(
        xb.shape[1:],
        w.shape,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
    )
    fn = getattr(torch.nn.functional, f"conv_transpose{layer.ndim}d")
    bt = None if bias is None else torch.from_numpy(np.asarray(bias))
    y = fn(
        torch.from_numpy(np.ascontiguousarray(xb)),
        torch.from_numpy(np.ascontiguousarray(w)),
        bt,
        stride=layer.stride,
        padding=0,
        output_padding=layer.output_padding,
        dilation=layer.dilation,
        groups=layer.groups,
    ).numpy()
    spans = zip(layer.padding, layer.in_spatial, strict=True)
    crop = (Ellipsis, *(slice(lo, lo + n) for (lo, _), n in spans))
    result: np.ndarray[Any, Any] = y[crop]
    return result[0] if unbatched else result
