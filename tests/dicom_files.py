"""DICOM files for the tests, written with pydicom: CT slices with known geometry, series, multi-frame and compressed.

Every slice has 20 rows and 24 columns, ``PixelSpacing`` 0.5 mm between rows and 0.8 mm between columns, slice
thickness 2 mm and, unless told otherwise, the axial orientation at ``ImagePositionPatient`` (10, -20, 30).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

ROWS, COLUMNS = 20, 24
PIXEL_SPACING = (0.5, 0.8)
THICKNESS = 2.0
POSITION = (10.0, -20.0, 30.0)
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)


def pixels(seed: int = 0, frames: int | None = None, high: int = 1000) -> np.ndarray:
    """Random ``uint16`` pixels ``(rows, columns)``, or ``(frames, rows, columns)``."""
    shape = (ROWS, COLUMNS) if frames is None else (frames, ROWS, COLUMNS)
    return np.random.default_rng(seed).integers(0, high, shape).astype(np.uint16)


def ct_slice(
    array: np.ndarray,
    *,
    position: Sequence[float] = POSITION,
    orientation: Sequence[float] = AXIAL,
    instance: int = 1,
    study: str | None = None,
    series: str | None = None,
    frame_of_reference: str | None = None,
) -> Dataset:
    """A CT image dataset holding ``array`` (``(rows, columns)``, or ``(frames, rows, columns)``) uncompressed."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study or generate_uid()
    ds.SeriesInstanceUID = series or generate_uid()
    ds.FrameOfReferenceUID = frame_of_reference or generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Test^Patient", "P1", "", "O"
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = (
        "20240101",
        "1200",
        "1",
        "",
        "",
    )
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber, ds.Manufacturer = "CT", 3, instance, "test"
    ds.ImagePositionPatient, ds.ImageOrientationPatient = list(position), list(orientation)
    ds.PixelSpacing, ds.SliceThickness = list(PIXEL_SPACING), THICKNESS
    ds.Rows, ds.Columns = array.shape[-2:]
    if array.ndim == 3:
        ds.NumberOfFrames = array.shape[0]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    bits = array.dtype.itemsize * 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = 1, 0, "HU"
    ds.PixelData = np.ascontiguousarray(array).tobytes()
    return ds


def save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_series(folder: Path, count: int = 3, step: float = 2.5) -> list[Dataset]:
    """``count`` axial slices ``step`` mm apart from :data:`POSITION`, one series; file names are not in slice order
    (slice ``k`` is ``IM<(k + 1) % count>.dcm``: ``InstanceNumber`` gives the order). Returns them in slice order."""
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    slices = []
    for k in range(count):
        position = (POSITION[0], POSITION[1], POSITION[2] + step * k)
        ds = ct_slice(
            pixels(seed=k), position=position, instance=k + 1, study=study, series=series, frame_of_reference=frame
        )
        slices.append(ds)
        save(ds, folder / f"IM{(k + 1) % count:04d}.dcm")
    return slices


def write_enhanced_multiframe(path: Path, slices: list[Dataset]) -> Dataset:
    """``slices`` (one series) as one Legacy Converted Enhanced CT image (highdicom): per-frame positions in the
    functional groups, as scanners write multi-frame CT and MR."""
    import highdicom as hd

    image = hd.legacy.LegacyConvertedEnhancedCTImage(slices, generate_uid(), 4, generate_uid(), 1)
    save(image, path)
    return pydicom.dcmread(path)


def jpeg_baseline(ds: Dataset, array8: np.ndarray) -> Dataset:
    """``ds`` with the 8-bit ``array8`` stored as JPEG Baseline (encoded by Pillow, which also decodes it)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array8).save(buffer, "JPEG", quality=95)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = encapsulate([buffer.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = pydicom.uid.JPEGBaseline8Bit
    return ds


def undecodable_syntax() -> pydicom.uid.UID | None:
    """A compressed transfer syntax that no installed pydicom decoder handles, or ``None`` if all are handled."""
    from pydicom.pixels import get_decoder

    for uid in (pydicom.uid.JPEGLosslessSV1, pydicom.uid.HTJ2KLossless, pydicom.uid.JPEGLSLossless):
        if not get_decoder(uid).is_available:
            return uid
    return None
