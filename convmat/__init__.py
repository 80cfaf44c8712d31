"""convmat — convolution and transposed convolution made visible.

The explicit sparse matrix C of any convolution layer, the transposed layer as
Cᵀ, shape arithmetic, and (in :mod:`convmat.symbolic`) exact formulas.
Conventions are PyTorch's: channels first, cross-correlation, C-order flattening.
"""

from convmat._affine import AffineMap, AffineOperator, MapLayer
from convmat._animate import animate
from convmat._avgpool import (
    adaptive_avg_pool,
    adaptive_avg_pool_matrix,
    avg_pool,
    avg_pool_matrix,
)
from convmat._checkerboard import (
    Checkerboard,
    checkerboard,
    overlap_map,
    periodic_energy,
    phase_means,
    resize_conv_matrix,
    stack_overlap,
)
from convmat._demo import SuperResolution, load_photo, superres_demo
from convmat._fast import conv, conv_transpose, explain_plan, zero_insert
from convmat._flax import from_flax
from convmat._frames import Frame, Frames, frames
from convmat._keras import from_keras, to_channels_first
from convmat._lax import lax_conv_matrix, lax_conv_transpose_matrix
from convmat._learn import KernelFit, fit_kernel, weight_matrix
from convmat._matrix import conv_matrix, conv_transpose_matrix
from convmat._operator import (
    ConvOperator,
    DeconvolveResult,
    conv_operator,
    conv_transpose_operator,
    deconvolve,
)
from convmat._pad import pad, pad_matrix
from convmat._pool import max_pool, max_pool_matrix, max_unpool, max_unpool_matrix
from convmat._progress import SlowWarning
from convmat._relations import (
    ConvTransposeUpsampler,
    PixelShuffleConvTranspose,
    pixel_shuffle_as_conv_transpose,
    upsample_as_conv_transpose,
)
from convmat._shapes import (
    conv_output_shape,
    conv_transpose_output_padding,
    conv_transpose_output_shape,
)
from convmat._shuffle import (
    pixel_shuffle,
    pixel_shuffle_matrix,
    pixel_unshuffle,
    pixel_unshuffle_matrix,
)
from convmat._spectrum import (
    DeconvolutionReport,
    circular_singular_values,
    conv_singular_values,
    deconvolution_report,
)
from convmat._torch import from_torch
from convmat._translate import LayerSpec, Translation, translate
from convmat._unfold import fold, unfold, unfold_matrix
from convmat._upsample import upsample, upsample_matrix

__version__ = "0.1.0"

__all__ = [
    "AffineMap",
    "AffineOperator",
    "Checkerboard",
    "ConvOperator",
    "ConvTransposeUpsampler",
    "DeconvolutionReport",
    "DeconvolveResult",
    "Frame",
    "Frames",
    "KernelFit",
    "LayerSpec",
    "MapLayer",
    "PixelShuffleConvTranspose",
    "SlowWarning",
    "SuperResolution",
    "Translation",
    "adaptive_avg_pool",
    "adaptive_avg_pool_matrix",
    "animate",
    "avg_pool",
    "avg_pool_matrix",
    "checkerboard",
    "circular_singular_values",
    "conv",
    "conv_matrix",
    "conv_operator",
    "conv_output_shape",
    "conv_singular_values",
    "conv_transpose",
    "conv_transpose_matrix",
    "conv_transpose_operator",
    "conv_transpose_output_padding",
    "conv_transpose_output_shape",
    "deconvolution_report",
    "deconvolve",
    "explain_plan",
    "fit_kernel",
    "fold",
    "frames",
    "from_flax",
    "from_keras",
    "from_torch",
    "lax_conv_matrix",
    "lax_conv_transpose_matrix",
    "load_photo",
    "max_pool",
    "max_pool_matrix",
    "max_unpool",
    "max_unpool_matrix",
    "overlap_map",
    "pad",
    "pad_matrix",
    "periodic_energy",
    "phase_means",
    "pixel_shuffle",
    "pixel_shuffle_as_conv_transpose",
    "pixel_shuffle_matrix",
    "pixel_unshuffle",
    "pixel_unshuffle_matrix",
    "resize_conv_matrix",
    "stack_overlap",
    "superres_demo",
    "to_channels_first",
    "translate",
    "unfold",
    "unfold_matrix",
    "upsample",
    "upsample_as_conv_transpose",
    "upsample_matrix",
    "weight_matrix",
    "zero_insert",
]
