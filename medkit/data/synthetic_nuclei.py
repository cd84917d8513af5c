"""Synthetic 2D fluorescence-nuclei dataset in the 2018 Data Science Bowl ``stage1_train`` layout.

The generated tree mirrors the real Kaggle download so that the same readers work on both::

    root/stage1_train/<id>/images/<id>.png        RGBA (most) or RGB image, uint8
    root/stage1_train/<id>/masks/<mask_id>.png    one mode-'L' {0, 255} PNG per nucleus
    root/SYNTHETIC.md                             provenance note

Images look like DAPI/Hoechst stained nuclei: a dark, slightly graded background with bright, textured, perturbed
ellipses of varied size and density, some crowded into touching clusters, then blurred and given shot and read noise.
Most images are grey; some are tinted into one colour channel and a few are brightfield-like (dark nuclei on a light
background), as in the real set. Masks are exact per-nucleus pixel sets drawn before blur and noise, and are disjoint.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.filters import gaussian

logger = logging.getLogger(__name__)

__all__ = ["generate_nuclei_dataset", "synthesize_nuclei_image"]

_MIN_SIZE = 32
_STYLES = ("grey", "tinted", "brightfield")
_STYLE_PROBS = (0.7, 0.2, 0.1)
# Fluorescence tints seen in DSB2018: DAPI-blue, GFP-green, magenta composites.
_TINTS = np.array([[0.15, 0.3, 1.0], [0.2, 1.0, 0.3], [1.0, 0.35, 0.9]])
# Optical density per channel of a haematoxylin-like stain: absorbs red/green more than blue, so nuclei look purple.
_STAIN_OD = np.array([0.9, 1.1, 0.5])


def _as_size(image_size: int | tuple[int, int]) -> tuple[int, int]:
    """Validates ``image_size`` and returns it as ``(H, W)``."""
    if isinstance(image_size, (int, np.integer)):
        size = (image_size, image_size)
    else:
        size = tuple(image_size) if isinstance(image_size, (tuple, list, np.ndarray)) else ()
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in size):
        raise ValueError(f"image_size must be an int or a pair of ints (H, W), got {image_size!r}.")
    if min(size) < _MIN_SIZE:
        raise ValueError(f"image_size must be at least {_MIN_SIZE} pixels on each side, got {image_size!r}.")
    return int(size[0]), int(size[1])


def _scale(image_size: tuple[int, int]) -> float:
    """Length scale relative to a 256x256 image; floored so that tiny test images still hold visible nuclei."""
    return max(float(np.sqrt(image_size[0] * image_size[1])) / 256.0, 0.5)


def _nucleus_shape(
    rng: np.random.Generator, center: np.ndarray, radii: np.ndarray, image_size: tuple[int, int]
) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray] | None:
    """Draws one perturbed, rotated ellipse clipped to the image.

    Returns:
        ``(bbox slices, inside mask, normalised radius in [0, 1])`` within the bounding box, or None if the box is
        empty.
    """
    half = int(np.ceil(radii.max() * 1.4)) + 1
    cy, cx = np.round(center).astype(int)
    y0, y1 = max(cy - half, 0), min(cy + half + 1, image_size[0])
    x0, x1 = max(cx - half, 0), min(cx + half + 1, image_size[1])
    if y0 >= y1 or x0 >= x1:
        return None
    dy, dx = np.ogrid[y0:y1, x0:x1]
    dy, dx = dy - center[0], dx - center[1]
    angle = rng.uniform(0, np.pi)
    u = (dx * np.cos(angle) + dy * np.sin(angle)) / radii[1]
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / radii[0]
    rho, theta = np.hypot(u, v), np.arctan2(v, u)
    # Low-order harmonics on the boundary radius give lobed, kidney- or pear-like outlines instead of clean ellipses.
    k = np.arange(2, 6)[:, None, None]
    amps = rng.uniform(0.0, 0.09, size=(4, 1, 1)) / np.sqrt(k - 1)
    boundary = 1.0 + (amps * np.cos(k * theta + rng.uniform(0, 2 * np.pi, size=(4, 1, 1)))).sum(axis=0)
    rel = rho / boundary
    return (slice(y0, y1), slice(x0, x1)), rel <= 1.0, np.clip(rel, 0.0, 1.0)


def _place_nuclei(rng: np.random.Generator, image_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Places non-overlapping-label nuclei and returns ``(labels int32 (H, W), signal float (H, W))``."""
    h, w = image_size
    scale = _scale(image_size)
    labels = np.zeros(image_size, dtype=np.int32)
    signal = np.zeros(image_size, dtype=np.float32)
    target = int(rng.integers(5, 61))
    mean_radius = rng.uniform(5.0, 13.0) * scale
    p_cluster = rng.uniform(0.0, 0.7)
    mean_brightness = rng.uniform(0.45, 0.9)
    falloff = rng.uniform(0.1, 0.45)
    centers: list[tuple[np.ndarray, float]] = []
    areas = np.zeros(target, dtype=np.int64)
    for _ in range(target * 4):
        if len(centers) >= target:
            break
        radius = float(np.clip(mean_radius * rng.lognormal(0.0, 0.25), max(4.0 * scale, 3.0), 20.0 * scale))
        radii = radius * np.array([1.0, rng.uniform(1.0, 1.7)]) / np.sqrt(1.35)
        if centers and rng.random() < p_cluster:
            # Crowding: put the new nucleus just at, or slightly inside, the rim of an existing one so they touch.
            anchor, anchor_r = centers[rng.integers(len(centers))]
            phi = rng.uniform(0, 2 * np.pi)
            center = anchor + (anchor_r + radius) * rng.uniform(0.8, 1.0) * np.array([np.sin(phi), np.cos(phi)])
        else:
            # The first nucleus goes in the central half so that every image has at least one.
            center = rng.uniform([0.0, 0.0], [h, w]) if centers else rng.uniform([h / 4, w / 4], [3 * h / 4, 3 * w / 4])
        shape = _nucleus_shape(rng, center, radii, image_size)
        if shape is None:
            continue
        box, inside, rel = shape
        covered = np.bincount(labels[box][inside], minlength=len(centers) + 1)
        n_free = int(covered[0])
        # First nucleus wins shared pixels. Reject slivers that would be mostly hidden, tiny edge crumbs, and shapes
        # that would swallow much of an earlier nucleus (which would look like a nucleus inside a nucleus).
        if n_free < max(12, 0.7 * inside.sum()) or np.any(covered[1:] > 0.25 * areas[: len(centers)]):
            continue
        free = inside & (labels[box] == 0)
        labels[box][free] = len(centers) + 1
        areas[len(centers)] = n_free
        brightness = np.clip(mean_brightness * rng.lognormal(0.0, 0.3), 0.2, 1.0)
        signal[box][free] = brightness * (1.0 - falloff * rel[free] ** 2)
        centers.append((center, radius))
    return labels, signal


