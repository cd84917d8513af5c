"""MONAI-style transforms (array ``Foo`` plus dictionary ``Food``) that MONAI itself lacks."""

from __future__ import annotations

from medkit.transforms.augmentation import AUGMENTATION_PRESETS, augmentation_preset, preview_augmentations
from medkit.transforms.colorization import ColorizationPaird
from medkit.transforms.dicom import DicomMaskWriter, DicomSlices, DicomSlicesd, compose_with_dicom, write_dicom_seg
from medkit.transforms.dna import OneHotDNA, OneHotDNAd, ReverseComplement, ReverseComplementd
from medkit.transforms.filter import Filter2D, Filter2Dd
from medkit.transforms.intensity import ToGrey, ToGreyd
from medkit.transforms.io import (
    AtomicSaveImage,
    AtomicSaveImaged,
    LoadMaskUnion,
    LoadMaskUniond,
    SaveLikeInput,
    SaveLikeInputd,
)
from medkit.transforms.labels import LoadGreyLabel, LoadGreyLabeld, SaveGreyLabel, SaveGreyLabeld

__all__ = [
    "AtomicSaveImage",
    "AtomicSaveImaged",
    "DicomMaskWriter",
    "DicomSlices",
    "DicomSlicesd",
    "Filter2D",
    "Filter2Dd",
    "LoadMaskUnion",
    "LoadMaskUniond",
    "OneHotDNA",
    "OneHotDNAd",
    "ReverseComplement",
    "ReverseComplementd",
    "SaveLikeInput",
    "SaveLikeInputd",
    "ToGrey",
    "ToGreyd",
    "compose_with_dicom",
    "write_dicom_seg",
]


__all__ += ["AUGMENTATION_PRESETS", "augmentation_preset", "preview_augmentations"]


__all__ += ["ColorizationPaird", "LoadGreyLabel", "LoadGreyLabeld", "SaveGreyLabel", "SaveGreyLabeld"]

from medkit.transforms.instances import (  # noqa: E402
    InstanceTarget,
    InstanceTargetd,
    LoadInstanceMask,
    LoadInstanceMaskd,
    WatershedInstances,
    WatershedInstancesd,
)

__all__ += [
    "InstanceTarget",
    "InstanceTargetd",
    "LoadInstanceMask",
    "LoadInstanceMaskd",
    "WatershedInstances",
    "WatershedInstancesd",
]
