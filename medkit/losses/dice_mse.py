"""Weighted sum of the soft Dice loss (squared denominators) and the softmax MSE loss; MONAI has no such pair."""

from __future__ import annotations

import torch
from monai.losses import DiceLoss
from monai.networks import one_hot
from torch.nn.modules.loss import _Loss

from medkit.losses.mse import SoftmaxMSELoss

__all__ = ["DiceMSELoss"]


class DiceMSELoss(_Loss):
    """``dice_weight * DiceLoss + mse_weight * SoftmaxMSELoss`` on the same softmax probabilities.

    The Dice term is MONAI's ``DiceLoss(squared_pred=True)``: per sample and class
    ``1 - (2 * sum(p * g) + smooth_nr) / (sum(p ** 2) + sum(g ** 2) + smooth_dr)``, averaged (the course's variant with
    an epsilon). The MSE term is :class:`~medkit.losses.SoftmaxMSELoss`. The softmax and the one-hot conversion are
    done once and shared.

    Shape contract: ``input`` is ``(B, C, *spatial)`` logits; ``target`` is ``(B, 1, *spatial)`` class indices when
    ``to_onehot_y=True``, else ``(B, C, *spatial)``. Returns a scalar.

    Args:
        dice_weight: weight of the Dice term (>= 0).
        mse_weight: weight of the MSE term (>= 0); the two weights may not both be 0.
        include_background: if false, channel 0 is left out of both terms.
        to_onehot_y: convert ``target`` from class indices to one-hot.
        softmax: apply a softmax over channels to ``input`` first.
        squared_pred: square the predictions in the Dice denominator (the course's variant).
        smooth_nr: epsilon added to the Dice numerator.
        smooth_dr: epsilon added to the Dice denominator.
        batch: sum the Dice terms over the batch before dividing (MONAI's ``batch``).
    """

    def __init__(
        self,
        dice_weight: float = 1.0,
        mse_weight: float = 1.0,
        include_background: bool = True,
        to_onehot_y: bool = True,
        softmax: bool = True,
        squared_pred: bool = True,
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
        batch: bool = False,
    ) -> None:
        super().__init__()
        if dice_weight < 0 or mse_weight < 0 or dice_weight + mse_weight == 0:
            raise ValueError(
                f"weights must be >= 0 and not both 0, got dice_weight={dice_weight}, mse_weight={mse_weight}"
            )
        self.dice_weight = float(dice_weight)
        self.mse_weight = float(mse_weight)
        self.to_onehot_y = to_onehot_y
        self.softmax = softmax
        self.dice = DiceLoss(
            include_background=include_background,
            squared_pred=squared_pred,
            smooth_nr=smooth_nr,
            smooth_dr=smooth_dr,
            batch=batch,
        )
        self.mse = SoftmaxMSELoss(include_background=include_background, to_onehot_y=False, softmax=False)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Computes the weighted sum; raises ``ValueError`` when the shapes do not match after one-hot conversion."""
        if self.softmax:
            if input.shape[1] == 1:
                raise ValueError("softmax=True needs more than one channel in input, got shape " + str(input.shape))
            input = torch.softmax(input, dim=1)
        if self.to_onehot_y:
            target = one_hot(target, num_classes=input.shape[1])
        return self.dice_weight * self.dice(input, target) + self.mse_weight * self.mse(input, target)
