"""medkit.curves: reading TensorBoard scalars, ranking runs and plotting curves."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from torch.utils.tensorboard import SummaryWriter

from medkit.curves import best_and_worst, metric_mode, plot_curves, plot_groups, read_scalars, smooth

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


def test_plot_curves_and_groups_write_pngs(tmp_path):
    runs = {}
    for loss in ("dice", "bce"):
        for seed in range(3):
            name = f"{loss}_s{seed}"
            _write(tmp_path / name, "train_loss", {s: 1.0 / (s + seed + 1) for s in range(1, 6)})
            runs[name] = tmp_path / name
    curves = {n: read_scalars(d)["train_loss"] for n, d in runs.items()}
    png = plot_curves(curves, tmp_path / "a" / "c.png", tag="train_loss", highlight={"dice_s0": "best"}, failed=["x"])
    assert png.read_bytes()[:8] == PNG_MAGIC
    groups = {"dice": ["dice_s0", "dice_s1", "dice_s2"], "bce": ["bce_s0", "bce_s1", "bce_s2", "bce_failed"]}
    png = plot_groups({**runs, "bce_failed": tmp_path / "none"}, groups, tag="train_loss", out_path=tmp_path / "g.png",
                      smoothing=0.5)  # fmt: skip
    assert png.read_bytes()[:8] == PNG_MAGIC
