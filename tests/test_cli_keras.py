"""`convmat shape` with Keras-style p=same / p=valid: Keras' sizes and the PyTorch equivalent."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from convmat.cli import main


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


def shape(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    assert main(["shape", *args]) == 0
    return capsys.readouterr().out.splitlines()


def test_keras_same_transposed_layers_and_their_pytorch_form(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = shape(
        capsys,
        "--input",
        "4x4",
        "tconv:k=3,s=2,p=same",
        "tconv:k=4,s=2,p=same",
        "conv:k=3,s=2,p=same",
        "tconv:k=3,s=2,p=valid,op=1",
    )
    assert "4x4 -> 8x8" in lines[1]
    assert "PyTorch: padding=0, then crop (0, 1, 0, 1) — no single ConvTranspose" in lines[1]
    squeezed = [" ".join(line.split()) for line in lines]
    assert "8x8 -> 16x16 PyTorch: padding=1x1, output_padding=0x0" in squeezed[2]
    assert "16x16 -> 8x8 PyTorch: ZeroPad((0, 1, 0, 1)), then padding=0" in squeezed[3]
    assert "8x8 -> 18x18 PyTorch: padding=0x0, output_padding=1x1" in squeezed[4]


def test_keras_padding_refuses_a_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shape", "--input", "4", "tconv:k=3,s=2,p=same,to=8"]) == 2
    assert "to= needs PyTorch's padding, not p=same" in capsys.readouterr().err


def test_sizes_and_equivalents_agree_with_keras_and_torch(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every printed size is Keras' own, and every printed PyTorch form gives it."""
    keras = pytest.importorskip("keras")
    torch = pytest.importorskip("torch")
    for transposed, pad, k, s, n in itertools.product(
        (False, True), ("same", "valid"), (1, 2, 3, 4, 5), (1, 2, 3), (4, 5)
    ):
        ops: list[Any] = [None, *range(s)] if transposed else [None]
        for op in ops:
            text = f"{'tconv' if transposed else 'conv'}:k={k},s={s},p={pad}"
            text += "" if op is None else f",op={op}"
            if not transposed and pad == "valid" and k > n:
                continue
            line = shape(capsys, "--input", str(n), text)[1]
            out = int(re.search(r"-> (\d+)", line).group(1))  # type: ignore[union-attr]
            cls = keras.layers.Conv1DTranspose if transposed else keras.layers.Conv1D
            kw = {"output_padding": op} if transposed else {}
            layer = cls(1, k, strides=s, padding=pad, **kw)
            assert layer.compute_output_shape((1, n, 1))[1] == out, text
            form = re.search(r"padding=(\d+), output_padding=(\d+)", line)
            if transposed and form:
                t = torch.nn.ConvTranspose1d(
                    1, 1, k, stride=s, padding=int(form[1]), output_padding=int(form[2])
                )
                assert t(torch.zeros(1, 1, n)).shape[-1] == out, text
            plain = re.search(r"PyTorch: padding=(\d+)$", line)
            if not transposed and plain:
                c = torch.nn.Conv1d(1, 1, k, stride=s, padding=int(plain[1]))
                assert c(torch.zeros(1, 1, n)).shape[-1] == out, text
