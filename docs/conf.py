"""Sphinx configuration of the convmat documentation site.

Build (offline, warnings as errors), as ``.ci/run`` does::

    python docs/vendor_mathjax.py            # optional: conf.py fetches it too
    sphinx-build -W --keep-going -b html docs docs/_build/html

Pages are MyST Markdown; the notebooks in ``notebooks/`` (reached through the
``docs/notebooks`` link) are committed without outputs and executed here on every
build, so the figures on the site always come from the current library. The API
reference is generated from the numpydoc docstrings of every name in
``convmat.__all__``, ``convmat.symbolic.__all__``, ``convmat.testing.__all__`` and
``convmat.plot.__all__``. The gallery's animations are drawn by ``convmat.animate`` while
the build starts (``write_animations``) into ``docs/generated/animations/``, which git
ignores: no GIF is committed.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from numpydoc.docscrape import NumpyDocString
from sphinx.util import logging

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS))

from vendor_mathjax import SCRIPT, ensure_mathjax  # noqa: E402

import convmat  # noqa: E402

logger = logging.getLogger("convmat.docs")

project = "convmat"
author = "the convmat developers"
copyright = "2025, the convmat developers"
release = version = convmat.__version__

extensions = [
    "myst_nb",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
]

root_doc = "index"
exclude_patterns = ["_build", "generated/README.md", "**/.ipynb_checkpoints", "Thumbs.db"]
templates_path: list[str] = []
html_static_path = ["_static"]
html_css_files = ["convmat.css"]
html_theme = "furo"
html_title = f"convmat {release}"
html_show_sourcelink = False
nitpicky = True
# Names that live in other projects' documentation (there is no intersphinx without
# network, so they stay plain text) and convmat's private modules, which are not documented.
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|scipy|sympy|torch|typing|collections)\..*"),
    (r"py:.*", r"convmat\._.*"),
]

# --- math: MathJax served from _static, never from a CDN --------------------------------
try:
    ensure_mathjax()
    mathjax_path = SCRIPT
except RuntimeError as error:  # no npm here: a dev build falls back to the CDN, CI fails (-W)
    _mathjax_error: str | None = str(error)
else:
    _mathjax_error = None
mathjax3_config = {"svg": {"fontCache": "global"}}

# --- MyST and notebooks ------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "force"  # re-run on every build: figures always match the library
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 300
nb_execution_in_temp = True  # anything a notebook writes lands in a temporary folder
nb_merge_streams = True
nb_ipywidgets_js: dict[str, Any] = {}  # no widget JavaScript from a CDN
# The pages' and notebooks' kernel ("python3") is the interpreter running this build, not
# whatever "python3" kernelspec Jupyter finds first (a user's or the system's, another Python
# without PyTorch or without this checkout of convmat): see ``pin_kernel`` below.
ORACLE = "torch"  # the comparison page and the notebooks check convmat against it

# --- API reference -----------------------------------------------------------------------
autosummary_generate = False  # stubs are written below, from __all__, before reading
autodoc_typehints = "none"  # the numpydoc Parameters/Returns sections carry the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

API_MODULES = (
    "convmat",
    "convmat.symbolic",
    "convmat.testing",
    "convmat.plot",
    "convmat.widgets",
    "convmat.dask",
)
GENERATED = DOCS / "generated"


def public_objects(module_name: str) -> dict[str, Any]:
    """``__all__`` of a module, name to object; empty while the module does not exist yet."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        return {}
    return {name: getattr(module, name) for name in sorted(getattr(module, "__all__", []))}


def write_api_stubs(_app: Any) -> None:
    """One page per public object, as autosummary would write it, kept in sync with __all__."""
    GENERATED.mkdir(exist_ok=True)
    wanted = set()
    for module_name in API_MODULES:
        for name, obj in public_objects(module_name).items():
            directive = "autoclass" if inspect.isclass(obj) else "autofunction"
            options = "   :members:\n" if inspect.isclass(obj) else ""
            full = f"{module_name}.{name}"
            text = (
                f"{full}\n{'=' * len(full)}\n\n.. currentmodule:: {module_name}\n\n"
                f".. {directive}:: {name}\n{options}"
            )
            path = GENERATED / f"{full}.rst"
            wanted.add(path.name)
            if not path.is_file() or path.read_text() != text:
                path.write_text(text)
    for stale in GENERATED.glob("*.rst"):
        if stale.name not in wanted:
            stale.unlink()


