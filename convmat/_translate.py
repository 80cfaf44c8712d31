"""One layer, every framework: a convolution or transposed convolution in PyTorch, Keras or JAX.

Every layer is first read into one framework-neutral description, :class:`LayerSpec`:
the weight in PyTorch's layout, stride, dilation, groups and, per spatial axis, a
``(low, high)`` pair — the zero padding of a convolution's input, or the crop of a
transposed convolution's full output (a negative crop appends zeros). Each framework's
padding rules map into that pair and back out of it; the arithmetic of a framework
lives in exactly one reader and one writer here.

:func:`translate` writes the description as the target framework's layers (plus the
padding or cropping layer a user must add where no single layer matches, and why), and
:meth:`Translation.check` proves the translation: the two layers' matrices are equal.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from convmat._args import as_array, numeric_array, spatial_shape
from convmat._keras import _pairs as keras_pairs
from convmat._keras import same_padding, transpose_padding

Array = np.ndarray[Any, Any]
Pairs = tuple[tuple[int, int], ...]

FRAMEWORKS = ("torch", "keras", "jax")


class LayerSpec(NamedTuple):
    """A convolution or transposed convolution, framework-neutral.

    ``weight`` is in PyTorch's layout (conv ``(C_out, C_in/g, *k)``, transposed
    ``(C_in, C_out/g, *k)``); ``pads`` is per axis the conv's input padding, or the
    transposed layer's crop of its full output ``(n−1)·s + d·(k−1) + 1`` (negative:
    zeros appended).
    """

    transposed: bool
    weight: Array
    bias: Array | None
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    pads: Pairs
    padding_mode: str = "zeros"

    @property
    def ndim(self) -> int:
        return self.weight.ndim - 2

    @property
    def span(self) -> tuple[int, ...]:
        """``d·(k−1) + 1`` per axis: the dilated kernel's extent."""
        return tuple(
            d * (k - 1) + 1 for k, d in zip(self.weight.shape[2:], self.dilation, strict=True)
        )


class Translation(NamedTuple):
    """A layer written for another framework.

    Attributes
    ----------
    framework : {"torch", "keras", "jax"}
    layers : tuple of (str, dict)
        The target's layers (class or function name, keyword arguments), in order; more
        than one when a padding or cropping layer is needed.
    weights : tuple of numpy.ndarray
        The kernel rearranged for the target (and the bias), as its layer stores them.
    exact_single_layer : bool
        Whether one layer of the target matches alone.
    notes : str
        What was rearranged (kernel axes, flips) and why extra layers are needed.
    spec : LayerSpec
        The framework-neutral description both layers share.
    """

    framework: str
    layers: tuple[tuple[str, dict[str, Any]], ...]
    weights: tuple[Array, ...]
    exact_single_layer: bool
    notes: str
    spec: LayerSpec

    def build(self, input_shape: Any = None) -> Any:
        """The target itself: a torch module, a Keras model or a JAX function of a batch.

        A Keras model needs ``input_shape``, one sample ``(C, *spatial)`` in PyTorch's
        layout, to be built with its weights.
        """
        builder: Any = _BUILDERS[self.framework]
        return builder(self, input_shape)

    def check(self, input_shape: Any) -> float:
        """The largest difference between the source's and the target's matrices.

        ``input_shape`` is one sample in PyTorch's layout ``(C, *spatial)``; both layers'
        matrices are compared in that layout (a Keras map is permuted from channels-last).
        """
        shape = spatial_shape(input_shape, "input_shape")
        source = spec_matrix(self.spec, shape)
        target = _target_matrix(self, shape)
        if source.shape != target.shape:
            raise AssertionError(f"shapes differ: {source.shape} and {target.shape}")
        diff = abs(source - target)
        return float(diff.max()) if diff.nnz else 0.0


# ----------------------------------------------------------------------------- readers


def _tuple(v: Any, ndim: int) -> tuple[int, ...]:
    return tuple(int(x) for x in v) if isinstance(v, (tuple, list)) else (int(v),) * ndim


