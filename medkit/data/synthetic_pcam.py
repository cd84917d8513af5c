"""Synthetic H&E histology patches in the ``T_<n>.jpg`` / ``N_<n>.jpg`` folder layout read by :mod:`medkit.data.pcam`.

Patches are 96x96 RGB, the PatchCamelyon size, rendered with the Beer-Lambert law from two stain concentration maps:

* eosin (pink) stroma: a smooth, fibrous concentration field with pale gaps, as in connective tissue;
* haematoxylin (purple) nuclei: perturbed ellipses with a grainy chromatin texture.

Normal patches (label 0) hold few, small, round, lightly stained nuclei. Tumour patches (label 1) hold more, larger,
darker and more irregular nuclei, so the classes differ in nuclear density, size and stain, the cues a pathologist
uses; the parameter ranges overlap a little so the task is not trivial.

Reference for the stain vectors: A. C. Ruifrok, D. A. Johnston, "Quantification of histochemical staining by color
deconvolution", Anal. Quant. Cytol. Histol. 23(4), 2001.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

__all__ = ["generate_pcam_dataset", "synthesize_pcam_patch"]

logger = logging.getLogger(__name__)

SYNTHETIC_MARKER = "SYNTHETIC.md"
# Optical density per RGB channel of one unit of stain (Ruifrok & Johnston 2001, rows normalised).
_HAEMATOXYLIN = np.array([0.65, 0.70, 0.29])
_EOSIN = np.array([0.07, 0.99, 0.11])


@dataclass(frozen=True)
class _NucleiStyle:
    count: tuple[int, int]  # nuclei per 96x96 patch, uniform range
    radius: tuple[float, float]  # mean radius in pixels
    elongation: tuple[float, float]  # ratio of the long to the short axis
    irregularity: float  # amplitude of the boundary harmonics
    stain: tuple[float, float]  # haematoxylin concentration


_NORMAL = _NucleiStyle(count=(6, 20), radius=(2.2, 3.6), elongation=(1.0, 1.5), irregularity=0.03, stain=(0.7, 1.3))
_TUMOUR = _NucleiStyle(count=(16, 40), radius=(3.4, 6.0), elongation=(1.0, 1.8), irregularity=0.14, stain=(1.1, 1.9))


def _stroma(rng: np.random.Generator, size: int) -> np.ndarray:
    """Eosin concentration: smooth field plus fibres along a random direction, with pale gaps."""
    smooth = gaussian_filter(rng.standard_normal((size, size)), sigma=size / 12)
    smooth /= smooth.std() + 1e-8
    fibres = gaussian_filter(rng.standard_normal((size, size)), sigma=(0.8, 5.0))
    fibres /= fibres.std() + 1e-8
    if rng.random() < 0.5:
        fibres = fibres.T
    conc = 0.45 + 0.12 * smooth + 0.10 * fibres
    gaps = gaussian_filter(rng.standard_normal((size, size)), sigma=size / 10)
    gaps = gaps / (gaps.std() + 1e-8) > rng.uniform(1.0, 2.0)  # white lumen/fat spaces
    conc[gaps] *= 0.25
    return np.clip(conc, 0.0, None)


def _add_nucleus(hema: np.ndarray, rng: np.random.Generator, style: _NucleiStyle) -> None:
    """Adds one textured, perturbed ellipse of haematoxylin to ``hema`` in place."""
    size = hema.shape[0]
    radius = rng.uniform(*style.radius)
    elong = rng.uniform(*style.elongation)
    ry, rx = radius / np.sqrt(elong), radius * np.sqrt(elong)
    cy, cx = rng.uniform(0, size, 2)
    half = int(np.ceil(max(ry, rx) * 1.5)) + 1
    y0, y1 = max(int(cy) - half, 0), min(int(cy) + half + 1, size)
    x0, x1 = max(int(cx) - half, 0), min(int(cx) + half + 1, size)
    if y0 >= y1 or x0 >= x1:
        return
    dy, dx = np.ogrid[y0:y1, x0:x1]
    dy, dx = dy - cy, dx - cx
    angle = rng.uniform(0, np.pi)
    u = (dx * np.cos(angle) + dy * np.sin(angle)) / rx
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / ry
    rho, theta = np.hypot(u, v), np.arctan2(v, u)
    # harmonics 2-5 on the boundary radius: lobed, notched outlines for pleomorphic nuclei
    k = np.arange(2, 6)[:, None, None]
    amps = rng.uniform(0.0, style.irregularity, size=(4, 1, 1))
    boundary = 1.0 + (amps * np.cos(k * theta + rng.uniform(0, 2 * np.pi, size=(4, 1, 1)))).sum(axis=0)
    inside = np.clip((boundary - rho) * 3.0, 0.0, 1.0)  # soft edge about a third of the radius wide
    chromatin = 1.0 + 0.25 * rng.standard_normal(inside.shape)
    region = hema[y0:y1, x0:x1]
    np.maximum(region, rng.uniform(*style.stain) * inside * chromatin, out=region)


def synthesize_pcam_patch(rng: np.random.Generator, tumour: bool, size: int = 96) -> np.ndarray:
    """Renders one H&E-like patch.

    Args:
        rng: the random generator (the patch is a pure function of its state).
        tumour: draw tumour-like (denser, larger, darker, irregular) nuclei instead of normal ones.
        size: side length in pixels.

    Returns:
        ``uint8`` array ``(size, size, 3)``, RGB.
    """
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")
    style = _TUMOUR if tumour else _NORMAL
    scale = (size / 96.0) ** 2
    eosin = _stroma(rng, size)
    hema = np.zeros((size, size))
    for _ in range(int(round(rng.integers(style.count[0], style.count[1] + 1) * scale))):
        _add_nucleus(hema, rng, style)
    hema = gaussian_filter(hema, sigma=0.6)
    optical_density = hema[..., None] * _HAEMATOXYLIN + eosin[..., None] * _EOSIN
    rgb = 255.0 * np.exp(-optical_density) * rng.uniform(0.92, 1.0, size=3)  # per-slide illumination tint
    rgb += rng.normal(0.0, 3.0, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def generate_pcam_dataset(
    root: str | os.PathLike, num_patches: int = 200, size: int = 96, seed: int = 0, tumour_fraction: float = 0.5
) -> Path:
    """Writes ``num_patches`` synthetic patches as ``T_<n>.jpg`` (tumour) and ``N_<n>.jpg`` (normal) JPEGs.

    Patch ``n`` is drawn from its own generator seeded by ``(seed, n)``, so the set is deterministic and a larger set
    extends a smaller one. A ``SYNTHETIC.md`` note marks the folder as generated.

    Args:
        root: output folder (created).
        num_patches: number of patches; at least 2.
        size: side length in pixels (PCam: 96).
        seed: base seed.
        tumour_fraction: share of tumour patches, in (0, 1).

    Returns:
        ``root`` as a ``Path``.
    """
    if num_patches < 2:
        raise ValueError(f"num_patches must be at least 2 (one per class), got {num_patches}")
    if not 0.0 < tumour_fraction < 1.0:
        raise ValueError(f"tumour_fraction must be in (0, 1), got {tumour_fraction}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    num_tumour = min(max(int(round(num_patches * tumour_fraction)), 1), num_patches - 1)
    for n in range(num_patches):
        tumour = n < num_tumour
        patch = synthesize_pcam_patch(np.random.default_rng([seed, n]), tumour, size)
        Image.fromarray(patch).save(root / f"{'T' if tumour else 'N'}_{n}.jpg", quality=92)
    (root / SYNTHETIC_MARKER).write_text(
        "# Synthetic H&E patches (generated by medkit)\n\n"
        f"Made by `medkit.data.synthetic_pcam.generate_pcam_dataset` with num_patches={num_patches}, size={size}, "
        f"seed={seed}, tumour_fraction={tumour_fraction}. These are not real histology: tumour patches (T_*) carry "
        "denser, larger, darker and more irregular nuclei than normal ones (N_*).\n"
    )
    logger.info("wrote %d synthetic H&E patches (%d tumour) of %dx%d to %s", num_patches, num_tumour, size, size, root)
    return root
