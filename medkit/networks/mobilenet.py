"""MobileNet v1: a stack of depthwise separable convolutions.

Reference:
    A. G. Howard, M. Zhu, B. Chen, D. Kalenichenko, W. Wang, T. Weyand, M. Andreetto, H. Adam,
    "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications", 2017,
    https://arxiv.org/abs/1704.04861.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

__all__ = ["DepthwiseSeparableBlock", "MobileNetV1"]

logger = logging.getLogger(__name__)

# (out_channels, stride) of each depthwise separable block, rows 2-27 of Table 1 in Howard et al. The table lists
# stride 2 for the second-to-last depthwise layer, but its own input/output sizes (7x7 -> 7x7) show stride 1.
_BODY: tuple[tuple[int, int], ...] = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)
_STEM_CHANNELS = 32


class DepthwiseSeparableBlock(nn.Sequential):
    """Depthwise 3x3 conv -> BN -> ReLU -> pointwise 1x1 conv -> BN -> ReLU (Figure 3 of Howard et al. 2017).

    Shape contract:
        input ``(B, in_channels, H, W)``; output ``(B, out_channels, ceil(H / stride), ceil(W / stride))``.

    Args:
        in_channels: number of input channels (one depthwise filter each).
        out_channels: number of channels produced by the pointwise convolution.
        stride: stride of the depthwise convolution (1 or 2 in MobileNet).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        if in_channels < 1 or out_channels < 1 or stride < 1:
            raise ValueError(
                f"in_channels, out_channels and stride must be >= 1, got {in_channels}, {out_channels}, {stride}"
            )
        super().__init__(
            nn.Conv2d(in_channels, in_channels, 3, stride=stride, padding=1, groups=in_channels, bias=False),
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class MobileNetV1(nn.Module):
    """MobileNet v1 (Howard et al. 2017) at width multiplier 1 and full resolution (no alpha or rho).

    A stride-2 3x3 convolution with 32 filters, then 13 depthwise separable blocks (Table 1 of the paper), global
    average pooling, optional dropout and a fully connected layer to ``out_channels`` logits. Adaptive average
    pooling replaces the paper's fixed 7x7 pool, so any input of at least 1x1 works: 224x224 gives a 7x7 final map,
    64x64 gives 2x2 and 28x28 gives 1x1.

    The paper's network downsamples by 32, so a 28x28 image (MedMNIST) shrinks to 1x1 by block 12 and the last
    blocks see no spatial structure. ``keep_resolution`` runs the first of the five stride-2 layers at stride 1
    instead (the stem convolution first, then the body's stride-2 blocks in order), the usual adaptation of
    ImageNet networks to small images: with ``keep_resolution=2`` a 28x28 input keeps 28x28 through block 3 and ends
    on a 4x4 map, at the compute of the paper's network on 112x112 inputs. The layers and weights are the same
    for every value; only strides change.

    Shape contract:
        input ``(B, in_channels, H, W)``; output ``(B, out_channels)``, raw logits.

    Args:
        in_channels: number of input channels (1 for greyscale, 3 for RGB).
        out_channels: number of classes.
        dropout: dropout probability before the classifier (the paper uses none).
        keep_resolution: how many of the five stride-2 layers, from the input on, run at stride 1 (0 to 5; 0 is the
            paper's network).

    Example:
        >>> net = MobileNetV1(in_channels=1, out_channels=10)
        >>> net(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self, in_channels: int = 3, out_channels: int = 1000, dropout: float = 0.0, keep_resolution: int = 0
    ) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"in_channels and out_channels must be >= 1, got {in_channels}, {out_channels}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        strides = [2] + [stride for _, stride in _BODY]
        downsampling = [i for i, stride in enumerate(strides) if stride == 2]
        if not 0 <= keep_resolution <= len(downsampling):
            raise ValueError(f"keep_resolution must be in [0, {len(downsampling)}], got {keep_resolution}")
        for i in downsampling[:keep_resolution]:
            strides[i] = 1
        self.in_channels = int(in_channels)
        self.keep_resolution = int(keep_resolution)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, _STEM_CHANNELS, 3, stride=strides[0], padding=1, bias=False),
            nn.BatchNorm2d(_STEM_CHANNELS),
            nn.ReLU(inplace=True),
        ]
        width = _STEM_CHANNELS
        for (out, _), stride in zip(_BODY, strides[1:]):
            layers.append(DepthwiseSeparableBlock(width, out, stride))
            width = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(width, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (B, {self.in_channels}, H, W), got shape {x.shape}")
        x = self.pool(self.features(x)).flatten(1)
        return self.classifier(self.dropout(x))
