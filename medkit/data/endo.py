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
    * **EndoVis 2017 instrument types**: ``instrument_dataset_<n>/left_frames/frame<k>.png`` with either the
      challenge's ``ground_truth/<Instrument_Name>_labels/frame<k>.png`` masks (any non-zero pixel belongs to the
      instrument type named by the folder) or prepared ``instruments_masks/frame<k>.png`` images whose grey value is
      32 x type index. Sequences are split whole into train/validation/test.

Items are ``{"id", "image", "label"}`` with absolute paths; an EndoVis ``label`` built from per-instrument masks is a
list of ``{"path", "index"}`` entries, composed by :class:`medkit.transforms.LoadGreyLabel`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from medkit.data.datalist import reusable_datalist, save_datalist, split_items
from medkit.utils import save_json

__all__ = [
    "ENDOVIS2017_TYPES",
    "ClassMapping",
    "check_label_values",
    "endovis2017_mapping",
    "list_frames",
    "prepare_colorization_datalists",
    "prepare_endo_datalists",
    "read_colorization_split",
    "read_endovis2017",
    "read_mapping",
    "read_segmentation_split",
]

logger = logging.getLogger(__name__)

SYNTHETIC_MARKER = "SYNTHETIC.md"
_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
_SPLITS = {"train": "train", "val": "validation", "test": "test"}
# Instrument types of the EndoVis 2017 robotic instrument segmentation challenge, by folder-name keyword.
ENDOVIS2017_TYPES = (
    ("Bipolar_Forceps", "bipolar_forceps"),
    ("Prograsp_Forceps", "prograsp_forceps"),
    ("Large_Needle_Driver", "large_needle_driver"),
    ("Vessel_Sealer", "vessel_sealer"),
    ("Grasping_Retractor", "grasping_retractor"),
    ("Monopolar_Curved_Scissors", "monopolar_curved_scissors"),
    ("Other", "other"),
)
_ENDOVIS_GREY_STEP = 32


@dataclass(frozen=True)
class ClassMapping:
    """Grey value -> class index table and class names (index order).

    Attributes:
        grey_to_index: every grey value that may appear in a label image and its class index.
        names: class names, ``names[i]`` for index ``i``; indices run from 0 to ``len(names) - 1``.
        source: where the mapping came from (for error messages).
    """

    grey_to_index: dict[int, int]
    names: tuple[str, ...]
    source: str = "mapping.json"

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def lut(self) -> np.ndarray:
        """A 256-entry lookup table grey -> index, -1 for grey values the mapping does not know."""
        table = np.full(256, -1, dtype=np.int64)
        for grey, index in self.grey_to_index.items():
            table[grey] = index
        return table

    def index_to_grey(self) -> np.ndarray:
        """The grey value written for each class index (the smallest grey value of that class)."""
        out = np.zeros(self.num_classes, dtype=np.uint8)
        for grey, index in sorted(self.grey_to_index.items(), reverse=True):
            out[index] = grey
        return out

    def to_json(self) -> dict[str, dict[str, Any]]:
        return {str(g): {"index": i, "name": self.names[i]} for g, i in sorted(self.grey_to_index.items())}


def _parse_mapping(raw: Any, source: str) -> ClassMapping:
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"{source}: expected a non-empty JSON object grey value -> class, got {type(raw).__name__}")
    grey_to_index, names = {}, {}
    for key, value in raw.items():
        try:
            grey = int(key)
        except ValueError:
            raise ValueError(f"{source}: key {key!r} is not a grey value (an integer 0-255)") from None
        if not 0 <= grey <= 255:
            raise ValueError(f"{source}: grey value {grey} is outside 0-255")
        index = value.get("index") if isinstance(value, dict) else value
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"{source}: grey value {grey} maps to {value!r}; expected a class index >= 0")
        name = value.get("name") if isinstance(value, dict) else None
        if name is not None and names.setdefault(index, str(name)) != str(name):
            raise ValueError(f"{source}: class {index} is named both {names[index]!r} and {name!r}")
        grey_to_index[grey] = index
    indices = sorted(set(grey_to_index.values()))
    if indices != list(range(len(indices))):
        raise ValueError(f"{source}: class indices must run from 0 without gaps, got {indices}")
    return ClassMapping(grey_to_index, tuple(names.get(i, f"class_{i}") for i in indices), source)


def read_mapping(path: str | os.PathLike | dict) -> ClassMapping:
    """Reads a ``mapping.json`` file (or an already parsed dict) into a :class:`ClassMapping`.

    Raises:
        ValueError: naming the file, for malformed entries, duplicate names or gaps in the class indices.
    """
    if isinstance(path, dict):
        return _parse_mapping(path, "mapping")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"class mapping {path} does not exist")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    return _parse_mapping(raw, str(path))


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(_EXTS))


