"""Histology patch folders for tumour vs. normal classification (PatchCamelyon-style patches).

Layout: one folder of patches named ``T_<n>.<ext>`` (tumour, label 1) or ``N_<n>.<ext>`` (normal, label 0), where
``<ext>`` is jpg, jpeg, png or tif(f); the label is read from the first letter. Other image files in the folder are an
error, so a mislabelled file never slips into training. A folder holding PatchCamelyon's official HDF5 files
(``camelyonpatch_level_2_split_*_{x,y}.h5``) is read with :mod:`medkit.data.pcam_h5` instead, keeping its own
train / valid / test split.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from medkit.data.checks import ANY_8BIT, check_image, inside
from medkit.data.datalist import prepare_datalists, split_items

__all__ = [
    "PATCH_EXTENSIONS",
    "PCAM_CLASSES",
    "check_pcam_items",
    "list_patches",
    "prepare_pcam_datalists",
    "read_pcam_folder",
]

logger = logging.getLogger(__name__)

PATCH_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
PCAM_CLASSES = ("normal", "tumour")  # index = label
_NAME = re.compile(r"^(?P<letter>[TN])_(?P<n>[^.]+)$")
_LABELS = {"N": 0, "T": 1}
_PARTS = ("train", "val", "test")


def _patch_files(root: Path) -> list[Path]:
    if not root.is_dir():
        raise FileNotFoundError(f"patch folder {root} does not exist or is not a folder")
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in PATCH_EXTENSIONS)
    if not files:
        raise FileNotFoundError(f"patch folder {root} holds no {'/'.join(PATCH_EXTENSIONS)} files")
    return files


def read_pcam_folder(dataset_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Reads a folder of ``T_<n>``/``N_<n>`` patches.

    Returns:
        items ``{"image": absolute path, "label": 0 or 1, "id": file name}`` sorted by file name.

    Raises:
        FileNotFoundError: if the folder is missing or holds no patch images.
        ValueError: naming the first image whose name does not start with ``T_`` or ``N_``, or if one class is absent.
    """
    root = Path(dataset_dir)
    items = []
    for path in _patch_files(root):
        match = _NAME.match(path.stem)
        if match is None:
            raise ValueError(
                f"{path}: patch names must be T_<n>{path.suffix} (tumour) or N_<n>{path.suffix} (normal); "
                "rename or move this file"
            )
        items.append({"image": inside(path, root), "label": _LABELS[match["letter"]], "id": path.name})
    counts = [sum(item["label"] == c for item in items) for c in (0, 1)]
    if min(counts) == 0:
        raise ValueError(f"{root}: needs both classes, found {counts[0]} normal (N_*) and {counts[1]} tumour (T_*)")
    return items


def check_pcam_items(items: list[dict[str, Any]], converted_dir: str | os.PathLike | None = None) -> None:
    """Checks every patch (:func:`medkit.data.checks.check_image`): readable, not truncated, 8-bit or 16-bit; a
    16-bit patch is replaced in its item by an 8-bit copy in ``converted_dir`` (the bundle scales 0-255).

    Raises:
        ValueError: one line naming the bad patch and the problem.
    """
    for item in items:
        item["image"], _ = check_image(item["image"], ANY_8BIT, converted_dir, what="patch")


def list_patches(input_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Lists every patch image in ``input_dir`` (any names) for inference.

    Returns:
        items ``{"image": absolute path, "id": file name, "source": folder name}`` sorted by file name.
    """
    root = Path(input_dir)
    return [{"image": str(p.resolve()), "id": p.name, "source": root.resolve().name} for p in _patch_files(root)]


def prepare_pcam_datalists(
    dataset_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    seed: int = 0,
    default_dataset_dir: str | os.PathLike | None = None,
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
    num_synthetic: int = 200,
) -> dict[str, Any]:
    """Reads and splits a patch folder, or PCam's HDF5 files, writing ``<output_dir>/datalist.json``.

    A folder holding PCam's HDF5 files keeps PCam's own train / valid / test split (``read_pcam_h5`` in
    :mod:`medkit.data.pcam_h5`; the bundle's ``PCamPatchReader`` reads one patch at a time). Otherwise the split is
    stratified: each class is cut train/val/test by ``fractions`` with ``seed``, so every part holds both classes (ROC
    AUC needs them) when each class has at least three patches. When ``dataset_dir`` is missing and equals
    ``default_dataset_dir``, synthetic H&E patches are generated there first and the run is logged as synthetic. An
    existing ``datalist.json`` made from the same folder and seed is reused, so resumed runs and evaluation see the same
    test patches.

    Returns:
        ``{"dataset_dir", "seed", "synthetic", "train", "val", "test"}``.
    """

    def generate(root: Path) -> None:
        from medkit.data.synthetic_pcam import generate_pcam_dataset

        generate_pcam_dataset(root, num_patches=num_synthetic, seed=seed)

    def read(root: Path) -> tuple[Any, dict[str, Any]]:
        if _has_h5(root):
            from medkit.data.pcam_h5 import read_pcam_h5

            return read_pcam_h5(root), {"format": "hdf5"}
        return _checked(read_pcam_folder(root), Path(output_dir) / "converted"), {}

    def split(items: Any) -> dict[str, list[dict[str, Any]]]:
        return items if isinstance(items, dict) else _stratified_split(items, Path(dataset_dir), fractions, seed)

    return prepare_datalists(
        dataset_dir,
        output_dir,
        read=read,
        seed=seed,
        split=split,
        default_dataset_dir=default_dataset_dir,
        generate=generate,
        missing_hint="Point --dataset_dir at a folder of T_<n>.jpg (tumour) and N_<n>.jpg (normal) patches, or at "
        "PCam's six HDF5 files (medkit data fetch pcam)",
        synthetic_warning="Training on SYNTHETIC H&E patches generated by medkit in %s, not on real histology. "
        "Pass --dataset_dir <folder of T_*/N_* patches> for real work.",
        summary="patch folder {root}: {n_train} train / {n_val} val / {n_test} test patches ({tumour} tumour); "
        "split saved to {path}",
        summary_fields=lambda datalist: {"tumour": sum(i["label"] for k in _PARTS for i in datalist[k])},
        log=logger,
    )


def _has_h5(root: Path) -> bool:
    # PCam's HDF5 file names (medkit.data.pcam_h5 imports MONAI, so it is imported only when they are there)
    return root.is_dir() and any(root.glob("camelyonpatch_level_2_split_*_[xy].h5"))


def _checked(items: list[dict[str, Any]], converted_dir: Path) -> list[dict[str, Any]]:
    check_pcam_items(items, converted_dir)
    return items


def _stratified_split(
    items: list[dict[str, Any]], root: Path, fractions: tuple[float, float, float], seed: int
) -> dict[str, list[dict[str, Any]]]:
    # each class is cut on its own, so every part holds both classes (ROC AUC needs them)
    parts: dict[str, list[dict[str, Any]]] = {name: [] for name in _PARTS}
    for label in (0, 1):
        members = [item for item in items if item["label"] == label]
        if len(members) < len(parts):
            raise ValueError(f"{root}: class {PCAM_CLASSES[label]} has {len(members)} patches; need at least 3")
        for name, part in split_items(members, fractions, seed=seed).items():
            parts[name].extend(part)
    return {name: sorted(part, key=lambda item: item["id"]) for name, part in parts.items()}
