"""GradientClipHandler: clipping happens between backward and the optimizer step, on hand-computed gradients."""

from __future__ import annotations

import pytest
import torch
from monai.engines import SupervisedTrainer

from medkit.handlers import GradientClipHandler


def _train_one_step(max_norm: float | None) -> tuple[torch.Tensor, SupervisedTrainer]:
    net = torch.nn.Linear(2, 1, bias=False)
    torch.nn.init.zeros_(net.weight)
    # loss = w . x with x = (3, 4): the gradient is x, whose norm is 5
    data = [{"image": torch.tensor([[3.0, 4.0]]), "label": torch.zeros(1, 1)}]
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=1,
        train_data_loader=data,
        network=net,
        optimizer=torch.optim.SGD(net.parameters(), lr=1.0),
        loss_function=lambda pred, label: pred.sum(),
        decollate=False,
        train_handlers=[GradientClipHandler(max_norm)],
    )
    trainer.run()
    return net.weight.detach().clone(), trainer


def test_clips_to_max_norm_before_the_step():
    weight, trainer = _train_one_step(0.5)
    # clipped gradient 0.5 * (3, 4) / 5 = (0.3, 0.4); SGD at lr 1 from zero gives its negative
    assert torch.allclose(weight, torch.tensor([[-0.3, -0.4]]))
    assert trainer.state.grad_norm == pytest.approx(5.0)


def test_small_gradients_are_untouched():
    weight, _ = _train_one_step(10.0)
    assert torch.allclose(weight, torch.tensor([[-3.0, -4.0]]))


@pytest.mark.parametrize("max_norm", [None, 0])
def test_disabled(max_norm):
    weight, trainer = _train_one_step(max_norm)
    assert torch.allclose(weight, torch.tensor([[-3.0, -4.0]]))
    assert not hasattr(trainer.state, "grad_norm")


def test_rejects_negative_norm():
    with pytest.raises(ValueError, match="-1"):
        GradientClipHandler(-1)
