"""Grey-level label loading/saving and the colorization input/target pair."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import write_png
from monai.transforms import LoadImaged
from PIL import Image

from medkit.data.class_mapping import read_mapping
from medkit.transforms import ColorizationPaird, LoadGreyLabel, LoadGreyLabeld, SaveGreyLabel

MAPPING = read_mapping({"0": {"index": 0, "name": "bg"}, "85": {"index": 1, "name": "a"}, "90": 1, "170": 2})


def test_load_maps_grey_levels_to_indices_in_row_major_order(tmp_path):
    grey = np.array([[0, 85, 90], [170, 0, 0]], np.uint8)
    path = write_png(tmp_path / "l.png", grey)
    out = LoadGreyLabeld("label", MAPPING)({"label": str(path)})["label"]
    assert out.shape == (1, 2, 3) and out.dtype == torch.float32
    assert out[0].tolist() == [[0, 1, 1], [2, 0, 0]]
    assert out.meta["filename_or_obj"] == str(path)


def test_unknown_grey_value_names_file_and_value(tmp_path):
    path = write_png(tmp_path / "bad.png", np.array([[0, 85], [7, 0]], np.uint8))
    with pytest.raises(ValueError, match=r"bad.png: grey value 7 is not in mapping"):
        LoadGreyLabel(MAPPING)(str(path))


def test_endovis_masks_are_composed_by_type(tmp_path):
    first = write_png(tmp_path / "Bipolar_Forceps_labels.png", np.array([[10, 10], [0, 0]], np.uint8))
    second = write_png(tmp_path / "Other_labels.png", np.array([[0, 30], [0, 30]], np.uint8))
    out = LoadGreyLabel(MAPPING)([{"path": str(first), "index": 1}, {"path": str(second), "index": 7}])
    assert out[0].tolist() == [[1, 7], [0, 7]]


def test_save_writes_grey_levels_named_after_the_source(tmp_path):
    onehot = torch.zeros(3, 2, 3)
    onehot[0, 0] = 1
    onehot[1, 1, :2] = 1
    onehot[2, 1, 2] = 1
    from monai.data import MetaTensor

    pred = MetaTensor(onehot, meta={"filename_or_obj": "/x/frame_7.jpg"})
    SaveGreyLabel(tmp_path, MAPPING)(pred)
    saved = np.asarray(Image.open(tmp_path / "frame_7.png"))
    assert saved.tolist() == [[0, 0, 0], [85, 85, 170]]  # the smallest grey level of class 1 is written
    # indices (1, H, W) round-trip through LoadGreyLabel
    back = LoadGreyLabel(MAPPING)(str(tmp_path / "frame_7.png"))
    assert back[0].tolist() == [[0, 0, 0], [1, 1, 2]]


def test_colorization_pair_makes_grey_or_reads_it(tmp_path):
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 200
    write_png(tmp_path / "c.png", rgb)
    write_png(tmp_path / "g.png", np.full((4, 5), 33, np.uint8))
    load = LoadImaged("image", reader="PILReader", reverse_indexing=False, image_only=True, ensure_channel_first=True)
    made = ColorizationPaird()(load({"image": str(tmp_path / "c.png")}))
    assert made["image"].shape == (1, 4, 5) and made["label"].shape == (3, 4, 5)
    assert torch.allclose(made["image"], torch.full((1, 4, 5), 200 * 0.299))
    assert made["label"][0].eq(200).all() and made["label"][1:].eq(0).all()
    read = ColorizationPaird()(load({"image": str(tmp_path / "c.png"), "grey": str(tmp_path / "g.png")}))
    assert read["image"].eq(33).all()
