from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT
from monai.data import set_track_meta

from medkit.bench import (
    GPUUtilisation,
    bundle_parser,
    describe_device,
    parse_overrides,
    plain_train_step,
    seconds_per_bundle_iteration,
    seconds_per_plain_iteration,
    seconds_per_step,
)
from medkit.data.synthetic_nuclei import generate_nuclei_dataset

TRAIN = REPO_ROOT / "bundles" / "nuclei_seg" / "configs" / "train.json"
TINY = {"spatial_size": [32, 32], "channels": [4, 8], "batch_size": 2}


@pytest.fixture
def _restore_meta_tracking():
    yield
    set_track_meta(True)  # the bundle's initialize turns it off for training


def test_parser_points_the_bundle_at_the_given_data(tmp_path):
    parser = bundle_parser(TRAIN, tmp_path / "d", tmp_path / "o", {"epochs": 3})
    assert parser.get_parsed_content("dataset_dir") == str(tmp_path / "d")
    assert parser.get_parsed_content("default_dataset_dir") == str(tmp_path / "d")
    assert parser.get_parsed_content("output_dir") == str(tmp_path / "o")
    assert parser.get_parsed_content("epochs") == 3


def test_times_the_bundle_trainer(tmp_path, _restore_meta_tracking):
    data = generate_nuclei_dataset(tmp_path / "data", num_images=6, image_size=32, seed=0)
    seconds = seconds_per_bundle_iteration(TRAIN, data, tmp_path / "out", iterations=4, warmup=1, overrides=TINY)
    assert seconds > 0
    with pytest.raises(ValueError, match="warmup=4, iterations=4"):
        seconds_per_bundle_iteration(TRAIN, data, tmp_path / "out", iterations=4, warmup=4, overrides=TINY)


def test_seconds_per_step_cycles_the_batches_and_checks_warmup():
    seen = []
    seconds = seconds_per_step(seen.append, [1, 2, 3], iterations=7, warmup=2)
    assert seen == [1, 2, 3, 1, 2, 3, 1] and seconds >= 0
    with pytest.raises(ValueError, match="warmup=7, iterations=7"):
        seconds_per_step(seen.append, [1], iterations=7, warmup=7)
    with pytest.raises(ValueError, match="no batches"):
        seconds_per_step(seen.append, [], iterations=3, warmup=1)


def test_compute_and_plain_loops_time_the_bundle_parts(tmp_path, _restore_meta_tracking):
    data = generate_nuclei_dataset(tmp_path / "data", num_images=6, image_size=32, seed=0)
    compute_s = seconds_per_bundle_iteration(
        TRAIN, data, tmp_path / "c", 3, warmup=1, overrides=TINY, compute_only=True
    )
    assert compute_s > 0
    assert seconds_per_plain_iteration(TRAIN, data, tmp_path / "p", iterations=3, warmup=1, overrides=TINY) > 0


def test_plain_step_trains_the_bundle_network(tmp_path, _restore_meta_tracking):
    data = generate_nuclei_dataset(tmp_path / "data", num_images=6, image_size=32, seed=0)
    parser = bundle_parser(TRAIN, data, tmp_path / "o", TINY)
    step, device = plain_train_step(parser)
    network = parser.get_parsed_content("network")
    assert device == torch.device(parser.get_parsed_content("device")) and network.training
    batch = next(iter(parser.get_parsed_content("train#dataloader")))
    x, y = batch["image"].to(device), batch["label"].to(device)
    losses = [step(x, y).item() for _ in range(8)]
    assert losses[-1] < losses[0], losses  # the optimizer steps the same network the loss is taken of


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], {}),
        (
            ["batch_size=8", "channels=[4, 8]", 'flag="pathmnist"'],
            {"batch_size": 8, "channels": [4, 8], "flag": "pathmnist"},
        ),
        (["expr==1"], None),
        (["batch_size"], None),
        (["flag=pathmnist"], None),
    ],
    ids=["none", "json-values", "double-equals", "no-equals", "bare-string"],
)
def test_parse_overrides(items, expected):
    if expected is None:
        with pytest.raises(ValueError, match="KEY=JSON"):
            parse_overrides(items)
    else:
        assert parse_overrides(items) == expected


