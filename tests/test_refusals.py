"""Issue 12, classes 1 and 16: refusals decided by arithmetic, and long work that says so.

Class 1 — every matrix builder and dense routine refuses a matrix too big for
``max_bytes`` from closed-form counts, before allocating anything of its size: a
huge long axis (10**8, 10**9) is refused in well under a second with under 1 MB
traced. The estimate is exact (or a close upper bound), so a matrix that just
fits is built and one byte less is refused.

Class 16 — a dense SVD above ~2000 columns warns (``SlowWarning``) with its
estimated time and ``k=``; progress bars show only when someone watches.
"""

from __future__ import annotations

import importlib.machinery
import subprocess
import sys
import time
import tracemalloc
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg  # noqa: F401  (imported before tracing: not part of a refusal)

import convmat
from convmat import _progress
from convmat._pattern import tap_count, window_positions
from convmat._upsample import axis_nnz_bound, resize_plan

LIMIT = 2**28  # 256 MiB: every long case below is far above it
ONES5 = np.ones((1, 1, 5))

# ---------------------------------------------------------------- class 1: long axes

#: name -> builder of a matrix with a long axis of length n, given max_bytes.
LONG: dict[str, Callable[[int, Any], Any]] = {
    "conv_matrix": lambda n, mb: convmat.conv_matrix((1, n), ONES5, max_bytes=mb),
    "conv_matrix_reflect": lambda n, mb: convmat.conv_matrix(
        (1, n), ONES5, padding=2, padding_mode="reflect", max_bytes=mb
    ),
    "conv_transpose_matrix": lambda n, mb: convmat.conv_transpose_matrix(
        (1, n), ONES5, max_bytes=mb
    ),
    "weight_matrix": lambda n, mb: convmat.weight_matrix(
        np.ones((1, 1, 10)), (1, 1, 5), padding=n, max_bytes=mb
    ),
    "weight_matrix_transposed": lambda n, mb: convmat.weight_matrix(
        np.ones((1, 1, 10)), (1, 1, 5), stride=n, transposed=True, max_bytes=mb
    ),
    "upsample_matrix_linear": lambda n, mb: convmat.upsample_matrix(
        10, size=n, mode="linear", max_bytes=mb
    ),
    "upsample_matrix_nearest": lambda n, mb: convmat.upsample_matrix(
        n, scale_factor=2, max_bytes=mb
    ),
    "upsample_matrix_bilinear": lambda n, mb: convmat.upsample_matrix(
        (n // 1000, 1000), scale_factor=2, mode="bilinear", max_bytes=mb
    ),
    "upsample_matrix_area": lambda n, mb: convmat.upsample_matrix(
        n, size=n // 3, mode="area", max_bytes=mb
    ),
    "avg_pool_matrix": lambda n, mb: convmat.avg_pool_matrix(n, 2, max_bytes=mb),
    "adaptive_avg_pool_matrix": lambda n, mb: convmat.adaptive_avg_pool_matrix(
        n, n // 3, max_bytes=mb
    ),
    "pad_matrix": lambda n, mb: convmat.pad_matrix(n, (1, 1), max_bytes=mb),
    "pad_matrix_reflect": lambda n, mb: convmat.pad_matrix(n, (1, 1), mode="reflect", max_bytes=mb),
    "pixel_shuffle_matrix": lambda n, mb: convmat.pixel_shuffle_matrix((4, 1, n), 2, max_bytes=mb),
    "pixel_unshuffle_matrix": lambda n, mb: convmat.pixel_unshuffle_matrix(
        (1, 2, n), 2, max_bytes=mb
    ),
    "unfold_matrix": lambda n, mb: convmat.unfold_matrix((1, 1, n), (1, 5), max_bytes=mb),
    "resize_conv_matrix": lambda n, mb: convmat.resize_conv_matrix(
        (1, n), np.ones((1, 1, 3)), scale_factor=2, max_bytes=mb
    ),
    "conv_singular_values_k": lambda n, mb: convmat.conv_singular_values(
        (1, n), ONES5, k=3, max_bytes=mb
    ),
    "conv_singular_values_dense": lambda n, mb: convmat.conv_singular_values(
        (1, n), ONES5, max_bytes=mb
    ),
}


def _refusal(build: Callable[[], Any]) -> tuple[str, float, int]:
    """The MemoryError message of ``build()``, its wall time and the traced peak."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(MemoryError) as info:
            build()
    finally:
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return str(info.value), seconds, peak


@pytest.mark.parametrize("n", [10**8, 10**9])
@pytest.mark.parametrize("name", sorted(LONG))
def test_issue12_class1_long_axis_refused_from_arithmetic(name: str, n: int) -> None:
    message, seconds, peak = _refusal(lambda: LONG[name](n, LIMIT))
    assert peak < 2**20, f"{name}: traced {peak / 2**20:.1f} MiB before refusing"
    assert seconds < 1.0, f"{name}: {seconds:.2f} s before refusing"
    assert "max_bytes" in message
    assert " GiB" in message or " TiB" in message or " MiB" in message


@pytest.mark.parametrize(
    "build",
    [
        lambda: convmat.conv_matrix((1, 10**8), np.ones((1, 1, 5))),
        lambda: convmat.conv_matrix((1, 10**9), np.ones((1, 1, 5))),
        lambda: convmat.conv_transpose_matrix((1, 10**9), np.ones((1, 1, 5))),
        lambda: convmat.upsample_matrix(10, size=300_000_000, mode="linear"),
    ],
    ids=["conv_1e8", "conv_1e9", "conv_transpose_1e9", "upsample_linear_3e8"],
)
def test_issue12_class1_issue_examples_refused_at_once(build: Callable[[], Any]) -> None:
    """The issue's own cases, default max_bytes: a MemoryError naming the size, at once."""
    message, seconds, peak = _refusal(build)
    assert peak < 2**20 and seconds < 1.0
    assert "Unable to allocate" not in message
    assert "more than max_bytes=4.0 GiB" in message
    assert "matrix-free" in message or "conv_operator" in message


def test_issue12_class1_message_format() -> None:
    with pytest.raises(MemoryError, match=r"needs about 6\.0 GiB, more than max_bytes=4\.0 GiB"):
        convmat.conv_matrix((1, 10**8), ONES5)
    with pytest.raises(MemoryError, match=r"conv_operator / conv_transpose_operator"):
        convmat.conv_transpose_matrix((1, 10**8), ONES5)
    # A lower bound says so rather than claiming an estimate.
    with pytest.raises(MemoryError, match=r"at least 300,000,000 stored entries needs at least"):
        convmat.upsample_matrix(10, size=300_000_000, mode="linear")
    with pytest.raises(MemoryError, match=r"or use the matrix-free convmat\.upsample"):
        convmat.upsample_matrix(10, size=300_000_000, mode="linear")


def test_issue12_class1_tap_count_is_the_grid_count() -> None:
    rng = np.random.default_rng(12)
    for _ in range(2000):
        n, out, k = (int(v) for v in rng.integers(1, 14, size=3))
        s, d = (int(v) for v in rng.integers(1, 5, size=2))
        lo = int(rng.integers(-3, 12))
        pos = window_positions(out, k, s, d, lo)
        assert tap_count(n, out, k, s, d, lo) == int(((pos >= 0) & (pos < n)).sum())
    # Huge geometry: exact Python integers, no overflow.
    assert tap_count(5, 3, 2, 2**70, 1, 0) == 2
    assert tap_count(2**80, 3, 2, 2**70, 1, 0) == 6


# ------------------------------------------------- class 1: just fits / just too big


def _storage(m: sp.csr_array) -> int:
    return int(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes)


#: name -> builder of a normal-size matrix, given max_bytes; the estimate is exact.
EXACT: dict[str, Callable[[Any], Any]] = {
    "conv_matrix": lambda mb: convmat.conv_matrix(
        (2, 9, 7), np.ones((3, 2, 3, 2)), stride=(2, 1), padding=1, max_bytes=mb
    ),
    "conv_matrix_groups_dilation": lambda mb: convmat.conv_matrix(
        (4, 11), np.ones((2, 2, 3)), dilation=2, padding=3, groups=2, max_bytes=mb
    ),
    "conv_transpose_matrix": lambda mb: convmat.conv_transpose_matrix(
        (2, 5, 5), np.ones((2, 3, 3, 3)), stride=2, padding=1, max_bytes=mb
    ),
    "weight_matrix": lambda mb: convmat.weight_matrix(
        np.ones((2, 2, 6, 6)), (3, 2, 3, 3), padding=1, max_bytes=mb
    ),
    "weight_matrix_transposed": lambda mb: convmat.weight_matrix(
        np.ones((1, 2, 4, 4)), (2, 3, 3, 3), stride=2, transposed=True, max_bytes=mb
    ),
    "upsample_matrix_nearest": lambda mb: convmat.upsample_matrix(
        (7, 9), scale_factor=(2, 3), max_bytes=mb
    ),
    "upsample_matrix_bilinear": lambda mb: convmat.upsample_matrix(
        (40, 30), scale_factor=2, mode="bilinear", max_bytes=mb
    ),
    "upsample_matrix_bicubic": lambda mb: convmat.upsample_matrix(
        (20, 20), size=(33, 47), mode="bicubic", align_corners=True, max_bytes=mb
    ),
    "upsample_matrix_bed_of_nails": lambda mb: convmat.upsample_matrix(
        (6, 5), scale_factor=3, mode="bed_of_nails", max_bytes=mb
    ),
    "upsample_matrix_area": lambda mb: convmat.upsample_matrix(
        (17, 13), size=(5, 4), mode="area", max_bytes=mb
    ),
    "avg_pool_matrix": lambda mb: convmat.avg_pool_matrix(
        (13, 11), 3, stride=2, padding=1, ceil_mode=True, max_bytes=mb
    ),
    "adaptive_avg_pool_matrix": lambda mb: convmat.adaptive_avg_pool_matrix(
        (17, 10), (6, 4), max_bytes=mb
    ),
    "pad_matrix": lambda mb: convmat.pad_matrix((6, 7), (2, -1, 3, 1), max_bytes=mb),
    "pad_matrix_circular": lambda mb: convmat.pad_matrix(
        (6, 7), (2, 1, 3, 1), mode="circular", max_bytes=mb
    ),
    "pixel_shuffle_matrix": lambda mb: convmat.pixel_shuffle_matrix((8, 3, 5), 2, max_bytes=mb),
    "pixel_unshuffle_matrix": lambda mb: convmat.pixel_unshuffle_matrix((2, 6, 4), 2, max_bytes=mb),
    "unfold_matrix": lambda mb: convmat.unfold_matrix(
        (3, 7, 6), (3, 2), padding=1, stride=2, max_bytes=mb
    ),
}


@pytest.mark.parametrize("name", sorted(EXACT))
def test_issue12_class1_just_fits_is_built_one_byte_less_is_refused(name: str) -> None:
    need = _storage(EXACT[name](np.inf))
    assert EXACT[name](need).nnz > 0
    with pytest.raises(MemoryError, match="max_bytes"):
        EXACT[name](need - 1)


@pytest.mark.parametrize(
    ("spatial", "kwargs"),
    [
        (30000, {"scale_factor": 2, "mode": "linear"}),
        (29999, {"size": 75000, "mode": "linear", "align_corners": False}),
        (12000, {"size": 90000, "mode": "linear", "align_corners": True}),
    ],
)
def test_issue12_class1_long_1d_resize_refused_by_a_close_upper_bound(
    spatial: int, kwargs: dict[str, Any]
) -> None:
    """One long axis (factor above 1 MiB): its factor is the matrix, so the bound decides."""
    built = convmat.upsample_matrix(spatial, **kwargs, max_bytes=np.inf)
    plan = resize_plan(
        spatial,
        size=kwargs.get("size"),
        scale_factor=kwargs.get("scale_factor"),
        mode=kwargs["mode"],
        align_corners=kwargs.get("align_corners"),
    )
    nnz = axis_nnz_bound(plan.in_spatial[0], plan.out_spatial[0], plan, plan.scales[0], np.float64)
    assert built.nnz <= nnz <= 1.01 * built.nnz
    estimate = nnz * (8 + 4) + (plan.out_spatial[0] + 1) * 4
    assert convmat.upsample_matrix(spatial, **kwargs, max_bytes=estimate).nnz == built.nnz
    with pytest.raises(MemoryError, match=r"upsample matrix of shape .* needs about"):
        convmat.upsample_matrix(spatial, **kwargs, max_bytes=estimate - 1)


def test_issue12_class1_bad_max_bytes_still_named_before_work() -> None:
    with pytest.raises(TypeError, match="max_bytes must be a number of bytes; got 'big'"):
        convmat.upsample_matrix(10, size=10**9, mode="linear", max_bytes="big")
    with pytest.raises(ValueError, match="max_bytes must be > 0; got 0"):
        convmat.avg_pool_matrix(10**9, 2, max_bytes=0)
    with pytest.raises(TypeError, match="dtype must be a float or complex dtype; got int64"):
        convmat.pixel_shuffle_matrix((4, 1, 10**9), 2, dtype=np.int64)


# ------------------------------------------------------------ class 16: long work


class _Stop(Exception):
    """Raised instead of the SVD: the test checks the warning, not LAPACK."""


def _no_svd(*args: Any, **kwargs: Any) -> Any:
    raise _Stop


def test_issue12_class16_big_dense_svd_warns_with_time_and_k(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("convmat._spectrum.layer_matrix", _no_svd)
    with (
        pytest.warns(convmat.SlowWarning, match=r"3000x3000 conv matrix takes about \d+ s"),
        pytest.raises(_Stop),
    ):
        convmat.conv_singular_values((1, 3000), np.ones((1, 1, 3)), padding=1)
    with (
        pytest.warns(convmat.SlowWarning, match=r"pass k= .* svds"),
        pytest.raises(_Stop),
    ):
        convmat.deconvolution_report(np.ones((1, 60, 60)), np.ones((1, 1, 3, 3)), padding=1)


def test_issue12_class16_small_dense_svd_and_svds_are_silent() -> None:
    # filterwarnings = error: any warning here fails the test.
    assert convmat.conv_singular_values((1, 30), np.ones((1, 1, 3))).size == 28
    assert convmat.conv_singular_values((1, 300), np.ones((1, 1, 3)), k=2).size == 2


def test_issue12_class16_svd_time_estimate() -> None:
    assert issubclass(convmat.SlowWarning, UserWarning)
    assert _progress.dense_svd_seconds(2000, 2000) == pytest.approx(21.33e9 / 5e9, rel=1e-3)
    assert _progress.dense_svd_flops(100, 4000) == _progress.dense_svd_flops(4000, 100)
    assert _progress.dense_svd_flops(2000, 2001) > _progress.SLOW_SVD_FLOPS
    assert _progress._duration(7560) == "2.1 h"


def _fake_tqdm(monkeypatch: pytest.MonkeyPatch, calls: list[int]) -> None:
    def tqdm(iterable: Any, *, total: int, desc: str, leave: bool) -> Any:
        calls.append(total)
        return iterable

    for name in ("tqdm", "tqdm.auto"):
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        module.tqdm = tqdm  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, name, module)


def test_issue12_class16_progress_only_when_watched(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    _fake_tqdm(monkeypatch, calls)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert list(_progress.progress(range(3), total=3, desc="x")) == [0, 1, 2]
    assert calls == []  # tqdm installed, but a pipe: silent
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert list(_progress.progress(range(3), total=3, desc="x")) == [0, 1, 2]
    assert calls == [3]


def test_issue12_class16_progress_silent_in_a_pipe() -> None:
    code = (
        "from convmat._progress import progress\n"
        "assert list(progress(range(5), total=5, desc='build')) == list(range(5))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""


def test_issue12_class16_superres_demo_reports_its_slow_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The demo's kernel fits (its seconds of work) go through progress(): a bar on a
    terminal or in Jupyter, nothing in a pipe."""
    pytest.importorskip("matplotlib")
    import convmat._demo as demo

    seen: list[tuple[int, str]] = []

    def recording(iterable: Any, *, total: int, desc: str) -> Any:
        seen.append((total, desc))
        yield from iterable

    monkeypatch.setattr(demo, "progress", recording)
    result = demo.superres_demo()
    assert seen == [(len(demo.FITTED), "fitting kernels")]
    assert set(demo.FITTED) <= set(result.psnr)
