"""Argument normalisation: ints, per-dim tuples and padding forms checked in one place.

Every public function turns its hyperparameters into tuples through these helpers,
so a bad argument gets the same message everywhere, raised before any work.
Messages follow one template: ``"<name> must <expectation>; got <actual>"``.
"""

from __future__ import annotations

import functools
import inspect
import operator
import reprlib
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar

import numpy as np

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
PADDING_STRINGS = ("valid", "same", "full")

#: The largest magnitude of any integer argument (a size, stride, padding, ...): 2**31 − 1.
#: Index arithmetic multiplies at most two such values and adds a few more
#: (``(n − 1)·s + d·(k − 1) + 1``), which stays below 2**63, so every int64 array computed
#: from validated arguments is exact.
MAX_INT = 2**31 - 1

P = ParamSpec("P")
R = TypeVar("R")


def scalar(value: Any) -> Any:
    """``value`` with a 0-d array (or 0-d tensor) replaced by its scalar — the one rule.

    Every other value is returned unchanged (a tensor of higher rank as a NumPy array).

    >>> scalar(np.array(2)), scalar((1, 2))
    (np.int64(2), (1, 2))
    """
    value = as_array(value)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    return value


def is_sequence(value: Any) -> bool:
    """Whether ``value`` is a per-axis sequence (a list, tuple or 1-d+ array; not a string).

    A 0-d array is a scalar, not a sequence (see :func:`scalar`).
    """
    value = scalar(value)
    if isinstance(value, (str, bytes)):
        return False
    return isinstance(value, (Sequence, np.ndarray))


def axes_count(*values: Any) -> int | None:
    """The length of the first of ``values`` that is a sequence, or None if none is."""
    for value in values:
        if is_sequence(value):
            return len(scalar(value))
    return None


def choice(value: Any, choices: Sequence[str], name: str) -> str:
    """One of ``choices``: a string (``TypeError`` otherwise) that is in them (``ValueError``).

    >>> choice("gemm", ("gemm", "scatter"), "method")
    'gemm'
    >>> choice(["gemm"], ("gemm", "scatter"), "method")
    Traceback (most recent call last):
    ...
    TypeError: method must be one of ('gemm', 'scatter'); got ['gemm']
    """
    choices = tuple(choices)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {choices}; got {value!r}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}; got {value!r}")
    return str(value)


def as_int(value: Any, name: str) -> int:
    """``operator.index`` that refuses bools and huge values and names the argument.

    A 0-d array is its scalar. Magnitudes above :data:`MAX_INT` (2**31 − 1) are refused
    with a ``ValueError``, so no later int64 arithmetic can overflow.

    >>> as_int(2**40, "stride")
    Traceback (most recent call last):
    ...
    ValueError: stride must be at most 2147483647 (2**31 - 1) in magnitude; got 1099511627776
    """
    value = scalar(value)
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int or a sequence of ints; got {value!r}")
    try:
        result = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int or a sequence of ints; got {value!r}") from None
    if abs(result) > MAX_INT:
        raise ValueError(f"{name} must be at most {MAX_INT} (2**31 - 1) in magnitude; got {result}")
    return result


def ntuple(value: Any, ndim: int, name: str, *, minimum: int | None = None) -> tuple[int, ...]:
    """An int or one int per spatial dim, as a tuple of ``ndim`` ints.

    >>> ntuple(2, 3, "stride")
    (2, 2, 2)
    >>> ntuple((1, 0), 2, "stride", minimum=1)
    Traceback (most recent call last):
    ...
    ValueError: stride must be >= 1 on every axis; got (1, 0)
    """
    value = scalar(value)
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an int or a sequence of ints; got {value!r}")
    if is_sequence(value):
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
    value = scalar(value)
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of ints; got {value!r}")
    if not is_sequence(value):
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
    padding = scalar(padding)
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
    if is_sequence(padding):
        if len(padding) != ndim:
            raise ValueError(
                f"padding must be an int, one int per spatial dim or one (low, high) pair per dim "
                f"({ndim} entries); got {padding!r}"
            )
        pairs = []
        for p in padding:
            if is_sequence(p):
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


def read_array(a: Any, name: str) -> np.ndarray[Any, Any]:
    """``numpy.asarray`` of ``a`` (a tensor through :func:`as_array`), naming ``a`` on failure.

    Ragged nested sequences — rows of different lengths — are refused with a
    ``ValueError`` that names the argument.

    >>> read_array([[1, 2], [3]], "x")
    Traceback (most recent call last):
    ...
    ValueError: x must be a rectangular array (nested sequences of equal lengths); got [[1, 2], [3]]
    """
    try:
        return np.asarray(as_array(a))
    except ValueError:
        raise ValueError(
            f"{name} must be a rectangular array (nested sequences of equal lengths); "
            f"got {reprlib.repr(a)}"
        ) from None


def numeric_array(a: Any, name: str) -> np.ndarray[Any, Any]:
    """``a`` as a float or complex array; ints and bools become float64.

    A ``torch.Tensor`` is read through :func:`as_array`. Object, string and other
    non-numeric arrays raise ``TypeError``; ragged nested sequences ``ValueError``.
    float16 is computed in float32 (see :func:`float16_result` for the result).
    """
    arr = read_array(a, name)
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
    nonempty(x.shape, rank)
    return rank, x.shape[: x.ndim - rank]


def nonempty(shape: tuple[int, ...], rank: int, name: str = "x") -> None:
    """The one rule for empty axes of data: only a batch axis may be empty.

    ``shape`` is ``(*batch, C, *spatial)`` with ``rank`` spatial dims (``(C, *spatial)``
    unbatched). An empty batch gives an empty result of the right shape, as torch does;
    an empty channel or spatial axis is refused.

    >>> nonempty((0, 3, 8), 1)  # an empty batch is fine
    """
    lead = shape[: len(shape) - rank]
    if (lead and lead[-1] == 0) or 0 in shape[len(shape) - rank :]:
        raise ValueError(
            f"{name} must have non-empty channel and spatial axes (only a batch axis may be "
            f"empty); got shape {tuple(shape)}"
        )


def _is_float16(a: Any) -> bool:
    return str(getattr(a, "dtype", "")) in ("float16", "torch.float16")


def _to_float16(result: Any) -> Any:
    if isinstance(result, np.ndarray) and result.dtype.kind == "f":
        return result.astype(np.float16)
    if isinstance(result, tuple):
        return tuple(_to_float16(r) for r in result)
    return result


def float16_result(*names: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a public array function with the float16 policy: computed in float32,
    returned in float16 when every array argument among ``names`` is float16.

    The arithmetic runs in float32 (:func:`numeric_array` reads float16 as float32); the
    floating-point results (not index arrays) are rounded back to float16, the dtype
    torch returns. Mixed dtypes follow NumPy's promotion (float16 with float32 gives
    float32). NumPy has no bfloat16, so bfloat16 tensors are read, and returned, as float32.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            result = func(*args, **kwargs)
            arguments = signature.bind(*args, **kwargs).arguments
            given = [arguments[n] for n in names if arguments.get(n) is not None]
            if given and all(_is_float16(a) for a in given):
                return _to_float16(result)  # type: ignore[no-any-return]
            return result

        return wrapper

    return decorate


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
