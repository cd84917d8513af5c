"""Hostile input, reader by reader (issue 15): one row per (reader, case), each with its exact outcome.

Every reader gets a small valid dataset; a row spoils one file of it and asserts what follows: a ``ValueError`` (or
``FileNotFoundError``) whose one line names the file and the problem, and that a bundle run prints alone
(:func:`medkit.bundle.errors.user_message`); a logged warning with the data still read; or a correct read (palette and
16-bit images). ``docs/hostile_input.md`` is this table in prose. Property-based tests then feed arbitrary bytes to
the text and npz readers.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from conftest import write_png
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from medkit.bundle.errors import user_message
from medkit.data import checks
from medkit.data.dna import prepare_dna_datalists, read_dna_dataset
from medkit.data.endo import prepare_colorization_datalists, prepare_endo_datalists
from medkit.data.fashion import RAW_FILES, as_grey_array, prepare_fashion_datalists, raw_folder, write_idx
from medkit.data.fetch import extract_archive
from medkit.data.medmnist import list_medmnist_inputs, prepare_medmnist_datalists, read_medmnist_npz
from medkit.data.nuclei import prepare_nuclei_datalists
from medkit.data.pcam import prepare_pcam_datalists
from medkit.data.retina import prepare_retina_datalists
from medkit.data.shapes import prepare_shapes_datalists
from medkit.transforms import LoadMaskUnion
from medkit.transforms.labels import LoadGreyLabel

MAPPING = {"0": {"index": 0, "name": "background"}, "85": {"index": 1, "name": "tool"}}


# ---- small valid datasets: each writes one under ``root`` and returns its files by role ------------------------------
def _rgb(seed: int, size: tuple[int, int] = (8, 8)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def _binary(value: int = 255, size: tuple[int, int] = (8, 8)) -> np.ndarray:
    mask = np.zeros(size, np.uint8)
    mask[2:5, 3:6] = value
    return mask


def _nifti(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, np.eye(4)), path)
    return path


def _save(path: Path, image: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def _dsb(root: Path) -> dict[str, Path]:
    for i, case in enumerate("abcd"):
        write_png(root / case / "images" / f"{case}.png", _rgb(i))
        write_png(root / case / "masks" / "m1.png", _binary())
    return {"image": root / "a" / "images" / "a.png", "mask": root / "a" / "masks" / "m1.png"}


def _flat(root: Path) -> dict[str, Path]:
    for i, name in enumerate("abc"):
        write_png(root / "images" / f"{name}.png", _rgb(i))
        write_png(root / "masks" / f"{name}.png", _binary())
    return {"image": root / "images" / "a.png", "mask": root / "masks" / "a.png"}


def _flat_nifti(root: Path) -> dict[str, Path]:
    for i, name in enumerate("abc"):
        _nifti(root / "images" / f"{name}.nii.gz", np.random.default_rng(i).random((8, 8), dtype=np.float32))
        _nifti(root / "masks" / f"{name}.nii.gz", (_binary() > 0).astype(np.uint8))
    return {"image": root / "images" / "a.nii.gz", "mask": root / "masks" / "a.nii.gz"}


def _drive(root: Path) -> dict[str, Path]:
    for split, word, numbers in (("training", "training", (21, 22, 23)), ("test", "test", (1,))):
        for n in numbers:
            _save(root / split / "images" / f"{n:02d}_{word}.tif", Image.fromarray(_rgb(n)))
            _save(root / split / "1st_manual" / f"{n:02d}_manual1.gif", Image.fromarray(_binary()))
            _save(root / split / "mask" / f"{n:02d}_{word}_mask.gif", Image.fromarray(np.full((8, 8), 255, np.uint8)))
    tr = root / "training"
    return {"image": tr / "images" / "21_training.tif", "label": tr / "1st_manual" / "21_manual1.gif"}


def _course(root: Path) -> dict[str, Path]:
    seg = root / "segmentation"
    for k, split in enumerate(("train", "validation", "test")):
        write_png(seg / split / "images" / f"f{k}.png", _rgb(k))
        write_png(seg / split / "labels" / f"f{k}.png", _binary(85))
    (seg / "mapping.json").write_text(json.dumps(MAPPING))
    train = seg / "train"
    return {"image": train / "images" / "f0.png", "label": train / "labels" / "f0.png", "mapping": seg / "mapping.json"}


def _endovis(root: Path) -> dict[str, Path]:
    for n in (1, 2, 3):
        seq = root / f"instrument_dataset_{n}"
        write_png(seq / "left_frames" / "frame000.png", _rgb(n))
        write_png(seq / "ground_truth" / "Bipolar_Forceps_labels" / "frame000.png", _binary())
    seq = root / "instrument_dataset_1"
    mask = seq / "ground_truth" / "Bipolar_Forceps_labels" / "frame000.png"
    return {"image": seq / "left_frames" / "frame000.png", "mask": mask}


def _colorization(root: Path) -> dict[str, Path]:
    cor = root / "colorization"
    for i, (folder, name) in enumerate((("train_cor", "a"), ("train_cor", "b"), ("validation_cor", "c"))):
        write_png(cor / folder / f"{name}.png", _rgb(i))
    write_png(cor / "train_grey" / "a.png", _rgb(0)[..., 0])
    return {"image": cor / "train_cor" / "a.png", "grey": cor / "train_grey" / "a.png"}


def _shapes(root: Path) -> dict[str, Path]:
    for i, name in enumerate("abc"):
        write_png(root / "images" / f"{name}.png", _rgb(i))
        write_png(root / "labels" / f"{name}.png", _binary(2))
    (root / "classes.json").write_text(json.dumps({"0": "background", "1": "disc", "2": "square"}))
    return {"image": root / "images" / "a.png", "label": root / "labels" / "a.png", "classes": root / "classes.json"}


def _pcam(root: Path) -> dict[str, Path]:
    for i, name in enumerate(("T_0", "T_1", "T_2", "N_0", "N_1", "N_2")):
        write_png(root / f"{name}.png", _rgb(i))
    return {"image": root / "T_0.png"}


def _npz_arrays(channels: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    shape = (8, 8) if channels == 1 else (8, 8, channels)
    return {
        f"{split}_{key}": rng.integers(0, 256, (n, *shape), dtype=np.uint8) if key == "images" else np.arange(n) % 2
        for split, n in (("train", 6), ("val", 3), ("test", 3))
        for key in ("images", "labels")
    }


def _medmnist(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True)
    np.savez(root / "breastmnist.npz", **_npz_arrays())
    return {"npz": root / "breastmnist.npz"}


def _fashion(root: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    for split, n in (("train", 10), ("test", 5)):
        images, labels = RAW_FILES[split]
        write_idx(raw_folder(root) / images, rng.integers(0, 256, (n, 8, 8), dtype=np.uint8))
        write_idx(raw_folder(root) / labels, (np.arange(n) % 10).astype(np.uint8))
    return {"images": raw_folder(root) / RAW_FILES["train"][0], "labels": raw_folder(root) / RAW_FILES["train"][1]}


_SEQUENCES = [("".join("ACGT"[(i * 7 + k) % 4] for k in range(12)), i % 2) for i in range(10)]


def _dna_csv(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True)
    rows = "".join(f"s{i},{seq},{label}\n" for i, (seq, label) in enumerate(_SEQUENCES))
    (root / "seqs.csv").write_text("id,sequence,label\n" + rows)
    return {"text": root / "seqs.csv"}


def _dna_fasta(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True)
    (root / "seqs.fa").write_text("".join(f">s{i}\n{seq}\n" for i, (seq, _) in enumerate(_SEQUENCES)))
    (root / "seqs.target").write_text("".join("1\t0\n" if label else "0\t1\n" for _, label in _SEQUENCES))
    return {"text": root / "seqs.fa", "labels": root / "seqs.target"}


def _one_mask(root: Path) -> dict[str, Path]:
    return {"mask": write_png(root / "m.png", _binary()), "label": write_png(root / "l.png", _binary(85))}


@dataclass(frozen=True)
class Reader:
    """A reader under test: ``build(root)`` writes a valid dataset, ``run(root, output_dir)`` reads it."""

    build: Callable[[Path], dict[str, Path]]
    run: Callable[[Path, Path], Any]
    main: str = "image"  # the role of the reader's main file


READERS = {
    "dsb2018": Reader(_dsb, lambda root, out: prepare_nuclei_datalists(root, out)),
    "flat": Reader(_flat, lambda root, out: prepare_nuclei_datalists(root, out)),
    "nifti": Reader(_flat_nifti, lambda root, out: prepare_nuclei_datalists(root, out)),
    "drive": Reader(_drive, lambda root, out: prepare_retina_datalists(root, out)),
    "endo": Reader(_course, lambda root, out: prepare_endo_datalists(root, out)),
    "endovis": Reader(_endovis, lambda root, out: prepare_endo_datalists(root, out)),
    "colorization": Reader(_colorization, lambda root, out: prepare_colorization_datalists(root, out)),
    "shapes": Reader(_shapes, lambda root, out: prepare_shapes_datalists(root, out)),
    "pcam": Reader(_pcam, lambda root, out: prepare_pcam_datalists(root, out)),
    "medmnist": Reader(_medmnist, lambda root, out: prepare_medmnist_datalists(root, "breastmnist", out), "npz"),
    "fashion": Reader(_fashion, lambda root, out: prepare_fashion_datalists(root, out, val_fraction=0.2), "images"),
    "csv": Reader(_dna_csv, lambda root, out: prepare_dna_datalists(root, out), "text"),
    "fasta": Reader(_dna_fasta, lambda root, out: prepare_dna_datalists(root, out), "text"),
    "LoadMaskUnion": Reader(_one_mask, lambda root, out: LoadMaskUnion()(str(next(root.glob("m.*")))), "mask"),
    "LoadGreyLabel": Reader(_one_mask, lambda root, out: LoadGreyLabel(MAPPING)(str(next(root.glob("l.*")))), "label"),
}


# ---- what a row does to its file: each returns the file the outcome must name ---------------------------------------
def zero_bytes(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def truncated(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def garbage(path: Path) -> Path:
    path.write_bytes(b"this is not what the name says " * 8)
    return path


def bad_crc(path: Path) -> Path:
    data = bytearray(path.read_bytes())
    data[data.index(b"IDAT") + 6] ^= 0xFF  # a byte of compressed pixels: the chunk CRC no longer matches
    path.write_bytes(bytes(data))
    return path


def outside_symlink(path: Path) -> Path:
    target = next(p for p in path.parents if p.name == "data").parent / "elsewhere" / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(path, target)
    path.symlink_to(target)
    return path


def smaller(path: Path) -> Path:
    with Image.open(path) as im:
        im.resize((5, 4), Image.Resampling.NEAREST).save(path)
    return path


def constant(path: Path) -> Path:
    with Image.open(path) as im:
        Image.new(im.mode, im.size, (90,) * len(im.getbands()) if len(im.getbands()) > 1 else 90).save(path)
    return path


def as_palette(path: Path) -> Path:
    """The image as palette indices whose order differs from the grey order: index 0 is white, 1 black, 2 grey 85."""
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"))
    colours = np.unique(rgb.reshape(-1, 3), axis=0)
    if len(colours) <= 3:  # masks and labels: a palette that only reads right through its colours
        colours = np.array([(255, 255, 255), (0, 0, 0), (85, 85, 85)], np.uint8)
    index = np.argmin(((rgb[:, :, None, :].astype(int) - colours[None, None]) ** 2).sum(-1), axis=-1)
    palette = Image.frombytes("P", im.size, index.astype(np.uint8).tobytes())
    palette.putpalette(colours.astype(np.uint8).ravel().tolist())
    palette.save(path)
    return path


def as_16bit(path: Path) -> Path:
    """Grey image as 16-bit PNG (values x257, so 255 becomes 65535), at the same path with a .png suffix."""
    with Image.open(path) as im:
        grey = np.asarray(im.convert("L")).astype(np.uint16) * 257
    path.unlink()
    return _save(path.with_suffix(".png"), Image.fromarray(grey))


def as_16bit_colour(path: Path) -> Path:
    """The image as a 48-bit RGB PNG (16 bits a channel, written by hand: PIL cannot write one)."""
    rgb = _pixels(path)[..., :3].astype(np.uint16) * 257
    height, width, _ = rgb.shape
    rows = b"".join(b"\0" + rgb[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    path.with_suffix(".png").write_bytes(png)
    return path.with_suffix(".png")


def replaced(make: Callable[[Path], Path]) -> Callable[[Path], Path]:
    """Replaces the file by what ``make(path)`` writes (possibly under another name)."""

    def mutate(path: Path) -> Path:
        new = make(path)
        if new != path:
            path.unlink()
        return new

    return mutate


def added(make: Callable[[Path], Path]) -> Callable[[Path], Path]:
    """Keeps the file and adds what ``make(path)`` writes."""
    return make


def removed(other: Callable[[Path], Path], named: Callable[[Path], Path] = lambda p: p) -> Callable[[Path], Path]:
    """Removes the file or folder ``other(path)``; the outcome names ``named(path)``."""

    def mutate(path: Path) -> Path:
        target = other(path)
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        return named(path)

    return mutate


def text(content: str | bytes) -> Callable[[Path], Path]:
    """Replaces the file's content by ``content``."""

    def mutate(path: Path) -> Path:
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    return mutate


