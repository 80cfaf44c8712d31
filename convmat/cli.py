"""The ``convmat`` command line: one verb per job, each a thin layer over the library.

Verbs: ``explain`` (a layer's formulas, steps and matrix), ``shape`` (the sizes
through a stack of layers, and the output_padding that restores them), ``overlap``
(the checkerboard counts of a transposed convolution), ``animate`` (a layer's window or
scatter drawn frame by frame into a GIF, MP4 or PNG strip) and ``demo``.
Bad arguments print one line and exit with status 2, never a traceback; output paths
are checked before any work and existing files are never overwritten without
``--force``. Output and help fit the terminal's width (80 columns when unknown) and
fall back to ASCII where the output encoding cannot show Unicode.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path
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


# ---------------------------------------------------------------- the terminal


def terminal_width() -> int:
    """The width to print for, in columns.

    ``$COLUMNS`` when set, else the width of the terminal on stdout, stderr or stdin
    (so ``convmat explain | less`` still fits the terminal), else 80.

    Returns
    -------
    int
        At least 1.
    """
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    for stream in (sys.stdout, sys.stderr, sys.stdin):
        try:
            width = os.get_terminal_size(stream.fileno()).columns
        except (AttributeError, OSError, ValueError):  # no file, a pipe, a capture buffer
            continue
        if width > 0:
            return width
    return 80


def wrap(line: str, width: int, indent: str = "  ") -> list[str]:
    """One line of prose wrapped to ``width`` at spaces, continuation lines indented.

    Words (a layer spec, a command) are never split; a word longer than the width
    stays whole on its own line.

    Parameters
    ----------
    line : str
        The text, without newlines.
    width : int
        Columns available.
    indent : str
        The start of every continuation line.

    Returns
    -------
    list of str
        ``[line]`` when it fits.
    """
    if len(line) <= width:
        return [line]
    return textwrap.wrap(
        line,
        width,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


# The ASCII spellings of the few non-ASCII characters in help and messages.
_ASCII = str.maketrans(
    {"ᵀ": "^T", "—": "-", "–": "-", "→": "->", "×": "x", "≤": "<=", "≥": ">=", "…": "...", "·": "."}
)


def printable(text: str, stream: object) -> str:
    """``text`` as ``stream`` can encode it: unchanged, else with ASCII spellings.

    Output that cannot show Unicode (``PYTHONIOENCODING=ascii``, a C locale) gets
    ``Cᵀ`` as ``C^T``, ``→`` as ``->`` and so on, and ``?`` for anything else, as
    ``convmat explain`` falls back to its ASCII style there.

    Parameters
    ----------
    text : str
        What to print.
    stream : text stream
        Where it goes; its ``encoding`` decides (none: any text goes).

    Returns
    -------
    str
    """
    encoding = getattr(stream, "encoding", None)
    if encoding is None:
        return text
    try:
        text.encode(encoding)
    except LookupError:
        return text
    except UnicodeEncodeError:
        return text.translate(_ASCII).encode(encoding, "replace").decode(encoding)
    return text


class _HelpFormatter(argparse.HelpFormatter):
    """Help at the terminal's width; words never split; indented lines (examples) kept whole."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        width = width if width is not None else max(terminal_width() - 2, 40)
        super().__init__(prog, indent_increment, max_help_position, width)

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(
            " ".join(text.split()), width, break_long_words=False, break_on_hyphens=False
        )

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines = []
        for line in text.splitlines():
            if line.startswith("  "):  # an example command: one line, as typed
                lines.append(indent + line)
            else:
                lines += textwrap.wrap(
                    " ".join(line.split()),
                    width,
                    initial_indent=indent,
                    subsequent_indent=indent,
                    break_long_words=False,
                    break_on_hyphens=False,
                ) or [""]
        return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose help and errors fall back to ASCII like the output does."""

    def _print_message(self, message: str, file: Any = None) -> None:
        if message:
            stream = file or sys.stderr
            try:
                stream.write(printable(message, stream))
            except (AttributeError, OSError):  # as argparse: a closed or missing stream
                pass


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
    keras: str | None = None  # "same" / "valid": Keras' padding instead of PyTorch's


_KEYS = {
    "k": "kernel_size",
    "s": "stride",
    "p": "padding",
    "d": "dilation",
    "op": "output_padding",
    "to": "target",
}


def parse_layer(text: str, ndim: int) -> LayerSpec:
    """``conv:k=3,s=2,p=1`` or ``tconv:k=4,s=2,p=1[,op=1][,to=64x64]``.

    ``p=same`` / ``p=valid`` read the layer with Keras' padding (and ``op=`` as Keras'
    ``output_padding``); the walk then prints the PyTorch equivalent.
    """
    kind, _, rest = text.partition(":")
    keras = None
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
        if key == "p" and value in ("same", "valid"):
            keras = value
            continue
        values[_KEYS[key]] = parse_size(value, f"{key} in {text!r}")
    if keras is not None and values["target"] is not None:
        raise UsageError(f"to= needs PyTorch's padding, not p={keras}; got {text!r}")
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
        keras,
    )


def mirror(layers: list[LayerSpec]) -> list[LayerSpec]:
    """The decoder of an encoder: each conv undone by a tconv, last first."""
    return layers + [
        spec._replace(transposed=True, text="tconv:" + spec.text.partition(":")[2])
        for spec in reversed(layers)
        if not spec.transposed
    ]


def shape_walk(
    spatial: tuple[int, ...], layers: list[LayerSpec], width: int | None = None
) -> list[str]:
    """One line per layer: its sizes, and for tconv the output_padding it needs.

    Columns are as wide as their longest entry; a line that would be wider than
    ``width`` (default: :func:`terminal_width`) puts its output_padding note on the
    next line, indented.
    """
    width = terminal_width() if width is None else width
    start = spatial
    rows: list[tuple[str, str, str, str]] = []  # label, input size, output size, note
    open_convs: list[tuple[int, tuple[int, ...]]] = []
    for number, spec in enumerate(layers, start=1):
        geometry: dict[str, Any] = {
            "stride": spec.stride,
            "padding": spec.padding,
            "dilation": spec.dilation,
        }
        label = f"{number:>2}. {spec.text}"
        if spec.keras is not None:
            out, note = _keras_step(spatial, spec)
            if not spec.transposed:
                open_convs.append((number, spatial))
            rows.append((label, _fmt(spatial), _fmt(out), note))
            spatial = out
            continue
        if not spec.transposed:
            out = conv_output_shape(spatial, spec.kernel_size, **geometry)
            open_convs.append((number, spatial))
            rows.append((label, _fmt(spatial), _fmt(out), ""))
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
            note = f"output_padding={_fmt(op)} {mark} {_fmt(target)} ({source})"
        rows.append((label, _fmt(spatial), _fmt(out), note))
        spatial = out
    label_w = max(len(r[0]) for r in rows)
    in_w = max(len(r[1]) for r in rows)
    out_w = max((len(r[2]) for r in rows if r[3]), default=0)
    body = [
        f"{label:<{label_w}}  {size_in:>{in_w}} -> {size_out}"
        for label, size_in, size_out, _ in rows
    ]
    note_at = label_w + 2 + in_w + 4 + out_w + 2  # notes in one column when they fit
    inline = all(note_at + len(r[3]) <= width for r in rows if r[3])
    lines = [f"input  {_fmt(start)}"]
    for line, (*_, note) in zip(body, rows, strict=True):
        if note and inline:
            lines.append(f"{line:<{note_at - 2}}  {note}")
        else:
            lines.append(line)
            if note:
                lines.append(" " * 6 + note)
    return lines


def _keras_step(spatial: tuple[int, ...], spec: LayerSpec) -> tuple[tuple[int, ...], str]:
    """A Keras-padded layer's output size and its PyTorch equivalent, as a note."""
    from convmat._translate import keras_conv_pads, keras_transpose_crop

    assert spec.keras is not None
    span = [d * (k - 1) + 1 for k, d in zip(spec.kernel_size, spec.dilation, strict=True)]
    if not spec.transposed:
        pads = tuple(
            keras_conv_pads(n, k, s, spec.keras)
            for n, k, s in zip(spatial, span, spec.stride, strict=True)
        )
        out = conv_output_shape(
            spatial, spec.kernel_size, stride=spec.stride, padding=pads, dilation=spec.dilation
        )
        if all(lo == hi for lo, hi in pads):
            return out, f"PyTorch: padding={_fmt(tuple(lo for lo, _ in pads))}"
        flat = ", ".join(f"{lo}, {hi}" for lo, hi in reversed(pads))
        return out, f"PyTorch: ZeroPad(({flat})), then padding=0"
    ops = spec.output_padding or (None,) * len(spatial)
    crops = [
        keras_transpose_crop(k, s, spec.keras, o)
        for k, s, o in zip(span, spec.stride, ops, strict=True)
    ]
    out = tuple(
        (n - 1) * s + k - lo - hi
        for n, s, k, (lo, hi) in zip(spatial, spec.stride, span, crops, strict=True)
    )
    limit = [max(s, d) for s, d in zip(spec.stride, spec.dilation, strict=True)]
    if all(0 <= lo - hi < m for (lo, hi), m in zip(crops, limit, strict=True)):
        p = tuple(lo for lo, _ in crops)
        op = tuple(lo - hi for lo, hi in crops)
        return out, f"PyTorch: padding={_fmt(p)}, output_padding={_fmt(op)}"
    crop = ", ".join(f"{lo}, {hi}" for lo, hi in reversed(crops))
    return out, f"PyTorch: padding=0, then crop ({crop}) — no single ConvTranspose"


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


