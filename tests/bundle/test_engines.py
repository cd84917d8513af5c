"""medkit.bundle.build_trainer / build_evaluator on a tiny regression problem: wiring, checkpoints, exact resume."""

from __future__ import annotations

import copy
import logging
import re

import pytest
import torch
from monai.handlers import MeanSquaredError, from_engine
from torch.utils.data import DataLoader

from medkit.bundle import build_evaluator, build_trainer

DEVICE = torch.device("cpu")


def _loader(n: int = 12, batch_size: int = 4, seed: int = 0) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1
    return DataLoader([{"image": a, "label": b} for a, b in zip(x, y)], batch_size=batch_size, shuffle=False)


def _parts(seed: int = 0):
    torch.manual_seed(seed)
    net = torch.nn.Linear(3, 1)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    return net, opt, sched


def _evaluator(net, out_dir=None, **kwargs):
    return build_evaluator(
        device=DEVICE,
        val_data_loader=_loader(8, seed=1),
        network=net,
        key_val_metric={"val_mse": MeanSquaredError(output_transform=from_engine(["pred", "label"]))},
        checkpoint_dir=out_dir,
        decollate=False,
        **kwargs,
    )


def _trainer(net, opt, sched, out_dir, epochs, **kwargs):
    losses: list[float] = []
    trainer = build_trainer(
        device=DEVICE,
        max_epochs=epochs,
        train_data_loader=_loader(),
        network=net,
        optimizer=opt,
        loss_function=torch.nn.MSELoss(),
        output_dir=out_dir,
        lr_scheduler=sched,
        **kwargs,
    )
    from ignite.engine import Events

    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.append(e.state.output["loss"].item()))
    return trainer, losses


def test_trainer_saves_final_state_and_best_model(tmp_path):
    net, opt, sched = _parts()
    evaluator = _evaluator(net, tmp_path)
    trainer, losses = _trainer(net, opt, sched, tmp_path, epochs=3, validator=evaluator)
    trainer.run()
    final = torch.load(tmp_path / "model_final.pt", weights_only=True)
    assert set(final) == {"model", "optimizer", "lr_scheduler", "trainer", "validator_best", "epoch_progress"}
    assert final["trainer"]["iteration"] == 3 * 3 and len(losses) == 9
    assert final["lr_scheduler"]["last_epoch"] == 3  # stepped once per epoch by the factory
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05 * 0.5**3)
    assert (tmp_path / "model.pt").is_file()  # best key metric (mse is lower-better only with a cmp fn; saved once)
    assert evaluator.state.best_metric_epoch >= 1


def test_resume_restores_every_state_and_continues_the_same_losses(tmp_path):
    """A run of 2 + 2 resumed epochs trains exactly as 4 uninterrupted ones: model, optimizer, scheduler restored."""
    net, opt, sched = _parts()
    trainer, full = _trainer(net, opt, sched, tmp_path / "full", epochs=4)
    trainer.run()

    net, opt, sched = _parts()
    trainer, first = _trainer(net, opt, sched, tmp_path / "cut", epochs=2)
    trainer.run()
    saved = torch.load(tmp_path / "cut" / "model_final.pt", weights_only=True)

    net, opt, sched = _parts(seed=123)  # other initial weights: only the checkpoint can make the losses match
    trainer, second = _trainer(net, opt, sched, tmp_path / "cut", epochs=4, resume="true")
    from ignite.engine import Events

    restored = {}
    trainer.add_event_handler(
        Events.ITERATION_STARTED(once=7),
        lambda e: restored.update(
            copy.deepcopy({"model": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()})
        ),
    )
    trainer.run()
    for name, tensor in saved["model"].items():
        torch.testing.assert_close(restored["model"][name], tensor)
    for key, value in saved["optimizer"]["state"][0].items():
        torch.testing.assert_close(restored["opt"]["state"][0][key], value)
    assert restored["sched"]["last_epoch"] == saved["lr_scheduler"]["last_epoch"] == 2
    assert len(second) == 6  # epochs 3 and 4 only
    torch.testing.assert_close(torch.tensor(first + second), torch.tensor(full))


