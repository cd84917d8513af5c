"""Readers for endoscopic instrument segmentation and colorization frames.

Layouts (``dataset_dir`` is the folder given to the bundle):
    * **Course layout**: ``segmentation/{train,validation,test}/`` holding either ``images/<id>.png`` +
      ``labels/<id>.png`` subfolders, or flat ``<id>.png`` + ``<id>_label.png`` pairs. Labels are grey-level images;
      ``mapping.json`` (in ``segmentation/`` or in ``dataset_dir``) maps each grey value to a class::

          {"0": {"index": 0, "name": "background"}, "85": {"index": 1, "name": "shaft"}, ...}

      A bare index (``{"0": 0, "85": 1}``) is accepted too; such classes are named ``class_<index>``. Several grey
      values may share one index. Colorization frames live in ``colorization/{train_cor,validation_cor}/*.png`` (RGB);
      a grey version is read from the sibling folder ``train_grey``/``validation_grey`` (same file name) when present,
      and made from the RGB frame otherwise.
    * **EndoVis 2017 instrument types**: ``instrument_dataset_<n>/`` folders, read by :mod:`medkit.data.endovis`.

Items are ``{"id", "image", "label"}`` with absolute paths.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from medkit.data.checks import (
    COLOUR,
    GREY_8BIT,
    check_image,
    check_same_size,
    index_by_stem,
    inside,
    inspect_image,
    read_grey_label,
)
from medkit.data.class_mapping import ClassMapping, read_mapping
from medkit.data.datalist import pair_by_stem, prepare_datalists
from medkit.data.endovis import _EXTS, _images, endovis2017_mapping, read_endovis2017, split_endovis
from medkit.utils import save_json

__all__ = [
    "check_label_values",
    "list_frames",
    "prepare_colorization_datalists",
    "prepare_endo_datalists",
    "read_colorization_split",
    "read_segmentation_split",
]

logger = logging.getLogger(__name__)

_SPLITS = {"train": "train", "val": "validation", "test": "test"}


def read_segmentation_split(split_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Reads one split folder: ``images/`` + ``labels/`` (paired by stem) or flat ``<id>.png`` + ``<id>_label.png``.

    Label images without a frame are left out with a logged warning.

    Raises:
        ValueError: if the folder holds no frames, a frame has no label (the message names the frame), two frames or
            two labels share a stem, or a file is a symlink that leads out of the folder.
    """
    root = Path(split_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"split folder {root} does not exist")
    if (root / "images").is_dir():
        labels = index_by_stem(_images(root / "labels")) if (root / "labels").is_dir() else {}
        frames, label_name = _images(root / "images"), "labels/{}.png"
    else:
        files = _images(root)
        labels = index_by_stem((p for p in files if p.stem.endswith("_label")), lambda p: p.stem[: -len("_label")])
        frames, label_name = [p for p in files if not p.stem.endswith("_label")], "{}_label.png"
    items = pair_by_stem(
        frames,
        labels,
        lambda p: f"{p}: frame has no label image (expected {root / label_name.format(p.stem)})",
        root=root,
    )
    if not items:
        raise ValueError(f"{root}: no frames found (expected images/ + labels/, or <id>.png + <id>_label.png)")
    return items


def check_label_values(
    items: list[dict[str, Any]], mapping: ClassMapping, converted_dir: str | os.PathLike | None = None
) -> None:
    """Checks every frame and label image (:mod:`medkit.data.checks`): frames readable and in colour, each grey value
    of each label in ``mapping``, labels (and EndoVis per-instrument masks) of their frame's size. A palette frame
    is replaced in its item by an RGB copy in ``converted_dir``.

    Args:
        items: the segmentation items (``label`` a grey-level file or EndoVis ``{"path", "index"}`` entries).
        mapping: the grey value -> class table.
        converted_dir: the folder for 8-bit copies; ``None`` makes a palette frame an error.

    Raises:
        ValueError: naming the file and the problem (unknown grey value, size mismatch, unreadable, grey frame).
    """
    known = mapping.lut() >= 0
    for item in items:
        item["image"], frame = check_image(item["image"], COLOUR, converted_dir, what="frame")
        if not isinstance(item["label"], str):  # EndoVis per-instrument masks: any non-zero pixel is the class
            for entry in item["label"]:
                check_same_size(inspect_image(entry["path"], decode=False, what="mask"), frame, "mask")
            continue
        path = item["label"]
        grey = read_grey_label(path)
        present = np.flatnonzero(np.bincount(grey.ravel(), minlength=256))
        unknown = present[~known[present]]
        if unknown.size:
            raise ValueError(
                f"{path}: grey value {int(unknown[0])} is not in {mapping.source} "
                f"(unknown values {unknown.tolist()}; known {sorted(mapping.grey_to_index)})"
            )
        check_same_size(inspect_image(path, decode=False, what="label"), frame, "label")


