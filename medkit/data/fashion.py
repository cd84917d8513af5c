"""FashionMNIST from local idx files: an idx reader/writer, torchvision-backed splits and inference inputs.

Layout (what ``torchvision.datasets.FashionMNIST(root, download=False)`` reads)::

    <root>/FashionMNIST/raw/train-images-idx3-ubyte   (N, 28, 28) uint8
    <root>/FashionMNIST/raw/train-labels-idx1-ubyte   (N,) uint8, 0..9
    <root>/FashionMNIST/raw/t10k-images-idx3-ubyte
    <root>/FashionMNIST/raw/t10k-labels-idx1-ubyte

Datalist items are ``{"id": "train:<index>" | "test:<index>" | <file stem>, "image": uint8 (28, 28), "label": int}``
(the image array is kept in memory; ``datalist.json`` stores the ids only).
"""

from __future__ import annotations

import functools
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from medkit.data.checks import check_file, inside, to_8bit, warn_constant_images
from medkit.data.datalist import prepare_datalists, split_items

__all__ = [
    "CLASS_NAMES",
    "as_grey_array",
    "RAW_FILES",
    "prepare_fashion_datalists",
    "raw_folder",
    "read_fashion_inputs",
    "read_fashion_split",
    "read_idx",
    "write_idx",
]

logger = logging.getLogger(__name__)

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
RAW_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
# idx type codes (http://yann.lecun.com/exdb/mnist/): data are big-endian
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def raw_folder(root: str | os.PathLike) -> Path:
    """``<root>/FashionMNIST/raw``, where torchvision looks for the idx files."""
    return Path(root) / "FashionMNIST" / "raw"


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Writes ``array`` (1 to 255 dimensions) as an idx file; the type code follows its dtype (uint8 for MNIST).

    Raises:
        TypeError: for a dtype idx has no code for.
    """
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("=").str[1:]: k for k, v in _IDX_DTYPES.items()}
    code = codes.get(array.dtype.newbyteorder("=").str[1:])
    if code is None or not 1 <= array.ndim <= 255:
        raise TypeError(
            f"{path}: idx stores 1-255 dims of uint8/int8/int16/int32/float32/float64, got "
            f"{array.dtype} with {array.ndim} dims"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(header + array.astype(_IDX_DTYPES[code]).tobytes())
    os.replace(tmp, path)
    return path


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an idx file (uncompressed) into a native-endian array; the header is checked before the data is read.

    Raises:
        ValueError: if the file is empty, the header is not idx (wrong magic number) or the file size does not match
            the header (truncated or padded); the message names the file.
    """
    path = check_file(path)
    with open(path, "rb") as f:
        magic = f.read(4)
        if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in _IDX_DTYPES:
            raise ValueError(f"{path} is not an idx file (header {magic!r}); gunzip .gz downloads first")
        ndim, dtype = magic[3], np.dtype(_IDX_DTYPES[magic[2]])
        dims, size = f.read(4 * ndim), path.stat().st_size
        if len(dims) < 4 * ndim:
            raise ValueError(f"{path}: {size} bytes, too short for the {ndim} dimensions its header announces")
        shape = tuple(np.frombuffer(dims, dtype=">u4").tolist())
        expected = 4 + 4 * ndim + math.prod(shape) * dtype.itemsize
        if size != expected:
            raise ValueError(f"{path}: {size} bytes, but the header {shape} {dtype} needs {expected}")
        data = np.frombuffer(f.read(), dtype=dtype)
    return data.reshape(shape).astype(dtype.newbyteorder("="))


