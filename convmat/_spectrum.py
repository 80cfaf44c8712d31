"""Spectra of a convolution: why the transposed convolution is not its inverse.

``Cᵀ`` undoes ``C`` only when ``CᵀC = I``, i.e. when every singular value of C is 1.
This module gives the singular values exactly (dense SVD, or ``svds`` for the
largest few), in closed form for circular padding (Sedghi, Gupta & Long 2019:
one small SVD per spatial frequency), and a report that sets ``‖CᵀC − I‖`` beside
the reconstruction errors of ``conv_transpose(conv(x))`` and ``deconvolve(conv(x))``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convmat._args import numeric_array
from convmat._layer import Layer, conv_layer
from convmat._matrix import DEFAULT_MAX_BYTES, human_bytes, layer_matrix

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

    w = numeric_array(weight, "weight")
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
    w = numeric_array(weight, "weight")
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
