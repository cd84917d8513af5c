"""Synthetic multi-object shapes for multi-class segmentation, in the spirit of PurdueShapes5MultiObject.

Each image is RGB, by default 64x64, with 2-5 objects drawn from 5 shape classes (rectangle, triangle, disk, oval,
star) in random colours, sizes, rotations and positions on a noisy, randomly coloured background. Objects are drawn in
order and later objects occlude earlier ones, in the image and in the label alike. The label is exact: one class index
per pixel, drawn before the noise.

On-disk layout (read back by :mod:`medkit.data.shapes`)::

    root/images/<id>.png     RGB uint8
    root/labels/<id>.png     mode 'L' class-index image: 0 background, 1 rectangle, ..., 5 star
    root/classes.json        {"0": "background", "1": "rectangle", ...}
    root/SYNTHETIC.md        provenance note

The class-index image (rather than a 5-channel mask) is chosen because occlusion makes the classes exclusive per
pixel: it is one small PNG per image, MONAI's ``DiceLoss(to_onehot_y=True)`` and ``AsDiscrete(to_onehot=6)`` expand it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.draw import disk, ellipse, polygon

__all__ = ["SHAPE_CLASSES", "generate_shapes_dataset", "synthesize_shapes_image"]

logger = logging.getLogger(__name__)

SHAPE_CLASSES: tuple[str, ...] = ("background", "rectangle", "triangle", "disk", "oval", "star")
_MIN_SIZE = 24
_MIN_CONTRAST = 80.0  # minimum RGB distance between an object's colour and the background's


def _regular_polygon(
    center: np.ndarray, radii: np.ndarray, angles: np.ndarray, rotation: float
) -> tuple[np.ndarray, np.ndarray]:
    """Vertices ``(rows, cols)`` at ``angles`` with per-vertex ``radii`` around ``center``, rotated by ``rotation``."""
    theta = angles + rotation
    return center[0] + radii * np.sin(theta), center[1] + radii * np.cos(theta)


def _shape_pixels(
    rng: np.random.Generator, cls: int, center: np.ndarray, size: float, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of one object of class ``cls`` (1-5), clipped to ``shape``."""
    rotation = rng.uniform(0, 2 * np.pi)
    if cls == 1:  # rectangle with aspect ratio up to 2
        half = size * np.array([rng.uniform(0.5, 1.0), rng.uniform(0.5, 1.0)])
        corners = np.array([[-1, -1], [-1, 1], [1, 1], [1, -1]]) * half
        c, s = np.cos(rotation), np.sin(rotation)
        rot = corners @ np.array([[c, -s], [s, c]])
        return polygon(center[0] + rot[:, 0], center[1] + rot[:, 1], shape)
    if cls == 2:  # triangle with jittered vertex angles, never degenerate
        angles = np.array([0.0, 2 * np.pi / 3, 4 * np.pi / 3]) + rng.uniform(-0.3, 0.3, size=3)
        return polygon(*_regular_polygon(center, np.full(3, size), angles, rotation), shape)
    if cls == 3:
        return disk(tuple(center), size * rng.uniform(0.6, 0.9), shape=shape)
    if cls == 4:  # oval: clearly elongated so it is not confused with a disk
        r_major = size * rng.uniform(0.85, 1.05)
        return ellipse(center[0], center[1], r_major / rng.uniform(1.7, 2.4), r_major, shape=shape, rotation=rotation)
    # five-pointed star: alternating outer and inner radii
    radii = np.tile([size, size * rng.uniform(0.38, 0.5)], 5)
    angles = np.arange(10) * np.pi / 5
    return polygon(*_regular_polygon(center, radii, angles, rotation), shape)


