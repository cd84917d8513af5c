"""Losses that MONAI lacks: MSE on softmax probabilities, and its combination with the soft Dice loss."""

from __future__ import annotations

from medkit.losses.dice_mse import DiceMSELoss
from medkit.losses.member import MemberLoss
from medkit.losses.mse import SoftmaxMSELoss

__all__ = ["DiceMSELoss", "MemberLoss", "SoftmaxMSELoss"]
