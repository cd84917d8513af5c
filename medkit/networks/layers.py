"""Small building blocks shared by medkit networks."""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Linear"]

logger = logging.getLogger(__name__)


class Linear(nn.Module):
    """A fully connected layer ``y = x W^T + b`` with Glorot/Xavier normal initialisation and zero bias.

    ``torch.nn.Linear`` initialises with Kaiming uniform; this layer draws ``W ~ N(0, 2 / (fan_in + fan_out))`` as in
    the Glorot paper, which keeps activation and gradient variances balanced for tanh and sigmoid MLPs.

    Shape contract:
        input ``(*, in_features)``; output ``(*, out_features)``.

    Reference:
        X. Glorot, Y. Bengio, "Understanding the difficulty of training deep feedforward neural networks",
        AISTATS 2010, https://proceedings.mlr.press/v9/glorot10a.html.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: if false, the layer has no additive bias (``self.bias`` is ``None``).

    Attributes:
        weight: ``(out_features, in_features)`` parameter.
        bias: ``(out_features,)`` parameter or ``None``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"in_features and out_features must be >= 1, got {in_features}, {out_features}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.weight = nn.Parameter(torch.empty(self.out_features, self.in_features))
        self.bias = nn.Parameter(torch.empty(self.out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Redraws the weight from the Glorot normal distribution and zeroes the bias."""
        std = math.sqrt(2.0 / (self.in_features + self.out_features))
        nn.init.normal_(self.weight, mean=0.0, std=std)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
