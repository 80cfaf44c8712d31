"""The super-resolution demo: fixed upsamplers against transposed convolutions fitted to data.

A real photograph (Grace Hopper, shipped with matplotlib as sample data) is made
grayscale, downscaled ×2 by 2×2 averaging and upsampled back by every method;
PSNR against the original says which wins, and the error maps show where the
k=3, s=2 transposed convolution leaves its checkerboard.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from convmat._checkerboard import periodic_energy, phase_means
from convmat._color import LUMA
from convmat._fast import conv, conv_transpose
from convmat._learn import KernelFit, fit_kernel
from convmat._optional import require_matplotlib
from convmat._progress import progress
from convmat._upsample import upsample

Array = np.ndarray[Any, Any]

#: The image files among matplotlib's sample data that :func:`load_photo` reads.
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


def load_photo(name: str = "grace_hopper.jpg") -> Array:
    """A sample photograph shipped with matplotlib, as a grayscale float64 image in ``[0, 1]``.

    The test picture of the notebooks and of :func:`superres_demo`: real texture (hair,
    fabric, edges), so upsamplers and their artifacts look as they would on data, and no
    download (matplotlib ships it).

    Parameters
    ----------
    name : str
        An image file of matplotlib's sample data (``matplotlib.cbook.get_sample_data``):
        ``"grace_hopper.jpg"`` (the default, a 600×512 portrait of Grace Hopper),
        ``"logo2.png"`` or ``"Minduka_Present_Blue_Pack.png"``.

    Returns
    -------
    ndarray, shape ``(H, W)``, float64
        The BT.601 luma of the image, in ``[0, 1]``. Add the batch and channel axes,
        ``photo[None, None]``, to pass it to a layer.

    Raises
    ------
    TypeError
        If ``name`` is not a str.
    ValueError
        If ``name`` is not a ``.jpg`` or ``.png`` file of matplotlib's sample data.
    ModuleNotFoundError
        When matplotlib (the ``test`` and ``docs`` extras) is not installed.

    See Also
    --------
    superres_demo : upsamples this photograph every way and scores each.
    convmat.plot.image : draws it.

    Notes
    -----
    Pixel values are ``(0.299 R + 0.587 G + 0.114 B) / 255`` for an 8-bit RGB file (ITU-R
    BT.601 luma; matplotlib reads a PNG as floats in ``[0, 1]`` already, so there the
    division is skipped). An alpha channel is dropped; a grayscale file is kept as it is.

    Examples
    --------
    >>> import numpy as np
    >>> import convmat
    >>> photo = convmat.load_photo()
    >>> photo.shape, photo.dtype
    ((600, 512), dtype('float64'))
    >>> bool(0.0 <= photo.min() < photo.max() <= 1.0)
    True

    Batch and channel axes first, as the layers take it; a 2×2 average halves it:

    >>> convmat.conv(photo[None, None], np.full((1, 1, 2, 2), 0.25), stride=2).shape
    (1, 1, 300, 256)
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str; got {type(name).__name__}")
    require_matplotlib("load_photo")
    from matplotlib import cbook, image

    path = Path(cbook.get_sample_data(name, asfileobj=False))
    if path.suffix.lower() not in PHOTO_SUFFIXES or not path.is_file():
        raise ValueError(
            "name must be a .jpg or .png file of matplotlib's sample data, such as "
            f"'grace_hopper.jpg'; got {name!r}"
        )
    rgb = np.asarray(image.imread(path))
    scale = 255.0 if rgb.dtype == np.uint8 else 1.0
    gray = rgb.astype(np.float64) if rgb.ndim == 2 else rgb[..., :3].astype(np.float64) @ LUMA
    return np.asarray(gray / scale)


def downscale(image: Array, factor: int = 2) -> Array:
    """``image`` averaged over ``factor × factor`` blocks (a box-kernel conv of that stride).

    Trailing rows and columns that do not fill a block are dropped.
    """
    box = np.full((1, 1, factor, factor), 1.0 / factor**2)
    return np.asarray(conv(image[None, None], box, stride=factor)[0, 0])


