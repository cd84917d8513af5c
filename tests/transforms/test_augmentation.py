"""Augmentation presets: contents, masks moving with the image, image-only intensity changes, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.transforms import Compose
from monai.utils import set_determinism

from medkit.transforms import AUGMENTATION_PRESETS, augmentation_preset

EXPECTED = {
    "none": [],
    "flips": ["RandFlipd", "RandFlipd", "RandRotate90d"],
    "rotate": ["RandAffined"],
    "elastic": ["Rand2DElasticd"],
    "intensity": ["RandScaleIntensityFixedMeand", "RandAdjustContrastd", "RandGaussianNoised", "RandBiasFieldd"],
}
EXPECTED["all"] = EXPECTED["flips"] + EXPECTED["rotate"] + EXPECTED["elastic"] + EXPECTED["intensity"]


def _sample() -> dict[str, torch.Tensor]:
    label = torch.zeros(1, 33, 40)
    label[0, 10:20, 5:30] = 1.0
    fov = torch.zeros(1, 33, 40)
    fov[0, 2:31, 2:38] = 1.0
    return {"image": torch.rand(1, 33, 40) + 2 * label, "label": label, "fov": fov}


@pytest.mark.parametrize("name", AUGMENTATION_PRESETS, ids=AUGMENTATION_PRESETS)
def test_preset_contents(name):
    assert [type(t).__name__ for t in augmentation_preset(name)] == EXPECTED[name]


@pytest.mark.parametrize("name", AUGMENTATION_PRESETS, ids=AUGMENTATION_PRESETS)
def test_masks_stay_binary_and_keep_shape(name):
    set_determinism(0)
    out = Compose(augmentation_preset(name, mask_keys=("label", "fov"), prob=1.0))(_sample())
    for key in ("label", "fov"):
        assert set(torch.unique(torch.as_tensor(out[key])).tolist()) <= {0.0, 1.0}
    # 90-degree rotations may swap the two sides; nothing else changes the size
    assert sorted(out["image"].shape[1:]) == [33, 40] and out["label"].shape == out["image"].shape
    set_determinism(None)


def test_intensity_touches_the_image_only():
    sample = _sample()
    out = Compose(augmentation_preset("intensity", mask_keys=("label", "fov"), prob=1.0))(dict(sample))
    assert not torch.equal(torch.as_tensor(out["image"]), sample["image"])
    assert torch.equal(torch.as_tensor(out["label"]), sample["label"])
    assert torch.equal(torch.as_tensor(out["fov"]), sample["fov"])


def test_spatial_presets_move_masks_with_the_image():
    # the image is the label plus a constant: wherever the label moves, the bright pixels must follow
    sample = _sample()
    sample["image"] = 1.0 + sample["label"].clone()
    for name in ("flips", "rotate", "elastic"):
        set_determinism(1)
        out = Compose(augmentation_preset(name, prob=1.0))(dict(sample))
        image, label = np.asarray(out["image"]), np.asarray(out["label"])
        agree = ((image > 1.5) == (label > 0.5)).mean()
        assert agree > 0.97, (name, agree)
    set_determinism(None)


def test_same_seed_same_draw():
    draws = []
    for _ in range(2):
        set_determinism(3)
        draws.append(torch.as_tensor(Compose(augmentation_preset("all", prob=1.0))(_sample())["image"]))
    set_determinism(None)
    torch.testing.assert_close(draws[0], draws[1])


@pytest.mark.parametrize("kwargs,match", [({"name": "flip"}, "'flip'"), ({"name": "all", "prob": 2.0}, "prob")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        augmentation_preset(**kwargs)


def test_preview_draws_differ_and_none_is_identity():
    from medkit.transforms import preview_augmentations

    sample = _sample()
    grid = preview_augmentations(sample, ["none", "rotate"], draws=2, seed=5, prob=1.0)
    assert [len(v) for v in grid.values()] == [2, 2]
    assert torch.equal(grid["none"][0]["image"], sample["image"])
    assert not torch.equal(grid["rotate"][0]["image"], grid["rotate"][1]["image"])
    again = preview_augmentations(sample, ["rotate"], draws=1, seed=5, prob=1.0)
    torch.testing.assert_close(again["rotate"][0]["image"], grid["rotate"][0]["image"])
