"""Class mappings of grey-level label images: which grey value stands for which class index and name.

``mapping.json`` maps each grey value to a class::

    {"0": {"index": 0, "name": "background"}, "85": {"index": 1, "name": "shaft"}, ...}

A bare index (``{"0": 0, "85": 1}``) is accepted too; such classes are named ``class_<index>``. Several grey values may
share one index; indices run from 0 without gaps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medkit.data.checks import read_json

__all__ = ["ClassMapping", "read_mapping"]


@dataclass(frozen=True)
class ClassMapping:
    """Grey value -> class index table and class names (index order).

    Attributes:
        grey_to_index: every grey value that may appear in a label image and its class index.
        names: class names, ``names[i]`` for index ``i``; indices run from 0 to ``len(names) - 1``.
        source: where the mapping came from (for error messages).
    """

    grey_to_index: dict[int, int]
    names: tuple[str, ...]
    source: str = "mapping.json"

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def lut(self) -> np.ndarray:
        """A 256-entry lookup table grey -> index, -1 for grey values the mapping does not know."""
        table = np.full(256, -1, dtype=np.int64)
        for grey, index in self.grey_to_index.items():
            table[grey] = index
        return table

    def index_to_grey(self) -> np.ndarray:
        """The grey value written for each class index (the smallest grey value of that class)."""
        out = np.zeros(self.num_classes, dtype=np.uint8)
        for grey, index in sorted(self.grey_to_index.items(), reverse=True):
            out[index] = grey
        return out

    def to_json(self) -> dict[str, dict[str, Any]]:
        return {str(g): {"index": i, "name": self.names[i]} for g, i in sorted(self.grey_to_index.items())}


def _parse_mapping(raw: Any, source: str) -> ClassMapping:
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"{source}: expected a non-empty JSON object grey value -> class, got {type(raw).__name__}")
    grey_to_index, names = {}, {}
    for key, value in raw.items():
        try:
            grey = int(key)
        except ValueError:
            raise ValueError(f"{source}: key {key!r} is not a grey value (an integer 0-255)") from None
        if not 0 <= grey <= 255:
            raise ValueError(f"{source}: grey value {grey} is outside 0-255")
        if grey in grey_to_index:
            raise ValueError(f"{source}: grey value {grey} is listed twice (as {key!r} too)")
        index = value.get("index") if isinstance(value, dict) else value
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"{source}: grey value {grey} maps to {value!r}; expected a class index >= 0")
        name = value.get("name") if isinstance(value, dict) else None
        if name is not None and names.setdefault(index, str(name)) != str(name):
            raise ValueError(f"{source}: class {index} is named both {names[index]!r} and {name!r}")
        grey_to_index[grey] = index
    indices = sorted(set(grey_to_index.values()))
    if indices != list(range(len(indices))):
        raise ValueError(f"{source}: class indices must run from 0 without gaps, got {indices}")
    return ClassMapping(grey_to_index, tuple(names.get(i, f"class_{i}") for i in indices), source)


def read_mapping(path: str | os.PathLike | dict) -> ClassMapping:
    """Reads a ``mapping.json`` file (or an already parsed dict) into a :class:`ClassMapping`.

    Raises:
        ValueError: naming the file, for malformed entries, duplicate keys, grey values or names, gaps in the class
            indices, or a file that is empty, not UTF-8 or not JSON.
    """
    if isinstance(path, dict):
        return _parse_mapping(path, "mapping")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"class mapping {path} does not exist")
    return _parse_mapping(read_json(path), str(path))
