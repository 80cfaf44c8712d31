"""Spectra of a convolution: why the transposed convolution is not its inverse.

``Cᵀ`` undoes ``C`` only when ``CᵀC = I``, i.e. when every singular value of C is 1.
This module gives the singular values exactly (dense SVD, or ``svds`` for the
largest few), in closed form for circular padding (Sedghi, Gupta & Long 2019:
one small SVD per spatial frequency), and a report that sets ``‖CᵀC − I‖`` beside
the reconstruction errors of ``conv_transpose(conv(x))`` and ``deconvolve(conv(x))``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from convmat._args import numeric_array
from convmat._layer import Layer, conv_layer
from convmat._matrix import DEFAULT_MAX_BYTES, _weight, human_bytes, layer_matrix
from convmat._progress import warn_dense_svd

Array = np.ndarray[Any, Any]


def _dense_svd_bytes(layer: Layer, itemsize: int) -> int:
    """Storage of C as a dense array plus LAPACK's workspace (about the same again)."""
    return 2 * layer.out_size * layer.in_size * itemsize


def conv_singular_values(
    input_shape: Any,
    weight: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    padding_mode: str = "zeros",
    k: int | None = None,
    max_bytes: Any = DEFAULT_MAX_BYTES,
) -> Array:
    r"""The singular values of a convolution's matrix C, largest first.

    Parameters
    ----------
    input_shape : sequence of int
        ``(C_in, *spatial)``.
    weight : array_like, shape ``(C_out, C_in // groups, *kernel_size)``
    stride, padding, dilation, groups, padding_mode
        As :func:`conv_matrix`.
    k : int, optional
        ``None``: all ``min(C.shape)`` values by a dense SVD. Otherwise the ``k``
        largest, ``1 <= k < min(C.shape)``, by ``scipy.sparse.linalg.svds`` on the
        sparse C (for layers too large to densify).
    max_bytes : int
        Refuse (``MemoryError``) a dense SVD — or a sparse C — larger than this.

    Returns
    -------
    ndarray of float64, shape ``(min(C.shape),)`` or ``(k,)``
        Descending. The singular values of the transposed layer's matrix ``Cᵀ`` are the same.

    Raises
    ------
    ValueError, TypeError
        As :func:`conv_matrix`; also for ``k`` out of range.
    MemoryError
        When the dense SVD (``k=None``) or the sparse matrix needs more than ``max_bytes``.

    Warns
    -----
    SlowWarning
        Before a dense SVD costlier than a 2000 × 2000 one (seconds to hours, no
        progress possible inside LAPACK): its estimated time, and ``k=`` as the faster way.

    See Also
    --------
    circular_singular_values : the FFT closed form for circular padding.
    deconvolution_report

    Notes
    -----
    :math:`\|C\|_2 = \sigma_1` is the layer's Lipschitz constant; the spectral norm
    of the *reshaped weight* is not (it ignores the Toeplitz structure).

    References
    ----------
    H. Sedghi, V. Gupta and P. M. Long, "The Singular Values of Convolutional
    Layers", ICLR 2019. arXiv:1805.10408

    Examples
    --------
    A 1-d moving sum of 2 on 3 samples: C = [[1, 1, 0], [0, 1, 1]], σ = √3, 1.

    >>> conv_singular_values((1, 3), [[[1.0, 1.0]]]) ** 2
    array([3., 1.])
    """
    from scipy.sparse.linalg import svds

    w = _weight(weight)
    layer = conv_layer(
        input_shape,
        w.shape,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
    )
    smallest = min(layer.out_size, layer.in_size)
    if k is None:
        need = _dense_svd_bytes(layer, w.dtype.itemsize)
        if need > max_bytes:
            raise MemoryError(
                f"dense SVD of a {layer.out_size}x{layer.in_size} conv matrix needs about "
                f"{human_bytes(need)}, more than max_bytes={human_bytes(max_bytes)}; pass k= "
                f"for the k largest singular values by svds, or raise max_bytes="
            )
        warn_dense_svd(layer.out_size, layer.in_size, "conv matrix")
        C = layer_matrix(layer, w, max_bytes=max_bytes)
        return np.asarray(np.linalg.svd(C.toarray(), compute_uv=False))
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int or None; got {k!r}")
    if not 1 <= k < smallest:
        raise ValueError(f"k must be in [1, {smallest - 1}] (svds needs k < min(C.shape)); got {k}")
    C = layer_matrix(layer, w, max_bytes=max_bytes)
    values = svds(C, k=int(k), return_singular_vectors=False, random_state=0)
    return np.sort(np.asarray(values))[::-1]