def _background(rng: np.random.Generator, image_size: tuple[int, int], low: float, high: float) -> np.ndarray:
    """A flat level plus a linear illumination gradient in a random direction."""
    yy, xx = np.ogrid[0 : 1 : image_size[0] * 1j, 0 : 1 : image_size[1] * 1j]
    phi = rng.uniform(0, 2 * np.pi)
    ramp = (yy * np.sin(phi) + xx * np.cos(phi)) / (abs(np.sin(phi)) + abs(np.cos(phi)))
    return (rng.uniform(low, high) + rng.uniform(0.0, 0.08) * (ramp - ramp.min())).astype(np.float32)


def _render(rng: np.random.Generator, labels: np.ndarray, signal: np.ndarray) -> np.ndarray:
    """Turns the clean nucleus signal into a noisy, blurred uint8 RGB image in one of the DSB-like styles."""
    image_size = labels.shape
    scale = _scale(image_size)
    style = _STYLES[rng.choice(len(_STYLES), p=_STYLE_PROBS)]
    # Chromatin texture: band-limited noise modulating intensity inside nuclei only.
    texture = gaussian(rng.standard_normal(image_size, dtype=np.float32), sigma=rng.uniform(0.8, 2.0) * scale)
    texture /= texture.std() + 1e-8
    fg = signal * np.clip(1.0 + rng.uniform(0.1, 0.35) * texture, 0.3, None)
    # Optical blur, plus a faint wide glow from out-of-focus light around dense regions.
    glow = rng.uniform(0.0, 0.15) * gaussian(fg, sigma=8.0 * scale, truncate=2.5)
    fg = gaussian(fg, sigma=rng.uniform(0.6, 1.5) * scale) + glow
    photons = rng.uniform(60.0, 400.0)
    read_noise = rng.uniform(0.004, 0.02)
    if style == "brightfield":
        light = _background(rng, image_size, 0.72, 0.88)
        clean = light[..., None] * np.exp(-fg[..., None] * _STAIN_OD * rng.uniform(0.8, 1.4))
        noise_shape = clean.shape
    else:
        # Noise goes on the single detector channel before tinting, so grey images keep R == G == B exactly.
        clean = rng.uniform(0.6, 1.0) * (_background(rng, image_size, 0.02, 0.1) + fg)
        noise_shape = image_size
    # Shot noise as its Gaussian approximation (variance proportional to signal): ~15x cheaper than rng.poisson.
    noisy = clean + np.sqrt(np.clip(clean, 0.0, None) / photons) * rng.standard_normal(noise_shape, dtype=np.float32)
    noisy += read_noise * rng.standard_normal(noise_shape, dtype=np.float32)
    if style != "brightfield":
        noisy = noisy[..., None] * (_TINTS[rng.integers(len(_TINTS))] if style == "tinted" else np.ones(3))
    return np.clip(np.round(noisy * 255.0), 0, 255).astype(np.uint8)


