"""MedMNIST 2D classification data read from local ``.npz`` files, plus a learnable synthetic stand-in.

medmnist's own Dataset classes download on demand and assert the official sample counts, so the arrays are read
here with numpy; ``medmnist.INFO`` supplies only metadata (task, channels, class names).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from medkit.bundle.distributed import main_process_first
from medkit.data.checks import inside, npz_names, read_npz, to_8bit, warn_constant_images
from medkit.utils import save_json

__all__ = [
    "SPLITS",
    "ZENODO_URL",
    "find_medmnist_npz",
    "generate_medmnist_npz",
    "list_medmnist_inputs",
    "medmnist_task_info",
    "prepare_medmnist_datalists",
    "read_medmnist_npz",
]

logger = logging.getLogger(__name__)

ZENODO_URL = "https://zenodo.org/records/10519652"
SPLITS = ("train", "val", "test")
_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def medmnist_task_info(flag: str) -> dict[str, Any]:
    """Task metadata for a 2D MedMNIST ``flag`` from ``medmnist.INFO``.

    Returns:
        ``task``, ``n_channels``, ``labels`` (class names by index), ``num_classes``, ``binary`` and ``num_outputs``
        (1 logit for binary tasks, one per class otherwise).

    Raises:
        ValueError: for an unknown flag or a multi-label task (chestmnist), which this reader does not support.
    """
    import medmnist

    info = medmnist.INFO.get(flag)
    if info is None:
        twod = sorted(k for k, v in medmnist.INFO.items() if not k.endswith("3d"))
        raise ValueError(f"unknown MedMNIST flag {flag!r}; expected one of {twod}")
    task = info["task"]
    if "multi-label" in task:
        raise ValueError(f"MedMNIST flag {flag!r} is {task!r}; multi-label (N, K) labels are not supported")
    labels = [info["label"][str(i)] for i in range(len(info["label"]))]
    binary = task == "binary-class"
    return {
        "flag": flag,
        "task": task,
        "n_channels": int(info["n_channels"]),
        "labels": labels,
        "num_classes": len(labels),
        "binary": binary,
        "num_outputs": 1 if binary else len(labels),
    }


def find_medmnist_npz(dataset_dir: str | os.PathLike, flag: str, size: int | None = None) -> Path:
    """Finds ``<flag>.npz`` (or ``<flag>_<size>.npz``) in ``dataset_dir``.

    Raises:
        FileNotFoundError: naming the files looked for and the Zenodo record to download them from.
    """
    root = Path(dataset_dir)
    names = [f"{flag}_{size}.npz", f"{flag}.npz"] if size not in (None, 28) else [f"{flag}.npz", f"{flag}_28.npz"]
    for name in names:
        if (root / name).is_file():
            inside(root / name, root)
            return root / name
    raise FileNotFoundError(
        f"no MedMNIST file {' or '.join(names)} in dataset_dir {root}. Download {names[0]} from {ZENODO_URL} "
        f"(MedMNIST v2/v3) and put it at {root / names[0]}, or pass --dataset_dir with the folder that holds it"
    )


def _labels_1d(labels: np.ndarray, path: Path, key: str) -> np.ndarray:
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(f"{path}: {key} has shape {labels.shape}; multi-label (N, K) labels are not supported")
    if labels.dtype.kind not in "biuf":
        raise ValueError(f"{path}: {key} has dtype {labels.dtype}; expected integer class indices")
    if labels.dtype.kind == "f" and not (np.isfinite(labels) & (labels == np.round(labels))).all():
        raise ValueError(f"{path}: {key} holds values that are not integer class indices (NaN or fractional)")
    if labels.size and labels.min() < 0:
        raise ValueError(f"{path}: {key} holds the negative label {labels.min()}; class indices start at 0")
    if labels.size and labels.max() >= 2**31:  # would wrap around when cast to int64
        raise ValueError(f"{path}: {key} holds the label {labels.max()}; class indices are small integers")
    return labels.astype(np.int64)


def _images_nchw(images: np.ndarray, path: Path, key: str) -> np.ndarray:
    """``(N, H, W)`` or ``(N, H, W, C)`` (C 1 or 3) images of 0-255 as ``(N, C, H, W)`` uint8."""
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4 and images.shape[-1] in (1, 3):
        images = np.moveaxis(images, -1, 1)
    else:
        raise ValueError(f"{path}: {key} has shape {images.shape}; expected (N, H, W) or (N, H, W, C) with C 1 or 3")
    if images.dtype != np.uint8:
        if images.dtype.kind not in "iu":
            raise ValueError(f"{path}: {key} has dtype {images.dtype}; expected uint8 pixel values 0-255")
        if images.size and (images.min() < 0 or images.max() > 255):
            raise ValueError(f"{path}: {key} values {images.min()}..{images.max()} are outside 0-255")
    warn_constant_images(images, f"{path} {key}", lambda i: f"index {i}")
    return np.ascontiguousarray(images, dtype=np.uint8)


def read_medmnist_npz(path: str | os.PathLike, flag: str | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Reads the train/val/test splits of a MedMNIST ``.npz`` as channel-first uint8 images and int64 labels.

    Any sample counts are accepted (subsets included). Labels may be ``(N,)`` or ``(N, 1)``. The file is checked
    before it is loaded (:func:`medkit.data.checks.read_npz`: zip magic, array headers, no pickles); constant images
    are logged and kept.

    Args:
        path: the ``.npz`` file.
        flag: if given, images must have ``medmnist.INFO[flag]["n_channels"]`` channels and labels must be valid
            class indices for that flag.

    Returns:
        ``{split: (images (N, C, H, W) uint8, labels (N,) int64)}`` for ``train``, ``val`` and ``test``.

    Raises:
        ValueError: naming the file, for a wrong magic number, a truncated or corrupt archive, missing arrays,
            shapes, dtypes or values that are not MedMNIST's, labels out of range or counts that differ.
    """
    path = Path(path)
    info = medmnist_task_info(flag) if flag else None
    arrays = read_npz(path, [f"{s}_{k}" for s in SPLITS for k in ("images", "labels")])
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split in SPLITS:
        labels = _labels_1d(arrays[f"{split}_labels"], path, f"{split}_labels")
        images = _images_nchw(arrays[f"{split}_images"], path, f"{split}_images")
        if len(images) != len(labels):
            raise ValueError(f"{path}: {len(images)} {split} images but {len(labels)} labels")
        if info and images.shape[1] != info["n_channels"]:
            raise ValueError(f"{path}: {flag} expects {info['n_channels']} channels, got images {images.shape}")
        if info and len(labels) and labels.max() >= info["num_classes"]:
            raise ValueError(f"{path}: {split} labels outside [0, {info['num_classes']}) for {flag}")
        out[split] = (images, labels)
    return out