def circular_singular_values(
    input_shape: Any,
    weight: Any,
    *,
    stride: Any = 1,
    padding: Any = "same",
    dilation: Any = 1,
    groups: Any = 1,
) -> Array:
    r"""Singular values of a circular-padding convolution in closed form, largest first.

    Sedghi, Gupta & Long (2019): with circular padding and stride 1, C is
    block-circulant, so the DFT diagonalises it into one ``C_out × C_in`` matrix per
    spatial frequency; C's singular values are those of all these small matrices.
    No matrix is built — it is the cross-check of :func:`conv_singular_values`.

    Parameters
    ----------
    input_shape : sequence of int
        ``(C_in, *spatial)``, any number of spatial dims.
    weight : array_like, shape ``(C_out, C_in // groups, *kernel_size)``
    stride : int or sequence of int
        Must be 1 (kept so that a layer's arguments can be passed unchanged).
    padding : int, sequence, (low, high) pairs or "same"
        Must total ``d·(k−1)`` on every axis, so that the output has the input's size.
    dilation, groups
        As :func:`conv_matrix`.

    Returns
    -------
    ndarray of float64, shape ``(∏spatial · min(C_out, C_in),)``
        Descending; equal to ``conv_singular_values(..., padding_mode="circular")``.

    Raises
    ------
    ValueError
        For a stride other than 1, padding that changes the size, or a bad geometry.
    TypeError
        As :func:`conv_matrix`.

    See Also
    --------
    conv_singular_values

    Notes
    -----
    Output ``o`` reads input ``(o + t·d − lo) mod n`` through tap ``t``, so the kernel
    wraps into the circulant generator :math:`h[c, j, m] = \sum_{t:\ t d - lo \equiv m} w[c, j, t]`.
    With :math:`\hat h = \mathrm{DFT}(h)` over the spatial axes,

    .. math::

        \sigma(C) = \bigcup_{\mathbf{f}} \sigma\big(\hat h[:, :, \mathbf{f}]\big),

    block-diagonal over groups. (Cross-correlation gives :math:`\hat h` at
    :math:`-\mathbf{f}`, the same set.) Cost: one FFT and ``∏n`` SVDs of
    ``C_out × C_in`` instead of one SVD of ``C_out∏n × C_in∏n``.

    References
    ----------
    H. Sedghi, V. Gupta and P. M. Long, "The Singular Values of Convolutional
    Layers", ICLR 2019. arXiv:1805.10408

    Examples
    --------
    >>> import numpy as np
    >>> w = np.random.default_rng(0).normal(size=(2, 3, 3, 3))
    >>> fft = circular_singular_values((3, 5, 5), w)
    >>> svd = conv_singular_values((3, 5, 5), w, padding="same", padding_mode="circular")
    >>> fft.shape, bool(np.allclose(fft, svd))
    ((50,), True)
    """
    w = _weight(weight)
    layer = conv_layer(
        input_shape,
        w.shape,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode="circular",
    )
    if any(s != 1 for s in layer.stride):
        raise ValueError(
            f"stride must be 1 on every axis for the circulant closed form; got {layer.stride}"
        )
    if layer.out_spatial != layer.in_spatial:
        raise ValueError(
            f"padding must total dilation·(kernel_size − 1) on every axis so that the output "
            f"keeps the input size {layer.in_spatial} (C circulant); got padding "
            f"{layer.padding} giving {layer.out_spatial}"
        )
    n, g = layer.in_spatial, layer.groups
    h = np.zeros((*w.shape[:2], *n), dtype=np.result_type(w.dtype, np.float64))
    wraps: tuple[Any, ...] = np.ix_(
        *(
            (np.arange(k) * d - lo) % size
            for k, d, (lo, _), size in zip(
                layer.kernel_size, layer.dilation, layer.padding, n, strict=True
            )
        )
    )
    np.add.at(h, (slice(None), slice(None), *wraps), w)  # taps that wrap onto one offset add
    spectrum = np.fft.fftn(h, axes=tuple(range(2, h.ndim)))
    # One (C_out/G × C_in/G) matrix per group and frequency: frequencies first.
    blocks = spectrum.reshape(g, w.shape[0] // g, w.shape[1], -1).transpose(0, 3, 1, 2)
    values = np.linalg.svd(blocks, compute_uv=False).reshape(-1)
    return np.sort(values)[::-1]


class DeconvolutionReport(NamedTuple):
    """Why a transposed convolution is not a deconvolution, in numbers for one layer and input.

    Attributes
    ----------
    singular_values : ndarray
        All singular values of the layer's matrix C, descending.
    condition : float
        ``σ_max / σ_min`` over the ``C_in·∏in`` columns (``inf`` when C is not injective:
        more columns than rows, or a zero singular value).
    gram_error : float
        ``‖CᵀC − I‖_F``: 0 exactly when ``Cᵀ`` is the inverse of ``C``.
    gram_error_2 : float
        ``‖CᵀC − I‖₂ = max |σᵢ² − 1|`` (a missing singular value counts as 0).
    transposed_error : float
        ``‖conv_transpose(conv(x)) − x‖ / ‖x‖``.
    scaled_transposed_error : float
        The same for the best multiple ``α·conv_transpose(conv(x))`` — no scale fixes it.
    deconvolve_error : float
        ``‖deconvolve(conv(x)) − x‖ / ‖x‖``.
    deconvolve_converged : bool
        Whether LSMR met its tolerances.
    transposed, deconvolved : ndarray
        The two reconstructions, shaped like ``x``.
    """

    singular_values: Array
    condition: float
    gram_error: float
    gram_error_2: float
    transposed_error: float
    scaled_transposed_error: float
    deconvolve_error: float
    deconvolve_converged: bool
    transposed: Array
    deconvolved: Array

    def __repr__(self) -> str:
        from convmat._display import summary

        arrays = f"transposed, deconvolved: {summary(self.transposed)}"
        return f"DeconvolutionReport\n{self}\n{arrays}"

    def _repr_html_(self) -> str:
        from convmat._display import html_table

        s = self.singular_values
        converged = "" if self.deconvolve_converged else " (LSMR did not converge)"
        head = (
            f"<p><b>DeconvolutionReport</b>: {s.size} singular values of <i>C</i>, "
            f"{s[0]:.4g} down to {s[-1]:.4g}; condition {self.condition:.4g}; "
            f"‖CᵀC − I‖<sub>F</sub> = {self.gram_error:.4g}, "
            f"‖CᵀC − I‖<sub>2</sub> = {self.gram_error_2:.4g}</p>"
        )
        rows = [
            ("conv_transpose(conv(x))", f"{self.transposed_error:.3e}"),
            ("best multiple of conv_transpose(…)", f"{self.scaled_transposed_error:.3e}"),
            ("deconvolve(conv(x))" + converged, f"{self.deconvolve_error:.3e}"),
        ]
        return head + html_table(("reconstruction", "‖x̂ − x‖ / ‖x‖"), rows)

    def __str__(self) -> str:
        s = self.singular_values
        rows = {
            "conv_transpose(conv(x))": self.transposed_error,
            "best multiple of conv_transpose(...)": self.scaled_transposed_error,
            "deconvolve(conv(x))": self.deconvolve_error,
        }
        note = "" if self.deconvolve_converged else "  (LSMR did not converge)"
        return (
            "\n".join(
                [
                    f"singular values of C: {s.size}, from {s[0]:.4g} down to {s[-1]:.4g}; "
                    f"condition {self.condition:.4g}",
                    f"||C^T C - I||_F = {self.gram_error:.4g}, "
                    f"||C^T C - I||_2 = {self.gram_error_2:.4g}",
                    "relative reconstruction error ||x_hat - x|| / ||x||:",
                    *(f"  {label:<38} {value:.3e}" for label, value in rows.items()),
                ]
            )
            + note
        )


def deconvolution_report(
    x: Any,
    weight: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    padding_mode: str = "zeros",
    damp: float = 0.0,
    atol: float = 1e-10,
    btol: float = 1e-10,
    iter_lim: int | None = None,
    max_bytes: Any = DEFAULT_MAX_BYTES,
) -> DeconvolutionReport:
    r"""Transposed convolution against the true inverse, for one layer and one input.

    Computes ``y = conv(x)``, then reconstructs ``x`` two ways — ``conv_transpose(y)``
    (``Cᵀy``) and ``deconvolve(y)`` (least squares) — beside the numbers that explain
    the difference: the singular values of C and ``‖CᵀC − I‖``.

    Parameters
    ----------
    x : array_like, shape ``(C_in, *spatial)``
        One input sample.
    weight : array_like, shape ``(C_out, C_in // groups, *kernel_size)``
    stride, padding, dilation, groups, padding_mode
        As :func:`conv`.
    damp, atol, btol, iter_lim
        Passed to :func:`deconvolve` (tight tolerances by default, for an exact recovery).
    max_bytes : int
        Limit on the dense SVD of C (this report is for teaching sizes).

    Returns
    -------
    DeconvolutionReport
        Prints as a short table.

    Raises
    ------
    ValueError, TypeError
        As :func:`conv`.
    MemoryError
        When the dense SVD of C needs more than ``max_bytes``.

    Warns
    -----
    SlowWarning
        As :func:`conv_singular_values`, before a dense SVD of more than ~2000 columns.

    See Also
    --------
    conv_singular_values, deconvolve, conv_transpose

    Notes
    -----
    ``Cᵀ`` inverts ``C`` only if :math:`C^T C = I`, i.e. every singular value is 1;
    then :math:`\|C^TCx - x\| = 0`. In general :math:`C^TC = V\Sigma^2V^T` scales each
    right singular direction by :math:`\sigma_i^2`, so no single factor :math:`\alpha`
    repairs it unless all :math:`\sigma_i` are equal. Least squares divides by
    :math:`\sigma_i` instead and recovers ``x`` whenever C is injective. For a padding
    mode other than zeros, ``Cᵀy`` is the adjoint of :func:`conv_operator` (the
    padding folds back), which ``conv_transpose`` does not model.

    References
    ----------
    V. Dumoulin and F. Visin, "A guide to convolution arithmetic for deep learning",
    arXiv:1603.07285, 2016 (on the name "deconvolution").

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(1, 6, 6))
    >>> report = deconvolution_report(x, [[[[1.0, 0.5], [0.25, 0.5]]]], padding=1)
    >>> report.transposed_error > 0.5, report.deconvolve_error < 1e-8
    (True, True)
    >>> print(report)                                         # doctest: +ELLIPSIS
    singular values of C: 36, from 2.148 down to 0.512; condition 4.195
    ||C^T C - I||_F = 7.944, ||C^T C - I||_2 = 3.612
    relative reconstruction error ||x_hat - x|| / ||x||:
      conv_transpose(conv(x))                1.135e+00
      best multiple of conv_transpose(...)   6.517e-01
      deconvolve(conv(x))                    ...
    """
    from scipy.sparse import eye_array
    from scipy.sparse.linalg import norm

    from convmat._fast import conv, conv_transpose
    from convmat._operator import conv_operator, deconvolve

    xs = numeric_array(x, "x")
    w = _weight(weight)
    geometry = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    layer = conv_layer(xs.shape, w.shape, padding_mode=padding_mode, **geometry)
    sigma = conv_singular_values(
        xs.shape, w, padding_mode=padding_mode, max_bytes=max_bytes, **geometry
    )
    C = layer_matrix(layer, w, max_bytes=max_bytes)
    n = layer.in_size
    gram = (C.conj().T @ C - eye_array(n, dtype=C.dtype)).tocsr()
    eigen = np.concatenate([sigma**2, np.zeros(n - sigma.size)])
    injective = sigma.size == n and sigma[-1] > 0
    y = conv(xs, w, padding_mode=padding_mode, **geometry)
    if padding_mode == "zeros":
        back = conv_transpose(
            y,
            w,
            stride=layer.stride,
            padding=layer.padding,
            output_padding=layer.output_padding,
            dilation=layer.dilation,
            groups=layer.groups,
        )
    else:
        op = conv_operator(xs.shape, w, padding_mode=padding_mode, **geometry)
        back = np.asarray(op.rmatvec(y.ravel())).reshape(xs.shape)
    solved = deconvolve(
        y,
        w,
        xs.shape,
        padding_mode=padding_mode,
        damp=damp,
        atol=atol,
        btol=btol,
        iter_lim=iter_lim,
        **geometry,
    )
    scale = float(np.linalg.norm(xs)) or 1.0
    alpha = np.vdot(back, xs) / np.vdot(back, back) if np.any(back) else 0.0
    return DeconvolutionReport(
        singular_values=sigma,
        condition=float(sigma[0] / sigma[-1]) if injective else math.inf,
        gram_error=float(norm(gram, "fro")),
        gram_error_2=float(np.max(np.abs(eigen - 1.0))),
        transposed_error=float(np.linalg.norm(back - xs)) / scale,
        scaled_transposed_error=float(np.linalg.norm(alpha * back - xs)) / scale,
        deconvolve_error=float(np.linalg.norm(solved.x - xs)) / scale,
        deconvolve_converged=solved.converged,
        transposed=np.asarray(back),
        deconvolved=np.asarray(solved.x),
    )
