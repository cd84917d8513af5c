"""Smoke tests of scripts/bench_nuclei.py, bench_dna.py and bench_medmnist.py on tiny inputs: the JSON each prints
(no timing assertions)."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from conftest import REPO_ROOT
from monai.data import set_track_meta

from medkit.data.synthetic_nuclei import generate_nuclei_dataset

TIMING = ["--iterations", "3", "--warmup", "1", "--repeats", "2"]


def _load(script: str):
    spec = importlib.util.spec_from_file_location(script, REPO_ROOT / "scripts" / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _restore_meta_tracking():
    yield
    set_track_meta(True)  # the bundle's initialize turns it off for training


def _nuclei_args(tmp_path):
    data = generate_nuclei_dataset(tmp_path / "data", num_images=6, image_size=32, seed=0)
    return ["--data", str(data), "--set", "spatial_size=[32,32]", "channels=[4,8]", "batch_size=2"]


def _medmnist_args(tmp_path):
    return ["--set", "batch_size=8", 'network="mlp"']


def _dna_args(tmp_path):
    return ["--num-sequences", "200", "--set", "batch_size=16", "hidden_dim=8"]


@pytest.mark.parametrize(
    ("script", "make_args", "unit", "expected_overrides"),
    [
        ("bench_nuclei", _nuclei_args, "images", {"spatial_size": [32, 32], "channels": [4, 8], "batch_size": 2}),
        ("bench_medmnist", _medmnist_args, "images", {"batch_size": 8, "network": "mlp"}),
        ("bench_dna", _dna_args, "sequences", {"batch_size": 16, "hidden_dim": 8}),
    ],
    ids=["nuclei", "medmnist", "dna"],
)
def test_prints_throughput_json(tmp_path, capsys, script, make_args, unit, expected_overrides):
    assert _load(script).main([*TIMING, *make_args(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    for loop in ("bundle", "plain_loop", "compute_only"):
        assert result[f"{loop}_{unit}_per_s"] > 0, loop
        assert result[f"{loop}_ms_per_iteration"] > 0, loop
        each = result[f"{loop}_{unit}_per_s_each"]
        assert len(each) == 2 and all(v > 0 for v in each), loop
    for ratio in ("ratio_bundle_vs_plain", "ratio_bundle_vs_compute", "ratio_plain_vs_compute"):
        assert result[ratio] > 0, ratio
    bundle, plain, compute = (result[f"{loop}_{unit}_per_s"] for loop in ("bundle", "plain_loop", "compute_only"))
    # ratios are rounded to 3 decimals
    assert result["ratio_bundle_vs_compute"] == pytest.approx(bundle / compute, rel=0.01, abs=5e-4)
    assert result["ratio_plain_vs_compute"] == pytest.approx(plain / compute, rel=0.01, abs=5e-4)
    assert result["ratio_bundle_vs_plain"] == pytest.approx(bundle / plain, rel=0.01, abs=5e-4)
    assert result["batch_size"] == expected_overrides["batch_size"]
    assert result["overrides"] == expected_overrides
    assert result["device"].startswith("cuda:0 (" if torch.cuda.is_available() else "cpu")
    for gpu in (result["gpu_utilisation"], result["gpu_utilisation_compute_only"]):
        if gpu["available"]:  # on a GPU machine with nvidia-smi
            assert gpu["samples"] > 0 and 0 <= gpu["sm_util_mean_pct"] <= gpu["sm_util_max_pct"] <= 100
        else:
            assert gpu["reason"] and gpu["sm_util_mean_pct"] is None
    if script == "bench_nuclei":
        assert result["seconds_per_epoch"] > 0


def test_medmnist_data_takes_an_npz_or_its_folder(tmp_path):
    bench = _load("bench_medmnist")
    npz = tmp_path / "breastmnist_28.npz"
    npz.write_bytes(b"")
    assert bench.dataset_dir_and_flag(npz, {}) == (tmp_path, {"flag": "breastmnist"})
    assert bench.dataset_dir_and_flag(npz, {"flag": "pathmnist"}) == (tmp_path, {"flag": "pathmnist"})
    assert bench.dataset_dir_and_flag(tmp_path, {"batch_size": 4}) == (tmp_path, {"batch_size": 4})
    with pytest.raises(ValueError, match="must be a MedMNIST .npz"):
        bench.dataset_dir_and_flag(tmp_path / "missing.npz", {})