_EXPLAIN_MAX = {"--input": 256, "--kernel": 64}
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?(/\d+)?")


def _explain_size(text: str, name: str) -> tuple[int, ...]:
    size = parse_size(text, name)
    if len(size) > 3 or min(size) < 1:
        raise UsageError(f"{name} must have 1 to 3 sizes, each >= 1, like 2x2; got {text!r}")
    if _prod(size) > _EXPLAIN_MAX[name]:
        raise UsageError(
            f"{name} must have at most {_EXPLAIN_MAX[name]} elements to be read as "
            f"formulas; got {text!r}"
        )
    return size


def _prod(size: Sequence[int]) -> int:
    total = 1
    for v in size:
        total *= v
    return total


def _explain_axes(text: str, name: str, ndim: int) -> tuple[int, ...]:
    v = parse_size(text, name)
    if len(v) not in (1, ndim):
        raise UsageError(f"{name} must have 1 or {ndim} values; got {text!r}")
    return v * ndim if len(v) == 1 else v


def parse_values(text: str, sizes: dict[str, tuple[int, ...]]) -> dict[str, list[str]]:
    """``X=0,1,2,3,K=[[0,1],[2,3]]`` → number tokens per key, counted against ``sizes``."""
    parts = re.split(r"(?:^|,)\s*([A-Za-z]+)\s*=", text.strip())
    if parts[0].strip() or len(parts) < 3:
        raise UsageError(f"--values must look like X=0,1,2,3,K=0,1,2,3; got {text!r}")
    values: dict[str, list[str]] = {}
    for key, body in zip(parts[1::2], parts[2::2], strict=True):
        if key not in sizes or key in values:
            raise UsageError(
                f"--values keys must be {' and '.join(sizes)}, each once; got {text!r}"
            )
        values[key] = number_tokens(body, sizes[key], "--values", f"--values {key}")
    return values