def _find_mapping(root: Path) -> Path:
    for candidate in (root / "segmentation" / "mapping.json", root / "mapping.json"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{root}: no mapping.json in {root / 'segmentation'} or {root}")


def _generator(synthetic_kwargs: dict | None):
    def generate(root: Path) -> None:
        from medkit.data.synthetic_endo import generate_endo_dataset

        generate_endo_dataset(root, **(synthetic_kwargs or {}))

    return generate


def _read_segmentation(
    root: Path, seed: int, converted_dir: Path
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    if (root / "segmentation").is_dir() or (root / "train").is_dir():
        seg = root / "segmentation" if (root / "segmentation").is_dir() else root
        mapping = read_mapping(_find_mapping(root))
        parts = {key: read_segmentation_split(seg / folder) for key, folder in _SPLITS.items()}
        layout = "course"
    else:
        mapping, parts, layout = endovis2017_mapping(), split_endovis(read_endovis2017(root), seed), "endovis2017"
    for items in parts.values():
        check_label_values(items, mapping, converted_dir)
    return parts, {"layout": layout, "mapping": mapping.to_json()}


def _read_colorization(root: Path, converted_dir: Path) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    cor = root / "colorization"
    parts = {
        "train": read_colorization_split(cor / "train_cor"),
        "val": read_colorization_split(cor / "validation_cor"),
    }
    for item in (item for items in parts.values() for item in items):
        item["image"], frame = check_image(item["image"], COLOUR, converted_dir, what="frame")
        if "grey" in item:
            item["grey"], grey = check_image(item["grey"], GREY_8BIT, converted_dir, what="grey frame")
            check_same_size(grey, frame, "grey frame")
    return parts, {"layout": "colorization"}


def _endo_datalists(
    dataset_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    seed: int,
    default_dataset_dir: str | os.PathLike | None,
    synthetic_kwargs: dict | None,
    **kwargs: Any,
) -> dict[str, Any]:
    """:func:`prepare_datalists` with what the segmentation and colorization datalists share (the default data)."""
    return prepare_datalists(
        dataset_dir,
        output_dir,
        seed=seed,
        split=dict,  # the dataset's own folders are the parts
        default_dataset_dir=default_dataset_dir,
        generate=_generator(synthetic_kwargs),
        missing_hint="Point --dataset_dir at a folder with segmentation/ and colorization/ (or EndoVis 2017 "
        "instrument_dataset_<n>/ folders)",
        synthetic_warning="Training on SYNTHETIC endoscopy frames generated by medkit in %s, not on real data. "
        "Pass --dataset_dir <your data> for real work.",
        log=logger,
        **kwargs,
    )


def prepare_endo_datalists(
    dataset_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    seed: int = 0,
    default_dataset_dir: str | os.PathLike | None = None,
    synthetic_kwargs: dict | None = None,
) -> dict[str, Any]:
    """Reads and checks a segmentation dataset, writing ``datalist.json`` and ``mapping.json`` into ``output_dir``.

    A missing ``dataset_dir`` equal to ``default_dataset_dir`` is generated first (logged as synthetic). An existing
    ``datalist.json`` made from the same folder and seed is reused, so resumed runs and evaluation see the same frames.

    Returns:
        ``{"dataset_dir", "layout", "seed", "synthetic", "mapping", "train", "val", "test"}``; ``mapping`` is the
        ``mapping.json`` content.
    """
    datalist = _endo_datalists(
        dataset_dir,
        output_dir,
        seed,
        default_dataset_dir,
        synthetic_kwargs,
        read=lambda root: _read_segmentation(root, seed, Path(output_dir) / "converted"),
        summary="{layout} dataset {root}: {n_train} train / {n_val} val / {n_test} test frames, classes {names}; "
        "split saved to {path}",
        summary_fields=lambda datalist: {"names": list(read_mapping(datalist["mapping"]).names)},
    )
    save_json(datalist["mapping"], Path(output_dir) / "mapping.json")
    return datalist


def read_colorization_split(split_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Lists the RGB frames of a colorization split; ``grey`` is set where a sibling ``*_grey`` file exists."""
    root = Path(split_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"colorization folder {root} does not exist")
    base = root.name.removesuffix("_cor")
    grey_dirs = [root.parent / f"{base}_{suffix}" for suffix in ("grey", "gray")]
    items = []
    for frame in index_by_stem(_images(root)).values():
        item = {"id": frame.stem, "image": inside(frame, root.parent)}
        grey = next((d / frame.name for d in grey_dirs if (d / frame.name).is_file()), None)
        if grey is not None:
            item["grey"] = inside(grey, root.parent)
        items.append(item)
    if not items:
        raise ValueError(f"{root}: no colorization frames found")
    return items


def prepare_colorization_datalists(
    dataset_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    seed: int = 0,
    default_dataset_dir: str | os.PathLike | None = None,
    synthetic_kwargs: dict | None = None,
) -> dict[str, Any]:
    """Lists ``colorization/{train_cor,validation_cor}`` frames into ``<output_dir>/datalist.json``.

    Returns:
        ``{"dataset_dir", "layout", "seed", "synthetic", "train", "val"}``.
    """
    return _endo_datalists(
        dataset_dir,
        output_dir,
        seed,
        default_dataset_dir,
        synthetic_kwargs,
        read=lambda root: _read_colorization(root, Path(output_dir) / "converted"),
        reuse=False,
        summary="colorization frames {root}/colorization: {n_train} train / {n_val} val",
    )


def list_frames(input_dir: str | os.PathLike) -> list[dict[str, str]]:
    """Lists the frames under ``input_dir`` (recursively) as ``[{"image": path}]`` for inference.

    Label images are left out: files in ``labels``, ``ground_truth`` or ``*_masks`` folders, and ``*_label.*`` files.

    Raises:
        FileNotFoundError: if ``input_dir`` is missing or holds no frame.
    """
    root = Path(input_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"input_dir {root} does not exist or is not a folder")

    def is_label(p: Path) -> bool:
        folders = p.relative_to(root).parts[:-1]
        return p.stem.endswith("_label") or any(
            f in ("labels", "ground_truth") or f.endswith("_masks") or f.endswith("_labels") for f in folders
        )

    found = sorted(p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(_EXTS) and not is_label(p))
    if not found:
        raise FileNotFoundError(f"input_dir {root} holds no {'/'.join(_EXTS)} frames")
    return [{"image": str(p.resolve())} for p in found]