def read_segmentation_split(split_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Reads one split folder: ``images/`` + ``labels/`` (paired by stem) or flat ``<id>.png`` + ``<id>_label.png``.

    Raises:
        ValueError: if the folder holds no frames, or a frame has no label (the message names the frame).
    """
    root = Path(split_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"split folder {root} does not exist")
    if (root / "images").is_dir():
        labels = {p.stem: p for p in _images(root / "labels")} if (root / "labels").is_dir() else {}
        pairs = [(p, labels.get(p.stem), root / "labels" / f"{p.stem}.png") for p in _images(root / "images")]
    else:
        files = _images(root)
        labels = {p.stem[: -len("_label")]: p for p in files if p.stem.endswith("_label")}
        pairs = [(p, labels.get(p.stem), root / f"{p.stem}_label.png") for p in files if not p.stem.endswith("_label")]
    items = []
    for image, label, expected in pairs:
        if label is None:
            raise ValueError(f"{image}: frame has no label image (expected {expected})")
        items.append({"id": image.stem, "image": str(image.resolve()), "label": str(label.resolve())})
    if not items:
        raise ValueError(f"{root}: no frames found (expected images/ + labels/, or <id>.png + <id>_label.png)")
    return items


def _label_files(item: dict[str, Any]) -> list[str]:
    label = item["label"]
    return [label] if isinstance(label, str) else [entry["path"] for entry in label]


def check_label_values(items: list[dict[str, Any]], mapping: ClassMapping) -> None:
    """Checks that every grey value in every label image is in ``mapping`` and that labels match their frames' size.

    Raises:
        ValueError: naming the label file and the unknown grey value (or the size mismatch).
    """
    known = mapping.lut() >= 0
    for item in items:
        if not isinstance(item["label"], str):
            continue  # EndoVis per-instrument masks: any non-zero pixel is the folder's class
        path = item["label"]
        try:
            with Image.open(path) as im:
                arr = np.asarray(im)
        except Exception as e:
            raise ValueError(f"{path}: cannot read label image ({type(e).__name__}: {e})") from None
        if arr.ndim == 3:
            if not (arr[..., :1] == arr[..., 1:3]).all():
                raise ValueError(f"{path}: label image has colour pixels; expected grey levels")
            arr = arr[..., 0]
        if arr.dtype != np.uint8:
            raise ValueError(f"{path}: label image must be 8-bit grey levels, got {arr.dtype}")
        present = np.flatnonzero(np.bincount(arr.ravel(), minlength=256))
        unknown = present[~known[present]]
        if unknown.size:
            raise ValueError(
                f"{path}: grey value {int(unknown[0])} is not in {mapping.source} "
                f"(unknown values {unknown.tolist()}; known {sorted(mapping.grey_to_index)})"
            )
        with Image.open(item["image"]) as im:
            if im.size[::-1] != arr.shape:
                raise ValueError(f"{path}: label size {arr.shape} differs from frame {item['image']} {im.size[::-1]}")


def _find_mapping(root: Path) -> Path:
    for candidate in (root / "segmentation" / "mapping.json", root / "mapping.json"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{root}: no mapping.json in {root / 'segmentation'} or {root}")


def _endovis_type(folder_name: str) -> int:
    for index, (keyword, _) in enumerate(ENDOVIS2017_TYPES, start=1):
        if keyword.lower() in folder_name.lower():
            return index
    raise ValueError(f"{folder_name}: unknown EndoVis 2017 instrument folder (expected one of the known types)")


def endovis2017_mapping() -> ClassMapping:
    """The instrument-type classes of EndoVis 2017, with grey value ``32 x index`` as in prepared type masks."""
    names = ("background",) + tuple(name for _, name in ENDOVIS2017_TYPES)
    return ClassMapping({_ENDOVIS_GREY_STEP * i: i for i in range(len(names))}, names, "EndoVis 2017 instrument types")


def read_endovis2017(dataset_dir: str | os.PathLike) -> dict[str, list[dict[str, Any]]]:
    """Reads ``instrument_dataset_<n>`` folders into ``{sequence name: items}`` (see the module docstring).

    Raises:
        ValueError: if no sequence is found, or a frame has no mask (the message names the frame).
    """
    root = Path(dataset_dir)
    sequences = sorted(d for d in root.iterdir() if d.is_dir() and re.match(r"instrument_dataset_?\d+$", d.name))
    out = {}
    for seq in sequences:
        frames_dir = seq / "left_frames" if (seq / "left_frames").is_dir() else seq / "images"
        items = []
        for frame in _images(frames_dir):
            prepared = seq / "instruments_masks" / f"{frame.stem}.png"
            if prepared.is_file():
                label: Any = str(prepared.resolve())
            else:
                gt = sorted(d for d in (seq / "ground_truth").glob("*_labels") if d.is_dir())
                label = [
                    {"path": str((d / frame.name).resolve()), "index": _endovis_type(d.name)}
                    for d in gt
                    if (d / frame.name).is_file()
                ]
                if not label:
                    raise ValueError(
                        f"{frame}: no instruments_masks/{frame.stem}.png and no ground_truth/*_labels mask"
                    )
            items.append({"id": f"{seq.name}/{frame.stem}", "image": str(frame.resolve()), "label": label})
        if items:
            out[seq.name] = items
    if not out:
        raise ValueError(f"{root}: no instrument_dataset_<n>/left_frames found")
    return out


def _split_endovis(sequences: dict[str, list[dict[str, Any]]], seed: int) -> dict[str, list[dict[str, Any]]]:
    names = sorted(sequences)
    if len(names) >= 3:  # frames of one video are correlated: keep each sequence in one split
        parts = split_items(names, (0.6, 0.2, 0.2), seed=seed)
        return {k: [item for name in v for item in sequences[name]] for k, v in parts.items()}
    logger.warning("only %d EndoVis sequence(s): splitting frames, so splits share videos", len(names))
    return split_items([item for name in names for item in sequences[name]], (0.7, 0.1, 0.2), seed=seed)


def _generate_default(root: Path, default_dataset_dir: Any, synthetic_kwargs: dict | None) -> None:
    if default_dataset_dir is None or root.resolve() != Path(default_dataset_dir).resolve():
        raise FileNotFoundError(
            f"dataset_dir {root} does not exist. Point --dataset_dir at a folder with segmentation/ and colorization/ "
            "(or EndoVis 2017 instrument_dataset_<n>/ folders)"
        )
    from medkit.data.synthetic_endo import generate_endo_dataset

    generate_endo_dataset(root, **(synthetic_kwargs or {}))


def _warn_if_synthetic(root: Path) -> bool:
    synthetic = (root / SYNTHETIC_MARKER).is_file()
    if synthetic:
        logger.warning(
            "Training on SYNTHETIC endoscopy frames generated by medkit in %s, not on real data. "
            "Pass --dataset_dir <your data> for real work.",
            root,
        )
    return synthetic


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
    root = Path(dataset_dir)
    if not root.exists():
        _generate_default(root, default_dataset_dir, synthetic_kwargs)
    synthetic = _warn_if_synthetic(root)
    path = Path(output_dir) / "datalist.json"
    saved = reusable_datalist(path, root, seed)
    if saved is None:
        if (root / "segmentation").is_dir() or (root / "train").is_dir():
            seg = root / "segmentation" if (root / "segmentation").is_dir() else root
            mapping = read_mapping(_find_mapping(root))
            parts = {key: read_segmentation_split(seg / folder) for key, folder in _SPLITS.items()}
            layout = "course"
        else:
            mapping, parts, layout = endovis2017_mapping(), _split_endovis(read_endovis2017(root), seed), "endovis2017"
        for items in parts.values():
            check_label_values(items, mapping)
        saved = {"dataset_dir": str(root.resolve()), "layout": layout, "seed": seed, "synthetic": synthetic}
        saved.update({"mapping": mapping.to_json(), **parts})
        save_datalist(saved, path)
        logger.info(
            "%s dataset %s: %d train / %d val / %d test frames, classes %s; split saved to %s",
            layout,
            root,
            *(len(saved[k]) for k in ("train", "val", "test")),
            list(mapping.names),
            path,
        )
    save_json(saved["mapping"], Path(output_dir) / "mapping.json")
    return saved


def read_colorization_split(split_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Lists the RGB frames of a colorization split; ``grey`` is set where a sibling ``*_grey`` file exists."""
    root = Path(split_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"colorization folder {root} does not exist")
    base = root.name.removesuffix("_cor")
    grey_dirs = [root.parent / f"{base}_{suffix}" for suffix in ("grey", "gray")]
    items = []
    for frame in _images(root):
        item = {"id": frame.stem, "image": str(frame.resolve())}
        grey = next((d / frame.name for d in grey_dirs if (d / frame.name).is_file()), None)
        if grey is not None:
            item["grey"] = str(grey.resolve())
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
    root = Path(dataset_dir)
    if not root.exists():
        _generate_default(root, default_dataset_dir, synthetic_kwargs)
    synthetic = _warn_if_synthetic(root)
    cor = root / "colorization"
    datalist = {"dataset_dir": str(root.resolve()), "layout": "colorization", "seed": seed, "synthetic": synthetic}
    datalist.update(
        train=read_colorization_split(cor / "train_cor"), val=read_colorization_split(cor / "validation_cor")
    )
    save_datalist(datalist, Path(output_dir) / "datalist.json")
    logger.info("colorization frames %s: %d train / %d val", cor, len(datalist["train"]), len(datalist["val"]))
    return datalist


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
