"""PatchCamelyon's official HDF5 files, read lazily one patch at a time (h5py: ``pip install 'medkit[hdf5]'``).

Layout (what ``medkit data fetch pcam`` writes), one folder holding the six files::

    camelyonpatch_level_2_split_{train,valid,test}_x.h5   dataset "x": (N, 96, 96, 3) uint8 RGB patches
    camelyonpatch_level_2_split_{train,valid,test}_y.h5   dataset "y": (N, 1, 1, 1) uint8 labels, 1 = tumour

The official train / valid / test splits are kept. A datalist item names its patch as ``"<x file>::<index>"``;
:class:`PCamPatchReader` (MONAI's ``PILReader`` plus those names) reads one patch per call from a file handle kept
open per process, so the 7 GB training file is never loaded whole, and hands it on as a PIL image: HDF5 and
``T_``/``N_`` JPEG patches go through exactly the same conversion, orientation and metadata.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from monai.data import PILReader
from monai.utils import ensure_tuple

__all__ = ["PCAM_H5_SPLITS", "PCamPatchReader", "pcam_h5_files", "read_pcam_h5", "read_pcam_patch"]

logger = logging.getLogger(__name__)

PCAM_H5_SPLITS = {"train": "train", "val": "valid", "test": "test"}  # datalist part -> PCam's split name
_REF = re.compile(r"^(?P<path>.+\.h5)::(?P<index>\d+)$")
_OPEN: dict[tuple[int, str], Any] = {}  # (pid, path) -> h5py.File: DataLoader workers open their own handles


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as exc:
        raise ImportError("reading PCam's HDF5 files needs h5py: pip install 'medkit[hdf5]'") from exc
    return h5py


def pcam_h5_files(root: str | os.PathLike, split: str) -> tuple[Path, Path]:
    """The ``(x, y)`` file paths of one PCam split (``train``, ``valid`` or ``test``) under ``root``."""
    stem = Path(root) / f"camelyonpatch_level_2_split_{split}"
    return stem.with_name(f"{stem.name}_x.h5"), stem.with_name(f"{stem.name}_y.h5")


def _labels(y_path: Path, h5py: Any) -> np.ndarray:
    with h5py.File(y_path, "r") as f:
        if "y" not in f:
            raise ValueError(f"{y_path}: no dataset 'y' (it holds {sorted(f)}); is this a PCam label file?")
        y = np.asarray(f["y"][()])
    if y.ndim == 0 or y.size != len(y):
        raise ValueError(f"{y_path}: labels have shape {y.shape}; expected (N, 1, 1, 1) or (N,)")
    y = y.reshape(-1)
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError(f"{y_path}: labels {np.unique(y)[:5].tolist()} are not 0 (normal) and 1 (tumour)")
    return y.astype(np.int64)


def _check_patches(x_path: Path, h5py: Any, count: int) -> None:
    with h5py.File(x_path, "r") as f:
        if "x" not in f:
            raise ValueError(f"{x_path}: no dataset 'x' (it holds {sorted(f)}); is this a PCam image file?")
        x = f["x"]
        if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != np.uint8:
            raise ValueError(f"{x_path}: patches are {x.dtype} {x.shape}; expected (N, H, W, 3) uint8 RGB")
        if len(x) != count:
            raise ValueError(f"{x_path}: {len(x)} patches but {count} labels in its _y.h5 file")


def read_pcam_h5(dataset_dir: str | os.PathLike) -> dict[str, list[dict[str, Any]]]:
    """Reads the labels and checks the patch arrays of PCam's six HDF5 files (no patch is read).

    Returns:
        ``{"train", "val", "test"}`` item lists ``{"image": "<absolute x file>::<index>", "label": 0 or 1,
        "id": "<split>_<index>"}`` in file order; ``val`` is PCam's ``valid`` split.

    Raises:
        FileNotFoundError: naming the missing files and the command that fetches them.
        ValueError: naming the file, for a missing ``x``/``y`` dataset, patches that are not ``(N, H, W, 3)`` uint8,
            labels other than 0/1, or counts that differ.
    """
    h5py, root = _h5py(), Path(dataset_dir)
    files = {part: pcam_h5_files(root, split) for part, split in PCAM_H5_SPLITS.items()}
    missing = [path.name for pair in files.values() for path in pair if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{root} lacks the PCam HDF5 files {missing}; run `medkit data fetch pcam` (or download them from "
            "https://zenodo.org/records/2546921 and gunzip them there)"
        )
    parts = {}
    for part, (x_path, y_path) in files.items():
        labels = _labels(y_path, h5py)
        _check_patches(x_path, h5py, len(labels))
        x_name, split = str(x_path.resolve()), PCAM_H5_SPLITS[part]
        parts[part] = [
            {"image": f"{x_name}::{i}", "label": int(label), "id": f"{split}_{i:06d}"} for i, label in enumerate(labels)
        ]
    return parts


def read_pcam_patch(name: str) -> np.ndarray:
    """One ``(H, W, 3)`` uint8 patch named ``"<x file>::<index>"``, read from a handle kept open in this process.

    Raises:
        ValueError: for a name not of that form, or an index past the end of the file.
    """
    match = _REF.match(str(name))
    if match is None:
        raise ValueError(f"{name!r} is not a PCam HDF5 patch name '<file>.h5::<index>'")
    key = (os.getpid(), match["path"])
    if key not in _OPEN:
        _OPEN[key] = _h5py().File(match["path"], "r")
    x, index = _OPEN[key]["x"], int(match["index"])
    if index >= len(x):
        raise ValueError(f"{name}: index {index} is past the last of {len(x)} patches in {match['path']}")
    return np.asarray(x[index])


class PCamPatchReader(PILReader):
    """MONAI's ``PILReader`` that also reads PCam HDF5 patches named ``"<x file>::<index>"``.

    Such a patch is read with :func:`read_pcam_patch`, made a PIL image and passed through ``converter``; from there on
    it is handled exactly as ``PILReader`` handles an image file. Any other name goes to ``PILReader`` unchanged.
    Arguments are ``PILReader``'s.
    """

    def verify_suffix(self, filename: Any) -> bool:
        names = ensure_tuple(filename)
        return all(_REF.match(str(name)) for name in names) or super().verify_suffix(filename)

    def read(self, data: Any, **kwargs: Any) -> Any:
        names = ensure_tuple(data)
        if not all(_REF.match(str(name)) for name in names):
            return super().read(data, **kwargs)
        from PIL import Image

        images = []
        for name in names:
            image = Image.fromarray(read_pcam_patch(str(name)))
            images.append(self.converter(image) if callable(self.converter) else image)
        return images if len(images) > 1 else images[0]
