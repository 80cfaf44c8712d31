"""The notebooks in ``notebooks/`` run top to bottom, as committed, on every test run.

Each notebook is executed in a fresh Jupyter kernel (nbclient, as nbmake does): a cell that
raises fails its test, and so does anything written to stderr (a warning, a traceback
printed by a library), so notebooks stay as clean as the test suite's
``filterwarnings = error``. Notebooks are committed without outputs (the documentation
site executes them and shows the figures), and they use only convmat's public API.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
PRIVATE = re.compile(r"\bconvmat\._|\bfrom\s+convmat\s+import\s+_|\bconvmat\.\w+\._")


def _code_cells(nb: Any) -> list[Any]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def test_the_eight_notebooks_are_all_there() -> None:
    assert [int(path.name[:2]) for path in NOTEBOOKS] == [1, 2, 3, 4, 5, 6, 7, 8], NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in _code_cells(nb):
        assert cell.outputs == [], f"{path.name}: committed with outputs"
        assert cell.execution_count is None, f"{path.name}: committed with execution counts"
        assert not PRIVATE.search(cell.source), f"{path.name} uses a private name:\n{cell.source}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, with the traceback, on a failing cell
    stderr = [
        output.text
        for cell in _code_cells(nb)
        for output in cell.outputs
        if output.output_type == "stream" and output.name == "stderr"
    ]
    assert not stderr, f"{path.name} wrote to stderr:\n" + "\n".join(stderr)
