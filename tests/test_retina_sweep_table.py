"""scripts/retina_sweep_table.py on a fake sweep folder (no training, no evaluation)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from torch.utils.tensorboard import SummaryWriter

REPO_ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("retina_sweep_table", REPO_ROOT / "scripts" / "retina_sweep_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    runs = [("flips", 0, 0.8), ("flips", 1, 0.6), ("none", 0, 0.5), ("none", 1, 0.5), ("flips", 2, 0.9)]
    for aug, seed, dice in runs:
        run = tmp_path / f"augmentation={aug}__seed={seed}"
        (run / "eval").mkdir(parents=True)
        status = "failed" if seed == 2 else "ok"
        overrides = {"augmentation": aug, "seed": str(seed)}
        (run / "sweep_status.json").write_text(json.dumps({"status": status, "overrides": overrides}))
        metrics = {"val_fov_dice": dice, "val_fov_auc": 0.9, "val_fov_accuracy": 0.95}
        (run / "eval" / "metrics.json").write_text(json.dumps({"metrics": metrics}))
        writer = SummaryWriter(log_dir=str(run))
        for epoch, value in ((1, dice / 2), (2, dice), (3, dice - 0.1)):
            writer.add_scalar("val_fov_dice", value, epoch)
            writer.add_scalar("val_fov_auc", 0.7 + epoch / 10, epoch)  # 0.9 at epoch 2, the best Dice
        writer.close()
    return tmp_path


def test_groups_seeds_into_mean_and_sd_and_skips_failed_runs(sweep, capsys):
    assert _load().main([str(sweep), "--group-by", "augmentation"]) == 0
    lines = (sweep / "table.md").read_text().splitlines()
    assert lines[0].startswith("| augmentation | runs | test FOV Dice | test FOV ROC AUC | best val FOV Dice")
    # flips: test Dice 0.8 and 0.6 (seed 2 failed), sd sqrt(0.02) = 0.141; best val = the test value, last 0.1 lower
    assert lines[2] == "| flips | 2 | 0.700 ± 0.141 | 0.900 ± 0.000 | 0.700 ± 0.141 | 0.600 ± 0.141 | 0.900 ± 0.000 |"
    assert lines[3] == "| none | 2 | 0.500 ± 0.000 | 0.900 ± 0.000 | 0.500 ± 0.000 | 0.400 ± 0.000 | 0.900 ± 0.000 |"
    assert "skipping augmentation=flips__seed=2: failed" in capsys.readouterr().err


def test_one_run_per_group_prints_plain_values_without_test(sweep):
    assert _load().main([str(sweep), "--group-by", "augmentation", "seed", "--no-test"]) == 0
    lines = (sweep / "table.md").read_text().splitlines()
    assert (
        lines[0]
        == "| augmentation | seed | runs | best val FOV Dice | last val FOV Dice | val FOV ROC AUC at the best Dice |"
    )
    assert lines[2:] == [
        "| flips | 0 | 1 | 0.800 | 0.700 | 0.900 |",
        "| flips | 1 | 1 | 0.600 | 0.500 | 0.900 |",
        "| none | 0 | 1 | 0.500 | 0.400 | 0.900 |",
        "| none | 1 | 1 | 0.500 | 0.400 | 0.900 |",
    ]
