"""Models in: a PyTorch module, stack or network read as its exact :class:`AffineMap`.

:func:`from_torch` reads a module without changing it. A leaf module becomes one
step; anything else is traced with ``torch.fx`` and read node by node, while torch
itself runs the model on one sample (zeros, or ``at=``) so that every shape, every
pooling winner and every value a linearisation needs is torch's own.

Three kinds of node:

* linear modules and functions become exact steps (convolutions through the fast
  path and the pattern, resizes and poolings as one plane's matrix, ``Linear`` as
  its dense matrix, BatchNorm in eval mode as a diagonal scale and a shift);
* rearrangements (``view``, ``flatten``, ``permute``, ``cat``, slicing, padding,
  ``PixelShuffle``, ...) become gathers: torch runs them on the *indices* of their
  inputs, so each output element's source is torch's own answer;
* nonlinear modules (activations, max pooling, GroupNorm/InstanceNorm/LayerNorm)
  need ``at=x`` and become their exact Jacobian at ``x`` plus an offset, so the map
  equals the model at ``x``.

torch is imported only when :func:`from_torch` runs; ``import convmat`` never imports it.
"""

from __future__ import annotations

import contextlib
import math
import operator
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from convmat._affine import (
    AffineMap,
    DenseLastAxisStep,
    DiagStep,
    GroupNormJacobian,
    MatrixStep,
    Node,
    PlaneStep,
    Step,
)
from convmat._args import as_array, numeric_array, spatial_shape
from convmat._layer import conv_layer, conv_transpose_layer
from convmat._matrix import DEFAULT_MAX_BYTES
from convmat._reading import conv_step as _conv_step
from convmat._reading import require_at
from convmat._shapes import conv_transpose_output_padding

Array = np.ndarray[Any, Any]

ELEMENTWISE = (
    "ReLU",
    "LeakyReLU",
    "PReLU",
    "ReLU6",
    "Hardtanh",
    "ELU",
    "GELU",
    "SiLU",
    "Sigmoid",
    "Tanh",
    "Softplus",
)
_ELEMENTWISE_FUNCTIONS = (
    "relu",
    "leaky_relu",
    "prelu",
    "relu6",
    "hardtanh",
    "elu",
    "gelu",
    "silu",
    "sigmoid",
    "tanh",
    "softplus",
)
_REARRANGING_METHODS = (
    "view",
    "reshape",
    "flatten",
    "unflatten",
    "permute",
    "transpose",
    "contiguous",
    "squeeze",
    "unsqueeze",
    "narrow",
    "flip",
    "roll",
    "chunk",
    "split",
    "expand",
    "repeat",
    "movedim",
    "view_as",
    "reshape_as",
    "expand_as",
    "clone",
)
_REARRANGING_FUNCTIONS = (
    "flatten",
    "reshape",
    "permute",
    "transpose",
    "squeeze",
    "unsqueeze",
    "narrow",
    "flip",
    "roll",
    "chunk",
    "split",
    "movedim",
    "cat",
    "concat",
    "concatenate",
    "stack",
    "pixel_shuffle",
    "pixel_unshuffle",
    "pad",
    "clone",
)


class _Val:
    """A value that depends on the input: graph node ``index``, torch's value ``tensor``."""

    def __init__(self, index: int, tensor: Any) -> None:
        self.index = index
        self.tensor = tensor

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.tensor.shape[1:])


def _torch() -> Any:
    try:
        import torch
        import torch.fx
    except ModuleNotFoundError as err:  # pragma: no cover - only without torch
        raise ModuleNotFoundError("from_torch needs PyTorch; pip install torch") from err
    return torch


def _map_args(value: Any, f: Callable[[_Val], Any]) -> Any:
    if isinstance(value, _Val):
        return f(value)
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(_map_args(v, f) for v in value)
    if isinstance(value, dict):
        return {k: _map_args(v, f) for k, v in value.items()}
    return value


def _vals(value: Any) -> list[_Val]:
    found: list[_Val] = []
    _map_args(value, lambda v: found.append(v))
    return found


def supported_modules() -> tuple[str, ...]:
    """The ``torch.nn`` module types :func:`from_torch` reads (nonlinear ones need ``at=``)."""
    return tuple(sorted({*_LINEAR_MODULES, *_NONLINEAR_MODULES}))


_LINEAR_MODULES = (
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "Linear",
    "Identity",
    "Flatten",
    "Unflatten",
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "AlphaDropout",
    "FeatureAlphaDropout",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "Upsample",
    "UpsamplingNearest2d",
    "UpsamplingBilinear2d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "PixelShuffle",
    "PixelUnshuffle",
    "ZeroPad1d",
    "ZeroPad2d",
    "ZeroPad3d",
    "ConstantPad1d",
    "ConstantPad2d",
    "ConstantPad3d",
    "ReflectionPad1d",
    "ReflectionPad2d",
    "ReflectionPad3d",
    "ReplicationPad1d",
    "ReplicationPad2d",
    "ReplicationPad3d",
    "CircularPad1d",
    "CircularPad2d",
    "CircularPad3d",
    "MaxUnpool1d",
    "MaxUnpool2d",
    "MaxUnpool3d",
    "Sequential",
    "InstanceNorm1d",
    "InstanceNorm2d",
    "InstanceNorm3d",
)
_NONLINEAR_MODULES = (
    *ELEMENTWISE,
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d",
    "GroupNorm",
    "LayerNorm",
)


