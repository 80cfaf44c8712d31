"""Short displays of result objects: a NumPy-like summary of an array, an HTML table.

A result that ends a notebook cell shows its shapes and key figures, never its data;
the data stay one attribute away.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np


def summary(a: Any) -> str:
    """``float64 (1, 8, 8) in [-1.2, 3.4]``: dtype, shape and range of an array."""
    array = np.asarray(a)
    head = f"{array.dtype} {tuple(array.shape)}"
    if array.size == 0 or array.dtype.kind not in "biuf":
        return head
    return f"{head} in [{array.min():.4g}, {array.max():.4g}]"


def html_table(head: Sequence[str], rows: Sequence[Sequence[Any]], caption: str = "") -> str:
    """A small HTML table; cells are escaped, numbers right-aligned."""

    def cell(tag: str, value: Any) -> str:
        align = " style='text-align:right'" if isinstance(value, (int, float)) else ""
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        return f"<{tag}{align}>{html.escape(text)}</{tag}>"

    top = f"<caption>{caption}</caption>" if caption else ""
    th = "".join(cell("th", h) for h in head)
    body = "".join("<tr>" + "".join(cell("td", v) for v in row) + "</tr>" for row in rows)
    return f"<table>{top}<thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"
