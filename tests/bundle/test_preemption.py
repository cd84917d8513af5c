"""Stopping safely: SIGTERM mid-epoch -> checkpoint, exit 75, exact resume; a NaN loss stops with one line; random
states survive a checkpoint (in-process, a small network with dropout, shuffled data and random transforms)."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch
from ignite.engine import Events
from monai.data import CacheDataset, DataLoader
from monai.handlers import MeanSquaredError, from_engine
from monai.transforms import Compose, RandGaussianNoised
from monai.utils import set_determinism

from medkit.bundle import build_evaluator, build_trainer
from medkit.bundle.errors import UserError
from medkit.bundle.preemption import INTERRUPTED_FILENAME, PREEMPTED_EXIT_CODE, get_rng_state, set_rng_state

EPOCHS, ITEMS, BATCH = 3, 20, 4  # 5 iterations an epoch


def _build(out_dir, resume=False, lr=0.01):
    """Everything a bundle builds, from the seed on, as a fresh process would."""
    set_determinism(seed=0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(ITEMS, 6, generator=g)
    items = [{"image": a, "label": a[:2].sum(0, keepdim=True)} for a in x]
    noise = Compose([RandGaussianNoised(keys="image", prob=0.7, std=0.3)])
    loader = DataLoader(CacheDataset(items, noise, progress=False), batch_size=BATCH, shuffle=True, drop_last=True)
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Dropout(0.3), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    evaluator = build_evaluator(
        device="cpu",
        val_data_loader=DataLoader(items[:8], batch_size=4),
        network=net,
        key_val_metric={"val_mse": MeanSquaredError(output_transform=from_engine(["pred", "label"]))},
        checkpoint_dir=out_dir,
        decollate=False,
    )
    trainer = build_trainer(
        device="cpu",
        max_epochs=EPOCHS,
        train_data_loader=loader,
        network=net,
        optimizer=opt,
        loss_function=torch.nn.MSELoss(),
        output_dir=out_dir,
        lr_scheduler=sched,
        validator=evaluator,
        resume=resume,
    )
    losses: dict[int, float] = {}
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED, lambda e: losses.__setitem__(e.state.iteration, e.state.output["loss"].item())
    )
    metrics: list[tuple[int, float]] = []
    evaluator.add_event_handler(
        Events.COMPLETED, lambda e: metrics.append((trainer.state.epoch, e.state.metrics["val_mse"]))
    )
    return trainer, net, losses, metrics


def _sigterm_at(trainer, iteration: int) -> None:
    def send(engine):
        if engine.state.iteration == iteration:
            os.kill(os.getpid(), signal.SIGTERM)  # a real signal, handled between bytecodes

    trainer.add_event_handler(Events.ITERATION_COMPLETED, send)


# the signal arrives during iteration `signal_at`; the run stops at the end of the next one: inside epoch 2, or at its
# last batch, where it stops after the epoch's validation and checkpoint
@pytest.mark.parametrize(("signal_at", "stop_at"), [(6, 7), (9, 10)])
def test_sigterm_checkpoints_and_resume_replays_the_run_exactly(tmp_path, signal_at, stop_at):
    trainer, net, losses, metrics = _build(tmp_path / "full")
    trainer.run()
    full = {k: v.clone() for k, v in net.state_dict().items()}

    trainer, _, first, first_metrics = _build(tmp_path / "cut")
    _sigterm_at(trainer, signal_at)
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stop:
        trainer.run()
    assert stop.value.code == PREEMPTED_EXIT_CODE
    assert signal.getsignal(signal.SIGTERM) is previous, "the run gives SIGTERM back"
    assert (tmp_path / "cut" / INTERRUPTED_FILENAME).is_file()
    assert max(first) == stop_at

    trainer, net, rest, rest_metrics = _build(tmp_path / "cut", resume=True)
    trainer.run()
    assert trainer.state.iteration == EPOCHS * ITEMS // BATCH
    assert min(rest) == stop_at + 1, "no iteration trained twice"
    assert {**first, **rest} == pytest.approx(losses, abs=0, rel=0), "the same losses as the run never stopped"
    assert first_metrics + rest_metrics == metrics, "each epoch validated once, with the same result"
    for key, value in net.state_dict().items():
        torch.testing.assert_close(value, full[key], atol=0, rtol=0)
    assert not (tmp_path / "cut" / INTERRUPTED_FILENAME).exists(), "a completed epoch retires the stop checkpoint"


def test_nan_loss_stops_with_one_line_and_keeps_the_checkpoints(tmp_path):
    trainer, net, losses, _ = _build(tmp_path)

    def poison(engine):  # weights become NaN in epoch 2: its third step's loss is NaN
        if engine.state.iteration == 7:
            with torch.no_grad():
                net[0].weight.fill_(float("nan"))

    trainer.add_event_handler(Events.ITERATION_COMPLETED, poison)
    with pytest.raises(UserError) as error:
        trainer.run()
    message = str(error.value)
    assert "training loss is nan at epoch 2, iteration 8 (3 of 5 in the epoch): stopped before saving" in message
    assert "the last good checkpoint is" in message and "checkpoint_epoch=1.pt" in message
    assert "\n" not in message
    kept = torch.load(tmp_path / "checkpoint_epoch=1.pt", weights_only=True)
    assert kept["trainer"]["iteration"] == 5
    assert all(torch.isfinite(v).all() for v in kept["model"].values())
    assert not (tmp_path / "model_final.pt").exists(), "the NaN weights are not saved as final"


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    loader = DataLoader(
        CacheDataset(
            [{"image": torch.zeros(3)}] * 4, Compose([RandGaussianNoised(keys="image", prob=1.0)]), progress=False
        )
    )
    state = get_rng_state(loader)
    torch.save({"rng": state}, tmp_path / "s.pt")
    draws = (torch.rand(3), np.random.rand(3), loader.dataset.transform.transforms[0].R.rand(3))
    set_rng_state(torch.load(tmp_path / "s.pt", weights_only=True)["rng"], loader)
    again = (torch.rand(3), np.random.rand(3), loader.dataset.transform.transforms[0].R.rand(3))
    torch.testing.assert_close(draws[0], again[0])
    np.testing.assert_array_equal(draws[1], again[1])
    np.testing.assert_array_equal(draws[2], again[2])


# ---- a real SIGTERM to a training process (nuclei_seg on tiny generated data)


def _tb(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_sigterm_to_a_bundle_process_then_resume_matches_an_uninterrupted_run(tmp_path):
    import subprocess
    import sys
    import time

    from conftest import NUCLEI_CONFIGS, NUCLEI_TINY, REPO_ROOT, slow_nuclei_training

    from medkit.data.synthetic_nuclei import generate_nuclei_dataset

    data = generate_nuclei_dataset(tmp_path / "data", num_images=10, image_size=64, seed=0)  # 3 iterations an epoch
    slow, marker, env = slow_nuclei_training(tmp_path, iteration=4, seconds=3.0)  # the signal lands in iteration 4
    tiny = ["--epochs", "3", *NUCLEI_TINY, "--dataset_dir", str(data)]

    def bundle(out, *extra, config=str(NUCLEI_CONFIGS / "train.json")):
        command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", config, "--output_dir", str(out)]
        return subprocess.Popen(
            [*command, *tiny, *extra],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    full = bundle(tmp_path / "full")
    cut = bundle(tmp_path / "cut", config=slow)
    deadline = time.time() + 240
    while not marker.exists() and cut.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    cut.send_signal(signal.SIGTERM)  # during iteration 4's handlers: epoch 2, 1 of 3 batches done
    log = cut.communicate(timeout=240)[0]
    assert cut.returncode == PREEMPTED_EXIT_CODE, log[-3000:]
    assert "SIGTERM: stopped at epoch 2, iteration 4 (1 of 3 in the epoch)" in log
    resumed = bundle(tmp_path / "cut", "--resume", "true")
    log = resumed.communicate(timeout=240)[0]
    assert resumed.returncode == 0, log[-3000:]
    assert full.communicate(timeout=240)[0] is not None and full.returncode == 0

    a, b = _tb(tmp_path / "full"), _tb(tmp_path / "cut")
    assert [s for s, _ in b["train_loss"]] == list(range(1, 10)), "every iteration logged once"
    assert b["train_loss"] == a["train_loss"], "the same losses, iteration by iteration"
    assert [s for s, _ in b["val_mean_dice"]] == [1, 2, 3], "each epoch validated once"
    assert b["train_loss_epoch"] == a["train_loss_epoch"], "the interrupted epoch's mean covers all its batches"
    assert b["val_mean_dice"] == a["val_mean_dice"]
    final_a = torch.load(tmp_path / "full" / "model_final.pt", weights_only=True)
    final_b = torch.load(tmp_path / "cut" / "model_final.pt", weights_only=True)
    assert final_b["trainer"]["iteration"] == final_a["trainer"]["iteration"] == 9
    for key, value in final_a["model"].items():
        torch.testing.assert_close(final_b["model"][key], value, atol=0, rtol=0)
