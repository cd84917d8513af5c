"""COCO single-instance masks: one object per image, rasterised by pycocotools, in the flat image/mask layout.

:func:`write_coco_masks` turns a COCO instances file (``annotations/instances_<subset>.json`` plus the image folder)
into the flat layout :func:`medkit.data.nuclei.read_image_mask_pairs` reads::

    out_dir/images/<stem>.png    RGB, size x size (bilinear, antialiased when shrinking)
    out_dir/masks/<stem>.png     8-bit, 255 = the chosen instance, 0 = everything else (nearest neighbour)
    out_dir/manifest.csv         one row per pair: file_name, subset, image_id, source, category, category_id,
                                 annotation_id, area

Selection rule: among an image's non-crowd annotations of the requested categories with ``area >= min_area``
(COCO's ``area`` field), the one with the largest area wins, ties going to the lowest annotation id. Images without
such an annotation are skipped and counted, and so are images whose chosen mask has no pixel left after resizing.
Several calls (one per subset, e.g. ``train2017`` then ``val2017``) can write into one folder: the manifest keeps the
other subsets' rows and a rerun replaces its own subset's pairs. :func:`prepare_coco_masks_datalists` then trains
on one subset and splits the other(s) into validation and test halves.

pycocotools comes from medkit's ``coco`` extra (``pip install -e '.[coco]'``).
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import io
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from medkit.data.checks import check_file, read_json
from medkit.data.datalist import prepare_datalists, split_items
from medkit.data.nuclei import check_nuclei_items, read_image_mask_pairs
from medkit.utils import atomic_path

__all__ = [
    "MANIFEST_FIELDS",
    "CocoMaskSummary",
    "category_ids",
    "choose_instance",
    "instance_mask",
    "load_coco",
    "prepare_coco_masks_datalists",
    "read_coco_manifest",
    "write_coco_masks",
]

logger = logging.getLogger(__name__)

MANIFEST = "manifest.csv"
MANIFEST_FIELDS = ("file_name", "subset", "image_id", "source", "category", "category_id", "annotation_id", "area")


@dataclass
class CocoMaskSummary:
    """What :func:`write_coco_masks` wrote: pairs per category, skipped images by reason, and where."""

    out_dir: Path
    subset: str
    per_category: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def written(self) -> int:
        return sum(self.per_category.values())


def load_coco(annotation_file: str | os.PathLike) -> Any:
    """Reads a COCO instances JSON file into a ``pycocotools.coco.COCO`` index, without pycocotools' prints.

    Raises:
        ImportError: if pycocotools is missing (the message names the extra to install).
        ValueError: naming the file, if it is not JSON or lacks the ``images``/``annotations``/``categories`` lists.
    """
    try:
        from pycocotools.coco import COCO
    except ImportError as exc:
        raise ImportError("pycocotools is missing: pip install -e '.[coco]' (medkit's coco extra)") from exc
    data = read_json(annotation_file)
    missing = [k for k in ("images", "annotations", "categories") if not isinstance(data, dict) or k not in data]
    if missing:
        raise ValueError(f"{annotation_file}: not a COCO instances file (no {', '.join(missing)} list)")
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # createIndex prints progress
        coco.createIndex()
    return coco


def category_ids(coco: Any, names: list[str], annotation_file: str | os.PathLike) -> dict[int, str]:
    """Maps the requested category names to their COCO ids.

    Raises:
        ValueError: one line naming the annotation file, the unknown name and the closest valid names.
    """
    by_name = {c["name"]: c["id"] for c in coco.loadCats(coco.getCatIds())}
    for name in names:
        if name not in by_name:
            close = difflib.get_close_matches(name, list(by_name), n=5, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}?" if close else f"valid names: {', '.join(sorted(by_name))}"
            raise ValueError(f"{annotation_file}: no category {name!r}; {hint}")
    return {by_name[name]: name for name in names}


def choose_instance(coco: Any, image_id: int, cat_ids: list[int], min_area: float = 0.0) -> dict[str, Any] | None:
    """The largest non-crowd annotation of ``cat_ids`` in the image (by COCO ``area``, ties to the lowest id).

    Args:
        coco: the ``COCO`` index.
        image_id: the image.
        cat_ids: the categories to choose from.
        min_area: annotations with a smaller ``area`` (pixels of the original image) are not candidates.

    Returns:
        The annotation, or ``None`` when the image has no candidate.
    """
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id], catIds=cat_ids, iscrowd=False))
    anns = [a for a in anns if a["area"] >= min_area]
    return min(anns, key=lambda a: (-a["area"], a["id"])) if anns else None


def instance_mask(coco: Any, ann: dict[str, Any], size: int) -> np.ndarray:
    """``annToMask`` of ``ann`` resized to ``size`` x ``size`` by nearest neighbour, as uint8 0/255."""
    mask = Image.fromarray(coco.annToMask(ann) * np.uint8(255))
    return np.asarray(mask.resize((size, size), Image.Resampling.NEAREST))


def _resized_image(path: Path, info: dict[str, Any], size: int) -> Image.Image:
    check_file(path)
    with Image.open(path) as im:
        if im.size != (info["width"], info["height"]):
            raise ValueError(
                f"{path}: image is {im.size[0]}x{im.size[1]} but the annotations say "
                f"{info['width']}x{info['height']}; use the images of this annotation file"
            )
        return im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)


def read_coco_manifest(dataset_dir: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of ``<dataset_dir>/manifest.csv`` ([] when there is none).

    Raises:
        ValueError: naming the file, if its header is not :data:`MANIFEST_FIELDS`.
    """
    path = Path(dataset_dir) / MANIFEST
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != MANIFEST_FIELDS:
            raise ValueError(f"{path}: expected the columns {','.join(MANIFEST_FIELDS)}, got {reader.fieldnames}")
        return list(reader)


