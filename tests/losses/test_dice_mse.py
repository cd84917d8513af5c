"""DiceMSELoss on hand-computed values: its Dice term (MONAI's squared_pred Dice) against the course's Dice formula."""

from __future__ import annotations

import pytest
import torch

from medkit.losses import DiceMSELoss

# One sample, 2 classes, 1x2 pixels. Pixel A has logits (0, 0) -> p = (.5, .5); pixel B has (100, -100) -> p = (1, 0).
LOGITS = torch.tensor([[[[0.0, 100.0]], [[0.0, -100.0]]]])
LABELS = torch.tensor([[[[1.0, 0.0]]]])  # A is class 1, B is class 0


def course_dice_loss(logits: torch.Tensor, labels: torch.Tensor, eps: float) -> torch.Tensor:
    """1 - (2 sum(p g) + eps) / (sum(p^2) + sum(g^2) + eps) per sample and class, then averaged."""
    p = torch.softmax(logits, 1)
    g = torch.nn.functional.one_hot(labels[:, 0].long(), p.shape[1]).movedim(-1, 1).float()
    dims = tuple(range(2, p.ndim))
    dice = (2 * (p * g).sum(dims) + eps) / ((p * p).sum(dims) + (g * g).sum(dims) + eps)
    return 1 - dice.mean()


def dice_term(eps: float) -> DiceMSELoss:
    """DiceMSELoss with the MSE term off: only its Dice term, with smoothing ``eps``."""
    return DiceMSELoss(dice_weight=1.0, mse_weight=0.0, smooth_nr=eps, smooth_dr=eps)


@pytest.mark.parametrize(
    "eps,expected",
    [
        # class 0: p = [.5, 1], g = [0, 1]: (2 * 1 + 1) / (1.25 + 1 + 1) = 12/13
        # class 1: p = [.5, 0], g = [1, 0]: (2 * .5 + 1) / (.25 + 1 + 1) = 8/9; loss = 1 - (12/13 + 8/9) / 2
        (1.0, 1 - (12 / 13 + 8 / 9) / 2),
        # without smoothing: class 0: 2 / 2.25, class 1: 1 / 1.25
        (0.0, 1 - (2 / 2.25 + 1 / 1.25) / 2),
    ],
    ids=["eps1", "eps0"],
)
def test_dice_term_matches_the_course_formula_by_hand(eps, expected):
    assert dice_term(eps)(LOGITS, LABELS).item() == pytest.approx(expected, abs=1e-6)
    assert course_dice_loss(LOGITS, LABELS, eps).item() == pytest.approx(expected, abs=1e-6)


def test_dice_term_matches_the_course_formula_on_random_batches():
    torch.manual_seed(0)
    x = torch.randn(3, 6, 9, 11)
    y = torch.randint(0, 6, (3, 1, 9, 11)).float()
    assert dice_term(1e-6)(x, y).item() == pytest.approx(course_dice_loss(x, y, 1e-6).item(), abs=1e-6)


@pytest.mark.parametrize(
    "dice_weight,mse_weight,expected",
    [
        (1.0, 0.0, 1 - (12 / 13 + 8 / 9) / 2),
        (0.0, 1.0, 0.125),  # MSE by hand: (.25 + 0 + .25 + 0) / 4
        (0.5, 2.0, 0.5 * (1 - (12 / 13 + 8 / 9) / 2) + 2.0 * 0.125),
    ],
    ids=["dice-only", "mse-only", "weighted"],
)
def test_dice_mse_weighted_sum_by_hand(dice_weight, mse_weight, expected):
    loss = DiceMSELoss(dice_weight=dice_weight, mse_weight=mse_weight, smooth_nr=1.0, smooth_dr=1.0)
    assert loss(LOGITS, LABELS).item() == pytest.approx(expected, abs=1e-6)


def test_dice_mse_gradients_flow():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    DiceMSELoss()(x, torch.randint(0, 3, (2, 1, 8, 8))).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("weights", [(-1.0, 1.0), (0.0, 0.0)], ids=["negative", "both-zero"])
def test_bad_weights_are_rejected(weights):
    with pytest.raises(ValueError, match="weights must be"):
        DiceMSELoss(*weights)


# The same two pixels as two 1x1 images: batch=True pools them (the sums above), batch=False scores each image.
LOGITS_2 = LOGITS.permute(3, 1, 2, 0)  # (2, 2, 1, 1)
LABELS_2 = LABELS.permute(3, 1, 2, 0)


@pytest.mark.parametrize(
    "batch,expected",
    [
        (True, 1 - (12 / 13 + 8 / 9) / 2),
        # image A: class 0 (0 + 1) / (.25 + 0 + 1) = .8, class 1 (1 + 1) / (.25 + 1 + 1) = 8/9;
        # image B: class 0 (2 + 1) / (1 + 1 + 1) = 1, class 1 (absent, p = 0) 1 / 1 = 1
        (False, 1 - (0.8 + 8 / 9 + 1 + 1) / 4),
    ],
    ids=["batch", "per-image"],
)
def test_batch_pools_the_course_sums_over_images(batch, expected):
    assert DiceMSELoss(1.0, 0.0, smooth_nr=1.0, smooth_dr=1.0, batch=batch)(LOGITS_2, LABELS_2).item() == pytest.approx(
        expected, abs=1e-6
    )
