"""Shape arithmetic: Dumoulin & Visin's relationships 1–15, PyTorch's formulas, the round trip."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convmat import (
    conv_output_shape,
    conv_transpose_output_padding,
    conv_transpose_output_shape,
)

SIZES = range(1, 9)
KERNELS = range(1, 6)
STRIDES = range(1, 4)
PADS = range(0, 4)


def _cases(condition):  # type: ignore[no-untyped-def]
    return [
        (i, k, s, p)
        for i, k, s, p in itertools.product(SIZES, KERNELS, STRIDES, PADS)
        if i + 2 * p >= k and condition(i, k, s, p)
    ]


# Relationships 1–7 and 15 of "A guide to convolution arithmetic for deep learning":
# (number, condition on (i, k, s, p), the paper's output size o).
DIRECT = [
    (1, lambda i, k, s, p: s == 1 and p == 0, lambda i, k, s, p: (i - k) + 1),
    (2, lambda i, k, s, p: s == 1, lambda i, k, s, p: (i - k) + 2 * p + 1),
    (3, lambda i, k, s, p: s == 1 and k % 2 == 1 and p == k // 2, lambda i, k, s, p: i),
    (4, lambda i, k, s, p: s == 1 and p == k - 1, lambda i, k, s, p: i + (k - 1)),
    (5, lambda i, k, s, p: p == 0, lambda i, k, s, p: (i - k) // s + 1),
    (6, lambda i, k, s, p: True, lambda i, k, s, p: (i + 2 * p - k) // s + 1),
    (7, lambda i, k, s, p: p == 0, lambda i, k, s, p: (i - k) // s + 1),  # pooling
]


@pytest.mark.parametrize(
    ("number", "condition", "formula"), DIRECT, ids=[f"rel{r[0]}" for r in DIRECT]
)
def test_direct_relationships(number, condition, formula):  # type: ignore[no-untyped-def]
    cases = _cases(condition)
    assert cases
    for i, k, s, p in cases:
        assert conv_output_shape(i, k, stride=s, padding=p) == (formula(i, k, s, p),), (
            number,
            i,
            k,
            s,
            p,
        )


def test_relationship_3_half_padding_is_same() -> None:
    for i, k in itertools.product(SIZES, (1, 3, 5)):
        if i >= 1:
            assert conv_output_shape(i, k, padding="same") == (i,)
            assert conv_output_shape(i, k, padding=k // 2) == (i,)


def test_relationship_4_full_padding_string() -> None:
    for i, k in itertools.product(SIZES, KERNELS):
        assert conv_output_shape(i, k, padding="full") == (i + k - 1,)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_relationship_15_dilation(d: int) -> None:
    for i, k, s, p in _cases(lambda i, k, s, p: True):
        if i + 2 * p - k - (k - 1) * (d - 1) < 0:
            continue
        expected = (i + 2 * p - k - (k - 1) * (d - 1)) // s + 1
        assert conv_output_shape(i, k, stride=s, padding=p, dilation=d) == (expected,)


# Relationships 8–14: the transposed layer of a conv (i, k, s, p) maps its output o back to i,
# and equals a stride-1 conv (k' = k, p' = k − p − 1) of the zero-inserted input plus a zeros.
TRANSPOSED = [
    (8, lambda i, k, s, p: s == 1 and p == 0),
    (9, lambda i, k, s, p: s == 1),
    (10, lambda i, k, s, p: s == 1 and k % 2 == 1 and p == k // 2),
    (11, lambda i, k, s, p: s == 1 and p == k - 1),
    (12, lambda i, k, s, p: p == 0 and (i - k) % s == 0),
    (13, lambda i, k, s, p: (i + 2 * p - k) % s == 0),
    (14, lambda i, k, s, p: True),
]


@pytest.mark.parametrize(
    ("number", "condition"), TRANSPOSED, ids=[f"rel{r[0]}" for r in TRANSPOSED]
)
def test_transposed_relationships(number, condition):  # type: ignore[no-untyped-def]
    cases = _cases(condition)
    assert cases
    for i, k, s, p in cases:
        (o,) = conv_output_shape(i, k, stride=s, padding=p)
        a = (i + 2 * p - k) % s  # zeros added to the bottom/right edge (relationship 14)
        if number < 14:
            assert a == 0
        if p > k - 1:
            continue  # the paper's p' = k - p - 1 is negative: a crop, not in its figures
        # o' = s(i' − 1) + a + k − 2p with i' = o is the original input size i.
        assert s * (o - 1) + a + k - 2 * p == i
        assert conv_transpose_output_shape(o, k, stride=s, padding=p, output_padding=a) == (i,)
        # ... and equals a stride-1 conv of the stretched input, padded by k - p - 1 (+ a high).
        stretched = (o - 1) * s + 1
        direct = conv_output_shape(stretched, k, padding=((k - p - 1, k - p - 1 + a),))
        assert direct == (i,)
        if a < max(s, 1):
            assert conv_transpose_output_padding(o, i, k, stride=s, padding=p) == (a,)


def test_paper_examples() -> None:
    # Figure of relationship 13 (i=5, k=3, s=2, p=1) and 14 (i=6): both give o=3; a=1 restores 6.
    assert conv_output_shape(5, 3, stride=2, padding=1) == (3,)
    assert conv_output_shape(6, 3, stride=2, padding=1) == (3,)
    assert conv_transpose_output_shape(3, 3, stride=2, padding=1) == (5,)
    assert conv_transpose_output_shape(3, 3, stride=2, padding=1, output_padding=1) == (6,)
    # Section 4.1: i=4, k=3 → 2; its transpose maps 2 back to 4.
    assert conv_output_shape((4, 4), 3) == (2, 2)
    assert conv_transpose_output_shape((2, 2), 3) == (4, 4)
    # d2l: Conv2d(k=5, p=2, s=3) then ConvTranspose2d(k=5, p=2, s=3) returns 16x16.
    assert conv_output_shape((16, 16), 5, stride=3, padding=2) == (6, 6)
    assert conv_transpose_output_shape((6, 6), 5, stride=3, padding=2) == (16, 16)


def test_dilation_allows_output_padding_beyond_stride() -> None:
    assert conv_transpose_output_shape(4, 3, dilation=3, output_padding=2) == (4 + 6 + 2,)
    with pytest.raises(ValueError, match=r"output_padding must be < max\(stride, dilation\)"):
        conv_transpose_output_shape(4, 3, stride=2, output_padding=2)


def test_per_axis_and_pairs() -> None:
    assert conv_output_shape(
        (7, 8, 9), (3, 2, 1), stride=(1, 2, 3), padding=((0, 1), 2, (3, 0))
    ) == (
        6,
        6,
        4,
    )
    assert conv_output_shape((5, 6), 3, padding=(1, 0), dilation=(1, 2)) == (5, 2)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 12),
    st.integers(1, 5),
    st.integers(1, 4),
    st.integers(0, 4),
    st.integers(1, 3),
)
def test_round_trip_property(i: int, k: int, s: int, p: int, d: int) -> None:
    """Every size a conv maps to o is reachable back through output_padding."""
    if i + 2 * p < d * (k - 1) + 1:
        return
    (o,) = conv_output_shape(i, k, stride=s, padding=p, dilation=d)
    low = (o - 1) * s - 2 * p + d * (k - 1) + 1  # output_padding = 0, may be < 1
    op = conv_transpose_output_padding(o, i, k, stride=s, padding=p, dilation=d)
    assert op == (i - low,)
    assert conv_transpose_output_shape(
        o, k, stride=s, padding=p, dilation=d, output_padding=op
    ) == (i,)


def test_matches_torch_output_padding_rule() -> None:
    torch = pytest.importorskip("torch")
    for i, k, s, p in _cases(lambda i, k, s, p: s > 1):
        (o,) = conv_output_shape(i, k, stride=s, padding=p)
        layer = torch.nn.ConvTranspose1d(1, 1, k, stride=s, padding=p)
        try:
            y = layer(torch.zeros(1, 1, o), output_size=[i])
        except ValueError:
            with pytest.raises(ValueError, match="target must be reachable"):
                conv_transpose_output_padding(o, i, k, stride=s, padding=p)
            continue
        assert y.shape[-1] == i
        (op,) = conv_transpose_output_padding(o, i, k, stride=s, padding=p)
        assert conv_transpose_output_shape(o, k, stride=s, padding=p, output_padding=op) == (i,)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"stride": 0}, ValueError, r"stride must be >= 1 on every axis; got \(0, 0\)"),
        ({"stride": (1, 0)}, ValueError, r"stride must be >= 1 on every axis; got \(1, 0\)"),
        ({"stride": 1.5}, TypeError, r"stride must be an int or a sequence of ints; got 1.5"),
        ({"stride": True}, TypeError, r"stride must be an int or a sequence of ints; got True"),
        ({"stride": (1, 2, 3)}, ValueError, r"stride must be an int or a sequence of 2 ints"),
        ({"dilation": -1}, ValueError, r"dilation must be >= 1"),
        ({"padding": -1}, ValueError, r"padding must be >= 0 on every side; got -1"),
        ({"padding": ((0, -1), 0)}, ValueError, r"padding must be >= 0 on every side"),
        ({"padding": (1, 2, 3)}, ValueError, r"padding must be an int, one int per spatial dim"),
        ({"padding": ((1, 2, 3), 0)}, ValueError, r"padding pairs must be \(low, high\)"),
        ({"padding": "half"}, ValueError, r"padding must be an int, a sequence or one of"),
        ({"padding": "same", "stride": 2}, ValueError, r"padding='same' must have stride 1"),
        ({"padding": 1.0}, TypeError, r"padding must be an int"),
    ],
)
def test_conv_output_shape_errors(kwargs, error, match):  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=match):
        conv_output_shape((5, 5), 3, **kwargs)


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"spatial must be >= 1 on every axis \(empty input\)"):
        conv_output_shape((0, 5), 3)
    with pytest.raises(ValueError, match="kernel_size must be >= 1"):
        conv_output_shape((5, 5), 0)
    with pytest.raises(ValueError, match=r"kernel_size \(dilated\) must fit in the padded input"):
        conv_output_shape((3, 3), 5)
    with pytest.raises(ValueError, match=r"kernel_size \(dilated\) must fit"):
        conv_output_shape((5,), 3, dilation=3)
    with pytest.raises(TypeError, match="spatial must be a sequence of ints"):
        conv_output_shape("55", 3)
    with pytest.raises(TypeError, match="padding must be an int, one int per dim or"):
        conv_transpose_output_shape((5,), 3, padding="same")
    with pytest.raises(ValueError, match="padding must leave a non-empty output"):
        conv_transpose_output_shape((1,), 1, padding=1)
    with pytest.raises(ValueError, match="output_padding must be >= 0"):
        conv_transpose_output_shape((3,), 3, output_padding=-1)
    with pytest.raises(
        ValueError, match=r"target must be reachable.*valid sizes range over 5\.\.6"
    ):
        conv_transpose_output_padding((3,), (8,), 3, stride=2, padding=1)
    with pytest.raises(ValueError, match="target must have 1 entries"):
        conv_transpose_output_padding((3,), (5, 5), 3)