def keras_conv_pads(n: int, k_span: int, s: int, padding: str) -> tuple[int, int]:
    """Keras/TF input padding of a convolution: ``"valid"`` none, ``"same"`` extra high."""
    return (0, 0) if padding == "valid" else same_padding(n, k_span, s, 1)


def keras_transpose_crop(
    k_span: int, s: int, padding: str, output_padding: int | None
) -> tuple[int, int]:
    """Keras 3's transposed convolution as a crop of the full output (negative: appended)."""
    (low, high), extra = transpose_padding(k_span, s, 1, padding, output_padding)
    return (low, high - extra)


def read_torch(module: Any) -> LayerSpec:
    """A ``torch.nn.Conv*d`` / ``ConvTranspose*d`` as a :class:`LayerSpec`."""
    from convmat._layer import conv_layer

    kind = type(module).__name__
    w = numeric_array(module.weight, "weight")
    ndim = w.ndim - 2
    bias = None if module.bias is None else numeric_array(module.bias, "bias")
    stride, dilation = _tuple(module.stride, ndim), _tuple(module.dilation, ndim)
    if kind.startswith("ConvTranspose"):
        p, op = _tuple(module.padding, ndim), _tuple(module.output_padding, ndim)
        pads = tuple((pi, pi - oi) for pi, oi in zip(p, op, strict=True))
        return LayerSpec(True, w, bias, stride, dilation, module.groups, pads)
    if kind.startswith("Conv"):
        # The layer checker resolves "same"/"valid" to pairs; the input size does not matter
        # at stride 1, the only stride "same" allows.
        size = tuple(d * (k - 1) + 1 for k, d in zip(w.shape[2:], dilation, strict=True))
        layer = conv_layer(
            (w.shape[1] * module.groups, *size),
            w.shape,
            stride=stride,
            padding=module.padding,
            dilation=dilation,
            groups=module.groups,
            padding_mode=module.padding_mode,
        )
        return LayerSpec(
            False, w, bias, stride, dilation, module.groups, layer.padding, module.padding_mode
        )
    raise TypeError(f"layer must be a torch Conv or ConvTranspose module; got {kind}")


def read_keras(layer: Any, input_shape: Any = None) -> LayerSpec:
    """A Keras ``Conv*D`` / ``Conv*DTranspose`` as a :class:`LayerSpec`.

    ``input_shape`` (one sample, PyTorch layout ``(C, *spatial)``) is needed only for a
    ``"same"`` convolution with stride > 1, whose padding depends on the input size.
    """
    kind = type(layer).__name__
    if not kind.startswith("Conv") or "LSTM" in kind:
        raise TypeError(f"layer must be a Keras Conv*D or Conv*DTranspose layer; got {kind}")
    config = layer.get_config()
    # the variables' values (Keras' own get_weights() trips NumPy 2's copy= deprecation)
    weights = [np.asarray(as_array(getattr(v, "value", v))) for v in layer.weights]
    if not weights:
        raise ValueError(f"layer {layer.name} must be built (call it once) to be translated")
    kernel = weights[0]
    bias = weights[1] if config.get("use_bias") and len(weights) > 1 else None
    ndim = kernel.ndim - 2
    stride = _tuple(config["strides"], ndim)
    dilation = _tuple(config["dilation_rate"], ndim)
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel.shape[:ndim], dilation, strict=True))
    padding = config["padding"].lower()
    if kind.endswith("Transpose"):
        op = config.get("output_padding")
        ops = [None] * ndim if op is None else list(_tuple(op, ndim))
        pads = tuple(
            keras_transpose_crop(k, s, padding, o)
            for k, s, o in zip(span, stride, ops, strict=True)
        )
        # Keras stores (*k, C_out, C_in); torch (C_in, C_out, *k).
        w = np.moveaxis(kernel, (ndim + 1, ndim), (0, 1))
        return LayerSpec(True, w, bias, stride, dilation, 1, pads)
    groups = int(config.get("groups", 1))
    if padding == "same" and any(s > 1 for s in stride):
        if input_shape is None:
            raise ValueError(
                f"input_shape must be given to translate {layer.name}: Keras 'same' with "
                f"stride > 1 pads by an amount that depends on the input size"
            )
        spatial = spatial_shape(input_shape, "input_shape")[1:]
        pads = tuple(
            keras_conv_pads(n, k, s, "same") for n, k, s in zip(spatial, span, stride, strict=True)
        )
    else:
        pads = tuple(keras_conv_pads(1, k, 1, padding) for k in span)
    # Keras stores (*k, C_in/g, C_out); torch (C_out, C_in/g, *k).
    w = np.moveaxis(kernel, (ndim + 1, ndim), (0, 1))
    return LayerSpec(False, w, bias, stride, dilation, groups, pads)


