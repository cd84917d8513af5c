"""The Ronneberger U-Net with same-size convolutions.

Reference:
    O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional Networks for Biomedical Image Segmentation",
    MICCAI 2015, https://arxiv.org/abs/1505.04597.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from medkit.utils import as_bool

__all__ = ["UNet"]

logger = logging.getLogger(__name__)

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONV_T = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_INSTANCE = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}
_DROPOUT = {1: nn.Dropout, 2: nn.Dropout2d, 3: nn.Dropout3d}


def _norm_layer(norm: str | None, spatial_dims: int, channels: int) -> nn.Module:
    if norm is None or norm.lower() == "none":
        return nn.Identity()
    name = norm.lower()
    if name in ("batch", "batchnorm"):
        return _BN[spatial_dims](channels)
    if name in ("instance", "instancenorm"):
        return _INSTANCE[spatial_dims](channels, affine=True)
    raise ValueError(f"unknown norm {norm!r}; expected 'batch', 'instance' or None")


class _DoubleConv(nn.Sequential):
    """(3x3 conv, padding 1) -> norm -> ReLU, twice; the spatial size is kept."""

    def __init__(self, spatial_dims: int, in_ch: int, out_ch: int, norm: str | None, dropout: float) -> None:
        bias = norm is None or str(norm).lower() == "none"
        layers: list[nn.Module] = []
        for c_in in (in_ch, out_ch):
            layers += [
                _CONV[spatial_dims](c_in, out_ch, kernel_size=3, padding=1, bias=bias),
                _norm_layer(norm, spatial_dims, out_ch),
                nn.ReLU(inplace=True),
            ]
        if dropout > 0:
            layers.append(_DROPOUT[spatial_dims](dropout))
        super().__init__(*layers)


class _Up(nn.Module):
    """Transposed-conv upsampling, optional concatenation with the skip, then a double conv."""

    def __init__(
        self, spatial_dims: int, in_ch: int, out_ch: int, skip: bool, norm: str | None, dropout: float
    ) -> None:
        super().__init__()
        self.skip = skip
        self.up = _CONV_T[spatial_dims](in_ch, out_ch, kernel_size=2, stride=2)
        self.conv = _DoubleConv(spatial_dims, out_ch * 2 if skip else out_ch, out_ch, norm, dropout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        if self.skip:
            x = torch.cat([skip, x], dim=1)
        return self.conv(x)


class UNet(nn.Module):
    """U-Net (Ronneberger et al. 2015) with padded convolutions, so the output has the input's spatial size.

    Each encoder level is a double 3x3 convolution (``padding=1``) with optional normalisation and ReLU, followed by
    2x max-pooling. Each decoder level upsamples with a 2x transposed convolution, concatenates the encoder feature
    map of the same level (when ``skip_connections`` is true) and applies a double convolution. A final 1x1
    convolution maps to ``out_channels`` logits; activations belong in the loss or in post-processing.

    Shape contract:
        input ``(B, in_channels, *spatial)`` with ``len(spatial) == spatial_dims`` and any spatial size >= 1;
        output ``(B, out_channels, *spatial)``, raw logits. Sizes that are not multiples of
        ``2 ** (len(channels) - 1)`` are zero-padded internally and cropped back.

    Args:
        spatial_dims: number of spatial dimensions (1, 2 or 3).
        in_channels: number of input channels.
        out_channels: number of output channels (classes).
        channels: feature widths per level, from the first encoder level to the bottleneck.
        norm: ``"batch"``, ``"instance"`` or ``None``.
        dropout: dropout probability after each double convolution (0 disables it).
        skip_connections: if false, the same network is built without the encoder-decoder concatenations.

    Example:
        >>> net = UNet(spatial_dims=2, in_channels=1, out_channels=1, channels=(8, 16, 32))
        >>> net(torch.zeros(2, 1, 37, 50)).shape
        torch.Size([2, 1, 37, 50])
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        channels: Sequence[int] = (32, 64, 128, 256, 512),
        norm: str | None = "batch",
        dropout: float = 0.0,
        skip_connections: bool = True,
    ) -> None:
        super().__init__()
        if spatial_dims not in _CONV:
            raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims}")
        channels = tuple(int(c) for c in channels)
        if len(channels) < 2 or any(c < 1 for c in channels):
            raise ValueError(f"channels needs at least two positive widths, got {channels}")
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"in_channels and out_channels must be >= 1, got {in_channels}, {out_channels}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.spatial_dims = spatial_dims
        self.skip_connections = as_bool(skip_connections)  # command-line overrides arrive as 'true'/'false'
        self.divisor = 2 ** (len(channels) - 1)

        widths = (in_channels,) + channels
        self.encoders = nn.ModuleList(
            _DoubleConv(spatial_dims, widths[i], widths[i + 1], norm, dropout) for i in range(len(channels))
        )
        self.pool = _POOL[spatial_dims](kernel_size=2, stride=2)
        self.decoders = nn.ModuleList(
            _Up(spatial_dims, channels[i + 1], channels[i], self.skip_connections, norm, dropout)
            for i in reversed(range(len(channels) - 1))
        )
        self.head = _CONV[spatial_dims](channels[0], out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != self.spatial_dims + 2:
            raise ValueError(f"expected a {self.spatial_dims + 2}D input (B, C, *spatial), got shape {x.shape}")
        spatial: list[int] = x.shape[2:]
        pad: list[int] = []
        for d in range(len(spatial) - 1, -1, -1):  # F.pad lists the last dimension first
            pad += [0, (-spatial[d]) % self.divisor]
        padded = sum(pad) > 0
        if padded:
            x = F.pad(x, pad)

        skips: list[torch.Tensor] = []
        for i, encoder in enumerate(self.encoders):
            x = encoder(x)
            if i < len(self.encoders) - 1:
                skips.append(x)
                x = self.pool(x)
        for j, decoder in enumerate(self.decoders):
            x = decoder(x, skips[len(skips) - 1 - j])
        x = self.head(x)

        if padded:
            for d in range(len(spatial)):
                x = x.narrow(d + 2, 0, spatial[d])
        return x
