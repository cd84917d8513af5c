"""Named augmentation presets for 2D segmentation, selectable with one config value (``--augmentation flips``).

Presets (each a list of MONAI dictionary transforms applied to an image and its masks):

* ``none``: no augmentation;
* ``flips``: horizontal and vertical flips and 90-degree rotations;
* ``rotate``: free rotation plus a mild affine (scale, shear, translation);
* ``elastic``: smooth elastic deformation (``Rand2DElasticd``);
* ``intensity``: contrast, gamma, Gaussian noise and a smooth bias field, on the image only;
* ``all``: the four above, in that order.

Spatial transforms move the image (bilinear) and the masks (nearest) together; intensity transforms touch the image
only. Every transform is MONAI's own, so the presets are reproducible under ``monai.utils.set_determinism``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from monai.transforms import (
    Compose,
    MapTransform,
    Rand2DElasticd,
    RandAdjustContrastd,
    RandAffined,
    RandBiasFieldd,
    RandFlipd,
    RandGaussianNoised,
    RandRotate90d,
    RandScaleIntensityFixedMeand,
)

__all__ = ["AUGMENTATION_PRESETS", "augmentation_preset", "preview_augmentations"]

AUGMENTATION_PRESETS = ("none", "flips", "rotate", "elastic", "intensity", "all")


def _flips(keys: list[str], prob: float) -> list[MapTransform]:
    return [
        RandFlipd(keys, prob=prob, spatial_axis=0),
        RandFlipd(keys, prob=prob, spatial_axis=1),
        RandRotate90d(keys, prob=prob, max_k=3),
    ]


def _rotate(keys: list[str], modes: list[str], prob: float) -> list[MapTransform]:
    return [
        RandAffined(
            keys,
            prob=prob,
            rotate_range=math.pi,
            scale_range=0.1,
            shear_range=0.1,
            translate_range=4,
            mode=modes,
            padding_mode="reflection",
        )
    ]


def _elastic(keys: list[str], modes: list[str], prob: float) -> list[MapTransform]:
    # control points every 12 px, moved by up to 1.5 grid units: visible bending of vessels without tearing them
    return [
        Rand2DElasticd(keys, spacing=12, magnitude_range=(0.5, 1.5), prob=prob, mode=modes, padding_mode="reflection")
    ]


def _intensity(image_key: str, prob: float) -> list[MapTransform]:
    return [
        RandScaleIntensityFixedMeand(image_key, factors=0.3, prob=prob),  # contrast around the mean
        RandAdjustContrastd(image_key, gamma=(0.7, 1.5), prob=prob),  # gamma
        RandGaussianNoised(image_key, std=0.1, prob=prob),
        RandBiasFieldd(image_key, coeff_range=(0.0, 0.3), prob=prob),
    ]


def augmentation_preset(
    name: str, image_key: str = "image", mask_keys: Sequence[str] = ("label",), prob: float = 0.5
) -> list[MapTransform]:
    """Returns the MONAI transforms of augmentation preset ``name``.

    Args:
        name: one of :data:`AUGMENTATION_PRESETS`.
        image_key: the intensity image (moved with bilinear interpolation, and the only key intensity changes touch).
        mask_keys: masks moved with the image (nearest-neighbour), e.g. the label and a field-of-view mask.
        prob: probability of each random transform.

    Raises:
        ValueError: for an unknown preset name.

    Example:
        >>> [type(t).__name__ for t in augmentation_preset("flips")]
        ['RandFlipd', 'RandFlipd', 'RandRotate90d']
    """
    if name not in AUGMENTATION_PRESETS:
        raise ValueError(f"unknown augmentation preset {name!r}; expected one of {AUGMENTATION_PRESETS}")
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob must be in [0, 1], got {prob}")
    keys = [image_key, *mask_keys]
    modes = ["bilinear"] + ["nearest"] * len(mask_keys)
    parts = {
        "flips": lambda: _flips(keys, prob),
        "rotate": lambda: _rotate(keys, modes, prob),
        "elastic": lambda: _elastic(keys, modes, prob),
        "intensity": lambda: _intensity(image_key, prob),
    }
    chosen = list(parts) if name == "all" else [] if name == "none" else [name]
    return [t for part in chosen for t in parts[part]()]


def preview_augmentations(
    sample: dict[str, torch.Tensor],
    presets: Sequence[str] = AUGMENTATION_PRESETS,
    draws: int = 3,
    seed: int = 0,
    mask_keys: Sequence[str] = ("label",),
    prob: float = 0.5,
) -> dict[str, list[dict[str, torch.Tensor]]]:
    """Applies each preset ``draws`` times to one sample, as training would.

    Args:
        sample: channel-first tensors, e.g. ``{"image": (C, H, W), "label": (1, H, W)}``; it is not modified.
        presets: preset names, each one of :data:`AUGMENTATION_PRESETS`.
        draws: random draws per preset (``none`` gives copies of the input).
        seed: seed of the first draw; draw ``k`` of every preset uses ``seed + k``.
        mask_keys: the masks that move with the image.
        prob: probability of each random transform (``1.0`` makes every transform fire).

    Returns:
        ``{preset: [augmented sample, ...]}`` with ``draws`` samples per preset.
    """
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    out: dict[str, list[dict[str, torch.Tensor]]] = {}
    for name in presets:
        chain = Compose(augmentation_preset(name, mask_keys=mask_keys, prob=prob))
        out[name] = []
        for k in range(draws):
            chain.set_random_state(seed=seed + k)
            result = chain({key: value.clone() for key, value in sample.items()})
            out[name].append({key: torch.as_tensor(value) for key, value in result.items()})
    return out
