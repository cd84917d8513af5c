"""The synthetic endoscopy generator: determinism, classes, layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from medkit.data.synthetic_endo import CLASSES, GREY_LEVELS, generate_endo_dataset, synthesize_endo_frame


def test_frame_is_deterministic_and_labelled():
    a_img, a_lab = synthesize_endo_frame(np.random.default_rng(3), (40, 52))
    b_img, b_lab = synthesize_endo_frame(np.random.default_rng(3), (40, 52))
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_lab, b_lab)
    assert a_img.shape == (40, 52, 3) and a_img.dtype == np.uint8 and a_lab.shape == (40, 52)
    assert a_lab.max() < len(CLASSES) and (a_lab > 0).any()  # at least one instrument
    assert a_img[..., 0].mean() > a_img[..., 2].mean()  # reddish tissue


def test_every_class_appears_over_a_few_frames():
    seen = set()
    for k in range(12):
        seen |= set(np.unique(synthesize_endo_frame(np.random.default_rng(k), 64)[1]).tolist())
    assert seen == set(range(len(CLASSES)))


def test_instruments_look_different_from_tissue():
    img, lab = synthesize_endo_frame(np.random.default_rng(0), 64)
    tissue, shaft = img[lab == 0].astype(float), img[lab == CLASSES.index("shaft")].astype(float)
    assert shaft[:, 0].mean() < tissue[:, 0].mean() - 40  # dark shaft on red tissue


def test_dataset_layout_and_mapping(tmp_path):
    root = generate_endo_dataset(
        tmp_path,
        num_train=2,
        num_validation=1,
        num_test=1,
        num_colorization=3,
        num_colorization_validation=1,
        image_size=(32, 40),
        seed=5,
    )
    mapping = json.loads((root / "segmentation" / "mapping.json").read_text())
    assert {int(g): v["name"] for g, v in mapping.items()} == dict(zip(GREY_LEVELS, CLASSES))
    label = np.asarray(Image.open(root / "segmentation" / "train" / "labels" / "train_0001.png"))
    assert label.shape == (32, 40) and set(np.unique(label)) <= set(GREY_LEVELS)
    assert len(list((root / "colorization" / "train_cor").glob("*.png"))) == 3
    assert (root / "SYNTHETIC.md").is_file()
    again = generate_endo_dataset(
        tmp_path / "again",
        num_train=2,
        num_validation=1,
        num_test=1,
        num_colorization=3,
        num_colorization_validation=1,
        image_size=(32, 40),
        seed=5,
    )
    assert (again / "segmentation/test/images/test_0000.png").read_bytes() == (
        root / "segmentation/test/images/test_0000.png"
    ).read_bytes()


@pytest.mark.parametrize(
    "kwargs, message",
    [({"image_size": 16}, "at least 32"), ({"num_test": 0}, "test frames must be an int >= 1")],
    ids=["size", "count"],
)
def test_invalid_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_endo_dataset(tmp_path, **kwargs)
