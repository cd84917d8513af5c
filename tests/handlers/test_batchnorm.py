"""PreciseBNHandler: hand-computed BatchNorm statistics, dict batches, batch limit, interval and untouched state."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine
from torch import nn

from medkit.handlers import PreciseBNHandler

# two batches of one-pixel, one-channel images: batch means 1 and 5, unbiased batch variances 2 and 2
BATCHES = [torch.tensor([0.0, 2.0]).reshape(2, 1, 1, 1), torch.tensor([4.0, 6.0]).reshape(2, 1, 1, 1)]


def _net() -> nn.Module:
    net = nn.Sequential(nn.BatchNorm2d(1), nn.Conv2d(1, 1, 1))
    net[0].running_mean.fill_(100.0)  # stale statistics, as after fast weight changes
    net[0].running_var.fill_(50.0)
    return net.eval()


@pytest.mark.parametrize(
    ("loader", "num_batches", "mean", "var"),
    [
        (BATCHES, None, 3.0, 2.0),
        ([{"image": b, "label": torch.zeros(2)} for b in BATCHES], None, 3.0, 2.0),
        (BATCHES, 1, 1.0, 2.0),
    ],
    ids=["tensors", "dicts", "first_batch_only"],
)
def test_statistics_are_the_exact_average(loader, num_batches, mean, var):
    net = _net()
    weights = {k: v.clone() for k, v in net[1].state_dict().items()}
    PreciseBNHandler(net, loader, num_batches=num_batches)()
    bn = net[0]
    assert bn.running_mean.item() == pytest.approx(mean) and bn.running_var.item() == pytest.approx(var)
    assert bn.momentum == 0.1 and not net.training  # momentum and eval mode restored
    assert all(torch.equal(weights[k], v) for k, v in net[1].state_dict().items())


def test_runs_every_interval_epochs_on_the_trainer():
    net = _net()
    calls = []

    class CountingLoader(list):
        def __iter__(self):
            calls.append(1)
            return super().__iter__()

    trainer = Engine(lambda engine, batch: None)
    PreciseBNHandler(net, CountingLoader(BATCHES), interval=2).attach(trainer)
    trainer.run([0, 1], max_epochs=4)
    assert len(calls) == 2 and net[0].running_mean.item() == pytest.approx(3.0)


@pytest.mark.parametrize("kwargs", [{"num_batches": 0}, {"interval": 0}], ids=["num_batches", "interval"])
def test_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        PreciseBNHandler(_net(), BATCHES, **kwargs)
