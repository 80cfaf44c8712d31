"""Checks of the documentation sources that need no build: what the pages say and whether
their code and tables fit the page.

The site's content column is 46em wide (furo): a code line of more than ``CODE_COLUMNS``
characters does not fit it at the code font and would be clipped at the box's edge. The
benchmarks page quotes wider script output; those blocks carry the ``benchmark-output``
class, whose smaller font and sideways scrolling ``docs/_static/convmat.css`` defines.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(DOCS.glob("*.md"))
CODE_COLUMNS = 88
# A fence opens with three or more backticks or colons and closes with the same.
FENCE = re.compile(r"^(`{3,}|:{3,})(.*)$")


def blocks(text: str) -> list[tuple[str, list[str], list[str]]]:
    """Fenced blocks of a MyST page: (info string, option lines, content lines)."""
    found = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        marker, info = opening.groups()
        body = []
        i += 1
        while i < len(lines) and lines[i].rstrip() != marker:
            body.append(lines[i])
            i += 1
        options = []
        while body and body[0].startswith(":") and info.startswith("{"):
            options.append(body.pop(0))
        found.append((info.strip(), options, body))
        i += 1
    return found


def test_the_pages_are_found() -> None:
    names = {page.name for page in PAGES}
    assert {"benchmarks.md", "comparison.md", "conventions.md", "getting-started.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_pages_speak_of_the_project_not_of_its_issues(page: Path) -> None:
    # Regression: the benchmarks page called its targets "the issue's goal".
    text = page.read_text()
    words = re.findall(r"\b(issues?|issue's|engineers?'?|uncommitted)\b", text, re.I)
    assert not words, f"{page.name} speaks of {sorted(set(words))}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_code_lines_fit_the_content_column(page: Path) -> None:
    # Regression: getting-started's code cells had lines of up to 95 characters, cut off at
    # the right edge of their box.
    too_long = [
        line
        for info, options, body in blocks(page.read_text())
        if ":class: benchmark-output" not in options
        for line in body
        if len(line) > CODE_COLUMNS
    ]
    assert not too_long, f"{page.name}: lines over {CODE_COLUMNS} characters: {too_long}"


def test_benchmark_tables_scroll_in_their_own_box() -> None:
    # Regression: the benchmark tables ran past the right edge of the content column.
    fenced = blocks((DOCS / "benchmarks.md").read_text())
    wide = [body for info, options, body in fenced if max(map(len, body), default=0) > 88]
    assert wide, "the benchmarks page quotes no wide table any more: drop this test"
    for info, options, body in fenced:
        assert info == "{code-block} text" and options == [":class: benchmark-output"], body[:2]
    css = (DOCS / "_static" / "convmat.css").read_text()
    rule = re.search(r"div\.benchmark-output pre \{([^}]*)\}", css)
    assert rule and "font-size" in rule.group(1)
    assert re.search(r"div\.highlight pre[^{]*\{[^}]*overflow-x: auto", css)


def test_display_math_keeps_two_formulas_on_two_lines() -> None:
    # Regression: the conv and transposed output sizes sat side by side in one line wider
    # than the page, cut off at "+ d(k-1) + ou".
    text = (DOCS / "conventions.md").read_text()
    for math in re.findall(r"^\$\$\n(.*?)\n\$\$", text, re.S | re.M):
        if r"n_\text{transposed}" in math:
            rows = re.split(r"\\\\", math)
            assert not any(r"n_\text{conv}" in row and "transposed" in row for row in rows)
            break
    else:
        raise AssertionError("the output-size formulas are no longer on the conventions page")


def test_the_comparison_page_always_runs_pytorch() -> None:
    # Regression: the page printed "PyTorch is not installed here" instead of the comparison.
    text = (DOCS / "comparison.md").read_text()
    cells = [body for info, _, body in blocks(text) if info.startswith("{code-cell}")]
    assert any("import torch" in body for body in cells)
    assert "has_torch" not in text and "not installed" not in text
    conf = (DOCS / "conf.py").read_text()
    assert "sys.executable" in conf and "JUPYTER_PATH" in conf