def npz(**changes: Any) -> Callable[[Path], Path]:
    """Rewrites the npz with some arrays changed (``None``: left out)."""

    def mutate(path: Path) -> Path:
        arrays = {**_npz_arrays(), **changes}
        np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
        return path

    return mutate


def idx(array: np.ndarray) -> Callable[[Path], Path]:
    """Rewrites the idx file with ``array``."""
    return lambda path: write_idx(path, array)


def image(array: np.ndarray | Image.Image, name: str) -> Callable[[Path], Path]:
    """Writes ``array`` as the image ``name`` next to the file."""

    def make(path: Path) -> Path:
        im = array if isinstance(array, Image.Image) else Image.fromarray(array)
        return _save(path.with_name(name), im)

    return make


def nifti(array: np.ndarray, name: str | None = None) -> Callable[[Path], Path]:
    """Writes ``array`` as a NIfTI file (the file itself, or ``name`` next to it)."""
    return lambda path: _nifti(path.with_name(name or path.name), array)


_NAN = np.where(np.eye(8, dtype=bool), np.nan, 0.5).astype(np.float32)
_HALF = np.where(_binary() > 0, 0.5, 0).astype(np.float32)
_NEGATIVE = np.where(_binary() > 0, -1, 0).astype(np.int32)
_CMYK = Image.new("CMYK", (8, 8), (10, 20, 30, 40))
_LA_MASK = Image.merge("LA", (Image.fromarray(_binary()), Image.new("L", (8, 8), 255)))
_RAMP = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
_GREY_16BIT = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
_ODD_16BIT = np.where(_binary() > 0, 1000, 0).astype(np.uint16)
_HUGE_LINE = "x" * (checks.MAX_LINE_BYTES + 10)


