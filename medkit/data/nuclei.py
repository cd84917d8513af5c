"""Readers for 2D nuclei segmentation data: the 2018 Data Science Bowl layout and flat image/mask folders.

Layouts:
    * DSB2018 ``stage1_train``: ``<id>/images/<id>.png`` plus ``<id>/masks/*.png``, one PNG per nucleus. The masks
      of one image are unioned into a binary mask when loaded (:class:`medkit.transforms.LoadMaskUnion`).
    * Flat pairs: ``images/<name>.<ext>`` and ``masks/<name>.<ext>`` (any supported extension on either side).

Every reader returns items ``{"id": str, "image": str, "label": str | list[str]}`` with absolute paths, sorted by id.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from medkit.data.checks import (
    GREY_OR_COLOUR,
    ImageInfo,
    check_image,
    check_same_size,
    index_by_stem,
    inside,
    inspect_image,
    mask_foreground,
)
from medkit.data.datalist import pair_by_stem, prepare_datalists
from medkit.data.dicom import DICOM_EXTENSIONS, group_series

__all__ = [
    "IMAGE_EXTENSIONS",
    "check_nuclei_items",
    "find_dsb_root",
    "list_images",
    "prepare_nuclei_datalists",
    "read_dsb_stage1",
    "read_image_mask_pairs",
    "read_nuclei_dataset",
]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
VOLUME_EXTENSIONS = (".nii", ".nii.gz")


def _has_ext(path: Path, exts: tuple[str, ...]) -> bool:
    return path.name.lower().endswith(exts)


def find_dsb_root(dataset_dir: str | os.PathLike) -> Path | None:
    """Returns the folder holding the ``<id>/images`` case folders (``dataset_dir`` or its ``stage1_train``)."""
    root = Path(dataset_dir)
    for candidate in (root, root / "stage1_train"):
        if candidate.is_dir() and any((d / "images").is_dir() for d in candidate.iterdir() if d.is_dir()):
            return candidate
    return None


def read_dsb_stage1(dataset_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Reads the DSB2018 ``stage1_train`` layout into items whose ``label`` is the list of per-nucleus mask files.

    A case folder with ``masks/`` but no ``images/`` is left out with a logged warning.

    Raises:
        ValueError: if a case has no image, several images, or no masks (the message names the folder), or a file
            is a symlink that leads out of the dataset folder.
    """
    root = find_dsb_root(dataset_dir)
    if root is None:
        raise ValueError(f"{dataset_dir}: no DSB2018 case folders (<id>/images/<id>.png) found")
    orphans = sorted(d.name for d in root.iterdir() if (d / "masks").is_dir() and not (d / "images").is_dir())
    if orphans:
        names = ", ".join(orphans[:3])
        logger.warning("%s: %d case folder(s) with masks/ but no images/ left out: %s", root, len(orphans), names)
    items = []
    for case in sorted(d for d in root.iterdir() if (d / "images").is_dir()):
        images = sorted(p for p in (case / "images").iterdir() if _has_ext(p, IMAGE_EXTENSIONS))
        if len(images) != 1:
            names = ", ".join(p.name for p in images)
            raise ValueError(f"{case / 'images'}: expected exactly one image, found {len(images)} ({names})")
        mask_dir = case / "masks"
        masks = sorted(p for p in mask_dir.iterdir() if _has_ext(p, IMAGE_EXTENSIONS)) if mask_dir.is_dir() else []
        if not masks:
            raise ValueError(f"{images[0]}: image has no masks (expected PNG files in {mask_dir})")
        items.append({"id": case.name, "image": inside(images[0], root), "label": [inside(m, root) for m in masks]})
    return items


def read_image_mask_pairs(
    dataset_dir: str | os.PathLike, image_dir: str = "images", mask_dir: str = "masks"
) -> list[dict[str, Any]]:
    """Reads a flat ``images/`` + ``masks/`` layout, pairing files by stem; masks without an image are left out, logged.

    Raises:
        ValueError: if an image has no mask of the same stem (the message names the image), two images or two masks
            share a stem, or a file is a symlink that leads out of ``dataset_dir``.
    """
    root = Path(dataset_dir)
    images = sorted(p for p in (root / image_dir).iterdir() if _has_ext(p, IMAGE_EXTENSIONS + VOLUME_EXTENSIONS))
    masks = index_by_stem(
        sorted(p for p in (root / mask_dir).iterdir() if _has_ext(p, IMAGE_EXTENSIONS + VOLUME_EXTENSIONS)), _stem
    )
    items = pair_by_stem(
        images,
        masks,
        lambda p: f"{p}: image has no mask (expected {root / mask_dir / _stem(p)}.<ext>)",
        stem=_stem,
        root=root,
    )
    if not items:
        raise ValueError(f"{root / image_dir}: no images found")
    return items


def _stem(path: Path) -> str:
    name = path.name
    return name[: -len(".nii.gz")] if name.lower().endswith(".nii.gz") else path.stem


