"""scripts/bn_stats_probe.py on a tiny generated MedMNIST-format file."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from medkit.data.medmnist import generate_medmnist_npz

REPO_ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bn_stats_probe", REPO_ROOT / "scripts" / "bn_stats_probe.py")
bn_stats_probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bn_stats_probe)


def test_prints_one_json_line_per_epoch(tmp_path, capsys):
    npz = generate_medmnist_npz(tmp_path / "breastmnist.npz", counts=(128, 8, 8), seed=0)
    bn_stats_probe.main([str(npz), "--epochs", "1"])
    row = json.loads(capsys.readouterr().out.strip())
    assert row["epoch"] == 1 and set(row) >= {"running", "precise", "batch", "test_precise", "furthest_layers"}
    assert all(0.0 <= v <= 1.0 for v in row["running"] + row["precise"] + row["batch"])
    name, shift, ratio = row["furthest_layers"][0]
    assert name.startswith("features") and shift >= 0 and ratio >= 1