def number_tokens(text: str, size: tuple[int, ...], option: str, name: str) -> list[str]:
    """``0,1,2,3`` or ``[[0, 1], [2, 3]]`` → the number tokens, exactly ``∏size`` of them.

    ``option`` names the command-line option in the message about a bad token, ``name``
    the values in the message about their count.
    """
    tokens = [t for t in re.split(r"[\s,;\[\]()]+", text) if t]
    bad = [t for t in tokens if not _NUMBER.fullmatch(t)]
    if bad:
        raise UsageError(f"{option} must give numbers such as 3, -0.5 or 1/2; got {bad[0]!r}")
    if len(tokens) != _prod(size):
        raise UsageError(
            f"{name} must have {_prod(size)} numbers for size {_fmt(size)}; got {len(tokens)}"
        )
    return tokens


def _prose(line: str) -> bool:
    """Whether a line of ``explain`` is a caption (not a grid, a formula or a header)."""
    word = line.split(" ", 1)[0].rstrip(":")
    return len(word) > 1 and word.isascii() and word.isalpha()


def _explain(args: argparse.Namespace) -> int:
    spatial = _explain_size(args.input, "--input")
    kernel = _explain_size(args.kernel, "--kernel")
    ndim = len(spatial)
    if len(kernel) != ndim:
        raise UsageError(
            f"--kernel must have {ndim} sizes like --input {args.input}; got {args.kernel!r}"
        )
    geometry: dict[str, Any] = {
        "stride": _explain_axes(args.stride, "--stride", ndim),
        "dilation": _explain_axes(args.dilation, "--dilation", ndim),
    }
    if args.padding in ("same", "valid", "full"):
        if not args.conv:
            raise UsageError(
                f"--padding {args.padding} needs --conv (a transposed layer takes "
                f"the forward layer's padding as numbers, as torch does)"
            )
        geometry["padding"] = args.padding
    else:
        geometry["padding"] = _explain_axes(args.padding, "--padding", ndim)
    if args.conv:
        if args.output_padding is not None:
            raise UsageError("--output-padding applies to --transposed only")
        if args.steps:
            raise UsageError("--steps shows the scatter steps of --transposed only")
    else:
        geometry["output_padding"] = _explain_axes(
            args.output_padding or "0", "--output-padding", ndim
        )
    values = parse_values(args.values, {"X": spatial, "K": kernel}) if args.values else {}

    # SymPy is imported on this path only: symbolic computes, the renderers draw.
    from convmat._render import can_encode
    from convmat._render_explain import explain_lines
    from convmat.symbolic import _explanation

    report = _explanation(
        spatial,
        kernel,
        transposed=not args.conv,
        geometry=geometry,
        x_values=values.get("X"),
        k_values=values.get("K"),
    )
    style = "latex" if args.latex else "unicode" if can_encode(sys.stdout) else "ascii"
    width = terminal_width()
    lines = explain_lines(report, steps=args.steps, matrix=args.matrix, style=style, width=width)
    # Grids and formulas are laid out for the width already; prose captions (a line
    # whose first word is a plain word, "Matrix:", "the ...") wrap at spaces.
    lines = [part for line in lines for part in (wrap(line, width) if _prose(line) else [line])]
    print("\n".join(lines), flush=True)
    return 0 if report.ok else 1


# ---------------------------------------------------------------- convmat overlap


def _overlap_layers(args: argparse.Namespace, ndim: int) -> list[tuple[str, dict[str, Any]]]:
    """The layer of --kernel/--stride/... (if given) then the --stack layers, as stack specs."""
    texts = []
    if args.kernel is not None:
        options = {
            "k": args.kernel,
            "s": args.stride,
            "p": args.padding,
            "d": args.dilation,
            "op": args.output_padding,
        }
        defaults = {"p": "0", "d": "1", "op": "0"}
        texts.append(
            "tconv:"
            + ",".join(
                f"{key}={value}" for key, value in options.items() if defaults.get(key) != value
            )
        )
    texts += args.stack
    if not texts:
        raise UsageError("overlap needs --kernel or --stack layers, e.g. --kernel 3 --stride 2")
    return [(text, _overlap_spec(text, ndim)) for text in texts]


