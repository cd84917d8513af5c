"""Intermediate activations of a CNN: a few seeded random channels after chosen convolution layers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = ["FeatureMaps", "conv_layer_names", "feature_maps"]


@dataclass
class FeatureMaps:
    """The activations of some channels of one convolution layer.

    Attributes:
        layer: 1-based position of the layer among the network's ``nn.Conv2d`` modules.
        name: the module's name in ``model.named_modules()``.
        channels: the channel indices shown.
        maps: ``(B, len(channels), h, w)`` activations, on the CPU.
    """

    layer: int
    name: str
    channels: list[int]
    maps: torch.Tensor


def conv_layer_names(model: nn.Module) -> list[str]:
    """Names of the ``nn.Conv2d`` modules of ``model`` in registration (forward, for sequential nets) order."""
    return [name for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]


def feature_maps(
    model: nn.Module, x: torch.Tensor, layers: Sequence[int] = (1, 5, 10), num_channels: int = 4, seed: int = 0
) -> list[FeatureMaps]:
    """Output of the ``layers``-th convolutions (1-based, counting ``nn.Conv2d`` modules) for ``num_channels``
    random channels each.

    The maps are the convolution outputs themselves (before any following norm or activation). The channels are
    drawn once per layer from ``seed`` and the layer number, so every image in a figure shows the same channels. For
    VGG16 the defaults are conv1_1 (``features.0``), conv3_1 (``features.10``) and conv4_3 (``features.21``).

    Args:
        model: any network with ``nn.Conv2d`` layers; run in eval mode (restored afterwards) without gradients.
        x: input batch ``(B, C, H, W)``.
        layers: 1-based conv layer numbers.
        num_channels: channels per layer (fewer when a layer has fewer).
        seed: seed of the channel choice.

    Raises:
        ValueError: if a layer number is out of range; the message gives the number of conv layers.
    """
    names = conv_layer_names(model)
    bad = [k for k in layers if not 1 <= k <= len(names)]
    if bad:
        raise ValueError(f"conv layer numbers {bad} out of range: {type(model).__name__} has {len(names)} nn.Conv2d")
    modules = dict(model.named_modules())
    # cloned: a following in-place activation (VGG's ReLU(inplace=True)) would otherwise overwrite the stored output
    captured: dict[int, torch.Tensor] = {}
    handles = [
        modules[names[k - 1]].register_forward_hook(
            lambda _m, _i, out, k=k: captured.__setitem__(k, out.detach().clone())
        )
        for k in layers
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    result = []
    for k in layers:
        out = captured[k]
        rng = np.random.default_rng([seed, k])
        channels = sorted(rng.choice(out.shape[1], size=min(num_channels, out.shape[1]), replace=False).tolist())
        result.append(FeatureMaps(k, names[k - 1], channels, out[:, channels].float().cpu()))
    return result
