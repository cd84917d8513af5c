"""The synthetic shapes generator: determinism, exact labels, occlusion and argument checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from medkit.data import synthetic_shapes
from medkit.data.synthetic_shapes import SHAPE_CLASSES, generate_shapes_dataset, synthesize_shapes_image


def test_same_seed_same_image_and_labels_in_range():
    a = synthesize_shapes_image(np.random.default_rng([3, 7]))
    b = synthesize_shapes_image(np.random.default_rng([3, 7]))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    image, label = a
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert label.shape == (64, 64) and label.max() < len(SHAPE_CLASSES) and label.max() > 0


def test_without_noise_the_label_is_exact():
    image, label = synthesize_shapes_image(np.random.default_rng(1), noise_std=0.0, num_objects=(1, 1))
    background = image[label == 0]
    obj = image[label > 0]
    assert (background == background[0]).all() and (obj == obj[0]).all()  # one flat colour each
    assert not np.array_equal(background[0], obj[0])


def test_later_objects_occlude_earlier_ones(monkeypatch):
    # each object is replaced by a 4x4 square, object k at rows 2k..2k+3: object 1 covers the lower half of object 0
    drawn = []

    def square(rng, cls, center, size, shape):
        rows, cols = np.meshgrid(np.arange(2 * len(drawn), 2 * len(drawn) + 4), np.arange(4), indexing="ij")
        drawn.append(cls)
        return rows.ravel(), cols.ravel()

    monkeypatch.setattr(synthetic_shapes, "_shape_pixels", square)
    image, label = synthesize_shapes_image(np.random.default_rng(2), image_size=24, num_objects=(2, 2), noise_std=0)
    first, second = drawn
    assert first != second  # this seed draws two different classes, so the overlap tells which object won
    assert (label[0:2, :4] == first).all() and (label[2:6, :4] == second).all() and (label[6:, :] == 0).all()
    colour_first, colour_second = image[0, 0], image[5, 0]
    assert not np.array_equal(colour_first, colour_second)
    assert (image[2:4, :4] == colour_second).all() and (image[0:2, :4] == colour_first).all()


def test_all_classes_appear_and_dataset_is_reproducible(tmp_path):
    root = generate_shapes_dataset(tmp_path / "a", num_images=30, image_size=32, seed=5)
    again = generate_shapes_dataset(tmp_path / "b", num_images=30, image_size=32, seed=5)
    names = sorted(p.name for p in (root / "images").iterdir())
    assert len(names) == 30 and names == sorted(p.name for p in (root / "labels").iterdir())
    labels = [np.asarray(Image.open(root / "labels" / n)) for n in names]
    assert set(np.unique(np.stack(labels))) == set(range(len(SHAPE_CLASSES)))
    for n in names[:3]:
        assert (root / "images" / n).read_bytes() == (again / "images" / n).read_bytes()
    assert json.loads((root / "classes.json").read_text()) == {str(i): c for i, c in enumerate(SHAPE_CLASSES)}
    assert "NOT real data" in (root / "SYNTHETIC.md").read_text()


@pytest.mark.parametrize(
    "kwargs,match",
    [({"num_images": 0}, "num_images"), ({"image_size": 8}, "image_size"), ({"seed": -1}, "seed")],
    ids=["no-images", "too-small", "negative-seed"],
)
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_shapes_dataset(tmp_path, **kwargs)