def read_nuclei_dataset(dataset_dir: str | os.PathLike) -> tuple[list[dict[str, Any]], str]:
    """Detects the layout of ``dataset_dir`` and reads it. Returns ``(items, layout)``, layout "dsb2018" or "pairs"."""
    root = Path(dataset_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset_dir {root} does not exist or is not a folder")
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return read_image_mask_pairs(root), "pairs"
    if find_dsb_root(root) is not None:
        return read_dsb_stage1(root), "dsb2018"
    raise ValueError(
        f"dataset_dir {root}: unknown layout; expected DSB2018 (<id>/images/<id>.png + <id>/masks/*.png, "
        "optionally under stage1_train/) or a folder with images/ and masks/"
    )


def _check_2d(info: ImageInfo, what: str) -> None:
    if info.mode == "nifti" and len([s for s in info.shape if s > 1]) > 2:
        raise ValueError(f"{info.path}: {what} is a volume of shape {info.shape}; nuclei readers take 2D images")


def check_nuclei_items(items: list[dict[str, Any]], converted_dir: str | os.PathLike | None = None) -> None:
    """Checks every image and mask (:mod:`medkit.data.checks`) and that each mask has its image's size.

    Images are decoded once (truncated, corrupt, NaN: error; constant: warning); a single mask per image (flat
    layout) is decoded and its values checked, DSB2018 per-nucleus masks only CRC-checked here and value-checked
    when :class:`medkit.transforms.LoadMaskUnion` loads them. A palette image is replaced in its item by an RGB copy
    in ``converted_dir`` (MONAI's ``PILReader`` would read its palette indices).

    Raises:
        ValueError: one line naming the bad file and the problem.
    """
    for item in items:
        item["image"], image = check_image(item["image"], GREY_OR_COLOUR, converted_dir)
        _check_2d(image, "image")
        labels = item["label"] if isinstance(item["label"], list) else [item["label"]]
        for mask in labels:
            info = inspect_image(mask, decode=False, what="mask")
            _check_2d(info, "mask")
            check_same_size(info, image, "mask")
            if not isinstance(item["label"], list):
                mask_foreground(mask)


def prepare_nuclei_datalists(
    dataset_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    seed: int = 0,
    default_dataset_dir: str | os.PathLike | None = None,
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
    num_synthetic: int = 48,
    synthetic_size: int = 256,
) -> dict[str, Any]:
    """Reads, checks and splits a nuclei dataset, writing ``<output_dir>/datalist.json``.

    When ``dataset_dir`` is missing and equals ``default_dataset_dir``, a synthetic DSB2018-layout dataset is generated
    there first (and logged as synthetic). An existing ``datalist.json`` made from the same folder and seed is reused,
    so resumed runs and evaluation see the same test images.

    Returns:
        ``{"dataset_dir", "layout", "seed", "synthetic", "train", "val", "test"}``.
    """

    def generate(root: Path) -> None:
        from medkit.data.synthetic_nuclei import generate_nuclei_dataset

        generate_nuclei_dataset(root, num_images=num_synthetic, image_size=synthetic_size, seed=seed)

    def read(root: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        items, layout = read_nuclei_dataset(root)
        check_nuclei_items(items, converted_dir=Path(output_dir) / "converted")
        return items, {"layout": layout}

    return prepare_datalists(
        dataset_dir,
        output_dir,
        read=read,
        seed=seed,
        fractions=fractions,
        default_dataset_dir=default_dataset_dir,
        generate=generate,
        missing_hint="Point --dataset_dir at a DSB2018 stage1_train folder (python scripts/fetch_dsb2018.py "
        "downloads it) or at a folder with images/ and masks/",
        synthetic_warning="Training on SYNTHETIC nuclei generated by medkit in %s, not on real data. "
        "Pass --dataset_dir <DSB2018 stage1_train> for real work.",
        summary="{layout} dataset {root}: {n_train} train / {n_val} val / {n_test} test images; split saved to {path}",
        log=logger,
    )


def list_images(input_dir: str | os.PathLike, recursive: bool = True, exclude_dirs: tuple[str, ...] = ("masks",)):
    """Lists PNG/TIFF/JPEG/NIfTI files under ``input_dir`` as ``[{"image": path}]``, skipping ``exclude_dirs`` folders.

    Raises:
        FileNotFoundError: if ``input_dir`` is missing or holds no supported image.
    """
    root = Path(input_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"input_dir {root} does not exist or is not a folder")
    files = root.rglob("*") if recursive else root.iterdir()
    found = sorted(
        p
        for p in files
        if p.is_file()
        and _has_ext(p, IMAGE_EXTENSIONS + VOLUME_EXTENSIONS + DICOM_EXTENSIONS)
        and not any(part in exclude_dirs for part in p.relative_to(root).parts[:-1])
    )
    if not found:
        raise FileNotFoundError(f"input_dir {root} holds no {'/'.join(IMAGE_EXTENSIONS + VOLUME_EXTENSIONS)} files")
    return [{"image": str(p.resolve())} for p in group_series(found)]  # DICOM too: medkit.data.dicom.group_series