def _overlap_spec(text: str, ndim: int) -> dict[str, Any]:
    """``tconv:k=3,s=2``, ``conv:k=3,p=1`` or ``up:s=2[,mode=bilinear]`` as a stack layer."""
    kind, _, rest = text.partition(":")
    if kind not in ("conv", "tconv", "up"):
        raise UsageError(f"layer must start with conv:, tconv: or up:; got {text!r}")
    if kind != "up":
        spec = parse_layer(text, ndim)
        if spec.target is not None:
            raise UsageError(f"to= has no meaning for overlap; got {text!r}")
        return {
            "kind": kind,
            "kernel_size": spec.kernel_size,
            "stride": spec.stride,
            "padding": spec.padding,
            "dilation": spec.dilation,
        } | ({"output_padding": spec.output_padding or 0} if spec.transposed else {})
    options: dict[str, str] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in ("s", "mode"):
            raise UsageError(f"up layers take s= and mode= as key=value; got {item!r} in {text!r}")
        options[key] = value
    if "s" not in options:
        raise UsageError(f"up layers must give the scale as s=...; got {text!r}")
    scale = parse_size(options["s"], f"s in {text!r}")
    if len(scale) not in (1, ndim):
        raise UsageError(f"s must have 1 or {ndim} values; got {_fmt(scale)} in {text!r}")
    return {
        "kind": "upsample",
        "scale_factor": scale * ndim if len(scale) == 1 else scale,
        "mode": options.get("mode", "nearest"),
    }


_SUMMARY_THRESHOLD = 1000  # NumPy's print threshold: larger maps are summarised
_EDGE_ITEMS = 3  # NumPy's edgeitems: slices, and the least columns, kept at each end
_EDGE_ROWS = 6  # rows kept at each end: two periods of a stride up to 3 stay visible


def _kept(n: int, edge: int) -> list[int]:
    """The indices shown of an axis of length ``n``: all, or ``edge`` at each end."""
    return list(range(n)) if n <= 2 * edge else [*range(edge), *range(n - edge, n)]


def summarise_counts(counts: Any, width: int, *, full: bool = False) -> tuple[str, bool]:
    """A count map as text, summarised NumPy-style when it is large or too wide.

    A map with more than 1000 entries, or whose rows are wider than ``width``, keeps
    the first and last 6 rows (and 3 slices, for 3-d) around a ``...`` line, and, when
    too wide, as many leading and trailing columns as fit around ``...`` (at least 3
    each). ``full=True`` prints every entry. The cells are those of ``format_counts``.

    Parameters
    ----------
    counts : array_like
        A map of :func:`convmat.overlap_map` or :func:`convmat.stack_overlap`, any ndim.
    width : int
        Columns available.
    full : bool
        Print every entry, however large.

    Returns
    -------
    text : str
    summarised : bool
        Whether entries were left out.
    """
    import numpy as np

    from convmat._checkerboard import format_counts

    arr = np.asarray(counts)
    text = format_counts(arr)
    if full or arr.ndim == 0:
        return text, False
    too_wide = max(map(len, text.splitlines())) > width
    if arr.size <= _SUMMARY_THRESHOLD and not too_wide:
        return text, False
    n = arr.shape[-1]
    row = next(line for line in text.splitlines() if line and not line.startswith("["))
    fit = (width - len("... ")) // (2 * ((len(row) + 1) // n))  # cells that fit each side
    columns = _kept(n, max(fit, _EDGE_ITEMS)) if too_wide else list(range(n))
    outer = [_kept(m, _EDGE_ITEMS) for m in arr.shape[:-2]]
    outer += [_kept(arr.shape[-2], _EDGE_ROWS)] if arr.ndim > 1 else []
    shown = arr[np.ix_(*outer, columns)]
    text = format_counts(shown)
    # format_counts gives rows of equal cells joined by one space; 3-d and up, blocks of
    # a label line and rows, one block per 2-d slice.
    blocks = (
        [text.splitlines()] if arr.ndim <= 2 else [b.splitlines()[1:] for b in text.split("\n\n")]
    )
    cell = (len(blocks[0][0]) + 1) // len(columns)
    half = len(columns) // 2 if len(columns) < n else None

    def cut(line: str) -> str:
        return line if half is None else f"{line[: half * cell]}... {line[half * cell :]}"

    rows = outer[-1] if arr.ndim >= 2 else [0]
    out: list[str] = []
    previous = -1
    for index, block in zip(np.ndindex(*shown.shape[:-2]), blocks, strict=True):
        if arr.ndim > 2:
            true = tuple(outer[axis][i] for axis, i in enumerate(index))
            flat = int(np.ravel_multi_index(true, arr.shape[:-2]))
            out += [""] if out else []
            out += ["...", ""] if flat - previous > 1 and out else []
            out.append(f"[{', '.join(map(str, true))}, :, :]")
            previous = flat
        for i, line in enumerate(block):
            if i and rows[i] - rows[i - 1] > 1:
                out.append("...")
            out.append(cut(line))
    return "\n".join(out), True