_AUTOSUMMARY = re.compile(r"^\.\. autosummary::\n((?:[ \t]+.*\n|\n)*)", re.M)
_CURRENT = re.compile(r"^\.\. currentmodule::\s+(\S+)", re.M)
UNLISTED_MARKER = ".. convmat: names exported but not yet placed in a section"


def _autosummary(module_name: str, names: list[str]) -> str:
    entries = "".join(f"   {name}\n" for name in names)
    return (
        f".. currentmodule:: {module_name}\n\n"
        f".. autosummary::\n   :toctree: generated\n   :nosignatures:\n\n{entries}\n"
    )


def add_unlisted_names(_app: Any, docname: str, source: list[str]) -> None:
    """On the API page, list every exported name no section lists, so none goes missing."""
    if docname != "api":
        return
    text = source[0]
    listed: set[str] = set()
    module = "convmat"
    for match in sorted(
        [*_AUTOSUMMARY.finditer(text), *_CURRENT.finditer(text)], key=lambda m: m.start()
    ):
        if match.re is _CURRENT:
            module = match.group(1)
            continue
        for line in match.group(1).splitlines():
            line = line.strip()
            if line and not line.startswith(":"):
                listed.add(line if line.startswith("convmat.") else f"{module}.{line}")
    blocks = []
    for module_name in API_MODULES:
        extra = [
            name for name in public_objects(module_name) if f"{module_name}.{name}" not in listed
        ]
        if extra:
            blocks.append(_autosummary(module_name, extra))
    block = ""
    if blocks:
        block = "More\n----\n\nExported names not yet placed in a section above.\n\n" + "".join(
            blocks
        )
    source[0] = text.replace(UNLISTED_MARKER, block)


def describe_tuple_fields(
    _app: Any, what: str, name: str, obj: Any, _options: Any, lines: list[str]
) -> None:
    """A NamedTuple field's docstring is "Alias for field number N": use the class's words.

    The fields stay documented members (so ``:attr:`field``` links resolve) and say what
    the class's numpydoc ``Attributes`` section says about them.
    """
    if what not in ("attribute", "property") or not "".join(lines).startswith("Alias for field"):
        return
    owner_name, _, field = name.rpartition(".")
    module_name, _, class_name = owner_name.rpartition(".")
    owner = getattr(sys.modules.get(module_name), class_name, None)
    for entry in NumpyDocString(inspect.getdoc(owner) or "")["Attributes"]:
        if entry.name == field:
            lines[:] = [*entry.desc, "", f"*Type:* {entry.type}"] if entry.type else entry.desc
            return


def private_helper_reference(_app: Any, _env: Any, node: Any, contnode: Any) -> Any:
    """A docstring naming a private helper (e.g. ``downscale`` of ``convmat._demo``) gets
    plain text, as ``convmat._*`` targets do; any other unresolved name still warns."""
    if node.get("refdomain") != "py":
        return None
    name = node.get("reftarget", "").rpartition(".")[2]
    public = {n for module in API_MODULES for n in public_objects(module)}
    private = [
        module
        for module_name, module in sys.modules.items()
        if module_name.startswith("convmat._") and hasattr(module, name)
    ]
    return contnode if private and name not in public else None


def reread_api_page(_app: Any, _env: Any, _added: Any, _changed: Any, _removed: Any) -> list[str]:
    """The API page depends on ``__all__``, not only on its own text: read it on every build."""
    return ["api"]


def pin_kernel(app: Any) -> None:
    """Run every page and notebook in this interpreter, which must have the oracle.

    Jupyter looks for a kernel named ``python3`` in ``JUPYTER_PATH`` first, so a kernelspec
    written there (in the build's doctree folder) whose command is ``sys.executable`` wins
    over any other. A build without PyTorch would show no comparison with it: warn (an error
    under ``-W``) before executing anything.
    """
    data = Path(app.doctreedir) / "jupyter"
    spec = data / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    kernel = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (the docs build's interpreter)",
        "language": "python",
    }
    (spec / "kernel.json").write_text(json.dumps(kernel, indent=1))
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [str(data), *filter(None, os.environ.get("JUPYTER_PATH", "").split(os.pathsep))]
    )
    if importlib.util.find_spec(ORACLE) is None:
        logger.warning(
            "PyTorch is not installed in %s, which executes the pages: the comparison page "
            "needs it (pip install torch, as .ci/run does before building)",
            sys.executable,
        )


