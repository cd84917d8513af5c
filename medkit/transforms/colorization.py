"""Input/target pairs for colorization pretraining: a grey frame in, its RGB frame as the target."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
from monai.transforms import LoadImage, MapTransform

from medkit.transforms.intensity import ToGrey

__all__ = ["ColorizationPaird"]


class ColorizationPaird(MapTransform):
    """Turns a loaded channel-first RGB frame into ``image`` = grey ``(1, H, W)`` and ``label`` = RGB ``(3, H, W)``.

    When the item has a ``grey_key`` path (a grey version stored with the data), that file is read; otherwise the grey
    image is made from the RGB frame with the ITU-R 601-2 luma weights. An alpha channel is dropped.

    Args:
        image_key: key of the loaded RGB frame; it receives the grey image.
        label_key: key that receives the RGB target.
        grey_key: key of an optional grey file path.
    """

    def __init__(self, image_key: str = "image", label_key: str = "label", grey_key: str = "grey") -> None:
        super().__init__([image_key])
        self.image_key, self.label_key, self.grey_key = image_key, label_key, grey_key
        self.to_grey = ToGrey()
        self.loader = LoadImage(reader="PILReader", image_only=True, ensure_channel_first=True, reverse_indexing=False)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        rgb = d[self.image_key]
        if rgb.shape[0] not in (3, 4):
            raise ValueError(f"colorization needs RGB frames, got shape {tuple(rgb.shape)} for {d.get('id', '?')}")
        rgb = rgb[:3]
        grey_path = d.get(self.grey_key)
        grey = self.loader(grey_path)[:1].to(rgb.dtype) if grey_path else self.to_grey(rgb)
        if isinstance(grey_path, str) and grey.shape[1:] != rgb.shape[1:]:
            raise ValueError(f"{grey_path}: grey size {tuple(grey.shape[1:])} differs from the RGB frame's")
        d[self.label_key] = torch.as_tensor(rgb).clone()
        d[self.image_key] = grey
        return d
