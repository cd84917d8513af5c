"""DICOM through the 2D image bundles: inputs split into slices, predictions gathered back into NIfTI and DICOM SEG.

A DICOM input (a file, single- or multi-frame, or a series folder; :mod:`medkit.data.dicom`) is read as one volume
and handed on as its 2D slices, each an item of its own, so a bundle's 2D transforms and network run unchanged; the
loader predicts all slices of an input in one batch. :class:`DicomMaskWriter` collects the predicted slices of each
input and, once all have arrived, writes them as one NIfTI volume with the input's geometry and, if asked, as a DICOM
SEG (highdicom) that references the input's study, series and instances.

A bundle's ``inference.json`` turns this on with one change: its preprocessing becomes
``{"_target_": "medkit.transforms.compose_with_dicom", "transforms": "%<train.json>#deterministic_transforms"}``;
:class:`medkit.transforms.SaveLikeInput` writes predictions for DICOM inputs through :class:`DicomMaskWriter`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import Compose, LoadImaged, MapTransform, Transform

from medkit import __version__
from medkit.data.dicom import dicom_extra, dicom_headers, dicom_stem, is_dicom, read_dicom
from medkit.utils import as_bool, atomic_path

__all__ = ["DicomMaskWriter", "DicomSlices", "DicomSlicesd", "compose_with_dicom", "write_dicom_seg"]

logger = logging.getLogger(__name__)

# the metadata of a slice: its index, the input's slice count and the input's volume affine
SLICE_KEY, SLICES_KEY, VOLUME_AFFINE_KEY = "dicom_slice", "dicom_slices", "dicom_volume_affine"


class DicomSlices(Transform):
    """Reads a DICOM input (:func:`medkit.data.dicom.read_dicom`) as its 2D slices ``(C, W, H)``, in slice order.

    Each slice is a ``MetaTensor`` whose ``filename_or_obj`` is the input and whose affine places it in the volume;
    its metadata also holds its index (``dicom_slice``), the slice count (``dicom_slices``) and the volume's affine
    (``dicom_volume_affine``), which :class:`DicomMaskWriter` puts the predictions back together with.
    """

    def __call__(self, path: str | os.PathLike) -> list[MetaTensor]:
        volume = read_dicom(path)
        affine = volume.affine.double()
        slices = []
        for k in range(volume.shape[-1]):
            slice_affine = affine.clone()
            slice_affine[:3, 3] = affine[:3, 3] + k * affine[:3, 2]
            meta = {
                "filename_or_obj": str(path),
                "spatial_shape": np.asarray(volume.shape[1:3]),
                "original_channel_dim": 0,
                "space": "RAS",
                SLICE_KEY: k,
                SLICES_KEY: volume.shape[-1],
                VOLUME_AFFINE_KEY: affine.clone(),
            }
            slices.append(MetaTensor(volume.as_tensor()[..., k].clone(), affine=slice_affine, meta=meta))
        return slices


class DicomSlicesd(MapTransform):
    """Loads ``keys`` of an item with :class:`DicomSlices` when they name a DICOM input, and with ``loader`` (the
    bundle's own ``LoadImaged``) otherwise.

    A DICOM input becomes a list of items, one per slice; MONAI's ``Compose`` applies the following transforms to
    each and ``list_data_collate`` batches them, as it does for the samples of a random crop.

    Args:
        keys: the keys of the input files (one key in practice: ``image``).
        loader: the transform that loads any other file (given the whole item).
        allow_missing_keys: ``MapTransform``'s.
    """

    def __init__(self, keys: KeysCollection, loader: Callable, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.loader = loader
        self.slicer = DicomSlices()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any] | list[dict[Hashable, Any]]:
        dicom = [key for key in self.key_iterator(data) if is_dicom(data[key])]
        if not dicom:
            return self.loader(data)
        if len(dicom) > 1:
            raise ValueError(f"DicomSlicesd reads one DICOM key per item, got {dicom} in {dict(data)}")
        return [{**data, dicom[0]: piece} for piece in self.slicer(data[dicom[0]])]


def compose_with_dicom(transforms: Sequence[Callable], keys: KeysCollection = "image") -> Compose:
    """``Compose(transforms)`` whose ``LoadImaged`` of ``keys`` also reads DICOM inputs (:class:`DicomSlicesd`).

    This is the reading half of DICOM support, one change in an image bundle's ``inference.json`` (the writing half
    is a writer that sends DICOM sources to :class:`DicomMaskWriter`, as :class:`medkit.transforms.SaveLikeInput`
    does)::

        "preprocessing": {"_target_": "medkit.transforms.compose_with_dicom",
                          "transforms": "%bundles/<name>/configs/train.json#deterministic_transforms"}

    Raises:
        ValueError: if no ``LoadImaged`` in ``transforms`` loads ``keys``.
    """
    wanted = {keys} if isinstance(keys, str) else set(keys)
    out = list(transforms)
    for i, transform in enumerate(out):
        if isinstance(transform, LoadImaged) and wanted <= set(transform.keys):
            out[i] = DicomSlicesd(keys, loader=transform)
            return Compose(out)
    raise ValueError(f"compose_with_dicom found no LoadImaged of {sorted(wanted)} among {out}")


def _segment_descriptions(count: int, labels: Sequence[str] | None) -> list[Any]:
    hd, codes = dicom_extra("highdicom"), dicom_extra("pydicom.sr.codedict", "codes")
    algorithm = hd.AlgorithmIdentificationSequence(
        name="medkit", version=__version__, family=codes.cid7162.ArtificialIntelligence
    )
    return [
        hd.seg.SegmentDescription(
            segment_number=k,
            segment_label=labels[k - 1] if labels and k <= len(labels) else f"segment {k}",
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        )
        for k in range(1, count + 1)
    ]


def write_dicom_seg(
    labels: np.ndarray, source: str | os.PathLike, path: str | os.PathLike, segment_labels: Sequence[str] | None = None
) -> Path:
    """Writes a label volume predicted for the DICOM input ``source`` as a binary DICOM SEG (highdicom), atomically.

    The SEG is a new series in the source's study; each of its frames references the source instance (and frame)
    it segments. Label ``k`` becomes segment ``k`` (``1`` is the only one of a binary mask).

    Args:
        labels: integer labels ``(W, H, D)``, in :func:`medkit.data.dicom.read_dicom`'s layout and slice order.
        source: the DICOM file or series folder the labels were predicted for.
        path: the ``.dcm`` file to write.
        segment_labels: a name per segment (default ``segment <k>``).

    Raises:
        ValueError: naming ``source``, if highdicom is missing or rejects the source as a SEG reference.
    """
    hd = dicom_extra("highdicom")
    headers = dicom_headers(source)
    # (W, H, D) to highdicom's (frames, rows, columns)
    pixels = np.ascontiguousarray(np.asarray(labels).round().astype(np.uint8).transpose(2, 1, 0))
    first = headers[0]
    try:
        seg = hd.seg.Segmentation(
            source_images=headers,
            pixel_array=pixels,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=_segment_descriptions(max(1, int(pixels.max())), segment_labels),
            series_instance_uid=hd.UID(),
            series_number=int(first.get("SeriesNumber", 0) or 0) + 1000,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="medkit",
            manufacturer_model_name="medkit",
            software_versions=__version__,
            device_serial_number="0",
            series_description="medkit segmentation",
            omit_empty_frames=False,
        )
    except (ValueError, AttributeError, TypeError) as error:
        raise ValueError(
            f"{source}: cannot be referenced by a DICOM SEG ({type(error).__name__}: {error}); its NIfTI mask is "
            "written: predict it without --dicom_seg true"
        ) from None
    path = Path(path)
    with atomic_path(path) as tmp:
        seg.save_as(tmp)
    return path


class DicomMaskWriter:
    """Gathers the predicted slices of each DICOM input and writes them as one NIfTI volume (and a DICOM SEG).

    The NIfTI file ``<output_dir>/<input name><output_postfix>.nii.gz`` holds the labels (``uint8``; channel last when
    there are several) in the input's geometry: the affine of :func:`medkit.data.dicom.read_dicom`, as both sform and
    qform (scanner coordinates); a single slice is a ``(W, H, 1)`` volume. It is written with nibabel, because MONAI's
    ``SaveImage`` squeezes a one-slice volume to 2D and then fails on its 3D affine. With ``dicom_seg`` the SEG
    ``<...>_seg.dcm`` follows (:func:`write_dicom_seg`). Slices arrive as :class:`DicomSlices` made them (any order,
    any batches); an input is written when its last slice arrives. Each file is written atomically.

    Args:
        output_dir: the folder of the outputs; created if missing.
        dicom_seg: also write a DICOM SEG (``true``/``false`` as on the command line).
        output_postfix: added to the input name (``_mask`` gives ``<name>_mask.nii.gz``).
    """

    def __init__(self, output_dir: str | os.PathLike, dicom_seg: bool | str = False, output_postfix: str = "") -> None:
        self.output_dir = Path(output_dir)
        self.dicom_seg = as_bool(dicom_seg)
        self.output_postfix = output_postfix
        self._pending: dict[str, dict[int, torch.Tensor]] = {}

    def _base(self, source: str | os.PathLike) -> Path:
        return self.output_dir / f"{dicom_stem(source)}{self.output_postfix}"

    def output_path(self, source: str | os.PathLike) -> Path:
        """The last file written for the DICOM input ``source``: the SEG with ``dicom_seg``, else the NIfTI file."""
        base = self._base(source)
        return Path(f"{base}_seg.dcm") if self.dicom_seg else Path(f"{base}.nii.gz")

    def _write(self, volume: np.ndarray, affine: np.ndarray, source: str) -> None:
        labels = volume[0] if volume.shape[0] == 1 else np.moveaxis(volume, 0, -1)
        image = nib.Nifti1Image(labels.round().astype(np.uint8), affine)
        image.set_sform(affine, code="scanner")
        image.set_qform(affine, code="scanner")
        base = self._base(source)
        with atomic_path(f"{base}.nii.gz") as tmp:
            nib.save(image, tmp)
        if self.dicom_seg:
            write_dicom_seg(volume[0], source, f"{base}_seg.dcm")
        logger.info("saved prediction %s.nii.gz for %s", base, source)

    def __call__(self, img: MetaTensor) -> MetaTensor:
        meta = img.meta if isinstance(img, MetaTensor) else {}
        source = str(meta.get("filename_or_obj", ""))
        if SLICES_KEY not in meta:
            raise ValueError(
                f"the prediction for {source} has no DICOM slice metadata: load DICOM inputs with "
                "medkit.transforms.compose_with_dicom (DicomSlicesd), not LoadImaged alone"
            )
        slices = self._pending.setdefault(source, {})
        slices[int(meta[SLICE_KEY])] = torch.as_tensor(img).detach().cpu()
        if len(slices) == int(meta[SLICES_KEY]):
            del self._pending[source]
            volume = torch.stack([slices[k] for k in sorted(slices)], dim=-1).float().numpy()
            self._write(volume, np.asarray(meta[VOLUME_AFFINE_KEY], dtype=np.float64), source)
        return img
