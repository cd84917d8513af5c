from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medkit.data.synthetic_nuclei import generate_nuclei_dataset, synthesize_nuclei_image

SIZE = (96, 128)
NUM_IMAGES = 7


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _load_masks(sample_dir: Path) -> np.ndarray:
    return np.stack([np.array(Image.open(p)) for p in sorted((sample_dir / "masks").glob("*.png"))])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_nuclei_dataset(tmp_path_factory.mktemp("synth"), num_images=NUM_IMAGES, image_size=SIZE, seed=3)


def test_layout_and_modes(dataset: Path) -> None:
    assert dataset.name == "stage1_train"
    samples = sorted(p for p in dataset.iterdir())
    assert len(samples) == NUM_IMAGES and all(p.is_dir() for p in samples)
    modes = []
    for sample in samples:
        assert sorted(p.name for p in sample.iterdir()) == ["images", "masks"]
        images = list((sample / "images").iterdir())
        assert [p.name for p in images] == [f"{sample.name}.png"]
        with Image.open(images[0]) as image:
            modes.append(image.mode)
            assert image.size == (SIZE[1], SIZE[0])
            if image.mode == "RGBA":
                assert np.all(np.array(image)[..., 3] == 255)
        for mask_path in (sample / "masks").glob("*.png"):
            with Image.open(mask_path) as mask:
                assert mask.mode == "L" and mask.size == (SIZE[1], SIZE[0])
                assert set(np.unique(np.array(mask))) == {0, 255}
    assert modes.count("RGBA") > modes.count("RGB") > 0
    assert set(modes) == {"RGBA", "RGB"}


def test_masks_disjoint_and_count_plausible(dataset: Path) -> None:
    for sample in dataset.iterdir():
        masks = _load_masks(sample) > 0
        assert 1 <= len(masks) <= 60
        assert masks.sum(axis=(1, 2)).min() >= 8
        assert masks.sum(axis=0).max() == 1, f"overlapping masks in {sample.name}"


def test_synthetic_md(dataset: Path) -> None:
    text = (dataset.parent / "SYNTHETIC.md").read_text()
    assert "synthetic" in text.lower() and "medkit" in text
    assert "seed: 3" in text and f"images: {NUM_IMAGES}" in text and "--dataset_dir /path/to/stage1_train" in text


def test_deterministic(tmp_path: Path) -> None:
    kwargs = {"num_images": 3, "image_size": 64}
    first = _files(generate_nuclei_dataset(tmp_path / "a", seed=5, **kwargs))
    second = _files(generate_nuclei_dataset(tmp_path / "b", seed=5, **kwargs))
    other = _files(generate_nuclei_dataset(tmp_path / "c", seed=6, **kwargs))
    assert first == second
    assert set(first).isdisjoint(other)
    first_images = sorted(v for k, v in first.items() if "/images/" in k)
    other_images = sorted(v for k, v in other.items() if "/images/" in k)
    assert first_images != other_images


def test_rerun_overwrites_in_place(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="medkit.data.synthetic_nuclei"):
        out = generate_nuclei_dataset(tmp_path, num_images=2, image_size=48, seed=1)
    assert any("Wrote 2 synthetic nuclei images" in r.getMessage() for r in caplog.records)
    before = _files(out)
    assert _files(generate_nuclei_dataset(tmp_path, num_images=2, image_size=48, seed=1)) == before


@pytest.mark.parametrize("index", range(12))
def test_synthesized_image(index: int) -> None:
    image, masks = synthesize_nuclei_image(np.random.default_rng([0, index]), (256, 256))
    assert image.dtype == np.uint8 and image.shape == (256, 256, 3)
    assert 5 <= len(masks) <= 60
    stack = np.stack(masks)
    assert stack.dtype == bool and stack.shape[1:] == (256, 256)
    assert stack.sum(axis=0).max() == 1
    radii = np.sqrt(stack.sum(axis=(1, 2)) / np.pi)
    assert 2.5 <= np.median(radii) <= 22
    foreground = stack.any(axis=0)
    inside, outside = image[foreground].mean(), image[~foreground].mean()
    assert abs(inside - outside) > 20, (inside, outside)
    if np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2]):
        assert inside > outside + 20, "grey images are fluorescence: nuclei brighter than background"


def test_style_mix() -> None:
    images = [synthesize_nuclei_image(np.random.default_rng([0, i]), (64, 64))[0] for i in range(30)]
    grey = [np.ptp(im.astype(int), axis=2).max() == 0 for im in images]
    assert 0.5 * len(images) <= sum(grey) < len(images)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_images": 0}, "num_images"),
        ({"num_images": 2.5}, "num_images"),
        ({"image_size": 16}, "16"),
        ({"image_size": (64, 31)}, r"\(64, 31\)"),
        ({"image_size": (64, 64, 3)}, r"\(64, 64, 3\)"),
        ({"image_size": "256"}, "'256'"),
        ({"seed": -1}, "-1"),
    ],
    ids=["zero_images", "float_images", "small_int_size", "small_side", "three_dims", "string_size", "negative_seed"],
)
def test_invalid_arguments(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        generate_nuclei_dataset(tmp_path, **kwargs)
    assert not (tmp_path / "stage1_train").exists()


def test_synthesize_rejects_small_size() -> None:
    with pytest.raises(ValueError, match="20"):
        synthesize_nuclei_image(np.random.default_rng(0), (20, 64))