def _framework(layer: Any) -> str:
    module = type(layer).__module__
    if module.startswith("torch.nn"):
        return "torch"
    if module.startswith("keras"):
        return "keras"
    raise TypeError(
        f"layer must be a torch.nn Conv/ConvTranspose module or a Keras Conv/ConvTranspose "
        f"layer (or a Sequential of one with its padding/cropping layers); got "
        f"{type(layer).__module__}.{type(layer).__name__}"
    )


def _edges(layer: Any, framework: str) -> tuple[str, Pairs] | None:
    """A padding (+) or cropping (−) layer as per-axis pairs, or None for anything else."""
    kind = type(layer).__name__
    if framework == "torch" and kind.startswith("ZeroPad"):
        flat = list(layer.padding)
        pairs = tuple((flat[i], flat[i + 1]) for i in range(0, len(flat), 2))[::-1]
        return "pad", pairs
    if framework == "keras" and kind.startswith(("ZeroPadding", "Cropping")):
        config = layer.get_config()
        if config.get("data_format") not in (None, "channels_last", "channels_first"):
            return None
        ndim = int(kind[-2])
        if kind.startswith("ZeroPadding"):
            return "pad", keras_pairs(config["padding"], ndim)
        crop = keras_pairs(config["cropping"], ndim)
        return "pad", tuple((-lo, -hi) for lo, hi in crop)
    return None


def read(layer: Any, input_shape: Any = None) -> tuple[str, LayerSpec]:
    """The framework of ``layer`` and its :class:`LayerSpec`.

    ``layer`` may also be a Sequential holding one convolution with zero-padding layers
    before it (a convolution) or padding/cropping layers after it (a transposed one) —
    what :func:`translate` writes when no single layer matches — folded into the pairs.
    """
    framework = _framework(layer)
    members = (
        list(layer)
        if framework == "torch" and type(layer).__name__ == "Sequential"
        else list(getattr(layer, "layers", [layer]))
        if framework == "keras" and type(layer).__name__ in ("Sequential", "Functional")
        else [layer]
    )
    edges = [_edges(m, framework) for m in members]
    convs = [i for i, e in enumerate(edges) if e is None]
    if len(convs) != 1:
        raise TypeError(
            "layer must hold exactly one convolution (with zero-padding or cropping layers "
            f"around it); got {[type(m).__name__ for m in members]}"
        )
    core = members[convs[0]]
    spec = read_torch(core) if framework == "torch" else read_keras(core, input_shape)
    before = [e for e in edges[: convs[0]] if e is not None]
    after = [e for e in edges[convs[0] + 1 :] if e is not None]
    pads = list(spec.pads)
    if (before and spec.transposed) or (after and not spec.transposed):
        raise TypeError(
            "layer must pad before a convolution and crop or pad after a transposed one; "
            f"got {[type(m).__name__ for m in members]}"
        )
    for _, pairs in before:  # input padding adds to the convolution's own
        pads = [(lo + a, hi + b) for (lo, hi), (a, b) in zip(pads, pairs, strict=True)]
    for _, pairs in after:  # output padding is a negative crop
        pads = [(lo - a, hi - b) for (lo, hi), (a, b) in zip(pads, pairs, strict=True)]
    if any(min(p) < 0 for p in pads) and not spec.transposed:
        raise ValueError(f"padding must stay >= 0 on every side; got {tuple(pads)}")
    return framework, spec._replace(pads=tuple(pads))


