"""Loading and saving transforms that MONAI lacks: instance-mask union, atomic saving, and saving in the input's own
format."""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import LoadImage, MapTransform, SaveImage, SaveImaged, Transform
from monai.utils import ImageMetaKey

from medkit.data.checks import check_file, check_mask_values, mask_foreground
from medkit.data.dicom import is_dicom
from medkit.transforms.dicom import DicomMaskWriter
from medkit.utils import atomic_path

__all__ = [
    "AtomicSaveImage",
    "AtomicSaveImaged",
    "LoadMaskUnion",
    "LoadMaskUniond",
    "SaveLikeInput",
    "SaveLikeInputd",
]

logger = logging.getLogger(__name__)

_NIFTI = (".nii", ".nii.gz")


class LoadMaskUnion(Transform):
    """Loads one mask file, or several per-instance mask files, as one binary channel-first mask.

    A pixel is foreground when it is non-zero in any of the files (any RGB channel; a palette mask by its colours,
    not its indices; alpha ignored). PNG/TIFF masks are read with PIL and laid out like MONAI's ``PILReader`` (spatial
    axes reversed, so ``(1, W, H)``), which keeps them aligned with images loaded by ``LoadImage``; NIfTI masks are
    read with ``LoadImage``. Reading instance masks one by one keeps memory at one image even for cases with hundreds
    of nuclei.

    Raises:
        ValueError: naming the file, if it cannot be read, holds values outside the label set (negative,
            fractional, NaN; see :func:`medkit.data.checks.mask_foreground`) or its size differs from the first mask's.
    """

    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        self.dtype = dtype
        self._nifti_loader = LoadImage(image_only=True, ensure_channel_first=True)

    def _read(self, path: str) -> tuple[np.ndarray, dict]:
        if path.lower().endswith(_NIFTI):
            check_file(path)
            img = self._nifti_loader(path)
            check_mask_values(np.asarray(img.array), path)
            return np.asarray(img.array) > 0, {"affine": img.affine}
        return mask_foreground(path).T[None], {}

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


class AtomicSaveImage(SaveImage):
    """MONAI's ``SaveImage`` that writes each file atomically: under a temporary name in the output folder, then
    renamed (:func:`medkit.utils.atomic_path`), so an interrupted run leaves no half-written file under a final name.

    Takes ``SaveImage``'s arguments. :meth:`output_path` names the file an input is saved to, which
    :class:`medkit.bundle.InferenceDataLoader` checks to skip finished inputs.
    """

    def output_path(self, source: str | os.PathLike) -> Path:
        """The file a prediction for the input file ``source`` is written to (no folder is created)."""
        layout = copy.copy(self.folder_layout)
        layout.makedirs = False
        return Path(layout.filename(**self.fname_formatter({ImageMetaKey.FILENAME_OR_OBJ: str(source)}, self)))

    def __call__(
        self, img: torch.Tensor | np.ndarray, meta_data: dict | None = None, filename: str | os.PathLike | None = None
    ) -> torch.Tensor | np.ndarray:
        meta = img.meta if isinstance(img, MetaTensor) else meta_data
        if filename is not None:
            target = Path(f"{filename}{self.output_ext}")
        else:
            target = Path(self.folder_layout.filename(**self.fname_formatter(meta, self)))
        with atomic_path(target) as tmp:
            # SaveImage appends output_ext to an explicit filename; the temporary name ends with the target's name
            super().__call__(img, meta_data, filename=str(tmp)[: len(str(tmp)) - len(self.output_ext)])
        if self.savepath_in_metadict and meta is not None:
            meta["saved_to"] = str(target)
        return img


class AtomicSaveImaged(SaveImaged):
    """Dictionary version of :class:`AtomicSaveImage`: MONAI's ``SaveImaged``, with the same arguments."""

    def __init__(
        self,
        keys: KeysCollection,
        meta_keys: KeysCollection | None = None,
        meta_key_postfix: str = "meta_dict",
        allow_missing_keys: bool = False,
        **kwargs: object,
    ) -> None:
        super().__init__(keys, meta_keys, meta_key_postfix, allow_missing_keys=allow_missing_keys, **kwargs)
        self.saver = AtomicSaveImage(**kwargs)