def _is_torch_nn(module: Any, names: tuple[str, ...]) -> bool:
    cls = type(module)
    return cls.__module__.startswith("torch.nn.") and cls.__name__ in names


class _Reader:
    """Reads one model into graph nodes while torch runs it on one sample."""

    def __init__(
        self,
        torch: Any,
        root: Any,
        input_shape: tuple[int, ...],
        at: Array | None,
        output_size: Any,
        max_bytes: Any,
    ) -> None:
        self.torch = torch
        self.root = root
        self.at = at is not None
        # A lone layer read without at= feeds nothing: torch need not run it (see layer_value).
        self.lone = False
        self.output_size = output_size
        self.max_bytes = max_bytes
        params = list(root.parameters()) + list(root.buffers())
        floats = [p.dtype for p in params if p.is_floating_point()]
        if not floats and at is not None and at.dtype.kind == "f":
            floats = [getattr(torch, str(at.dtype))]
        # A model without weights reads exactly in float64, NumPy's default.
        self.tdtype = floats[0] if floats else torch.float64
        name = str(self.tdtype).replace("torch.", "")
        self.dtype = np.dtype(np.float32 if name == "bfloat16" else name)
        sample = np.zeros(input_shape) if at is None else at
        self.nodes: list[Node] = [Node("input", input_shape, name="input")]
        self.input = _Val(0, torch.as_tensor(sample, dtype=self.tdtype)[None])

    @contextlib.contextmanager
    def quiet(self, grad: bool = False) -> Any:
        """torch without autograd (unless ``grad``) and without its implementation warnings."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with self.torch.enable_grad() if grad else self.torch.no_grad():
                yield

    # -- graph building
    def push(self, node: Node, tensor: Any) -> _Val:
        self.nodes.append(node)
        return _Val(len(self.nodes) - 1, tensor)

    def layer_value(self, m: Any, args: Any, kwargs: Any, name: str) -> Any:
        """torch's value of a conv or linear layer, or ``None`` for a lone layer (unused)."""
        return None if self.lone else self.run(m, args, kwargs, name)

    def step(self, step: Step, parent: _Val, tensor: Any) -> _Val:
        if tensor is None:
            tensor = self.torch.empty((1, *step.output_shape), dtype=self.tdtype)
        got = tuple(tensor.shape[1:])
        if got != step.output_shape:
            raise ValueError(
                f"{step.name} ({step.kind}) must give the output torch gives; convmat computed "
                f"{step.output_shape}, torch {got}"
            )
        return self.push(
            Node("step", step.output_shape, (parent.index,), step, name=step.name), tensor
        )

    def run(self, fn: Callable[..., Any], args: Any, kwargs: Any, name: str) -> Any:
        """torch's own value of one node, on clones (in-place modules touch no input)."""
        a = _map_args(args, lambda v: v.tensor.clone())
        k = _map_args(kwargs, lambda v: v.tensor.clone())
        try:
            with self.quiet():
                return fn(*a, **k)
        except Exception as err:
            raise ValueError(
                f"{name}: torch could not run this node on input_shape {self.nodes[0].shape}: {err}"
            ) from None

    def gather(
        self,
        fn: Callable[..., Any],
        args: Any,
        kwargs: Any,
        name: str,
        hole_value: Any = 0.0,
        real: Callable[..., Any] | None = None,
        label: str = "",
    ) -> Any:
        """A rearrangement, read by running ``fn`` on the indices of its inputs.

        Cells ``fn`` fills with NaN are holes: constants (``hole_value``) in the offset.
        ``real`` computes torch's value when it differs from ``fn`` (a pad's constant).
        """
        torch = self.torch
        parents = list({id(v): v for v in _vals((args, kwargs))}.values())
        starts = np.cumsum([0] + [math.prod(p.shape) for p in parents])
        index = {
            id(p): torch.arange(int(s), int(s) + math.prod(p.shape), dtype=torch.float64).reshape(
                1, *p.shape
            )
            for p, s in zip(parents, starts, strict=False)
        }
        with self.quiet():
            out = fn(
                *_map_args(args, lambda v: index[id(v)]),
                **_map_args(kwargs, lambda v: index[id(v)]),
            )
        value = self.run(real or fn, args, kwargs, name)
        if isinstance(out, (tuple, list)):
            return type(out)(
                self._gather_node(o, t, parents, name, hole_value, label)
                for o, t in zip(out, value, strict=True)
            )
        return self._gather_node(out, value, parents, name, hole_value, label)

    def _gather_node(
        self, out: Any, value: Any, parents: list[_Val], name: str, hole_value: Any, label: str
    ) -> _Val:
        if out.ndim == 0 or out.shape[0] != 1:
            raise ValueError(
                f"{name} must keep the batch axis first and act on each sample alone; it turns "
                f"a batch of one into shape {tuple(out.shape)}"
            )
        idx = out[0].numpy()
        holes = np.isnan(idx)
        source = np.where(holes, -1, np.nan_to_num(idx, nan=-1)).astype(np.int64)
        offset = None
        if holes.any():
            offset = np.where(holes, np.asarray(hole_value, self.dtype), 0).astype(self.dtype)
        node = Node(
            "gather",
            tuple(idx.shape),
            tuple(p.index for p in parents),
            source=source,
            offset=offset,
            name=name,
            label=label,
        )
        return self.push(node, value)

    def needs_at(self, name: str, kind: str) -> None:
        require_at(self.at, name, kind)

    def linearise(self, fn: Callable[[Any], Any], val: _Val, name: str, kind: str) -> _Val:
        """An elementwise function at the current value: ``f'(z) ⊙ x + (f(z) − f'(z) z)``."""
        self.needs_at(name, kind)
        torch = self.torch
        with self.quiet(grad=True):
            z = val.tensor.detach().clone().requires_grad_(True)
            y = fn(z.clone())
            (grad,) = torch.autograd.grad(y.sum(), z)
        if tuple(y.shape) != tuple(z.shape):
            raise ValueError(
                f"{name} ({kind}) must be elementwise; shape {tuple(z.shape)} "
                f"became {tuple(y.shape)}"
            )
        d, zn, yn = (_np(t[0]) for t in (grad, z.detach(), y.detach()))
        step = DiagStep(name, kind, val.shape, d, offset=yn - d * zn, dtype=self.dtype)
        return self.step(step, val, y.detach())

    def normalised(
        self,
        val: _Val,
        name: str,
        kind: str,
        groups: int,
        eps: float,
        gamma: Any,
        fn: Callable[[Any], Any],
    ) -> _Val:
        """A normalisation's Jacobian at the current value, with ``f(z) − J z`` as offset."""
        self.needs_at(name, kind)
        y = self.run(fn, (val,), {}, name)
        z = _np(val.tensor[0])
        g = np.ones(1) if gamma is None else gamma
        jac = GroupNormJacobian(name, kind, val.shape, z.astype(self.dtype), groups, eps, g)
        jz = jac.apply(z[None].astype(self.dtype))[0]
        jac.offset = (_np(y[0]) - jz).astype(self.dtype)
        return self.step(jac, val, y)

    # -- dispatch
    def module(self, m: Any, name: str, args: Any, kwargs: Any) -> Any:
        kind = type(m).__name__
        vals = _vals((args, kwargs))
        if not vals:
            return self.run(m, args, kwargs, name)
        if not (_is_torch_nn(m, _LINEAR_MODULES) or _is_torch_nn(m, _NONLINEAR_MODULES)):
            raise TypeError(
                f"{name} ({type(m).__module__}.{kind}) is not supported by from_torch; "
                f"supported modules: {', '.join(supported_modules())} and fx-traceable "
                f"models built from them"
            )
        reader = _MODULE_READERS.get(kind)
        if reader is None:
            reader = _read_elementwise if kind in ELEMENTWISE else _read_rearranging
        return reader(self, m, name, args, kwargs)

    def function(self, target: Any, args: Any, kwargs: Any, name: str) -> Any:
        vals = _vals((args, kwargs))
        fname = getattr(target, "__name__", str(target))
        if not vals:
            return self.run(target, args, kwargs, name)
        if target is getattr:
            return getattr(args[0].tensor, args[1])
        if target is operator.getitem and isinstance(args[0], (tuple, list)):
            return args[0][args[1]]  # one result of a module that returns several
        if target is operator.getitem:
            return self.gather(operator.getitem, args, kwargs, name, label="getitem")
        arith = _ARITHMETIC.get(fname)
        if arith is not None and (
            target.__module__ in ("_operator", "operator")
            or fname in ("add", "sub", "mul", "div", "true_divide")
        ):
            return self.arithmetic(arith, args, kwargs, name)
        if fname in _ELEMENTWISE_FUNCTIONS:
            return self.linearise(lambda t: target(t, *args[1:], **kwargs), args[0], name, fname)
        if fname == "pad":
            return self.pad(target, args, kwargs, name)
        if fname in _REARRANGING_FUNCTIONS:
            return self.gather(target, args, kwargs, name, label=fname)
        if fname == "interpolate":
            return _read_interpolate(self, target, name, args, kwargs)
        if fname.startswith(("max_pool", "adaptive_max_pool")):
            indices = fname.endswith("_with_indices") or bool(kwargs.get("return_indices"))
            return _read_max_pool(
                self,
                lambda t, **k: target(t, *args[1:], **{**kwargs, **k}),
                name,
                fname,
                args[0],
                indices,
            )
        if fname.startswith("max_unpool"):
            value = self.run(target, args, kwargs, name)
            return _unpool(self, name, fname, args[0], kwargs.get("indices", args[1]), value)
        raise TypeError(
            f"{name}: the function {fname} is not supported by from_torch (linear functions: "
            f"add, sub, scalar mul/div, neg, cat, stack, view/reshape/flatten/permute, "
            f"slicing, pad, pixel_shuffle, interpolate; with at=: "
            f"{', '.join(_ELEMENTWISE_FUNCTIONS)}, max_pool)"
        )

    def method(self, target: str, args: Any, kwargs: Any, name: str) -> Any:
        obj = args[0]
        if not isinstance(obj, _Val):
            return self.run(lambda o, *a, **k: getattr(o, target)(*a, **k), args, kwargs, name)
        if target in ("size", "dim", "numel", "ndimension", "type", "get_device"):
            return getattr(obj.tensor, target)(*args[1:], **kwargs)
        if target in _ARITHMETIC:
            return self.arithmetic(_ARITHMETIC[target], args, kwargs, name)
        if target in _ELEMENTWISE_FUNCTIONS:
            return self.linearise(
                lambda t: getattr(t, target)(*args[1:], **kwargs), obj, name, target
            )
        if target in _REARRANGING_METHODS:
            return self.gather(
                lambda o, *a, **k: getattr(o, target)(*a, **k), args, kwargs, name, label=target
            )
        raise TypeError(f"{name}: the tensor method .{target}() is not supported by from_torch")

    def pad(self, target: Any, args: Any, kwargs: Any, name: str) -> Any:
        """``F.pad``: a gather; constant cells are holes filled by the offset."""
        bound = dict(zip(("input", "pad", "mode", "value"), args, strict=False)) | kwargs
        if bound.get("mode", "constant") != "constant":
            return self.gather(lambda **k: target(**k), (), bound, name, label="pad")
        value = bound.get("value") or 0.0
        return self.gather(
            lambda **k: target(**{**k, "value": float("nan")}),
            (),
            bound,
            name,
            hole_value=value,
            real=lambda **k: target(**k),
            label="pad",
        )

    def arithmetic(self, op: str, args: Any, kwargs: Any, name: str) -> Any:
        a, b = args[0], args[1] if len(args) > 1 else kwargs.get("other")
        alpha = kwargs.get("alpha", 1)
        torch = self.torch
        if op == "neg":
            return self.sum([(-1.0, a)], None, name, -a.tensor)
        if op in ("add", "sub"):
            sign = 1.0 if op == "add" else -1.0
            value = self.run(lambda x, y: x + sign * alpha * y, (a, b), {}, name)
            if isinstance(a, _Val) and isinstance(b, _Val):
                return self.sum([(1.0, a), (sign * alpha, b)], None, name, value)
            v, c, first = (a, b, True) if isinstance(a, _Val) else (b, a, False)
            const = _np(torch.as_tensor(c, dtype=self.tdtype).expand_as(value)[0])
            if first:
                return self.sum([(1.0, v)], sign * alpha * const, name, value)
            return self.sum([(sign * alpha, v)], const, name, value)
        if op == "mul":
            value = self.run(operator.mul, (a, b), {}, name)
            if isinstance(a, _Val) and isinstance(b, _Val):
                return self.product(a, b, name, value)
            v, c = (a, b) if isinstance(a, _Val) else (b, a)
            return self.scale(v, c, name, value)
        if op == "div":
            value = self.run(operator.truediv, (a, b), {}, name)
            if isinstance(a, _Val) and isinstance(b, _Val):
                return self.quotient(a, b, name, value)
            if isinstance(b, _Val):
                return self.linearise(lambda t: a / t, b, name, "div")
            return self.scale(a, 1.0 / torch.as_tensor(b, dtype=torch.float64), name, value)
        raise AssertionError(op)

    def sum(self, terms: list[tuple[float, _Val]], offset: Any, name: str, value: Any) -> _Val:
        shape = tuple(value.shape[1:])
        for _, v in terms:
            if v.shape != shape:
                raise ValueError(
                    f"{name} must add values of one shape (no broadcasting between "
                    f"inputs); got {v.shape} and {shape}"
                )
        off = None if offset is None else np.asarray(offset, self.dtype).reshape(shape)
        node = Node(
            "sum",
            shape,
            tuple(v.index for _, v in terms),
            coeffs=tuple(float(c) for c, _ in terms),
            offset=off,
            name=name,
        )
        return self.push(node, value)

    def scale(self, v: _Val, c: Any, name: str, value: Any) -> _Val:
        if tuple(value.shape) != tuple(v.tensor.shape):
            raise ValueError(
                f"{name} must keep its input's shape; {v.shape} became {tuple(value.shape[1:])}"
            )
        t = self.torch.as_tensor(c, dtype=self.torch.float64)
        d = _np(t.expand(v.tensor.shape)[0]) if t.ndim else float(t)
        return self.step(DiagStep(name, "mul", v.shape, d, dtype=self.dtype), v, value)

    def product(self, a: _Val, b: _Val, name: str, value: Any) -> _Val:
        """``a ⊙ b`` of two inputs at ``at=``: ``b₀ ⊙ a + a₀ ⊙ b`` plus the offset."""
        a0, b0 = _np(a.tensor[0]), _np(b.tensor[0])
        return self.bilinear(a, b, b0, a0, name, "a product of two inputs", value)

    def quotient(self, a: _Val, b: _Val, name: str, value: Any) -> _Val:
        """``a / b`` of two inputs at ``at=``: ``a / b₀ − (a₀ / b₀²) ⊙ b`` plus the offset."""
        a0, b0 = _np(a.tensor[0]), _np(b.tensor[0])
        return self.bilinear(a, b, 1 / b0, -a0 / b0**2, name, "a quotient of two inputs", value)

    def bilinear(
        self, a: _Val, b: _Val, da: Array, db: Array, name: str, what: str, value: Any
    ) -> _Val:
        """``da ⊙ a + db ⊙ b + (f(a₀, b₀) − da ⊙ a₀ − db ⊙ b₀)``: the tangent at ``at=``."""
        self.needs_at(name, what)
        if a.shape != b.shape or tuple(value.shape[1:]) != a.shape:
            raise ValueError(
                f"{name} must combine inputs of one shape (no broadcasting between "
                f"inputs); got {a.shape} and {b.shape}"
            )
        a0, b0 = _np(a.tensor[0]), _np(b.tensor[0])
        ta = self.step(DiagStep(name + ".a", "mul", a.shape, da, dtype=self.dtype), a, value)
        tb = self.step(DiagStep(name + ".b", "mul", b.shape, db, dtype=self.dtype), b, value)
        offset = _np(value[0]) - da * a0 - db * b0
        return self.sum([(1.0, ta), (1.0, tb)], offset, name, value)


