"""The loss of a jointly trained ensemble: each member scored on its own output channels."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MemberLoss"]


class MemberLoss(nn.Module):
    """Mean over the members of ``loss(member_logits, target)``, for :class:`medkit.networks.JointEnsemble`.

    In training the ensemble returns its members' logits side by side, ``(B, K * C)``; each member's ``C`` channels
    get ``loss`` against the same target, and the mean over members is returned, so each member's gradient is what
    its own run would get (divided by ``K``). Outputs of ``C`` channels (the ensemble in eval mode, the mean
    probability's logits) get ``loss`` unchanged, so one loss serves training and the validation loss metric.

    Args:
        loss: the per-member loss, e.g. ``torch.nn.BCEWithLogitsLoss()`` or ``torch.nn.CrossEntropyLoss()``.
        members: ``K``, the number of ensemble members.
        channels: ``C``, the output channels of one member.

    Raises:
        ValueError: for ``members`` or ``channels`` below 1; at call time, if the prediction has neither ``C`` nor
            ``K * C`` channels.

    Example:
        >>> loss = MemberLoss(torch.nn.BCEWithLogitsLoss(), members=2, channels=1)
        >>> float(loss(torch.zeros(4, 2), torch.ones(4, 1)))  # two members, both at logit 0: ln 2 each
        0.6931...
    """

    def __init__(self, loss: nn.Module, members: int, channels: int) -> None:
        super().__init__()
        if members < 1 or channels < 1:
            raise ValueError(f"members and channels must be >= 1, got {members}, {channels}")
        self.loss = loss
        self.members = members
        self.channels = channels

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        width = pred.shape[1]
        if width == self.channels:
            return self.loss(pred, target)
        if width != self.members * self.channels:
            raise ValueError(
                f"prediction has {width} channels; expected {self.channels} (one output) or "
                f"{self.members} members x {self.channels} = {self.members * self.channels}"
            )
        parts = torch.split(pred, self.channels, dim=1)
        return torch.stack([self.loss(part, target) for part in parts]).mean()
