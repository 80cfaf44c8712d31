"""The ``convmat`` command line: one verb per job, each a thin layer over the library.

Verbs: ``explain`` (a layer's formulas, steps and matrix), ``shape`` (the sizes
through a stack of layers, and the output_padding that restores them).
Bad arguments print one line and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import Any, NamedTuple

from convmat._shapes import (
    conv_output_shape,
    conv_transpose_output_padding,
    conv_transpose_output_shape,
)


class UsageError(Exception):
    """A bad command-line value: reported in one line, exit status 2."""


def parse_size(text: str, name: str) -> tuple[int, ...]:
    """``"3x4"`` → ``(3, 4)``; ``"5"`` → ``(5,)``."""
    if not re.fullmatch(r"\d+(x\d+)*", text.strip()):
        raise UsageError(f"{name} must look like 5, 3x4 or 2x3x4; got {text!r}")
    return tuple(int(v) for v in text.strip().split("x"))


def _fmt(shape: Sequence[int]) -> str:
    return "x".join(str(v) for v in shape)


# ---------------------------------------------------------------- convmat shape


class LayerSpec(NamedTuple):
    transposed: bool
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    output_padding: tuple[int, ...] | None
    target: tuple[int, ...] | None
    text: str


_KEYS = {
    "k": "kernel_size",
    "s": "stride",
    "p": "padding",
    "d": "dilation",
    "op": "output_padding",
    "to": "target",
}


def parse_layer(text: str, ndim: int) -> LayerSpec:
    """``conv:k=3,s=2,p=1`` or ``tconv:k=4,s=2,p=1[,op=1][,to=64x64]``."""
    kind, _, rest = text.partition(":")
    if kind not in ("conv", "tconv"):
        raise UsageError(f"layer must start with conv: or tconv:; got {text!r}")
    values: dict[str, tuple[int, ...] | None] = {
        "kernel_size": None,
        "stride": (1,),
        "padding": (0,),
        "dilation": (1,),
        "output_padding": None,
        "target": None,
    }
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in _KEYS:
            raise UsageError(
                f"layer options must be among {', '.join(_KEYS)} as key=value; "
                f"got {item!r} in {text!r}"
            )
        if kind == "conv" and key in ("op", "to"):
            raise UsageError(f"{key}= applies to tconv layers only; got it in {text!r}")
        values[_KEYS[key]] = parse_size(value, f"{key} in {text!r}")
    if values["kernel_size"] is None:
        raise UsageError(f"layer must give its kernel size as k=...; got {text!r}")

    def per_axis(key: str) -> tuple[int, ...]:
        v = values[key]
        assert v is not None
        if len(v) not in (1, ndim):
            raise UsageError(f"{key} must have 1 or {ndim} values; got {_fmt(v)} in {text!r}")
        return v * ndim if len(v) == 1 else v

    op = per_axis("output_padding") if values["output_padding"] is not None else None
    target = values["target"]
    if target is not None and len(target) != ndim:
        raise UsageError(f"to= must have {ndim} values; got {_fmt(target)} in {text!r}")
    return LayerSpec(
        kind == "tconv",
        per_axis("kernel_size"),
        per_axis("stride"),
        per_axis("padding"),
        per_axis("dilation"),
        op,
        target,
        text,
    )


def mirror(layers: list[LayerSpec]) -> list[LayerSpec]:
    """The decoder of an encoder: each conv undone by a tconv, last first."""
    return layers + [
        spec._replace(transposed=True, text="tconv:" + spec.text.partition(":")[2])
        for spec in reversed(layers)
        if not spec.transposed
    ]


def shape_walk(spatial: tuple[int, ...], layers: list[LayerSpec]) -> list[str]:
    """One line per layer: its sizes, and for tconv the output_padding it needs."""
    lines = [f"input  {_fmt(spatial)}"]
    open_convs: list[tuple[int, tuple[int, ...]]] = []
    for number, spec in enumerate(layers, start=1):
        geometry: dict[str, Any] = {
            "stride": spec.stride,
            "padding": spec.padding,
            "dilation": spec.dilation,
        }
        label = f"{number:>2}. {spec.text}"
        if not spec.transposed:
            out = conv_output_shape(spatial, spec.kernel_size, **geometry)
            open_convs.append((number, spatial))
            lines.append(f"{label:<34} {_fmt(spatial):>10} -> {_fmt(out)}")
            spatial = out
            continue
        partner = open_convs.pop() if open_convs else None
        target = spec.target or (partner[1] if partner else None)
        note = ""
        if spec.output_padding is not None:
            op = spec.output_padding
        elif target is not None:
            try:
                op = conv_transpose_output_padding(spatial, target, spec.kernel_size, **geometry)
            except ValueError as err:
                where = f"the input of layer {partner[0]}" if partner and not spec.target else "to="
                raise UsageError(
                    f"layer {number} ({spec.text}) cannot restore {_fmt(target)} ({where}): {err}"
                ) from None
        else:
            op = (0,) * len(spatial)
        out = conv_transpose_output_shape(spatial, spec.kernel_size, output_padding=op, **geometry)
        if target is not None:
            source = "to=" if spec.target else f"input of layer {partner[0]}" if partner else ""
            mark = "restores" if out == target else "MISSES"
            note = f"  output_padding={_fmt(op)} {mark} {_fmt(target)} ({source})"
        lines.append(f"{label:<34} {_fmt(spatial):>10} -> {_fmt(out)}{note}")
        spatial = out
    return lines


def _shape(args: argparse.Namespace) -> int:
    spatial = parse_size(args.input, "--input")
    layers = [parse_layer(text, len(spatial)) for text in args.layers]
    if args.mirror:
        layers = mirror(layers)
    if not layers:
        raise UsageError("shape needs at least one layer, e.g. conv:k=3,s=2,p=1")
    print("\n".join(shape_walk(spatial, layers)))
    return 0


# ---------------------------------------------------------------- convmat explain


def _explain(args: argparse.Namespace) -> int:
    import numpy as np

    from convmat._matrix import conv_transpose_matrix

    x = np.array([[0.0, 1.0], [2.0, 3.0]])
    k = np.array([[[[0.0, 1.0], [2.0, 3.0]]]])
    ct = conv_transpose_matrix((1, 2, 2), k)
    print("Transposed convolution of X = [[0, 1], [2, 3]] with K = [[0, 1], [2, 3]], stride 1:")
    print("C^T =")
    print(ct.toarray())
    print("C^T @ vec(X) =")
    print((ct @ x.ravel()).reshape(3, 3))
    return 0


# ---------------------------------------------------------------- convmat overlap


def _overlap_layers(args: argparse.Namespace, ndim: int) -> list[LayerSpec]:
    """The layer of --kernel/--stride/... (if given) followed by the --stack layers."""
    layers = []
    if args.kernel is not None:
        options = {"k": args.kernel, "s": args.stride, "p": args.padding, "d": args.dilation,
                   "op": args.output_padding}
        defaults = {"p": "0", "d": "1", "op": "0"}
        text = ",".join(f"{key}={value}" for key, value in options.items()
                        if defaults.get(key) != value)
        layers.append(parse_layer("tconv:" + text, ndim))
    layers += [parse_layer(text, ndim) for text in args.stack]
    if not layers:
        raise UsageError("overlap needs --kernel or --stack layers, e.g. --kernel 3 --stride 2")
    for spec in layers:
        if spec.target is not None:
            raise UsageError(f"to= has no meaning for overlap; got {spec.text!r}")
    return layers


def _overlap(args: argparse.Namespace) -> int:
    from convmat._checkerboard import checkerboard, format_counts, stack_overlap

    spatial = parse_size(args.input, "--input")
    layers = _overlap_layers(args, len(spatial))
    specs: list[dict[str, Any]] = [
        {"kind": "tconv" if spec.transposed else "conv", "kernel_size": spec.kernel_size,
         "stride": spec.stride, "padding": spec.padding, "dilation": spec.dilation}
        | ({"output_padding": spec.output_padding or 0} if spec.transposed else {})
        for spec in layers
    ]
    counts = stack_overlap(spatial, specs)
    path = " -> ".join(spec.text for spec in layers)
    print(f"taps per output position of {path} on {_fmt(spatial)} -> {_fmt(counts.shape)}")
    print(format_counts(counts))
    for spec in layers:
        if spec.transposed:
            summary = checkerboard(spec.kernel_size, spec.stride, dilation=spec.dilation)
            print(f"{spec.text}: {summary}")
    return 0


# ---------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convmat",
        description="Convolution and transposed convolution made visible.",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    explain = verbs.add_parser("explain", help="a layer's formulas, scatter steps and matrix")
    explain.set_defaults(run=_explain)

    shape = verbs.add_parser(
        "shape",
        help="sizes through a stack of layers, and the output_padding that restores them",
        description=(
            "Walk an input size through conv / tconv layers. Each tconv is paired with the "
            "latest unpaired conv and gets the output_padding that restores that conv's input "
            "size (or the size given by to=)."
        ),
        epilog="example: convmat shape --input 28x28 --mirror conv:k=3,s=2,p=1 conv:k=3,s=2,p=1",
    )
    shape.add_argument("--input", required=True, help="input spatial size, e.g. 64x64")
    shape.add_argument(
        "layers",
        nargs="*",
        metavar="LAYER",
        help="conv:k=3,s=2,p=1,d=1 or tconv:k=4,s=2,p=1[,op=1][,to=HxW]",
    )
    shape.add_argument(
        "--mirror",
        action="store_true",
        help="append the transposed layers that undo the convs, last first",
    )
    shape.set_defaults(run=_shape)

    overlap = verbs.add_parser(
        "overlap",
        help="how many kernel taps land on each output of a transposed conv (checkerboard)",
        description=(
            "Print, as a grid, how many (input, kernel tap) pairs write each output position "
            "of a transposed convolution — the response of a ones kernel to a ones input. "
            "Uneven counts are the checkerboard artifact; they are even inside exactly when "
            "the stride divides the kernel size. --stack adds layers after it (artifacts "
            "compound; a stride-1 conv after it smooths)."
        ),
        epilog="example: convmat overlap --kernel 3 --stride 2 --input 6x6",
    )
    overlap.add_argument("--kernel", help="kernel size of the transposed layer, e.g. 3 or 3x4")
    overlap.add_argument("--stride", default="1", help="int or one per axis (default 1)")
    overlap.add_argument("--padding", default="0", help="int or one per axis (default 0)")
    overlap.add_argument("--dilation", default="1", help="int or one per axis (default 1)")
    overlap.add_argument("--output-padding", default="0", help="int or one per axis (default 0)")
    overlap.add_argument("--input", default="4x4", help="input spatial size (default 4x4)")
    overlap.add_argument("--stack", nargs="+", default=[], metavar="LAYER",
                         help="further layers: tconv:k=3,s=2,p=1[,d=1,op=0] or conv:k=3,p=1")
    overlap.set_defaults(run=_overlap)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help()
        return 2
    try:
        status: int = args.run(args)
    except (UsageError, ValueError, TypeError) as err:
        print(f"convmat {args.verb}: error: {err}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    sys.exit(main())