_ARITHMETIC = {
    "add": "add",
    "iadd": "add",
    "sub": "sub",
    "isub": "sub",
    "mul": "mul",
    "imul": "mul",
    "truediv": "div",
    "itruediv": "div",
    "div": "div",
    "true_divide": "div",
    "neg": "neg",
}


def _np(t: Any) -> Array:
    return np.asarray(as_array(t))


# ----------------------------------------------------------------------------- modules


def _input_name(x: _Val, name: str) -> str:
    """How messages name a layer's input: ``input_shape`` for the model's own, as conv_matrix."""
    return "input_shape" if x.index == 0 else f"{name} input"


def _read_conv(r: _Reader, m: Any, name: str, args: Any, kwargs: Any) -> Any:
    x = args[0]
    w = _np(m.weight).astype(r.dtype, copy=False)
    layer = conv_layer(
        x.shape,
        w.shape,
        stride=m.stride,
        padding=m.padding,
        dilation=m.dilation,
        groups=m.groups,
        padding_mode=m.padding_mode,
        input_name=_input_name(x, name),
    )
    step = _conv_step(name, type(m).__name__, layer, w, m.bias, False)
    return r.step(step, x, r.layer_value(m, args, kwargs, name))


def _read_conv_transpose(r: _Reader, m: Any, name: str, args: Any, kwargs: Any) -> Any:
    x = args[0]
    w = _np(m.weight).astype(r.dtype, copy=False)
    size = kwargs.get("output_size", args[1] if len(args) > 1 else None)
    if size is None and r.output_size is not None:
        size = r.output_size.get(name) if isinstance(r.output_size, dict) else r.output_size
        if size is not None:
            kwargs = {**kwargs, "output_size": list(size)}
    ndim = len(m.kernel_size)
    op: Any = m.output_padding
    if size is not None:
        target = tuple(int(v) for v in size)[-ndim:]
        op = conv_transpose_output_padding(
            x.shape[1:],
            target,
            m.kernel_size,
            stride=m.stride,
            padding=m.padding,
            dilation=m.dilation,
        )
    layer = conv_transpose_layer(
        x.shape,
        w.shape,
        stride=m.stride,
        padding=m.padding,
        output_padding=op,
        dilation=m.dilation,
        groups=m.groups,
        input_name=_input_name(x, name),
    )
    step = _conv_step(name, type(m).__name__, layer, w, m.bias, True)
    return r.step(step, x, r.layer_value(m, args, kwargs, name))


