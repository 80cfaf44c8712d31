"""Put MathJax into ``docs/_static/mathjax/`` so the built site renders math offline.

Sphinx loads MathJax from a CDN by default; a site built and read without network
would show raw TeX. This fetches the npm ``mathjax`` package with ``npm pack`` (the
npm registry is reachable where the docs are built), checks the tarball against the
pinned integrity hash, and extracts only ``es5/tex-svg-full.js`` — one self-contained
file (SVG output with its fonts and every TeX extension built in, so nothing is
loaded lazily from elsewhere) — plus the package's licence. Nothing of it is
committed: ``docs/_static/mathjax/`` is in ``.gitignore``.

Run it directly (``python docs/vendor_mathjax.py``); ``docs/conf.py`` also calls
:func:`ensure_mathjax` so a plain ``sphinx-build`` fetches it on first use.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "3.2.2"
INTEGRITY = (  # npm's "integrity" of the tarball: sha512, base64
    "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/"
    "O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="
)
MEMBERS = {"package/es5/tex-svg-full.js": "tex-svg-full.js", "package/LICENSE": "LICENSE"}
TARGET = Path(__file__).resolve().parent / "_static" / "mathjax"
SCRIPT = "mathjax/tex-svg-full.js"  # relative to _static: the value of ``mathjax_path``


def _stamp(target: Path) -> Path:
    return target / "VERSION"


def is_vendored(target: Path = TARGET) -> bool:
    """Whether the pinned MathJax is already in place."""
    stamp = _stamp(target)
    return (
        stamp.is_file()
        and stamp.read_text().strip() == VERSION
        and all((target / name).is_file() for name in MEMBERS.values())
    )


def _check_integrity(tarball: Path) -> None:
    algorithm, _, expected = INTEGRITY.partition("-")
    digest = base64.b64encode(hashlib.new(algorithm, tarball.read_bytes()).digest()).decode()
    if digest != expected:
        raise RuntimeError(
            f"mathjax@{VERSION} tarball must have integrity {INTEGRITY}; got {algorithm}-{digest}"
        )


def ensure_mathjax(target: Path = TARGET) -> Path:
    """Fetch and unpack the pinned MathJax into ``target`` unless it is there; return the script.

    Raises
    ------
    RuntimeError
        When ``npm`` is missing, ``npm pack`` fails, or the tarball's hash is wrong.
    """
    if is_vendored(target):
        return target / MEMBERS["package/es5/tex-svg-full.js"]
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm must be installed to vendor MathJax; got no npm on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run(
            [npm, "pack", f"mathjax@{VERSION}", "--pack-destination", tmp, "--silent"],
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0:
            raise RuntimeError(f"npm pack mathjax@{VERSION} failed: {run.stderr.strip()}")
        tarball = Path(tmp) / f"mathjax-{VERSION}.tgz"
        _check_integrity(tarball)
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarball) as tar:
            for member, name in MEMBERS.items():
                source = tar.extractfile(member)
                if source is None:
                    raise RuntimeError(f"mathjax@{VERSION} must contain {member}; it does not")
                (target / name).write_bytes(source.read())
    _stamp(target).write_text(VERSION + "\n")
    return target / MEMBERS["package/es5/tex-svg-full.js"]


if __name__ == "__main__":
    path = ensure_mathjax()
    print(f"MathJax {VERSION}: {path} ({path.stat().st_size / 2**20:.1f} MiB)", file=sys.stderr)
