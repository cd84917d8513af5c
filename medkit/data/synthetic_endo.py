"""Synthetic endoscopic scenes with surgical instruments, in the layout :mod:`medkit.data.endo` reads.

Each frame shows textured reddish tissue under a vignetted light with specular highlights, and 1-3 instruments
entering from the image border. A *grasper* is a dark cylindrical shaft ending in two bright metal jaws (the
clasper); a *probe* is a thinner, bluish-white rod with a rounded tip. Instruments drawn later occlude earlier ones.
Labels are exact per-pixel classes, drawn before blur and noise, and stored as grey levels::

    root/segmentation/mapping.json                       grey value -> {"index", "name"}
    root/segmentation/{train,validation,test}/images/<id>.png    RGB frame
    root/segmentation/{train,validation,test}/labels/<id>.png    grey-level label (mode L)
    root/colorization/{train_cor,validation_cor}/<id>.png        unlabeled RGB frames
    root/SYNTHETIC.md                                            provenance note

Everything is a pure function of the sizes and the seed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.filters import gaussian

from medkit.utils import as_image_size

__all__ = ["CLASSES", "GREY_LEVELS", "generate_endo_dataset", "synthesize_endo_frame"]

logger = logging.getLogger(__name__)

CLASSES = ("background", "shaft", "clasper", "probe")
GREY_LEVELS = (0, 85, 170, 255)
_MIN_SIZE = 32
_SPLITS = {"train": 0, "validation": 1, "test": 2, "train_cor": 3, "validation_cor": 4}


def _tissue(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Reddish tissue: smooth folds, fine texture, darker vessels, a vignette and specular highlights; (H, W, 3)."""
    h, w = size
    scale = np.sqrt(h * w) / 100.0
    folds = gaussian(rng.standard_normal(size), sigma=8 * scale)
    folds /= np.abs(folds).max() + 1e-8
    fine = gaussian(rng.standard_normal(size), sigma=1.2 * scale)
    fine /= np.abs(fine).max() + 1e-8
    vessels = np.abs(gaussian(rng.standard_normal(size), sigma=3 * scale))
    vessels = np.exp(-((vessels / (vessels.std() + 1e-8)) ** 2) * 12.0)  # thin dark lines at the noise's zero set
    base = np.array([rng.uniform(0.65, 0.85), rng.uniform(0.22, 0.35), rng.uniform(0.2, 0.3)])
    shade = 1.0 + 0.25 * folds + 0.08 * fine - 0.25 * vessels
    rgb = base * shade[..., None]
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((yy - h / 2) / (h / 2)) ** 2 + ((xx - w / 2) / (w / 2)) ** 2
    rgb *= (1.0 - rng.uniform(0.3, 0.55) * r2 / 2.0)[..., None]
    for _ in range(rng.integers(2, 7)):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(0.6, 2.5, size=2) * scale
        spot = np.exp(-(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2))
        rgb += rng.uniform(0.5, 1.0) * spot[..., None]
    return rgb


def _axis_coords(size: tuple[int, int], origin: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates along (u) and across (v) an axis from ``origin`` at ``angle`` (radians)."""
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]].astype(np.float64)
    dy, dx = yy - origin[0], xx - origin[1]
    return dx * np.cos(angle) + dy * np.sin(angle), -dx * np.sin(angle) + dy * np.cos(angle)


def _cylinder(v: np.ndarray, half_width: float, level: float) -> np.ndarray:
    """Brightness across a lit metal cylinder: darker at the rims, with a narrow highlight stripe."""
    t = np.clip(np.abs(v) / half_width, 0.0, 1.0)
    stripe = np.exp(-((((v / half_width) - 0.35) / 0.15) ** 2))
    return level * (0.55 + 0.45 * np.sqrt(1.0 - t**2)) + 0.35 * stripe


def _entry(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """A point on the border (slightly outside) and an angle pointing into the image."""
    h, w = size
    side = rng.integers(4)
    if side == 0:
        origin = np.array([-2.0, rng.uniform(0.1, 0.9) * w])
    elif side == 1:
        origin = np.array([h + 2.0, rng.uniform(0.1, 0.9) * w])
    elif side == 2:
        origin = np.array([rng.uniform(0.1, 0.9) * h, -2.0])
    else:
        origin = np.array([rng.uniform(0.1, 0.9) * h, w + 2.0])
    target = np.array([rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w])
    d = target - origin
    return origin, float(np.arctan2(d[0], d[1]) + rng.uniform(-0.3, 0.3))


def _place(rng, size, length_range, half_range) -> tuple[np.ndarray, float, float, float, np.ndarray, np.ndarray]:
    """An instrument entering from the border: origin, angle, length, half width, and the along/across coordinates."""
    h, w = size
    scale = np.sqrt(h * w) / 100.0
    origin, angle = _entry(rng, size)
    length = rng.uniform(*length_range) * np.hypot(h, w)
    half = rng.uniform(*half_range) * scale
    u, v = _axis_coords(size, origin, angle)
    return origin, angle, length, half, u, v


def _draw_grasper(rng, size, rgb, labels) -> None:
    origin, angle, length, half, u, v = _place(rng, size, (0.35, 0.6), (3.0, 5.5))
    shaft = (u >= 0) & (u <= length) & (np.abs(v) <= half)
    level = rng.uniform(0.12, 0.25)
    rgb[shaft] = (_cylinder(v, half, level)[shaft])[:, None] * np.array([1.0, 1.0, 1.05])
    labels[shaft] = CLASSES.index("shaft")
    tip = origin + length * np.array([np.sin(angle), np.cos(angle)])
    opening = rng.uniform(0.1, 0.6)
    jaw_len, jaw_half = rng.uniform(2.2, 3.5) * half, 0.75 * half
    for side in (-1.0, 1.0):
        ju, jv = _axis_coords(size, tip - 0.3 * half * np.array([np.sin(angle), np.cos(angle)]), angle + side * opening)
        taper = jaw_half * (1.0 - 0.7 * np.clip(ju / jaw_len, 0, 1))
        jaw = (ju >= 0) & (ju <= jaw_len) & (np.abs(jv - side * 0.3 * half) <= taper)
        rgb[jaw] = (_cylinder(jv - side * 0.3 * half, jaw_half, rng.uniform(0.55, 0.75))[jaw])[:, None]
        labels[jaw] = CLASSES.index("clasper")


def _draw_probe(rng, size, rgb, labels) -> None:
    _, _, length, half, u, v = _place(rng, size, (0.3, 0.55), (2.0, 3.2))
    rod = ((u >= 0) & (u <= length) & (np.abs(v) <= half)) | ((u - length) ** 2 + v**2 <= half**2)
    shade = _cylinder(v, half, rng.uniform(0.6, 0.8))
    rgb[rod] = shade[rod][:, None] * np.array([0.8, 0.9, 1.1])
    labels[rod] = CLASSES.index("probe")


def synthesize_endo_frame(rng: np.random.Generator, image_size: int | tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Synthesises one endoscopic frame with exact class labels.

    Args:
        rng: source of randomness; the output is a pure function of its state and ``image_size``.
        image_size: ``(H, W)`` or one int for square frames; each side at least 32.

    Returns:
        ``(image, labels)``: uint8 RGB ``(H, W, 3)`` and uint8 class indices ``(H, W)`` into :data:`CLASSES`.
    """
    size = as_image_size(image_size, _MIN_SIZE)
    rgb = _tissue(rng, size)
    labels = np.zeros(size, dtype=np.uint8)
    kinds = ["grasper"] + [["grasper", "probe"][rng.integers(2)] for _ in range(rng.integers(0, 3))]
    for kind in rng.permutation(kinds):  # later instruments occlude earlier ones
        (_draw_grasper if kind == "grasper" else _draw_probe)(rng, size, rgb, labels)
    scale = np.sqrt(size[0] * size[1]) / 100.0
    rgb = gaussian(rgb, sigma=0.5 * scale, channel_axis=-1)
    rgb += rng.normal(0.0, rng.uniform(0.01, 0.03), size=rgb.shape)
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8), labels


