"""Synthetic fundus photographs with exact vessel and field-of-view masks, written in the DRIVE layout.

The generated tree mirrors the real DRIVE download so that the same reader works on both::

    root/training/images/<NN>_training.tif        RGB fundus image, uint8
    root/training/1st_manual/<NN>_manual1.gif     vessel mask, 0/255
    root/training/mask/<NN>_training_mask.gif     field-of-view (FOV) mask, 0/255
    root/test/images/<NN>_test.tif, test/1st_manual/<NN>_manual1.gif, test/mask/<NN>_test_mask.gif
    root/SYNTHETIC.md                             provenance note

As in DRIVE, training images are numbered 21, 22, ... and test images 01, 02, ... Each image is a bright orange disc
(the circular FOV, darker towards its rim) on a black background, with a bright optic disc, a darker macula opposite
it, and vessel trees that leave the optic disc in arcades and branch recursively, with tapering width and smoothly
varying curvature. Vessels are darkest in the green channel, as in real fundus photographs. A linear illumination
gradient, low-frequency texture, blur and noise are added after the masks are drawn, so the masks are exact.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.filters import gaussian

from medkit.utils import as_image_size

logger = logging.getLogger(__name__)

__all__ = ["generate_retina_dataset", "synthesize_fundus"]

_MIN_SIZE = 48
# how much a vessel of full contrast darkens the red, green and blue channels
_VESSEL_ABSORPTION = np.array([0.25, 0.6, 0.45])
_MIN_RADIUS = 0.75  # thinner vessels could fall between pixel centres and break up in the mask


def _grow_tree(
    rng: np.random.Generator,
    start: np.ndarray,
    theta: float,
    radius: float,
    kappa: float,
    fov_center: np.ndarray,
    fov_radius: float,
    points: list[tuple[float, float, float]],
    depth: int = 0,
) -> None:
    """Grows one vessel from ``start`` and, recursively, its branches; appends ``(y, x, radius)`` samples to points."""
    step = 0.5
    length = rng.uniform(0.9, 1.4) * fov_radius * 0.7**depth
    taper = (0.45 if depth else 0.55) ** (step / length)  # the radius shrinks to about half over the vessel's length
    next_branch = rng.exponential(0.12 * fov_radius)
    pos, travelled = start.astype(float).copy(), 0.0
    while travelled < length and radius >= _MIN_RADIUS * 0.8:
        kappa = 0.99 * kappa + rng.normal(0.0, 0.0015)
        theta += kappa
        pos += step * np.array([np.sin(theta), np.cos(theta)])
        travelled += step
        if np.hypot(*(pos - fov_center)) > fov_radius:
            return
        points.append((pos[0], pos[1], max(radius, _MIN_RADIUS)))
        radius *= taper
        if travelled >= next_branch and depth < 4 and radius > _MIN_RADIUS:
            side = rng.choice([-1.0, 1.0])
            child = radius * rng.uniform(0.6, 0.85)
            _grow_tree(
                rng, pos, theta + side * rng.uniform(0.4, 1.1), child, rng.normal(0, 0.012), fov_center, fov_radius,
                points, depth + 1,
            )  # fmt: skip
            radius *= 0.9
            next_branch = travelled + rng.exponential(0.14 * fov_radius * 0.8**depth)


def _rasterize(points: list[tuple[float, float, float]], size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Draws the vessel samples: returns the exact mask and a soft darkness map in [0, 1] (wider is darker)."""
    mask = np.zeros(size, dtype=bool)
    darkness = np.zeros(size, dtype=np.float32)
    for y, x, r in points:
        half = int(np.ceil(r + 1.5))
        y0, y1 = max(int(y) - half, 0), min(int(y) + half + 2, size[0])
        x0, x1 = max(int(x) - half, 0), min(int(x) + half + 2, size[1])
        if y0 >= y1 or x0 >= x1:
            continue
        dy, dx = np.ogrid[y0:y1, x0:x1]
        dist = np.sqrt((dy - y) ** 2 + (dx - x) ** 2)
        mask[y0:y1, x0:x1] |= dist <= r
        profile = np.clip(1.0 - dist / (r + 0.5), 0.0, 1.0) * min(0.45 + 0.25 * r, 1.0)
        np.maximum(darkness[y0:y1, x0:x1], profile, out=darkness[y0:y1, x0:x1])
    return mask, darkness