def test_describe_device():
    assert describe_device("cpu") == "cpu"
    assert describe_device(torch.device("cpu")) == "cpu"


# nvidia-smi's csv lines: utilisation %, memory MiB; [N/A] lines (e.g. under MIG) are skipped
FAKE_SMI = """#!/bin/sh
echo "$@" > "{folder}/args"
printf '10, 1000\\n[N/A], 1100\\n30, 1500\\n50, 1200\\n'
touch "{folder}/done"
"""


def _fake_nvidia_smi(folder: Path, script: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    smi = folder / "nvidia-smi"
    smi.write_text(script.format(folder=folder))
    smi.chmod(0o755)
    return folder


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 10
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_gpu_utilisation_from_nvidia_smi(tmp_path, monkeypatch):
    folder = _fake_nvidia_smi(tmp_path / "bin", FAKE_SMI)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    gpu = GPUUtilisation(interval_ms=100)
    with gpu:
        _wait_for(folder / "done")  # every line is in the pipe before the sampler stops nvidia-smi
    # samples (10, 1000), (30, 1500), (50, 1200): mean (10 + 30 + 50) / 3 = 30, max 50, memory max 1500
    assert gpu.summary() == {
        "available": True,
        "gpu": "3",
        "interval_ms": 100,
        "samples": 3,
        "sm_util_mean_pct": 30.0,
        "sm_util_max_pct": 50.0,
        "memory_used_max_mib": 1500.0,
    }
    args = (folder / "args").read_text().split()
    assert "--query-gpu=utilization.gpu,memory.used" in args and "--format=csv,noheader,nounits" in args
    assert args[args.index("-lms") + 1] == "100" and args[args.index("-i") + 1] == "3"
    (folder / "done").unlink()
    with gpu:  # a second block adds its samples to the first's
        _wait_for(folder / "done")
    assert gpu.summary()["samples"] == 6 and gpu.summary()["sm_util_mean_pct"] == 30.0


def test_gpu_utilisation_reports_nvidia_smi_errors(tmp_path, monkeypatch):
    script = "#!/bin/sh\necho 'No devices were found' >&2\nexit 6\n"
    monkeypatch.setenv("PATH", f"{_fake_nvidia_smi(tmp_path / 'bin', script)}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with GPUUtilisation(index=0) as gpu:
        pass
    summary = gpu.summary()
    assert summary["available"] is False and summary["samples"] == 0 and summary["gpu"] == "0"
    assert summary["reason"] == "nvidia-smi gave no samples: No devices were found"
    assert summary["sm_util_mean_pct"] is None and summary["memory_used_max_mib"] is None


@pytest.mark.parametrize(
    ("cuda", "reason"),
    [(False, "CUDA is not available: training runs on the CPU"), (True, "nvidia-smi not found on PATH")],
    ids=["no-cuda", "no-nvidia-smi"],
)
def test_gpu_utilisation_without_a_gpu(tmp_path, monkeypatch, cuda, reason):
    _fake_nvidia_smi(tmp_path / "bin", FAKE_SMI)
    monkeypatch.setenv("PATH", str(tmp_path / "bin") if not cuda else str(tmp_path / "empty"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    with GPUUtilisation() as gpu:
        pass
    assert gpu.summary() == {
        "available": False,
        "gpu": "0",
        "interval_ms": 200,
        "samples": 0,
        "reason": reason,
        "sm_util_mean_pct": None,
        "sm_util_max_pct": None,
        "memory_used_max_mib": None,
    }
    assert not (tmp_path / "bin" / "args").exists()  # nvidia-smi was not started
