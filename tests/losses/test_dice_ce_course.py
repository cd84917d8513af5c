"""The course's DiceCE, 0.5 * Dice + 0.5 * CE, from the bundles' --dice_ce_weights switch, checked by hand."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import REPO_ROOT
from monai.bundle import ConfigParser

LOGITS = [0.0, 2.0, -2.0, 0.0]
TARGET = [1.0, 1.0, 0.0, 0.0]


def _by_hand(w_dice: float, w_ce: float) -> float:
    p = [1 / (1 + math.exp(-x)) for x in LOGITS]  # [0.5, 0.8808, 0.1192, 0.5]
    inter = sum(a * b for a, b in zip(p, TARGET))  # 1.3808
    dice = 1 - (2 * inter + 1.0) / (sum(p) + sum(TARGET) + 1.0)  # smooth_nr = smooth_dr = 1, batch Dice: 0.2477
    bce = -sum(g * math.log(a) + (1 - g) * math.log(1 - a) for a, g in zip(p, TARGET)) / 4  # 0.4100
    return w_dice * dice + w_ce * bce


@pytest.mark.parametrize("bundle", ["nuclei_seg", "retina_vessel_seg"])
@pytest.mark.parametrize(("weights", "expected"), [([0.5, 0.5], 0.32886), ([1.0, 1.0], 0.65772)])
def test_dice_ce_weights_switch(bundle, weights, expected):
    parser = ConfigParser()
    parser.read_config(str(REPO_ROOT / "bundles" / bundle / "configs" / "train.json"))
    parser["dice_ce_weights"] = weights
    loss = parser.get_parsed_content("losses#dice_ce")
    value = loss(torch.tensor(LOGITS).reshape(1, 1, 2, 2), torch.tensor(TARGET).reshape(1, 1, 2, 2))
    assert float(value) == pytest.approx(_by_hand(*weights), abs=1e-5)
    assert float(value) == pytest.approx(expected, abs=1e-4)


def test_default_is_monais_one_and_one():
    parser = ConfigParser()
    parser.read_config(str(REPO_ROOT / "bundles" / "endo_instrument_seg" / "configs" / "train.json"))
    loss = parser.get_parsed_content("losses#dice_ce")
    assert (loss.lambda_dice, loss.lambda_ce) == (1.0, 1.0)
    parser["dice_ce_weights"] = [0.5, 0.5]
    loss = parser.get_parsed_content("losses#dice_ce", lazy=False)
    assert (loss.lambda_dice, loss.lambda_ce) == (0.5, 0.5)
