"""DICOM inputs: which paths are DICOM, how a folder's files group into series, and reading one as a volume.

An input is a DICOM file (``.dcm``/``.dicom``: one slice, or a multi-frame image) or a folder holding one series of
single-frame files. :func:`read_dicom` reads either with MONAI's ``PydicomReader`` (pixel data, rescale slope and
intercept) into a channel-first ``(C, W, H, D)`` ``MetaTensor`` laid out as MONAI's other readers lay out images
(columns first), with a RAS affine built here from the DICOM geometry tags for all three cases, because
``PydicomReader`` leaves the slice axis of a single slice as ``(0, 0, 1)`` and reads a multi-frame file's frames as
a spatial axis in the wrong place. A compressed file whose decoder is not installed fails with one line naming the
transfer syntax and what to install.

pydicom is the optional ``dicom`` extra (``pip install -e ".[dicom]"``); without it a DICOM input fails with one line
saying so, and nothing else needs it.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DICOM_EXTENSIONS",
    "dicom_extra",
    "dicom_headers",
    "dicom_stem",
    "group_series",
    "is_dicom",
    "read_dicom",
    "volume_affine",
]

logger = logging.getLogger(__name__)

DICOM_EXTENSIONS = (".dcm", ".dicom")
_FILE_PATTERN = r"(?i).*\.(dcm|dicom)$"  # the files of a series folder that PydicomReader reads
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_EXTRA = "DICOM inputs and outputs need the dicom extra: pip install -e '.[dicom]' (pydicom, highdicom)"


def dicom_extra(module: str = "pydicom", name: str = "") -> Any:
    """``module`` (or its attribute ``name``) from the ``dicom`` extra (pydicom, highdicom), through MONAI's
    ``optional_import``, so that medkit imports without the extra.

    Raises:
        ValueError: saying to install the extra, if it is not installed.
    """
    from monai.utils import optional_import  # here: importing medkit.data does not import MONAI

    found, ok = optional_import(module, name=name)
    if not ok:
        raise ValueError(_EXTRA)
    return found


def is_dicom(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a DICOM input: a ``.dcm``/``.dicom`` file, or a folder holding such files (a series)."""
    if not str(path):
        return False
    path = Path(path)
    if path.is_dir():
        return any(p.is_file() and p.name.lower().endswith(DICOM_EXTENSIONS) for p in path.iterdir())
    return path.name.lower().endswith(DICOM_EXTENSIONS)


def dicom_stem(path: str | os.PathLike) -> str:
    """The name outputs for the DICOM input ``path`` are named after: a folder's whole name (series folders are often
    named by UID, ``1.2.840...``, so no suffix is cut), a file's name without ``.dcm``/``.dicom``."""
    path = Path(path)
    return path.name if path.is_dir() else path.name[: -len(path.suffix)]


def _series_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(DICOM_EXTENSIONS))


def group_series(files: Sequence[Path]) -> list[Path]:
    """``files`` with the DICOM files of each one-series folder replaced by that folder, in name order.

    The DICOM files of a folder whose files all belong to one series (one ``SeriesInstanceUID``, several single-frame
    files) form one input, the folder; every other file stays an input of its own (a lone slice, a multi-frame file,
    the files of a folder holding several series, which is logged). Without pydicom nothing is grouped: each DICOM
    file then fails on its own, saying to install the extra.
    """
    dicom = [p for p in files if p.name.lower().endswith(DICOM_EXTENSIONS)]
    try:
        pydicom = dicom_extra() if dicom else None
    except ValueError:
        pydicom = None
    if pydicom is None:
        return list(files)
    by_folder: dict[Path, list[Path]] = defaultdict(list)
    for path in dicom:
        by_folder[path.parent].append(path)
    grouped: set[Path] = set()
    for folder, members in by_folder.items():
        if len(members) < 2 or len(members) != len(_series_files(folder)):
            continue
        try:
            headers = [
                pydicom.dcmread(p, stop_before_pixels=True, specific_tags=["SeriesInstanceUID", "NumberOfFrames"])
                for p in members
            ]
        except Exception:  # an unreadable file: each is an input of its own and fails with its own reason
            continue
        series = {str(h.get("SeriesInstanceUID", "")) for h in headers}
        if len(series) > 1:
            logger.info(
                "%s holds %d series: each DICOM file is predicted on its own (one series per folder "
                "makes it one volume)",
                folder,
                len(series),
            )
        elif all(int(h.get("NumberOfFrames", 1) or 1) == 1 for h in headers):
            grouped.update(members)
    folders = {p.parent for p in grouped}
    return sorted([p for p in files if p not in grouped] + list(folders))