#: The fixed upsamplers of the demo: display name -> ``upsample`` mode.
FIXED = {
    "nearest": "nearest",
    "bilinear": "bilinear",
    "bicubic": "bicubic",
    "bed of nails": "bed_of_nails",
}

K4, K3, K8 = "tconv k=4 s=2 (fitted)", "tconv k=3 s=2 (fitted)", "tconv k=8 s=2 (fitted)"

#: The fitted transposed convolutions: name -> (kernel_size, padding, output_padding), stride 2.
#: All map n to 2n. k=8 has bicubic's support (4 inputs per axis), so it can only match or
#: beat it; k=4 spans nearest and bilinear.
FITTED = {K4: (4, 1, 0), K3: (3, 1, 1), K8: (8, 3, 0)}


def psnr(estimate: Array, reference: Array) -> float:
    """Peak signal-to-noise ratio in dB for images in ``[0, 1]``: ``10·log10(1 / MSE)``.

    The estimate is clipped to ``[0, 1]`` first, as an image would be saved.
    """
    mse = float(np.mean((np.clip(estimate, 0.0, 1.0) - reference) ** 2))
    return 10 * float(np.log10(1.0 / mse)) if mse else float("inf")


class SuperResolution(NamedTuple):
    """Everything :func:`superres_demo` measured (and the files it wrote).

    Attributes
    ----------
    original, low : ndarray
        The grayscale photograph ``(H, W)`` and its 2×2 average ``(H/2, W/2)``.
    outputs : dict of str to ndarray
        Each method's upsampled image ``(H, W)``, unclipped.
    psnr : dict of str to float
        PSNR (dB) of each method against the original (outputs clipped to [0, 1]).
    heldout_psnr : dict of str to float
        PSNR on the bottom half of the image, the fitted kernels refitted on the top
        half only — the fit does not owe its score to seeing the test pixels.
    periodic : dict of str to float
        :func:`periodic_energy` of each method's squared error, stride 2.
    phase_mse : dict of str to ndarray
        Each method's mean squared error per stride phase, shape ``(2, 2)``.
    fits : dict of str to KernelFit
        The two fitted transposed convolutions (whole image).
    files : tuple of str
        The PNG files written (empty when no ``out`` was given).
    """

    original: Array
    low: Array
    outputs: dict[str, Array]
    psnr: dict[str, float]
    heldout_psnr: dict[str, float]
    periodic: dict[str, float]
    phase_mse: dict[str, Array]
    fits: dict[str, KernelFit]
    files: tuple[str, ...]

    @property
    def best(self) -> str:
        """The method with the highest PSNR."""
        return max(self.psnr, key=self.psnr.__getitem__)

    def table(self) -> str:
        """The PSNR table, with the periodic error energy and per-phase MSE."""
        head = (
            f"{'method':<24} {'PSNR dB':>8} {'held-out':>9} {'periodic':>9}   "
            f"phase MSE x1e-3 (00 01 10 11)"
        )
        rows = [head, "-" * len(head)]
        for name in self.psnr:
            phases = " ".join(f"{1e3 * v:5.2f}" for v in self.phase_mse[name].ravel())
            rows.append(
                f"{name:<24} {self.psnr[name]:8.2f} {self.heldout_psnr[name]:9.2f} "
                f"{self.periodic[name]:9.2e}   {phases}"
            )
        return "\n".join(rows)

    def __repr__(self) -> str:
        h, w = self.original.shape
        files = ", ".join(self.files) if self.files else "none"
        return (
            f"SuperResolution: {h}x{w} photo from {self.low.shape[0]}x{self.low.shape[1]}, "
            f"{len(self.outputs)} methods, best {self.best!r}\n{self.table()}\nfiles: {files}"
        )

    def _repr_html_(self) -> str:
        from convmat._display import html_table

        h, w = self.original.shape
        head = (
            f"<p><b>SuperResolution</b>: a {h}&times;{w} photo upsampled &times;2 from its "
            f"2&times;2 average by {len(self.outputs)} methods; best: "
            f"<b>{html.escape(self.best)}</b></p>"
        )
        rows = [
            (
                name,
                round(self.psnr[name], 2),
                round(self.heldout_psnr[name], 2),
                f"{self.periodic[name]:.2e}",
                " ".join(f"{1e3 * v:.2f}" for v in self.phase_mse[name].ravel()),
            )
            for name in self.psnr
        ]
        titles = ("method", "PSNR dB", "held-out", "periodic", "phase MSE ×1e-3 (00 01 10 11)")
        files = "".join(f"<br><code>{html.escape(f)}</code>" for f in self.files)
        return head + html_table(titles, rows) + (f"<p>files:{files}</p>" if files else "")


