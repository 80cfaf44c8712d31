"""Upsamplers as transposed convolutions: the kernel, stride and crop that reproduce each one.

The sub-pixel layer (a stride-1 convolution followed by ``PixelShuffle(r)``) is one
too: :func:`pixel_shuffle_as_conv_transpose` rearranges its kernel into that of a
stride-``r`` transposed convolution (Shi et al. 2016).

A stride-``s`` transposed convolution writes every input value times the
kernel at offset ``o·s − lo``. Choosing the kernel chooses the upsampler: a
ones kernel repeats (nearest), a one-hot kernel inserts zeros (bed of nails),
a tent interpolates linearly, Keys' cubic bicubically. The interpolating ones
need the input replicate-padded first — the edge clamping of
``F.interpolate`` — and then they are exact everywhere, borders included.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from convmat._args import as_int, ntuple, numeric_array, padding_pairs, split_planes
from convmat._matrix import DEFAULT_MAX_BYTES, _weight, conv_matrix, conv_transpose_matrix
from convmat._upsample import keys_cubic, resize_plan

#: Half-width of the interpolation kernel (in input samples) per mode.
_REACH = {
    "nearest": 0,
    "nearest-exact": 0,
    "bed_of_nails": 0,
    "linear": 1,
    "bilinear": 1,
    "trilinear": 1,
    "bicubic": 2,
}


class ConvTransposeUpsampler(NamedTuple):
    """The transposed convolution that reproduces an upsampler on one channel plane.

    ``weight`` has shape ``(1, 1, *kernel_size)`` (torch's layout for one channel;
    apply it to every plane alone, or depthwise with ``groups = C``); ``padding``
    is the forward layer's ``(low, high)`` per axis, i.e. the crop; the input is
    replicate-padded by ``input_padding`` on every side first.
    """

    weight: np.ndarray[Any, Any]
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    input_padding: int
    spatial: tuple[int, ...]

    def matrix(self) -> sp.csr_array:
        """``Cᵀ · P``: the transposed convolution's matrix after the replicate-padding matrix.

        ``P`` is itself a convolution matrix (a 1-tap identity kernel with
        ``padding_mode="replicate"``), so nothing here is derived twice. Zero
        kernel taps are not stored.
        """
        r = self.input_padding
        padded = tuple(n + 2 * r for n in self.spatial)
        matrix = conv_transpose_matrix(
            (1, *padded), self.weight, stride=self.stride, padding=self.padding
        )
        if r:
            one = np.ones((1, 1) + (1,) * len(self.spatial))
            pad = conv_matrix((1, *self.spatial), one, padding=r, padding_mode="replicate")
            matrix = (matrix @ pad).tocsr()
        matrix.eliminate_zeros()  # the zero taps of one-hot and odd-stride tent kernels
        matrix.sort_indices()
        return matrix

    def apply(self, x: Any) -> np.ndarray[Any, Any]:
        """Run it through :func:`convmat.conv_transpose` on ``(N, C, *spatial)`` or one sample."""
        from convmat._fast import conv_transpose

        arr = numeric_array(x, "x")
        ndim = len(self.spatial)
        _, lead = split_planes(arr, ndim, f"{ndim} spatial dims of this upsampler")
        if arr.shape[arr.ndim - ndim :] != self.spatial:
            raise ValueError(
                f"x must have spatial shape {self.spatial}; got {arr.shape[arr.ndim - ndim :]}"
            )
        planes = arr.reshape(-1, 1, *self.spatial)
        r = self.input_padding
        if r:
            planes = np.pad(planes, [(0, 0), (0, 0)] + [(r, r)] * ndim, mode="edge")
        y = conv_transpose(
            planes, self.weight.astype(arr.real.dtype), stride=self.stride, padding=self.padding
        )
        return y.reshape(*lead, *y.shape[2:])


def _axis_kernel(mode: str, s: int) -> tuple[np.ndarray[Any, Any], tuple[int, int]]:
    """One axis: kernel of the upsampler for integer scale ``s``, and the crop ``(lo, hi)``."""
    reach = _REACH[mode]
    if mode == "bed_of_nails":
        return np.eye(1, s)[0], (0, 0)
    if reach == 0:
        return np.ones(s), (0, 0)
    # Output o reads input i with weight W((o + ½)/s − ½ − i) = W((u + ½ − s/2)/s), u = o − s·i,
    # nonzero for 2·reach·s consecutive u from u₀ = ⌈s/2⌉ − reach·s.
    u0 = -(-s // 2) - reach * s
    u = np.arange(2 * reach * s) + u0
    v = (u + 0.5 - s / 2) / s
    kernel = np.maximum(0.0, 1 - np.abs(v)) if reach == 1 else keys_cubic(v)
    lo = reach * s - u0  # the replicate padding shifts the input by `reach`
    return kernel, (lo, (4 * reach - 1) * s - lo)


def upsample_as_conv_transpose(
    spatial: Any,
    *,
    size: Any = None,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
) -> ConvTransposeUpsampler:
    r"""The transposed convolution (kernel, stride, crop, input padding) equal to an upsampler.

    Parameters
    ----------
    spatial : int or sequence of int
        The plane's spatial shape, as for :func:`upsample_matrix`.
    size, scale_factor : optional
        Exactly one; the scale must be a whole number ``s`` on every axis.
    mode : str
        ``"nearest"``, ``"nearest-exact"``, ``"bed_of_nails"``, ``"linear"``, ``"bilinear"``,
        ``"trilinear"`` or ``"bicubic"``.
    align_corners : bool, optional
        Must be false: aligned corners step by ``(n−1)/(m−1)``, not a stride.

    Returns
    -------
    ConvTransposeUpsampler
        ``(weight, stride, padding, input_padding, spatial)``, with ``.matrix()`` (the
        sparse ``Cᵀ·P``, equal to :func:`upsample_matrix`) and ``.apply(x)`` (through
        :func:`conv_transpose`, equal to :func:`upsample`).

    Raises
    ------
    ValueError
        For everything :func:`upsample_matrix` refuses, a mode with no kernel here (such
        as ``"area"``), a fractional scale, or ``align_corners=True``.

    See Also
    --------
    upsample_matrix, conv_transpose_matrix

    Notes
    -----
    Per axis, with stride ``s``:

    * ``nearest`` / ``nearest-exact``: ones kernel of size ``s``, no crop — the pieces
      tile the output, ``y[o] = x[⌊o/s⌋]``;
    * ``bed_of_nails``: one-hot kernel ``(1, 0, …, 0)`` of size ``s``;
    * linear family: the tent ``h[t] = Λ((t − ⌊s/2⌋ + ½)/s − ½)``, ``Λ(v) = max(0, 1 − |v|)``,
      ``t = 0 … 2s − 1`` (for ``s = 2``: ¼ ¾ ¾ ¼; odd ``s`` ends in a zero tap), on the
      input replicate-padded by 1, crop ``(s + ⌊s/2⌋, s + ⌈s/2⌉)``;
    * ``bicubic``: Keys' kernel sampled the same way, ``h[t] = W((t + u₀ + ½ − s/2)/s)``
      with ``u₀ = ⌈s/2⌉ − 2s``, ``t = 0 … 4s − 1``, on the input replicate-padded by 2,
      crop ``(4s − ⌈s/2⌉, 3s + ⌈s/2⌉)``.

    N-d kernels are outer products of the per-axis ones. Why the replicate padding:
    ``F.interpolate`` clamps source coordinates and reads at the edge
    (``align_corners=False`` uses "edge value padding"), so the border outputs
    weigh copies of the edge value. A transposed convolution of the unpadded input
    is exact in the interior only: its border rows miss the weights that fall
    outside, and come out darker (for ``s = 2`` the first output is ``¾ x₀``, not
    ``x₀``). Padding the input by the kernel's reach with its edge values supplies
    exactly those weights, and the crop grows by ``s`` per padded sample.

    The float32 coordinates of torch round ``1/s`` (e.g. ``s = 3``), so the equality
    with :func:`upsample_matrix` is to rounding for such ``s``, exact for powers of
    two; nearest indices agree exactly for every ``s`` up to 40 in float32.

    References
    ----------
    A. Odena, V. Dumoulin and C. Olah, "Deconvolution and checkerboard artifacts",
    Distill, 2016. J. Long, E. Shelhamer and T. Darrell, "Fully convolutional networks
    for semantic segmentation", CVPR 2015 (the bilinear kernel as a deconvolution init).

    Examples
    --------
    >>> import numpy as np
    >>> t = upsample_as_conv_transpose(4, scale_factor=2, mode="linear")
    >>> t.weight[0, 0], t.stride, t.padding, t.input_padding
    (array([0.25, 0.75, 0.75, 0.25]), (2,), ((3, 3),), 1)
    >>> x = np.array([[0.0, 4.0, 8.0, 4.0]])
    >>> t.apply(x)
    array([[0., 1., 3., 5., 7., 7., 5., 4.]])
    >>> from convmat import upsample
    >>> upsample(x, scale_factor=2, mode="linear")
    array([[0., 1., 3., 5., 7., 7., 5., 4.]])
    >>> n = upsample_as_conv_transpose((2, 2), scale_factor=2)
    >>> n.weight[0, 0]
    array([[1., 1.],
           [1., 1.]])
    """
    plan = resize_plan(
        spatial, size=size, scale_factor=scale_factor, mode=mode, align_corners=align_corners
    )
    if plan.mode not in _REACH:
        raise ValueError(
            f"mode must be one of {tuple(_REACH)} for a transposed-convolution equivalent; "
            f"got {plan.mode!r}"
        )
    if plan.align_corners:
        raise ValueError(
            "align_corners must be false for a transposed-convolution equivalent (aligned "
            "corners step by (n-1)/(m-1), not by a stride); got True"
        )
    scales = tuple(m // n for n, m in zip(plan.in_spatial, plan.out_spatial, strict=True))
    if any(m != s * n for n, m, s in zip(plan.in_spatial, plan.out_spatial, scales, strict=True)):
        raise ValueError(
            f"scale_factor must be a whole number on every axis for a transposed-convolution "
            f"equivalent; got output {plan.out_spatial} for input {plan.in_spatial}"
        )
    if any(s != f for s, f in zip(scales, plan.scales, strict=True) if f is not None):
        raise ValueError(
            f"scale_factor must be a whole number on every axis for a transposed-convolution "
            f"equivalent; got {plan.scales}"
        )
    kernels, crops = zip(*(_axis_kernel(plan.mode, s) for s in scales), strict=True)
    weight = kernels[0]
    for k in kernels[1:]:
        weight = np.multiply.outer(weight, k)
    return ConvTransposeUpsampler(
        weight=weight.reshape(1, 1, *(len(k) for k in kernels)),
        stride=scales,
        padding=tuple(crops),
        input_padding=_REACH[plan.mode],
        spatial=plan.in_spatial,
    )


class PixelShuffleConvTranspose(NamedTuple):
    """The transposed convolution equal to a stride-1 convolution followed by ``PixelShuffle(r)``.

    ``weight`` has torch's ``ConvTranspose2d`` layout ``(C_in, C_out, r·k_h, r·k_w)``;
    ``stride = (r, r)``; ``padding`` is one ``(low, high)`` pair per axis (symmetric, an
    int for torch, when the convolution's padding is); ``output_padding = (0, 0)``. No
    crop is ever needed.
    """

    weight: np.ndarray[Any, Any]
    stride: tuple[int, int]
    padding: tuple[tuple[int, int], ...]
    output_padding: tuple[int, int]

    def matrix(self, input_shape: Any, *, max_bytes: Any = DEFAULT_MAX_BYTES) -> sp.csr_array:
        """The transposed convolution's matrix on one sample ``(C_in, H, W)``.

        Equal to ``pixel_shuffle_matrix(...) @ conv_matrix(input_shape, w, padding=p)``.
        """
        return conv_transpose_matrix(
            input_shape,
            self.weight,
            stride=self.stride,
            padding=self.padding,
            output_padding=self.output_padding,
            max_bytes=max_bytes,
        )

    def apply(self, x: Any) -> np.ndarray[Any, Any]:
        """Run it through :func:`convmat.conv_transpose` on ``(N, C_in, H, W)`` or one sample."""
        from convmat._fast import conv_transpose

        arr = numeric_array(x, "x")
        split_planes(arr, 2, "2 spatial dims of a pixel shuffle")
        return conv_transpose(
            arr,
            self.weight.astype(np.result_type(arr.dtype, self.weight.dtype)),
            stride=self.stride,
            padding=self.padding,
            output_padding=self.output_padding,
        )


def pixel_shuffle_as_conv_transpose(
    weight: Any, upscale_factor: Any, *, padding: Any = 0
) -> PixelShuffleConvTranspose:
    r"""The stride-``r`` transposed convolution equal to a convolution then ``PixelShuffle(r)``.

    The sub-pixel convolution of Shi et al. (2016) — a stride-1 convolution to
    ``C_out·r²`` channels, then :func:`pixel_shuffle` — is a single transposed
    convolution with stride ``r`` and a rearranged, flipped kernel.

    Parameters
    ----------
    weight : array_like, shape ``(C_out·r², C_in, k_h, k_w)``
        The stride-1 convolution's weight (torch's ``Conv2d`` layout, no groups or
        dilation). Its dtype is kept (integers become float64).
    upscale_factor : int
        ``r >= 1``.
    padding : int, pair of ints, pair of (low, high) pairs, or "valid" / "same" / "full"
        The convolution's zero padding; every side must be ``<= k − 1``.

    Returns
    -------
    PixelShuffleConvTranspose
        ``(weight, stride, padding, output_padding)``: ``weight`` of shape
        ``(C_in, C_out, r·k_h, r·k_w)``, ``stride = (r, r)``, ``padding`` the pairs
        ``(r(k−1−lo), r(k−1−hi))``, ``output_padding = (0, 0)``; with ``.matrix(input_shape)``
        (equal to ``pixel_shuffle_matrix @ conv_matrix``) and ``.apply(x)``.

    Raises
    ------
    ValueError
        For a weight that is not 4-d or whose first axis is not divisible by ``r²``, for
        ``r < 1``, and for a padding side larger than ``k − 1``: such a convolution's
        outer rows read nothing but zero padding, and the equivalent would need a
        *negative* transposed padding (zeros added around the output), which no single
        transposed convolution has.
    TypeError
        For arguments of the wrong kind.

    See Also
    --------
    pixel_shuffle, pixel_shuffle_matrix, conv_transpose_matrix, upsample_as_conv_transpose

    Notes
    -----
    Along one axis the convolution then shuffle gives ``y[h r + a] = Σ_u W[(·, a), u]
    x[h + u − lo]``; the transposed convolution gives ``y[o] = Σ_m K[t] x[m]`` with
    ``o = m r + t − P``. Matching ``m = h + u − lo`` gives ``t = a + r(k − 1 − u)`` when
    ``P = r(k − 1 − lo)``, so

    .. math::

        K[i, c, a + r(k_h - 1 - u), b + r(k_w - 1 - v)] = W[c r^2 + a r + b, i, u, v],
        \qquad P = r(k - 1 - p),

    every tap of ``K`` filled exactly once (``r·k`` taps per axis). Both output sizes
    are ``r(n + lo + hi − k + 1)``, so ``output_padding = 0``. For ``p = k − 1`` ("full")
    the transposed layer has no padding; for ``p = (k − 1)/2`` ("same", odd ``k``) it has
    ``r(k − 1)/2``. With asymmetric ``(low, high)`` padding the pairs are asymmetric too,
    which :func:`conv_transpose` takes (torch's ``ConvTranspose2d`` does not).

    References
    ----------
    W. Shi, J. Caballero, L. Theis, F. Huszar, A. Aitken, C. Ledig and Z. Wang, "Is the
    deconvolution layer the same as a convolutional layer?", arXiv:1609.07009, 2016.

    Examples
    --------
    >>> import numpy as np
    >>> from convmat import conv_matrix, pixel_shuffle_matrix
    >>> w = np.arange(8.0).reshape(4, 1, 1, 2)  # C_out·r² = 4 for r = 2, a 1×2 kernel
    >>> t = pixel_shuffle_as_conv_transpose(w, 2)
    >>> t.weight[0, 0]
    array([[1., 3., 0., 2.],
           [5., 7., 4., 6.]])
    >>> t.stride, t.padding, t.output_padding
    ((2, 2), ((0, 0), (2, 2)), (0, 0))
    >>> S, C = pixel_shuffle_matrix((4, 3, 2), 2), conv_matrix((1, 3, 3), w)
    >>> (S @ C != t.matrix((1, 3, 3))).nnz
    0
    """
    w = _weight(weight)
    r = as_int(upscale_factor, "upscale_factor")
    if r < 1:
        raise ValueError(f"upscale_factor must be >= 1; got {r}")
    if w.ndim != 4:
        raise ValueError(
            f"weight must have shape (C_out·r², C_in, k_h, k_w) (a Conv2d weight); "
            f"got shape {w.shape}"
        )
    if w.shape[0] % (r * r):
        raise ValueError(
            f"weight.shape[0] must be divisible by upscale_factor² = {r * r}; got shape {w.shape}"
        )
    k = ntuple(w.shape[2:], 2, "kernel_size")
    pads = padding_pairs(padding, k, (1, 1), (1, 1))
    if any(max(p) > kk - 1 for p, kk in zip(pads, k, strict=True)):
        raise ValueError(
            f"padding must be <= kernel_size - 1 = {tuple(kk - 1 for kk in k)} on every side "
            f"for a single transposed convolution (more padding adds zero rows around the "
            f"output, a negative transposed padding); got {pads}"
        )
    c_out, c_in = w.shape[0] // (r * r), w.shape[1]
    # W[c r² + a r + b, i, u, v] -> K[i, c, a + r(k_h−1−u), b + r(k_w−1−v)]:
    # split the channel, flip the taps, then interleave taps (slow) with sub-pixels (fast).
    parts = w.reshape(c_out, r, r, c_in, *k)[..., ::-1, ::-1]  # (c, a, b, i, u', v')
    kernel = parts.transpose(3, 0, 4, 1, 5, 2).reshape(c_in, c_out, r * k[0], r * k[1])
    return PixelShuffleConvTranspose(
        weight=np.ascontiguousarray(kernel),
        stride=(r, r),
        padding=tuple(
            (r * (kk - 1 - lo), r * (kk - 1 - hi)) for (lo, hi), kk in zip(pads, k, strict=True)
        ),
        output_padding=(0, 0),
    )