def synthesize_nuclei_image(
    rng: np.random.Generator, image_size: tuple[int, int]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Synthesises one fluorescence-like nuclei image with exact instance masks.

    Args:
        rng: source of randomness; the output is a pure function of its state and ``image_size``.
        image_size: ``(H, W)``, each at least 32.

    Returns:
        ``(image, masks)``: ``image`` is uint8 ``(H, W, 3)``; ``masks`` is a list of boolean ``(H, W)`` arrays, one per
        nucleus, pairwise disjoint and non-empty.

    Raises:
        ValueError: if ``image_size`` is not a valid size.
    """
    size = _as_size(image_size)
    labels, signal = _place_nuclei(rng, size)
    image = _render(rng, labels, signal)
    masks = [labels == k for k in range(1, int(labels.max()) + 1)]
    return image, masks


def _hex(text: str, length: int) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:length]


def _write_sample(out_dir: Path, sample_id: str, image: np.ndarray, masks: list[np.ndarray], rgba: bool) -> None:
    """Writes one DSB-style sample folder, replacing any masks a previous run left there."""
    image_dir, mask_dir = out_dir / sample_id / "images", out_dir / sample_id / "masks"
    image_dir.mkdir(parents=True, exist_ok=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    for stale in mask_dir.glob("*.png"):
        stale.unlink()
    if rgba:
        image = np.dstack([image, np.full(image.shape[:2], 255, dtype=np.uint8)])
    # zlib level 1 is ~4x faster than PNG's default for noisy images and only ~10% larger.
    Image.fromarray(image).save(image_dir / f"{sample_id}.png", compress_level=1)
    for k, mask in enumerate(masks):
        Image.fromarray(mask.astype(np.uint8) * 255).save(
            mask_dir / f"{_hex(f'{sample_id}/{k}', 16)}.png", compress_level=1
        )


def _make_sample(out_dir: Path, seed: int, index: int, size: tuple[int, int]) -> tuple[str, int]:
    """Synthesises and writes sample ``index``; returns its id and number of nuclei."""
    rng = np.random.default_rng([seed, index])
    sample_id = f"synth_{index:04d}_{_hex(f'{seed}:{index}:{size[0]}x{size[1]}', 8)}"
    image, masks = synthesize_nuclei_image(rng, size)
    _write_sample(out_dir, sample_id, image, masks, rgba=index % 6 != 3)
    return sample_id, len(masks)


def _write_readme(root: Path, num_images: int, size: tuple[int, int], seed: int, num_nuclei: int) -> None:
    text = f"""# Synthetic nuclei dataset (NOT real data)

This folder was generated by `medkit.data.synthetic_nuclei.generate_nuclei_dataset` as a stand-in for the
2018 Data Science Bowl `stage1_train` set, so the nuclei segmentation bundle runs without downloads.

- images: {num_images} ({num_nuclei} nuclei in total)
- image size (H, W): {size[0]} x {size[1]}
- seed: {seed}
- layout: `stage1_train/<id>/images/<id>.png` (RGBA or RGB) and `stage1_train/<id>/masks/<mask_id>.png`
  (one {{0, 255}} mask per nucleus)

The images are simulated fluorescence (and a few brightfield-like) nuclei. Metrics measured on them say nothing
about performance on real microscopy. To train on the real data, download `stage1_train` from
https://www.kaggle.com/c/data-science-bowl-2018 and point the bundle at it with
`--dataset_dir /path/to/stage1_train`.
"""
    (root / "SYNTHETIC.md").write_text(text, encoding="utf-8")


def generate_nuclei_dataset(
    root: str | Path, num_images: int = 48, image_size: int | tuple[int, int] = 256, seed: int = 0
) -> Path:
    """Writes a synthetic nuclei dataset in the DSB2018 ``stage1_train`` layout.

    Files are a pure function of ``(num_images, image_size, seed)``: rerunning on the same numpy/scipy/Pillow stack
    gives byte-identical PNGs. Every
    sixth image (index 3, 9, ...) is written as RGB, the rest as RGBA with alpha 255, like the real set.

    Args:
        root: folder to write into; created if missing.
        num_images: number of images, at least 1.
        image_size: ``H`` for square images or ``(H, W)``; each side at least 32.
        seed: seed of the generator.

    Returns:
        ``root / "stage1_train"``.

    Raises:
        ValueError: if ``num_images``, ``image_size`` or ``seed`` is invalid.
    """
    if isinstance(num_images, bool) or not isinstance(num_images, (int, np.integer)) or num_images < 1:
        raise ValueError(f"num_images must be an int >= 1, got {num_images!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}.")
    size = _as_size(image_size)
    out_dir = Path(root) / "stage1_train"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [_make_sample(out_dir, int(seed), index, size) for index in range(num_images)]
    ids, num_nuclei = {sample_id for sample_id, _ in written}, sum(n for _, n in written)
    extra = sorted({p.name for p in out_dir.iterdir()} - ids)
    if extra:
        logger.warning(
            "%s holds %d entries not written by this run (e.g. %s); readers will see them.",
            out_dir,
            len(extra),
            extra[0],
        )
    _write_readme(Path(root), num_images, size, int(seed), num_nuclei)
    logger.info("Wrote %d synthetic nuclei images (%d nuclei, seed %d) to %s", num_images, num_nuclei, seed, out_dir)
    return out_dir