# ----------------------------------------------------------------------------- writers


def _weights(spec: LayerSpec, kernel: Array) -> tuple[Array, ...]:
    return (kernel,) if spec.bias is None else (kernel, spec.bias)


def write_torch(spec: LayerSpec) -> Translation:
    nd = spec.ndim
    c_a, c_b = spec.weight.shape[:2]
    common: dict[str, Any] = {
        "kernel_size": tuple(spec.weight.shape[2:]),
        "stride": spec.stride,
        "dilation": spec.dilation,
        "groups": spec.groups,
        "bias": spec.bias is not None,
    }
    notes = []
    if not spec.transposed:
        layers: list[tuple[str, dict[str, Any]]] = []
        sym = all(lo == hi for lo, hi in spec.pads)
        padding: Any = tuple(lo for lo, _ in spec.pads)
        if not sym:
            if spec.padding_mode != "zeros":
                raise ValueError("padding must be symmetric for a non-zero padding_mode")
            layers.append((f"ZeroPad{nd}d", {"padding": _torch_pad(spec.pads)}))
            padding = 0
            notes.append("torch pads both sides alike: the asymmetric padding is a ZeroPad")
        layers.append(
            (
                f"Conv{nd}d",
                {
                    "in_channels": c_b * spec.groups,
                    "out_channels": c_a,
                    **common,
                    "padding": padding,
                    "padding_mode": spec.padding_mode,
                },
            )
        )
        return Translation(
            "torch",
            tuple(layers),
            _weights(spec, spec.weight),
            sym,
            "; ".join(notes) or "same layout, no rearrangement",
            spec,
        )
    limit = [max(s, d) for s, d in zip(spec.stride, spec.dilation, strict=True)]
    ops = [lo - hi for lo, hi in spec.pads]
    single = all(
        lo >= 0 and 0 <= o < m for (lo, _), o, m in zip(spec.pads, ops, limit, strict=True)
    )
    args = {"in_channels": c_a, "out_channels": c_b * spec.groups, **common}
    if single:
        layer = (
            f"ConvTranspose{nd}d",
            {**args, "padding": tuple(lo for lo, _ in spec.pads), "output_padding": tuple(ops)},
        )
        return Translation(
            "torch",
            (layer,),
            _weights(spec, spec.weight),
            True,
            "same layout, no rearrangement",
            spec,
        )
    # The full output extended by output_padding (those cells get the bias), then cropped.
    grow = tuple(min(max(-hi, 0), m - 1) for (_, hi), m in zip(spec.pads, limit, strict=True))
    crop = tuple((lo, hi + e) for (lo, hi), e in zip(spec.pads, grow, strict=True))
    _no_bias_zeros(spec, crop, "torch's output_padding < max(stride, dilation)")
    layers = [
        (f"ConvTranspose{nd}d", {**args, "padding": 0, "output_padding": grow}),
        (f"ZeroPad{nd}d", {"padding": _torch_pad(tuple((-lo, -hi) for lo, hi in crop))}),
    ]
    notes.append(
        "torch crops padding p from the low side and p − output_padding from the high side "
        f"with output_padding < max(stride, dilation); the crop {spec.pads} is not of that "
        "form, so the full output is cropped (negative ZeroPad) or extended afterwards"
    )
    return Translation(
        "torch", tuple(layers), _weights(spec, spec.weight), False, "; ".join(notes), spec
    )


def _no_bias_zeros(spec: LayerSpec, crop: Pairs, limit: str) -> None:
    """Refuse appending plain zeros where the source's appended cells hold its bias."""
    if spec.bias is not None and any(hi < 0 for _, hi in crop):
        raise ValueError(
            f"bias must be absent to append output cells beyond {limit}: the source gives "
            f"them the bias, a padding layer would give zeros; got crop {spec.pads}"
        )