def _colour(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """A random RGB colour at least ``_MIN_CONTRAST`` away from ``background``."""
    for _ in range(50):
        colour = rng.uniform(0, 255, size=3)
        if np.linalg.norm(colour - background) >= _MIN_CONTRAST:
            return colour
    return 255.0 - background  # the complement is always far enough


def synthesize_shapes_image(
    rng: np.random.Generator,
    image_size: int = 64,
    num_objects: tuple[int, int] = (2, 5),
    noise_std: float = 12.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Synthesises one multi-object image and its exact class-index label.

    Args:
        rng: source of randomness; the output is a pure function of its state and the other arguments.
        image_size: side of the square image, at least 24.
        num_objects: inclusive range of the number of objects drawn.
        noise_std: standard deviation of the additive Gaussian pixel noise (grey levels).

    Returns:
        ``(image, label)``: uint8 ``(H, W, 3)`` and uint8 ``(H, W)`` with values in ``0..5`` (see ``SHAPE_CLASSES``).
    """
    shape = (image_size, image_size)
    background = rng.uniform(0, 255, size=3)
    image = np.broadcast_to(background, (*shape, 3)).copy()
    label = np.zeros(shape, dtype=np.uint8)
    scale = image_size / 64.0
    for _ in range(int(rng.integers(num_objects[0], num_objects[1] + 1))):
        cls = int(rng.integers(1, len(SHAPE_CLASSES)))
        size = rng.uniform(6.0, 13.0) * scale
        center = rng.uniform(size * 0.5, image_size - size * 0.5, size=2)
        rr, cc = _shape_pixels(rng, cls, center, size, shape)
        image[rr, cc] = _colour(rng, background)
        label[rr, cc] = cls  # later objects overwrite: occlusion
    image += rng.normal(0.0, noise_std, size=image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8), label


def _write_readme(root: Path, num_images: int, image_size: int, seed: int, counts: np.ndarray) -> None:
    per_class = ", ".join(f"{name} {int(n)}" for name, n in zip(SHAPE_CLASSES[1:], counts[1:]))
    text = f"""# Synthetic shapes dataset (NOT real data)

Generated by `medkit.data.synthetic_shapes.generate_shapes_dataset` in the spirit of PurdueShapes5MultiObject.

- images: {num_images}, {image_size}x{image_size} RGB, seed {seed}
- images containing each class: {per_class}
- `images/<id>.png`: RGB image; `labels/<id>.png`: class index per pixel (see `classes.json`)

Objects drawn later occlude earlier ones; labels are exact. Metrics measured on this data say nothing about real
images.
"""
    (root / "SYNTHETIC.md").write_text(text, encoding="utf-8")


def generate_shapes_dataset(
    root: str | Path, num_images: int = 1000, image_size: int = 64, seed: int = 0, noise_std: float = 12.0
) -> Path:
    """Writes a synthetic shapes dataset: ``images/``, ``labels/``, ``classes.json`` and ``SYNTHETIC.md``.

    Image ``i`` depends only on ``(seed, i, image_size, noise_std)``, so a larger dataset extends a smaller one.

    Args:
        root: folder to write into; created if missing.
        num_images: number of images, at least 1.
        image_size: side of the square images, at least 24.
        seed: seed of the generator (non-negative).
        noise_std: standard deviation of the pixel noise in grey levels.

    Returns:
        ``root``.

    Raises:
        ValueError: if an argument is out of range (the message names it).
    """
    for name, value, low in (("num_images", num_images, 1), ("image_size", image_size, _MIN_SIZE), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}.")
    if noise_std < 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std!r}.")
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    counts = np.zeros(len(SHAPE_CLASSES), dtype=np.int64)
    for index in range(num_images):
        image, label = synthesize_shapes_image(np.random.default_rng([seed, index]), image_size, noise_std=noise_std)
        counts += np.bincount(label.ravel(), minlength=len(SHAPE_CLASSES)) > 0
        name = f"shapes_{index:05d}.png"
        # zlib level 1: noisy images compress poorly anyway, and it is several times faster than the default
        Image.fromarray(image).save(root / "images" / name, compress_level=1)
        Image.fromarray(label).save(root / "labels" / name, compress_level=1)
    (root / "classes.json").write_text(json.dumps(dict(enumerate(SHAPE_CLASSES)), indent=2), encoding="utf-8")
    _write_readme(root, num_images, image_size, int(seed), counts)
    logger.info(
        "Wrote %d synthetic shapes images (%dx%d, seed %d) to %s", num_images, image_size, image_size, seed, root
    )
    return root
