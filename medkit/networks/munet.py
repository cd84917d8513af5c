"""DLStudio's mUnet: a U-Net of residual skip blocks for segmenting several object classes at once.

Reference:
    A. C. Kak, DLStudio (Purdue University), ``DLStudio.SemanticSegmentation.mUnet`` with its ``SkipBlockDN`` and
    ``SkipBlockUP`` building blocks, https://engineering.purdue.edu/kak/distDLS/. The course's multi-object shapes
    experiment (PurdueShapes5MultiObject) was written for this network.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from monai.networks.layers.utils import get_act_layer, get_norm_layer
from torch import nn

from medkit.utils import as_bool

__all__ = ["mUnet"]

logger = logging.getLogger(__name__)


class _SkipBlock(nn.Module):
    """DLStudio's SkipBlockDN (``transposed=False``) or SkipBlockUP (``transposed=True``).

    One or two 3x3 conv -> norm -> act units (two when the width is kept, one when it changes), then an optional
    1x1 stride-2 (transposed for UP) convolution that resamples both the output and the block's input, and the
    residual sum: the input itself when the width is kept, the input repeated twice when the width doubles (DN),
    the input's second half when it halves (UP). Without ``skip`` the sum is left out.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        *,
        transposed: bool,
        resample: bool = False,
        skip: bool = True,
        act: str | tuple = "relu",
        norm: str | tuple = "batch",
    ) -> None:
        super().__init__()
        wider, narrower = out_ch == 2 * in_ch, in_ch == 2 * out_ch
        assert in_ch == out_ch or (wider and not transposed) or (narrower and transposed), (in_ch, out_ch)
        assert not resample or in_ch == out_ch, "DLStudio resamples only in blocks that keep the width"
        self.in_ch, self.out_ch, self.skip = in_ch, out_ch, skip

        def unit(c_in: int) -> Convolution:
            return Convolution(
                2, c_in, out_ch, kernel_size=3, adn_ordering="NA", act=act, norm=norm, is_transposed=transposed
            )

        self.convs = nn.Sequential(unit(in_ch), unit(out_ch)) if in_ch == out_ch else nn.Sequential(unit(in_ch))
        if resample:
            self.resample: nn.Module = Convolution(
                2, in_ch, out_ch, strides=2, kernel_size=1, padding=0, conv_only=True, is_transposed=transposed,
                output_padding=1 if transposed else None,
            )  # fmt: skip
        else:
            self.resample = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.resample(self.convs(x))
        if not self.skip:
            return out
        identity = self.resample(x)
        if self.out_ch == self.in_ch:
            return out + identity
        if self.out_ch > self.in_ch:
            return out + torch.cat([identity, identity], dim=1)
        return out + identity[:, self.out_ch :]


def _blocks(count: int, channels: int, transposed: bool, **kwargs) -> list[nn.Module]:
    return [_SkipBlock(channels, channels, transposed=transposed, **kwargs) for _ in range(count)]


def _restore(x: torch.Tensor, saved: torch.Tensor) -> torch.Tensor:
    """DLStudio's skip across the U: the first channels of ``x`` are replaced by the encoder's saved ones."""
    return torch.cat([saved, x[:, saved.shape[1] :]], dim=1)