def _torch_pad(pairs: Pairs) -> tuple[int, ...]:
    """torch's flat pad tuple (last axis first) from per-axis pairs."""
    return tuple(v for lo, hi in reversed(pairs) for v in (lo, hi))


def _keras_edge(kind: str, pairs: Pairs, data_format: str) -> tuple[str, dict[str, Any]]:
    """A Keras ZeroPadding/Cropping layer: 1-d ones take one bare pair and no data_format."""
    key = "padding" if kind == "ZeroPadding" else "cropping"
    if len(pairs) == 1:
        if data_format != "channels_last":
            raise ValueError(
                f"data_format must be 'channels_last' for this 1-d translation: Keras' "
                f"{kind}1D layer has no channels-first form; got {data_format!r}"
            )
        return (f"{kind}1D", {key: pairs[0]})
    return (f"{kind}{len(pairs)}D", {key: pairs, "data_format": data_format})


def write_keras(spec: LayerSpec, data_format: str = "channels_last") -> Translation:
    nd = spec.ndim
    if spec.padding_mode != "zeros":
        raise ValueError(
            f"padding_mode must be 'zeros' to translate to Keras (it has no "
            f"{spec.padding_mode} padding layer); got {spec.padding_mode!r}"
        )
    if any(s > 1 for s in spec.stride) and any(d > 1 for d in spec.dilation):
        raise ValueError(
            "stride and dilation must not both exceed 1 to translate to Keras (its "
            f"convolutions refuse the pair); got stride {spec.stride}, dilation "
            f"{spec.dilation}"
        )
    base = {
        "kernel_size": tuple(spec.weight.shape[2:]),
        "strides": spec.stride,
        "dilation_rate": spec.dilation,
        "use_bias": spec.bias is not None,
        "data_format": data_format,
    }
    # torch (C_out, C_in/g, *k) or (C_in, C_out, *k) -> Keras (*k, C_in/g, C_out) or
    # (*k, C_out, C_in): the channel axes go last, in the same order.
    kernel = np.moveaxis(spec.weight, (0, 1), (nd + 1, nd))
    layers: list[tuple[str, dict[str, Any]]] = []
    if not spec.transposed:
        args = {**base, "filters": spec.weight.shape[0], "groups": spec.groups}
        same = all(
            p == keras_conv_pads(1, k, 1, "same") for p, k in zip(spec.pads, spec.span, strict=True)
        )
        if all(p == (0, 0) for p in spec.pads):
            layers.append((f"Conv{nd}D", {**args, "padding": "valid"}))
        elif same and all(s == 1 for s in spec.stride):
            layers.append((f"Conv{nd}D", {**args, "padding": "same"}))
        else:
            layers.append(_keras_edge("ZeroPadding", spec.pads, data_format))
            layers.append((f"Conv{nd}D", {**args, "padding": "valid"}))
        notes = "kernel axes moved: (C_out, C_in/g, *k) -> (*k, C_in/g, C_out)"
        if len(layers) > 1:
            notes += (
                "; Keras pads only 'same' (extra on the high side, depending on the "
                "input size when strided) or 'valid': this padding is a ZeroPadding"
            )
        return Translation(
            "keras", tuple(layers), _weights(spec, kernel), len(layers) == 1, notes, spec
        )
    if spec.groups != 1:
        raise ValueError(
            f"groups must be 1 to translate a transposed convolution to Keras (Conv*DTranspose "
            f"has no groups); got {spec.groups}"
        )
    args = {**base, "filters": spec.weight.shape[1]}
    for padding in ("valid", "same"):
        for op in [None, *range(max(spec.stride))]:
            if op is not None and any(op >= s for s in spec.stride):
                continue
            crops = tuple(
                keras_transpose_crop(k, s, padding, op)
                for k, s in zip(spec.span, spec.stride, strict=True)
            )
            if crops == spec.pads:
                layers.append(
                    (f"Conv{nd}DTranspose", {**args, "padding": padding, "output_padding": op})
                )
                return Translation(
                    "keras",
                    tuple(layers),
                    _weights(spec, kernel),
                    True,
                    "kernel axes moved: (C_in, C_out, *k) -> (*k, C_out, C_in)",
                    spec,
                )
    # 'valid' with output_padding a: the full output extended by a cells (they get the
    # bias), then cropped, or extended further with zeros.
    grow = tuple(min(max(-hi, 0), s - 1) for (_, hi), s in zip(spec.pads, spec.stride, strict=True))
    layers.append((f"Conv{nd}DTranspose", {**args, "padding": "valid", "output_padding": grow}))
    crop = tuple((lo, hi + e) for (lo, hi), e in zip(spec.pads, grow, strict=True))
    _no_bias_zeros(spec, crop, "Keras' output_padding < strides")
    if any(min(c) < 0 for c in crop):
        layers.append(
            _keras_edge(
                "ZeroPadding", tuple((max(-lo, 0), max(-hi, 0)) for lo, hi in crop), data_format
            )
        )
        crop = tuple((max(lo, 0), max(hi, 0)) for lo, hi in crop)
    if any(max(c) > 0 for c in crop):
        layers.append(_keras_edge("Cropping", crop, data_format))
    notes = (
        "kernel axes moved: (C_in, C_out, *k) -> (*k, C_out, C_in); Keras crops its full "
        "output only as 'valid' or 'same' (extra row on the high side), so this crop "
        f"{spec.pads} is a Cropping (or ZeroPadding) after a 'valid' layer"
    )
    return Translation("keras", tuple(layers), _weights(spec, kernel), False, notes, spec)