class SaveLikeInput(Transform):
    """Saves a channel-first mask next to nothing but itself: same stem and same format as its source image.

    PNG/TIFF/JPEG/BMP sources are written as 8-bit PNG/TIFF (``scale`` 255, so foreground is white) and NIfTI sources
    as NIfTI with the source affine; DICOM sources (slices of :class:`medkit.transforms.DicomSlices`) as NIfTI with the
    DICOM geometry, and a DICOM SEG with ``dicom_seg`` (:class:`medkit.transforms.DicomMaskWriter`). The source path
    comes from ``meta["filename_or_obj"]``. Each file is written atomically (:class:`AtomicSaveImage`).

    Args:
        output_dir: folder for the predictions; created if missing.
        scale_2d: grey value written for foreground in 2D image formats.
        dicom_seg: also write a DICOM SEG for DICOM sources (``true``/``false`` as on the command line).
        postfix: added to the source's stem after an underscore (MONAI's folder layout), e.g. ``instances`` writes
            ``<stem>_instances.png`` beside the mask.
        labels: the input is a label image (one integer per object): written unscaled as 16-bit PNG/TIFF or as NIfTI;
            DICOM sources get none (their SEG holds the mask).
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        scale_2d: int = 255,
        dicom_seg: bool | str = False,
        postfix: str = "",
        labels: bool = False,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.scale_2d = scale_2d
        self.postfix = postfix
        self.labels = labels
        self._savers: dict[str, AtomicSaveImage] = {}
        self._dicom = DicomMaskWriter(self.output_dir, dicom_seg=dicom_seg)

    def _saver(self, source: str) -> AtomicSaveImage:
        ext = _extension(source)
        if not source or ext not in (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", *_NIFTI):
            raise ValueError(f"cannot tell the output format of a prediction whose source is {source!r}")
        if ext not in self._savers:
            jpeg = ext in (".jpg", ".jpeg")  # lossy formats would blur a mask: save those as PNG
            self._savers[ext] = AtomicSaveImage(
                output_dir=self.output_dir,
                output_postfix=self.postfix,
                output_ext=".png" if jpeg else ext,
                output_dtype=np.uint16 if self.labels else np.uint8,
                separate_folder=False,
                resample=False,
                print_log=False,
                scale=self.scale_2d if ext not in _NIFTI and not self.labels else None,
            )
        return self._savers[ext]

    def output_path(self, source: str | os.PathLike) -> Path:
        """The file the mask for the input file ``source`` is written to.

        Raises:
            ValueError: naming ``source``, if its format is not one this transform writes.
        """
        if is_dicom(source):
            return self._dicom.output_path(source)
        return self._saver(str(source)).output_path(source)

    def __call__(self, img: torch.Tensor, meta_dict: dict | None = None) -> torch.Tensor:
        meta = meta_dict if meta_dict is not None else getattr(img, "meta", {})
        source = str(meta.get("filename_or_obj", ""))
        if is_dicom(source):
            return img if self.labels else self._dicom(img)
        saver = self._saver(source)
        if _extension(source) not in _NIFTI and not self.labels:
            img = img.clamp(0, 1) if isinstance(img, torch.Tensor) else img
        saver(img, meta_dict)
        logger.info("saved prediction for %s", source)
        return img


class SaveLikeInputd(MapTransform):
    """Dictionary version of :class:`SaveLikeInput`."""

    def __init__(
        self,
        keys: KeysCollection,
        output_dir: str | os.PathLike,
        allow_missing_keys: bool = False,
        dicom_seg: bool | str = False,
        postfix: str = "",
        labels: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.saver = SaveLikeInput(output_dir, dicom_seg=dicom_seg, postfix=postfix, labels=labels)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            self.saver(d[key])
        return d
