"""scripts/compare_endo_pretraining.py: which runs it launches and the table it writes (bundle runs faked)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("compare_endo", REPO_ROOT / "scripts" / "compare_endo_pretraining.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_runs_pretraining_then_three_variants_with_the_same_settings(tmp_path, monkeypatch, capsys):
    script = _load()
    calls = []

    def fake_bundle(layers, args, log):
        calls.append((layers, args))
        out = Path(args[args.index("--output_dir") + 1])
        if layers[-1] == "evaluate.json":
            names = ["background", "shaft"]
            metrics = {f"test_dice_{n}": 0.5 for n in names}
            metrics.update(test_dice_mean_fg=0.5, test_dice_mean=0.5)
            (out / "eval").mkdir(parents=True)
            (out / "eval" / "metrics.json").write_text(json.dumps({"classes": names, "metrics": metrics}))
        return 2.0

    monkeypatch.setattr(script, "_bundle", fake_bundle)
    monkeypatch.setattr(script, "_val_curve", lambda run_dir: [0.2, 0.4])
    argv = ["--runs-root", str(tmp_path), "--epochs", "3", "--pretrain-epochs", "2", "--", "--lr", "1"]
    assert script.main(argv) == 0

    assert [c[0] for c in calls] == [
        ["train.json", "pretrain_colorization.json"],
        ["train.json"], ["train.json", "evaluate.json"],
        ["train.json"], ["train.json", "evaluate.json"],
        ["train.json", "finetune.json"], ["train.json", "finetune.json", "evaluate.json"],
    ]  # fmt: skip
    trains = [args for layers, args in calls[1:] if layers[-1] != "evaluate.json"]
    assert all(a[a.index("--epochs") + 1] == "3" and a[a.index("--lr") + 1] == "1" for a in trains)
    assert [a[a.index("--augmentation") + 1] for a in trains] == ["none", "flips", "none"]
    assert trains[2][trains[2].index("--pretrained_ckpt") + 1] == str(tmp_path / "pretrain_colorization" / "model.pt")
    assert "--pretrained_ckpt" not in trains[0] + trains[1]

    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["variant"] for r in rows] == ["scratch", "flips", "pretrained"]
    assert rows[0]["best_val_dice"] == 0.4 and rows[0]["test_shaft"] == 0.5
    table = (tmp_path / "summary.md").read_text()
    assert "| scratch | 0.400 | 0.500 | 0.500 | 0.500 | 0.500 | 2.0 |" in table
    assert (tmp_path / "summary.csv").is_file() and (tmp_path / "val_dice.png").is_file()
