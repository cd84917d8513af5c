"""scripts/compare_endo_pretraining.py: which runs it launches and the table it writes (bundle runs faked)."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("compare_endo", REPO_ROOT / "scripts" / "compare_endo_pretraining.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# distinct values everywhere, so a column or variant mix-up shows: tenths name the variant, hundredths the metric
TEST_METRICS = {
    "scratch": {"background": 0.11, "shaft": 0.12, "mean_fg": 0.13, "mean": 0.14},
    "flips": {"background": 0.21, "shaft": 0.22, "mean_fg": 0.23, "mean": 0.24},
    "pretrained": {"background": 0.31, "shaft": 0.32, "mean_fg": 0.33, "mean": 0.34},
}
VAL_CURVES = {"scratch": [0.2, 0.45, 0.4], "flips": [0.5, 0.3, 0.55], "pretrained": [0.65, 0.6, 0.1]}
TRAIN_S = {"pretrain_colorization": 7.0, "scratch": 2.0, "flips": 3.0, "pretrained": 4.0}


def test_runs_pretraining_then_three_variants_with_the_same_settings(tmp_path, monkeypatch, capsys):
    script = _load()
    calls = []

    def fake_bundle(layers, args, log):
        calls.append((layers, args))
        out = Path(args[args.index("--output_dir") + 1])
        if layers[-1] == "evaluate.json":
            values = TEST_METRICS[out.name]
            metrics = {f"test_dice_{n}": values[n] for n in ("background", "shaft", "mean_fg", "mean")}
            (out / "eval").mkdir(parents=True)
            payload = {"classes": ["background", "shaft"], "metrics": metrics}
            (out / "eval" / "metrics.json").write_text(json.dumps(payload))
            return 9.0  # evaluation time, which must not reach train_s
        return TRAIN_S[out.name]

    monkeypatch.setattr(script, "_bundle", fake_bundle)
    monkeypatch.setattr(script, "_val_curve", lambda run_dir: VAL_CURVES[Path(run_dir).name])
    argv = ["--runs-root", str(tmp_path), "--epochs", "3", "--pretrain-epochs", "2", "--", "--lr", "1"]
    assert script.main(argv) == 0

    assert [c[0] for c in calls] == [
        ["train.json", "pretrain_colorization.json"],
        ["train.json"], ["train.json", "evaluate.json"],
        ["train.json"], ["train.json", "evaluate.json"],
        ["train.json", "finetune.json"], ["train.json", "finetune.json", "evaluate.json"],
    ]  # fmt: skip
    assert [Path(a[a.index("--output_dir") + 1]).name for _, a in calls] == [
        "pretrain_colorization", "scratch", "scratch", "flips", "flips", "pretrained", "pretrained",
    ]  # fmt: skip
    trains = [args for layers, args in calls[1:] if layers[-1] != "evaluate.json"]
    assert all(a[a.index("--epochs") + 1] == "3" and a[a.index("--lr") + 1] == "1" for a in trains)
    assert calls[0][1][calls[0][1].index("--epochs") + 1] == "2"
    assert [a[a.index("--augmentation") + 1] for a in trains] == ["none", "flips", "none"]
    assert trains[2][trains[2].index("--pretrained_ckpt") + 1] == str(tmp_path / "pretrain_colorization" / "model.pt")
    assert "--pretrained_ckpt" not in trains[0] + trains[1]

    printed = json.loads(capsys.readouterr().out)
    assert printed["pretrain_s"] == 7.0 and printed["epochs"] == 3
    # best_val_dice is the maximum of the curve, not its last value; test_dice is the foreground mean
    assert printed["rows"] == [
        {"variant": "scratch", "best_val_dice": 0.45, "test_dice": 0.13, "test_dice_with_background": 0.14,
         "test_background": 0.11, "test_shaft": 0.12, "train_s": 2.0},
        {"variant": "flips", "best_val_dice": 0.55, "test_dice": 0.23, "test_dice_with_background": 0.24,
         "test_background": 0.21, "test_shaft": 0.22, "train_s": 3.0},
        {"variant": "pretrained", "best_val_dice": 0.65, "test_dice": 0.33, "test_dice_with_background": 0.34,
         "test_background": 0.31, "test_shaft": 0.32, "train_s": 4.0},
    ]  # fmt: skip
    columns = ["variant", "best_val_dice", "test_dice", "test_dice_with_background", "test_background", "test_shaft"]
    columns.append("train_s")
    assert (tmp_path / "summary.md").read_text().splitlines() == [
        "| " + " | ".join(columns) + " |",
        "|---|---|---|---|---|---|---|",
        "| scratch | 0.450 | 0.130 | 0.140 | 0.110 | 0.120 | 2.0 |",
        "| flips | 0.550 | 0.230 | 0.240 | 0.210 | 0.220 | 3.0 |",
        "| pretrained | 0.650 | 0.330 | 0.340 | 0.310 | 0.320 | 4.0 |",
    ]
    with open(tmp_path / "summary.csv", newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == columns
    assert table[2] == ["flips", "0.55", "0.23", "0.24", "0.21", "0.22", "3.0"]
    assert (tmp_path / "val_dice.png").is_file()
