"""Argument normalisation: ints, per-dim tuples and padding forms checked in one place.

Every public function turns its hyperparameters into tuples through these helpers,
so a bad argument gets the same message everywhere, raised before any work.
Messages follow one template: ``"<name> must <expectation>; got <actual>"``.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
PADDING_STRINGS = ("valid", "same", "full")


def as_int(value: Any, name: str) -> int:
    """``operator.index`` that refuses bools and names the argument."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int or a sequence of ints; got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int or a sequence of ints; got {value!r}") from None


def ntuple(value: Any, ndim: int, name: str, *, minimum: int | None = None) -> tuple[int, ...]:
    """An int or one int per spatial dim, as a tuple of ``ndim`` ints.

    >>> ntuple(2, 3, "stride")
    (2, 2, 2)
    >>> ntuple((1, 0), 2, "stride", minimum=1)
    Traceback (most recent call last):
    ...
    ValueError: stride must be >= 1 on every axis; got (1, 0)
    """
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an int or a sequence of ints; got {value!r}")
    if isinstance(value, Sequence) or (isinstance(value, np.ndarray) and value.ndim == 1):
        if len(value) != ndim:
            raise ValueError(
                f"{name} must be an int or a sequence of {ndim} ints (one per spatial dim); "
                f"got {tuple(value)!r}"
            )
        result = tuple(as_int(v, name) for v in value)
    else:
        result = (as_int(value, name),) * ndim
    if minimum is not None and any(v < minimum for v in result):
        raise ValueError(f"{name} must be >= {minimum} on every axis; got {result}")
    return result


