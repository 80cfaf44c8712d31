"""The super-resolution demo: the photo, the PSNR ordering, the checkerboard energy, the PNGs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import convmat
from convmat import checkerboard
from convmat._demo import K3, K4, K8, SuperResolution, downscale, load_photo, psnr, superres_demo
from convmat.cli import main

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> SuperResolution:
    return superres_demo(tmp_path_factory.mktemp("superres"))


def test_photo_is_grayscale_in_unit_range() -> None:
    photo = load_photo()
    assert photo.shape == (600, 512) and photo.dtype == np.float64
    assert 0.0 <= photo.min() < 0.1 and 0.9 < photo.max() <= 1.0


def test_load_photo_is_public_and_is_the_luma_of_the_file() -> None:
    from matplotlib import cbook, image

    assert convmat.load_photo is load_photo and "load_photo" in convmat.__all__
    rgb = image.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    photo = convmat.load_photo()
    for i, j in [(0, 0), (300, 256), (599, 511)]:
        r, g, b = (float(v) for v in rgb[i, j, :3])
        assert photo[i, j] == pytest.approx((0.299 * r + 0.587 * g + 0.114 * b) / 255, abs=1e-12)


def test_load_photo_reads_a_png_with_alpha() -> None:
    logo = convmat.load_photo("logo2.png")  # RGBA floats: alpha dropped, no /255
    assert logo.shape == (130, 542) and logo.dtype == np.float64
    assert 0.0 <= logo.min() < 0.1 and 0.9 < logo.max() <= 1.0


def test_load_photo_rejects_what_is_not_a_sample_photo() -> None:
    with pytest.raises(TypeError, match="name must be a str; got PosixPath"):
        convmat.load_photo(Path("grace_hopper.jpg"))  # type: ignore[arg-type]
    for name in ("Stocks.csv", "no_such_photo.jpg"):
        with pytest.raises(ValueError, match=rf"name must be a \.jpg or \.png file.*got '{name}'"):
            convmat.load_photo(name)
    with pytest.raises(ValueError, match=r"name must be a \.jpg or \.png file"):
        superres_demo(name="Stocks.csv")


def test_downscale_averages_2x2_blocks_and_drops_a_ragged_edge() -> None:
    x = np.arange(20.0).reshape(4, 5)
    assert_array_equal(downscale(x), [[3.0, 5.0], [13.0, 15.0]])
    assert_allclose(downscale(np.ones((9, 9)), 3), np.ones((3, 3)))


def test_psnr_by_hand() -> None:
    assert psnr(np.full(4, 0.1), np.zeros(4)) == pytest.approx(20.0)
    assert psnr(np.full(4, 1.5), np.ones(4)) == float("inf")  # clipped to 1 first


def test_every_method_is_scored(result: SuperResolution) -> None:
    names = ["nearest", "bilinear", "bicubic", "bed of nails", K4, K3, K8]
    assert list(result.psnr) == names == list(result.outputs) == list(result.periodic)
    assert result.original.shape == (600, 512) and result.low.shape == (300, 256)
    assert all(image.shape == (600, 512) for image in result.outputs.values())
    assert all(result.phase_mse[name].shape == (2, 2) for name in names)


def test_learned_beats_fixed_of_the_same_support(result: SuperResolution) -> None:
    """k=4 spans nearest and bilinear, k=8 spans bicubic: least squares can only do better."""
    p = result.psnr
    assert p[K4] > p["bilinear"] > p["nearest"]
    assert p[K8] > p["bicubic"]
    assert p[K4] > p[K3] > p["nearest"]
    assert min(p, key=p.__getitem__) == "bed of nails"
    assert result.best == K8
    # Not a fit to the test pixels: refitted on the top half, scored on the bottom half.
    h = result.heldout_psnr
    assert h[K4] > h["bilinear"] and h[K8] > h["bicubic"]


def test_k3_shows_the_checkerboard_in_its_error(result: SuperResolution) -> None:
    assert result.periodic[K3] > 10 * result.periodic[K4]
    # Phase (0, 0) gets one tap of the k=3 kernel: a scaled copy, as nearest's is.
    assert checkerboard(3, 2).phase_counts == ((2, 1),)
    k3 = result.phase_mse[K3]
    assert k3[0, 0] == k3.max() and k3.max() / k3.min() > 1.2
    assert_allclose(k3[0, 0], result.phase_mse["nearest"][0, 0], rtol=0.01)
    k4 = result.phase_mse[K4]
    assert k4.max() / k4.min() < 1.05


def test_fits_are_reported(result: SuperResolution) -> None:
    assert set(result.fits) == {K4, K3, K8}
    assert result.fits[K4].weight.shape == (1, 1, 4, 4)
    assert 0 < result.fits[K4].relative_residual < result.fits[K3].relative_residual < 0.2
    table = result.table().splitlines()
    assert table[0].split()[:3] == ["method", "PSNR", "dB"]
    assert len(table) == 2 + 7


def test_pngs_are_written(result: SuperResolution) -> None:
    assert [Path(f).name for f in result.files] == ["superres_images.png", "superres_errors.png"]
    for name in result.files:
        assert Path(name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_out_writes_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    import convmat._demo as demo

    monkeypatch.setattr(demo, "FITTED", {K4: demo.FITTED[K4]})
    assert superres_demo().files == ()
    assert list(tmp_path.iterdir()) == []


def test_cli_prints_the_table_and_the_kernels(
    result: SuperResolution, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import convmat._demo as demo

    seen: list[Any] = []
    monkeypatch.setattr(demo, "superres_demo", lambda out: seen.append(out) or result)
    assert main(["demo", "superres", "--out", "somewhere"]) == 0
    assert seen == ["somewhere"]
    out = capsys.readouterr().out
    assert out.startswith("Super-resolution x2 of matplotlib's grace_hopper.jpg: 600x512")
    assert result.table() in out
    assert f"best PSNR: {K8}" in out
    assert "wrote " in out and "superres_errors.png" in out


def test_missing_matplotlib_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ModuleNotFoundError, match="needs matplotlib"):
        load_photo()
    assert main(["demo", "superres"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("convmat demo: error: the super-resolution demo")


def test_demo_needs_a_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["demo"])
    assert exc.value.code == 2


def test_demo_and_plot_do_not_import_each_other_at_import_time() -> None:
    """Issue 12, class 17: plot read LUMA from _demo while _demo drew with plot."""
    import ast

    import convmat._demo
    import convmat.plot

    def imported(module: Any, top_level_only: bool) -> set[str]:
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        nodes = tree.body if top_level_only else list(ast.walk(tree))
        names: set[str] = set()
        for node in nodes:
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        return names

    assert not {"convmat._demo", "convmat"} & imported(convmat.plot, top_level_only=False)
    assert "convmat.plot" not in imported(convmat._demo, top_level_only=True)
    assert convmat._demo.LUMA == convmat.plot.LUMA == (0.299, 0.587, 0.114)
