"""The checks every dataset reader runs on its files, in one place: what hostile input ends in.

Each check either raises ``ValueError`` (or ``FileNotFoundError``) with one line naming the file and the problem, which
a bundle run prints alone (:mod:`medkit.bundle.errors`), or logs a warning and goes on. ``docs/hostile_input.md``
lists every case, reader by reader. The checks read headers where that suffices: an image is decoded once (JPEGs at
1/8 scale) to catch truncation, NaN and constant images, and the many per-nucleus PNG masks of DSB2018 are only
CRC-checked here and decoded when they are loaded.
"""

from __future__ import annotations

from medkit.data.checks.files import (
    MAX_LINE_BYTES,
    check_file,
    check_unique_ids,
    index_by_stem,
    inside,
    npz_names,
    read_json,
    read_npz,
    text_lines,
)
from medkit.data.checks.images import (
    ANY_8BIT,
    COLOUR,
    GREY_8BIT,
    GREY_OR_COLOUR,
    ImageInfo,
    ImagePolicy,
    check_image,
    check_mask_values,
    check_same_size,
    inspect_image,
    mask_foreground,
    read_grey_label,
    to_8bit,
    warn_constant_images,
)

__all__ = [
    "ANY_8BIT",
    "COLOUR",
    "GREY_8BIT",
    "GREY_OR_COLOUR",
    "MAX_LINE_BYTES",
    "ImageInfo",
    "ImagePolicy",
    "check_file",
    "check_image",
    "check_mask_values",
    "check_same_size",
    "check_unique_ids",
    "index_by_stem",
    "inside",
    "inspect_image",
    "mask_foreground",
    "npz_names",
    "read_grey_label",
    "read_json",
    "read_npz",
    "text_lines",
    "to_8bit",
    "warn_constant_images",
]
