from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medkit.data.synthetic_retina import generate_retina_dataset, synthesize_fundus


@pytest.mark.parametrize("size", [64, (80, 96)], ids=["square", "non-square"])
def test_fundus_image_and_masks(size):
    image, vessels, fov = synthesize_fundus(np.random.default_rng(0), size)
    shape = (size, size) if isinstance(size, int) else size
    assert image.shape == (*shape, 3) and image.dtype == np.uint8
    assert vessels.shape == fov.shape == shape and vessels.dtype == fov.dtype == bool
    assert not (vessels & ~fov).any()  # every vessel pixel lies inside the FOV
    assert 0.03 < vessels.sum() / fov.sum() < 0.3
    assert 0.4 < fov.mean() < 0.75 and not fov[0, 0] and fov[shape[0] // 2, shape[1] // 2]
    assert image[~fov].mean() < 15 < image[fov].mean()  # a bright disc on a dark background
    green = image[..., 1].astype(float)
    assert np.median(green[vessels]) < np.median(green[fov & ~vessels])  # vessels are darker in the green channel


def test_same_seed_same_image():
    a = synthesize_fundus(np.random.default_rng([3, 21]), 64)
    b = synthesize_fundus(np.random.default_rng([3, 21]), 64)
    c = synthesize_fundus(np.random.default_rng([4, 21]), 64)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[1], c[1])


def test_dataset_in_drive_layout(tmp_path):
    root = generate_retina_dataset(tmp_path, num_train=2, num_test=1, image_size=64, seed=0)
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert names == [
        "SYNTHETIC.md",
        "test/1st_manual/01_manual1.gif",
        "test/images/01_test.tif",
        "test/mask/01_test_mask.gif",
        "training/1st_manual/21_manual1.gif",
        "training/1st_manual/22_manual1.gif",
        "training/images/21_training.tif",
        "training/images/22_training.tif",
        "training/mask/21_training_mask.gif",
        "training/mask/22_training_mask.gif",
    ]
    assert Image.open(root / "training/images/21_training.tif").mode == "RGB"
    mask = np.asarray(Image.open(root / "training/1st_manual/21_manual1.gif").convert("L"))
    assert set(np.unique(mask)) == {0, 255}
    # image n is seeded with [seed, n], so the file matches a direct call
    _, vessels, _ = synthesize_fundus(np.random.default_rng([0, 21]), 64)
    assert np.array_equal(mask > 0, vessels)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"num_train": 0}, "num_train"),
        ({"num_test": 21}, "at most 20"),
        ({"image_size": 20}, "at least 48"),
        ({"seed": -1}, "seed"),
    ],  # fmt: skip
    ids=["no-train", "too-many-test", "small", "seed"],
)
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_retina_dataset(tmp_path, **kwargs)
