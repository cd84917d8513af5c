"""A U-Net whose encoder is torchvision's ResNet-18, optionally with ImageNet weights.

References:
    K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016,
    https://arxiv.org/abs/1512.03385.
    O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional Networks for Biomedical Image Segmentation",
    MICCAI 2015, https://arxiv.org/abs/1505.04597.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from medkit.networks.unet import _DoubleConv
from medkit.networks.weights import TORCHVISION_URL, hub_checkpoint_path, load_hub_checkpoint
from medkit.utils import as_bool

__all__ = ["RESNET18_IMAGENET_FILE", "RESNET18_IMAGENET_URL", "ResNetUNet", "resnet18_weights_path"]

logger = logging.getLogger(__name__)

# torchvision's ResNet18_Weights.IMAGENET1K_V1
RESNET18_IMAGENET_FILE = "resnet18-f37072fd.pth"
RESNET18_IMAGENET_URL = f"{TORCHVISION_URL}{RESNET18_IMAGENET_FILE}"
_ENCODER_WIDTHS = (64, 64, 128, 256, 512)  # ResNet-18 features at strides 2, 4, 8, 16, 32
_DIVISOR = 32


def resnet18_weights_path():
    """Where the ImageNet ResNet-18 weights are read from: ``$TORCH_HOME/hub/checkpoints/resnet18-f37072fd.pth``."""
    return hub_checkpoint_path(RESNET18_IMAGENET_FILE)


class _UpBlock(nn.Module):
    """2x transposed-conv upsampling, optional concatenation with an encoder feature map, then a double conv."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int, norm: str | None, dropout: float) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_ch, out_ch, kernel_size=2, stride=2)
        self.conv = _DoubleConv(2, out_ch + skip_ch, out_ch, norm, dropout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        x = self.up(x)
        if skip is not None:
            x = torch.cat([skip, x], dim=1)
        return self.conv(x)


class ResNetUNet(nn.Module):
    """U-Net with a ResNet-18 encoder (He et al. 2016) and a Ronneberger-style decoder.

    The encoder is torchvision's ResNet-18 without its pooling and classifier: features at strides 2 (stem), 4, 8,
    16 and 32. Five decoder levels each upsample 2x with a transposed convolution, concatenate the encoder feature map
    of the same stride (when ``skip_connections`` is true) and apply a double 3x3 convolution; at full resolution the
    skip is a small trainable double convolution of the input itself. A 1x1 convolution gives the logits.

    With ``freeze_encoder`` the ResNet-18 parameters get ``requires_grad=False``, its batch-norm layers stay in eval
    mode, and it runs without autograd, so only the decoder trains; otherwise the whole network is fine-tuned.

    Shape contract:
        input ``(B, in_channels, H, W)``, any ``H, W >= 1``; output ``(B, out_channels, H, W)``, raw logits. Sizes
        that are not multiples of 32 are zero-padded internally and cropped back. A grey input (``in_channels=1``) is
        repeated to three channels. Normalise like ImageNet when ``weights="imagenet"``.

    Args:
        spatial_dims: must be 2.
        in_channels: 1 (grey, repeated to RGB) or 3.
        out_channels: number of output channels (classes).
        channels: decoder widths at strides 1, 2, 4, 8 and 16 (five values).
        norm: ``"batch"``, ``"instance"`` or ``None`` for the decoder.
        dropout: dropout probability after each decoder double convolution.
        skip_connections: if false, the decoder gets no encoder feature maps (and no full-resolution input branch).
        weights: ``"imagenet"`` to load torchvision's IMAGENET1K_V1 file from :func:`resnet18_weights_path` (never
            downloaded), or ``None`` for random initialisation.
        freeze_encoder: freeze the ResNet-18 encoder (train the decoder only); false fine-tunes everything.

    Raises:
        FileNotFoundError: ``weights="imagenet"`` and the weights file is missing (the message gives path and URL).

    Example:
        >>> net = ResNetUNet(in_channels=1, out_channels=1, weights=None)
        >>> net(torch.zeros(2, 1, 37, 50)).shape
        torch.Size([2, 1, 37, 50])
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 3,
        out_channels: int = 1,
        channels: Sequence[int] = (16, 32, 64, 128, 256),
        norm: str | None = "batch",
        dropout: float = 0.0,
        skip_connections: bool = True,
        *,
        weights: str | None = None,
        freeze_encoder: bool = False,
    ) -> None:
        super().__init__()
        if spatial_dims != 2:
            raise ValueError(f"ResNetUNet is 2D only, got spatial_dims={spatial_dims}")
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 (grey) or 3 (RGB), got {in_channels}")
        channels = tuple(int(c) for c in channels)
        if len(channels) != 5 or any(c < 1 for c in channels):
            raise ValueError(f"channels needs five positive decoder widths (strides 1-16), got {channels}")
        if out_channels < 1 or not 0.0 <= dropout < 1.0:
            raise ValueError(f"out_channels must be >= 1 and dropout in [0, 1), got {out_channels}, {dropout}")
        if weights not in ("imagenet", None):
            raise ValueError(f"weights must be 'imagenet' or None, got {weights!r}")
        if weights is None and as_bool(freeze_encoder):
            logger.warning("ResNetUNet with weights=None and freeze_encoder=True: the frozen encoder is random")
        self.in_channels = int(in_channels)
        # command-line overrides arrive as strings: 'false' must not turn into True
        self.skip_connections = as_bool(skip_connections)
        self.freeze_encoder = as_bool(freeze_encoder)
        self.divisor = _DIVISOR

        resnet = torchvision.models.resnet18(weights=None)
        if weights == "imagenet":
            resnet.load_state_dict(load_hub_checkpoint(RESNET18_IMAGENET_FILE, "ImageNet ResNet-18"))
        self.stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu)
        self.layer1 = nn.Sequential(resnet.maxpool, resnet.layer1)
        self.layer2, self.layer3, self.layer4 = resnet.layer2, resnet.layer3, resnet.layer4

        skip_widths = (channels[0],) + _ENCODER_WIDTHS[:4] if self.skip_connections else (0,) * 5
        self.input_block = _DoubleConv(2, 3, channels[0], norm, 0.0) if self.skip_connections else nn.Identity()
        coarser = channels[1:] + (_ENCODER_WIDTHS[4],)
        self.decoders = nn.ModuleList(
            _UpBlock(coarser[i], skip_widths[i], channels[i], norm, dropout) for i in reversed(range(5))
        )
        self.head = nn.Conv2d(channels[0], out_channels, kernel_size=1)
        if self.freeze_encoder:
            for module in self.encoder_modules():
                module.requires_grad_(False)
            self.train(self.training)

    def encoder_modules(self) -> list[nn.Module]:
        """The ResNet-18 parts: stem, layer1 (with the max-pool), layer2, layer3, layer4."""
        return [self.stem, self.layer1, self.layer2, self.layer3, self.layer4]

    def train(self, mode: bool = True) -> ResNetUNet:
        """Sets training mode as ``nn.Module.train`` does, but keeps a frozen encoder in eval mode."""
        super().train(mode)
        if self.freeze_encoder:
            for module in self.encoder_modules():
                module.eval()
        return self

    def _encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        f2 = self.stem(x)
        f4 = self.layer1(f2)
        f8 = self.layer2(f4)
        f16 = self.layer3(f8)
        return [f2, f4, f8, f16, self.layer4(f16)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (B, {self.in_channels}, H, W), got shape {x.shape}")
        if self.in_channels == 1:
            x = x.expand(-1, 3, -1, -1)
        h, w = x.shape[2], x.shape[3]
        pad_h, pad_w = (-h) % self.divisor, (-w) % self.divisor
        if pad_h or pad_w:
            x = F.pad(x, [0, pad_w, 0, pad_h])
        if self.freeze_encoder and not x.requires_grad:
            with torch.no_grad():
                feats = self._encode(x)
        else:
            feats = self._encode(x)
        skips: list[torch.Tensor] = [self.input_block(x)] + feats[:4]
        y = feats[4]
        for j, decoder in enumerate(self.decoders):
            level = 4 - j
            y = decoder(y, skips[level] if self.skip_connections else None)
        return self.head(y)[:, :, :h, :w]