def _pip_install(requirement: str) -> str:
    """``pip install ...`` for one of pydicom's decoder requirements (``pylibjpeg>=2.0 and pylibjpeg-libjpeg>=2.1``)."""
    packages = [
        p.strip().replace("gdcm", "python-gdcm", 1) if p.strip().startswith("gdcm") else p.strip()
        for p in requirement.split(" and ")
    ]
    return "pip install " + " ".join(f"'{p}'" for p in packages)


def _check_decodable(header: Any, path: Path) -> None:
    """Raises if no installed pixel-data decoder handles ``header``'s transfer syntax, naming what to install."""
    get_decoder = dicom_extra("pydicom.pixels", "get_decoder")
    syntax = header.file_meta.get("TransferSyntaxUID")
    if syntax is None or not syntax.is_compressed:
        return
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise ValueError(
            f"{path}: pixel data compressed as {syntax.name} ({syntax}), which pydicom cannot decode; convert the "
            "file to an uncompressed transfer syntax"
        ) from None
    if not decoder.is_available:
        fixes = " or ".join(_pip_install(d.split(" - requires ")[-1]) for d in decoder.missing_dependencies)
        raise ValueError(
            f"{path}: pixel data compressed as {syntax.name} ({syntax}) and no decoder for it is installed; "
            f"{fixes}, or convert the file to an uncompressed transfer syntax"
        )


def dicom_headers(path: str | os.PathLike) -> list[Any]:
    """The headers (no pixel data) of the DICOM input ``path`` in slice order: one for a file, the files of a series
    folder in ``InstanceNumber`` order (the order ``PydicomReader`` stacks them in).

    Raises:
        ValueError: naming the file, if pydicom is missing, a file is not DICOM, a slice has no ``InstanceNumber``,
            or its pixel data needs a decoder that is not installed.
    """
    pydicom = dicom_extra()
    path = Path(path)
    files = _series_files(path) if path.is_dir() else [path]
    headers = []
    for file in files:
        try:
            header = pydicom.dcmread(file, stop_before_pixels=True)
        except Exception as error:  # pydicom's InvalidDicomError, or OSError for a truncated file
            raise ValueError(f"{file}: not a readable DICOM file ({type(error).__name__}: {error})") from None
        _check_decodable(header, file)
        if len(files) > 1 and "InstanceNumber" not in header:
            raise ValueError(f"{file}: slice of the series {path} has no InstanceNumber, so its place is unknown")
        headers.append(header)
    if len(headers) > 1:
        numbers = [int(h.InstanceNumber) for h in headers]
        if len(set(numbers)) < len(numbers):
            raise ValueError(
                f"{path}: slices share an InstanceNumber, so their order is unknown; one series per folder"
            )
        headers = [h for _, h in sorted(zip(numbers, headers), key=lambda pair: pair[0])]
    return headers


def _frame_attr(header: Any, frame: int, sequence: str, name: str) -> Any:
    """Attribute ``name`` of functional group ``sequence`` for ``frame`` of an enhanced multi-frame image (per-frame
    first, then shared), or the top-level attribute of a classic image; ``None`` when absent."""
    for groups in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        items = header.get(groups)
        if items:
            group = items[frame] if groups.startswith("PerFrame") else items[0]
            if sequence in group and name in group[sequence][0]:
                return group[sequence][0][name].value
    return header.get(name)


def _slice_spacing(header: Any) -> float:
    for name in ("SpacingBetweenSlices", "SliceThickness"):
        value = _frame_attr(header, 0, "PixelMeasuresSequence", name)
        if value:
            return abs(float(value))
    return 1.0


def volume_affine(
    orientation: Sequence[float],
    pixel_spacing: Sequence[float],
    positions: Sequence[Sequence[float]],
    slice_spacing: float = 1.0,
    source: str | os.PathLike = "",
) -> np.ndarray:
    """The RAS affine of a stack of parallel slices, for arrays indexed ``(column, row, slice)`` as MONAI's readers
    index them (the formula of https://nipy.org/nibabel/dicom/dicom_orientation.html).

    Args:
        orientation: ``ImageOrientationPatient``: the row direction, then the column direction (LPS).
        pixel_spacing: ``PixelSpacing``: the distance between rows, then between columns (mm).
        positions: ``ImagePositionPatient`` of each slice in array order, or of the first only: the slices are then
            ``slice_spacing`` apart along the normal (row x column).
        slice_spacing: the step along the normal when one position is given.
        source: the file or folder, for the error message.

    Raises:
        ValueError: naming ``source``, if the slices are not evenly spaced along one line (no affine fits them).
    """
    row, col = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    points = np.asarray(positions, float).reshape(-1, 3)
    if len(points) > 1:
        step = (points[-1] - points[0]) / (len(points) - 1)
        offsets = np.abs(points - (points[0] + np.arange(len(points))[:, None] * step)).max()
        if not np.linalg.norm(step) > 1e-6 or offsets > 0.01 * np.linalg.norm(step) + 1e-4:
            raise ValueError(
                f"{source}: its {len(points)} slices (InstanceNumber order in a series folder, frame order in a file) "
                f"are not evenly spaced along one line (off by up to {offsets:.3g} mm), so no affine fits them; give "
                "one series of parallel, evenly spaced slices per folder"
            )
    else:
        step = np.cross(row, col) * slice_spacing
    affine = np.eye(4)
    affine[:3, 0] = row * float(pixel_spacing[1])
    affine[:3, 1] = col * float(pixel_spacing[0])
    affine[:3, 2] = step
    affine[:3, 3] = points[0]
    return _LPS_TO_RAS @ affine