def _long_row(path: Path) -> Path:
    with path.open("a") as f:
        f.write(f"long,{'A' * 200_000},1\n")  # over csv's default field limit of 128 KiB
    return path


def _header_labels(bad: int) -> Callable[[Path], Path]:
    def mutate(path: Path) -> Path:
        path.with_suffix(".target").unlink()
        path.write_text(
            "".join(f">s{i} label={bad if i == 3 else i % 2}\n{seq}\n" for i, (seq, _) in enumerate(_SEQUENCES))
        )
        return path

    return mutate


# ---- outcomes --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fails:
    """One line naming the file and matching ``problem``, that a bundle run prints alone."""

    problem: str
    error: type[Exception] = ValueError


@dataclass(frozen=True)
class Warns:
    """A logged warning naming the file and matching ``problem``; the data is still read."""

    problem: str


@dataclass(frozen=True)
class Reads:
    """Read correctly: ``check(result, file)`` holds."""

    check: Callable[[Any, Path], None]


def _item(datalist: dict[str, Any], path: Path, key: str) -> dict[str, Any]:
    """The datalist item read from ``path``: the file itself, or its converted copy ``<stem>-<digest>.png``."""
    items = [i for part in ("train", "val", "test") for i in datalist.get(part, [])]
    return next(i for i in items if Path(i[key]) == path.resolve() or Path(i[key]).stem.startswith(f"{path.stem}-"))


