"""Helpers for checking convolution code against references, usable in your own scripts.

* :func:`torch_conv` and :func:`torch_conv_transpose` call PyTorch (when it is
  installed) with every convmat padding form translated to what torch accepts,
  so any layer convmat can describe can be checked against torch.
* :func:`dot_test` checks that an operator and its adjoint fit,
  ``⟨A x, y⟩ = ⟨x, Aᴴ y⟩``, for any operator (ours, SciPy's, PyLops').
* :func:`check_agreement` runs one layer every way convmat knows — the fast
  path (every method of a transposed layer), the sparse matrix and PyTorch —
  and reports the largest difference.

PyTorch is never a dependency of convmat: it is imported inside these functions
only, and :func:`has_torch` tells whether it is there.
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any, NamedTuple

import numpy as np

from convmat._args import as_array
from convmat._layer import conv_layer, conv_transpose_layer

__all__ = [
    "Agreement",
    "check_agreement",
    "dot_test",
    "has_torch",
    "torch_conv",
    "torch_conv_transpose",
]


def has_torch() -> bool:
    """Whether PyTorch can be imported, found without importing it.

    Returns
    -------
    bool
        ``True`` when ``import torch`` would find a package.

    Examples
    --------
    >>> isinstance(has_torch(), bool)
    True
    """
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

    Parameters
    ----------
    x : array_like, shape ``(N, C_in, *spatial)`` or ``(C_in, *spatial)``
    weight : array_like, shape ``(C_out, C_in // groups, *kernel_size)``
    bias : array_like, shape ``(C_out,)``, optional
    stride, padding, dilation, groups, padding_mode
        As :func:`convmat.conv` (validated by the same checker).

    Returns
    -------
    numpy.ndarray
        torch's output, batched or not as ``x`` is, in ``x``'s dtype.

    Raises
    ------
    ModuleNotFoundError
        When PyTorch is not installed.

    Examples
    --------
    >>> import numpy as np
    >>> if has_torch():
    ...     y = torch_conv(np.ones((1, 1, 4)), np.ones((1, 1, 3)), padding=((0, 2),))
    ...     assert y.tolist() == [[[3.0, 3.0, 2.0, 1.0]]]
    """
    torch = _torch()
    x, w = np.asarray(as_array(x)), np.asarray(as_array(weight))
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
    bt = None if bias is None else torch.from_numpy(np.asarray(as_array(bias)))
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

    Parameters
    ----------
    x : array_like, shape ``(N, C_in, *spatial)`` or ``(C_in, *spatial)``
    weight : array_like, shape ``(C_in, C_out // groups, *kernel_size)``
    bias : array_like, shape ``(C_out,)``, optional
    stride, padding, output_padding, dilation, groups
        As :func:`convmat.conv_transpose` (validated by the same checker).

    Returns
    -------
    numpy.ndarray
        torch's output, batched or not as ``x`` is, in ``x``'s dtype.

    Raises
    ------
    ModuleNotFoundError
        When PyTorch is not installed.

    Examples
    --------
    >>> import numpy as np
    >>> if has_torch():
    ...     K = np.array([[[[0.0, 1.0], [2.0, 3.0]]]])
    ...     y = torch_conv_transpose(K[0], K, stride=2)
    ...     assert y[0].tolist()[3] == [4.0, 6.0, 6.0, 9.0]
    """
    torch = _torch()
    x, w = np.asarray(as_array(x)), np.asarray(as_array(weight))
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
    bt = None if bias is None else torch.from_numpy(np.asarray(as_array(bias)))
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


def dot_test(operator: Any, *, rtol: float | None = None, seed: int | None = 0) -> float:
    """The dot test: ``⟨A x, y⟩ = ⟨x, Aᴴ y⟩`` for random ``x`` and ``y``.

    The property that makes an adjoint an adjoint; a transposed convolution that
    fails it is not the transpose of its convolution.

    Parameters
    ----------
    operator : LinearOperator, sparse matrix or 2-d array
        Anything :func:`scipy.sparse.linalg.aslinearoperator` accepts: it needs
        ``matvec`` and ``rmatvec``.
    rtol : float, optional
        Largest relative mismatch accepted; default ``1e-4`` for a single-precision
        operator, ``1e-10`` otherwise.
    seed : int, optional
        Seed of the random vectors (normal; complex for a complex operator).

    Returns
    -------
    float
        ``|⟨A x, y⟩ − ⟨x, Aᴴ y⟩| / max(|⟨A x, y⟩|, |⟨x, Aᴴ y⟩|)``.

    Raises
    ------
    AssertionError
        When the mismatch exceeds ``rtol``.

    References
    ----------
    J. F. Claerbout, "Earth Soundings Analysis: Processing versus Inversion", 1992,
    the dot-product test; PyLops' ``dottest``.

    Examples
    --------
    >>> import convmat
    >>> C = convmat.conv_operator((2, 5, 5), np.ones((3, 2, 3, 3)), stride=2)
    >>> dot_test(C) < 1e-12
    True
    """
    from scipy.sparse.linalg import aslinearoperator

    op = aslinearoperator(operator)
    dtype = np.dtype(op.dtype)
    rng = np.random.default_rng(seed)
    rows, cols = op.shape

    def draw(n: int) -> np.ndarray[Any, Any]:
        v = rng.standard_normal(n)
        if dtype.kind == "c":
            v = v + 1j * rng.standard_normal(n)
        return v.astype(dtype if dtype.kind in "fc" else np.float64)

    x, y = draw(cols), draw(rows)
    lhs = complex(np.vdot(y, op.matvec(x)))
    rhs = complex(np.vdot(op.rmatvec(y), x))
    scale = max(abs(lhs), abs(rhs), np.finfo(np.float64).tiny)
    mismatch = float(abs(lhs - rhs) / scale)
    if rtol is None:
        rtol = 1e-4 if dtype in (np.float32, np.complex64) else 1e-10
    if mismatch > rtol:
        raise AssertionError(
            f"dot test failed: <A x, y> = {lhs:.6g}, <x, A^H y> = {rhs:.6g}, relative mismatch "
            f"{mismatch:.3g} > rtol={rtol:g}"
        )
    return mismatch


class Agreement(NamedTuple):
    """What :func:`check_agreement` found: each route's largest deviation from the matrix."""

    differences: dict[str, float]
    """Route name → ``max |route − matrix|`` over the whole output."""
    scale: float
    """``max |matrix result|``, to read the differences against."""

    @property
    def largest(self) -> float:
        """The largest absolute difference over all routes."""
        return max(self.differences.values(), default=0.0)

    @property
    def relative(self) -> float:
        """:attr:`largest` divided by :attr:`scale` (or itself when the output is zero)."""
        return self.largest / self.scale if self.scale else self.largest

    def __str__(self) -> str:
        lines = [
            f"{name:>10}: max |difference| {diff:.3g}" for name, diff in self.differences.items()
        ]
        lines.append(f"{'largest':>10}: {self.largest:.3g} (relative {self.relative:.3g})")
        return "\n".join(lines)


def check_agreement(
    x: Any,
    weight: Any,
    bias: Any = None,
    *,
    transposed: bool = False,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = None,
    dilation: Any = 1,
    groups: Any = 1,
    padding_mode: str = "zeros",
    torch: bool | None = None,
    rtol: float | None = None,
) -> Agreement:
    """Run one layer every way convmat can and report how far the results are apart.

    The reference is the sparse matrix (:func:`convmat.conv_matrix` or
    :func:`convmat.conv_transpose_matrix`) applied to every sample; the routes
    compared with it are the fast path (``"conv"``, or each method of
    :func:`convmat.conv_transpose`: ``"gemm"``, ``"scatter"``, ``"fractional"``)
    and, when installed, PyTorch (``"torch"``).

    Parameters
    ----------
    x, weight, bias
        As :func:`convmat.conv` (or :func:`convmat.conv_transpose` when ``transposed``).
    transposed : bool
        Check the transposed layer.
    stride, padding, dilation, groups
        The layer.
    output_padding : int or sequence of int, optional
        Transposed layers only.
    padding_mode : str
        Convolutions only.
    torch : bool, optional
        Include PyTorch: default when it is installed; ``True`` insists on it.
    rtol : float, optional
        When given, raise ``AssertionError`` if :attr:`Agreement.relative` exceeds it.

    Returns
    -------
    Agreement
        ``differences`` per route, ``scale``, ``largest`` and ``relative``.

    Raises
    ------
    ValueError
        For an argument that does not apply (``output_padding`` of a convolution,
        ``padding_mode`` of a transposed layer) and every error of the layer itself.
    AssertionError
        When ``rtol`` is given and exceeded.
    ModuleNotFoundError
        When ``torch=True`` and PyTorch is not installed.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.standard_normal((2, 4, 9, 9)), rng.standard_normal((4, 3, 3, 3))
    >>> report = check_agreement(x, w, transposed=True, stride=2, output_padding=1)
    >>> sorted(report.differences)[:3]
    ['fractional', 'gemm', 'scatter']
    >>> report.relative < 1e-12
    True
    """
    import convmat
    from convmat._args import numeric_array

    if transposed and padding_mode != "zeros":
        raise ValueError(
            f"padding_mode must be 'zeros' for a transposed layer (as torch); got {padding_mode!r}"
        )
    if not transposed and output_padding is not None:
        raise ValueError(
            f"output_padding must be None for a convolution (it belongs to transposed layers); "
            f"got {output_padding!r}"
        )
    use_torch = has_torch() if torch is None else torch
    xa, wa = numeric_array(x, "x"), numeric_array(weight, "weight")
    ba = None if bias is None else numeric_array(bias, "bias")
    dtype = np.result_type(xa, wa, *(() if ba is None else (ba,)))
    xa, wa = xa.astype(dtype), wa.astype(dtype)
    ba = None if ba is None else ba.astype(dtype)
    routes: dict[str, np.ndarray[Any, Any]] = {}
    if transposed:
        geometry: dict[str, Any] = {
            "stride": stride,
            "padding": padding,
            "dilation": dilation,
            "groups": groups,
            "output_padding": 0 if output_padding is None else output_padding,
        }
        for method in ("gemm", "scatter", "fractional", "matrix"):
            routes[method] = convmat.conv_transpose(xa, wa, ba, method=method, **geometry)
        if use_torch:
            routes["torch"] = torch_conv_transpose(xa, wa, ba, **geometry)
    else:
        geometry = {
            "stride": stride,
            "padding": padding,
            "dilation": dilation,
            "groups": groups,
            "padding_mode": padding_mode,
        }
        routes["conv"] = convmat.conv(xa, wa, ba, **geometry)
        matrix = convmat.conv_matrix(xa.shape[-(wa.ndim - 1) :], wa, **geometry)
        batch = xa.reshape(-1, matrix.shape[1])
        reference = (matrix @ batch.T).T.reshape(routes["conv"].shape)
        if ba is not None:
            reference = reference + ba.reshape(-1, *(1,) * (wa.ndim - 2))
        routes["matrix"] = reference
        if use_torch:
            routes["torch"] = torch_conv(xa, wa, ba, **geometry)
    reference = routes.pop("matrix")
    differences = {
        name: float(np.abs(np.asarray(value) - reference).max(initial=0.0))
        for name, value in routes.items()
    }
    report = Agreement(differences, float(np.abs(reference).max(initial=0.0)))
    if rtol is not None and report.relative > rtol:
        raise AssertionError(f"routes disagree beyond rtol={rtol:g}:\n{report}")
    return report