def write_jax(spec: LayerSpec) -> Translation:
    """``jax.lax.conv_general_dilated`` arguments in PyTorch's NC* / OI* layout."""
    nd = spec.ndim
    letters = "DHW"[-nd:] if nd <= 3 else "".join(chr(ord("a") + i) for i in range(nd))
    dn = ("NC" + letters, "OI" + letters, "NC" + letters)
    if spec.padding_mode != "zeros":
        raise ValueError(
            f"padding_mode must be 'zeros' to translate to jax.lax (it pads with zeros); got "
            f"{spec.padding_mode!r}"
        )
    if not spec.transposed:
        args = {
            "window_strides": spec.stride,
            "padding": spec.pads,
            "rhs_dilation": spec.dilation,
            "dimension_numbers": dn,
            "feature_group_count": spec.groups,
        }
        return Translation(
            "jax",
            (("conv_general_dilated", args),),
            _weights(spec, spec.weight),
            True,
            "same layout (OI*), no flip",
            spec,
        )
    # The fractionally strided view: insert s−1 zeros (lhs_dilation), pad by d(k−1) − crop,
    # correlate with the flipped kernel whose channel axes are swapped within each group.
    g = spec.groups
    w = spec.weight
    c_in, per = w.shape[:2]
    swapped = w.reshape(g, c_in // g, per, *w.shape[2:]).swapaxes(1, 2)
    kernel = np.flip(
        swapped.reshape(g * per, c_in // g, *w.shape[2:]), axis=tuple(range(2, w.ndim))
    )
    pads = tuple((k - 1 - lo, k - 1 - hi) for k, (lo, hi) in zip(spec.span, spec.pads, strict=True))
    args = {
        "window_strides": (1,) * nd,
        "padding": pads,
        "lhs_dilation": spec.stride,
        "rhs_dilation": spec.dilation,
        "dimension_numbers": dn,
        "feature_group_count": g,
    }
    notes = (
        "a transposed convolution is conv_general_dilated with lhs_dilation = stride "
        "(zeros inserted), padding d(k−1) − crop and the kernel flipped with its channel "
        "axes swapped; jax.lax.conv_transpose's default (transpose_kernel=False) would "
        "not flip it"
    )
    return Translation(
        "jax", (("conv_general_dilated", args),), _weights(spec, kernel), True, notes, spec
    )


def translate(
    layer: Any, to: str, *, input_shape: Any = None, data_format: str = "channels_last"
) -> Translation:
    r"""The same convolution layer in another framework, with the proof at hand.

    Parameters
    ----------
    layer : torch.nn.Conv*d / ConvTranspose*d, or keras.layers.Conv*D / Conv*DTranspose
        A built layer (its weights are translated too).
    to : {"torch", "keras", "jax"}
        The target framework (``"jax"``: arguments of ``jax.lax.conv_general_dilated``).
    input_shape : sequence of int, optional
        One sample ``(C, *spatial)``; needed only for a Keras ``"same"`` convolution with
        stride > 1, whose padding depends on the input size.
    data_format : {"channels_last", "channels_first"}
        The Keras target's layout.

    Returns
    -------
    Translation
        The target's layers and rearranged weights, whether one layer matches alone, notes
        on what was rearranged and why; ``.build()`` makes the target, ``.check(shape)``
        compares the two matrices.

    Raises
    ------
    TypeError
        For a layer that is not a convolution of a known framework, or an unknown target.
    ValueError
        Where the target has no equivalent, saying why (a reflect padding for Keras, groups
        in a Keras transposed layer, stride with dilation in Keras, ...).

    Notes
    -----
    Both layers are described by the same :class:`LayerSpec`: the kernel in PyTorch's
    layout and, per axis, a ``(low, high)`` pair — a convolution's input padding or a
    transposed convolution's crop of its full output ``(n−1)s + d(k−1) + 1``. PyTorch
    crops ``(p, p − output_padding)``; Keras ``"same"`` crops ``⌈(k_s−s)/2⌉`` low and the
    rest high; JAX pads the zero-inserted input by ``d(k−1) − crop``.

    Examples
    --------
    A Keras-style ``"same"`` transposed layer with an odd total crop has no single PyTorch
    equivalent — the asymmetric extra row:

    >>> spec = LayerSpec(True, np.ones((1, 1, 3)), None, (2,), (1,), 1, ((0, 1),))
    >>> t = write_torch(spec)
    >>> t.exact_single_layer, [name for name, _ in t.layers]
    (False, ['ConvTranspose1d', 'ZeroPad1d'])
    """
    if to not in FRAMEWORKS:
        raise TypeError(f"to must be one of {FRAMEWORKS}; got {to!r}")
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            f"data_format must be 'channels_last' or 'channels_first'; got {data_format!r}"
        )
    _, spec = read(layer, input_shape)
    if to == "torch":
        return write_torch(spec)
    if to == "keras":
        return write_keras(spec, data_format)
    return write_jax(spec)


# ----------------------------------------------------------------------------- proofs


def spec_matrix(spec: LayerSpec, input_shape: tuple[int, ...]) -> Any:
    """The matrix of a :class:`LayerSpec` on one sample ``(C, *spatial)``, PyTorch layout."""
    import scipy.sparse as sp

    from convmat._matrix import conv_matrix, conv_transpose_matrix

    if not spec.transposed:
        return conv_matrix(
            input_shape,
            spec.weight,
            stride=spec.stride,
            padding=spec.pads,
            dilation=spec.dilation,
            groups=spec.groups,
            padding_mode=spec.padding_mode,
        )
    full = conv_transpose_matrix(
        input_shape, spec.weight, stride=spec.stride, dilation=spec.dilation, groups=spec.groups
    )
    c_out = spec.weight.shape[1] * spec.groups
    n_full = [
        (n - 1) * s + k for n, s, k in zip(input_shape[1:], spec.stride, spec.span, strict=True)
    ]
    # Per axis, the full-output position of each kept output position (-1: appended zero).
    sources = []
    for n, (lo, hi) in zip(n_full, spec.pads, strict=True):
        pos = lo + np.arange(n - lo - hi)
        sources.append(np.where(pos < n, pos, -1))
    flat: Array = np.arange(c_out).reshape(-1, *(1,) * len(n_full))
    valid: Array = np.ones(flat.shape, bool)
    for axis, (n, src) in enumerate(zip(n_full, sources, strict=True)):
        shape = [1] * (len(n_full) + 1)
        shape[axis + 1] = -1
        flat = flat * n + np.maximum(src, 0).reshape(shape)
        valid = valid & (src >= 0).reshape(shape)
    rows, keep = (np.asarray(a).reshape(-1) for a in np.broadcast_arrays(flat, valid))
    select = sp.csr_array(
        (np.ones(int(keep.sum())), (np.flatnonzero(keep), rows[keep])),
        shape=(rows.size, full.shape[0]),
    )
    return sp.csr_array(select @ full)


def _channels_first_order(shape_last: tuple[int, ...]) -> Array:
    """For each channels-first flat position, its flat index in the channels-last layout."""
    index = np.arange(math.prod(shape_last)).reshape(shape_last)
    return np.asarray(np.moveaxis(index, -1, 0).reshape(-1))


def _target_matrix(t: Translation, input_shape: tuple[int, ...]) -> Any:
    """The target's own matrix, read back by the target framework's reader (PyTorch layout)."""
    if t.framework == "torch":
        from convmat._torch import from_torch

        return from_torch(t.build().double(), input_shape).matrix
    if t.framework == "keras":
        from convmat._keras import from_keras

        last = t.layers[0][1].get("data_format", "channels_last") == "channels_last"
        shape = (*input_shape[1:], input_shape[0]) if last else input_shape
        amap = from_keras(t.build(input_shape), shape)
        if not last:
            return amap.matrix
        rows = _channels_first_order(amap.output_shape)
        cols = _channels_first_order(amap.input_shape)
        return amap.matrix[rows][:, cols]
    from convmat._lax import lax_conv_matrix

    ((_, args),) = t.layers
    return lax_conv_matrix((1, *input_shape), t.weights[0], **args)


def _build_torch(t: Translation, input_shape: Any = None) -> Any:
    import torch

    weights = [torch.tensor(np.array(w)) for w in t.weights]
    modules = [getattr(torch.nn, name)(**args).to(weights[0].dtype) for name, args in t.layers]
    conv = next(m for m in modules if hasattr(m, "weight"))
    with torch.no_grad():
        conv.weight.copy_(weights[0])
        if len(weights) > 1:
            conv.bias.copy_(weights[1])
    return modules[0] if len(modules) == 1 else torch.nn.Sequential(*modules)


def _build_keras(t: Translation, input_shape: Any = None) -> Any:
    import keras

    if input_shape is None:
        raise ValueError("input_shape must be given to build a Keras model (C, *spatial)")
    shape = spatial_shape(input_shape, "input_shape")
    last = t.layers[0][1].get("data_format", "channels_last") == "channels_last"
    layers = [getattr(keras.layers, name)(**args) for name, args in t.layers]
    model = keras.Sequential([keras.Input((*shape[1:], shape[0]) if last else shape), *layers])
    conv = next(layer for layer in layers if type(layer).__name__.startswith("Conv"))
    for variable, value in zip(conv.weights, t.weights, strict=True):
        variable.assign(value)
    return model


def _build_jax(t: Translation, input_shape: Any = None) -> Any:
    import jax

    ((_, args),) = t.layers
    rhs = t.weights[0]
    bias = t.weights[1] if len(t.weights) > 1 else None

    conv: Any = jax.lax.conv_general_dilated

    def apply(lhs: Any) -> Any:
        y = conv(lhs, rhs, **args)
        return y if bias is None else y + bias.reshape(1, -1, *(1,) * (y.ndim - 2))

    return apply


_BUILDERS = {"torch": _build_torch, "keras": _build_keras, "jax": _build_jax}
