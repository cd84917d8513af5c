"""MONAI-style transforms (array ``Foo`` plus dictionary ``Food``) that MONAI itself lacks."""

from __future__ import annotations

from medkit.transforms.dna import OneHotDNA, OneHotDNAd, ReverseComplement, ReverseComplementd
from medkit.transforms.filter import Filter2D, Filter2Dd
from medkit.transforms.intensity import ToGrey, ToGreyd
from medkit.transforms.io import LoadMaskUnion, LoadMaskUniond, SaveLikeInput, SaveLikeInputd

__all__ = [
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
]