def _write_manifest(out_dir: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_path(out_dir / MANIFEST) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda r: r["file_name"]))


def _save_png(array_or_image: np.ndarray | Image.Image, path: Path) -> None:
    image = Image.fromarray(array_or_image) if isinstance(array_or_image, np.ndarray) else array_or_image
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def _keep_other_subsets(out_dir: Path, subset: str, new_names: set[str]) -> list[dict[str, str]]:
    """The manifest rows of other subsets; this subset's old pairs that the new run does not write are removed."""
    old = read_coco_manifest(out_dir)
    kept = [r for r in old if r["subset"] != subset]
    clash = sorted(new_names & {r["file_name"] for r in kept})
    if clash:
        raise ValueError(f"{out_dir / MANIFEST}: {clash[0]} already belongs to another subset; use another --out")
    for row in old:
        if row["subset"] == subset and row["file_name"] not in new_names:
            for folder in ("images", "masks"):
                (out_dir / folder / row["file_name"]).unlink(missing_ok=True)
    return kept


def write_coco_masks(
    annotation_file: str | os.PathLike,
    image_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    categories: list[str],
    size: int = 256,
    min_area: float = 0.0,
    subset: str | None = None,
) -> CocoMaskSummary:
    """Writes one image/mask pair per image that has an instance of ``categories`` (rule: the module docstring).

    Args:
        annotation_file: a COCO instances JSON file (polygons and RLE are both rasterised by ``annToMask``).
        image_dir: the folder holding the images the file names.
        out_dir: receives ``images/``, ``masks/`` and ``manifest.csv``.
        categories: COCO category names, e.g. ``["cake", "dog", "motorcycle"]``.
        size: side of the written square images and masks.
        min_area: smallest COCO ``area`` an instance may have to be chosen.
        subset: the manifest's subset name (default: the name of ``image_dir``, e.g. ``train2017``).

    Returns:
        The counts of written pairs per category and of skipped images per reason.

    Raises:
        ValueError: for an unknown category (one line with the close names), an image whose size differs from its
            annotation, or a file name another subset in ``out_dir`` already has.
    """
    if size < 1 or not categories:
        raise ValueError(f"need size >= 1 and at least one category, got size={size}, categories={categories}")
    coco = load_coco(annotation_file)
    cats = category_ids(coco, categories, annotation_file)
    out, subset = Path(out_dir), subset or Path(image_dir).name
    summary = CocoMaskSummary(out, subset, {name: 0 for name in categories})
    chosen, skipped = {}, Counter()
    for image_id in sorted(coco.getImgIds()):
        ann = choose_instance(coco, image_id, list(cats), min_area)
        mask = None if ann is None else instance_mask(coco, ann, size)
        if mask is None or not mask.any():
            skipped["no matching instance" if ann is None else "empty after resizing"] += 1
        else:
            chosen[f"{Path(coco.imgs[image_id]['file_name']).stem}.png"] = (ann, mask)
    summary.skipped = dict(skipped)
    rows = _keep_other_subsets(out, subset, set(chosen))
    for name, (ann, mask) in chosen.items():
        info = coco.imgs[ann["image_id"]]
        _save_png(_resized_image(Path(image_dir) / info["file_name"], info, size), out / "images" / name)
        _save_png(mask, out / "masks" / name)
        category = cats[ann["category_id"]]
        summary.per_category[category] += 1
        values = (name, subset, info["id"], info["file_name"], category, ann["category_id"], ann["id"], ann["area"])
        rows.append(dict(zip(MANIFEST_FIELDS, values)))
    _write_manifest(out, rows)
    logger.info(
        "%s: %d pairs written to %s (%s); skipped: %s",
        annotation_file,
        summary.written,
        out,
        ", ".join(f"{k} {v}" for k, v in summary.per_category.items()),
        ", ".join(f"{v} {k}" for k, v in summary.skipped.items()) or "none",
    )
    return summary


