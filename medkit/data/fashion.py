"""FashionMNIST from local idx files: an idx reader/writer (plain or gzip), the dataset layouts, splits and inference
inputs.

``dataset_dir`` holds one of two layouts, looked for first in ``<root>/FashionMNIST/raw/`` (torchvision's place), then
in ``<root>`` itself; every file may be gzip-compressed (``.gz``, as downloaded) or not:

* the official four files -> train/val from the training file (by seed), test from the t10k file::

    train-images-idx3-ubyte[.gz]   (N, 28, 28) uint8        t10k-images-idx3-ubyte[.gz]
    train-labels-idx1-ubyte[.gz]   (N,) uint8, 0..9         t10k-labels-idx1-ubyte[.gz]

* one pair ``<name>-images-idx3-ubyte[.gz]`` / ``<name>-labels-idx1-ubyte[.gz]`` (e.g. a sample) -> a stratified
  train/val/test split by seed (:data:`PAIR_FRACTIONS`), logged as not an official split.

Datalist items are ``{"id": "<source>:<index>" | <file stem>, "image": uint8 (28, 28), "label": int}`` with source
``train``/``test`` (official files) or ``<name>`` (a pair); the image array is kept in memory and ``datalist.json``
stores the ids only.
"""

from __future__ import annotations

import functools
import gzip
import logging
import math
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from medkit.data.checks import check_file, inside, to_8bit, warn_constant_images
from medkit.data.datalist import prepare_datalists, split_items