def _read_linear(r: _Reader, m: Any, name: str, args: Any, kwargs: Any) -> Any:
    x = args[0]
    w = _np(m.weight).astype(r.dtype, copy=False)
    if x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"{name} input's last axis must have in_features = {w.shape[1]}; got shape {x.shape}"
        )
    offset = (
        None
        if m.bias is None
        else np.broadcast_to(_np(m.bias).astype(r.dtype), (*x.shape[:-1], w.shape[0]))
    )
    step = DenseLastAxisStep(name, "Linear", x.shape, w, offset)
    return r.step(step, x, r.layer_value(m, args, kwargs, name))


def _channel_affine(
    r: _Reader, x: _Val, name: str, kind: str, scale: Array, shift: Array, value: Any
) -> _Val:
    per = (len(scale), *(1,) * (len(x.shape) - 1))
    step = DiagStep(
        name,
        kind,
        x.shape,
        scale.reshape(per),
        offset=np.broadcast_to(shift.reshape(per), x.shape),
        dtype=r.dtype,
    )
    return r.step(step, x, value)


def _read_batch_norm(r: _Reader, m: Any, name: str, args: Any, kwargs: Any) -> Any:
    x, kind = args[0], type(m).__name__
    if m.training:
        raise ValueError(
            f"{name} ({kind}) must be in eval mode (in training mode it normalises by batch "
            f"statistics and updates its running ones); call model.eval() first"
        )
    if m.running_mean is None:
        gamma = None if m.weight is None else _np(m.weight).reshape(-1, *(1,) * (len(x.shape) - 1))
        return r.normalised(x, name, kind, x.shape[0], m.eps, gamma, lambda t: m(t))
    inv = 1.0 / np.sqrt(_np(m.running_var).astype(np.float64) + m.eps)
    g = np.ones_like(inv) if m.weight is None else _np(m.weight).astype(np.float64)
    b = np.zeros_like(inv) if m.bias is None else _np(m.bias).astype(np.float64)
    scale = g * inv
    shift = b - _np(m.running_mean) * scale
    return _channel_affine(r, x, name, kind, scale, shift, r.run(m, args, kwargs, name))


