"""MONAI-style transforms (array ``Foo`` plus dictionary ``Food``) that MONAI itself lacks."""

from __future__ import annotations

from medkit.transforms.dna import OneHotDNA, OneHotDNAd, ReverseComplement, ReverseComplementd
from medkit.transforms.intensity import ToGrey, ToGreyd
from medkit.transforms.io import LoadMaskUnion, LoadMaskUniond, SaveLikeInput, SaveLikeInputd

__all__ = ["LoadMaskUnion", "LoadMaskUniond", "SaveLikeInput", "SaveLikeInputd", "ToGrey", "ToGreyd"]
__all__ += ["OneHotDNA", "OneHotDNAd", "ReverseComplement", "ReverseComplementd"]