__all__ = [
    "CLASS_NAMES",
    "PAIR_FRACTIONS",
    "RAW_FILES",
    "as_grey_array",
    "find_fashion_files",
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
# a single images/labels pair is split stratified: 60/15/15 of every 90 images of a class
PAIR_FRACTIONS = (4 / 6, 1 / 6, 1 / 6)
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
    """Reads an idx file, plain or gzip-compressed (recognised by its content, not its name), into a native-endian
    array; the header is checked before the data is read.

    Raises:
        ValueError: if the file is empty, is a damaged gzip file, the header is not idx (wrong magic number) or the
            (decompressed) size does not match the header (truncated or padded); the message names the file.
    """
    path = check_file(path)
    with open(path, "rb") as f:
        compressed = f.read(2) == b"\x1f\x8b"
    size_of = "bytes decompressed" if compressed else "bytes"
    try:
        with gzip.open(path, "rb") if compressed else open(path, "rb") as f:
            magic = f.read(4)
            if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in _IDX_DTYPES:
                raise ValueError(f"{path} is not an idx file (header {magic!r})")
            ndim, dtype = magic[3], np.dtype(_IDX_DTYPES[magic[2]])
            dims = f.read(4 * ndim)
            if len(dims) < 4 * ndim:
                raise ValueError(f"{path}: {4 + len(dims)} {size_of}, too short for the {ndim} dimensions its header "
                                 "announces")  # fmt: skip
            shape = tuple(np.frombuffer(dims, dtype=">u4").tolist())
            expected = 4 + 4 * ndim + math.prod(shape) * dtype.itemsize
            if not compressed and path.stat().st_size != expected:
                raise ValueError(
                    f"{path}: {path.stat().st_size} bytes, but the header {shape} {dtype} needs {expected}"
                )
            body = f.read()
    except (EOFError, OSError, zlib.error) as err:
        if not compressed:
            raise
        # from None: this error is the root cause, so a bundle run prints it as one line
        raise ValueError(f"{path}: damaged gzip file ({err}); download it again") from None
    if 4 + 4 * ndim + len(body) != expected:
        raise ValueError(
            f"{path}: {4 + 4 * ndim + len(body)} {size_of}, but the header {shape} {dtype} needs {expected}"
        )
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _with_gz(folder: Path, name: str) -> Path | None:
    # the plain file first: torchvision gunzips next to the download, leaving both
    return next((p for p in (folder / name, folder / f"{name}.gz") if p.is_file()), None)


def _pairs(folder: Path) -> dict[str, tuple[Path, Path]]:
    pairs: dict[str, tuple[Path, Path]] = {}
    for images in sorted(folder.glob("*-images-idx3-ubyte*")) if folder.is_dir() else []:
        name, _, rest = images.name.partition("-images-idx3-ubyte")
        labels = _with_gz(folder, f"{name}-labels-idx1-ubyte")
        if rest in ("", ".gz") and labels is not None:
            pairs.setdefault(name, (images, labels))
    return pairs


def find_fashion_files(root: str | os.PathLike) -> dict[str, tuple[Path, Path]]:
    """The idx files of the dataset in ``root``: ``{"train": (images, labels), "test": (images, labels)}`` for the
    official four files, or ``{<name>: (images, labels)}`` for a single pair (see the module docstring).

    ``<root>/FashionMNIST/raw/`` is searched before ``<root>``; the official layout wins over a pair.

    Raises:
        FileNotFoundError: when neither layout is there; the message names the folders and files looked for.
        ValueError: when a folder holds several pairs and not the official four files.
    """
    root = Path(root)
    folders = (raw_folder(root), root)
    for folder in folders:
        official = {split: tuple(_with_gz(folder, name) for name in names) for split, names in RAW_FILES.items()}
        if all(p is not None for pair in official.values() for p in pair):
            return official
    for folder in folders:
        pairs = _pairs(folder)
        if len(pairs) > 1:
            raise ValueError(f"{folder}: {len(pairs)} idx image/label pairs {sorted(pairs)}; keep one pair or the "
                             "official four files (train-*, t10k-*) in the folder")  # fmt: skip
        if pairs:
            return pairs
    official_names = ", ".join(RAW_FILES["train"] + RAW_FILES["test"])
    raise FileNotFoundError(
        f"no FashionMNIST idx files in {folders[0]} or {root}: looked for the official four ({official_names}, each "
        "plain or .gz) or one <name>-images-idx3-ubyte[.gz] / <name>-labels-idx1-ubyte[.gz] pair. Download the four "
        f"*-ubyte.gz files from https://github.com/zalandoresearch/fashion-mnist into {folders[0]}"
    )


def read_fashion_pair(images_path: Path, labels_path: Path, root: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, H, W)`` uint8 and labels ``(N,)`` int64 from two idx files in the dataset folder ``root``
    (:func:`read_idx`). Constant images are logged and kept.

    Args:
        images_path: the ``*-images-idx3-ubyte[.gz]`` file.
        labels_path: the ``*-labels-idx1-ubyte[.gz]`` file.
        root: the dataset folder; symlinks leading out of it are refused.

    Raises:
        ValueError: naming the file, for a bad idx file, images that are not ``(N, H, W)`` uint8, labels that are not
            ``(N,)`` uint8 classes 0-9, or counts that differ.
    """
    images, labels = read_idx(inside(images_path, root)), read_idx(inside(labels_path, root))
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{images_path}: images are {images.dtype} {images.shape}; expected (N, H, W) uint8")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(f"{labels_path}: labels are {labels.dtype} {labels.shape}; expected (N,) uint8")
    if len(images) != len(labels):
        raise ValueError(f"{labels_path}: {len(labels)} labels for {len(images)} images in {images_path}")
    if labels.size and labels.max() >= len(CLASS_NAMES):
        raise ValueError(f"{labels_path}: label {labels.max()} is out of range; classes are 0-{len(CLASS_NAMES) - 1}")
    warn_constant_images(images, str(images_path), lambda i: f"index {i}")
    return images, labels.astype(np.int64)


def read_fashion_split(root: str | os.PathLike, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of the official training (``train``) or t10k file in ``root`` (:func:`read_fashion_pair`).

    Raises:
        FileNotFoundError: when ``root`` does not hold the official four files, naming what was looked for.
    """
    files = find_fashion_files(root)
    split = "train" if train else "test"
    if split not in files:
        raise FileNotFoundError(f"{root} holds the single idx pair {next(iter(files))!r}, not the official "
                                f"{RAW_FILES[split][0]} file; read it with read_fashion_pair")  # fmt: skip
    return read_fashion_pair(*files[split], root)


def _stratified_split(labels: np.ndarray, source: Path, seed: int) -> dict[str, list[int]]:
    from sklearn.model_selection import train_test_split

    n = len(labels)
    n_train, n_val = (round(f * n) for f in PAIR_FRACTIONS[:2])
    try:
        train, rest = train_test_split(np.arange(n), train_size=n_train, stratify=labels, random_state=seed)
        val, test = train_test_split(rest, train_size=n_val, stratify=labels[rest], random_state=seed)
    except ValueError as err:
        raise ValueError(f"{source}: {n} images cannot be split stratified {n_train}/{n_val}/{n - n_train - n_val} "
                         f"({err}); give at least 7 images of every class") from None  # fmt: skip
    return {"train": sorted(train.tolist()), "val": sorted(val.tolist()), "test": sorted(test.tolist())}


def _subset(indices: list[int], size: int | None, seed: int) -> list[int]:
    if size is None or size >= len(indices):
        return indices
    return sorted(np.asarray(indices)[np.random.default_rng(seed).choice(len(indices), size, replace=False)].tolist())


def _present(root: Path) -> bool:
    try:
        return bool(find_fashion_files(root))
    except FileNotFoundError:
        return False
    except ValueError:  # several pairs: there is data, and reading it names the problem
        return True


def prepare_fashion_datalists(
    dataset_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    seed: int = 0,
    default_dataset_dir: str | os.PathLike | None = None,
    val_fraction: float = 0.1,
    max_train_images: int | None = None,
    num_synthetic: tuple[int, int] = (1200, 300),
) -> dict[str, Any]:
    """Splits the idx files in ``dataset_dir`` (either layout of :func:`find_fashion_files`) and saves the ids to
    ``<output_dir>/datalist.json``, which evaluation and resumed runs reuse.

    Official four files: train/val from the training file (by seed, ``val_fraction``), the t10k file as test. A single
    pair: a stratified train/val/test split by seed with :data:`PAIR_FRACTIONS` (600/150/150 of 900 images, 60/15/15
    per class), logged as not an official split. When ``dataset_dir`` has no idx files and equals
    ``default_dataset_dir``, a synthetic set in the official layout is generated there first (logged as synthetic).

    Args:
        dataset_dir: the folder holding the idx files (or ``FashionMNIST/raw/`` with them).
        output_dir: the run folder for ``datalist.json``.
        seed: split seed.
        default_dataset_dir: the bundle's default ``dataset_dir``.
        val_fraction: official layout: fraction of the (possibly subsampled) training images kept for validation.
        max_train_images: use a seeded random subset of this many training images (``None``: all); for a pair, of
            its training part.
        num_synthetic: (train, test) sizes of the generated default.

    Returns:
        ``{"dataset_dir", "layout", "seed", "synthetic", "train", "val", "test"}`` with item lists.
    """
    root = Path(dataset_dir)

    @functools.cache
    def arrays() -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {name: read_fashion_pair(*paths, root) for name, paths in find_fashion_files(root).items()}

    def read(_: Path) -> tuple[list[str], dict[str, Any]]:
        sources = arrays()
        layout = "official" if set(sources) == set(RAW_FILES) else "pair"
        return [f"{name}:{i}" for name, (_, y) in sources.items() for i in range(len(y))], {
            "layout": layout,
            "max_train_images": max_train_images,
        }

    def split(ids: list[str]) -> dict[str, list[str]]:
        sources = arrays()
        if set(sources) == set(RAW_FILES):
            train = _subset(list(range(len(sources["train"][1]))), max_train_images, seed)
            parts = split_items(train, (1 - val_fraction, val_fraction), seed=seed, names=("train", "val"))
            parts["test"] = list(range(len(sources["test"][1])))
            return {k: [f"{'test' if k == 'test' else 'train'}:{i}" for i in part] for k, part in parts.items()}
        (name, (_, labels)), files = next(iter(sources.items())), find_fashion_files(root)
        parts = _stratified_split(labels, files[name][1], seed)
        parts["train"] = _subset(parts["train"], max_train_images, seed)
        return {k: [f"{name}:{i}" for i in part] for k, part in parts.items()}

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
        present=_present,
        synthetic_warning="Training on SYNTHETIC FashionMNIST-format data in %s, not on FashionMNIST. "
        "Pass --dataset_dir <folder with FashionMNIST/raw/> for real work.",
        also_match={"max_train_images": max_train_images},
        log=logger,
    )
    sources = arrays()
    datalist = {k: saved.get(k) for k in ("dataset_dir", "layout", "seed", "synthetic")}
    for part in ("train", "val", "test"):
        pairs = [(i, *i.rsplit(":", 1)) for i in saved[part]]
        datalist[part] = [
            {"id": i, "image": sources[s][0][int(k)], "label": int(sources[s][1][int(k)])} for i, s, k in pairs
        ]
    counts = [len(datalist[k]) for k in ("train", "val", "test")]
    if datalist["layout"] == "pair":
        logger.warning(
            "FashionMNIST %s: one image/label pair, split stratified by class %d train / %d val / %d test (seed %d): "
            "NOT an official FashionMNIST split; split in %s",
            root, *counts, seed, Path(output_dir) / "datalist.json",
        )  # fmt: skip
    else:
        logger.info("FashionMNIST %s: %d train / %d val / %d test images; split in %s",
                    root, *counts, Path(output_dir) / "datalist.json")  # fmt: skip
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
    """Inference inputs as ``{"id", "image"}`` items: a FashionMNIST folder (its t10k images, or the images of its
    single pair; :func:`find_fashion_files`), one idx images file (plain or .gz), or image files (a folder of them or
    one file; converted to grey) with their stems as ids.

    Raises:
        FileNotFoundError: if nothing readable is found at ``input_path``.
    """
    path = Path(input_path)
    if path.is_dir() and _present(path):
        files = find_fashion_files(path)
        name = "test" if "test" in files else next(iter(files))
        return [{"id": f"{name}:{i}", "image": image} for i, image in enumerate(_grey_images(files[name][0]))]
    if path.is_file() and "idx3" in path.name:
        return [{"id": f"{path.name}:{i}", "image": image} for i, image in enumerate(_grey_images(path))]
    files = [path] if path.is_file() else sorted(path.iterdir()) if path.is_dir() else []
    files = [f for f in files if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise FileNotFoundError(f"input {path}: no FashionMNIST idx files, idx3 file or {IMAGE_SUFFIXES} images")
    return [{"id": f.stem, "image": as_grey_array(f)} for f in files]
