"""Deterministic splits and datalist JSON files shared by every bundle."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medkit.utils import save_json

__all__ = ["load_datalist", "reusable_datalist", "save_datalist", "split_items"]

logger = logging.getLogger(__name__)


def split_items(
    items: Sequence[Any], fractions: Sequence[float] = (0.7, 0.1, 0.2), seed: int = 0, names=("train", "val", "test")
) -> dict[str, list[Any]]:
    """Shuffles ``items`` with ``seed`` and cuts them into consecutive parts of the given fractions.

    The result depends only on the order of ``items`` and on ``seed``; callers sort their items first. Every part gets
    at least one item when there are at least as many items as parts; the last part takes the rounding remainder.

    Args:
        items: the samples to split (any JSON-serialisable objects).
        fractions: one fraction per part; they must be positive and sum to 1.
        seed: seed of the shuffle.
        names: the part names, as many as ``fractions``.

    Returns:
        ``{name: [items]}`` in the order of ``names``.
    """
    if len(fractions) != len(names):
        raise ValueError(f"got {len(fractions)} fractions {tuple(fractions)} for {len(names)} parts {tuple(names)}")
    if any(f <= 0 for f in fractions) or not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"split fractions must be positive and sum to 1, got {tuple(fractions)}")
    n = len(items)
    if n < len(names):
        raise ValueError(f"need at least {len(names)} samples to split into {tuple(names)}, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    sizes = [max(1, int(round(f * n))) for f in fractions[:-1]]
    while sum(sizes) > n - 1:  # keep at least one sample for the last part
        sizes[int(np.argmax(sizes))] -= 1
    bounds = np.cumsum([0, *sizes, n - sum(sizes)])
    return {name: [items[i] for i in order[lo:hi]] for name, lo, hi in zip(names, bounds[:-1], bounds[1:])}


def save_datalist(datalist: dict[str, Any], path: str | os.PathLike) -> Path:
    """Writes ``datalist`` as JSON, atomically (temporary file, then rename)."""
    return save_json(datalist, path)


def load_datalist(path: str | os.PathLike, key: str | None = None) -> Any:
    """Reads a datalist JSON written by :func:`save_datalist`, or one of its parts when ``key`` is given."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"datalist {path} does not exist; run the bundle's train.json with this output_dir first"
        )
    data = json.loads(path.read_text())
    if key is None:
        return data
    if key not in data:
        raise KeyError(f"datalist {path} has no part {key!r}; it has {sorted(data)}")
    return data[key]


def reusable_datalist(path: str | os.PathLike, dataset_dir: str | os.PathLike, seed: int) -> dict[str, Any] | None:
    """Returns the datalist saved at ``path`` when it was made from ``dataset_dir`` with ``seed``, else ``None``.

    Resumed runs and evaluation then see the same split; a run pointed at other data or another seed gets a new one.
    """
    path = Path(path)
    if not path.is_file():
        return None
    old = load_datalist(path)
    if old.get("dataset_dir") == str(Path(dataset_dir).resolve()) and old.get("seed") == seed:
        logger.info("Reusing the split in %s", path)
        return old
    logger.warning("%s was made from %s (seed %s); writing a new split", path, old.get("dataset_dir"), old.get("seed"))
    return None
