"""The README's command-line blocks are the real output at 80 columns; its install advice holds.

Regression cases of issue 12, classes 12 (the README's ``convmat shape --mirror`` and
``convmat overlap`` blocks were ~105 columns wide), 14 (the CPU build of torch on Linux)
and 15 (the antlr4 runtime SymPy's LaTeX parser needs, pinned in the test extra).
"""

from __future__ import annotations

import re
import shlex
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path

import pytest

from convmat.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def console_runs(verb: str) -> list[tuple[str, list[str]]]:
    """Each ``$ convmat VERB ...`` of the README's console blocks with the lines it shows."""
    runs = []
    for block in re.findall(r"```console\n(.*?)```", README, re.DOTALL):
        command, shown = None, []
        for line in [*block.splitlines(), "$ end"]:
            if line.startswith("$ "):
                if command is not None:
                    runs.append((command, shown))
                command, shown = line[2:], []
            else:
                shown.append(line)
        runs = [(c, s) for c, s in runs if c.startswith(f"convmat {verb} ")]
    return runs


@pytest.mark.parametrize("verb", ["shape", "overlap"])
def test_readme_blocks_are_the_output_at_80_columns(
    verb: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    runs = [(c, s) for c, s in console_runs(verb) if s]
    assert runs
    for command, shown in runs:
        assert len(f"$ {command}") <= 80
        assert main(shlex.split(command.split("#")[0])[1:]) == 0
        out = capsys.readouterr().out
        assert out.splitlines() == shown
        assert max(map(len, shown)) <= 80


def test_readme_explain_captions_fit_80_columns() -> None:
    (block,) = [b for b in re.findall(r"```console\n(.*?)```", README, re.DOTALL) if "explain" in b]
    captions = [line for line in block.splitlines() if line[:1].isalpha()]
    assert captions and max(map(len, captions)) <= 80


def test_readme_says_how_to_get_the_cpu_build_of_torch_on_linux() -> None:
    text = " ".join(README.split())
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in text
    assert "(the CPU build)" not in text  # the plain install is the CUDA build on Linux
    # CI stays as it is: the README's test command verbatim after the oracle.
    assert 'pip install -e ".[test]" && pytest' in (ROOT / ".ci" / "run").read_text()


def test_the_test_extra_pins_the_antlr4_runtime_sympy_needs() -> None:
    if sys.version_info >= (3, 11):
        import tomllib

        extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
            "optional-dependencies"
        ]["test"]
    else:  # pragma: no cover - Python 3.10 has no tomllib
        extra = re.findall(r'"([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert "antlr4-python3-runtime==4.11.*" in extra
    try:
        runtime = installed_version("antlr4-python3-runtime")
    except PackageNotFoundError:
        pytest.skip("the test extra is not installed")
    # Installed from the extra, the LaTeX round-trip test runs instead of skipping.
    assert runtime.startswith("4.11.")
