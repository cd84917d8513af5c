"""Run-folder lock, write failures, deterministic switch and safe checkpoint loading."""

from __future__ import annotations

import ast
import errno
import json
import os
import subprocess
import sys
import time

import pytest
import torch
from conftest import NUCLEI_CONFIGS, NUCLEI_TINY, REPO_ROOT, slow_nuclei_training

from medkit.bundle.errors import UserError
from medkit.bundle.run import LOCK_FILENAME, lock_run_folder, release_locks, set_deterministic


def test_a_live_run_holds_its_folder_and_a_dead_ones_lock_is_taken_over(tmp_path, caplog):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / LOCK_FILENAME).write_text(
            json.dumps({"pid": other.pid, "host": os.uname().nodename, "started": "t"})
        )
        with pytest.raises(UserError, match=rf"in use by another run \(pid {other.pid} on .*: wait for it to end or"):
            lock_run_folder(tmp_path)
    finally:
        other.kill()
        other.wait()
    with caplog.at_level("WARNING"):
        lock_run_folder(tmp_path)  # the holder is gone
    assert "no longer runs" in caplog.text
    assert json.loads((tmp_path / LOCK_FILENAME).read_text())["pid"] == os.getpid()
    lock_run_folder(tmp_path)  # this process again (a resume in the same session)
    release_locks()
    assert not (tmp_path / LOCK_FILENAME).exists()


def test_two_trainings_into_one_folder_the_second_refuses(tmp_path):
    from medkit.data.synthetic_nuclei import generate_nuclei_dataset

    data = generate_nuclei_dataset(tmp_path / "data", num_images=10, image_size=64, seed=0)
    slow, marker, env = slow_nuclei_training(tmp_path, iteration=1, seconds=2.0)
    args = ["--output_dir", str(tmp_path / "run"), "--dataset_dir", str(data), "--epochs", "2", *NUCLEI_TINY]
    run = [sys.executable, "-m", "monai.bundle", "run", "--config_file"]
    first = subprocess.Popen(
        [*run, slow, *args], cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + 120
        while not marker.exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        second = subprocess.run(
            [*run, str(NUCLEI_CONFIGS / "train.json"), *args],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        first.kill()
        first.wait()
    assert second.returncode != 0
    last = second.stderr.strip().splitlines()[-1]
    assert "is in use by another run" in last and "pass another --output_dir" in last
    assert "Epoch" not in second.stdout + second.stderr, "the second run stopped before training"
    assert (tmp_path / "run" / "train.log").read_text().count("run folder") == 1, "one run's log only"


def test_a_failed_write_stops_with_one_line_and_keeps_the_earlier_checkpoint(tmp_path, monkeypatch):
    from test_preemption import _build

    trainer, *_ = _build(tmp_path)
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        if trainer.state.epoch >= 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(f))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(UserError) as error:
        trainer.run()
    message = str(error.value)
    assert message.startswith(f"cannot write into {tmp_path}: No space left on device (")
    assert "the checkpoints written before are kept" in message
    assert torch.load(tmp_path / "checkpoint_epoch=1.pt", weights_only=True)["trainer"]["iteration"] == 5


def test_deterministic_switch():
    try:
        set_deterministic("true")
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        set_deterministic(False)
    assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic


def _torch_load_calls(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "load":
            if getattr(node.func.value, "id", None) == "torch":
                yield node


def test_every_checkpoint_load_is_weights_only():
    """Checkpoints are read with torch.load(weights_only=True): a checkpoint file cannot run code."""
    unsafe = []
    for root in ("medkit", "scripts"):
        for path in sorted((REPO_ROOT / root).rglob("*.py")):
            for call in _torch_load_calls(path):
                flags = {k.arg: k.value for k in call.keywords}
                if not (isinstance(flags.get("weights_only"), ast.Constant) and flags["weights_only"].value is True):
                    unsafe.append(f"{path.relative_to(REPO_ROOT)}:{call.lineno}")
    assert unsafe == []
    assert (
        sum(1 for root in ("medkit", "scripts") for p in (REPO_ROOT / root).rglob("*.py") for _ in _torch_load_calls(p))
        > 3
    )