def _read_instance_norm(r: _Reader, m: Any, name: str, args: Any, kwargs: Any) -> Any:
    x, kind = args[0], type(m).__name__
    if m.track_running_stats and not m.training and m.running_mean is not None:
        return _read_batch_norm(r, m, name, args, kwargs)
    if m.training and m.track_running_stats:
        raise ValueError(f"{name} ({kind}) must be in eval mode; call model.eval() first")
    gamma = None if m.weight is None else _np(m.weight).reshape(-1, *(1,) * (len(x.shape) - 1))
    return r.normalised(x, name, kind, x.shape[0], m.eps, gamma, m)


def _read_group_norm(r: _Reader, m: Any, name: str, args: Any, kwargs: Any) -> Any:
    x = args[0]
    gamma = None if m.weight is None else _np(m.weight).reshape(-1, *(1,) * (len(x.shape) - 1))
    return r.normalised(x, name, "GroupNorm", m.num_groups, m.eps, gamma, m)


def _read_layer_norm(r: _Reader, m: Any, name: str, args: Any, kwargs: Any) -> Any:
    x = args[0]
    k = len(m.normalized_shape)
    groups = math.prod(x.shape[: len(x.shape) - k])
    gamma = None if m.weight is None else _np(m.weight)
    return r.normalised(x, name, "LayerNorm", groups, m.eps, gamma, m)