def prepare_coco_masks_datalists(
    dataset_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    seed: int = 0,
    default_dataset_dir: str | os.PathLike | None = None,
    train_subset: str = "train2017",
) -> dict[str, Any]:
    """Reads and checks a :func:`write_coco_masks` folder and splits it by its manifest, into ``datalist.json``.

    Pairs of ``train_subset`` train; the other pairs are cut into validation and test halves with ``seed``. When one
    side would be empty (one subset only, or no manifest), the items get the default 70/10/20 split, logged.

    Returns:
        ``{"dataset_dir", "classes": ["background", "foreground"], "categories", "seed", "synthetic", "train",
        "val", "test"}``.
    """
    subsets: dict[str, str] = {}

    def read(root: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        items = read_image_mask_pairs(root)
        check_nuclei_items(items, converted_dir=Path(output_dir) / "converted")
        rows = read_coco_manifest(root)
        subsets.update({Path(r["file_name"]).stem: r["subset"] for r in rows})
        return items, {"classes": ["background", "foreground"], "categories": sorted({r["category"] for r in rows})}

    def split(items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        train = [i for i in items if subsets.get(i["id"]) == train_subset]
        rest = [i for i in items if subsets.get(i["id"]) != train_subset]
        if not train or len(rest) < 2:
            n_train, n_rest = len(train), len(rest)
            why = f"{n_train} {train_subset} pairs and {n_rest} others (need 1+ and 2+)"
            logger.warning("%s: %s; the default 70/10/20 split instead", dataset_dir, why)
            return split_items(items, seed=seed)
        return {"train": train, **split_items(rest, (0.5, 0.5), seed=seed, names=("val", "test"))}

    return prepare_datalists(
        dataset_dir,
        output_dir,
        read=read,
        seed=seed,
        split=split,
        default_dataset_dir=default_dataset_dir,
        missing_hint="Write it: medkit data coco-masks --annotations FILE --images DIR --categories A,B --out DIR",
        summary="COCO masks {root} ({categories}): {n_train} train / {n_val} val / {n_test} test pairs; split {path}",
        log=logger,
    )
