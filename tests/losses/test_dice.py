"""MONAI's DiceLoss, configured as in the nuclei bundle, against the course's soft Dice with +1 smoothing."""

from __future__ import annotations

import pytest
import torch
from monai.losses import DiceCELoss, DiceLoss


def course_soft_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logits).flatten()
    g = target.flatten()
    return 1 - (2 * (p * g).sum() + 1) / (p.sum() + g.sum() + 1)


BUNDLE_DICE = {"sigmoid": True, "smooth_nr": 1.0, "smooth_dr": 1.0, "batch": True}


@pytest.mark.parametrize(
    "logits,target,expected",
    [
        # p = [.5, .5, 1, 0], g = [1, 0, 1, 0]: (2 * 1.5 + 1) / (2 + 2 + 1) = 0.8
        ([[0.0, 0.0], [100.0, -100.0]], [[1.0, 0.0], [1.0, 0.0]], 0.2),
        # perfect prediction: (2 * 2 + 1) / (2 + 2 + 1) = 1
        ([[100.0, -100.0], [-100.0, 100.0]], [[1.0, 0.0], [0.0, 1.0]], 0.0),
        # empty target, all-background prediction: (0 + 1) / (0 + 0 + 1) = 1
        ([[-100.0, -100.0], [-100.0, -100.0]], [[0.0, 0.0], [0.0, 0.0]], 0.0),
        # all wrong: p = [1, 1, 0, 0], g = [0, 0, 1, 1]: 1 / (2 + 2 + 1) = 0.2
        ([[100.0, 100.0], [-100.0, -100.0]], [[0.0, 0.0], [1.0, 1.0]], 0.8),
    ],
    ids=["half", "perfect", "empty", "all-wrong"],
)
def test_dice_loss_matches_hand_computed_course_formula(logits, target, expected):
    x = torch.tensor(logits)[None, None]
    y = torch.tensor(target)[None, None]
    loss = DiceLoss(**BUNDLE_DICE)(x, y)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert loss.item() == pytest.approx(course_soft_dice_loss(x, y).item(), abs=1e-6)


def test_batch_true_pools_the_whole_batch():
    torch.manual_seed(0)
    x = torch.randn(3, 1, 5, 7)
    y = (torch.rand(3, 1, 5, 7) > 0.5).float()
    assert DiceLoss(**BUNDLE_DICE)(x, y).item() == pytest.approx(course_soft_dice_loss(x, y).item(), abs=1e-6)


def test_dice_ce_adds_bce():
    x = torch.tensor([[0.0, 0.0], [100.0, -100.0]])[None, None]
    y = torch.tensor([[1.0, 0.0], [1.0, 0.0]])[None, None]
    bce = torch.nn.functional.binary_cross_entropy_with_logits(x, y).item()  # 2 * ln 2 / 4
    assert DiceCELoss(**BUNDLE_DICE)(x, y).item() == pytest.approx(0.2 + bce, abs=1e-5)
