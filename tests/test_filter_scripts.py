"""Smoke tests for scripts/bench_conv2d.py and scripts/filter_figure.py, run in-process on tiny inputs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_conv2d_prints_json_with_ratios(capsys: pytest.CaptureFixture[str]):
    bench = _load("bench_conv2d")
    assert bench.main(["--sizes", "12", "20", "--kernels", "3", "4", "--repeats", "1", "--naive-max", "12"]) == 0
    result = json.loads(capsys.readouterr().out)
    cases = {(c["image"], c["kernel"]): c for c in result["cases"]}
    assert sorted(cases) == [("12x12", "3x3"), ("12x12", "4x4"), ("20x20", "3x3"), ("20x20", "4x4")]
    for (image, _), case in cases.items():
        assert case["max_abs_diff_vs_scipy"] < 1e-12 and case["ratio_scipy_over_medkit"] > 0
        # convolve2d and ndimage.convolve with the flipped kernel, cropped to "valid": the same sum, even kernels too
        assert case["max_abs_diff_vs_convolve2d"] < 1e-12 and case["max_abs_diff_vs_ndimage"] < 1e-12
        assert case["ratio_convolve2d_over_medkit"] > 0 and case["ratio_ndimage_over_medkit"] > 0
        assert (case["naive_loop_s"] is None) == (case["textbook_loop_s"] is None) == (image == "20x20")
    assert cases[("12x12", "3x3")]["max_abs_diff_naive_vs_scipy"] < 1e-12
    assert cases[("12x12", "4x4")]["max_abs_diff_textbook_vs_scipy"] < 1e-12


def test_bench_conv2d_plot_draws_each_method_that_ran(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    bench = _load("bench_conv2d")
    out = tmp_path / "fig" / "times.png"
    argv = ["--sizes", "12", "20", "--kernels", "3", "5", "--repeats", "1", "--naive-max", "12", "--plot", str(out)]
    assert bench.main(argv) == 0
    cases = json.loads(capsys.readouterr().out)["cases"]
    with Image.open(out) as png:
        assert png.format == "PNG"
    fig = bench.plot_cases(cases, tmp_path / "again.png")
    small, large = fig.axes
    assert small.get_yscale() == "log" and small.get_title().startswith("12x12")
    lines = {line.get_label(): line for line in small.get_lines()}
    assert sorted(lines) == sorted(bench.METHODS)  # the loops ran at 12x12 only
    assert sorted(line.get_label() for line in large.get_lines()) == sorted(list(bench.METHODS)[:4])
    textbook = lines["textbook loop"]
    assert list(textbook.get_xdata()) == [3, 5]
    expected = [c["textbook_loop_s"] * 1e3 for c in cases if c["image"] == "12x12"]
    np.testing.assert_allclose(textbook.get_ydata(), expected)


def test_naive_loop_is_the_same_sum():
    bench = _load("bench_conv2d")
    image, kernel = np.arange(12.0).reshape(3, 4), np.array([[1.0, -1.0]])
    np.testing.assert_array_equal(bench.naive_correlate2d(image, kernel), -np.ones((3, 3)))
    np.testing.assert_array_equal(bench.textbook_correlate2d(image, kernel), -np.ones((3, 3)))


def test_filter_figure_writes_a_png(tmp_path: Path):
    figure = _load("filter_figure")
    panels = figure.filter_panels(np.tile(np.repeat([0, 255], 8).astype(np.uint8), (16, 1)), box_size=3, sigma=1.0)
    assert len(panels) == 6 and panels["Sobel horizontal edges (Gy)"].shape == (14, 14)
    assert np.all(panels["Sobel horizontal edges (Gy)"] == 0) and panels["Sobel vertical edges (Gx)"].max() == 4.0
    out = tmp_path / "fig" / "camera.png"
    assert figure.main(["--image", "camera", "--out", str(out)]) == 0
    with Image.open(out) as png:
        assert png.format == "PNG" and png.size == (1200, 850)
