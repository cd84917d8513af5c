"""scripts/shapes_loss_table.py on a fake sweep folder (no training)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from torch.utils.tensorboard import SummaryWriter

REPO_ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("shapes_loss_table", REPO_ROOT / "scripts" / "shapes_loss_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    for loss, seed, iou in [("dice", 0, 0.5), ("dice", 1, 0.7), ("mse", 0, 0.2), ("mse", 1, 0.2), ("dice", 2, 0.9)]:
        run = tmp_path / f"loss={loss}__seed={seed}"
        (run / "eval").mkdir(parents=True)
        status = "failed" if seed == 2 else "ok"
        (run / "sweep_status.json").write_text(
            json.dumps({"status": status, "overrides": {"loss": loss, "seed": str(seed)}})
        )
        metrics = {"val_mean_iou": iou, "val_mean_dice": iou + 0.1, "val_dice_star": iou}
        (run / "eval" / "metrics.json").write_text(json.dumps({"metrics": metrics}))
        writer = SummaryWriter(log_dir=str(run))
        for epoch, value in ((1, 0.0), (2, iou / 2)):
            writer.add_scalar("val_mean_iou", value, epoch)
        writer.close()
    return tmp_path


def test_test_source_reads_metrics_json_and_skips_failed_runs(sweep, capsys):
    assert _load().main([str(sweep)]) == 0
    text = (sweep / "loss_table_test.md").read_text()
    assert "| mse | 2 | 0.200 ± 0.000 |" in text
    assert "| dice | 2 | 0.600 ± 0.141 |" in text  # seed 2 failed and is left out
    assert text.index("| mse") < text.index("| dice")
    assert "Dice star" in text.splitlines()[0]
    assert "skipping loss=dice__seed=2: failed" in capsys.readouterr().err


def test_val_source_reads_the_last_epoch_from_tensorboard(sweep):
    assert _load().main([str(sweep), "--source", "val"]) == 0
    assert "| dice | 2 | 0.300 ± 0.071 |" in (sweep / "loss_table_val.md").read_text()