def _overlap(args: argparse.Namespace) -> int:
    from convmat._checkerboard import checkerboard, stack_overlap

    width = terminal_width()
    spatial = parse_size(args.input, "--input")
    layers = _overlap_layers(args, len(spatial))
    counts = stack_overlap(spatial, [spec for _, spec in layers])
    path = " -> ".join(text for text, _ in layers)
    lines = wrap(
        f"taps per output position of {path} on {_fmt(spatial)} -> {_fmt(counts.shape)}", width
    )
    text, summarised = summarise_counts(counts, width, full=args.full)
    lines.append(text)
    if summarised:
        lines.append(f"({_fmt(counts.shape)} summarised; --full prints every entry)")
    for text, spec in layers:
        if spec["kind"] == "tconv":
            summary = checkerboard(spec["kernel_size"], spec["stride"], dilation=spec["dilation"])
            lines += wrap(f"{text}: {summary}", width)
    print("\n".join(lines))
    return 0


# ---------------------------------------------------------------- convmat demo


# The files `superres_demo(out)` writes into its directory (convmat/_demo.py, _save).
SUPERRES_FILES = ("superres_images.png", "superres_errors.png")


def check_out_dir(out: str, files: Sequence[str], *, force: bool = False) -> None:
    """Refuse, before any work, an output directory the files could not be written to.

    Nothing is created: the command that writes creates the directory itself.

    Parameters
    ----------
    out : str
        The ``--out`` directory (need not exist yet).
    files : sequence of str
        The names the command will write into it.
    force : bool
        Allow overwriting those of ``files`` that exist (``--force``).

    Raises
    ------
    UsageError
        If ``out`` (or a parent of it) is an existing non-directory, if the nearest
        existing directory on its path is not writable (tried by writing a temporary
        file there), or, without ``force``, if one of ``files`` already exists in
        ``out`` (never overwritten silently).
    """
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out must be a directory; got {out!r}, which is an existing file")
    existing = [name for name in files if (path / name).exists() or (path / name).is_symlink()]
    if existing and not force:
        raise UsageError(
            f"--out {out!r} already holds {', '.join(existing)}; "
            f"pass --force to overwrite, or another --out"
        )
    _check_writable(path, out, "directory")


def _check_writable(path: Path, out: str, kind: str) -> None:
    """Refuse ``--out`` when the nearest existing directory on ``path`` cannot be written."""
    parent = path.absolute()
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"--out must be a {kind} path; got {out!r}, but {parent} is a file")
    try:  # the one sure test of writability: write (a temporary file, removed at once)
        tempfile.TemporaryFile(dir=parent).close()
    except OSError as err:
        raise UsageError(
            f"--out must be a writable {kind}; got {out!r} ({parent}: {err.strerror})"
        ) from None


def check_out_file(out: str, suffixes: Sequence[str], *, force: bool = False) -> str:
    """Refuse, before any work, an output file that could not or should not be written.

    Parameters
    ----------
    out : str
        The ``--out`` file name (its directory need not exist yet).
    suffixes : sequence of str
        The extensions the command writes, such as ``".gif"``, lower case.
    force : bool
        Allow overwriting an existing file (``--force``).

    Returns
    -------
    str
        The suffix of ``out``, lower case.

    Raises
    ------
    UsageError
        For an extension not among ``suffixes``, an existing directory, an existing file
        without ``force`` (never overwritten silently), or a path whose nearest existing
        directory is not writable.
    """
    path = Path(out)
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        raise UsageError(
            f"--out must end in {', '.join(suffixes[:-1])} or {suffixes[-1]}; got {out!r}"
        )
    if path.is_dir():
        raise UsageError(f"--out must be a file name; got {out!r}, which is a directory")
    if (path.exists() or path.is_symlink()) and not force:
        raise UsageError(
            f"--out {out!r} already exists; pass --force to overwrite, or another --out"
        )
    _check_writable(path.parent, out, "file")
    return suffix


def _demo(args: argparse.Namespace) -> int:
    import numpy as np

    check_out_dir(args.out, SUPERRES_FILES, force=args.force)
    from convmat._demo import superres_demo

    try:
        result = superres_demo(args.out)
    except ModuleNotFoundError as err:
        _error("demo", err)
        return 1
    h, w = result.original.shape
    print(
        f"Super-resolution x2 of matplotlib's grace_hopper.jpg: {h}x{w} grayscale, "
        f"2x2 average -> {h // 2}x{w // 2}, upsampled back"
    )
    print(result.table())
    print(f"best PSNR: {result.best}")
    for label, fit in result.fits.items():
        print(f"{label}: relative residual {fit.relative_residual:.4f}, kernel")
        print(np.array2string(fit.weight[0, 0], precision=3, suppress_small=True))
    print("wrote " + ", ".join(result.files))
    return 0


# ---------------------------------------------------------------- convmat animate


#: What ``convmat animate`` writes, by the extension of ``--out``.
ANIMATE_SUFFIXES = (".gif", ".png", ".mp4")
#: The most frames one command draws: matplotlib draws each (a fraction of a second apiece).
ANIMATE_MAX_FRAMES = 400
#: White pixels between the frames of a PNG strip.
STRIP_GAP = 8


def _animate_layer(text: str, ndim: int) -> dict[str, Any]:
    """A ``conv:`` / ``tconv:`` layer of :func:`parse_layer` as ``frames`` keywords."""
    spec = parse_layer(text, ndim)
    if spec.target is not None:
        raise UsageError(f"to= has no meaning for animate; got {text!r}")
    if spec.keras is not None:
        raise UsageError(
            f"animate takes PyTorch's padding as numbers (convmat shape translates "
            f"p={spec.keras}); got {text!r}"
        )
    return {
        "kernel_size": spec.kernel_size,
        "stride": spec.stride,
        "padding": spec.padding,
        "dilation": spec.dilation,
        "transposed": spec.transposed,
        "output_padding": spec.output_padding or 0,
    }