def _by_id(datalist: dict[str, Any], item_id: str) -> dict[str, Any]:
    return next(i for part in ("train", "val", "test") for i in datalist[part] if i["id"] == item_id)


def _pixels(path: str | Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def reads_palette_colours(key: str = "image", mode: str = "RGB") -> Reads:
    """The datalist points at a file holding the palette's colours (MONAI's PILReader would give the indices)."""

    def check(datalist: dict[str, Any], path: Path) -> None:
        with Image.open(path) as im:
            assert im.mode == "P"
            expected = np.asarray(im.convert(mode))
        np.testing.assert_array_equal(_pixels(_item(datalist, path, key)[key]), expected)

    return Reads(check)


def reads_16bit_as_8bit(key: str = "image") -> Reads:
    """The datalist points at an 8-bit copy holding the 16-bit values / 257 (PIL's convert would clip them at 255)."""

    def check(datalist: dict[str, Any], path: Path) -> None:
        copy = _pixels(_item(datalist, path, key)[key])
        np.testing.assert_array_equal(copy, np.round(_pixels(path) / 257).astype(np.uint8))
        assert copy.dtype == np.uint8 and copy.max() > 200  # not clipped to white, not scaled to black

    return Reads(check)


def reads_as_is(key: str = "image", mode: str | None = None) -> Reads:
    """The datalist points at the file itself (of PIL mode ``mode`` when given)."""

    def check(datalist: dict[str, Any], path: Path) -> None:
        assert Path(_item(datalist, path, key)[key]) == path.resolve()
        with Image.open(path) as im:
            assert mode is None or im.mode == mode

    return Reads(check)


def mask_reads(expected: np.ndarray, transposed: bool = True) -> Reads:
    """The loaded ``(1, W, H)`` mask (``(1, H, W)`` when not ``transposed``) equals ``expected`` ``(H, W)``."""

    def check(mask: Any, path: Path) -> None:
        loaded = np.asarray(mask[0])
        np.testing.assert_array_equal(loaded.T if transposed else loaded, expected)

    return Reads(check)


def _shared(case: str, mutate: Callable[[Path], Path], outcome: Any, places: str) -> list[tuple]:
    """One case for several readers; ``places`` lists ``reader`` or ``reader/role`` (default: the reader's main
    file). The row id names the role when it is not the main one (``dsb2018-mask-zero-byte``)."""
    rows = []
    for place in places.split():
        reader, _, role = place.partition("/")
        rows.append((reader, role or READERS[reader].main, f"{role}-{case}" if role else case, mutate, outcome))
    return rows


# cases that end the same way in every reader they apply to
SHARED_ROWS = [
    *_shared(
        "zero-byte",
        zero_bytes,
        Fails("file is empty"),
        "dsb2018 dsb2018/mask flat nifti drive endo endo/mapping "
        "endovis/mask colorization shapes pcam medmnist fashion csv fasta LoadMaskUnion",
    ),
    *_shared(
        "truncated",
        truncated,
        Fails("cannot read .*, truncated or corrupt"),
        "dsb2018 dsb2018/mask flat drive drive/label endo endo/label endovis shapes pcam",
    ),
    *_shared("not-an-image", garbage, Fails("cannot read"), "dsb2018 flat/mask nifti pcam LoadMaskUnion"),
    *_shared(
        "size-mismatch",
        smaller,
        Fails("size 5x4 differs from image .* size 8x8"),
        "dsb2018/mask flat/mask drive/label endo/label endovis/mask colorization/grey shapes/label",
    ),
    *_shared(
        "constant",
        constant,
        Warns(r"is constant \(every pixel \(90, 90, 90\)\); kept"),
        "dsb2018 flat drive endo endovis shapes pcam",
    ),
    *_shared(
        "symlink-out",
        outside_symlink,
        Fails("symlink to .*, outside the dataset folder"),
        "dsb2018 dsb2018/mask flat/mask drive endo shapes pcam medmnist fashion fasta",
    ),
    *_shared("nan", replaced(image(_NAN, "a.tif")), Fails("image holds NaN or infinite values"), "dsb2018 flat"),
    *_shared("16-bit", as_16bit, reads_as_is(mode="I;16"), "dsb2018 flat"),
    *_shared("16-bit", as_16bit, reads_16bit_as_8bit(), "shapes pcam"),
    *_shared("palette", as_palette, reads_palette_colours(), "dsb2018 flat drive endo"),
    *_shared("palette", as_palette, reads_as_is(mode="P"), "shapes pcam"),
    *_shared("palette", as_palette, reads_as_is("label", mode="P"), "shapes/label flat/mask endo/label"),
]

# cases particular to one reader, by reader
READER_ROWS = [
    ("dsb2018", "image", "corrupt-crc", bad_crc, Fails("cannot read image, truncated or corrupt")),
    ("dsb2018", "image", "two-images", added(image(_rgb(5), "a2.png")), Fails("expected exactly one image, found 2")),
    ("dsb2018", "image", "no-masks", removed(lambda p: p.parents[1] / "masks"), Fails("image has no masks")),
    (
        "dsb2018",
        "image",
        "masks-without-image",
        removed(lambda p: p.parent, lambda p: p.parents[1]),
        Warns("masks/ but no images/ left out"),
    ),
    ("dsb2018", "image", "cmyk", replaced(image(_CMYK, "a.tif")), Fails("image is PIL mode CMYK; expected a grey")),
    ("flat", "mask", "image-without-mask", removed(lambda p: p), Fails("image has no mask")),
    ("flat", "image", "duplicate-id", added(image(_rgb(7), "a.tif")), Fails("duplicate id 'a', also used by")),
    ("flat", "mask", "mask-without-image", added(image(_binary(), "z.png")), Warns("have no image and are left out")),
    ("flat", "mask", "duplicate-mask-id", added(image(_binary(), "a.tif")), Fails("duplicate id 'a'")),
    ("flat", "mask", "mask-rgb", replaced(image(np.dstack([_binary()] * 3), "a.png")), reads_as_is("label")),
    ("flat", "mask", "mask-fraction", replaced(image(_HALF, "a.tif")), Fails("mask value 0.5 is outside the label")),
    ("flat", "mask", "mask-negative", replaced(image(_NEGATIVE, "a.tif")), Fails("mask value -1 is outside")),
    ("nifti", "image", "truncated", truncated, Fails("(cannot read image|image is truncated)")),
    ("nifti", "mask", "mask-fraction", replaced(nifti(_HALF)), Fails("mask value 0.5 is outside the label set")),
    ("nifti", "image", "nan", replaced(nifti(_NAN)), Fails("image holds NaN or infinite values")),
    ("nifti", "mask", "size-mismatch", replaced(nifti(np.zeros((5, 4), np.uint8))), Fails("mask size 5x4 differs")),
    ("nifti", "image", "volume", replaced(nifti(np.ones((8, 8, 3), np.float32))), Fails("is a volume of shape")),
    ("nifti", "image", "constant", replaced(nifti(np.ones((8, 8), np.float32))), Warns("constant.*kept")),
    ("drive", "label", "label-0-1", replaced(image(_binary(1), "21_manual1.gif")), Fails(r"values \[1\] are outside")),
    ("drive", "label", "image-without-label", removed(lambda p: p), Fails("image has no label files matching")),
    ("drive", "image", "duplicate-id", added(image(_rgb(9), "21_copy.tif")), Fails("duplicate id '21'")),
    ("drive", "label", "label-without-image", added(image(_binary(), "29_manual1.gif")), Warns("label file.*left out")),
    ("drive", "image", "grey", replaced(image(_rgb(1)[..., 0], "21_training.tif")), Fails("is PIL mode L; expected")),
    ("drive", "image", "16-bit-grey", replaced(image(_GREY_16BIT, "21_training.tif")), Fails("mode I;16; expected")),
    ("endo", "image", "duplicate-id", added(image(_rgb(3), "f0.jpg")), Fails("duplicate id 'f0'")),
    ("endo", "label", "grey-not-in-mapping", replaced(image(_binary(7), "f0.png")), Fails("grey value 7 is not in")),
    ("endo", "label", "frame-without-label", removed(lambda p: p), Fails("frame has no label image")),
    ("endo", "image", "grey-frame", replaced(image(_rgb(1)[..., 0], "f0.png")), Fails("frame is PIL mode L; expect")),
    ("endo", "label", "label-without-frame", added(image(_binary(85), "zz.png")), Warns("have no image and are left")),
    ("endo", "label", "colour-label", replaced(image(_rgb(2), "f0.png")), Fails("label image has colour pixels")),
    ("endo", "image", "16-bit-colour-frame", as_16bit_colour, reads_as_is(mode="RGB")),
    ("endo", "label", "16-bit-label", as_16bit, reads_as_is("label", mode="I;16")),
    ("endo", "image", "16-bit-grey-frame", as_16bit, Fails("frame is PIL mode I;16; expected an RGB")),
    ("endo", "mapping", "mapping-not-utf8", text(b'{"0": 0, "85": 1} \xff'), Fails("not UTF-8 text")),
    ("endo", "mapping", "mapping-duplicate-key", text('{"0": 0, "85": 1, "85": 0}'), Fails("duplicate key '85'")),
    ("endo", "mapping", "mapping-not-json", text('{"0": 0,'), Fails("not valid JSON")),
    ("endo", "mapping", "mapping-same-grey", text('{"0": 0, "85": 1, "085": 1}'), Fails("grey value 85 is listed")),
    ("endo", "mapping", "mapping-gap", text('{"0": 0, "85": 2}'), Fails("indices must run from 0 without gaps")),
    ("endovis", "mask", "frame-without-mask", removed(lambda p: p), Fails("no instruments_masks/frame000.png")),
    ("endovis", "image", "duplicate-id", added(image(_rgb(4), "frame000.jpg")), Fails("duplicate id 'frame000'")),
    ("endovis", "mask", "mask-without-frame", added(image(_binary(), "frame009.png")), Warns("have no frame")),
    ("colorization", "image", "duplicate-id", added(image(_rgb(1), "a.jpg")), Fails("duplicate id 'a'")),
    ("colorization", "image", "grey-frame", replaced(image(_rgb(1)[..., 0], "a.png")), Fails("mode L; expected")),
    ("colorization", "grey", "palette-grey", as_palette, reads_palette_colours("grey", "L")),
    ("colorization", "grey", "16-bit-grey", as_16bit, reads_16bit_as_8bit("grey")),
    ("shapes", "label", "rgb-label", replaced(image(_rgb(0), "a.png")), Fails("single-channel class-index image")),
    ("shapes", "label", "image-without-label", removed(lambda p: p), Fails("image has no label")),
    ("shapes", "label", "label-out-of-range", replaced(image(_binary(7), "a.png")), Fails(r"values \[7\] are not in")),
    ("shapes", "label", "label-without-image", added(image(_binary(1), "zz.png")), Warns("have no image and are")),
    ("shapes", "label", "duplicate-label-id", added(image(_binary(1), "a.tif")), Fails("duplicate id 'a'")),
    ("shapes", "classes", "classes-not-utf8", text(b'{"0": "b\xe9", "1": "x"}'), Fails("not UTF-8 text")),
    ("shapes", "classes", "classes-duplicate-key", text('{"0": "a", "1": "b", "1": "c"}'), Fails("duplicate key")),
    ("pcam", "image", "float", replaced(image(_RAMP, "T_0.tif")), Fails("patch is PIL mode F; expected an 8- or 16")),
    ("pcam", "image", "unlabelled-name", added(image(_rgb(1), "X_0.png")), Fails("patch names must be T_<n>")),
    ("medmnist", "npz", "wrong-magic", garbage, Fails("not an .npz file")),
    ("medmnist", "npz", "truncated", truncated, Fails("corrupt or truncated .npz")),
    ("medmnist", "npz", "missing-array", npz(val_labels=None), Fails(r"lacks arrays \['val_labels'\]")),
    ("medmnist", "npz", "pickled", npz(train_labels=np.array([{}] * 6)), Fails("Python objects")),
    ("medmnist", "npz", "float-images", npz(train_images=_NAN[None].repeat(6, 0)), Fails("dtype float32; expected")),
    ("medmnist", "npz", "16-bit", npz(train_images=np.full((6, 8, 8), 999, np.uint16)), Fails("outside 0-255")),
    ("medmnist", "npz", "channels", npz(train_images=_npz_arrays(3)["train_images"]), Fails("expects 1 channels")),
    ("medmnist", "npz", "shape", npz(train_images=np.zeros((6, 8), np.uint8)), Fails(r"has shape \(6, 8\)")),
    ("medmnist", "npz", "count-mismatch", npz(train_labels=np.zeros(5, int)), Fails("6 train images but 5 labels")),
    ("medmnist", "npz", "label-out-of-range", npz(test_labels=np.array([0, 1, 2])), Fails("test labels outside")),
    ("medmnist", "npz", "label-negative", npz(test_labels=np.array([0, -1, 1])), Fails("negative label -1")),
    ("medmnist", "npz", "label-fraction", npz(test_labels=np.array([0, 0.5, 1])), Fails("not integer class")),
    ("medmnist", "npz", "label-huge", npz(test_labels=np.array([0, 1e300, 1])), Fails("indices are small integers")),
    ("medmnist", "npz", "constant", npz(val_images=np.zeros((3, 8, 8), np.uint8)), Warns("3 of 3 images are const")),
    ("fashion", "images", "wrong-magic", garbage, Fails("is not an idx file")),
    ("fashion", "images", "damaged-gzip", text(b"\x1f\x8b\x08\x00rest"), Fails("damaged gzip file")),
    ("fashion", "images", "truncated", truncated, Fails(r"328 bytes, but the header \(10, 8, 8\) uint8 needs 656")),
    ("fashion", "images", "short-header", text(b"\x00\x00\x08\x03\x00\x00"), Fails("too short for the 3 dimensions")),
    ("fashion", "images", "float", idx(np.zeros((10, 8, 8), np.float32)), Fails("images are float32")),
    ("fashion", "labels", "labels-2d", idx(np.zeros((10, 2), np.uint8)), Fails(r"labels are uint8 \(10, 2\)")),
    ("fashion", "labels", "count-mismatch", idx(np.zeros(9, np.uint8)), Fails("9 labels for 10 images")),
    ("fashion", "labels", "label-out-of-range", idx(np.full(10, 10, np.uint8)), Fails("label 10 is out of range")),
    ("fashion", "images", "constant", idx(np.zeros((10, 8, 8), np.uint8)), Warns("10 of 10 images are constant")),
    ("csv", "text", "not-utf8", text(b"id,sequence,label\ns1,ACGT,1\ns2,AC\xffGT,0\n"), Fails(":3: not UTF-8 text")),
    ("csv", "text", "nul-byte", text(b"id,sequence,label\ns1,AC\x00GT,1\n"), Fails(":2: NUL byte")),
    ("csv", "text", "huge-line", text(f"id,sequence,label\ns1,{_HUGE_LINE},1\n"), Fails(":2: line longer than")),
    ("csv", "text", "long-field", added(_long_row), Reads(lambda d, p: len(_by_id(d, "long")["sequence"]) == 200_000)),
    ("csv", "text", "bare-cr", text("id,sequence,label\ns1,AC\rGT,1\n"), Fails(":2: malformed ','-separated row")),
    ("csv", "text", "duplicate-id", text("id,sequence,label\ns1,ACGT,1\ns1,AAAA,0\ns2,CC,1\n"), Fails("duplicate id")),
    ("csv", "text", "label-out-of-range", text("id,sequence,label\ns1,ACGT,2\n"), Fails(":2: label '2' is out of")),
    ("csv", "text", "label-not-int", text("id,sequence,label\ns1,ACGT,yes\n"), Fails(":2: label 'yes' is not an")),
    ("csv", "text", "no-label-column", text("id,sequence\ns1,ACGT\n"), Fails("no label column 'label'")),
    ("csv", "text", "header-only", text("id,sequence,label\n"), Fails("no sequences")),
    ("csv", "text", "bad-base", text("id,sequence,label\ns1,ACXT,1\ns2,AC,0\n"), Fails("invalid character 'X'")),
    ("fasta", "text", "not-utf8", text(b">s1\nAC\xc3GT\n"), Fails(":2: not UTF-8 text")),
    ("fasta", "labels", "labels-not-utf8", text(b"1\t0\n\xff\n"), Fails(":2: not UTF-8 text")),
    ("fasta", "text", "huge-line", text(f">s1\n{_HUGE_LINE}\n"), Fails(":2: line longer than")),
    ("fasta", "labels", "count-mismatch", text("1\t0\n0\t1\n"), Fails("2 labels for 10 sequences")),
    ("fasta", "text", "duplicate-id", text(">s1\nACGT\n" * 10), Fails("duplicate id 's1'")),
    ("fasta", "labels", "label-out-of-range", text("1\t0\n" * 9 + "3\n"), Fails(":10: label '3' is out of range")),
    ("fasta", "text", "header-label-out-of-range", _header_labels(5), Fails("label '5' is out of range")),
    ("fasta", "labels", "bad-label-row", text("1\t0\n" * 9 + "1\t1\n"), Fails(":10: expected one label")),
    ("fasta", "text", "no-records", text(";only a comment\n"), Fails("no FASTA records")),
    ("fasta", "text", "text-before-header", text("ACGT\n>s1\nACGT\n"), Fails(":1: sequence before the first")),
    ("LoadMaskUnion", "mask", "fraction", replaced(image(_HALF, "m.tif")), Fails("mask value 0.5 is outside")),
    ("LoadMaskUnion", "mask", "nan", replaced(image(_NAN, "m.tif")), Fails("mask value nan is outside")),
    ("LoadMaskUnion", "mask", "negative", replaced(image(_NEGATIVE, "m.tif")), Fails("mask value -1 is outside")),
    ("LoadMaskUnion", "mask", "palette", as_palette, mask_reads(_binary() > 0)),
    ("LoadMaskUnion", "mask", "grey-alpha", replaced(image(_LA_MASK, "m.png")), mask_reads(_binary() > 0)),
    ("LoadMaskUnion", "mask", "16-bit", as_16bit, mask_reads(_binary() > 0)),
    ("LoadGreyLabel", "label", "palette", as_palette, mask_reads(_binary(1), transposed=False)),
    ("LoadGreyLabel", "label", "16-bit", as_16bit, mask_reads(_binary(1), transposed=False)),
    ("LoadGreyLabel", "label", "16-bit-odd", replaced(image(_ODD_16BIT, "l.png")), Fails("x257")),
    ("LoadGreyLabel", "label", "grey-not-in-mapping", replaced(image(_binary(9), "l.png")), Fails("grey value 9")),
]
ROWS = SHARED_ROWS + READER_ROWS


@pytest.mark.parametrize(
    "reader,role,mutate,outcome", [row[:2] + row[3:] for row in ROWS], ids=[f"{r[0]}-{r[2]}" for r in ROWS]
)
def test_hostile_input(tmp_path: Path, caplog: pytest.LogCaptureFixture, reader, role, mutate, outcome) -> None:
    spec = READERS[reader]
    root = tmp_path / "data" / "set"
    target = mutate(spec.build(root)[role])
    caplog.set_level(logging.INFO)
    if isinstance(outcome, Fails):
        with pytest.raises(outcome.error) as info:
            spec.run(root, tmp_path / "run")
        message = str(info.value)
        assert target.name in message and re.search(outcome.problem, message), message
        assert user_message(info.value) is not None, "not raised by medkit: a bundle run would print a traceback"
        assert "\n" not in message
        return
    result = spec.run(root, tmp_path / "run")
    if isinstance(outcome, Warns):
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any(target.name in w and re.search(outcome.problem, w) for w in warnings), warnings
    else:
        assert outcome.check(result, target) in (None, True)


def test_every_row_is_in_the_docs_table():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "hostile_input.md").read_text()
    listed = set(re.findall(r"^\| `([\w-]+)` \|", doc, flags=re.MULTILINE))
    assert listed == {f"{row[0]}-{row[2]}" for row in ROWS}


