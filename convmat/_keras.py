"""Models in: a Keras 3 layer, ``Sequential`` or functional model read as its :class:`AffineMap`.

:func:`from_keras` reads every layer from its *config and weights* alone (``get_config()``,
``get_weights()``) and turns it into the same steps :func:`convmat.from_torch` builds:
convolutions through the fast path and the pattern (Keras' ``(*k, C_in/g, C_out)`` kernels
rearranged to PyTorch's ``(C_out, C_in/g, *k)``, Keras' ``"same"`` padding as the explicit
``(low, high)`` pairs TensorFlow computes), resizes and poolings as one plane's matrix,
``Dense`` as its dense matrix, BatchNormalization as a diagonal scale and a shift, and
rearrangements (Flatten, Reshape, padding, cropping, concatenation) as gathers.

The map keeps the model's own layout (``.layout``): a channels-last model's sample is
``(*spatial, C)`` and flattens in C order of that shape. Spatial steps run channels-first
inside, between two permutation gathers; :func:`to_channels_first` gives the same map on
PyTorch's layout.

keras (and jax, for ``at=``) is imported only when :func:`from_keras` runs.
"""

from __future__ import annotations

import importlib
import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from convmat._affine import (
    AffineMap,
    DenseLastAxisStep,
    DiagStep,
    MapStep,
    Node,
    PlaneStep,
    Step,
)
from convmat._args import numeric_array
from convmat._avgpool import pool_windows, windows_matrix
from convmat._layer import conv_layer, conv_transpose_layer
from convmat._matrix import DEFAULT_MAX_BYTES
from convmat._reading import conv_step, require_at

Array = np.ndarray[Any, Any]
Shape = tuple[int, ...]

# Elementwise activations (by Keras name): linear maps only at=, as exact diagonal Jacobians.
ELEMENTWISE_ACTIVATIONS = (
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "celu",
    "gelu",
    "silu",
    "swish",
    "sigmoid",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "tanh",
    "softplus",
    "softsign",
    "exponential",
    "mish",
    "log_sigmoid",
)
_CONV = tuple(f"Conv{d}D" for d in (1, 2, 3))
_CONV_T = tuple(f"Conv{d}DTranspose" for d in (1, 2, 3))
_DEPTHWISE = ("DepthwiseConv1D", "DepthwiseConv2D")
_SEPARABLE = ("SeparableConv1D", "SeparableConv2D")
_IDENTITY = (
    "InputLayer",
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "Identity",
)
_NONLINEAR = ("ReLU", "LeakyReLU", "ELU", "PReLU", "Multiply")
_LINEAR = (
    *_CONV,
    *_CONV_T,
    *_DEPTHWISE,
    *_SEPARABLE,
    *(f"UpSampling{d}D" for d in (1, 2, 3)),
    *(f"ZeroPadding{d}D" for d in (1, 2, 3)),
    *(f"Cropping{d}D" for d in (1, 2, 3)),
    *(f"AveragePooling{d}D" for d in (1, 2, 3)),
    "Dense",
    "Flatten",
    "Reshape",
    "Permute",
    "BatchNormalization",
    "Activation",
    "Add",
    "Subtract",
    "Average",
    "Concatenate",
    *_IDENTITY,
)


def supported_layers() -> tuple[str, ...]:
    """The Keras layer classes :func:`from_keras` reads (nonlinear ones need ``at=``).

    ``Sequential`` and functional models of them (nested too) are read as graphs;
    conv and ``Dense`` layers take ``activation="linear"``, or any of
    ``ELEMENTWISE_ACTIVATIONS`` with ``at=``, as does ``Activation``.
    """
    return tuple(sorted({*_LINEAR, *_NONLINEAR}))


def _supported_message() -> str:
    return f"supported layers: {', '.join(supported_layers())}, and Sequential/functional models"


# ----------------------------------------------------------------------------- values


class _Val:
    """A value of the model: node ``index`` in the model's layout (``cf``: its channels-first
    node when a spatial step made one), ``shape`` without batch, ``value`` at ``at=``."""

    def __init__(self, index: int, shape: Shape, value: Array | None, cf: int | None = None):
        self.index = index
        self.shape = tuple(shape)
        self.value = value
        self.cf = cf


def _node_value(node: Node, parents: list[Array]) -> Array:
    """One node's value on one sample (batch of one), offsets included."""
    if node.kind == "step":
        assert node.step is not None
        y = node.step.apply(parents[0])
        return np.asarray(y if node.step.offset is None else y + node.step.offset)
    if node.kind == "sum":
        total = np.asarray(sum(c * p for c, p in zip(node.coeffs, parents, strict=True)))
        return total if node.offset is None else total + node.offset
    assert node.source is not None
    stacked = np.concatenate([p.reshape(1, -1) for p in parents], axis=1)
    src = node.source.reshape(-1)
    y = np.take(stacked, np.maximum(src, 0), axis=1)
    holes = src < 0
    y[:, holes] = 0 if node.offset is None else node.offset.reshape(-1)[holes]
    return y.reshape(1, *node.shape)


def _ntuple(value: Any, n: int) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    out = tuple(operator.index(v) for v in value)
    return out * n if len(out) == 1 else out


def _pairs(value: Any, n: int) -> tuple[tuple[int, int], ...]:
    """Keras' padding/cropping: int, one int per axis, or one ``(low, high)`` per axis."""
    if isinstance(value, (int, np.integer)):
        return ((int(value), int(value)),) * n
    items = list(value)
    if n == 1 and len(items) == 2 and all(isinstance(v, (int, np.integer)) for v in items):
        return ((int(items[0]), int(items[1])),)
    return tuple(
        (int(v), int(v)) if isinstance(v, (int, np.integer)) else (int(v[0]), int(v[1]))
        for v in items
    )


