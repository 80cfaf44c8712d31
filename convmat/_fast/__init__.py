"""The fast NumPy path: convolution and transposed convolution without building a matrix.

One module per algorithm, plus the public entry points:

* :mod:`~convmat._fast.api` — :func:`conv` and :func:`conv_transpose`: check the
  arguments, run the chosen algorithm.
* :mod:`~convmat._fast.direct` — the tap-sum engine: one GEMM (or AXPY) per kernel
  tap on shifted views of the padded, stride-phase-split input. The workhorse.
* :mod:`~convmat._fast.teaching` — the textbook recipes of the transposed layer
  (``"scatter"``, ``"fractional"``, ``"matrix"``), for comparison.
"""

from convmat._fast.api import METHODS, conv, conv_transpose
from convmat._fast.direct import NP_MODES, QUIET, clear_scratch, conv_engine, conv_transpose_engine
from convmat._fast.teaching import zero_insert

__all__ = [
    "METHODS",
    "NP_MODES",
    "QUIET",
    "clear_scratch",
    "conv",
    "conv_engine",
    "conv_transpose",
    "conv_transpose_engine",
    "zero_insert",
]