def test_16bit_inference_images_are_scaled_not_clipped(tmp_path: Path):
    grey = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    path = _save(tmp_path / "in" / "x.png", Image.fromarray(grey))
    expected = np.round(grey / 257).astype(np.uint8)
    np.testing.assert_array_equal(as_grey_array(path), expected)
    [item] = list_medmnist_inputs(tmp_path / "in", "breastmnist", size=8)
    np.testing.assert_array_equal(item["image"][0], expected)


# ---- fetchers: archives with members outside the extraction folder --------------------------------------------------
def _archive(path: Path, name: str, link: bool = False) -> Path:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("ok/a.txt", b"x")
            zf.writestr(name, b"evil")
        return path
    with tarfile.open(path, "w") as tf:
        info = tarfile.TarInfo(name)
        if link:
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        else:
            info.size = 4
        tf.addfile(info, None if link else __import__("io").BytesIO(b"evil"))
    return path


@pytest.mark.parametrize(
    "archive,member,problem",
    [
        ("a.zip", "../evil", "unsafe member '../evil' .*absolute paths and '..' are not allowed"),
        ("a.tar", "../evil", "unsafe member '../evil' .*absolute paths and '..' are not allowed"),
        ("a.zip", "ok/../../evil", "unsafe member 'ok/../../evil'"),
        ("a.tar", "/tmp/evil", "unsafe member '/tmp/evil'"),
    ],
    ids=["zip-dotdot", "tar-dotdot", "zip-nested-dotdot", "tar-absolute"],
)
def test_archive_members_outside_the_folder_are_refused(tmp_path: Path, archive: str, member: str, problem: str):
    path = _archive(tmp_path / archive, member)
    with pytest.raises(ValueError, match=problem) as info:
        extract_archive(path, tmp_path / "out" / "x")
    assert archive in str(info.value) and user_message(info.value) is not None
    assert not (tmp_path / "out" / "evil").exists() and not (tmp_path / "evil").exists()