def same_padding(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow's ``"same"`` padding of one axis: ``total = max((⌈n/s⌉−1)·s + k_eff − n, 0)``,
    ``total // 2`` before, the rest (the extra one) after."""
    k_eff = (k - 1) * d + 1
    total = max((-(-n // s) - 1) * s + k_eff - n, 0)
    return total // 2, total - total // 2


def transpose_padding(
    k: int, s: int, d: int, padding: str, output_padding: int | None
) -> tuple[tuple[int, int], int]:
    """Keras' ``Conv*Transpose`` padding as PyTorch's: forward ``(low, high)`` and output_padding.

    Keras pads the zero-inserted input by ``(L, R)`` and correlates with the flipped kernel
    (``valid``: ``L = k_eff − 1``, ``R = k_eff − 1 + op``, op defaulting to
    ``max(k_eff, s) − k_eff``; ``same``: ``pad = s + k_eff − 2`` without op, else
    ``k_eff + k_eff % 2 − 2 + op``, ``L = min(⌈pad/2⌉, k_eff − 1)``, ``R = pad − L``).
    The same transposed convolution in PyTorch's terms: ``low = k_eff − 1 − L`` and, on the
    high side, ``k_eff − 1 − R`` as padding when ≥ 0, else ``R − (k_eff − 1)`` as output_padding.
    """
    k_eff = (k - 1) * d + 1
    if padding == "valid":
        op = max(k_eff, s) - k_eff if output_padding is None else output_padding
        left, right = k_eff - 1, k_eff - 1 + op
    else:
        if output_padding is None:
            pad = s + k_eff - 2
        else:
            pad = k_eff + k_eff % 2 - 2 + output_padding
        left = min(pad // 2 + pad % 2, k_eff - 1)
        right = pad - left
    high = k_eff - 1 - right
    return (k_eff - 1 - left, max(high, 0)), max(-high, 0)


def _channels_first(config: dict[str, Any]) -> bool:
    return config.get("data_format") == "channels_first"


def _rank(kind: str) -> int:
    for d in (1, 2, 3):
        if f"{d}D" in kind:
            return d
    raise AssertionError(kind)


# ----------------------------------------------------------------------------- reader


class _Reader:
    """Builds the graph layer by layer from configs and weights (no framework needed)."""

    def __init__(
        self, input_shape: Shape, at: Array | None, dtype: Any, jax: Callable[[], Any] | None
    ) -> None:
        self.dtype = np.dtype(dtype)
        self.at = at is not None
        self._jax = jax
        self.nodes: list[Node] = [Node("input", input_shape, name="input")]
        value = None if at is None else at.astype(self.dtype)[None]
        self.input = _Val(0, input_shape, value)

    def push(self, node: Node, parents: Sequence[_Val]) -> _Val:
        self.nodes.append(node)
        value = None
        if self.at:
            value = _node_value(node, [p.value for p in parents if p.value is not None])
        return _Val(len(self.nodes) - 1, node.shape, value)

    def step(self, step: Step, x: _Val) -> _Val:
        return self.push(Node("step", step.output_shape, (x.index,), step, name=step.name), [x])

    def gather(self, x: list[_Val], source: Array, name: str, label: str) -> _Val:
        node = Node(
            "gather",
            tuple(source.shape),
            tuple(v.index for v in x),
            source=source.astype(np.int64),
            name=name,
            label=label,
        )
        return self.push(node, x)

    # -- layouts
    def to_cf(self, x: _Val, name: str) -> _Val:
        """``x`` channels-first ``(C, *spatial)`` (a permutation gather, made once)."""
        if x.cf is not None:
            node = self.nodes[x.cf]
            value = None if x.value is None else np.moveaxis(x.value, -1, 1)
            return _Val(x.cf, node.shape, value)
        idx = np.arange(math.prod(x.shape)).reshape(x.shape)
        out = self.gather([x], np.moveaxis(idx, -1, 0), f"{name}.in", "to channels_first")
        x.cf = out.index
        return out

    def from_cf(self, y: _Val, name: str) -> _Val:
        """A channels-first result back in channels-last layout, remembering both."""
        idx = np.arange(math.prod(y.shape)).reshape(y.shape)
        out = self.gather([y], np.moveaxis(idx, 0, -1), f"{name}.out", "to channels_last")
        out.cf = y.index
        return out

    def spatial(self, x: _Val, cf: bool, name: str, build: Callable[[_Val], _Val]) -> _Val:
        """A channels-first step ``build`` on ``x``, in the layer's data_format."""
        if cf:
            return build(x)
        return self.from_cf(build(self.to_cf(x, name)), name)

    # -- nonlinear
    def needs_at(self, name: str, kind: str) -> None:
        require_at(self.at, name, kind)

    def linearise(self, fn: Callable[[Any], Any], x: _Val, name: str, kind: str) -> _Val:
        """An elementwise ``fn`` at the current value: ``f'(z) ⊙ x + (f(z) − f'(z) ⊙ z)``."""
        self.needs_at(name, kind)
        assert self._jax is not None and x.value is not None
        jax = self._jax()
        z = x.value
        if z.dtype == np.float64 and not jax.config.jax_enable_x64:
            z = z.astype(np.float32)
        zj = jax.numpy.asarray(z)
        fz, d = jax.jvp(fn, (zj,), (jax.numpy.ones_like(zj),))
        fz, d = np.asarray(fz, np.float64)[0], np.asarray(d, np.float64)[0]
        if fz.shape != x.shape:
            raise ValueError(f"{name} ({kind}) must be elementwise; {x.shape} became {fz.shape}")
        zn = x.value[0].astype(np.float64)
        step = DiagStep(name, kind, x.shape, d, offset=fz - d * zn, dtype=self.dtype)
        return self.step(step, x)

    def activation(self, x: _Val, name: str, act: Any, fn: Callable[[Any], Any] | None) -> _Val:
        """A layer's ``activation=``: none for ``linear``, else its Jacobian at ``at=``."""
        act_name = act if isinstance(act, str) else getattr(act, "__name__", repr(act))
        if act_name in (None, "linear"):
            return x
        if act_name not in ELEMENTWISE_ACTIVATIONS or fn is None:
            raise ValueError(
                f"{name} activation must be linear, or elementwise with at= "
                f"({', '.join(ELEMENTWISE_ACTIVATIONS)}); got {act_name!r}"
            )
        return self.linearise(fn, x, f"{name}.activation", act_name)

    def total(self, terms: list[tuple[float, _Val]], name: str, label: str) -> _Val:
        shapes = {v.shape for _, v in terms}
        if len(shapes) != 1:
            raise ValueError(
                f"{name} ({label}) must combine inputs of one shape (no broadcasting between "
                f"inputs); got {[v.shape for _, v in terms]}"
            )
        node = Node(
            "sum",
            terms[0][1].shape,
            tuple(v.index for _, v in terms),
            coeffs=tuple(c for c, _ in terms),
            name=name,
            label=label,
        )
        return self.push(node, [v for _, v in terms])

    def product(self, xs: list[_Val], name: str) -> _Val:
        """``x₁ ⊙ … ⊙ xₙ`` at ``at=``: Σᵢ (∏_{j≠i} xⱼ⁰) ⊙ xᵢ plus ``(1 − n)·∏ xⱼ⁰``."""
        self.needs_at(name, "Multiply")
        if len({v.shape for v in xs}) != 1:
            raise ValueError(
                f"{name} (Multiply) must combine inputs of one shape; got {[v.shape for v in xs]}"
            )
        vals = [v.value[0] for v in xs if v.value is not None]
        terms = []
        for i, v in enumerate(xs):
            others = np.prod([u for j, u in enumerate(vals) if j != i], axis=0)
            terms.append((1.0, self.step(DiagStep(f"{name}.{i}", "mul", v.shape, others), v)))
        out = self.total(terms, name, "Multiply")
        const = (1 - len(xs)) * np.prod(vals, axis=0)
        self.nodes[out.index] = self.nodes[out.index]._replace(offset=const.astype(self.dtype))
        out.value = None if out.value is None else out.value + const
        return out

    # -- one layer
    def layer(
        self,
        kind: str,
        config: dict[str, Any],
        weights: list[Array],
        inputs: list[_Val],
        name: str,
        call: Callable[[Any], Any] | None = None,
        act: Callable[[Any], Any] | None = None,
    ) -> _Val:
        """The nodes of one Keras layer from its class name, config and weights.

        ``call``: the layer itself (for nonlinear layers at ``at=``); ``act``: its
        activation function (for ``activation=`` other than linear at ``at=``).
        """
        reader = _READERS.get(kind)
        if reader is None or (kind in _IDENTITY):
            if kind in _IDENTITY:
                return inputs[0]
            raise TypeError(
                f"{name} ({kind}) is not supported by from_keras; {_supported_message()}"
            )
        w = [np.asarray(a).astype(self.dtype, copy=False) for a in weights]
        return reader(self, kind, config, w, inputs, name, call, act)


# ----------------------------------------------------------------------------- layers


def _conv_like(
    r: _Reader,
    kind: str,
    cfg: dict[str, Any],
    x: _Val,
    name: str,
    weight: Array,
    bias: Array | None,
    groups: int,
) -> _Val:
    """A forward convolution with PyTorch weight ``(C_out, C_in/g, *k)`` in Keras' geometry."""
    nd = weight.ndim - 2
    k = weight.shape[2:]
    s = _ntuple(cfg.get("strides", 1), nd)
    d = _ntuple(cfg.get("dilation_rate", 1), nd)
    cf = _channels_first(cfg)
    spatial = x.shape[1:] if cf else x.shape[:-1]
    padding = str(cfg.get("padding", "valid")).lower()
    if padding == "valid":
        pads: Any = 0
    elif padding == "same":
        pads = tuple(
            same_padding(n, *a) for n, a in zip(spatial, zip(k, s, d, strict=True), strict=True)
        )
    elif padding == "causal":
        pads = tuple(((kk - 1) * dd, 0) for kk, dd in zip(k, d, strict=True))
    else:
        raise ValueError(
            f"{name} ({kind}) padding must be 'valid', 'same' or 'causal'; got {padding!r}"
        )

    def build(v: _Val) -> _Val:
        layer = conv_layer(
            v.shape,
            weight.shape,
            stride=s,
            padding=pads,
            dilation=d,
            groups=groups,
            input_name="input_shape" if v.index == 0 else f"{name} input",
        )
        return r.step(conv_step(name, kind, layer, weight, bias, False), v)

    return r.spatial(x, cf, name, build)


def _bias(cfg: dict[str, Any], w: list[Array], at: int) -> Array | None:
    return w[at] if cfg.get("use_bias", True) and len(w) > at else None


def _read_conv(
    r: _Reader,
    kind: str,
    cfg: dict[str, Any],
    w: list[Array],
    xs: list[_Val],
    name: str,
    call: Any,
    act: Any,
) -> _Val:
    nd = _rank(kind)
    weight = np.moveaxis(w[0], (nd + 1, nd), (0, 1))  # (*k, I/g, O) -> (O, I/g, *k)
    y = _conv_like(
        r,
        kind,
        cfg,
        xs[0],
        name,
        np.ascontiguousarray(weight),
        _bias(cfg, w, 1),
        int(cfg.get("groups", 1)),
    )
    return r.activation(y, name, cfg.get("activation", "linear"), act)


def _read_depthwise(
    r: _Reader,
    kind: str,
    cfg: dict[str, Any],
    w: list[Array],
    xs: list[_Val],
    name: str,
    call: Any,
    act: Any,
) -> _Val:
    nd = _rank(kind)
    kernel = w[0]  # (*k, C_in, depth_multiplier): output channel c·m + j
    c_in = kernel.shape[nd]
    flat = kernel.reshape(*kernel.shape[:nd], -1)
    weight = np.ascontiguousarray(np.moveaxis(flat, -1, 0)[:, None])
    if kind.startswith("Separable"):
        y = _conv_like(r, kind, cfg, xs[0], f"{name}.depthwise", weight, None, c_in)
        point = np.moveaxis(w[1], (nd + 1, nd), (0, 1))
        pcfg = {"data_format": cfg.get("data_format"), "padding": "valid"}
        y = _conv_like(
            r, kind, pcfg, y, f"{name}.pointwise", np.ascontiguousarray(point), _bias(cfg, w, 2), 1
        )
    else:
        y = _conv_like(r, kind, cfg, xs[0], name, weight, _bias(cfg, w, 1), c_in)
    return r.activation(y, name, cfg.get("activation", "linear"), act)


def _read_conv_transpose(
    r: _Reader,
    kind: str,
    cfg: dict[str, Any],
    w: list[Array],
    xs: list[_Val],
    name: str,
    call: Any,
    act: Any,
) -> _Val:
    nd = _rank(kind)
    weight = np.ascontiguousarray(np.moveaxis(w[0], (nd + 1, nd), (0, 1)))  # -> (I, O, *k)
    k = weight.shape[2:]
    s = _ntuple(cfg.get("strides", 1), nd)
    d = _ntuple(cfg.get("dilation_rate", 1), nd)
    op_cfg = cfg.get("output_padding")
    ops = (None,) * nd if op_cfg is None else _ntuple(op_cfg, nd)
    padding = str(cfg.get("padding", "valid")).lower()
    if padding not in ("valid", "same"):
        raise ValueError(f"{name} ({kind}) padding must be 'valid' or 'same'; got {padding!r}")
    geo = [
        transpose_padding(*a, padding, o)
        for a, o in zip(zip(k, s, d, strict=True), ops, strict=True)
    ]

    def build(v: _Val) -> _Val:
        layer = conv_transpose_layer(
            v.shape,
            weight.shape,
            stride=s,
            padding=tuple(p for p, _ in geo),
            output_padding=tuple(o for _, o in geo),
            dilation=d,
            input_name="input_shape" if v.index == 0 else f"{name} input",
        )
        return r.step(conv_step(name, kind, layer, weight, _bias(cfg, w, 1), True), v)

    y = r.spatial(xs[0], _channels_first(cfg), name, build)
    return r.activation(y, name, cfg.get("activation", "linear"), act)


def _read_dense(
    r: _Reader,
    kind: str,
    cfg: dict[str, Any],
    w: list[Array],
    xs: list[_Val],
    name: str,
    call: Any,
    act: Any,
) -> _Val:
    x = xs[0]
    if cfg.get("lora_rank"):
        raise ValueError(f"{name} (Dense) must not use LoRA (lora_rank); got {cfg['lora_rank']}")
    kernel = w[0]
    if x.shape[-1] != kernel.shape[0]:
        raise ValueError(
            f"{name} input's last axis must have {kernel.shape[0]} features; got shape {x.shape}"
        )
    bias = _bias(cfg, w, 1)
    out_shape = (*x.shape[:-1], kernel.shape[1])
    offset = None if bias is None else np.broadcast_to(bias, out_shape)
    step = DenseLastAxisStep(name, kind, x.shape, np.ascontiguousarray(kernel.T), offset)
    return r.activation(r.step(step, x), name, cfg.get("activation", "linear"), act)


def _read_batch_norm(
    r: _Reader,
    kind: str,
    cfg: dict[str, Any],
    w: list[Array],
    xs: list[_Val],
    name: str,
    call: Any,
    act: Any,
) -> _Val:
    x = xs[0]
    axes = cfg.get("axis", -1)
    axes = [axes] if isinstance(axes, int) else list(axes)
    if len(axes) != 1:
        raise ValueError(f"{name} (BatchNormalization) must normalise one axis; got {axes}")
    axis = axes[0] % (len(x.shape) + 1) - 1  # Keras counts the batch axis
    rest = list(w)
    gamma = rest.pop(0) if cfg.get("scale", True) else None
    beta = rest.pop(0) if cfg.get("center", True) else None
    mean, var = rest[0].astype(np.float64), rest[1].astype(np.float64)
    scale = 1.0 / np.sqrt(var + float(cfg.get("epsilon", 1e-3)))
    if gamma is not None:
        scale = scale * gamma
    shift = -mean * scale + (0.0 if beta is None else beta)
    per = [1] * len(x.shape)
    per[axis] = -1
    step = DiagStep(
        name,
        kind,
        x.shape,
        scale.reshape(per),
        offset=np.broadcast_to(shift.reshape(per), x.shape),
        dtype=r.dtype,
    )
    return r.step(step, x)


def _spatial_axes(x: _Val, nd: int, cfg: dict[str, Any]) -> list[int]:
    first = 1 if _channels_first(cfg) else 0
    if len(x.shape) != nd + 1:
        raise ValueError(f"input must have {nd} spatial axes and one channel axis; got {x.shape}")
    return list(range(first, first + nd))


def _read_pad_crop(
    r: _Reader,
    kind: str,
    cfg: dict[str, Any],
    w: list[Array],
    xs: list[_Val],
    name: str,
    call: Any,
    act: Any,
) -> _Val:
    x, nd = xs[0], _rank(kind)
    axes = _spatial_axes(x, nd, cfg)
    idx = np.arange(math.prod(x.shape)).reshape(x.shape)
    if kind.startswith("Zero"):
        widths = [(0, 0)] * len(x.shape)
        for a, p in zip(axes, _pairs(cfg["padding"], nd), strict=True):
            widths[a] = p
        return r.gather([x], np.pad(idx, widths, constant_values=-1), name, kind)
    slices = [slice(None)] * len(x.shape)
    for a, (lo, hi) in zip(axes, _pairs(cfg["cropping"], nd), strict=True):
        if lo + hi >= x.shape[a]:
            raise ValueError(
                f"{name} ({kind}) must leave something: cropping {(lo, hi)} of an axis of "
                f"length {x.shape[a]}"
            )
        slices[a] = slice(lo, x.shape[a] - hi)
    return r.gather([x], idx[tuple(slices)], name, kind)


def _read_upsampling(
    r: _Reader,
    kind: str,
    cfg: dict[str, Any],
    w: list[Array],
    xs: list[_Val],
    name: str,
    call: Any,
    act: Any,
) -> _Val:
    x, nd = xs[0], _rank(kind)
    axes = _spatial_axes(x, nd, cfg)
    size = _ntuple(cfg.get("size", 2), nd)
    mode = str(cfg.get("interpolation", "nearest"))
    if mode == "nearest":
        idx = np.arange(math.prod(x.shape)).reshape(x.shape)
        for a, s in zip(axes, size, strict=True):
            idx = np.repeat(idx, s, axis=a)
        return r.gather([x], idx, name, kind)
    if mode != "bilinear":
        raise ValueError(
            f"{name} ({kind}) interpolation must be 'nearest' or 'bilinear'; got {mode!r}"
        )
    from convmat._upsample import upsample_matrix

    def build(v: _Val) -> _Val:
        out = tuple(n * s for n, s in zip(v.shape[1:], size, strict=True))
        plane = upsample_matrix(v.shape[1:], size=out, mode="bilinear", align_corners=False)
        step = PlaneStep(name, kind, v.shape, (v.shape[0], *out), plane.astype(r.dtype))
        step.spec = {"kind": "upsample", "size": out, "mode": "bilinear", "align_corners": False}
        return r.step(step, v)

    return r.spatial(x, _channels_first(cfg), name, build)


def _read_avg_pool(
    r: _Reader,
    kind: str,
    cfg: dict[str, Any],
    w: list[Array],
    xs: list[_Val],
    name: str,
    call: Any,
    act: Any,
) -> _Val:
    x, nd = xs[0], _rank(kind)
    _spatial_axes(x, nd, cfg)
    k = _ntuple(cfg["pool_size"], nd)
    s = _ntuple(cfg.get("strides") or k, nd)
    padding = str(cfg.get("padding", "valid")).lower()
    if padding not in ("valid", "same"):
        raise ValueError(f"{name} ({kind}) padding must be 'valid' or 'same'; got {padding!r}")

    def build(v: _Val) -> _Val:
        axes = []
        for n, kk, ss in zip(v.shape[1:], k, s, strict=True):
            if padding == "same":  # TF: only the valid cells are averaged
                out, lo = -(-n // ss), same_padding(n, kk, ss, 1)[0]
            else:
                out, lo = (n - kk) // ss + 1, 0
            if out < 1:
                raise ValueError(
                    f"{name} ({kind}) input must be at least pool_size {k}; got {v.shape[1:]}"
                )
            axes.append(pool_windows(n, kk, ss, lo, out, False))
        plane = windows_matrix(axes, None, r.dtype, math.inf, "avg_pool matrix", "")
        out_shape = (v.shape[0], *(a.lo.size for a in axes))
        return r.step(PlaneStep(name, kind, v.shape, out_shape, plane), v)

    return r.spatial(x, _channels_first(cfg), name, build)


def _read_rearrange(
    r: _Reader,
    kind: str,
    cfg: dict[str, Any],
    w: list[Array],
    xs: list[_Val],
    name: str,
    call: Any,
    act: Any,
) -> _Val:
    x = xs[0]
    idx = np.arange(math.prod(x.shape)).reshape(x.shape)
    if kind == "Flatten":
        if _channels_first(cfg) and len(x.shape) > 1:
            idx = np.moveaxis(idx, 0, -1)
        return r.gather([x], idx.reshape(-1), name, kind)
    if kind == "Permute":
        return r.gather([x], idx.transpose([d - 1 for d in cfg["dims"]]), name, kind)
    target = tuple(int(v) for v in cfg["target_shape"])
    try:
        out = idx.reshape(target)
    except ValueError:
        raise ValueError(
            f"{name} (Reshape) target_shape {target} must hold the {idx.size} values of {x.shape}"
        ) from None
    return r.gather([x], out, name, kind)


def _read_merge(
    r: _Reader,
    kind: str,
    cfg: dict[str, Any],
    w: list[Array],
    xs: list[_Val],
    name: str,
    call: Any,
    act: Any,
) -> _Val:
    if kind == "Concatenate":
        axis = int(cfg.get("axis", -1))
        rank = len(xs[0].shape)
        a = axis % (rank + 1) - 1 if axis != 0 else -1
        if a < 0 or any(len(v.shape) != rank for v in xs):
            raise ValueError(f"{name} (Concatenate) must join along a sample axis; got axis {axis}")
        starts = np.cumsum([0] + [math.prod(v.shape) for v in xs])
        parts = [
            np.arange(int(st), int(st) + math.prod(v.shape)).reshape(v.shape)
            for v, st in zip(xs, starts, strict=False)
        ]
        try:
            source = np.concatenate(parts, axis=a)
        except ValueError:
            raise ValueError(
                f"{name} (Concatenate) inputs must agree off axis {axis}; got "
                f"{[v.shape for v in xs]}"
            ) from None
        return r.gather(xs, source, name, kind)
    if kind == "Multiply":
        return r.product(xs, name)
    if kind == "Subtract":
        return r.total([(1.0, xs[0]), (-1.0, xs[1])], name, kind)
    c = 1.0 / len(xs) if kind == "Average" else 1.0
    return r.total([(c, v) for v in xs], name, kind)


def _read_activation(
    r: _Reader,
    kind: str,
    cfg: dict[str, Any],
    w: list[Array],
    xs: list[_Val],
    name: str,
    call: Any,
    act: Any,
) -> _Val:
    x = xs[0]
    if kind == "Activation":
        act_name = cfg.get("activation", "linear")
        act_name = act_name if isinstance(act_name, str) else getattr(act, "__name__", "")
        return r.activation(x, name, act_name, act)
    r.needs_at(name, kind)
    if call is None:
        raise ValueError(f"{name} ({kind}) needs the Keras layer itself to be linearised")
    return r.linearise(call, x, name, kind)


_READERS: dict[str, Callable[..., _Val]] = {
    **{k: _read_conv for k in _CONV},
    **{k: _read_conv_transpose for k in _CONV_T},
    **{k: _read_depthwise for k in (*_DEPTHWISE, *_SEPARABLE)},
    **{f"UpSampling{d}D": _read_upsampling for d in (1, 2, 3)},
    **{f"ZeroPadding{d}D": _read_pad_crop for d in (1, 2, 3)},
    **{f"Cropping{d}D": _read_pad_crop for d in (1, 2, 3)},
    **{f"AveragePooling{d}D": _read_avg_pool for d in (1, 2, 3)},
    "Dense": _read_dense,
    "BatchNormalization": _read_batch_norm,
    "Flatten": _read_rearrange,
    "Reshape": _read_rearrange,
    "Permute": _read_rearrange,
    **{k: _read_merge for k in ("Add", "Subtract", "Average", "Concatenate", "Multiply")},
    **{k: _read_activation for k in ("Activation", "ReLU", "LeakyReLU", "ELU", "PReLU")},
}


def _finish(r: _Reader, out: _Val, name: str, layout: str, max_bytes: Any) -> AffineMap:
    """The map from the nodes that reach ``out`` (unused layout gathers dropped)."""
    keep = {out.index}
    for i in range(out.index, 0, -1):
        if i in keep:
            keep.update(r.nodes[i].parents)
    keep.add(0)
    order = sorted(keep)
    new = {old: k for k, old in enumerate(order)}
    nodes = [r.nodes[i]._replace(parents=tuple(new[p] for p in r.nodes[i].parents)) for i in order]
    if out.index == 0:
        nodes.append(Node("sum", out.shape, (0,), coeffs=(1.0,), name="output"))
    return AffineMap(nodes, max_bytes=max_bytes, name=name, layout=layout)


def _sample_shape(input_shape: Any) -> Shape:
    if isinstance(input_shape, (int, np.integer)):
        input_shape = (input_shape,)
    try:
        shape = tuple(operator.index(v) for v in input_shape)
    except TypeError:
        raise TypeError(
            f"input_shape must be a sequence of ints (one sample, no batch); got {input_shape!r}"
        ) from None
    if not shape or min(shape) < 1:
        raise ValueError(f"input_shape must be non-empty with sizes >= 1; got {shape}")
    return shape


def _from_config(
    layers: Sequence[tuple[str, dict[str, Any], Sequence[Any]]],
    input_shape: Any,
    *,
    dtype: Any = np.float64,
    layout: str = "channels_last",
    max_bytes: Any = DEFAULT_MAX_BYTES,
) -> AffineMap:
    """Private: a stack of Keras layers given as ``(class_name, config, weights)``, no keras.

    The path :func:`from_keras` takes for each layer, without the Keras objects: the
    committed fixtures rebuild their maps through it. Linear layers only (``at=`` needs
    the layers themselves).
    """
    shape = _sample_shape(input_shape)
    r = _Reader(shape, None, dtype, None)
    x = r.input
    for i, (kind, config, weights) in enumerate(layers):
        x = r.layer(kind, config, [np.asarray(w) for w in weights], [x], config.get("name", str(i)))
    return _finish(r, x, "Sequential", layout, max_bytes)


# ----------------------------------------------------------------------------- keras


def _keras() -> Any:
    try:
        return importlib.import_module("keras")
    except ModuleNotFoundError as err:  # pragma: no cover - only without keras
        raise ModuleNotFoundError("from_keras needs Keras 3; pip install keras") from err


def _jax() -> Any:
    try:
        jax = importlib.import_module("jax")
    except ModuleNotFoundError as err:  # pragma: no cover - only without jax
        raise ModuleNotFoundError("from_keras(at=...) needs jax; pip install jax") from err
    return jax


def _layout_of(obj: Any, keras: Any) -> str:
    formats = {
        getattr(layer, "data_format", None)
        for layer in _all_layers(obj, keras)
        if getattr(layer, "data_format", None) in ("channels_first", "channels_last")
    }
    if formats == {"channels_first"}:
        return "channels_first"
    return "channels_last"


def _all_layers(obj: Any, keras: Any) -> list[Any]:
    if isinstance(obj, keras.Model):
        return [sub for layer in obj.layers for sub in _all_layers(layer, keras)]
    return [obj]


def _weights(layer: Any) -> list[Array]:
    """A layer's weights as NumPy arrays, in ``layer.weights`` order (``get_weights()``'s)."""
    return [np.asarray(v.value) for v in layer.weights]


class _KerasReader:
    """Walks Keras layers, Sequential and functional models, feeding :class:`_Reader`."""

    def __init__(self, keras: Any, reader: _Reader) -> None:
        self.keras = keras
        self.r = reader

    def read(self, obj: Any, inputs: list[_Val]) -> _Val:
        keras = self.keras
        if isinstance(obj, keras.Sequential):
            x = inputs[0]
            for layer in obj.layers:
                x = self.read(layer, [x])
            return x
        if isinstance(obj, keras.Model):
            if not hasattr(obj, "_run_through_graph") or not hasattr(obj, "_nodes_by_depth"):
                raise TypeError(
                    f"{obj.name} ({type(obj).__name__}) is a subclassed Model: from_keras reads "
                    f"Sequential and functional models only; {_supported_message()}"
                )
            if len(obj.inputs) != len(inputs):
                raise TypeError(
                    f"{obj.name} ({type(obj).__name__}) must take one input; it takes "
                    f"{len(obj.inputs)}"
                )
            out = obj._run_through_graph(inputs, operation_fn=lambda op: self._caller(op))
            outs = out if isinstance(out, (list, tuple)) else [out]
            if len(outs) != 1 or not isinstance(outs[0], _Val):
                raise TypeError(f"{obj.name} ({type(obj).__name__}) must have one output")
            return outs[0]
        return self.layer(obj, inputs)

    def _caller(self, op: Any) -> Callable[..., _Val]:
        def call(*args: Any, **kwargs: Any) -> _Val:
            first = args[0] if args else next(iter(kwargs.values()))
            xs = list(first) if isinstance(first, (list, tuple)) else [first]
            if not all(isinstance(v, _Val) for v in xs):
                raise TypeError(f"{op.name} ({type(op).__name__}) must take the model's values")
            return self.read(op, xs)

        return call

    def layer(self, layer: Any, inputs: list[_Val]) -> _Val:
        kind = type(layer).__name__
        name = str(layer.name)
        if not type(layer).__module__.startswith("keras.") or (
            kind not in _READERS and kind not in _IDENTITY
        ):
            raise TypeError(
                f"{name} ({type(layer).__module__}.{kind}) is not supported by from_keras; "
                f"{_supported_message()}"
            )
        if kind in _IDENTITY:
            return inputs[0]
        shapes = [(1, *v.shape) for v in inputs]
        if not layer.built:
            layer.build(shapes[0] if len(shapes) == 1 else shapes)
        config = layer.get_config()
        weights = _weights(layer)
        act = getattr(layer, "activation", None)
        out = self.r.layer(kind, config, weights, inputs, name, call=layer, act=act)
        try:
            expected = layer.compute_output_shape(shapes[0] if len(shapes) == 1 else shapes)
        except Exception:  # pragma: no cover - a layer that cannot say; the map still stands
            return out
        if tuple(expected[1:]) != out.shape:
            raise ValueError(
                f"{name} ({kind}) must give the output Keras gives; convmat computed "
                f"{out.shape}, Keras {tuple(expected[1:])}"
            )
        return out


def from_keras(
    layer_or_model: Any,
    input_shape: Any,
    *,
    at: Any = None,
    max_bytes: Any = DEFAULT_MAX_BYTES,
) -> AffineMap:
    r"""The exact map ``y = M x + b`` of a Keras 3 layer or model, for one sample.

    Parameters
    ----------
    layer_or_model : keras.Layer or keras.Model
        A supported layer (:func:`supported_layers`: ``Conv1D/2D/3D``,
        ``Conv1D/2D/3DTranspose``, ``DepthwiseConv1D/2D``, ``SeparableConv1D/2D``,
        ``UpSampling1D/2D/3D`` (nearest; bilinear in 2-d), ``ZeroPadding*D``,
        ``Cropping*D``, ``AveragePooling*D``, ``Dense``, ``Flatten``, ``Reshape``,
        ``Permute``, ``BatchNormalization`` (inference), ``Add``, ``Subtract``,
        ``Average``, ``Concatenate``, dropout and noise layers (identities at inference);
        with ``at=``: ``Activation``, ``ReLU``, ``LeakyReLU``, ``ELU``, ``PReLU``,
        ``Multiply``), a ``Sequential`` of them or a functional model with one input and
        one output (nested models too). An unbuilt layer is built for ``input_shape``.
    input_shape : sequence of int
        One sample in the model's own layout, no batch axis: ``(*spatial, C)`` for
        channels-last layers (Keras' default), ``(C, *spatial)`` for channels-first.
    at : array_like, optional
        One input sample of ``input_shape``. With it, nonlinear layers and
        ``activation=`` arguments (``ELEMENTWISE_ACTIVATIONS``) become their exact
        Jacobian at ``at`` (computed with jax), and ``b = f(at) − M at``.
    max_bytes : int
        The largest matrix :attr:`AffineMap.matrix` builds (default 4 GiB).

    Returns
    -------
    AffineMap
        As :func:`from_torch` gives, flattened in C order of the model's layout;
        ``.layout`` is ``"channels_last"`` unless every layer with a ``data_format``
        is channels-first. :func:`to_channels_first` gives it on PyTorch's layout.

    Raises
    ------
    TypeError
        For a layer class that is not supported (the message names the layer's name and
        class and lists what is), a subclassed model, several inputs or outputs.
    ValueError
        For an unsupported option (``padding``, ``interpolation``, activation), an input
        shape the model refuses, or a nonlinear layer without ``at=``.

    Notes
    -----
    Keras kernels ``(*k, C_in/g, C_out)`` are read as PyTorch's ``(C_out, C_in/g, *k)``;
    a transposed kernel ``(*k, C_out, C_in)`` as ``(C_in, C_out, *k)``. ``"same"`` pads
    ``total = max((⌈n/s⌉ − 1)·s + d·(k − 1) + 1 − n, 0)``, the extra one after; a
    transposed ``"same"``/``"valid"`` becomes the forward ``(low, high)`` padding and
    ``output_padding`` of :func:`transpose_padding`. Spatial steps run channels-first
    between two permutation gathers when the layer is channels-last; consecutive ones
    share them.

    Examples
    --------
    >>> import os; _ = os.environ.setdefault("KERAS_BACKEND", "jax")
    >>> import keras
    >>> layer = keras.layers.Conv2DTranspose(2, 3, strides=2, padding="same", dtype="float32")
    >>> A = from_keras(layer, (4, 4, 3))                   # (H, W, C): channels last
    >>> A.output_shape, A.layout
    ((8, 8, 2), 'channels_last')
    >>> x = np.random.default_rng(0).standard_normal((4, 4, 3)).astype("float32")
    >>> y = np.asarray(layer(x[None]))[0]
    >>> bool(np.allclose(A(x), y, atol=1e-5))
    True
    >>> bool(np.allclose(A.matrix @ x.ravel() + A.offset, y.ravel(), atol=1e-5))
    True
    >>> to_channels_first(A).input_shape                   # PyTorch's (C, H, W)
    (3, 4, 4)
    """
    keras = _keras()
    if not isinstance(layer_or_model, keras.Layer):
        raise TypeError(
            f"layer_or_model must be a keras.Layer or keras.Model; got "
            f"{type(layer_or_model).__name__}"
        )
    shape = _sample_shape(input_shape)
    sample = None
    if at is not None:
        sample = numeric_array(at, "at")
        if sample.shape != shape:
            raise ValueError(
                f"at must be one sample of input_shape {shape}; got shape {sample.shape}"
            )
    if not layer_or_model.built:
        layer_or_model.build((1, *shape))
    floats = [w.dtype for w in _weights(layer_or_model) if w.dtype.kind == "f"]
    dtype = floats[0] if floats else np.dtype(np.float64)
    reader = _Reader(shape, sample, dtype, _jax)
    out = _KerasReader(keras, reader).read(layer_or_model, [reader.input])
    layout = _layout_of(layer_or_model, keras)
    return _finish(reader, out, str(layer_or_model.name), layout, max_bytes)


# ----------------------------------------------------------------------------- layouts


def _to_first(shape: Shape) -> Array:
    """Gather source that lays a channels-last ``shape`` out channels-first."""
    idx = np.arange(math.prod(shape)).reshape(shape)
    return np.moveaxis(idx, -1, 0) if len(shape) > 1 else idx


def to_channels_first(amap: AffineMap) -> AffineMap:
    """The same map on PyTorch's layout: input ``(C, *spatial)``, output ``(C', *spatial')``.

    For a ``"channels_last"`` map ``A`` this is ``P_out @ A @ P_inᵀ`` with the permutation
    ``P`` moving the last axis first (a vector stays as it is); a ``"channels_first"``
    map is returned unchanged. Its matrix is ``A.matrix`` with rows and columns
    permuted, so it can be compared entry by entry with :func:`from_torch` of the same
    model.

    Parameters
    ----------
    amap : AffineMap
        A map, for instance from :func:`from_keras`.

    Returns
    -------
    AffineMap
        ``layout == "channels_first"``.

    Examples
    --------
    >>> import os; _ = os.environ.setdefault("KERAS_BACKEND", "jax")
    >>> import keras
    >>> A = from_keras(keras.layers.Conv1D(4, 3, padding="same", dtype="float32"), (10, 2))
    >>> B = to_channels_first(A)
    >>> B.input_shape, B.output_shape, B.layout
    ((2, 10), (4, 10), 'channels_first')
    >>> x = np.random.default_rng(1).standard_normal((2, 10))
    >>> bool(np.allclose(B(x), A(x.T).T))
    True
    """
    if not isinstance(amap, AffineMap):
        raise TypeError(f"amap must be an AffineMap; got {type(amap).__name__}")
    if amap.layout == "channels_first":
        return amap
    cl_in, cl_out = amap.input_shape, amap.output_shape
    src_in = _to_first(cl_in)
    cf_in = tuple(src_in.shape)
    # channels-first input -> channels-last: the inverse permutation of src_in
    inverse = np.empty(src_in.size, np.int64)
    inverse[src_in.reshape(-1)] = np.arange(src_in.size)
    src_out = _to_first(cl_out)
    nodes = [
        Node("input", cf_in),
        Node("gather", cl_in, (0,), source=inverse.reshape(cl_in), name="to channels_last"),
        Node("step", cl_out, (1,), MapStep(amap), name=amap.name or "map"),
        Node("gather", tuple(src_out.shape), (2,), source=src_out, name="to channels_first"),
    ]
    return AffineMap(nodes, max_bytes=amap.max_bytes, name=amap.name, layout="channels_first")
