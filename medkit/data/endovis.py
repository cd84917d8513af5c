"""Reader for the EndoVis 2017 robotic instrument segmentation layout, labelled by instrument type.

``instrument_dataset_<n>/left_frames/frame<k>.png`` with either the challenge's
``ground_truth/<Instrument_Name>_labels/frame<k>.png`` masks (any non-zero pixel belongs to the instrument type named
by the folder) or prepared ``instruments_masks/frame<k>.png`` images whose grey value is 32 x type index. Items built
from per-instrument masks carry ``label`` as a list of ``{"path", "index"}`` entries, composed by
:class:`medkit.transforms.LoadGreyLabel`.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from medkit.data.checks import index_by_stem, inside
from medkit.data.class_mapping import ClassMapping
from medkit.data.datalist import split_items

__all__ = ["ENDOVIS2017_TYPES", "endovis2017_mapping", "read_endovis2017", "split_endovis"]

logger = logging.getLogger(__name__)

_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")  # medkit.data.endo lists its frames with _images too
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


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(_EXTS))


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

    Masks without a frame are left out with a logged warning.

    Raises:
        ValueError: if no sequence is found, a frame has no mask (the message names the frame), two frames share a
            stem, or a file is a symlink that leads out of ``dataset_dir``.
    """
    root = Path(dataset_dir)
    sequences = sorted(d for d in root.iterdir() if d.is_dir() and re.match(r"instrument_dataset_?\d+$", d.name))
    out = {}
    for seq in sequences:
        frames_dir = seq / "left_frames" if (seq / "left_frames").is_dir() else seq / "images"
        items = [_frame_item(seq, frame, root) for frame in index_by_stem(_images(frames_dir)).values()]
        _warn_unpaired(seq, items)
        if items:
            out[seq.name] = items
    if not out:
        raise ValueError(f"{root}: no instrument_dataset_<n>/left_frames found")
    return out


def _frame_item(seq: Path, frame: Path, root: Path) -> dict[str, Any]:
    prepared = seq / "instruments_masks" / f"{frame.stem}.png"
    if prepared.is_file():
        label: Any = inside(prepared, root)
    else:
        gt = sorted(d for d in (seq / "ground_truth").glob("*_labels") if d.is_dir())
        label = [
            {"path": inside(d / frame.name, root), "index": _endovis_type(d.name)}
            for d in gt
            if (d / frame.name).is_file()
        ]
        if not label:
            raise ValueError(f"{frame}: no instruments_masks/{frame.stem}.png and no ground_truth/*_labels mask")
    return {"id": f"{seq.name}/{frame.stem}", "image": inside(frame, root), "label": label}


def _warn_unpaired(seq: Path, items: list[dict[str, Any]]) -> None:
    """Logs mask files that no frame claims (left out)."""
    used = {entry["path"] if isinstance(entry, dict) else entry for item in items for entry in _entries(item["label"])}
    folders = [seq / "instruments_masks", *(seq / "ground_truth").glob("*_labels")]
    unpaired = sorted(str(p) for d in folders if d.is_dir() for p in _images(d) if str(p.resolve()) not in used)
    if unpaired:
        names = ", ".join(unpaired[:3])
        logger.warning("%s: %d mask file(s) have no frame and are left out: %s", seq, len(unpaired), names)


def _entries(label: Any) -> list[Any]:
    return [label] if isinstance(label, str) else list(label)


def split_endovis(sequences: dict[str, list[dict[str, Any]]], seed: int) -> dict[str, list[dict[str, Any]]]:
    """Splits sequences into train/val/test: whole sequences (60/20/20) when there are at least three."""
    names = sorted(sequences)
    if len(names) >= 3:  # frames of one video are correlated: keep each sequence in one split
        parts = split_items(names, (0.6, 0.2, 0.2), seed=seed)
        return {k: [item for name in v for item in sequences[name]] for k, v in parts.items()}
    logger.warning("only %d EndoVis sequence(s): splitting frames, so splits share videos", len(names))
    return split_items([item for name in names for item in sequences[name]], (0.7, 0.1, 0.2), seed=seed)