def _read_identity(r: _Reader, m: Any, name: str, args: Any, kwargs: Any) -> Any:
    if m.training and type(m).__name__ != "Identity" and getattr(m, "p", 0) > 0:
        raise ValueError(
            f"{name} ({type(m).__name__}) must be in eval mode (in training mode it drops "
            f"random entries); call model.eval() first"
        )
    return args[0]


def _read_rearranging(r: _Reader, m: Any, name: str, args: Any, kwargs: Any) -> Any:
    kind = type(m).__name__
    if "Pad" in kind:
        mode = (
            "reflect"
            if "Reflection" in kind
            else "replicate"
            if "Replication" in kind
            else "circular"
            if "Circular" in kind
            else "constant"
        )
        pad_fn = r.torch.nn.functional.pad
        pad = tuple(m.padding)
        if mode != "constant":
            return r.gather(
                lambda t: pad_fn(t, pad, mode=mode), args, kwargs, name, real=m, label=kind
            )
        return r.gather(
            lambda t: pad_fn(t, pad, value=float("nan")),
            args,
            kwargs,
            name,
            hole_value=m.value,
            real=m,
            label=kind,
        )
    return r.gather(m, args, kwargs, name, label=kind)


def _read_elementwise(r: _Reader, m: Any, name: str, args: Any, kwargs: Any) -> Any:
    return r.linearise(m, args[0], name, type(m).__name__)


def _read_max_pool(
    r: _Reader, fn: Callable[..., Any], name: str, kind: str, x: _Val, indices: bool
) -> Any:
    """Max pooling at ``at=``: the gather of each window's winner (torch's own indices).

    With ``indices`` the result is ``(value, indices)`` as torch returns it; the indices are
    constants of the map (they are fixed at ``at``), for a paired unpooling.
    """
    r.needs_at(name, kind)
    with r.quiet():
        value, idx = fn(x.tensor.clone(), return_indices=True)
    plane = math.prod(x.shape[1:])
    source = _np(idx[0]) + plane * np.arange(x.shape[0]).reshape(-1, *(1,) * (idx.ndim - 2))
    node = Node(
        "gather",
        tuple(value.shape[1:]),
        (x.index,),
        source=source.astype(np.int64),
        name=name,
        label=kind,
    )
    out = r.push(node, value)
    return (out, idx) if indices else out


def _read_max_pool_module(r: _Reader, m: Any, name: str, args: Any, kwargs: Any) -> Any:
    kind = type(m).__name__
    ndim = int(kind[-2])
    fn_name = ("adaptive_max_pool" if kind.startswith("Adaptive") else "max_pool") + f"{ndim}d"
    f = getattr(r.torch.nn.functional, fn_name)
    if kind.startswith("Adaptive"):

        def call(t: Any, **k: Any) -> Any:
            return f(t, m.output_size, **k)
    else:

        def call(t: Any, **k: Any) -> Any:
            return f(t, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode, **k)

    return _read_max_pool(r, call, name, kind, args[0], bool(m.return_indices))


def _unpool(r: _Reader, name: str, kind: str, x: _Val, indices: Any, value: Any) -> _Val:
    """Max unpooling with known indices: linear, a scatter (:func:`max_unpool_matrix`)."""
    from convmat._pool import max_unpool_matrix

    if isinstance(indices, _Val):
        raise ValueError(f"{name} must get its indices from a max pooling, not from the input")
    matrix = max_unpool_matrix(_np(indices[0]), tuple(value.shape[2:])).astype(r.dtype)
    step = MatrixStep(name, kind, x.shape, tuple(value.shape[1:]), matrix)
    return r.step(step, x, value)


def _read_max_unpool(r: _Reader, m: Any, name: str, args: Any, kwargs: Any) -> Any:
    indices = kwargs.get("indices", args[1] if len(args) > 1 else None)
    value = r.run(m, args, kwargs, name)
    return _unpool(r, name, type(m).__name__, args[0], indices, value)


