"""Readers for retinal vessel segmentation data: DRIVE, and CHASE_DB1/STARE-style folders through a glob layout.

A *layout* says where the files of one split are, relative to that split's folder:

* ``image``: a glob matching the images, e.g. ``"images/*.tif"``;
* ``id``: a regular expression on the image file name whose first group is the sample id, e.g. ``r"^(\\d+)_"``;
* ``label``: a glob with ``{id}`` and/or ``{stem}`` (the image name without extension) matching exactly one label;
* ``fov``: the same for the field-of-view mask, or ``None`` when the dataset has no FOV masks (one is then estimated
  from each image by :func:`estimate_fov` and written under ``<output_dir>/fov``);
* ``splits``: split name -> folder under ``dataset_dir`` (``""`` for ``dataset_dir`` itself). A layout with a ``test``
  split keeps the dataset's own test images; without one, a test part is carved from the rest by seed.

:func:`read_retina_split` returns items ``{"id", "image", "label", "fov"}`` with absolute paths (``fov`` may be
``None``).
Labels and FOV masks are 0/255 (GIFs, PNGs or PPMs) and are read as one channel.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from medkit.data.checks import (
    COLOUR,
    ImageInfo,
    check_image,
    check_same_size,
    check_unique_ids,
    inside,
    inspect_image,
)
from medkit.data.datalist import prepare_datalists, split_items

__all__ = ["RETINA_LAYOUTS", "check_retina_items", "estimate_fov", "prepare_retina_datalists", "read_retina_split"]

logger = logging.getLogger(__name__)

RETINA_LAYOUTS: dict[str, dict[str, Any]] = {
    "drive": {
        "splits": {"train": "training", "test": "test"},
        "image": "images/*.tif",
        "id": r"^(\d+)_",
        "label": "1st_manual/{id}_manual1.gif",
        "fov": "mask/{id}_*mask.gif",
    },
    "chase_db1": {
        "splits": {"train": ""},
        "image": "Image_*.jpg",
        "id": r"^(.+)\.jpg$",
        "label": "{stem}_1stHO.png",
        "fov": None,
    },  # fmt: skip
    "stare": {
        "splits": {"train": ""},
        "image": "stare-images/im*.ppm",
        "id": r"^(im\d+)",
        "label": "labels-ah/{id}.ah.ppm",
        "fov": None,
    },  # fmt: skip
}


def _layout(layout: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(layout, str):
        if layout not in RETINA_LAYOUTS:
            raise ValueError(f"unknown retina layout {layout!r}; known: {sorted(RETINA_LAYOUTS)} or a dict")
        return RETINA_LAYOUTS[layout]
    missing = {"splits", "image", "label"} - set(layout)
    if missing:
        raise ValueError(f"retina layout {layout!r} lacks {sorted(missing)}")
    return {"id": r"^(.+?)(?:\.[^.]*)?$", "fov": None, **layout}


def _match_one(folder: Path, pattern: str, image: Path, what: str) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        problem = "no" if not found else f"{len(found)} ({', '.join(p.name for p in found[:3])})"
        raise ValueError(f"{image}: image has {problem} {what} files matching {folder / pattern}")
    return found[0]


def _warn_unpaired(folder: Path, spec: dict[str, Any], items: list[dict[str, Any]]) -> None:
    """Logs label and FOV files that no image claims (left out), e.g. a label whose image was deleted."""
    for key in ("label", "fov"):
        if spec.get(key):
            pattern = re.sub(r"\{(id|stem)\}", "*", spec[key])
            used = {item[key] for item in items}
            unpaired = sorted(str(p) for p in folder.glob(pattern) if str(p.resolve()) not in used)
            if unpaired:
                names = ", ".join(unpaired[:3])
                logger.warning("%d %s file(s) have no image and are left out: %s", len(unpaired), key, names)


def read_retina_split(split_dir: str | os.PathLike, layout: str | dict[str, Any] = "drive") -> list[dict[str, Any]]:
    """Reads one split folder (e.g. DRIVE's ``training/``) into items sorted by id.

    Label and FOV files that no image claims are left out with a logged warning.

    Raises:
        ValueError: if no image matches, an id cannot be parsed or is used twice, an image has no (or several) label
            or FOV files, or a file is a symlink that leads out of the folder; the message names the image.
    """
    spec = _layout(layout)
    folder = Path(split_dir)
    images = sorted(folder.glob(spec["image"]))
    if not images:
        raise ValueError(f"{folder}: no images match {spec['image']!r}")
    items = []
    for image in images:
        found = re.search(spec["id"], image.name)
        if found is None:
            raise ValueError(f"{image}: cannot read a sample id with the pattern {spec['id']!r}")
        keys = {"id": found.group(1), "stem": image.name.rsplit(".", 1)[0]}
        label = _match_one(folder, spec["label"].format(**keys), image, "label")
        fov = _match_one(folder, spec["fov"].format(**keys), image, "FOV mask") if spec["fov"] else None
        items.append(
            {
                "id": keys["id"],
                "image": inside(image, folder),
                "label": inside(label, folder),
                "fov": inside(fov, folder) if fov else None,
            }
        )
    check_unique_ids(items, str(folder))
    _warn_unpaired(folder, spec, items)
    return items


def _check_binary(info: ImageInfo, key: str) -> None:
    """Labels and FOV masks are read as the bundle reads them, ``convert("L")`` then a threshold at 127.5: only 0 and
    255 are safe."""
    with Image.open(info.path) as im:
        values = np.unique(np.asarray(im.convert("L")))
    bad = values[(values != 0) & (values != 255)]
    if bad.size:
        raise ValueError(
            f"{info.path}: {key} values {bad[:5].tolist()} are outside the label set {{0, 255}} (the bundle "
            "thresholds at 127.5, so 0/1 masks would read as empty); save the mask as 0/255"
        )


def check_retina_items(items: list[dict[str, Any]], converted_dir: str | os.PathLike | None = None) -> None:
    """Checks each image, label and FOV mask (:mod:`medkit.data.checks`): readable, of its image's size, labels and
    FOV masks holding only 0 and 255, images in colour (a palette image is replaced in its item by an RGB copy in
    ``converted_dir``).

    Raises:
        ValueError: one line naming the bad file and the problem (for sizes: its size and the image's).
    """
    for item in items:
        item["image"], image = check_image(item["image"], COLOUR, converted_dir, what="fundus image")
        for key in ("label", "fov"):
            if item.get(key) is None:
                continue
            info = inspect_image(item[key], decode=False, what=key)
            check_same_size(info, image, key)
            _check_binary(info, key)


def estimate_fov(image_path: str | os.PathLike, output_path: str | os.PathLike, threshold: float = 0.1) -> Path:
    """Estimates the field of view of a fundus photograph and writes it as a 0/255 PNG.

    For datasets without FOV masks (CHASE_DB1, STARE): pixels whose median-filtered brightness (RGB maximum) exceeds
    ``threshold`` times the image's 99th percentile form the FOV, with holes filled and only the largest region kept.
    """
    from scipy import ndimage

    with Image.open(image_path) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.float32)
    bright = ndimage.median_filter(rgb.max(axis=-1), size=5)  # removes noise without moving the rim
    fov = ndimage.binary_fill_holes(bright > threshold * max(np.percentile(bright, 99), 1.0))
    regions, count = ndimage.label(fov)
    if count > 1:
        fov = regions == 1 + np.argmax(ndimage.sum(fov, regions, range(1, count + 1)))
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(fov.astype(np.uint8) * 255).save(output_path)
    return output_path


def _add_estimated_fovs(items: list[dict[str, Any]], fov_dir: Path) -> None:
    for item in items:
        if item.get("fov") is None:
            item["fov"] = str(estimate_fov(item["image"], fov_dir / f"{item['id']}_fov.png").resolve())
            logger.info("no FOV mask for %s: estimated one in %s", item["image"], item["fov"])


def prepare_retina_datalists(
    dataset_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    seed: int = 0,
    layout: str | dict[str, Any] = "drive",
    val_fraction: float = 0.2,
    test_fraction: float = 0.25,
    default_dataset_dir: str | os.PathLike | None = None,
    synthetic: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Reads, checks and splits a retina dataset, writing ``<output_dir>/datalist.json``.

    The dataset's own test split is kept; the validation part is carved from the training images by ``seed`` (and,
    for layouts without a test folder, a test part too). When ``dataset_dir`` is missing and equals
    ``default_dataset_dir``, a synthetic DRIVE-layout dataset is generated there first (``synthetic`` holds keyword
    arguments of :func:`medkit.data.synthetic_retina.generate_retina_dataset`) and the run is logged as synthetic.
    A saved datalist made from the same folder and seed is reused, so resumed runs and evaluation see the same split.

    Returns:
        ``{"dataset_dir", "layout", "seed", "synthetic", "train", "val", "test"}``.

    Raises:
        FileNotFoundError: if ``dataset_dir`` is missing and is not the default.
        ValueError: from the reader and the checks, naming the bad file.
    """

    def generate(root: Path) -> None:
        from medkit.data.synthetic_retina import generate_retina_dataset

        generate_retina_dataset(root, seed=seed, **(synthetic or {}))

    def read(root: Path) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
        spec = _layout(layout)
        parts = {name: read_retina_split(root / sub, spec) for name, sub in spec["splits"].items()}
        for items in parts.values():
            check_retina_items(items, converted_dir=Path(output_dir) / "converted")
            _add_estimated_fovs(items, Path(output_dir) / "fov")
        return parts, {"layout": layout}

    def split(parts: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        if "test" not in parts:
            return split_items(parts["train"], (1 - val_fraction - test_fraction, val_fraction, test_fraction), seed)
        carved = split_items(parts["train"], (1 - val_fraction, val_fraction), seed=seed, names=("train", "val"))
        return {**carved, "test": parts["test"]}

    return prepare_datalists(
        dataset_dir,
        output_dir,
        read=read,
        seed=seed,
        split=split,
        default_dataset_dir=default_dataset_dir,
        generate=generate,
        missing_hint="Download DRIVE from https://drive.grand-challenge.org/ and pass --dataset_dir <folder holding "
        "training/ and test/>",
        synthetic_warning="Training on SYNTHETIC fundus images generated by medkit in %s, not on real data. "
        "Pass --dataset_dir <DRIVE folder> for real work.",
        summary="retina dataset {root}: {n_train} train / {n_val} val / {n_test} test images; split saved to {path}",
        log=logger,
    )