def _render(rng: np.random.Generator, label: int, num_classes: int, size: int, channels: int) -> np.ndarray:
    # the class sets how many blobs there are and how large: visible, but noisy enough to need training
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    img = rng.normal(60.0, 12.0, (size, size)).astype(np.float32)
    count = 1 + label % 4
    sigma = size / 28 * (1.2 + 2.0 * (label // 4 + label / max(num_classes - 1, 1)))
    for _ in range(count):
        cy, cx = rng.uniform(0.2 * size, 0.8 * size, 2)
        amp = rng.uniform(90, 160)
        img += amp * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
    img += rng.normal(0, 20.0, img.shape)
    tint = np.linspace(1.0, 0.7, channels, dtype=np.float32)[:, None, None]
    return np.clip(img[None] * tint, 0, 255).astype(np.uint8)


def generate_medmnist_npz(
    path: str | os.PathLike,
    flag: str = "breastmnist",
    counts: tuple[int, int, int] = (600, 100, 200),
    size: int = 28,
    seed: int = 0,
) -> Path:
    """Writes a synthetic MedMNIST-format ``.npz`` whose classes differ in blob count and size, with noise.

    Channels, class count and label layout ``(N, 1)`` follow ``medmnist.INFO[flag]``; images are ``(N, H, W)``
    for grey flags and ``(N, H, W, C)`` otherwise, as in the official files. The write is atomic.
    """
    info = medmnist_task_info(flag)
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for split, n in zip(SPLITS, counts):
        labels = np.arange(n) % info["num_classes"]
        rng.shuffle(labels)
        images = np.stack([_render(rng, int(y), info["num_classes"], size, info["n_channels"]) for y in labels])
        images = images[:, 0] if info["n_channels"] == 1 else np.moveaxis(images, 1, -1)
        arrays[f"{split}_images"] = images
        arrays[f"{split}_labels"] = labels.astype(np.uint8)[:, None]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    return path


def _items(images: np.ndarray, labels: np.ndarray | None, ids: list[str], source: str) -> list[dict[str, Any]]:
    items = [{"image": img, "id": name, "source": source} for img, name in zip(images, ids)]
    if labels is not None:
        for item, y in zip(items, labels):
            item["label"] = np.asarray([y], dtype=np.int64)
    return items


@main_process_first
def prepare_medmnist_datalists(
    dataset_dir: str | os.PathLike,
    flag: str,
    output_dir: str | os.PathLike,
    default_dataset_dir: str | os.PathLike | None = None,
    size: int | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Datalists for the npz's own train/val/test splits, generating synthetic data for a missing default folder.

    Each item holds ``image`` (C, H, W) uint8, ``label`` (1,) int64, ``id`` (``<split>_<index>``) and ``source`` (the
    npz stem). Writes
    ``data_source.json`` (file, flag, counts, synthetic or not) into ``output_dir``.
    """
    dataset_dir = Path(dataset_dir)
    synthetic = default_dataset_dir is not None and dataset_dir == Path(default_dataset_dir)
    try:
        path = find_medmnist_npz(dataset_dir, flag, size)
    except FileNotFoundError:
        if not synthetic:
            raise
        path = generate_medmnist_npz(dataset_dir / f"{flag}.npz", flag=flag, size=size or 28)
        logger.warning("no %s data given: generated a SYNTHETIC MedMNIST-format file %s", flag, path)
    if synthetic:
        logger.warning("training on SYNTHETIC %s data from %s; pass --dataset_dir for real MedMNIST files", flag, path)
    splits = read_medmnist_npz(path, flag)
    datalists = {s: _items(x, y, [f"{s}_{i:05d}" for i in range(len(x))], path.stem) for s, (x, y) in splits.items()}
    source = {"file": str(path.resolve()), "flag": flag, "synthetic": synthetic, "task": medmnist_task_info(flag)}
    source["counts"] = {s: len(v) for s, v in datalists.items()}
    save_json(source, Path(output_dir) / "data_source.json")
    logger.info("MedMNIST %s from %s: %s", flag, path, source["counts"])
    return datalists


def _load_image(path: Path, channels: int, size: int) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im = to_8bit(im, path).convert("L" if channels == 1 else "RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.Resampling.BOX)
        arr = np.asarray(im, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)


def list_medmnist_inputs(input_dir: str | os.PathLike, flag: str, size: int = 28) -> list[dict[str, Any]]:
    """Inference items from a folder of images (converted and resized to the flag's format) or from an ``.npz``.

    An ``.npz`` contributes its ``images`` array if present, else ``test_images``, with ids ``<stem>_<index>`` and
    source ``<stem>``. Images in a folder get their path relative to the folder (without suffix) as id and the folder
    name as source.

    Raises:
        FileNotFoundError: if ``input_dir`` does not exist or holds no images.
    """
    src = Path(input_dir)
    channels = medmnist_task_info(flag)["n_channels"]
    if src.is_file() and src.suffix == ".npz":
        key = "images" if "images" in npz_names(src) else "test_images"
        images = _images_nchw(read_npz(src, [key])[key], src, key)
        if images.shape[1] != channels:
            raise ValueError(f"{src}: {flag} expects {channels} channels, got {key} {images.shape}")
        return _items(images, None, [f"{src.stem}_{i:05d}" for i in range(len(images))], src.stem)
    if not src.is_dir():
        raise FileNotFoundError(f"input_dir {src} is neither a folder of images nor an .npz file")
    files = sorted(p for p in src.rglob("*") if p.suffix.lower() in _IMAGE_EXTS)
    if not files:
        raise FileNotFoundError(f"input_dir {src} holds no images ({', '.join(_IMAGE_EXTS)})")
    images = [_load_image(p, channels, size) for p in files]
    return _items(np.stack(images), None, [str(p.relative_to(src).with_suffix("")) for p in files], src.name)
