"""Reader for multi-class segmentation folders: ``images/`` + ``labels/`` class-index PNGs + ``classes.json``.

Layout (written by :func:`medkit.data.synthetic_shapes.generate_shapes_dataset`)::

    dataset_dir/images/<name>.png     RGB (grey or RGBA are converted to RGB when loaded)
    dataset_dir/labels/<name>.png     single-channel class-index image, values 0..C-1 (0 = background)
    dataset_dir/classes.json          {"0": "background", "1": "rectangle", ...}, indices 0..C-1 without gaps

Items are ``{"id": str, "image": str, "label": str}`` with absolute paths, sorted by id.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from medkit.data.checks import (
    ANY_8BIT,
    check_image,
    check_mask_values,
    check_same_size,
    index_by_stem,
    inspect_image,
    read_json,
)
from medkit.data.datalist import pair_by_stem, prepare_datalists

__all__ = ["check_label_items", "prepare_shapes_datalists", "read_class_names", "read_label_pairs"]

logger = logging.getLogger(__name__)

_EXTENSIONS = (".png", ".tif", ".tiff", ".bmp")


def read_class_names(dataset_dir: str | os.PathLike) -> list[str]:
    """Reads ``classes.json`` and returns the class names ordered by index.

    Raises:
        FileNotFoundError: if ``classes.json`` is missing.
        ValueError: if it is not a JSON object mapping the indices ``0..C-1`` (C >= 2) to names.
    """
    path = Path(dataset_dir) / "classes.json"
    if not path.is_file():
        raise FileNotFoundError(f'{path} is missing; it maps label values to class names, e.g. {{"0": "background"}}')
    raw = read_json(path)
    if not isinstance(raw, dict) or not all(str(k).isdigit() for k in raw):
        raise ValueError(f"{path}: expected an object mapping class indices to names, got {raw!r}")
    mapping = {int(k): str(v) for k, v in raw.items()}
    if sorted(mapping) != list(range(len(mapping))) or len(mapping) < 2:
        raise ValueError(f"{path}: class indices must be 0..C-1 with C >= 2, got {sorted(mapping)}")
    return [mapping[i] for i in range(len(mapping))]


def read_label_pairs(
    dataset_dir: str | os.PathLike, image_dir: str = "images", label_dir: str = "labels"
) -> list[dict[str, Any]]:
    """Pairs ``images/<name>.<ext>`` with ``labels/<name>.<ext>`` by file stem.

    Raises:
        FileNotFoundError: if ``dataset_dir`` or one of its two folders is missing.
        ValueError: if an image has no label of the same stem, or there are no images.
    """
    root = Path(dataset_dir)
    for folder in (root, root / image_dir, root / label_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} does not exist; expected {root}/{image_dir}/ and {root}/{label_dir}/")
    images = sorted(p for p in (root / image_dir).iterdir() if p.suffix.lower() in _EXTENSIONS)
    labels = index_by_stem(sorted(p for p in (root / label_dir).iterdir() if p.suffix.lower() in _EXTENSIONS))
    items = pair_by_stem(
        images, labels, lambda p: f"{p}: image has no label (expected {root / label_dir / p.stem}.png)", root=root
    )
    if not items:
        raise ValueError(f"{root / image_dir}: no {'/'.join(_EXTENSIONS)} images found")
    return items


def check_label_items(
    items: list[dict[str, Any]], num_classes: int, converted_dir: str | os.PathLike | None = None
) -> None:
    """Checks every image and label (:mod:`medkit.data.checks`): each label a single-channel class-index image of its
    image's size with values below ``num_classes`` (a palette label's indices are its classes, as MONAI reads them).
    A 16-bit image is replaced in its item by an 8-bit copy in ``converted_dir`` (the bundle scales 0-255).

    Args:
        items: the ``{"id", "image", "label"}`` items.
        num_classes: the number of classes in ``classes.json``.
        converted_dir: the folder for 8-bit copies; ``None`` makes a 16-bit image an error.

    Raises:
        ValueError: one line naming the bad file and the problem (unreadable file, size mismatch, RGB label, or a
            value outside the classes).
    """
    for item in items:
        item["image"], image = check_image(item["image"], ANY_8BIT, converted_dir)
        info = inspect_image(item["label"], decode=False, what="label")
        with Image.open(info.path) as im:
            label = np.asarray(im)
        if label.ndim != 2:
            raise ValueError(
                f"{item['label']}: label must be a single-channel class-index image, got shape {label.shape}"
            )
        check_same_size(info, image, "label")
        check_mask_values(label, item["label"])
        values = np.unique(label)
        if values.max() >= num_classes:
            bad = values[values >= num_classes].tolist()
            raise ValueError(f"{item['label']}: label values {bad} are not in classes.json (0..{num_classes - 1})")


def prepare_shapes_datalists(
    dataset_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    seed: int = 0,
    default_dataset_dir: str | os.PathLike | None = None,
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
    num_synthetic: int = 600,
    synthetic_size: int = 64,
    num_classes: int | None = None,
) -> dict[str, Any]:
    """Reads, checks and splits a class-index segmentation dataset, writing ``<output_dir>/datalist.json``.

    When ``dataset_dir`` is missing and equals ``default_dataset_dir``, a synthetic shapes dataset (generator seed 0)
    is written there first and the run logs that it is synthetic. A saved split made from the same folder and
    ``seed`` is reused, so resumed runs and evaluation see the same test images. ``num_classes``, when given, must
    equal the number of classes in ``classes.json`` (the network's output channels).

    Returns:
        ``{"dataset_dir", "classes", "seed", "synthetic", "train", "val", "test"}``.
    """

    def generate(root: Path) -> None:
        from medkit.data.synthetic_shapes import generate_shapes_dataset

        generate_shapes_dataset(root, num_images=num_synthetic, image_size=synthetic_size, seed=0)

    def read(root: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        classes = read_class_names(root)
        if num_classes is not None and len(classes) != num_classes:
            raise ValueError(
                f"{root / 'classes.json'} lists {len(classes)} classes but the network has {num_classes} outputs; "
                f"pass --num_classes {len(classes)}"
            )
        items = read_label_pairs(root)
        check_label_items(items, len(classes), converted_dir=Path(output_dir) / "converted")
        return items, {"classes": classes}

    return prepare_datalists(
        dataset_dir,
        output_dir,
        read=read,
        seed=seed,
        fractions=fractions,
        default_dataset_dir=default_dataset_dir,
        generate=generate,
        missing_hint="Point --dataset_dir at a folder with images/, labels/ and classes.json, or leave it at the "
        "default to generate synthetic shapes",
        synthetic_warning="Training on SYNTHETIC shapes generated by medkit in %s, not on real data.",
        summary="dataset {root} ({n_classes} classes): {n_train} train / {n_val} val / {n_test} test images; "
        "split saved to {path}",
        summary_fields=lambda datalist: {"n_classes": len(datalist["classes"])},
        log=logger,
    )