def test_tar_symlink_member_is_refused(tmp_path: Path):
    path = _archive(tmp_path / "a.tar", "link", link=True)
    with pytest.raises(ValueError, match="unsafe member 'link' in archive .*a.tar: links are not allowed"):
        extract_archive(path, tmp_path / "out")


# ---- property-based: arbitrary bytes never give anything but a clean medkit error or a valid result -----------------
def _clean_error_or_valid(read: Callable[[], Any], path: Path, valid: Callable[[Any], None]) -> None:
    try:
        result = read()
    except (ValueError, FileNotFoundError) as exc:
        assert user_message(exc) is not None, f"{type(exc).__name__} not raised by medkit: {exc}"
        assert path.name in str(exc) or path.parent.name in str(exc), str(exc)
        return
    valid(result)


def _valid_dna(items: list[dict[str, Any]]) -> None:
    assert items and len({i["id"] for i in items}) == len(items)
    for item in items:
        assert re.fullmatch("[ACGTN]+", item["sequence"]) and item.get("label", 0) in (0, 1)


_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_TEXTY = st.one_of(
    st.binary(max_size=300),
    st.text(alphabet=st.sampled_from(list("ACGTN>;,\t\n\r 01id=label|x\x00é")), max_size=300).map(str.encode),
)


@_FUZZ
@given(data=_TEXTY, suffix=st.sampled_from([".csv", ".tsv", ".fa"]))
def test_text_readers_on_arbitrary_bytes(tmp_path: Path, data: bytes, suffix: str):
    path = tmp_path / f"seqs{suffix}"
    path.write_bytes(data)
    _clean_error_or_valid(lambda: read_dna_dataset(path, require_labels=False), path, _valid_dna)


