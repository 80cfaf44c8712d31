"""Long work says so: a warning before a long single LAPACK call, progress bars for loops.

A dense SVD is one LAPACK call: it cannot report progress, so it is announced
with :class:`SlowWarning` naming its estimated time and the faster way. Loops over
chunks go through :func:`progress`, which shows a ``tqdm`` bar only when tqdm is
installed (it is not a dependency) *and* someone watches: stderr is a terminal, or
the code runs in Jupyter. In tests, pipes and logs nothing is printed.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

#: Sustained rate assumed for time estimates (floating-point operations per second):
#: a laptop core with an optimised BLAS. Estimates are rough by design.
ASSUMED_FLOPS = 5e9


class SlowWarning(UserWarning):
    """A call is about to take long (seconds to hours) and cannot show progress.

    Raised before the work starts, with the estimated time and a faster way. Silence it
    with ``warnings.simplefilter("ignore", convmat.SlowWarning)``.
    """


def dense_svd_flops(rows: int, cols: int) -> float:
    """Floating-point operations of the singular values (no vectors) of a dense ``rows × cols``.

    Golub–Van Loan's count for bidiagonalisation, which dominates: ``4·m·n² − 4n³/3``
    with ``m = max(rows, cols)``, ``n = min(rows, cols)``.

    >>> round(dense_svd_flops(2000, 2000) / 1e9, 3)
    21.333
    """
    m, n = max(rows, cols), min(rows, cols)
    return 4.0 * m * n * n - 4.0 * n**3 / 3.0


def dense_svd_seconds(rows: int, cols: int) -> float:
    """Estimated seconds of a values-only dense SVD at :data:`ASSUMED_FLOPS`."""
    return dense_svd_flops(rows, cols) / ASSUMED_FLOPS


#: Dense SVDs above the cost of a 2000 × 2000 one (about 4 s at the assumed rate) warn.
SLOW_SVD_FLOPS = dense_svd_flops(2000, 2000)


def _duration(seconds: float) -> str:
    """``4 s``, ``3.5 min``, ``2.1 h`` style durations for messages.

    >>> _duration(4.26), _duration(210), _duration(7560)
    ('4 s', '3.5 min', '2.1 h')
    """
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def warn_dense_svd(rows: int, cols: int, what: str, *, stacklevel: int = 3) -> None:
    """Warn (:class:`SlowWarning`) before a dense SVD costlier than :data:`SLOW_SVD_FLOPS`."""
    if dense_svd_flops(rows, cols) <= SLOW_SVD_FLOPS:
        return
    warnings.warn(
        f"dense SVD of a {rows}x{cols} {what} takes about "
        f"{_duration(dense_svd_seconds(rows, cols))} (estimated at "
        f"{ASSUMED_FLOPS / 1e9:.0f} GFLOP/s) and shows no progress; pass k= for the k "
        f"largest singular values by svds, which is much faster",
        SlowWarning,
        stacklevel=stacklevel,
    )


def _watched() -> bool:
    """Whether a person sees stderr: a terminal, or a Jupyter kernel."""
    shell = sys.modules.get("IPython")
    if shell is not None:
        ipython = getattr(shell, "get_ipython", lambda: None)()
        if type(ipython).__name__ == "ZMQInteractiveShell":
            return True
    stream = sys.stderr
    return stream is not None and hasattr(stream, "isatty") and stream.isatty()


def progress(iterable: Iterable[T], *, total: int, desc: str) -> Iterator[T]:
    """``iterable``, with a tqdm bar when tqdm is installed and someone watches.

    Silent otherwise (tqdm missing, output piped, tests): the items pass unchanged.
    """
    if importlib.util.find_spec("tqdm") is None or not _watched():
        yield from iterable
        return
    from tqdm.auto import tqdm  # type: ignore[import-untyped, unused-ignore]

    bar: Any = tqdm(iterable, total=total, desc=desc, leave=False)
    yield from bar