# --- the gallery's animations -------------------------------------------------------------
ANIMATIONS = GENERATED / "animations"
#: Every animation of the gallery page: its file name and the arguments of convmat.animate,
#: exactly as the page writes them (``tests/test_animate.py`` checks that they agree).
GALLERY = {
    "no_padding_no_strides": "(4, 4), 3",
    "arbitrary_padding_no_strides": "(5, 5), 4, padding=2",
    "same_padding_no_strides": "(5, 5), 3, padding=1",
    "full_padding_no_strides": "(5, 5), 3, padding=2",
    "no_padding_strides": "(5, 5), 3, stride=2",
    "padding_strides": "(5, 5), 3, stride=2, padding=1",
    "padding_strides_odd": "(6, 6), 3, stride=2, padding=1",
    "dilation": "(7, 7), 3, dilation=2",
    "no_padding_no_strides_transposed": '(2, 2), 3, transposed=True, view="zeros"',
    "arbitrary_padding_no_strides_transposed": (
        '(6, 6), 4, padding=2, transposed=True, view="zeros"'
    ),
    "same_padding_no_strides_transposed": '(5, 5), 3, padding=1, transposed=True, view="zeros"',
    "full_padding_no_strides_transposed": '(7, 7), 3, padding=2, transposed=True, view="zeros"',
    "no_padding_strides_transposed": '(2, 2), 3, stride=2, transposed=True, view="zeros"',
    "padding_strides_transposed": '(3, 3), 3, stride=2, padding=1, transposed=True, view="zeros"',
    "padding_strides_odd_transposed": (
        '(3, 3), 3, stride=2, padding=1, output_padding=1, transposed=True, view="zeros"'
    ),
    "scatter_strides_transposed": "(2, 2), 3, stride=2, transposed=True",
    "walkthrough": "(2, 2), 2, transposed=True, values=[[0, 1], [2, 3]], kernel=[[0, 1], [2, 3]]",
    "walkthrough_symbols": '(2, 2), 2, transposed=True, symbols=True, view="matrix"',
    "matrix_symbols": '(4, 4), 3, symbols=True, view="matrix"',
}
#: The modules whose code decides what the animations look like.
DRAWN_BY = ("_animate", "_frames", "_pattern", "_layer", "_args", "_shapes", "_matrix", "plot")


def animation_arguments(text: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The positional and keyword arguments that ``convmat.animate(<text>)`` passes."""

    def call(*args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return args, kwargs

    return eval(f"call({text})", {"__builtins__": {}, "call": call, "True": True})


def write_animations(_app: Any) -> None:
    """Draw the gallery's GIFs into ``generated/animations`` (skipped when up to date).

    The stamp is a hash of the sources that draw them, matplotlib's version and the
    gallery list: a change to any of them redraws them all, an unchanged tree costs nothing.
    """
    import matplotlib

    digest = hashlib.sha256(repr((GALLERY, matplotlib.__version__)).encode())
    for name in DRAWN_BY:
        digest.update((DOCS.parent / "convmat" / f"{name}.py").read_bytes())
    stamp = ANIMATIONS / "stamp"
    wanted = {ANIMATIONS / f"{name}.gif" for name in GALLERY}
    ANIMATIONS.mkdir(parents=True, exist_ok=True)
    for stale in set(ANIMATIONS.glob("*.gif")) - wanted:
        stale.unlink()
    if stamp.is_file() and stamp.read_text() == digest.hexdigest():
        if all(path.is_file() for path in wanted):
            return
    animate = (
        getattr(convmat, "animate", None) or importlib.import_module("convmat._animate").animate
    )
    import logging as std_logging

    quiet = std_logging.getLogger("matplotlib.animation")  # "Animation.save using ..." per GIF
    level = quiet.level
    quiet.setLevel(std_logging.WARNING)
    try:
        for name, text in GALLERY.items():
            args, kwargs = animation_arguments(text)
            animate(*args, **kwargs).save(ANIMATIONS / f"{name}.gif", writer="pillow")
    finally:
        quiet.setLevel(level)
    stamp.write_text(digest.hexdigest())


def report_mathjax(_app: Any) -> None:
    if _mathjax_error is not None:
        logger.warning("MathJax is not vendored, the site loads it from a CDN: %s", _mathjax_error)


def setup(app: Any) -> None:
    app.connect("builder-inited", write_api_stubs)
    app.connect("builder-inited", pin_kernel)
    app.connect("builder-inited", report_mathjax)
    app.connect("builder-inited", write_animations)
    app.connect("source-read", add_unlisted_names)
    app.connect("env-get-outdated", reread_api_page)
    app.connect("autodoc-process-docstring", describe_tuple_fields)
    app.connect("missing-reference", private_helper_reference)
