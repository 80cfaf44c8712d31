"""Optional dependencies: one clear ``ModuleNotFoundError`` when one is missing.

matplotlib is only a ``test``/``docs`` extra. The functions that need it (the sample
photograph, :mod:`convmat.plot`, the super-resolution demo's PNGs) import it inside
themselves, after :func:`require_matplotlib` has said what to install.
"""

from __future__ import annotations

import importlib


def require_matplotlib(purpose: str) -> None:
    """Import matplotlib, or raise a ``ModuleNotFoundError`` naming ``purpose`` and the fix.

    >>> require_matplotlib("convmat.plot.grid")
    """
    try:
        importlib.import_module("matplotlib")
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            f"{purpose} needs matplotlib; pip install matplotlib (or convmat[test])"
        ) from err
