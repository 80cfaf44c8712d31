"""The package itself: a light import, an explicit public API, typed, runnable as a command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import convmat


def test_import_is_light() -> None:
    """`import convmat` pulls in neither SymPy nor PyTorch nor matplotlib."""
    code = (
        "import sys, convmat; "
        "heavy = [m for m in ('sympy', 'torch', 'matplotlib') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_all_names_exist_and_are_documented() -> None:
    assert convmat.__all__ == sorted(convmat.__all__)
    for name in convmat.__all__:
        obj = getattr(convmat, name)
        assert obj.__doc__, name
        assert obj.__module__.startswith("convmat"), name
        if callable(obj) and not isinstance(obj, type):
            assert "Examples" in obj.__doc__, f"{name} has no Examples section"


def test_typed_marker_is_shipped() -> None:
    assert (Path(convmat.__file__).parent / "py.typed").exists()


def test_console_script_and_module_agree() -> None:
    module = subprocess.run(
        [sys.executable, "-m", "convmat", "--help"], capture_output=True, text=True, check=True
    )
    assert "explain" in module.stdout and "shape" in module.stdout
