"""Colour constants shared by the sample photograph and the pictures.

A leaf module (it imports nothing from convmat), so :mod:`convmat._demo` and
:mod:`convmat.plot` both read it without importing each other.
"""

from __future__ import annotations

#: ITU-R BT.601 luma weights: grayscale = 0.299 R + 0.587 G + 0.114 B.
LUMA = (0.299, 0.587, 0.114)
