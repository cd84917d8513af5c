"""Deterministic splits, datalist JSON files, and :func:`prepare_datalists`, the skeleton every dataset reader uses."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medkit.bundle.distributed import main_process_first
from medkit.data.checks import index_by_stem, inside
from medkit.utils import save_json

__all__ = [
    "SYNTHETIC_MARKER",
    "load_datalist",
    "pair_by_stem",
    "prepare_datalists",
    "reusable_datalist",
    "save_datalist",
    "split_items",
]

logger = logging.getLogger(__name__)

SYNTHETIC_MARKER = "SYNTHETIC.md"  # written by every synthetic generator next to the data it makes


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


def pair_by_stem(
    images: Iterable[Path],
    labels: Mapping[str, Path],
    missing: Callable[[Path], str],
    stem: Callable[[Path], str] = lambda path: path.stem,
    root: str | os.PathLike | None = None,
) -> list[dict[str, str]]:
    """Pairs each image with the label file of the same stem, as items ``{"id", "image", "label"}`` (absolute paths).

    Label files without an image are left out with a logged warning. Build ``labels`` with
    :func:`medkit.data.checks.index_by_stem`, which refuses two label files of one stem.

    Args:
        images: the image files.
        labels: ``{stem: label file}``.
        missing: the error message for an image without a label.
        stem: the pairing key of a file.
        root: the dataset folder; a symlink that leads out of it is refused (:func:`medkit.data.checks.inside`).

    Raises:
        ValueError: with the message ``missing(image)`` for the first image that has no label, or naming two images
            of one stem, or a symlink out of ``root``.
    """
    images = list(index_by_stem(images, stem).values())
    resolve = (lambda path: inside(path, root)) if root is not None else (lambda path: str(path.resolve()))
    items = []
    for image in images:
        label = labels.get(stem(image))
        if label is None:
            raise ValueError(missing(image))
        items.append({"id": stem(image), "image": resolve(image), "label": resolve(label)})
    unpaired = sorted(set(labels) - {item["id"] for item in items})
    if unpaired:
        names = ", ".join(str(labels[key]) for key in unpaired[:3]) + (", ..." if len(unpaired) > 3 else "")
        logger.warning("%d label file(s) have no image and are left out: %s", len(unpaired), names)
    return items


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


def _dataset_ready(
    root: Path,
    default_dataset_dir: str | os.PathLike | None,
    generate: Callable[[Path], Any] | None,
    present: Callable[[Path], bool],
    missing_hint: str | None,
) -> None:
    """Generates the bundle's default dataset when it is missing; refuses any other missing folder."""
    if present(root):
        return
    is_default = default_dataset_dir is not None and root.resolve() == Path(default_dataset_dir).resolve()
    if is_default and generate is not None:
        generate(root)
    elif missing_hint is not None:
        raise FileNotFoundError(f"dataset_dir {root} does not exist. {missing_hint}")


@main_process_first
def prepare_datalists(
    dataset_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    read: Callable[[Path], tuple[Any, dict[str, Any]]],
    seed: int = 0,
    fractions: Sequence[float] = (0.7, 0.1, 0.2),
    split: Callable[[Any], dict[str, list[Any]]] | None = None,
    default_dataset_dir: str | os.PathLike | None = None,
    generate: Callable[[Path], Any] | None = None,
    present: Callable[[Path], bool] = Path.exists,
    missing_hint: str | None = None,
    synthetic_warning: str = "Training on SYNTHETIC data generated by medkit in %s, not on real data.",
    reuse: bool = True,
    also_match: dict[str, Any] | None = None,
    summary: str | None = None,
    summary_fields: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    log: logging.Logger = logger,
) -> dict[str, Any]:
    """The skeleton every dataset reader shares: default data, synthetic warning, saved split, read, split, save, log.

    1. A ``dataset_dir`` that is not ``present`` is generated with ``generate`` when it is ``default_dataset_dir``;
       otherwise ``FileNotFoundError("dataset_dir <dir> does not exist. <missing_hint>")`` is raised (with no hint,
       ``read`` reports the problem itself).
    2. A ``SYNTHETIC.md`` marker in the folder (or next to a dataset file) logs ``synthetic_warning``.
    3. ``<output_dir>/datalist.json`` made from the same folder and seed (and holding ``also_match``) is returned as
       it is, so resumed runs and evaluation see the same split.
    4. Otherwise ``read(root)`` returns ``(items, fields)``; ``split(items)`` cuts the items into named parts
       (default :func:`split_items` with ``fractions`` and ``seed``); the datalist
       ``{"dataset_dir", **fields, "seed", "synthetic", **parts}`` is saved and ``summary`` is logged.

    Args:
        dataset_dir: the dataset folder (or file) given to the bundle.
        output_dir: the run folder that receives ``datalist.json``.
        read: reads and checks the dataset: ``root -> (items, extra datalist fields)``.
        seed: split seed; part of what makes a saved split reusable.
        fractions: the default split's train/val/test fractions.
        split: ``items -> {part: [items]}`` for readers with their own split (stratified, given by folders).
        default_dataset_dir: the bundle's default ``dataset_dir``, the only folder ``generate`` may write.
        generate: writes a synthetic dataset into the missing default folder.
        present: whether ``dataset_dir`` holds the dataset (default: it exists).
        missing_hint: the fix named when a non-default ``dataset_dir`` is missing; ``None`` leaves it to ``read``.
        synthetic_warning: the warning logged for synthetic data, with one ``%s`` for the folder.
        reuse: whether a saved split may be reused at all.
        also_match: datalist fields a saved split must hold with these values to be reused.
        summary: ``str.format`` template logged after saving, with ``root``, ``path``, ``n_<part>`` (part sizes),
            the extra ``fields`` and ``summary_fields``; ``None`` logs nothing.
        summary_fields: ``datalist -> {name: value}``, more values for ``summary``.
        log: the reader's logger, so messages keep its name.

    Returns:
        the datalist as saved.
    """
    root = Path(dataset_dir)
    _dataset_ready(root, default_dataset_dir, generate, present, missing_hint)
    synthetic = ((root if root.is_dir() else root.parent) / SYNTHETIC_MARKER).is_file()
    if synthetic:
        log.warning(synthetic_warning, root)
    path = Path(output_dir) / "datalist.json"
    saved = reusable_datalist(path, root, seed) if reuse else None
    if saved is not None and all(saved.get(k) == v for k, v in (also_match or {}).items()):
        return saved
    items, fields = read(root)
    parts = split(items) if split is not None else split_items(items, fractions, seed=seed)
    datalist = {"dataset_dir": str(root.resolve()), **fields, "seed": seed, "synthetic": synthetic, **parts}
    save_datalist(datalist, path)
    if summary is not None:
        counts = {f"n_{name}": len(part) for name, part in parts.items()}
        extra = summary_fields(datalist) if summary_fields is not None else {}
        log.info(summary.format(root=root, path=path, **counts, **fields, **extra))
    return datalist
