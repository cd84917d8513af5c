"""Loading and saving transforms that MONAI lacks: instance-mask union, and saving in the input's own format."""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import LoadImage, MapTransform, SaveImage, Transform
from PIL import Image

__all__ = ["LoadMaskUnion", "LoadMaskUniond", "SaveLikeInput", "SaveLikeInputd"]

logger = logging.getLogger(__name__)

_NIFTI = (".nii", ".nii.gz")


class LoadMaskUnion(Transform):
    """Loads one mask file, or several per-instance mask files, as one binary channel-first mask.

    A pixel is foreground when it is non-zero in any of the files. PNG/TIFF masks are read with PIL and laid out
    like MONAI's ``PILReader`` (spatial axes reversed, so ``(1, W, H)``), which keeps them aligned with images loaded by
    ``LoadImage``; NIfTI masks are read with ``LoadImage``. Reading instance masks one by one keeps memory at one image
    even for cases with hundreds of nuclei.

    Raises:
        ValueError: naming the file, if it cannot be read or its size differs from the first mask's.
    """

    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        self.dtype = dtype
        self._nifti_loader = LoadImage(image_only=True, ensure_channel_first=True)

    def _read(self, path: str) -> tuple[np.ndarray, dict]:
        if path.lower().endswith(_NIFTI):
            img = self._nifti_loader(path)
            return np.asarray(img.array) > 0, {"affine": img.affine}
        try:
            with Image.open(path) as im:
                arr = np.asarray(im)
        except Exception as e:
            raise ValueError(f"{path}: cannot read mask ({type(e).__name__}: {e})") from None
        if arr.ndim == 3:  # RGB(A) masks: any channel marks the foreground
            arr = arr[..., :3].max(axis=-1)
        return (arr > 0).T[None], {}

    def __call__(self, paths: str | os.PathLike | Sequence[str | os.PathLike]) -> MetaTensor:
        files = [str(paths)] if isinstance(paths, (str, os.PathLike)) else [str(p) for p in paths]
        if not files:
            raise ValueError("LoadMaskUnion got an empty list of mask files")
        union, meta = self._read(files[0])
        for path in files[1:]:
            mask, _ = self._read(path)
            if mask.shape != union.shape:
                raise ValueError(f"{path}: mask shape {mask.shape[1:]} differs from {files[0]} shape {union.shape[1:]}")
            union |= mask
        out = MetaTensor(torch.from_numpy(union).to(self.dtype), affine=meta.get("affine"))
        out.meta["filename_or_obj"] = files[0]
        return out


class LoadMaskUniond(MapTransform):
    """Dictionary version of :class:`LoadMaskUnion`."""

    def __init__(self, keys: KeysCollection, dtype: torch.dtype = torch.float32, allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadMaskUnion(dtype=dtype)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.loader(d[key])
        return d


def _extension(path: str) -> str:
    name = path.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return Path(name).suffix


class SaveLikeInput(Transform):
    """Saves a channel-first mask next to nothing but itself: same stem and same format as its source image.

    PNG/TIFF/JPEG/BMP sources are written as 8-bit PNG/TIFF (``scale`` 255, so foreground is white) and NIfTI sources
    as NIfTI with the source affine. The source path comes from ``meta["filename_or_obj"]``.

    Args:
        output_dir: folder for the predictions; created if missing.
        scale_2d: grey value written for foreground in 2D image formats.
    """

    def __init__(self, output_dir: str | os.PathLike, scale_2d: int = 255) -> None:
        self.output_dir = Path(output_dir)
        self.scale_2d = scale_2d
        self._savers: dict[str, SaveImage] = {}

    def _saver(self, ext: str) -> SaveImage:
        if ext not in self._savers:
            jpeg = ext in (".jpg", ".jpeg")  # lossy formats would blur a mask: save those as PNG
            self._savers[ext] = SaveImage(
                output_dir=self.output_dir,
                output_postfix="",
                output_ext=".png" if jpeg else ext,
                output_dtype=np.uint8,
                separate_folder=False,
                resample=False,
                print_log=False,
                scale=self.scale_2d if ext not in _NIFTI else None,
            )
        return self._savers[ext]

    def __call__(self, img: torch.Tensor, meta_dict: dict | None = None) -> torch.Tensor:
        meta = meta_dict if meta_dict is not None else getattr(img, "meta", {})
        source = str(meta.get("filename_or_obj", ""))
        ext = _extension(source)
        if not source or ext not in (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", *_NIFTI):
            raise ValueError(f"cannot tell the output format of a prediction whose source is {source!r}")
        if ext not in _NIFTI:
            img = img.clamp(0, 1) if isinstance(img, torch.Tensor) else img
        self._saver(ext)(img, meta_dict)
        logger.info("saved prediction for %s", source)
        return img


class SaveLikeInputd(MapTransform):
    """Dictionary version of :class:`SaveLikeInput`."""

    def __init__(self, keys: KeysCollection, output_dir: str | os.PathLike, allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        self.saver = SaveLikeInput(output_dir)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            self.saver(d[key])
        return d
