"""Intensity transforms that MONAI lacks."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform

__all__ = ["ToGrey", "ToGreyd"]

# ITU-R 601-2 luma, the weights PIL uses for convert("L")
_LUMA = (0.299, 0.587, 0.114)


class ToGrey(Transform):
    """Converts a channel-first image with 1, 2 (grey + alpha), 3 (RGB) or 4 (RGBA) channels to one grey channel.

    Alpha is dropped; RGB is combined with the ITU-R 601-2 luma weights, as PIL's ``convert("L")`` does. MetaTensor
    metadata is kept.

    Raises:
        ValueError: if the channel count is not 1 to 4 (the message gives the shape).
    """

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        channels = img.shape[0]
        if channels in (1, 2):
            return img[:1]
        if channels in (3, 4):
            weights = torch.as_tensor(_LUMA, dtype=img.dtype if img.is_floating_point() else torch.float32)
            weights = weights.to(img.device).view(3, *([1] * (img.ndim - 1)))
            return (img[:3] * weights).sum(dim=0, keepdim=True)
        raise ValueError(f"ToGrey expects 1-4 channels first, got shape {tuple(img.shape)}")


class ToGreyd(MapTransform):
    """Dictionary version of :class:`ToGrey`."""

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.converter = ToGrey()

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.converter(d[key])
        return d