def synthesize_fundus(
    rng: np.random.Generator, image_size: int | tuple[int, int] = 160
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthesises one fundus-like photograph with exact vessel and FOV masks.

    Args:
        rng: source of randomness; the output is a pure function of its state and ``image_size``.
        image_size: ``H`` for a square image or ``(H, W)``; each side at least 48.

    Returns:
        ``(image, vessels, fov)``: ``image`` uint8 ``(H, W, 3)`` RGB; ``vessels`` and ``fov`` boolean ``(H, W)``, with
        every vessel pixel inside the FOV.
    """
    size = as_image_size(image_size, _MIN_SIZE)
    h, w = size
    center = np.array([h / 2, w / 2]) + rng.normal(0, 0.01 * min(size), 2)
    fov_radius = 0.46 * min(size) * rng.uniform(0.95, 1.0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rho = np.hypot(yy - center[0], xx - center[1]) / fov_radius
    fov = rho <= 1.0

    eye = rng.choice([-1.0, 1.0])  # left or right eye: the optic disc sits on one side, the macula on the other
    disc = center + fov_radius * np.array([rng.normal(0, 0.05), eye * rng.uniform(0.45, 0.6)])
    macula = center + fov_radius * np.array([rng.normal(0, 0.05), -eye * rng.uniform(0.1, 0.25)])
    disc_radius = fov_radius * rng.uniform(0.1, 0.13)

    points: list[tuple[float, float, float]] = []
    trunk_radius = max(0.012 * min(size), 1.0) * rng.uniform(0.9, 1.2)
    toward = np.pi if eye > 0 else 0.0  # direction from the disc towards the macula
    for vertical in (-1.0, 1.0):  # the upper and lower arcades, each an artery and a vein, bending around the macula
        turn = vertical * eye  # the sign that turns a vertical direction towards the macula
        for tilt in (rng.uniform(0.0, 0.5), rng.uniform(-0.6, -0.1)):
            theta = vertical * np.pi / 2 + turn * tilt
            bend = turn * rng.uniform(0.015, 0.025)
            _grow_tree(rng, disc, theta, trunk_radius * rng.uniform(0.8, 1.1), bend, center, fov_radius, points)
    for _ in range(rng.integers(2, 5)):  # short nasal vessels leaving the disc away from the macula
        theta = toward + np.pi + rng.normal(0, 0.7)
        _grow_tree(rng, disc, theta, trunk_radius * rng.uniform(0.5, 0.8), 0.0, center, fov_radius, points, depth=1)
    vessels, darkness = _rasterize(points, size)
    vessels &= fov

    base = np.array([rng.uniform(0.75, 0.9), rng.uniform(0.33, 0.45), rng.uniform(0.1, 0.2)])
    shade = 1.0 - rng.uniform(0.25, 0.45) * rho**2  # vignetting towards the FOV rim
    phi = rng.uniform(0, 2 * np.pi)
    ramp = ((yy - center[0]) * np.sin(phi) + (xx - center[1]) * np.cos(phi)) / fov_radius
    shade *= 1.0 + rng.uniform(0.05, 0.2) * ramp  # uneven illumination
    texture = gaussian(rng.standard_normal(size).astype(np.float32), sigma=0.04 * min(size))
    shade *= 1.0 + 0.6 * texture / (texture.std() + 1e-8) * 0.05
    macula_dip = 0.25 * np.exp(-(((yy - macula[0]) ** 2 + (xx - macula[1]) ** 2) / (2 * (0.18 * fov_radius) ** 2)))
    disc_glow = np.exp(-((((yy - disc[0]) ** 2 + (xx - disc[1]) ** 2) / (2 * disc_radius**2)) ** 2))
    rgb = base * (shade * (1.0 - macula_dip))[..., None]
    rgb = rgb + disc_glow[..., None] * np.array([0.25, 0.45, 0.35])
    rgb = rgb * (1.0 - darkness[..., None] * _VESSEL_ABSORPTION * rng.uniform(0.8, 1.1))
    rgb = np.where(fov[..., None], rgb, 0.02)
    rgb = gaussian(rgb, sigma=0.5, channel_axis=-1)
    rgb = rgb + rng.normal(0, rng.uniform(0.01, 0.025), rgb.shape)
    image = np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)
    return image, vessels, fov


def _write_gif(path: Path, mask: np.ndarray) -> None:
    Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(path)


def _write_split(root: Path, split: str, numbers: list[int], seed: int, size: tuple[int, int]) -> float:
    """Writes one DRIVE split; returns the mean vessel fraction inside the FOV."""
    word = "training" if split == "training" else "test"
    for sub in ("images", "1st_manual", "mask"):
        (root / split / sub).mkdir(parents=True, exist_ok=True)
    fractions = []
    for number in numbers:
        image, vessels, fov = synthesize_fundus(np.random.default_rng([seed, number]), size)
        Image.fromarray(image).save(root / split / "images" / f"{number:02d}_{word}.tif")
        _write_gif(root / split / "1st_manual" / f"{number:02d}_manual1.gif", vessels)
        _write_gif(root / split / "mask" / f"{number:02d}_{word}_mask.gif", fov)
        fractions.append(vessels.sum() / max(fov.sum(), 1))
    return float(np.mean(fractions))


def generate_retina_dataset(
    root: str | Path,
    num_train: int = 20,
    num_test: int = 8,
    image_size: int | tuple[int, int] = 160,
    seed: int = 0,
) -> Path:
    """Writes a synthetic fundus dataset in the DRIVE layout (``training/`` and ``test/``) under ``root``.

    Files are a pure function of ``(num_train, num_test, image_size, seed)``. Image ``n`` uses the generator seeded
    with ``[seed, n]``, so a larger set keeps the smaller set's images.

    Args:
        root: folder to write into; created if missing.
        num_train: number of training images (numbered 21, 22, ... as in DRIVE), at least 1.
        num_test: number of test images (numbered 01, 02, ...), at least 1 and at most 20.
        image_size: ``H`` for square images or ``(H, W)``; each side at least 48 (real DRIVE is 584 x 565).
        seed: seed of the generator.

    Returns:
        ``root``.

    Raises:
        ValueError: if a count, the size or the seed is invalid.
    """
    for name, value, high in (("num_train", num_train, None), ("num_test", num_test, 20), ("seed", seed, None)):
        low = 0 if name == "seed" else 1
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if high is not None and value > high:
            raise ValueError(f"{name} must be at most {high} (test images are numbered 01-20), got {value}")
    size = as_image_size(image_size, _MIN_SIZE)
    root = Path(root)
    train_fraction = _write_split(root, "training", list(range(21, 21 + num_train)), int(seed), size)
    test_fraction = _write_split(root, "test", list(range(1, 1 + num_test)), int(seed), size)
    (root / "SYNTHETIC.md").write_text(
        f"""# Synthetic fundus dataset (NOT real data)

Generated by `medkit.data.synthetic_retina.generate_retina_dataset` as a stand-in for DRIVE, whose licence forbids
redistribution, so the retina_vessel_seg bundle runs without downloads.

- training images: {num_train} (numbered 21-{20 + num_train}); test images: {num_test} (numbered 01-{num_test:02d})
- image size (H, W): {size[0]} x {size[1]}; seed: {seed}
- vessel fraction inside the FOV: {train_fraction:.3f} (training), {test_fraction:.3f} (test)
- layout: DRIVE's `training|test/images/*.tif`, `1st_manual/*_manual1.gif`, `mask/*_mask.gif` (0/255)

Metrics measured on these images say nothing about performance on real fundus photographs. Get DRIVE from
https://drive.grand-challenge.org/ and pass `--dataset_dir /path/to/DRIVE` to train on it.
""",
        encoding="utf-8",
    )
    logger.info(
        "Wrote %d training and %d test synthetic fundus images (%dx%d, seed %d) to %s",
        num_train,
        num_test,
        size[0],
        size[1],
        seed,
        root,
    )
    return root
