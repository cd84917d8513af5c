"""Grey-level label images: load them as class indices and save class indices back as grey levels.

A :class:`medkit.data.endo.ClassMapping` (from ``mapping.json``) says which grey value stands for which class. Label
arrays are channel-first ``(1, H, W)`` in row-major ``(H, W)`` order, like images loaded with
``PILReader(reverse_indexing=False)``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform
from PIL import Image

from medkit.data.checks import mask_foreground, read_grey_label
from medkit.data.class_mapping import ClassMapping, read_mapping
from medkit.utils import atomic_path

__all__ = ["LoadGreyLabel", "LoadGreyLabeld", "SaveGreyLabel", "SaveGreyLabeld"]

logger = logging.getLogger(__name__)


def _as_mapping(mapping: ClassMapping | dict | str | os.PathLike) -> ClassMapping:
    return mapping if isinstance(mapping, ClassMapping) else read_mapping(mapping)


class LoadGreyLabel(Transform):
    """Loads a grey-level label image as class indices ``(1, H, W)``.

    The input is a file path, or a list of ``{"path", "index"}`` entries (EndoVis per-instrument masks: every
    non-zero pixel of ``path`` gets ``index``; later entries win where masks overlap).

    Args:
        mapping: the class mapping (object, parsed ``mapping.json`` dict or path to it).
        dtype: output dtype.

    Raises:
        ValueError: naming the file and the grey value, when a pixel's value is not in the mapping, or naming the file
            and the problem when it cannot be read as grey levels (:func:`medkit.data.checks.read_grey_label`).
    """

    def __init__(self, mapping: ClassMapping | dict | str | os.PathLike, dtype: torch.dtype = torch.float32) -> None:
        self.mapping = _as_mapping(mapping)
        self.table = self.mapping.lut()
        self.dtype = dtype

    def __call__(self, label: str | os.PathLike | list[dict[str, Any]]) -> MetaTensor:
        if isinstance(label, (str, os.PathLike)):
            path = str(label)
            grey = read_grey_label(path)
            indices = self.table[grey]
            if (indices < 0).any():
                bad = int(grey[indices < 0][0])
                raise ValueError(f"{path}: grey value {bad} is not in {self.mapping.source}")
        else:
            path = str(label[0]["path"])
            indices = np.zeros(mask_foreground(path).shape, dtype=np.int64)
            for entry in label:
                indices[mask_foreground(str(entry["path"]))] = int(entry["index"])
        out = MetaTensor(torch.from_numpy(indices[None]).to(self.dtype))
        out.meta["filename_or_obj"] = path
        return out


class LoadGreyLabeld(MapTransform):
    """Dictionary version of :class:`LoadGreyLabel`."""

    def __init__(
        self,
        keys: KeysCollection,
        mapping: ClassMapping | dict | str | os.PathLike,
        dtype: torch.dtype = torch.float32,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadGreyLabel(mapping, dtype)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.loader(d[key])
        return d


class SaveGreyLabel(Transform):
    """Saves class indices ``(1, H, W)`` (or one-hot / probabilities ``(C, H, W)``, argmax taken) as a grey PNG.

    The file is ``<output_dir>/<stem of meta["filename_or_obj"]>.png`` (:meth:`output_path`), written atomically
    (:func:`medkit.utils.atomic_path`), and each class is written with its grey value from the mapping, so the
    prediction reads back with the same ``mapping.json`` as the training labels.

    Args:
        output_dir: folder for the PNG files; created if missing.
        mapping: the class mapping.
    """

    def __init__(self, output_dir: str | os.PathLike, mapping: ClassMapping | dict | str | os.PathLike) -> None:
        self.output_dir = Path(output_dir)
        self.mapping = _as_mapping(mapping)
        self.grey = self.mapping.index_to_grey()

    def output_path(self, source: str | os.PathLike) -> Path:
        """The file the prediction for the input file ``source`` is written to."""
        return self.output_dir / f"{Path(source).stem}.png"

    def __call__(self, img: torch.Tensor, meta_dict: dict | None = None) -> torch.Tensor:
        meta = meta_dict if meta_dict is not None else getattr(img, "meta", {})
        source = str(meta.get("filename_or_obj", ""))
        if not source:
            raise ValueError("cannot name the prediction: its metadata has no filename_or_obj")
        arr = img.detach().cpu() if isinstance(img, torch.Tensor) else torch.as_tensor(np.asarray(img))
        indices = arr.argmax(0) if arr.shape[0] > 1 else arr[0].round()
        indices = indices.long().clamp(0, self.mapping.num_classes - 1).numpy()
        path = self.output_path(source)
        with atomic_path(path) as tmp:
            Image.fromarray(self.grey[indices]).save(tmp)
        logger.info("saved prediction %s for %s", path, source)
        return img


class SaveGreyLabeld(MapTransform):
    """Dictionary version of :class:`SaveGreyLabel`."""

    def __init__(
        self,
        keys: KeysCollection,
        output_dir: str | os.PathLike,
        mapping: ClassMapping | dict | str | os.PathLike,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.saver = SaveGreyLabel(output_dir, mapping)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            self.saver(d[key])
        return d