def _float(token: str) -> float:
    """A token of :func:`number_tokens` (``3``, ``-0.5``, ``1e-3``, ``1/2``) as a float."""
    number, _, denominator = token.partition("/")
    if denominator and int(denominator) == 0:
        raise UsageError(f"numbers must not divide by zero; got {token!r}")
    return float(number) / (int(denominator) if denominator else 1)


def _numbers(text: str | None, size: tuple[int, ...], option: str) -> Any:
    """``--values`` / ``--kernel``: ``∏size`` numbers in C order, as an array of ``size``."""
    if text is None:
        return None
    import numpy as np

    tokens = number_tokens(text, size, option, option)
    return np.array([_float(t) for t in tokens]).reshape(size)


def _positive(text: str, option: str, unit: str, most: float = float("inf")) -> float:
    """``--interval`` / ``--dpi``: a number above 0 (and at most ``most``)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= most or value == float("inf"):
        bound = "" if most == float("inf") else f" and <= {most:g}"
        raise UsageError(f"{option} must be a number of {unit} > 0{bound}; got {text!r}")
    return value


def strip_grid(count: int, columns: int | None = None) -> tuple[int, int]:
    """``(columns, rows)`` of a PNG strip of ``count`` frames.

    ``⌈√count⌉`` columns unless ``columns`` is given (at most ``count`` of them), and as
    many rows as needed.

    >>> strip_grid(4), strip_grid(9), strip_grid(10), strip_grid(5, columns=8)
    ((2, 2), (3, 3), (4, 3), (5, 1))
    """
    if columns is None:
        columns = math.isqrt(count - 1) + 1 if count > 0 else 1
    cols = max(1, min(columns, count))
    return cols, -(-count // cols)


def _image_writer(suffix: str, interval: float, columns: int | None) -> Any:
    """A matplotlib movie writer keeping every frame as an image, then writing them as one
    GIF (``interval`` ms per frame, looping) or one PNG grid (``columns`` across)."""
    from io import BytesIO

    from matplotlib.animation import AbstractMovieWriter
    from PIL import Image

    class ImageWriter(AbstractMovieWriter):
        def setup(self, fig: Any, outfile: Any, dpi: float | None = None) -> None:
            super().setup(fig, outfile, dpi=dpi)
            self.images: list[Any] = []

        def grab_frame(self, **savefig_kwargs: Any) -> None:
            buf = BytesIO()
            self.fig.savefig(buf, **{**savefig_kwargs, "format": "rgba", "dpi": self.dpi})
            image = Image.frombuffer("RGBA", self.frame_size, buf.getvalue(), "raw", "RGBA", 0, 1)
            self.images.append(image.convert("RGB"))

        def finish(self) -> None:
            first, *rest = self.images
            if suffix == ".gif":
                first.save(
                    self.outfile,
                    format="GIF",
                    save_all=True,
                    append_images=rest,
                    duration=round(interval),
                    loop=0,
                )
                return
            cols, rows = strip_grid(len(self.images), columns)
            w, h = first.size
            size = (cols * w + (cols - 1) * STRIP_GAP, rows * h + (rows - 1) * STRIP_GAP)
            sheet = Image.new("RGB", size, "white")
            for n, image in enumerate(self.images):
                row, col = divmod(n, cols)
                sheet.paste(image, (col * (w + STRIP_GAP), row * (h + STRIP_GAP)))
            sheet.save(self.outfile, format="PNG")

    return ImageWriter(fps=max(1, round(1000 / interval)))


def _animate(args: argparse.Namespace) -> int:
    from convmat._frames import VIEWS, frames  # NumPy only; matplotlib comes later

    spatial = parse_size(args.input, "--input")
    if len(spatial) > 2 or min(spatial) < 1:
        raise UsageError(f"--input must have 1 or 2 sizes, each >= 1, like 5x5; got {args.input!r}")
    geometry = _animate_layer(args.layer, len(spatial))
    if args.view is not None and args.view not in VIEWS:
        raise UsageError(f"--view must be one of {', '.join(VIEWS)}; got {args.view!r}")
    values = _numbers(args.values, spatial, "--values")
    kernel = _numbers(args.kernel, geometry["kernel_size"], "--kernel")
    interval = _positive(args.interval, "--interval", "milliseconds")
    dpi = None if args.dpi is None else _positive(args.dpi, "--dpi", "dots per inch", 600)
    columns = None
    if args.columns is not None:
        if not args.columns.isdigit() or int(args.columns) < 1:
            raise UsageError(f"--columns must be a whole number >= 1; got {args.columns!r}")
        columns = int(args.columns)
    suffix = check_out_file(args.out, ANIMATE_SUFFIXES, force=args.force)
    if columns is not None and suffix != ".png":
        raise UsageError(f"--columns lays out a .png strip; got --out {args.out!r}")
    count = len(frames(spatial, view=args.view, **geometry))
    if count > ANIMATE_MAX_FRAMES:
        raise UsageError(
            f"--input {args.input} with {args.layer} must give at most {ANIMATE_MAX_FRAMES} "
            f"frames to be drawn; got {count}"
        )
    try:
        from convmat._optional import require_matplotlib

        require_matplotlib("convmat animate")
    except ModuleNotFoundError as err:
        _error("animate", err)
        return 1
    from matplotlib.animation import FFMpegWriter, writers

    if suffix == ".mp4" and not writers.is_available("ffmpeg"):
        _error(
            "animate", OSError(f"writing {args.out!r} needs ffmpeg; install it, or write a .gif")
        )
        return 1

    from convmat._animate import animate

    anim = animate(
        spatial,
        view=args.view,
        values=values,
        symbols=args.symbols,
        kernel=kernel,
        interval=interval,
        **geometry,
    )
    if suffix == ".mp4":
        # ffmpeg takes a fractional frame rate; matplotlib's stubs say int.
        writer: Any = FFMpegWriter(fps=1000 / interval)  # type: ignore[arg-type]
    else:
        writer = _image_writer(suffix, interval, columns)
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written beside it, then renamed: a failure never leaves half a file as --out.
    partial = path.with_name(f".{path.stem}.partial{suffix}")
    try:
        anim.save(str(partial), writer=writer, dpi=dpi)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    w, h = writer.frame_size
    if suffix == ".png":
        cols, rows = strip_grid(count, columns)
        print(f"wrote {args.out}: {count} frames of {w}x{h} pixels, {cols} across, {rows} down")
    else:
        print(f"wrote {args.out}: {count} frames of {w}x{h} pixels, {interval:g} ms each")
    return 0


# ---------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    from convmat import __version__

    parser = _Parser(
        prog="convmat",
        description="Convolution and transposed convolution made visible.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"convmat {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    explain = verbs.add_parser(
        "explain",
        help="a layer's formulas, scatter steps and matrix",
        description=(
            "Print one single-channel layer symbolically: the input X and kernel K as symbol "
            "grids, the scatter steps (transposed), the output formulas, the matrix C and Cᵀ, "
            "and a numeric check of the formulas against convmat's sparse matrix. With no "
            "options: the classic 2x2 input, 2x2 kernel, stride 1 transposed convolution."
        ),
        epilog=(
            "examples:\n"
            "  convmat explain\n"
            "  convmat explain --input 3x3 --kernel 2x2 --stride 2 --padding 1\n"
            "  convmat explain --conv --input 4x4 --kernel 3x3 --padding same"
        ),
        formatter_class=_HelpFormatter,
    )
    explain.add_argument("--input", default="2x2", help="input size, 1 to 3 dims (default 2x2)")
    explain.add_argument("--kernel", default="2x2", help="kernel size (default 2x2)")
    explain.add_argument("--stride", default="1", help="int or one per axis, e.g. 2 or 2x1")
    explain.add_argument(
        "--padding", default="0", help="int or one per axis; --conv also takes same, valid or full"
    )
    explain.add_argument("--dilation", default="1", help="int or one per axis")
    explain.add_argument("--output-padding", default=None, help="int or one per axis (transposed)")
    kind = explain.add_mutually_exclusive_group()
    kind.add_argument(
        "--transposed",
        dest="conv",
        action="store_false",
        help="a transposed convolution (the default)",
    )
    kind.add_argument("--conv", dest="conv", action="store_true", help="a convolution")
    explain.add_argument(
        "--steps",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show the scatter steps (default: when the input has <= 16 elements)",
    )
    explain.add_argument(
        "--matrix",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show C and Cᵀ (default: when C is at most 16x25)",
    )
    explain.add_argument("--latex", action="store_true", help="print LaTeX for papers and slides")
    explain.add_argument(
        "--values",
        metavar="X=...,K=...",
        help="numbers for the check, C order, e.g. X=0,1,2,3,K=1,0,0,1 (default 0, 1, 2, ...)",
    )
    explain.set_defaults(run=_explain, conv=False)

    shape = verbs.add_parser(
        "shape",
        help="sizes through a stack of layers, and the output_padding that restores them",
        description=(
            "Walk an input size through conv / tconv layers. Each tconv is paired with the "
            "latest unpaired conv and gets the output_padding that restores that conv's input "
            "size (or the size given by to=)."
        ),
        epilog=(
            "example:\n  convmat shape --input 28x28 --mirror conv:k=3,s=2,p=1 conv:k=3,s=2,p=1"
        ),
        formatter_class=_HelpFormatter,
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
            "compound; a stride-1 conv after it smooths; an up: resize then a conv is even)."
        ),
        epilog=(
            "examples (a transposed conv; the resize-convolution alternative; a large map):\n"
            "  convmat overlap --kernel 3 --stride 2 --input 6x6\n"
            "  convmat overlap --input 6x6 --stack up:s=2 conv:k=3,p=1\n"
            "  convmat overlap --kernel 3 --stride 2 --input 32x32 --full | less -S"
        ),
        formatter_class=_HelpFormatter,
    )
    overlap.add_argument("--kernel", help="kernel size of the transposed layer, e.g. 3 or 3x4")
    overlap.add_argument("--stride", default="1", help="int or one per axis (default 1)")
    overlap.add_argument("--padding", default="0", help="int or one per axis (default 0)")
    overlap.add_argument("--dilation", default="1", help="int or one per axis (default 1)")
    overlap.add_argument("--output-padding", default="0", help="int or one per axis (default 0)")
    overlap.add_argument("--input", default="4x4", help="input spatial size (default 4x4)")
    overlap.add_argument(
        "--stack",
        nargs="+",
        default=[],
        metavar="LAYER",
        help="further layers: tconv:k=3,s=2,p=1[,d=1,op=0], conv:k=3,p=1 or up:s=2[,mode=bilinear]",
    )
    overlap.add_argument(
        "--full",
        action="store_true",
        help="print every entry (by default a map of more than 1000 entries, or wider than "
        "the terminal, shows its first and last rows and columns around ...)",
    )
    overlap.set_defaults(run=_overlap)

    animate = verbs.add_parser(
        "animate",
        help="a layer's sliding window or scatter, as a GIF, MP4 or PNG strip",
        description=(
            "Draw every step of one layer, as in the guide to convolution arithmetic: a "
            "convolution's window sliding over the padded input, a transposed convolution's "
            "input elements scattering the kernel into the output, the same as zero insertion "
            "plus a convolution, or the step beside its row of C (column of Cᵀ). --out FILE.gif "
            "writes an animation, FILE.mp4 a video (needs ffmpeg), FILE.png all frames in one "
            "grid for print. Needs matplotlib.\n\n"
            "examples (each writes its --out file):\n"
            "  convmat animate conv:k=3,s=2,p=1 --input 5x5 --out conv.gif\n"
            "  convmat animate tconv:k=2 --input 2x2 --view scatter --symbols --out steps.gif\n"
            "  convmat animate tconv:k=3,s=2 --input 3x3 --view zeros --out zeros.png\n"
            "  convmat animate conv:k=2 --input 3 --values 1,2,4 --kernel 1,-1 --out diff.gif"
        ),
        formatter_class=_HelpFormatter,
    )
    animate.add_argument(
        "layer", metavar="LAYER", help="conv:k=3,s=2,p=1,d=1 or tconv:k=4,s=2,p=1[,op=1]"
    )
    animate.add_argument(
        "--input", required=True, metavar="HxW", help="input size, 1 or 2 dims, e.g. 5x5 or 7"
    )
    animate.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="FILE.gif, FILE.mp4 (ffmpeg) or FILE.png (every frame in one grid); "
        "checked before any work",
    )
    animate.add_argument(
        "--view",
        metavar="VIEW",
        help="window (conv; the default), scatter (tconv; the default), zeros (tconv as zero "
        "insertion and a stride-1 conv) or matrix (beside C or Cᵀ)",
    )
    animate.add_argument(
        "--values",
        metavar="NUMBERS",
        help="the input's numbers in C order, e.g. 0,1,2,3 or [[0,1],[2,3]]; the outputs show "
        "their sums",
    )
    animate.add_argument(
        "--kernel", metavar="NUMBERS", help="the kernel's numbers in C order (default all ones)"
    )
    animate.add_argument(
        "--symbols",
        action="store_true",
        help="write symbols x₀₀ … and w₀₀ … where no numbers are given",
    )
    animate.add_argument(
        "--interval", default="500", metavar="MS", help="milliseconds per frame (default 500)"
    )
    animate.add_argument(
        "--dpi",
        metavar="N",
        help="dots per inch of the frames (default 72; 150 or 300 for print)",
    )
    animate.add_argument(
        "--columns",
        metavar="N",
        help="frames per row of a .png strip (default: a square grid)",
    )
    animate.add_argument(
        "--force", action="store_true", help="overwrite --out if it exists (default: refuse)"
    )
    animate.set_defaults(run=_animate)

    demo = verbs.add_parser(
        "demo",
        help="worked demonstrations on real data",
        description="Worked demonstrations on real data.",
        formatter_class=_HelpFormatter,
    )
    demos = demo.add_subparsers(dest="demo", metavar="DEMO", required=True)
    superres = demos.add_parser(
        "superres",
        help="x2 super-resolution of a photograph: fixed upsamplers vs fitted transposed convs",
        description=(
            "Downscale matplotlib's sample photograph x2 (2x2 average), upsample it back with "
            "nearest, bilinear, bicubic, bed of nails and transposed convolutions whose kernels "
            "are fitted by least squares (k=4, 3 and 8, stride 2); print PSNR, the periodic "
            "(checkerboard) error energy and the fitted kernels; save the images as PNG. "
            "Needs matplotlib."
        ),
        formatter_class=_HelpFormatter,
    )
    superres.add_argument(
        "--out",
        default="superres",
        metavar="DIR",
        help="directory for the PNG files (default ./superres); checked before any work",
    )
    superres.add_argument(
        "--force",
        action="store_true",
        help="overwrite the PNG files if --out already holds them (default: refuse)",
    )
    superres.set_defaults(run=_demo)
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
        sys.stdout.flush()
    except (UsageError, ValueError, TypeError) as err:
        _error(args.verb, err)
        return 2
    except BrokenPipeError:  # `convmat ... | head`: the reader has left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as err:  # a file that could not be written after all
        _error(args.verb, err)
        return 1
    return status


def _error(verb: str, err: Exception) -> None:
    """The one line of a refusal, on stderr, in what stderr can encode."""
    print(printable(f"convmat {verb}: error: {err}", sys.stderr), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