@_FUZZ
@given(fasta=st.text(alphabet=st.sampled_from(list(">ACGTs1\n")), max_size=120), target=_TEXTY)
def test_fasta_with_arbitrary_target_file(tmp_path: Path, fasta: str, target: bytes):
    path = tmp_path / "seqs.fa"
    path.write_text(fasta)
    path.with_suffix(".target").write_bytes(target)
    _clean_error_or_valid(lambda: read_dna_dataset(path), path, _valid_dna)


def _valid_splits(splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    for images, labels in splits.values():
        assert images.dtype == np.uint8 and images.ndim == 4 and images.shape[1] in (1, 3)
        assert labels.dtype == np.int64 and len(labels) == len(images) and (labels >= 0).all()


@_FUZZ
@given(data=st.binary(max_size=400))
def test_npz_reader_on_arbitrary_bytes(tmp_path: Path, data: bytes):
    path = tmp_path / "x.npz"
    path.write_bytes(data)
    _clean_error_or_valid(lambda: read_medmnist_npz(path), path, _valid_splits)
    _clean_error_or_valid(lambda: list_medmnist_inputs(path, "breastmnist"), path, lambda items: None)


_ARRAYS = hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.int16, np.int64, np.float32, np.float64, np.bool_]),
    shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4),
)


@_FUZZ
@given(arrays=st.fixed_dictionaries({key: _ARRAYS for key in _npz_arrays()}))
def test_npz_reader_on_arbitrary_arrays(tmp_path: Path, arrays: dict[str, np.ndarray]):
    path = tmp_path / "x.npz"
    np.savez(path, **arrays)
    _clean_error_or_valid(lambda: read_medmnist_npz(path, "breastmnist"), path, _valid_splits)


@_FUZZ
@given(data=st.binary(min_size=1, max_size=300))
def test_npz_with_a_corrupted_byte(tmp_path: Path, data: bytes):
    path = tmp_path / "x.npz"
    np.savez(path, **_npz_arrays())
    raw = bytearray(path.read_bytes())
    at = data[0] * len(raw) // 256
    raw[at : at + len(data) - 1] = data[1:]
    path.write_bytes(bytes(raw))
    _clean_error_or_valid(lambda: read_medmnist_npz(path, "breastmnist"), path, _valid_splits)
