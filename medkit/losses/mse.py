"""Mean squared error between softmax probabilities and one-hot masks (the course's segmentation baseline)."""

from __future__ import annotations

import torch
from monai.networks import one_hot
from monai.utils import LossReduction
from torch.nn.modules.loss import _Loss

__all__ = ["SoftmaxMSELoss"]


class SoftmaxMSELoss(_Loss):
    """MSE between class probabilities and one-hot targets, with MONAI's ``DiceLoss`` argument names.

    ``loss = mean((softmax(input) - one_hot(target)) ** 2)`` over batch, classes and pixels: ``nn.MSELoss`` applied to
    the softmax output, as in the course's baseline for multi-class segmentation.

    Shape contract: ``input`` is ``(B, C, *spatial)`` logits (probabilities when ``softmax=False``); ``target`` is
    ``(B, 1, *spatial)`` class indices when ``to_onehot_y=True``, else ``(B, C, *spatial)``.

    Args:
        include_background: if false, channel 0 is left out of the loss.
        to_onehot_y: convert ``target`` from class indices to one-hot with ``C`` channels.
        softmax: apply a softmax over channels to ``input`` first.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (elementwise, the shape of ``input``).
    """

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = True,
        softmax: bool = True,
        reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        super().__init__(reduction=LossReduction(reduction).value)
        self.include_background = include_background
        self.to_onehot_y = to_onehot_y
        self.softmax = softmax

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Computes the loss; raises ``ValueError`` when the shapes do not match after one-hot conversion."""
        n_classes = input.shape[1]
        if self.softmax:
            if n_classes == 1:
                raise ValueError("softmax=True needs more than one channel in input, got shape " + str(input.shape))
            input = torch.softmax(input, dim=1)
        if self.to_onehot_y:
            target = one_hot(target, num_classes=n_classes)
        if not self.include_background:
            input, target = input[:, 1:], target[:, 1:]
        if target.shape != input.shape:
            raise ValueError(f"target shape {tuple(target.shape)} does not match input shape {tuple(input.shape)}")
        errors = (input - target.to(input.dtype)) ** 2
        if self.reduction == LossReduction.MEAN.value:
            return errors.mean()
        if self.reduction == LossReduction.SUM.value:
            return errors.sum()
        return errors