class mUnet(nn.Module):  # DLStudio's name, kept so the course's "mUnet" finds it
    """DLStudio's mUnet (Kak, DLStudio): residual skip blocks on both arms of a U, for multi-class segmentation.

    The plan, with widths ``c0, c1 = channels`` (DLStudio: 64, 128), ``n = depth // 2`` blocks per width and arm
    split into ``k = n // 4`` and ``n - k`` (DLStudio's ``depth=16``: 8 = 2 + 6):

    - stem: 3x3 conv (``in_channels`` -> c0), act, 2x max-pool (1/2 size);
    - down: k blocks (c0), *save 1*; a resampling block (1/4); n - k blocks, norm, *save 2*; a widening block
      (c0 -> c1), k blocks (c1), norm, *save 3*; n - k blocks (c1); a resampling block (1/8);
    - up: a resampling block (1/4); k blocks (c1), *restore 3*, norm, the same k blocks again; a narrowing block
      (c1 -> c0), n - k blocks (c0), *restore 2*, norm; a resampling block (1/2); k blocks, *restore 1*;
    - head: 3x3 transposed conv, stride 2, dilation 2 (c0 -> ``out_channels``, full size).

    A block is DLStudio's SkipBlockDN (down: convolutions) or SkipBlockUP (up: transposed convolutions), see
    :class:`_SkipBlock`; resampling is a 1x1 stride-2 convolution (down) or transposed convolution (up, which
    spreads each pixel to every other position of the larger grid). *save* keeps the first half of the channels;
    *restore* puts them back in place of the first half of the decoder's channels (DLStudio's skips across the U
    replace channels; they are neither added nor concatenated). As in DLStudio's forward pass, the first k
    c1-width up blocks run twice with the same weights; the n - k c1-width up blocks DLStudio builds but never calls
    are not built. ``skip_connections`` switches the residual sums inside the blocks (DLStudio's flag); the skips
    across the U always stay. DLStudio has 5 outputs (one mask per shape); medkit bundles pass ``out_channels``.

    Shape contract:
        input ``(B, in_channels, H, W)``, any ``H, W >= 1``; output ``(B, out_channels, H, W)``, raw logits. Sizes
        that are not multiples of 8 are zero-padded at the bottom and right and cropped back.

    Args:
        spatial_dims: must be 2.
        in_channels: number of input channels (3 for RGB).
        out_channels: number of output channels (classes).
        channels: the two widths ``(c0, c1)``; c0 even, ``c1 == 2 * c0`` (the blocks' residual sums need it).
        depth: DLStudio's depth, an even number >= 2: ``depth // 2`` blocks per width and arm.
        act: activation after each convolution, a MONAI spec (``"relu"``, ``("leakyrelu", {...})``).
        norm: normalisation in the blocks and between stages, a MONAI spec (``"batch"``, ``"instance"``).
        skip_connections: the residual sums inside the skip blocks.

    Example:
        >>> net = mUnet(in_channels=3, out_channels=6)
        >>> net(torch.zeros(2, 3, 64, 64)).shape
        torch.Size([2, 6, 64, 64])
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 3,
        out_channels: int = 5,
        channels: Sequence[int] = (64, 128),
        depth: int = 16,
        act: str | tuple = "relu",
        norm: str | tuple = "batch",
        skip_connections: bool = True,
    ) -> None:
        super().__init__()
        if spatial_dims != 2:
            raise ValueError(f"mUnet is 2D only, got spatial_dims={spatial_dims}")
        c = tuple(int(w) for w in channels)
        if len(c) != 2 or c[0] < 2 or c[0] % 2 or c[1] != 2 * c[0]:
            raise ValueError(f"channels must be two widths (c0, 2 * c0) with c0 even, like (64, 128); got {c}")
        if int(depth) != depth or depth < 2 or depth % 2:
            raise ValueError(f"depth must be an even number >= 2 (DLStudio: 16), got {depth}")
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"in_channels and out_channels must be >= 1, got {in_channels}, {out_channels}")
        self.in_channels, self.channels, self.depth = int(in_channels), c, int(depth)
        self.skip_connections = as_bool(skip_connections)  # command-line overrides arrive as 'true'/'false'
        self.divisor = 8  # a max-pool and two stride-2 blocks
        n = self.depth // 2
        k = n // 4
        kw = {"skip": self.skip_connections, "act": act, "norm": norm}
        dn = {**kw, "transposed": False}
        up = {**kw, "transposed": True}

        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c[0], kernel_size=3, padding=1), get_act_layer(act), nn.MaxPool2d(2)
        )
        self.encoder1 = nn.Sequential(*_blocks(k, c[0], **dn))
        self.encoder2 = nn.Sequential(
            _SkipBlock(c[0], c[0], resample=True, **dn), *_blocks(n - k, c[0], **dn), get_norm_layer(norm, 2, c[0])
        )
        self.encoder3 = nn.Sequential(
            _SkipBlock(c[0], c[1], **dn), *_blocks(k, c[1], **dn), get_norm_layer(norm, 2, c[1])
        )
        self.encoder4 = nn.Sequential(*_blocks(n - k, c[1], **dn), _SkipBlock(c[1], c[1], resample=True, **dn))
        self.decoder4 = _SkipBlock(c[1], c[1], resample=True, **up)
        self.decoder3 = nn.Sequential(*_blocks(k, c[1], **up))  # runs before and after restoring save 3
        self.decoder3_norm = get_norm_layer(norm, 2, c[1])
        self.decoder2 = nn.Sequential(_SkipBlock(c[1], c[0], **up), *_blocks(n - k, c[0], **up))
        self.decoder1 = nn.Sequential(
            get_norm_layer(norm, 2, c[0]), _SkipBlock(c[0], c[0], resample=True, **up), *_blocks(k, c[0], **up)
        )
        self.head = nn.ConvTranspose2d(c[0], out_channels, 3, stride=2, dilation=2, padding=2, output_padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"mUnet expects input (B, {self.in_channels}, H, W), got shape {x.shape}")
        h, w = x.shape[2], x.shape[3]
        pad_h, pad_w = (-h) % self.divisor, (-w) % self.divisor
        if pad_h or pad_w:
            x = F.pad(x, [0, pad_w, 0, pad_h])
        half0, half1 = self.channels[0] // 2, self.channels[1] // 2

        x = self.encoder1(self.stem(x))
        save1 = x[:, :half0]
        x = self.encoder2(x)
        save2 = x[:, :half0]
        x = self.encoder3(x)
        save3 = x[:, :half1]
        x = self.encoder4(x)

        x = self.decoder3(self.decoder4(x))
        x = self.decoder3(self.decoder3_norm(_restore(x, save3)))
        x = self.decoder1(_restore(self.decoder2(x), save2))
        x = self.head(_restore(x, save1))
        return x[:, :, :h, :w]