def _resize(r: _Reader, name: str, kind: str, x: _Val, value: Any, bound: dict[str, Any]) -> _Val:
    """A resize (``nn.Upsample`` or ``F.interpolate``): one plane's :func:`upsample_matrix`."""
    from convmat._upsample import upsample_matrix

    size, scale = bound.get("size"), bound.get("scale_factor")
    if bound.get("recompute_scale_factor") or size is not None:
        size, scale = tuple(value.shape[2:]), None
    args = {
        "size": size,
        "scale_factor": scale,
        "mode": bound.get("mode", "nearest"),
        "align_corners": bound.get("align_corners"),
    }
    if bound.get("antialias"):
        args["antialias"] = True
    plane = upsample_matrix(x.shape[1:], **args, dtype=r.dtype)
    step = PlaneStep(name, kind, x.shape, tuple(value.shape[1:]), plane)
    step.spec = {"kind": "upsample", **{k: v for k, v in args.items() if v is not None}}
    return r.step(step, x, value)


def _read_upsample(r: _Reader, m: Any, name: str, args: Any, kwargs: Any) -> Any:
    bound = {
        k: getattr(m, k, None)
        for k in ("size", "scale_factor", "mode", "align_corners", "recompute_scale_factor")
    }
    return _resize(r, name, type(m).__name__, args[0], r.run(m, args, kwargs, name), bound)


def _read_interpolate(r: _Reader, target: Any, name: str, args: Any, kwargs: Any) -> Any:
    names = (
        "input",
        "size",
        "scale_factor",
        "mode",
        "align_corners",
        "recompute_scale_factor",
        "antialias",
    )
    bound = dict(zip(names, args, strict=False)) | kwargs
    value = r.run(target, args, kwargs, name)
    return _resize(r, name, "interpolate", bound["input"], value, bound)


def _read_avg_pool(r: _Reader, m: Any, name: str, args: Any, kwargs: Any) -> Any:
    from convmat import _avgpool

    x, kind = args[0], type(m).__name__
    value = r.run(m, args, kwargs, name)
    if kind.startswith("Adaptive"):
        plane = _avgpool.adaptive_avg_pool_matrix(
            x.shape[1:], tuple(value.shape[2:]), dtype=r.dtype
        )
    else:
        plane = _avgpool.avg_pool_matrix(
            x.shape[1:],
            m.kernel_size,
            stride=m.stride,
            padding=m.padding,
            ceil_mode=m.ceil_mode,
            count_include_pad=m.count_include_pad,
            divisor_override=getattr(m, "divisor_override", None),
            dtype=r.dtype,
        )
    return r.step(PlaneStep(name, kind, x.shape, tuple(value.shape[1:]), plane), x, value)


_MODULE_READERS: dict[str, Callable[..., Any]] = {
    **{f"Conv{d}d": _read_conv for d in (1, 2, 3)},
    **{f"ConvTranspose{d}d": _read_conv_transpose for d in (1, 2, 3)},
    **{f"BatchNorm{d}d": _read_batch_norm for d in (1, 2, 3)},
    **{f"InstanceNorm{d}d": _read_instance_norm for d in (1, 2, 3)},
    **{f"MaxPool{d}d": _read_max_pool_module for d in (1, 2, 3)},
    **{f"AdaptiveMaxPool{d}d": _read_max_pool_module for d in (1, 2, 3)},
    **{f"MaxUnpool{d}d": _read_max_unpool for d in (1, 2, 3)},
    **{f"AvgPool{d}d": _read_avg_pool for d in (1, 2, 3)},
    **{f"AdaptiveAvgPool{d}d": _read_avg_pool for d in (1, 2, 3)},
    "Linear": _read_linear,
    "GroupNorm": _read_group_norm,
    "LayerNorm": _read_layer_norm,
    "Upsample": _read_upsample,
    "UpsamplingNearest2d": _read_upsample,
    "UpsamplingBilinear2d": _read_upsample,
    **{
        k: _read_identity
        for k in (
            "Identity",
            "Dropout",
            "Dropout1d",
            "Dropout2d",
            "Dropout3d",
            "AlphaDropout",
            "FeatureAlphaDropout",
        )
    },
}


# ----------------------------------------------------------------------------- tracing


def _trace(torch: Any, module: Any) -> Any:
    class Tracer(torch.fx.Tracer):  # type: ignore[misc]
        def is_leaf_module(self, m: Any, qualname: str) -> bool:
            if _is_torch_nn(m, _LINEAR_MODULES) and type(m).__name__ != "Sequential":
                return True
            if _is_torch_nn(m, _NONLINEAR_MODULES):
                return True
            return bool(super().is_leaf_module(m, qualname))

    try:
        graph = Tracer().trace(module)
    except Exception as err:
        raise TypeError(
            f"module ({type(module).__name__}) cannot be traced by torch.fx, so from_torch cannot "
            f"read its graph: {type(err).__name__}: {err}. Models whose forward branches on "
            f"tensor values are not traceable; read their parts one at a time"
        ) from None
    return graph