def test_resume_without_checkpoint_names_the_folder(tmp_path):
    net, opt, sched = _parts()
    with pytest.raises(FileNotFoundError, match="holds no model_final.pt"):
        _trainer(net, opt, sched, tmp_path / "empty", epochs=1, resume=True)


def test_early_stopper_needs_and_watches_the_validator(tmp_path):
    from monai.handlers import EarlyStopHandler

    net, opt, sched = _parts()
    stopper = EarlyStopHandler(patience=1, score_function=lambda e: 1.0, epoch_level=True)  # never improves
    with pytest.raises(ValueError, match="no validator"):
        _trainer(net, opt, sched, tmp_path, epochs=5, early_stopper=stopper)
    trainer, losses = _trainer(net, opt, sched, tmp_path, epochs=5, validator=_evaluator(net), early_stopper=stopper)
    trainer.run()
    assert trainer.state.epoch == 2  # the score never improves after epoch 1: stops after one more


def test_epoch_lines_and_summary_are_logged(tmp_path, caplog):
    net, opt, sched = _parts()
    trainer, _ = _trainer(net, opt, sched, tmp_path, epochs=2, validator=_evaluator(net, tmp_path), bundle_root="b/x")
    with caplog.at_level(logging.INFO):
        trainer.run()
    text = caplog.text
    assert (
        "Epoch 1/2: train_loss" in text and "lr 0.05" in text and "Epoch 2/2: train_loss" in text and "lr 0.025" in text
    )
    assert re.search(r"Epoch 2/2: train_loss [0-9.]+, val_mse [0-9.]+ \(best [0-9.]+ at epoch \d\), lr", text)
    assert "Epoch[2] Metrics" not in text and "Saved checkpoint" not in text  # one line per epoch
    assert "best val_mse" in text and str(tmp_path / "model.pt") in text
    assert "b/x/configs/evaluate.json" in text


def test_evaluator_loads_weights_before_running(tmp_path):
    net, _, _ = _parts()
    torch.save({"model": {k: torch.zeros_like(v) for k, v in net.state_dict().items()}}, tmp_path / "ck.pt")
    evaluator = _evaluator(net, load_path=tmp_path / "ck.pt")
    evaluator.run()
    assert all(torch.count_nonzero(v) == 0 for v in net.state_dict().values())


def test_bundle_handlers_run_before_logging():
    """A handler that adds a metric (per-class scores) runs before TensorBoard writes the epoch's metrics."""
    from ignite.engine import Events

    class AddMetric:
        def attach(self, engine):
            engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: e.state.metrics.update(extra=0.5))

    class Writer:
        tags: list[str] = []

        def add_scalar(self, tag, value, step):
            self.tags.append(tag)

        def flush(self):
            pass

    net, _, _ = _parts()
    writer = Writer()
    _evaluator(net, handlers=[AddMetric()], summary_writer=writer).run()
    assert "extra" in writer.tags and "val_mse" in writer.tags


@pytest.mark.parametrize("interval, files", [(1, ["checkpoint_epoch=3.pt"]), (2, ["checkpoint_epoch=2.pt"]), (0, [])])
def test_checkpoint_interval(tmp_path, interval, files):
    net, opt, sched = _parts()
    trainer, _ = _trainer(net, opt, sched, tmp_path, epochs=3, checkpoint_interval=interval)
    trainer.run()
    assert sorted(p.name for p in tmp_path.glob("checkpoint_epoch=*.pt")) == files
    assert (tmp_path / "model_final.pt").is_file()


@pytest.mark.parametrize(
    ("device", "amp", "bf16", "dtype"),
    [
        ("cuda:0", True, True, torch.bfloat16),
        ("cuda:0", "true", False, torch.float16),
        ("cuda:0", False, True, None),
        ("cpu", True, True, None),
    ],
)
def test_amp_is_bfloat16_where_the_gpu_has_it(monkeypatch, device, amp, bf16, dtype):
    from medkit.bundle.engines import amp_kwargs

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    kwargs = amp_kwargs(device, amp)
    assert (kwargs or {}).get("dtype") == dtype


def test_compile_is_opt_in_and_reaches_the_engine(tmp_path):
    net, opt, sched = _parts()
    assert _trainer(net, opt, sched, tmp_path, 1)[0].compile is False
    assert _trainer(net, opt, sched, tmp_path, 1, compile="true")[0].compile is True
