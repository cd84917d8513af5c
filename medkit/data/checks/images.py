"""Image checks shared by the dataset readers and loaders: readable and complete, no NaN, constant images logged,
modes the bundle's loader reads (8-bit copies of palette and 16-bit images where it would misread them), mask and
label values in their label set, and sizes that match."""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from medkit.data.checks.files import check_file

__all__ = [
    "ANY_8BIT",
    "COLOUR",
    "GREY_8BIT",
    "GREY_OR_COLOUR",
    "ImageInfo",
    "ImagePolicy",
    "check_image",
    "check_mask_values",
    "check_same_size",
    "inspect_image",
    "mask_foreground",
    "read_grey_label",
    "read_label_values",
    "to_8bit",
    "warn_constant_images",
]

logger = logging.getLogger(__name__)

NIFTI_EXTENSIONS = (".nii", ".nii.gz")
_WIDE = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # 16- and 32-bit integer grey; "I" is what some PNG readers give
_ALPHA_MODES = ("LA", "PA", "RGBA", "La", "RGBa")


class ImageInfo(NamedTuple):
    """What :func:`inspect_image` found: ``size`` is (width, height), or the first two NIfTI axes."""

    path: Path
    size: tuple[int, int]
    mode: str  # PIL mode, or "nifti"
    shape: tuple[int, ...] = ()  # NIfTI only


@dataclass(frozen=True)
class ImagePolicy:
    """Which PIL modes a bundle's image loader reads correctly as they are, and which it reads from an 8-bit copy.

    Attributes:
        expected: what the loader expects, for error messages.
        modes: PIL modes read as they are.
        copy_as: PIL mode -> mode of the 8-bit copy read instead (palette images, which MONAI's ``PILReader`` reads
            as palette indices; 16-bit images where the bundle scales 0-255).
        nifti: whether 2D NIfTI images are read.
    """

    expected: str
    modes: frozenset[str]
    copy_as: Mapping[str, str] = field(default_factory=dict)
    nifti: bool = False


_EIGHT_BIT = frozenset({"1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr"})
GREY_OR_COLOUR = ImagePolicy(
    "a grey or RGB(A) image", frozenset({"1", "L", "LA", "RGB", "RGBA", "F", *_WIDE}), {"P": "RGB", "PA": "RGB"}, True
)
COLOUR = ImagePolicy("an RGB(A) colour image", frozenset({"RGB", "RGBA"}), {"P": "RGB", "PA": "RGB"})
ANY_8BIT = ImagePolicy("an 8- or 16-bit grey or colour image", _EIGHT_BIT, {mode: "L" for mode in _WIDE})
GREY_8BIT = ImagePolicy(
    "a grey image", frozenset({"L", "LA"}), {m: "L" for m in ("1", "P", "PA", "RGB", "RGBA", *_WIDE)}
)


def _cannot_read(path: Path, what: str, exc: BaseException) -> ValueError:
    return ValueError(f"{path}: cannot read {what}, truncated or corrupt ({type(exc).__name__}: {exc})")