def _fit(low: Array, high: Array, geometry: tuple[int, int, int]) -> KernelFit:
    k, p, op = geometry
    return fit_kernel(low[None, None], high[None, None], k, stride=2, padding=p, output_padding=op)


def _apply(low: Array, fit: KernelFit, geometry: tuple[int, int, int]) -> Array:
    _, p, op = geometry
    out = conv_transpose(low[None, None], fit.weight, stride=2, padding=p, output_padding=op)
    return np.asarray(out[0, 0])


def superres_demo(out: Any = None, *, name: str = "grace_hopper.jpg") -> SuperResolution:
    """Upsample a real photograph ×2 by every method and score each against the original.

    The photograph of :func:`load_photo` (matplotlib's sample data, grayscale) is
    cropped to even sizes and downscaled ×2 by 2×2 averaging (a box kernel of
    stride 2, :func:`conv`). It is then upsampled back by ``upsample`` with nearest,
    bilinear, bicubic and bed of nails, and by transposed convolutions whose kernels
    :func:`fit_kernel` learns by least squares from the (low, original) pair: k=4, s=2,
    p=1 (s divides k), k=3, s=2, p=1, output_padding=1 (it does not) and k=8, s=2, p=3
    (bicubic's support).

    Parameters
    ----------
    out : str or path, optional
        A directory to write ``superres_images.png`` (every output side by side)
        and ``superres_errors.png`` (a zoomed error map per method, where the k=3
        checkerboard shows); created if missing. ``None`` writes nothing.
    name : str
        The sample image, as :func:`load_photo` takes it.

    Returns
    -------
    SuperResolution
        Images, PSNR (whole image and held-out half), periodic error energies,
        per-phase MSE, the fits, the files written; ``.table()`` formats it.

    Raises
    ------
    ModuleNotFoundError
        When matplotlib is missing (it supplies the photograph and writes the PNGs).
    TypeError, ValueError
        If ``name`` is not an image of matplotlib's sample data (see :func:`load_photo`).

    See Also
    --------
    load_photo, fit_kernel, periodic_energy, checkerboard

    Notes
    -----
    The periodic error energy is :func:`periodic_energy` of the squared error
    ``(ŷ − y)²`` with stride 2: the energy of the error image at the period-2
    frequencies relative to its mean, i.e. how much the error depends on the pixel's
    phase (row, column mod 2). A k=3, s=2 transposed convolution computes each
    output of phase (0, 0) from a single kernel tap and the others from 2 or 4
    (:func:`checkerboard`), so its error power differs by phase; with k=4 every phase
    gets 4 taps.

    References
    ----------
    A. Odena, V. Dumoulin and C. Olah, "Deconvolution and Checkerboard Artifacts",
    Distill, 2016. doi:10.23915/distill.00003

    Examples
    --------
    >>> result = superres_demo()                                # doctest: +SKIP
    >>> print(result.table())                                  # doctest: +SKIP
    """
    require_matplotlib("the super-resolution demo (its photograph and PNGs)")
    photo = load_photo(name)
    h, w = (photo.shape[0] // 4) * 4, (photo.shape[1] // 2) * 2  # the top half stays even
    original = photo[:h, :w]
    low = downscale(original)
    outputs = {
        label: np.asarray(upsample(low[None, None], scale_factor=2, mode=mode)[0, 0])
        for label, mode in FIXED.items()
    }
    # The slow part (a few seconds): each kernel fitted twice, whole and on the top half
    # only (held out: scored on the bottom half). A progress bar when someone watches.
    top, half = h // 4, h // 2
    heldout = dict(outputs)
    fits = {}
    for label, geo in progress(FITTED.items(), total=len(FITTED), desc="fitting kernels"):
        fits[label] = _fit(low, original, geo)
        outputs[label] = _apply(low, fits[label], geo)
        heldout[label] = _apply(low, _fit(low[:top], original[:half], geo), geo)
    errors = {label: (image - original) ** 2 for label, image in outputs.items()}
    result = SuperResolution(
        original,
        low,
        outputs,
        psnr={label: psnr(image, original) for label, image in outputs.items()},
        heldout_psnr={
            label: psnr(image[half:], original[half:]) for label, image in heldout.items()
        },
        periodic={label: periodic_energy(e, 2) for label, e in errors.items()},
        phase_mse={label: phase_means(e, 2) for label, e in errors.items()},
        fits=fits,
        files=(),
    )
    if out is None:
        return result
    return result._replace(files=_save(result, Path(out)))


def _checkerboard_window(result: SuperResolution, size: int = 48) -> tuple[slice, slice]:
    """The ``size``-square window (8-pixel grid) where the k=3 fit's periodic error power peaks.

    Periodic error power = :func:`periodic_energy` of the squared error times its mean
    squared: the part of the error that repeats with period 2, in absolute terms.
    """
    err = (result.outputs[K3] - result.original) ** 2
    h, w = err.shape

    def power(start: tuple[int, int]) -> float:
        window = err[start[0] : start[0] + size, start[1] : start[1] + size]
        return periodic_energy(window, 2) * float(window.mean()) ** 2

    starts = [(r, c) for r in range(0, h - size + 1, 8) for c in range(0, w - size + 1, 8)]
    r, c = max(starts, key=power)
    return slice(r, r + size), slice(c, c + size)


def _save(result: SuperResolution, out: Path) -> tuple[str, ...]:
    from matplotlib.figure import Figure

    from convmat.plot import image

    out.mkdir(parents=True, exist_ok=True)
    panels = {"original": result.original, "low (2x2 average)": result.low, **result.outputs}
    fig = Figure(figsize=(3 * 4, 3 * 4.6), layout="constrained")
    for ax, (label, picture) in zip(fig.subplots(3, 3).ravel(), panels.items(), strict=True):
        image(ax, picture)
        title = label if label not in result.psnr else f"{label}\n{result.psnr[label]:.2f} dB"
        ax.set_title(title, fontsize=10)
    images = out / "superres_images.png"
    fig.savefig(images, dpi=100)

    rows, cols = _checkerboard_window(result)
    errors = {
        label: (image - result.original)[rows, cols] for label, image in result.outputs.items()
    }
    top = max(
        float(np.percentile(np.abs(e), 99))
        for label, e in errors.items()
        if label != "bed of nails"
    )
    fig = Figure(figsize=(4 * 3.4, 2 * 3.8), layout="constrained")
    axes = fig.subplots(2, 4).ravel()
    for ax, (label, e) in zip(axes[: len(errors)], errors.items(), strict=True):
        shown = image(ax, e, cmap="RdBu_r", vmin=-top, vmax=top)
        ax.set_title(f"{label}\nperiodic energy {result.periodic[label]:.1e}", fontsize=9)
    _phase_panel(axes[-1], result)
    fig.colorbar(shown, ax=axes[:-1].tolist(), shrink=0.6, label="upsampled − original")
    fig.suptitle(
        f"error, rows {rows.start}-{rows.stop}, cols {cols.start}-{cols.stop}: the "
        f"window where the k=3 fit's period-2 error power is largest"
    )
    errs = out / "superres_errors.png"
    fig.savefig(errs, dpi=100)
    return str(images), str(errs)


def _phase_panel(ax: Any, result: SuperResolution) -> None:
    """Per-phase MSE relative to the mean, k=4 beside k=3: the checkerboard in four numbers."""
    from convmat.plot import grid

    tiles = [
        result.phase_mse[K4] / result.phase_mse[K4].mean(),
        result.phase_mse[K3] / result.phase_mse[K3].mean(),
    ]
    both = np.concatenate([tiles[0], np.full((2, 1), np.nan), tiles[1]], axis=1)
    grid(ax, both, fmt="{:.2f}", cmap="coolwarm", vmin=0.8, vmax=1.2)  # NaN: an empty column
    ax.set_title("MSE per phase / mean\nk=4 (left), k=3 (right)", fontsize=9)
    ax.set_axis_off()
