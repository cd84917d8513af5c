"""medkit.curves: reading TensorBoard scalars, ranking runs and plotting curves."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from matplotlib.colors import to_rgba
from torch.utils.tensorboard import SummaryWriter

from medkit.curves import best_and_worst, best_point, metric_mode, plot_curves, plot_groups, read_scalars, smooth

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write(run_dir: Path, tag: str, points: dict[int, float]) -> Path:
    before = set(run_dir.glob("events.out.tfevents.*"))
    writer = SummaryWriter(log_dir=str(run_dir), filename_suffix=f".{len(before)}")
    for step, value in points.items():
        writer.add_scalar(tag, value, step)
    writer.close()
    (path,) = set(run_dir.glob("events.out.tfevents.*")) - before
    return path


def test_read_scalars_merges_resumed_runs(tmp_path):
    first = _write(tmp_path, "val_dice", {1: 0.1, 2: 0.2, 3: 0.25})
    os.utime(first, (1_000, 1_000))  # older file: a resumed run re-logs epoch 3 in a newer file
    _write(tmp_path, "val_dice", {3: 0.3, 4: 0.4})
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2
    steps, values = read_scalars(tmp_path)["val_dice"]
    assert steps == [1, 2, 3, 4] and values == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert read_scalars(tmp_path / "missing") == {}


@pytest.mark.parametrize(
    "scores, mode, expected",
    [
        ({"a": 0.5, "b": 0.9, "c": 0.1}, "max", {"b": "best", "c": "worst"}),
        ({"a": 0.5, "b": 0.9, "c": 0.1}, "min", {"c": "best", "b": "worst"}),
        ({"a": 0.5, "b": None}, "max", {"a": "best"}),
        ({"a": 0.5, "b": 0.5}, "max", {}),
        ({}, "max", {}),
    ],
    ids=["max", "min", "one-scored", "tie", "empty"],
)
def test_best_and_worst(scores, mode, expected):
    assert best_and_worst(scores, mode) == expected


def test_best_and_worst_rejects_bad_mode():
    with pytest.raises(ValueError, match="mode"):
        best_and_worst({"a": 1.0}, "largest")


def test_smooth_and_mode():
    assert smooth([1.0, 0.0, 0.0], 0.5) == [1.0, 0.5, 0.25]
    assert smooth([1.0, 2.0], 0.0) == [1.0, 2.0]
    with pytest.raises(ValueError, match="smoothing"):
        smooth([1.0], 1.0)
    assert metric_mode("train_loss") == "min" and metric_mode("val_mean_dice") == "max"


CURVES = {
    "dice_s0": [0.9, 0.5, 0.3],
    "dice_s1": [0.8, 0.6, 0.4],
    "dice_s2": [1.0, 0.4, 0.2],
    "bce_s0": [0.7, 0.6, 0.5],
    "bce_s1": [0.6, 0.5, 0.45],
    "bce_s2": [0.9, 0.8, 0.7],
}


def _lines(ax) -> dict[str, tuple[list, list, tuple]]:
    return {
        line.get_label(): (list(line.get_xdata()), list(line.get_ydata()), to_rgba(line.get_color()))
        for line in ax.get_lines()
    }


def test_plot_curves_draws_each_run_and_marks_the_highlight(tmp_path, figures):
    for name, values in CURVES.items():
        _write(tmp_path / name, "train_loss", dict(enumerate(values, 1)))
    curves = {n: read_scalars(tmp_path / n)["train_loss"] for n in CURVES}
    png = plot_curves(curves, tmp_path / "a" / "c.png", tag="train_loss", highlight={"dice_s0": "best"}, failed=["x"])
    assert png.read_bytes()[:8] == PNG_MAGIC
    (ax,) = figures[0].axes
    lines = _lines(ax)
    assert list(lines) == ["dice_s0 (best)", *list(CURVES)[1:]]
    steps, values, colour = lines["dice_s0 (best)"]
    assert steps == [1, 2, 3] and values == pytest.approx([0.9, 0.5, 0.3]) and colour == to_rgba("tab:green")
    assert lines["bce_s2"][1] == pytest.approx([0.9, 0.8, 0.7])
    assert ax.get_title() == "train_loss\nfailed / no data: x" and ax.get_ylabel() == "train_loss"


def test_plot_groups_one_panel_per_group_best_and_worst_by_last_value(tmp_path, figures):
    for name, values in CURVES.items():
        _write(tmp_path / name, "train_loss", dict(enumerate(values, 1)))
    runs = {n: tmp_path / n for n in CURVES}
    groups = {"dice": ["dice_s0", "dice_s1", "dice_s2"], "bce": ["bce_s0", "bce_s1", "bce_s2", "bce_failed"]}
    png = plot_groups({**runs, "bce_failed": tmp_path / "none"}, groups, tag="train_loss", out_path=tmp_path / "g.png",
                      smoothing=0.5)  # fmt: skip
    assert png.read_bytes()[:8] == PNG_MAGIC
    dice_ax, bce_ax = figures[0].axes
    assert dice_ax.get_title() == "dice" and bce_ax.get_title() == "bce\nfailed / no data: bce_failed"
    # a loss ranks lowest first by its last value: dice_s2 (0.2) best, dice_s1 (0.4) worst; bce_s1 (0.45), bce_s2 (0.7)
    dice, bce = _lines(dice_ax), _lines(bce_ax)
    assert list(dice) == ["dice_s0", "dice_s1 (worst)", "dice_s2 (best)"]
    assert list(bce) == ["bce_s0", "bce_s1 (best)", "bce_s2 (worst)"]
    assert dice["dice_s2 (best)"][2] == to_rgba("tab:green") and dice["dice_s1 (worst)"][2] == to_rgba("tab:red")
    # smoothing 0.5 of [0.9, 0.5, 0.3]: 0.9, (0.9 + 0.5) / 2 = 0.7, (0.7 + 0.3) / 2 = 0.5
    assert dice["dice_s0"][0] == [1, 2, 3] and dice["dice_s0"][1] == pytest.approx([0.9, 0.7, 0.5])


@pytest.mark.parametrize(
    "mode, expected",
    [("max", (3, 0.9)), ("min", (1, 0.2))],
    ids=["max", "min"],
)
def test_best_point_is_the_first_best_step(mode, expected):
    assert best_point(([1, 3, 5, 7], [0.2, 0.9, 0.9, 0.5]), mode) == expected
    with pytest.raises(ValueError, match="mode"):
        best_point(([1], [0.1]), "largest")
