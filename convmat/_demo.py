"""The super-resolution demo: fixed upsamplers against transposed convolutions fitted to data.

A real photograph (Grace Hopper, shipped with matplotlib as sample data) is made
grayscale, downscaled ×2 by 2×2 averaging and upsampled back by every method;
PSNR against the original says which wins, and the error maps show where the
k=3, s=2 transposed convolution leaves its checkerboard.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]

#: ITU-R BT.601 luma weights: grayscale = 0.299 R + 0.587 G + 0.114 B.
LUMA = (0.299, 0.587, 0.114)


def load_photo(name: str = "grace_hopper.jpg") -> Array:
    """A sample photograph shipped by matplotlib, as grayscale float64 in ``[0, 1]``.

    Parameters
    ----------
    name : str
        A file of ``matplotlib.cbook.get_sample_data``; the default is the
        600×512 portrait of Grace Hopper.

    Returns
    -------
    ndarray, shape ``(H, W)``
        BT.601 luma of the RGB image, scaled to ``[0, 1]``.

    Raises
    ------
    ModuleNotFoundError
        When matplotlib (the ``test`` extra) is not installed.
    """
    try:
        from matplotlib import cbook, image
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "the super-resolution demo needs matplotlib for its sample photograph and PNG "
            "output; pip install matplotlib (or convmat[test])"
        ) from err
    rgb = np.asarray(image.imread(cbook.get_sample_data(name, asfileobj=False)))
    scale = 255.0 if rgb.dtype == np.uint8 else 1.0
    gray = rgb.astype(np.float64) if rgb.ndim == 2 else rgb[..., :3].astype(np.float64) @ LUMA
    return np.asarray(gray / scale)


def downscale(image: Array, factor: int = 2) -> Array:
    """``image`` averaged over ``factor × factor`` blocks (a box-kernel conv of that stride).

    Trailing rows and columns that do not fill a block are dropped.
    """
    from convmat._matrix import conv_matrix

    h, w = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    box = np.full((1, 1, factor, factor), 1.0 / factor**2)
    C = conv_matrix((1, h, w), box, stride=factor)
    return np.asarray(C @ image[:h, :w].ravel()).reshape(h // factor, w // factor)