def _decode(path: Path) -> Image.Image:
    """Decodes the whole image (a JPEG at 1/8 scale): PIL raises on truncated or corrupt data only when decoding."""
    im = Image.open(path)
    if im.format == "JPEG":
        im.draft(im.mode, (max(1, im.size[0] // 8), max(1, im.size[1] // 8)))
    im.load()
    return im


def _check_pixels(im: Image.Image, path: Path, what: str) -> None:
    if im.mode == "F":
        values = np.asarray(im)
        if not np.isfinite(values).all():
            raise ValueError(f"{path}: {what} holds NaN or infinite values")
        bands = [(values.min(), values.max())]
    else:
        extrema = im.getextrema() if len(im.getbands()) > 1 else (im.getextrema(),)
        bands = [band for name, band in zip(im.getbands(), extrema) if name not in ("A", "a")]
    if all(low == high for low, high in bands):
        value = tuple(low for low, _ in bands) if len(bands) > 1 else bands[0][0]
        logger.warning("%s: %s is constant (every pixel %s); kept, but check it", path, what, value)


def inspect_image(path: str | os.PathLike, *, decode: bool = True, what: str = "image") -> ImageInfo:
    """Opens an image or 2D/3D NIfTI file and checks it can be read, without keeping its pixels.

    With ``decode`` the pixels are decoded once: a truncated or corrupt file fails, NaN or infinite values fail, and a
    constant image is logged as a warning and kept (a blank frame is legal but usually a mistake). Without it, PNGs
    are only CRC-checked and NIfTI files only size-checked against their header (for many small masks).

    Raises:
        ValueError: one line naming the file and the problem (empty, not an image, truncated or corrupt, NaN).
    """
    path = check_file(path)
    if path.name.lower().endswith(NIFTI_EXTENSIONS):
        return _inspect_nifti(path, decode, what)
    try:
        with Image.open(path) as im:
            mode, size, png = im.mode, im.size, im.format == "PNG"
            if png:
                im.verify()  # chunk CRCs, without decompressing
        decoded = _decode(path) if decode or not png else None
    except Exception as exc:  # PIL raises OSError, SyntaxError, struct.error, DecompressionBombError, ... on bad files
        raise _cannot_read(path, what, exc) from None
    if decoded is not None:
        with decoded:
            if decode:
                _check_pixels(decoded, path, what)
    return ImageInfo(path, size, mode)


def _inspect_nifti(path: Path, decode: bool, what: str) -> ImageInfo:
    import nibabel as nib

    try:
        image = nib.load(str(path))
        shape, dtype, offset = tuple(image.shape), image.get_data_dtype(), int(image.dataobj.offset)
    except Exception as exc:  # nibabel raises ImageFileError, EOFError, OSError, ... on bad files
        raise _cannot_read(path, what, exc) from None
    needed = offset + math.prod(shape) * dtype.itemsize
    if path.name.lower().endswith(".gz"):
        with open(path, "rb") as f:  # gzip ends with the uncompressed size modulo 2**32: a cheap truncation check
            f.seek(-4, os.SEEK_END)
            stored, needed = int.from_bytes(f.read(4), "little"), needed % 2**32
            truncated = stored != needed
    else:
        stored = path.stat().st_size
        truncated = stored < needed
    if truncated:
        raise ValueError(f"{path}: {what} is truncated: its header {shape} {dtype} needs {needed} bytes, got {stored}")
    if decode:
        try:
            values = np.asanyarray(image.dataobj)
        except Exception as exc:  # a corrupt gzip stream fails only here
            raise _cannot_read(path, what, exc) from None
        if values.dtype.kind in "fc" and not np.isfinite(values).all():
            raise ValueError(f"{path}: {what} holds NaN or infinite values")
        if values.size and values.min() == values.max():
            logger.warning("%s: %s is constant (every voxel %s); kept, but check it", path, what, values.flat[0])
    return ImageInfo(path, (shape + (1, 1))[:2], "nifti", shape)


def to_8bit(im: Image.Image, path: str | os.PathLike = "") -> Image.Image:
    """``im`` as an 8-bit image: 16-bit grey is scaled by 1/257 (so 65535 becomes 255); other modes are returned.

    PIL's own ``convert("L")`` clips 16-bit values at 255, which turns most of a 16-bit image white.

    Raises:
        ValueError: for 32-bit values outside 0-65535, naming ``path``.
    """
    if im.mode not in _WIDE:
        return im
    values = np.asarray(im)
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise ValueError(f"{path}: grey values {values.min()}..{values.max()} are outside the 16-bit range 0-65535")
    return Image.fromarray(np.round(values / 257.0).astype(np.uint8))


def check_image(
    path: str | os.PathLike, policy: ImagePolicy, converted_dir: str | os.PathLike | None = None, what: str = "image"
) -> tuple[str, ImageInfo]:
    """Inspects an image (see :func:`inspect_image`) and checks its mode against what the bundle's loader reads.

    Args:
        path: the image file.
        policy: what the bundle's loader reads (:data:`GREY_OR_COLOUR`, :data:`COLOUR`, :data:`ANY_8BIT`,
            :data:`GREY_8BIT`).
        converted_dir: the folder for 8-bit copies (the reader's ``<output_dir>/converted``).
        what: the file's role in messages ("image", "frame", "patch", ...).

    Returns:
        ``(path to read, info)``: the file itself, or for a mode in ``policy.copy_as`` an 8-bit copy written
        atomically into ``converted_dir`` (logged).

    Raises:
        ValueError: for a mode the loader cannot read (wrong channel count or bit depth), or when a copy is needed
            and ``converted_dir`` is ``None``.
    """
    info = inspect_image(path, what=what)
    if info.mode in policy.modes or (info.mode == "nifti" and policy.nifti):
        return str(path), info
    described = f"PIL mode {info.mode}" if info.mode != "nifti" else "a NIfTI file"
    target = policy.copy_as.get(info.mode)
    if target is None:
        raise ValueError(f"{path}: {what} is {described}; expected {policy.expected}")
    if converted_dir is None:
        raise ValueError(f"{path}: {what} is {described}, which the loader misreads; no folder for an 8-bit copy given")
    digest = hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:8]
    dest = Path(converted_dir) / f"{Path(path).stem}-{digest}.png"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp.png")
    with Image.open(path) as im:
        to_8bit(im, path).convert(target).save(tmp)
    os.replace(tmp, dest)
    logger.info("%s: %s is %s, read from an 8-bit %s copy %s", path, what, described, target, dest)
    return str(dest), info


def check_same_size(info: ImageInfo, image: ImageInfo, what: str) -> None:
    """Refuses a mask (label, FOV, grey copy) whose size differs from its image's.

    Raises:
        ValueError: naming both files and both sizes (width x height).
    """
    if info.size != image.size:
        (w, h), (width, height) = info.size, image.size
        raise ValueError(
            f"{info.path}: {what} size {w}x{h} differs from image {image.path} size {width}x{height} (width x height)"
        )


def read_label_values(path: str | os.PathLike, what: str) -> tuple[np.ndarray, str]:
    """The pixel values of a 2D image file with palette colours (not indices) and without alpha; and its mode.

    Args:
        path: the image file.
        what: what the file is, for errors (``"mask"``, ``"label image"``).

    Raises:
        ValueError: naming the file when it is missing or cannot be read.
    """
    check_file(path)
    try:
        with Image.open(path) as im:
            mode = im.mode
            if mode in ("P", "PA", "1"):
                im = im.convert("RGB" if mode != "1" else "L")
            values = np.asarray(im)
    except Exception as exc:  # see inspect_image
        raise _cannot_read(Path(path), what, exc) from None
    if mode in _ALPHA_MODES and values.ndim == 3 and mode not in ("P", "PA"):
        values = values[..., :-1]  # alpha says nothing about the label
    return values, mode


def mask_foreground(path: str | os.PathLike) -> np.ndarray:
    """Reads a mask file as foreground booleans: ``(H, W)`` for 2D images, the stored array for NIfTI.

    Any non-zero value is foreground: of any RGB channel, of the palette colour (not the palette index); alpha is
    ignored.

    Raises:
        ValueError: naming the file when it cannot be read, or holds values outside the label set (0 = background,
            positive integers = objects): negative, fractional or NaN values.
    """
    if str(path).lower().endswith(NIFTI_EXTENSIONS):
        import nibabel as nib

        check_file(path)
        try:
            values = np.asanyarray(nib.load(str(path)).dataobj)
        except Exception as exc:  # see _inspect_nifti
            raise _cannot_read(Path(path), "mask", exc) from None
    else:
        values, _ = read_label_values(path, "mask")
        if values.ndim == 3:
            values = values.max(axis=-1)
    check_mask_values(values, path)
    return values > 0


def check_mask_values(values: np.ndarray, path: str | os.PathLike) -> None:
    """Refuses mask values outside the label set: NaN, negative or fractional values.

    Raises:
        ValueError: naming the file and the first such value.
    """
    if values.dtype.kind in "fc":
        bad = values[~np.isfinite(values) | (values < 0) | (values != np.round(values))]
    else:
        bad = values[values < 0] if values.dtype.kind == "i" else values[:0]
    if bad.size:
        raise ValueError(
            f"{path}: mask value {bad.flat[0]} is outside the label set (0 = background, positive integers = objects)"
        )


def read_grey_label(path: str | os.PathLike) -> np.ndarray:
    """Reads a grey-level label image as ``(H, W)`` uint8 grey values.

    Palette images give their palette's grey levels (not the indices), grey+alpha drops alpha, and 16-bit images
    are read as they are when every value is at most 255, or divided by 257 when every value is a multiple of it
    (an 8-bit image saved as 16-bit).

    Raises:
        ValueError: naming the file, when it cannot be read, has colour pixels, or holds other 16-bit values.
    """
    values, mode = read_label_values(path, "label image")
    if values.ndim == 3:
        if not (values[..., :1] == values).all():
            raise ValueError(f"{path}: label image has colour pixels; expected grey levels")
        values = values[..., 0]
    if values.dtype != np.uint8:
        if values.dtype.kind not in "iu" or values.min() < 0:
            raise ValueError(f"{path}: label image must hold grey levels 0-255, got {values.dtype} (mode {mode})")
        if values.max() > 255:
            if (values % 257).any():
                raise ValueError(f"{path}: 16-bit label value {int(values.max())} is not a grey level 0-255 (x257)")
            values = values // 257
    return values.astype(np.uint8)


def warn_constant_images(images: np.ndarray, where: str, name: Callable[[int], str]) -> None:
    """Logs how many images of an ``(N, ...)`` array are constant (kept: legal, but usually a mistake)."""
    if images.size == 0:
        return
    flat = images.reshape(len(images), -1)
    constant = np.flatnonzero(flat.min(axis=1) == flat.max(axis=1))
    if constant.size:
        example = name(int(constant[0]))
        logger.warning("%s: %d of %d images are constant (e.g. %s); kept", where, constant.size, len(images), example)
