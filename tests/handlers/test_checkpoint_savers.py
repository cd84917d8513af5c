"""Checkpoint files: atomic writes that replace the old file only once the new one is written; the best model and
the best-metric state across a resume; picking the checkpoint to resume from."""

from __future__ import annotations

import os
import time

import pytest
import torch
from ignite.engine import Engine
from ignite.handlers import Checkpoint

from medkit.handlers.checkpoint import BestMetricState, BestModelSaver, SafeDiskSaver, find_resume_checkpoint


def _engine(epoch: int) -> Engine:
    engine = Engine(lambda e, b: None)
    engine.state.epoch = epoch
    return engine


def test_a_failed_write_keeps_the_previous_checkpoint_and_leaves_no_partial_file(tmp_path, monkeypatch):
    net = torch.nn.Linear(2, 1)
    checkpoint = Checkpoint(
        {"model": net, "other": torch.nn.Linear(1, 1)},
        SafeDiskSaver(tmp_path),
        filename_pattern="checkpoint_epoch={global_step}.{ext}",
        global_step_transform=lambda engine, _: engine.state.epoch,
        n_saved=1,
    )
    checkpoint(_engine(1))
    assert sorted(os.listdir(tmp_path)) == ["checkpoint_epoch=1.pt"]
    real_save = torch.save

    def fail_midway(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", fail_midway)
    with pytest.raises(OSError):
        checkpoint(_engine(2))
    assert sorted(os.listdir(tmp_path)) == ["checkpoint_epoch=1.pt"], "old kept, no partial or temporary file"
    assert set(torch.load(tmp_path / "checkpoint_epoch=1.pt", weights_only=True)) == {"model", "other"}
    monkeypatch.setattr(torch, "save", real_save)
    checkpoint(_engine(3))
    assert sorted(os.listdir(tmp_path)) == ["checkpoint_epoch=3.pt"], "the old one goes once the new one is written"


def test_best_model_is_written_only_when_this_run_set_a_new_best(tmp_path):
    net = torch.nn.Linear(2, 1)
    saver = BestModelSaver(net, tmp_path)
    engine = _engine(3)
    engine.state.best_metric, engine.state.best_metric_epoch = 0.5, 2
    saver(engine)
    assert not (tmp_path / "model.pt").exists()
    engine.state.best_metric_epoch = 3
    saver(engine)
    weights = torch.load(tmp_path / "model.pt", weights_only=True)
    assert set(weights) == {"weight", "bias"}, "a bare state dict, as MONAI's bundles publish"


def test_best_metric_state_round_trips():
    source, target = _engine(4), _engine(1)
    source.state.best_metric, source.state.best_metric_epoch = 0.875, 3
    BestMetricState(target).load_state_dict(BestMetricState(source).state_dict())
    assert (target.state.best_metric, target.state.best_metric_epoch) == (0.875, 3)


def test_resume_picks_the_newest_of_epoch_final_and_interrupted(tmp_path):
    for i, name in enumerate(["checkpoint_epoch=2.pt", "model_final.pt", "checkpoint_interrupted.pt"]):
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (time.time() + i, time.time() + i))
    assert find_resume_checkpoint(tmp_path).endswith("checkpoint_interrupted.pt")
    os.utime(tmp_path / "checkpoint_epoch=2.pt", (time.time() + 9, time.time() + 9))
    assert find_resume_checkpoint(tmp_path).endswith("checkpoint_epoch=2.pt")
    with pytest.raises(FileNotFoundError, match="holds no model_final.pt, checkpoint_epoch=N.pt or checkpoint_inter"):
        find_resume_checkpoint(tmp_path / "empty")