def spatial_shape(value: Any, name: str, *, ndim: int | None = None) -> tuple[int, ...]:
    """A shape of positive ints (an int is a 1-d shape unless ``ndim`` says more)."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of ints; got {value!r}")
    if not isinstance(value, (Sequence, np.ndarray)):
        value = (value,) * (ndim or 1)
    shape = tuple(as_int(v, name) for v in value)
    if ndim is not None and len(shape) != ndim:
        raise ValueError(f"{name} must have {ndim} entries; got {shape}")
    if not shape:
        raise ValueError(f"{name} must have at least one entry; got {shape}")
    if any(v < 1 for v in shape):
        raise ValueError(f"{name} must be >= 1 on every axis (empty input); got {shape}")
    return shape


def padding_pairs(
    padding: Any,
    kernel_size: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    *,
    strings: bool = True,
) -> tuple[tuple[int, int], ...]:
    """Normalise every padding form to one ``(low, high)`` pair per spatial dim.

    Forms: an int, one int per dim, one ``(low, high)`` pair per dim, or (when
    ``strings``) ``"valid"``, ``"same"`` (stride 1 only; an odd total puts the
    extra on the high side) and ``"full"`` (``d·(k−1)`` on both sides).

    >>> padding_pairs("same", (4,), (1,), (1,))
    ((1, 2),)
    >>> padding_pairs(((0, 1), 2), (3, 3), (1, 1), (1, 1))
    ((0, 1), (2, 2))
    """
    ndim = len(kernel_size)
    span = [d * (k - 1) for k, d in zip(kernel_size, dilation, strict=True)]
    if isinstance(padding, str):
        if not strings:
            raise TypeError(
                f"padding must be an int, one int per dim or (low, high) pairs for a transposed "
                f"layer (no strings, as torch); got {padding!r}"
            )
        if padding == "valid":
            return ((0, 0),) * ndim
        if padding == "full":
            return tuple((t, t) for t in span)
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"padding='same' must have stride 1 on every axis; got {stride}")
            return tuple((t // 2, t - t // 2) for t in span)
        raise ValueError(
            f"padding must be an int, a sequence or one of {PADDING_STRINGS}; got {padding!r}"
        )
    if isinstance(padding, (Sequence, np.ndarray)) and not isinstance(padding, bytes):
        if len(padding) != ndim:
            raise ValueError(
                f"padding must be an int, one int per spatial dim or one (low, high) pair per dim "
                f"({ndim} entries); got {padding!r}"
            )
        pairs = []
        for p in padding:
            if isinstance(p, (Sequence, np.ndarray)) and not isinstance(p, (str, bytes)):
                if len(p) != 2:
                    raise ValueError(f"padding pairs must be (low, high); got {padding!r}")
                pairs.append((as_int(p[0], "padding"), as_int(p[1], "padding")))
            else:
                v = as_int(p, "padding")
                pairs.append((v, v))
        result = tuple(pairs)
    else:
        v = as_int(padding, "padding")
        result = ((v, v),) * ndim
    if any(lo < 0 or hi < 0 for lo, hi in result):
        raise ValueError(f"padding must be >= 0 on every side; got {padding!r}")
    return result


def is_tensor(a: Any) -> bool:
    """Whether ``a`` is a ``torch.Tensor``, found without importing torch."""
    return any(c.__module__ == "torch" and c.__name__ == "Tensor" for c in type(a).__mro__)


def as_array(a: Any) -> Any:
    """``a`` unchanged, or a ``torch.Tensor`` as a NumPy array (detached, on the CPU, copied).

    torch is never imported here: a tensor is recognised by its class. NumPy has no
    bfloat16, so a bfloat16 tensor becomes float32 (exactly: every bfloat16 is a
    float32); every other dtype is kept, float16 included.
    """
    if not is_tensor(a):
        return a
    t = a.detach().cpu()
    if str(t.dtype) == "torch.bfloat16":
        t = t.float()
    if t.is_conj():
        t = t.resolve_conj()
    return t.numpy().copy()


class TensorInput:
    """Mixin for ``LinearOperator`` subclasses: products also take ``torch.Tensor`` vectors."""

    def matvec(self, x: Any) -> Any:
        return super().matvec(as_array(x))  # type: ignore[misc]

    def rmatvec(self, x: Any) -> Any:
        return super().rmatvec(as_array(x))  # type: ignore[misc]

    def matmat(self, x: Any) -> Any:
        return super().matmat(as_array(x))  # type: ignore[misc]

    def rmatmat(self, x: Any) -> Any:
        return super().rmatmat(as_array(x))  # type: ignore[misc]


def numeric_array(a: Any, name: str) -> np.ndarray[Any, Any]:
    """``a`` as a float or complex array; ints and bools become float64.

    A ``torch.Tensor`` is read through :func:`as_array`. Object, string and other
    non-numeric arrays raise ``TypeError``.
    """
    arr = np.asarray(as_array(a))
    kind = arr.dtype.kind
    if kind in "biu":
        return arr.astype(np.float64)
    if kind == "f" and arr.dtype.itemsize < 4:
        return arr.astype(np.float32)
    if kind not in "fc":
        raise TypeError(f"{name} must be a real or complex numeric array; got dtype {arr.dtype}")
    return arr


def split_planes(
    x: np.ndarray[Any, Any], ndim: int | None, what: str
) -> tuple[int, tuple[int, ...]]:
    """Spatial rank of ``x`` and its leading (batch, channel) shape.

    ``x`` is ``(C, *spatial)`` or ``(N, C, *spatial)``. When no argument fixes the
    rank (``ndim`` is None) it is ``x.ndim − 2``, a batch as torch's functional forms
    take — except that a 2-d ``x`` can only be ``(C, L)``. ``what`` names the
    rank's source in the message.
    """
    rank = max(x.ndim - 2, 1) if ndim is None else ndim
    if x.ndim not in (rank + 1, rank + 2):
        want = (
            "(C, L) or (N, C, *spatial)"
            if ndim is None
            else f"(C, *spatial) or (N, C, *spatial) with {rank} spatial dims ({what})"
        )
        raise ValueError(f"x must have shape {want}; got shape {x.shape}")
    return rank, x.shape[: x.ndim - rank]


def nonnegative(value: Any, name: str) -> float:
    """A real number ``>= 0`` (a solver tolerance, a damping), as a float.

    >>> nonnegative(1e-8, "atol")
    1e-08
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0; got {value!r}")
    return float(value)
