"""The fast NumPy path: convolution and transposed convolution without building a matrix.

One module per algorithm, a planner choosing among them, and the public entry points:

* :mod:`~convmat._fast.api` — :func:`conv`, :func:`conv_transpose` and
  :func:`explain_plan`: check the arguments, run the planned (or the named) method.
* :mod:`~convmat._fast.planner` — the cost model: every method's counted work
  turned into predicted seconds, one method per layer, cached (:class:`Plan`).
* :mod:`~convmat._fast.cost` — :class:`Counts` and the calibrated machine constants.
* :mod:`~convmat._fast.direct` — the tap-sum engine: one GEMM (or AXPY) per kernel
  tap on shifted views of the padded, stride-phase-split input. The workhorse.
* :mod:`~convmat._fast.teaching` — the textbook recipes of the transposed layer
  (``"scatter"``, ``"fractional"``, ``"matrix"``), for comparison.
"""

from convmat._fast.api import CONV_METHODS, METHODS, conv, conv_transpose, explain_plan
from convmat._fast.direct import NP_MODES, QUIET, clear_scratch, conv_engine, conv_transpose_engine
from convmat._fast.planner import Plan
from convmat._fast.teaching import zero_insert

__all__ = [
    "CONV_METHODS",
    "METHODS",
    "NP_MODES",
    "QUIET",
    "Plan",
    "clear_scratch",
    "conv",
    "conv_engine",
    "conv_transpose",
    "conv_transpose_engine",
    "explain_plan",
    "zero_insert",
]
