"""The nuclei bundle's Dice losses, instantiated from its train.json, against hand-computed soft Dice with +1 smoothing.

The settings are read from ``bundles/nuclei_seg/configs/train.json`` (``losses#dice`` and ``losses#dice_ce``), so a
change to ``sigmoid``, ``batch`` or the smoothing there changes these values.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import REPO_ROOT
from monai.bundle import ConfigParser

NUCLEI_TRAIN = REPO_ROOT / "bundles" / "nuclei_seg" / "configs" / "train.json"


def bundle_loss(key: str) -> torch.nn.Module:
    parser = ConfigParser()
    parser.read_config(str(NUCLEI_TRAIN))
    return parser.get_parsed_content(key)


def course_soft_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logits).flatten()
    g = target.flatten()
    return 1 - (2 * (p * g).sum() + 1) / (p.sum() + g.sum() + 1)


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
def test_bundle_dice_matches_hand_computed_course_formula(logits, target, expected):
    x = torch.tensor(logits)[None, None]
    y = torch.tensor(target)[None, None]
    loss = bundle_loss("losses#dice")(x, y)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert loss.item() == pytest.approx(course_soft_dice_loss(x, y).item(), abs=1e-6)


def test_bundle_dice_pools_the_batch_before_the_ratio():
    # image A: p = [.5, .5, 1, 0], g = [1, 0, 1, 0] -> alone (3 + 1) / (4 + 1) = 0.8
    # image B: p = [0, 0, 0, 0],   g = [0, 0, 0, 1] -> alone (0 + 1) / (1 + 1) = 0.5
    # pooled (batch=true): (2 * 1.5 + 1) / (2 + 3 + 1) = 2/3 -> loss 1/3; per image the loss would be 0.35
    x = torch.tensor([[[0.0, 0.0], [100.0, -100.0]], [[-100.0, -100.0], [-100.0, -100.0]]])[:, None]
    y = torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]])[:, None]
    assert bundle_loss("losses#dice")(x, y).item() == pytest.approx(1 / 3, abs=1e-6)


@pytest.mark.parametrize(
    "logits,target,expected",
    [
        # the Dice part as in "half" above (0.2); BCE: two pixels at logit 0 cost ln 2 each, the other two ~0; mean of 4
        ([[[0.0, 0.0], [100.0, -100.0]]], [[[1.0, 0.0], [1.0, 0.0]]], 0.2 + math.log(2) / 2),
        # image A as above; image B: p = [0, 0, 0, .5], g = [0, 0, 0, 1] (alone both have Dice loss 0.2)
        # pooled Dice: (2 * 2 + 1) / (2.5 + 3 + 1) = 10/13; BCE: three pixels at logit 0 of eight
        (
            [[[0.0, 0.0], [100.0, -100.0]], [[-100.0, -100.0], [-100.0, 0.0]]],
            [[[1.0, 0.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]],
            3 / 13 + 3 * math.log(2) / 8,
        ),
    ],
    ids=["one-image", "two-images"],
)
def test_bundle_dice_ce_adds_bce_with_the_same_dice_settings(logits, target, expected):
    x = torch.tensor(logits)[:, None]
    y = torch.tensor(target)[:, None]
    assert bundle_loss("losses#dice_ce")(x, y).item() == pytest.approx(expected, abs=1e-5)
