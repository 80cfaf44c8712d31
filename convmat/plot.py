"""Pictures of small arrays, images and sparse matrices, as the notebooks draw them.

``import convmat`` does not import this module; write ``from convmat import plot``.
matplotlib is an optional dependency (the ``test`` and ``docs`` extras): each function
imports it when called and raises ``ModuleNotFoundError`` naming ``pip install matplotlib``
when it is missing. Every function draws into an Axes the caller made —
``plt.subplots()`` in a notebook, ``matplotlib.figure.Figure().subplots()`` in a script
or a test (no backend, no window) — and returns the artist it added, so the caller can
still restyle it or hang a colorbar on it.

- :func:`grid` — a small array as a heat map with every value (or a label) in its cell:
  kernels, outputs, overlap counts, a dense C.
- :func:`image` — a grayscale picture, one square per pixel, without axes.
- :func:`spy` — the sparsity pattern of C or Cᵀ, optionally with its channel blocks framed.
- :func:`position_labels` — ``"i,j"`` tick labels of the flattened (C-order) positions,
  for the rows and columns of C.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from string import Formatter
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from convmat._args import as_int, ntuple, numeric_array, spatial_shape
from convmat._color import LUMA
from convmat._optional import require_matplotlib

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
    from matplotlib.image import AxesImage
    from matplotlib.lines import Line2D

__all__ = ["grid", "image", "position_labels", "spy"]

Array = np.ndarray[Any, Any]

#: Cell text is white on a cell whose colour has BT.601 luma below this, black otherwise.
DARK = 0.5
#: Font size of the text in a :func:`grid` cell.
FONTSIZE = 9
#: The most cells :func:`grid` draws from a sparse matrix (it densifies it first).
GRID_MAX_CELLS = 250_000
#: Above this many stored entries :func:`spy` draws the pattern as an image, not markers.
MAX_MARKERS = 100_000
#: The most pixels per axis of the image :func:`spy` draws for a large matrix.
SPY_PIXELS = 1024


def _check_axes(ax: Any, caller: str) -> None:
    require_matplotlib(f"convmat.plot.{caller}")
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes; got {type(ax).__name__}")


def _check_cmap(cmap: Any) -> None:
    from matplotlib import colormaps
    from matplotlib.colors import Colormap

    if isinstance(cmap, Colormap):
        return
    if not isinstance(cmap, str) or cmap not in colormaps:
        raise ValueError(f"cmap must be a matplotlib colormap or its name; got {cmap!r}")


def _real(values: Any, name: str, ndims: tuple[int, ...]) -> Array:
    """``values`` as a non-empty real float array of one of the ``ndims``."""
    a = numeric_array(values, name)
    if a.dtype.kind == "c":
        raise TypeError(f"{name} must be real; got dtype {a.dtype}")
    wanted = " or ".join(f"{n}-d" for n in ndims)
    if a.ndim not in ndims:
        raise ValueError(f"{name} must be {wanted}; got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} must not be empty; got shape {a.shape}")
    return a


def _limits(
    vmin: float | None, vmax: float | None, default: tuple[float, float]
) -> tuple[float, float]:
    lo = default[0] if vmin is None else float(vmin)
    hi = default[1] if vmax is None else float(vmax)
    if not lo < hi:
        raise ValueError(f"vmin must be < vmax; got vmin={lo!r}, vmax={hi!r}")
    return lo, hi


def _tick_labels(labels: Sequence[Any] | None, count: int, name: str) -> list[str]:
    if labels is None:
        return [str(i) for i in range(count)]
    if isinstance(labels, (str, bytes)) or len(labels) != count:
        raise ValueError(f"{name} must hold {count} tick labels; got {labels!r}")
    return [str(label) for label in labels]


def grid(
    ax: Axes,
    values: Any,
    *,
    title: str | None = None,
    fmt: str = "{:g}",
    labels: Any = None,
    blank_zeros: bool | None = None,
    rows: Sequence[Any] | None = None,
    cols: Sequence[Any] | None = None,
    cmap: str | Colormap = "RdBu_r",
    vmin: float | None = None,
    vmax: float | None = None,
) -> AxesImage:
    """Draw a small array as a heat map with each cell's value (or a label) printed in it.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw.
    values : array_like, scipy.sparse array or SymPy matrix, shape ``(R, C)`` or ``(C,)``
        Real numbers; a 1-d array is drawn as one row without a row axis. NaN marks a cell
        left empty (no colour, no text). A sparse matrix (C of :func:`convmat.conv_matrix`)
        is drawn densely, up to ``plot.GRID_MAX_CELLS`` cells. A SymPy matrix or array
        (:func:`convmat.symbolic.conv_matrix`) is drawn with its entries as LaTeX labels,
        coloured by entry: equal entries (one kernel tap) share a colour, zero is white;
        one whose entries are all real numbers is drawn as those numbers.
    title : str, optional
        The axes title; ``None`` leaves the title as it is.
    fmt : str
        A ``str.format`` template with one field, applied to each value: ``"{:g}"``
        (default), ``"{:.2f}"``, ...
    labels : array_like of str, optional
        Text for each cell instead of its formatted value, with the shape of ``values``
        (nested lists are fine); ``""`` leaves a cell without text. The colours still come
        from ``values``.
    blank_zeros : bool, optional
        Print nothing in cells whose value is 0 — the picture of a sparse matrix. By
        default ``True`` for a sparse or SymPy matrix, ``False`` for an array.
    rows, cols : sequence, optional
        Tick labels of the rows and columns (default ``0, 1, ...``), e.g.
        :func:`position_labels` for the rows and columns of C.
    cmap : str or matplotlib.colors.Colormap
        The colormap (default the diverging ``"RdBu_r"``: zero is white).
    vmin, vmax : float, optional
        Colour limits. By default ``±max|values|``, symmetric about zero so that zero
        gets the middle colour of a diverging map (``±1`` when every value is 0).

    Returns
    -------
    matplotlib.image.AxesImage
        The heat map (pass it to ``colorbar``); the cell texts are in ``ax.texts``.

    Raises
    ------
    TypeError
        If ``ax`` is not a matplotlib Axes, ``values`` is complex or not numeric, ``fmt``
        is not a str, or a label is not a str.
    ValueError
        If ``values`` is not 1-d or 2-d, is empty or holds ±inf; if a sparse ``values``
        has more than ``plot.GRID_MAX_CELLS`` cells; if ``fmt`` has no
        single field; if ``labels``, ``rows`` or ``cols`` do not fit the shape; if
        ``cmap`` is unknown or ``vmin >= vmax``.
    ModuleNotFoundError
        When matplotlib is not installed.

    See Also
    --------
    image : pictures, without numbers.
    spy : the pattern of a matrix too large for numbers.

    Notes
    -----
    Row ``i``, column ``j`` of ``values`` is the cell centred at ``(x, y) = (j, i)``, row 0
    at the top, as the array prints. Text is white on dark cells and black on light ones:
    white when the BT.601 luma of the cell's colour is below 0.5 (for ``"RdBu_r"``,
    about ``|v| > 0.6·max|values|``).

    Examples
    --------
    >>> import numpy as np
    >>> from matplotlib.figure import Figure
    >>> import convmat
    >>> from convmat import plot
    >>> ax = Figure().subplots()
    >>> shown = plot.grid(ax, [[0.0, 1.0], [2.0, 3.0]], title="kernel")
    >>> [text.get_text() for text in ax.texts]
    ['0', '1', '2', '3']
    >>> shown.get_clim()
    (-3.0, 3.0)

    The matrix C of a 2×2 kernel on a 3×3 input, its rows and columns labelled by
    position; its 20 zeros stay blank:

    >>> C = convmat.conv_matrix((1, 3, 3), np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    >>> ax = Figure().subplots()
    >>> shown = plot.grid(ax, C.toarray(), blank_zeros=True,
    ...                   rows=plot.position_labels((2, 2)), cols=plot.position_labels((3, 3)))
    >>> len(ax.texts), [label.get_text() for label in ax.get_yticklabels()]
    (16, ['0,0', '0,1', '1,0', '1,1'])

    Symbols in the cells, colours from the numbers:

    >>> ax = Figure().subplots()
    >>> shown = plot.grid(ax, [[0.0, 2.0]], labels=[["$x_0 w_0$", "$x_1 w_1$"]])
    >>> [text.get_text() for text in ax.texts]
    ['$x_0 w_0$', '$x_1 w_1$']

    The sparse C itself, and its symbolic twin, whose cells name the kernel taps:

    >>> shown = plot.grid(Figure().subplots(), C)            # zeros blank by default
    >>> from convmat import symbolic
    >>> ax = Figure().subplots()
    >>> shown = plot.grid(ax, symbolic.conv_matrix((3, 3), symbolic.symbols("w", (2, 2))))
    >>> [text.get_text() for text in ax.texts][:5]
    ['$w_{00}$', '$w_{01}$', '$w_{10}$', '$w_{11}$', '$w_{00}$']
    """
    _check_axes(ax, "grid")
    a, symbolic_labels, sparse_like = _grid_values(values)
    if labels is None and symbolic_labels is not None:
        labels = symbolic_labels
    if blank_zeros is None:
        blank_zeros = sparse_like
    if np.isinf(a).any():
        raise ValueError(
            f"values must be finite (NaN marks an empty cell); got inf at "
            f"{tuple(int(i) for i in np.argwhere(np.isinf(a))[0])}"
        )
    if not isinstance(fmt, str):
        raise TypeError(f"fmt must be a str such as '{{:.2f}}'; got {type(fmt).__name__}")
    try:
        fields = [field for _, field, _, _ in Formatter().parse(fmt) if field is not None]
        fmt.format(0.0)
    except (IndexError, KeyError, ValueError):
        fields = []
    if len(fields) != 1:
        raise ValueError(
            f"fmt must be a format string with one field, such as '{{:.2f}}'; got {fmt!r}"
        )
    text = None if labels is None else _cell_labels(labels, a.shape)
    one_row = a.ndim == 1
    a = a.reshape(1, -1) if one_row else a
    row_ticks = [] if one_row and rows is None else _tick_labels(rows, a.shape[0], "rows")
    col_ticks = _tick_labels(cols, a.shape[1], "cols")
    _check_cmap(cmap)
    finite = np.abs(a[~np.isnan(a)])
    lim = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    lo, hi = _limits(vmin, vmax, (-lim, lim))

    shown = ax.imshow(a, cmap=cmap, vmin=lo, vmax=hi)
    cells = text.reshape(a.shape) if text is not None else None
    for (i, j), v in np.ndenumerate(a):
        if np.isnan(v) or (blank_zeros and v == 0):
            continue
        words = fmt.format(v) if cells is None else cells[i, j]
        if not words:
            continue
        r, g, b, _ = shown.cmap(shown.norm(v))
        dark = LUMA[0] * r + LUMA[1] * g + LUMA[2] * b < DARK
        ax.text(
            j,
            i,
            words,
            ha="center",
            va="center",
            fontsize=FONTSIZE,
            color="white" if dark else "black",
        )
    ax.set_xticks(range(a.shape[1]), col_ticks)
    ax.set_yticks(range(len(row_ticks)), row_ticks)
    if title is not None:
        ax.set_title(title)
    return shown


def _sympy_entries(values: Any) -> tuple[list[Any], tuple[int, ...]] | None:
    """The entries and shape of a SymPy matrix or array, or ``None`` for anything else.

    SymPy is never imported here: a SymPy object exists only once its caller imported it.
    """
    sympy = sys.modules.get("sympy")
    if sympy is None or not isinstance(values, (sympy.MatrixBase, sympy.NDimArray)):
        return None
    shape = tuple(int(n) for n in values.shape)
    return [values[i] for i in np.ndindex(*shape)], shape


def _grid_values(values: Any) -> tuple[Array, Array | None, bool]:
    """``grid``'s values as a real array, with symbolic labels and whether it is sparse.

    A sparse matrix is densified (refused beyond ``plot.GRID_MAX_CELLS`` cells first); a
    SymPy matrix of real numbers becomes those numbers, one with symbols becomes one
    colour per distinct entry (0 for zero) with each entry's LaTeX as its label.
    """
    from scipy import sparse

    if sparse.issparse(values):
        shape = tuple(values.shape)
        if math.prod(shape) > GRID_MAX_CELLS:
            raise ValueError(
                f"values must have at most {GRID_MAX_CELLS:,} cells to be drawn cell by cell "
                f"(plot.spy draws the pattern of a large matrix); got shape {shape}"
            )
        values = values.toarray()
        return _real(values, "values", (1, 2)), None, True
    found = _sympy_entries(values)
    if found is None:
        return _real(values, "values", (1, 2)), None, False
    entries, shape = found
    if len(shape) not in (1, 2):
        raise ValueError(f"values must be 1-d or 2-d; got shape {shape}")
    if not entries:
        raise ValueError(f"values must not be empty; got shape {shape}")
    if all(e.is_number and e.is_extended_real for e in entries):
        numbers = np.array([float(e) for e in entries]).reshape(shape)
        return _real(numbers, "values", (1, 2)), None, True
    sympy = sys.modules["sympy"]
    distinct = sorted({e for e in entries if e != 0}, key=sympy.default_sort_key)
    rank = {e: n for n, e in enumerate(distinct, start=1)}
    colours = np.array([rank.get(e, 0) for e in entries], dtype=np.float64).reshape(shape)
    labels = np.array([f"${sympy.latex(e)}$" for e in entries], dtype=object).reshape(shape)
    return colours, labels, True


def _cell_labels(labels: Any, shape: tuple[int, ...]) -> Array:
    try:
        cells = np.asarray(labels, dtype=object)
    except ValueError:  # ragged nesting numpy cannot place
        cells = np.empty(0, dtype=object)
    if cells.shape != shape:
        raise ValueError(f"labels must have the shape of values, {shape}; got {labels!r}")
    for index, label in np.ndenumerate(cells):
        if not isinstance(label, str):
            raise TypeError(f"labels must hold str; got {type(label).__name__} at {index}")
    return cells


def image(
    ax: Axes,
    values: Any,
    *,
    title: str | None = None,
    cmap: str | Colormap = "gray",
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
) -> AxesImage:
    """Draw a 2-d image with one square per pixel and no axes.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw.
    values : array_like, shape ``(H, W)``
        A real image, e.g. :func:`convmat.load_photo` or one channel of a layer's output
        (``y[0, 0]`` of an ``(N, C, H, W)`` array).
    title : str, optional
        The axes title; ``None`` leaves the title as it is.
    cmap : str or matplotlib.colors.Colormap
        The colormap; default ``"gray"``.
    vmin, vmax : float or None
        Values drawn black and white (default 0 and 1: images in ``[0, 1]``, as
        :func:`convmat.load_photo` returns them; values beyond show saturated). ``None``
        takes the image's own minimum or maximum.

    Returns
    -------
    matplotlib.image.AxesImage
        The image (pass it to ``colorbar``).

    Raises
    ------
    TypeError
        If ``ax`` is not a matplotlib Axes or ``values`` is complex or not numeric.
    ValueError
        If ``values`` is not 2-d or is empty; if ``cmap`` is unknown or ``vmin >= vmax``.
    ModuleNotFoundError
        When matplotlib is not installed.

    See Also
    --------
    grid : small arrays with their numbers.

    Notes
    -----
    Pixels are drawn with ``interpolation="nearest"``: an upsampled image is shown as it
    is, with no smoothing from the display that could hide a checkerboard or add one.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> import convmat
    >>> from convmat import plot
    >>> photo = convmat.load_photo()
    >>> ax = Figure().subplots()
    >>> shown = plot.image(ax, photo[100:228, 170:298], title="a 128×128 crop")
    >>> shown.get_array().shape, shown.get_clim(), ax.axison
    ((128, 128), (0.0, 1.0), False)
    """
    _check_axes(ax, "image")
    a = _real(values, "values", (2,))
    _check_cmap(cmap)
    if vmin is not None and vmax is not None:
        _limits(vmin, vmax, (0.0, 1.0))
    shown = ax.imshow(a, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_axis_off()
    if title is not None:
        ax.set_title(title)
    return shown


def spy(
    ax: Axes,
    matrix: Any,
    *,
    title: str | None = None,
    markersize: float | None = None,
    blocks: int | Sequence[int] | None = None,
    max_markers: int = MAX_MARKERS,
) -> Line2D | AxesImage:
    """Draw the sparsity pattern of a matrix: one square marker per stored nonzero.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw.
    matrix : scipy.sparse array or matrix, or array_like, shape ``(M, N)``
        The matrix, e.g. C of :func:`convmat.conv_matrix` or Cᵀ.
    title : str, optional
        The axes title; ``None`` leaves the title as it is.
    markersize : float, optional
        Marker size in points; default ``clip(100 / max(M, N), 1, 6)``, which fills the
        cells of a matrix drawn a few inches wide.
    blocks : int or (int, int), optional
        Rows and columns per block: thin grey lines are drawn between blocks. For a
        layer with ``C_out × C_in`` channels the blocks of C are ``H_out·W_out`` rows by
        ``H·W`` columns, one per channel pair.
    max_markers : int
        Above this many nonzeros (default ``plot.MAX_MARKERS``) the pattern is drawn as
        an image of at most ``plot.SPY_PIXELS`` pixels per axis instead: a pixel is black
        when its square block of the matrix holds a nonzero. Millions of markers would take
        seconds to draw and overlap into the same picture.

    Returns
    -------
    matplotlib.lines.Line2D or matplotlib.image.AxesImage
        The markers, whose data are the column and row indices of the nonzeros; or,
        above ``max_markers`` nonzeros, the image of the pattern (0 or 1 per pixel).

    Raises
    ------
    TypeError
        If ``ax`` is not a matplotlib Axes, ``matrix`` is not numeric, or ``blocks`` is
        not an int or a pair of ints.
    ValueError
        If ``matrix`` is not 2-d or is empty, ``markersize <= 0``, a block size < 1 or
        ``max_markers < 0``.
    ModuleNotFoundError
        When matplotlib is not installed.

    See Also
    --------
    grid : the values of a small matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from matplotlib.figure import Figure
    >>> import convmat
    >>> from convmat import plot
    >>> w = np.ones((4, 2, 3, 3))                   # 4 -> 4 channels in 2 groups
    >>> C = convmat.conv_matrix((4, 4, 4), w, padding=1, groups=2)
    >>> ax = Figure().subplots()
    >>> markers = plot.spy(ax, C, title=f"groups=2, nnz={C.nnz}", blocks=16)
    >>> len(markers.get_xdata()) == C.nnz, len(ax.lines) - 1   # 3 + 3 block lines
    (True, 6)

    A layer's matrix with millions of entries is drawn as an image, in a blink:

    >>> C = convmat.conv_matrix((4, 64, 64), np.ones((16, 4, 7, 7)), padding=3)
    >>> ax = Figure().subplots()
    >>> C.nnz, plot.spy(ax, C).get_array().shape
    (12166144, (1024, 256))
    """
    _check_axes(ax, "spy")
    from scipy import sparse

    m = matrix if sparse.issparse(matrix) else numeric_array(matrix, "matrix")
    shape = tuple(m.shape)
    if len(shape) != 2:
        raise ValueError(f"matrix must be 2-d; got shape {shape}")
    if 0 in shape:
        raise ValueError(f"matrix must not be empty; got shape {shape}")
    if markersize is None:
        size = float(np.clip(100 / max(shape), 1, 6))
    else:
        size = float(markersize)
        if not size > 0:
            raise ValueError(f"markersize must be > 0; got {markersize!r}")
    per_block = None if blocks is None else ntuple(blocks, 2, "blocks", minimum=1)
    limit = as_int(max_markers, "max_markers")
    if limit < 0:
        raise ValueError(f"max_markers must be >= 0; got {limit}")

    rows, cols = _nonzeros(m)
    shown: Line2D | AxesImage
    if rows.size > limit:
        shown = _pattern_image(ax, rows, cols, (int(shape[0]), int(shape[1])))
    else:
        # A markersize: always markers. The nonzeros found above, as ax.spy would find them.
        pattern = sparse.coo_array((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=shape)
        shown = cast("Line2D", ax.spy(pattern, markersize=size))
    if per_block is not None:
        for edge in range(per_block[0], shape[0], per_block[0]):
            ax.axhline(edge - 0.5, color="grey", lw=0.5)
        for edge in range(per_block[1], shape[1], per_block[1]):
            ax.axvline(edge - 0.5, color="grey", lw=0.5)
    if title is not None:
        ax.set_title(title)
    return shown


def _nonzeros(m: Any) -> tuple[Array, Array]:
    """Row and column indices of the nonzero entries (explicit zeros are not drawn)."""
    from scipy import sparse

    if sparse.issparse(m):
        csr = sparse.csr_array(m)
        rows = np.repeat(np.arange(csr.shape[0], dtype=csr.indices.dtype), np.diff(csr.indptr))
        cols = np.asarray(csr.indices)
        zero = csr.data == 0
        if zero.any():
            rows, cols = rows[~zero], cols[~zero]
        return rows, cols
    rows, cols = np.nonzero(m)
    return rows, cols


def _pattern_image(ax: Axes, rows: Array, cols: Array, shape: tuple[int, int]) -> AxesImage:
    """The pattern in square blocks, at most ``SPY_PIXELS`` per axis, drawn like ``ax.spy``."""
    block = -(-max(shape) // SPY_PIXELS)  # entries per pixel side, the same on both axes
    bins = (-(-shape[0] // block), -(-shape[1] // block))
    r, c = rows // block, cols // block
    filled = np.zeros(bins[0] * bins[1], dtype=np.int8)
    filled[r.astype(np.int64) * bins[1] + c] = 1
    shown = ax.imshow(
        filled.reshape(bins),
        cmap="binary",
        vmin=0,
        vmax=1,
        interpolation="nearest",
        aspect="equal",
        extent=(-0.5, shape[1] - 0.5, shape[0] - 0.5, -0.5),
    )
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    return shown


def position_labels(shape: int | Sequence[int]) -> list[str]:
    """Labels ``"i,j"`` of the positions of a grid in flattened (C) order.

    The order of the rows and columns of C: row ``r`` of :func:`convmat.conv_matrix` is
    output position ``np.unravel_index(r, out_shape)``, column ``c`` input position
    ``np.unravel_index(c, in_shape)`` (one channel).

    Parameters
    ----------
    shape : int or sequence of int
        The grid's shape, every entry >= 1.

    Returns
    -------
    list of str
        ``prod(shape)`` labels, the indices of each position joined by commas.

    Raises
    ------
    TypeError
        If ``shape`` is not an int or a sequence of ints.
    ValueError
        If an entry is < 1.

    See Also
    --------
    grid : takes these as ``rows`` and ``cols``.

    Examples
    --------
    >>> from convmat import plot
    >>> plot.position_labels((2, 3))
    ['0,0', '0,1', '0,2', '1,0', '1,1', '1,2']
    >>> plot.position_labels(3)
    ['0', '1', '2']
    """
    dims = spatial_shape(shape, "shape")
    return [",".join(map(str, index)) for index in np.ndindex(*dims)]
