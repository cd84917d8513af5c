"""Smoke test of scripts/bench_classification.py on tiny inputs: the JSON it prints (no timing assertions)."""

from __future__ import annotations

import importlib.util
import json

import pytest
from conftest import REPO_ROOT
from monai.data import set_track_meta


@pytest.fixture
def bench(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no ImageNet file is read either way
    spec = importlib.util.spec_from_file_location(
        "bench_classification", REPO_ROOT / "scripts" / "bench_classification.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    set_track_meta(True)  # the bundle's initialize turns it off for training


def test_prints_throughput_json(bench, capsys):
    args = ["--num-patches", "12", "--batch-size", "2", "--spatial-size", "32", "--iterations", "3", "--warmup", "1",
            "--repeats", "1", "--set", "hidden_channels=8"]  # fmt: skip
    assert bench.main(args) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("bundle_images_per_s", "plain_loop_images_per_s", "ratio_bundle_vs_plain", "bundle_ms_per_iteration"):
        assert result[key] > 0, key
    assert result["batch_size"] == 2 and result["input_size"] == [3, 32, 32]
    assert result["overrides"]["hidden_channels"] == 8