def _frame_positions(header: Any, frames: int) -> list[Any]:
    """``ImagePositionPatient`` of each frame of a multi-frame image; only the top-level one when its frames carry
    none (a classic multi-frame image: its frames are then stacked along the slice normal)."""
    groups = header.get("PerFrameFunctionalGroupsSequence")
    if groups and len(groups) == frames and all("PlanePositionSequence" in g for g in groups):
        return [g.PlanePositionSequence[0].ImagePositionPatient for g in groups]
    return [header.get("ImagePositionPatient")]


def _geometry(headers: list[Any], frames: int, source: Path) -> np.ndarray:
    """The RAS affine of the input whose slices (``headers``, or the ``frames`` of one multi-frame header) are read."""
    first = headers[0]
    orientation = _frame_attr(first, 0, "PlaneOrientationSequence", "ImageOrientationPatient")
    positions = (
        [h.get("ImagePositionPatient") for h in headers] if len(headers) > 1 else _frame_positions(first, frames)
    )
    spacing = _frame_attr(first, 0, "PixelMeasuresSequence", "PixelSpacing") or first.get("ImagerPixelSpacing")
    if orientation is None or any(p is None for p in positions):
        logger.warning(
            "%s has no patient geometry (ImageOrientationPatient/ImagePositionPatient): its outputs get the pixel "
            "spacing only, axis-aligned at the origin",
            source,
        )
        orientation, positions = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), [(0.0, 0.0, 0.0)]
    return volume_affine(orientation, spacing or (1.0, 1.0), positions, _slice_spacing(first), source)


def read_dicom(path: str | os.PathLike) -> Any:
    """Reads the DICOM input ``path`` (a file, single- or multi-frame, or a series folder) as one volume.

    Returns:
        A ``MetaTensor`` ``(C, W, H, D)``: ``C`` 1 (3 for a colour single-frame image), ``W`` the columns, ``H`` the
        rows, ``D`` the slices or frames (1 for a single slice), with the RAS ``affine`` of :func:`volume_affine` and
        ``filename_or_obj`` ``path``.

    Raises:
        ValueError: naming the file, for what :func:`dicom_headers` rejects, colour series or multi-frame images,
            and slices that are not evenly spaced.
    """
    from monai.data import PydicomReader
    from monai.transforms import LoadImage

    path = Path(path)
    headers = dicom_headers(path)
    frames = int(headers[0].get("NumberOfFrames", 1) or 1)
    colour = int(headers[0].get("SamplesPerPixel", 1)) > 1
    if "TotalPixelMatrixColumns" in headers[0]:
        raise ValueError(
            f"{path}: a tiled whole-slide image ({frames} tiles) is not supported; export a region as a "
            "single-frame DICOM, PNG or TIFF file"
        )
    if colour and (len(headers) > 1 or frames > 1):
        raise ValueError(
            f"{path}: colour DICOM is read as single-frame files only, not as a series or multi-frame "
            "image; export its frames as single-frame files"
        )
    with warnings.catch_warnings():  # the affine is built below, from the functional groups too
        warnings.filterwarnings("ignore", message="PydicomReader: ImageOrientationPatient", category=UserWarning)
        reader = PydicomReader(fname_regex=_FILE_PATTERN)
        image = LoadImage(reader=reader, image_only=True, ensure_channel_first=not colour)(str(path))
    if colour:  # (W, H, RGB) to channel-first
        image = image.permute(2, 0, 1)
    elif frames > 1:  # PydicomReader lays a multi-frame image out (rows, frames, columns): to (columns, rows, frames)
        image = image.permute(0, 3, 1, 2)
    if image.ndim == 3:
        image = image.unsqueeze(-1)
    image.affine = _geometry(headers, frames, path)
    image.meta["filename_or_obj"] = str(path)
    image.meta["spatial_shape"] = np.asarray(image.shape[1:])
    return image