def read_fashion_split(root: str | os.PathLike, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, H, W)`` uint8 and labels ``(N,)`` int64 from the split's two idx files (:func:`read_idx`).

    Constant images are logged and kept.

    Raises:
        FileNotFoundError: naming the expected files and where to get them.
        ValueError: naming the file, for a bad idx file, images that are not ``(N, H, W)`` uint8, labels that are not
            ``(N,)`` uint8 classes 0-9, or counts that differ.
    """
    raw = raw_folder(root)
    names = RAW_FILES["train" if train else "test"]
    missing = [f for f in names if not (raw / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"FashionMNIST idx files {missing} not found in {raw}. Download the four *-ubyte.gz files from "
            "https://github.com/zalandoresearch/fashion-mnist, gunzip them into that folder, or point --dataset_dir "
            "at the folder that holds FashionMNIST/raw/"
        )
    image_path, label_path = (raw / name for name in names)
    images, labels = read_idx(inside(image_path, root)), read_idx(inside(label_path, root))
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{image_path}: images are {images.dtype} {images.shape}; expected (N, H, W) uint8")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(f"{label_path}: labels are {labels.dtype} {labels.shape}; expected (N,) uint8")
    if len(images) != len(labels):
        raise ValueError(f"{label_path}: {len(labels)} labels for {len(images)} images in {image_path}")
    if labels.size and labels.max() >= len(CLASS_NAMES):
        raise ValueError(f"{label_path}: label {labels.max()} is out of range; classes are 0-{len(CLASS_NAMES) - 1}")
    warn_constant_images(images, str(image_path), lambda i: f"index {i}")
    return images, labels.astype(np.int64)


def _items(images: np.ndarray, labels: np.ndarray, split: str, indices) -> list[dict[str, Any]]:
    return [{"id": f"{split}:{i}", "image": images[i], "label": int(labels[i])} for i in indices]


def prepare_fashion_datalists(
    dataset_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    seed: int = 0,
    default_dataset_dir: str | os.PathLike | None = None,
    val_fraction: float = 0.1,
    max_train_images: int | None = None,
    num_synthetic: tuple[int, int] = (1200, 300),
) -> dict[str, Any]:
    """Train/val split of FashionMNIST's training file (by seed) and its test file as test; ids saved to
    ``<output_dir>/datalist.json`` and reused by evaluation and resumed runs.

    When ``dataset_dir`` has no idx files and equals ``default_dataset_dir``, a synthetic set is generated there first
    (logged as synthetic).

    Args:
        dataset_dir: the root holding ``FashionMNIST/raw/``.
        output_dir: the run folder for ``datalist.json``.
        seed: split seed.
        default_dataset_dir: the bundle's default ``dataset_dir``.
        val_fraction: fraction of the (possibly subsampled) training images kept for validation.
        max_train_images: use a seeded random subset of this many training images (``None``: all).
        num_synthetic: (train, test) sizes of the generated default.

    Returns:
        ``{"dataset_dir", "seed", "synthetic", "train", "val", "test"}`` with item lists.
    """
    root = Path(dataset_dir)

    @functools.cache
    def arrays() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        return read_fashion_split(root, train=True), read_fashion_split(root, train=False)

    def read(_: Path) -> tuple[list[int], dict[str, Any]]:
        num_train = len(arrays()[0][1])
        indices = list(range(num_train))
        if max_train_images is not None and max_train_images < num_train:
            indices = sorted(np.random.default_rng(seed).choice(num_train, max_train_images, replace=False).tolist())
        return indices, {"max_train_images": max_train_images}

    def split(indices: list[int]) -> dict[str, list[str]]:
        parts = split_items(indices, (1 - val_fraction, val_fraction), seed=seed, names=("train", "val"))
        ids = {name: [f"train:{i}" for i in part] for name, part in parts.items()}
        return {**ids, "test": [f"test:{i}" for i in range(len(arrays()[1][1]))]}

    def generate(root: Path) -> None:
        from medkit.data.synthetic_fashion import generate_fashion_dataset

        generate_fashion_dataset(root, *num_synthetic, seed=seed)

    saved = prepare_datalists(
        root,
        output_dir,
        read=read,
        seed=seed,
        split=split,
        default_dataset_dir=default_dataset_dir,
        generate=generate,
        present=lambda root: all((raw_folder(root) / f).is_file() for f in RAW_FILES["train"]),
        synthetic_warning="Training on SYNTHETIC FashionMNIST-format data in %s, not on FashionMNIST. "
        "Pass --dataset_dir <folder with FashionMNIST/raw/> for real work.",
        also_match={"max_train_images": max_train_images},
        log=logger,
    )
    ids = {k: [int(i.split(":")[1]) for i in saved[k]] for k in ("train", "val", "test")}
    (train_x, train_y), (test_x, test_y) = arrays()
    datalist = {k: saved[k] for k in ("dataset_dir", "seed", "synthetic")}
    datalist.update(
        train=_items(train_x, train_y, "train", ids["train"]), val=_items(train_x, train_y, "train", ids["val"])
    )
    datalist["test"] = _items(test_x, test_y, "test", ids["test"])
    counts = [len(datalist[k]) for k in ("train", "val", "test")]
    logger.info(
        "FashionMNIST %s: %d train / %d val / %d test images; split in %s",
        root,
        *counts,
        Path(output_dir) / "datalist.json",
    )
    return datalist


def as_grey_array(image: Any) -> np.ndarray:
    """An image file path (read with Pillow, converted to grey) or an array, as an ``(H, W)`` array.

    Lets the bundle's preprocessing take both datalist arrays and file paths (``medkit explain`` passes paths).
    """
    if isinstance(image, (str, os.PathLike)):
        from PIL import Image

        with Image.open(image) as im:
            return np.array(to_8bit(im, image).convert("L"))
    return np.asarray(image)


def _grey_images(path: Path) -> np.ndarray:
    images = read_idx(path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{path}: images are {images.dtype} {images.shape}; expected (N, H, W) uint8")
    return images


def read_fashion_inputs(input_path: str | os.PathLike) -> list[dict[str, Any]]:
    """Inference inputs as ``{"id", "image"}`` items: a FashionMNIST root (its test file), one idx images file, or
    image files (a folder of them or one file; converted to grey) with their stems as ids.

    Raises:
        FileNotFoundError: if nothing readable is found at ``input_path``.
    """
    path = Path(input_path)
    if (raw_folder(path) / RAW_FILES["test"][0]).is_file():
        images = _grey_images(raw_folder(path) / RAW_FILES["test"][0])
        return [{"id": f"test:{i}", "image": image} for i, image in enumerate(images)]
    if path.is_file() and "idx3" in path.name:
        return [{"id": f"{path.name}:{i}", "image": image} for i, image in enumerate(_grey_images(path))]
    files = [path] if path.is_file() else sorted(path.iterdir()) if path.is_dir() else []
    files = [f for f in files if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise FileNotFoundError(f"input {path}: no FashionMNIST/raw/ idx files, idx3 file or {IMAGE_SUFFIXES} images")
    return [{"id": f.stem, "image": as_grey_array(f)} for f in files]
