"""A multilayer perceptron for flattened images, built from medkit's Glorot-initialised :class:`Linear`.

Reference:
    D. E. Rumelhart, G. E. Hinton, R. J. Williams, "Learning representations by back-propagating errors",
    Nature 323, 533-536 (1986), https://doi.org/10.1038/323533a0.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch
from torch import nn

from medkit.networks.layers import Linear

__all__ = ["MLP"]

logger = logging.getLogger(__name__)

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


class MLP(nn.Module):
    """Fully connected classifier: flatten, ``Linear -> act [-> dropout]`` per hidden layer, then a last ``Linear``.

    All layers are :class:`medkit.networks.layers.Linear` (Glorot normal weights, zero biases). The last layer has no
    activation: the network returns logits.

    Shape contract:
        input ``(B, *in_shape)`` (for example ``(B, 1, 28, 28)``) or ``(B, in_features)``, where the trailing
        dimensions hold ``in_features`` values in total; output ``(B, out_channels)``, raw logits.

    Args:
        in_features: number of input values per sample. Give this or ``in_shape``.
        out_channels: number of output logits (classes).
        hidden_channels: width of each hidden layer; empty gives a linear (logistic-regression) model.
        act: hidden activation, ``"relu"``, ``"tanh"`` or ``"sigmoid"``.
        dropout: dropout probability after each hidden activation (0 disables it).
        in_shape: per-sample input shape, for example ``(1, 28, 28)``; ``in_features`` is its product.

    Example:
        >>> net = MLP(in_shape=(1, 28, 28), out_channels=10, hidden_channels=(128, 64))
        >>> net(torch.zeros(4, 1, 28, 28)).shape
        torch.Size([4, 10])
    """

    def __init__(
        self,
        in_features: int | None = None,
        out_channels: int = 10,
        hidden_channels: Sequence[int] = (256, 128),
        act: str = "relu",
        dropout: float = 0.0,
        in_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.in_features = _resolve_in_features(in_features, in_shape)
        hidden = tuple(int(h) for h in hidden_channels)
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden_channels must be positive, got {tuple(hidden_channels)}")
        if out_channels < 1:
            raise ValueError(f"out_channels must be >= 1, got {out_channels}")
        if act.lower() not in _ACTIVATIONS:
            raise ValueError(f"unknown act {act!r}; expected one of {sorted(_ACTIVATIONS)}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")

        layers: list[nn.Module] = []
        widths = (self.in_features,) + hidden
        for i in range(len(hidden)):
            layers += [Linear(widths[i], widths[i + 1]), _ACTIVATIONS[act.lower()]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        layers.append(Linear(widths[-1], out_channels))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        per_sample = 1
        for size in x.shape[1:]:
            per_sample *= size
        if x.dim() < 2 or per_sample != self.in_features:
            raise ValueError(f"expected (B, ...) with {self.in_features} values per sample, got input shape {x.shape}")
        return self.layers(x.flatten(1))


def _resolve_in_features(in_features: int | None, in_shape: Sequence[int] | None) -> int:
    if in_shape is not None:
        shape = tuple(int(s) for s in in_shape)
        if not shape or any(s < 1 for s in shape):
            raise ValueError(f"in_shape must be a non-empty sequence of positive sizes, got {tuple(in_shape)}")
        product = math.prod(shape)
        if in_features is not None and in_features != product:
            raise ValueError(f"in_features={in_features} disagrees with in_shape={shape} ({product} values)")
        return product
    if in_features is None or in_features < 1:
        raise ValueError(f"give in_features >= 1 or in_shape, got in_features={in_features}")
    return int(in_features)