def from_torch(
    module: Any,
    input_shape: Any,
    *,
    at: Any = None,
    output_size: Any = None,
    max_bytes: Any = DEFAULT_MAX_BYTES,
) -> AffineMap:
    r"""The exact map ``y = M x + b`` of a PyTorch module, stack or network, for one sample.

    Parameters
    ----------
    module : torch.nn.Module
        A supported layer (convolutions, transposed convolutions, Linear, pooling,
        resizing, padding, shuffling, BatchNorm in eval mode, ...), an ``nn.Sequential``
        of them, or any model ``torch.fx`` can trace built from them and from ``+``,
        ``-``, scalar ``*``/``/``, ``torch.cat``, slicing, ``view``/``reshape``/
        ``flatten``/``permute``, ``F.pad``, ``F.interpolate``.
    input_shape : sequence of int
        One sample, ``(C, *spatial)`` (no batch axis).
    at : array_like or torch.Tensor, optional
        One input sample. With it, nonlinear modules (ReLU and its kin, GELU, SiLU,
        Sigmoid, Tanh, Softplus, max pooling, GroupNorm/InstanceNorm/LayerNorm, the
        product of two inputs) become their exact Jacobian at ``at``, and ``b`` makes
        the map equal the model there: ``map(at) == module(at)``.
    output_size : sequence of int or dict, optional
        For a transposed convolution, the output size its ``forward(output_size=)``
        would get; a dict gives one per qualified module name.
    max_bytes : int
        The largest matrix :attr:`AffineMap.matrix` builds (default 4 GiB).

    Returns
    -------
    AffineMap
        ``.matrix`` (``csr_array``, on demand), ``.offset``, ``.operator`` (matrix-free,
        with the adjoint), ``.layers`` (per-module breakdown), ``map(x)`` for one sample
        or a batch, ``A @ B`` composition, ``.T``.

    Raises
    ------
    TypeError
        For a module type or function that is not supported (the message names the
        module's qualified name and type and lists what is), or a model torch.fx cannot
        trace.
    ValueError
        For an input shape the model refuses (the same messages as :func:`conv_matrix`),
        a module in training mode, or a nonlinear module without ``at=``.

    Notes
    -----
    With ``at=x``, ``M`` is the Jacobian of the model at ``x`` and ``b = f(x) − M x``;
    a row of ``M`` is the exact input gradient (saliency) of that output. For a
    piecewise-linear network (ReLU, max pooling) the map is exact on the whole
    linear region around ``x``.

    Examples
    --------
    >>> import torch
    >>> layer = torch.nn.Conv2d(3, 4, 3, padding=1)
    >>> A = from_torch(layer, (3, 8, 8))
    >>> A.matrix.shape
    (256, 192)
    >>> x = torch.randn(3, 8, 8)
    >>> bool(np.allclose(A(x), layer(x).detach().numpy(), atol=1e-5))
    True
    >>> bool(np.allclose(A.matrix @ x.numpy().ravel() + A.offset, A(x).ravel(), atol=1e-5))
    True
    """
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module; got {type(module).__name__}")
    shape = spatial_shape(input_shape, "input_shape")
    sample = None
    if at is not None:
        sample = numeric_array(at, "at")
        if sample.shape != shape:
            raise ValueError(
                f"at must be one sample of input_shape {shape}; got shape {sample.shape}"
            )
    reader = _Reader(torch, module, shape, sample, output_size, max_bytes)
    name = type(module).__name__
    if _is_torch_nn(module, _LINEAR_MODULES + _NONLINEAR_MODULES) and name != "Sequential":
        reader.lone = at is None
        out = reader.module(module, name, (reader.input,), {})
    else:
        out = _read_graph(reader, _trace(torch, module))
    if isinstance(out, tuple):
        out = out[0]
    if not isinstance(out, _Val):
        raise TypeError(f"module ({name}) must return one tensor that depends on its input")
    if out.index != len(reader.nodes) - 1:
        reader.push(Node("sum", out.shape, (out.index,), coeffs=(1.0,), name="output"), out.tensor)
    return AffineMap(reader.nodes, max_bytes=max_bytes, name=name)


def _read_graph(reader: _Reader, graph: Any) -> Any:
    root = reader.root
    env: dict[Any, Any] = {}
    first = True

    def load(a: Any) -> Any:
        return reader.torch.fx.node.map_arg(a, lambda n: env[n])

    for node in graph.nodes:
        if node.op == "placeholder":
            if first:
                env[node] = reader.input
                first = False
            elif node.args:
                env[node] = node.args[0]
            else:
                raise TypeError(
                    f"module ({type(root).__name__}) must take one input; its "
                    f"forward also needs {node.target!r}"
                )
        elif node.op == "get_attr":
            obj: Any = root
            for part in str(node.target).split("."):
                obj = getattr(obj, part)
            env[node] = obj.detach() if hasattr(obj, "detach") else obj
        elif node.op == "call_module":
            m = root.get_submodule(node.target)
            env[node] = reader.module(m, str(node.target), load(node.args), load(node.kwargs))
        elif node.op == "call_function":
            env[node] = reader.function(node.target, load(node.args), load(node.kwargs), node.name)
        elif node.op == "call_method":
            env[node] = reader.method(node.target, load(node.args), load(node.kwargs), node.name)
        elif node.op == "output":
            return load(node.args[0])
    raise AssertionError("graph without output")