def _write_readme(root: Path, counts: dict[str, int], size: tuple[int, int], seed: int) -> None:
    lines = "\n".join(f"- {split}: {n} frames" for split, n in counts.items())
    (root / "SYNTHETIC.md").write_text(
        f"""# Synthetic endoscopic instrument dataset (NOT real data)

Generated by `medkit.data.synthetic_endo.generate_endo_dataset` (seed {seed}, frame size H x W {size[0]} x {size[1]})
so that the endo_instrument_seg bundle runs without downloads. Classes (grey level): {dict(zip(CLASSES, GREY_LEVELS))}.

{lines}

Metrics measured on these frames say nothing about real endoscopy. Point `--dataset_dir` at real data for real work.
""",
        encoding="utf-8",
    )


def generate_endo_dataset(
    root: str | Path,
    num_train: int = 48,
    num_validation: int = 12,
    num_test: int = 12,
    num_colorization: int = 96,
    num_colorization_validation: int = 16,
    image_size: int | tuple[int, int] = (96, 120),
    seed: int = 0,
) -> Path:
    """Writes a synthetic endoscopy dataset (segmentation and colorization parts) under ``root``.

    Args:
        root: folder to write into; created if missing.
        num_train, num_validation, num_test: labelled frames per segmentation split (each >= 1).
        num_colorization, num_colorization_validation: unlabeled frames in ``train_cor`` and ``validation_cor``.
        image_size: ``(H, W)`` of every frame (the course uses 256 x 320); each side at least 32.
        seed: seed of the generator.

    Returns:
        ``root``.
    """
    counts = {
        "train": num_train,
        "validation": num_validation,
        "test": num_test,
        "train_cor": num_colorization,
        "validation_cor": num_colorization_validation,
    }
    for split, n in counts.items():
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"the number of {split} frames must be an int >= 1, got {n!r}")
    size = as_image_size(image_size, _MIN_SIZE)
    root = Path(root)
    seg, cor = root / "segmentation", root / "colorization"
    seg.mkdir(parents=True, exist_ok=True)
    mapping = {str(g): {"index": i, "name": name} for i, (g, name) in enumerate(zip(GREY_LEVELS, CLASSES))}
    (seg / "mapping.json").write_text(json.dumps(mapping, indent=2))
    lut = np.array(GREY_LEVELS, dtype=np.uint8)
    for split, n in counts.items():
        colorization = split.endswith("_cor")
        for k in range(n):
            image, labels = synthesize_endo_frame(np.random.default_rng([seed, _SPLITS[split], k]), size)
            name = f"{split.removesuffix('_cor')}_{k:04d}.png"
            if colorization:
                (cor / split).mkdir(parents=True, exist_ok=True)
                Image.fromarray(image).save(cor / split / name, compress_level=1)
                continue
            (seg / split / "images").mkdir(parents=True, exist_ok=True)
            (seg / split / "labels").mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(seg / split / "images" / name, compress_level=1)
            Image.fromarray(lut[labels]).save(seg / split / "labels" / name, compress_level=1)
    _write_readme(root, counts, size, seed)
    logger.info("Wrote synthetic endoscopy frames %s (seed %d, %dx%d) to %s", counts, seed, size[0], size[1], root)
    return root
