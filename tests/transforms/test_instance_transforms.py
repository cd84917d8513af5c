"""Instance label loading, foreground + boundary targets, and the watershed that splits touching nuclei."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from medkit.metrics import dsb_average_precision
from medkit.transforms import (
    InstanceTarget,
    InstanceTargetd,
    LoadInstanceMask,
    LoadInstanceMaskd,
    WatershedInstances,
    WatershedInstancesd,
)


def _disc(shape: tuple[int, int], centre: tuple[float, float], radius: float) -> np.ndarray:
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


def _touching_pair(shape: tuple[int, int] = (40, 60)) -> np.ndarray:
    """Two discs of radius 9 whose centres are 16 px apart: they overlap; the right one takes the shared pixels."""
    labels = np.zeros(shape, np.int32)
    labels[_disc(shape, (20, 20), 9)] = 1
    labels[_disc(shape, (20, 36), 9)] = 2
    return labels


def _save(path, array: np.ndarray) -> str:
    Image.fromarray(array).save(path)
    return str(path)


def test_per_nucleus_files_become_labels_in_file_order(tmp_path):
    a = np.zeros((6, 8), np.uint8)
    a[1:3, 1:3] = 255
    b = np.zeros((6, 8), np.uint8)
    b[2:5, 2:6] = 255  # overlaps a at (2, 2): the later file wins
    labels = LoadInstanceMask()([_save(tmp_path / "a.png", a), _save(tmp_path / "b.png", b)])
    assert labels.shape == (1, 8, 6)  # PILReader layout: (1, W, H)
    grid = labels[0].numpy().T
    assert grid[1, 1] == 1 and grid[2, 2] == 2 and grid[4, 5] == 2 and grid[0, 0] == 0
    assert labels.meta["filename_or_obj"].endswith("a.png")


def test_single_union_mask_gives_connected_components(tmp_path):
    union = np.zeros((6, 8), np.uint8)
    union[0:2, 0:2] = 255
    union[2:4, 2:4] = 255  # touches the first only at a corner: 8-connected, one object
    union[5, 7] = 255
    labels = LoadInstanceMask()(_save(tmp_path / "m.png", union))[0].numpy().T
    assert sorted(np.unique(labels)) == [0, 1, 2]
    assert labels[0, 0] == labels[3, 3] != labels[5, 7]


def test_single_label_image_keeps_its_values(tmp_path):
    lab = np.zeros((6, 8), np.uint8)
    lab[0:3, 0:4] = 3
    lab[0:3, 4:8] = 7  # touching objects stay apart because their values differ
    labels = LoadInstanceMaskd("label")({"label": _save(tmp_path / "l.png", lab)})["label"][0].numpy().T
    np.testing.assert_array_equal(labels, lab)


def test_target_is_foreground_and_inner_rims():
    lab = np.zeros((1, 7, 12), np.float32)
    lab[0, 1:6, 1:6] = 1
    lab[0, 1:6, 6:11] = 2  # touching at columns 5|6
    target = InstanceTarget()(torch.from_numpy(lab))
    assert target.shape == (2, 7, 12) and target.dtype == torch.float32
    np.testing.assert_array_equal(target[0].numpy(), lab[0] > 0)
    rim = target[1].numpy().astype(bool)
    # each 5x5 square: its 16 outer pixels; the 3x3 inside is not rim
    assert rim.sum() == 32
    assert rim[1:6, 5].all() and rim[1:6, 6].all()  # both sides of the contact line
    assert not rim[2:5, 2:5].any() and not rim[2:5, 7:10].any()
    wide = InstanceTargetd("label", boundary_width=2)({"label": torch.from_numpy(lab)})["label"]
    assert wide[1].sum() > rim.sum() and not (wide[1].numpy().astype(bool) & ~(lab[0] > 0)).any()
    with pytest.raises(ValueError, match="at least 1"):
        InstanceTarget(0)


def test_watershed_splits_touching_nuclei_that_a_threshold_merges():
    true = _touching_pair()
    target = InstanceTarget()(torch.from_numpy(true)[None].float())
    labels = WatershedInstances()(target)
    assert labels.shape == (1, 40, 60) and labels.dtype == torch.int32
    assert dsb_average_precision(labels, true) > 0.9
    # the foreground alone (what connected components of a binary mask see) is one object
    merged = WatershedInstances()(torch.stack([target[0], torch.zeros_like(target[0])]))
    assert int(merged.max()) == 1
    # the merged object overlaps the larger disc just over IoU 0.5: one match at 0.5 (TP 1, FN 1), none above
    assert dsb_average_precision(merged, true) == pytest.approx(0.5 / 10)
    # rim_threshold above 1 ignores the rim: connected components of the foreground, the merged pair again
    np.testing.assert_array_equal(WatershedInstances(rim_threshold=1.5)(target), merged)


def test_watershed_keeps_all_rim_objects_and_drops_specks():
    probs = np.zeros((2, 20, 20), np.float32)
    probs[0, 2:5, 2:5] = 0.9  # a 3x3 nucleus that is all rim: no marker, kept as its own object
    probs[1, 2:5, 2:5] = 0.9
    probs[0, 10:18, 10:18] = 0.9  # a nucleus with an interior
    probs[0, 0, 19] = 0.9  # a 1-pixel speck: removed (min_size 4)
    labels = WatershedInstancesd("pred")({"pred": torch.from_numpy(probs)})["pred_instances"][0].numpy()
    assert sorted(np.unique(labels)) == [0, 1, 2]
    assert labels[3, 3] != labels[12, 12] and labels[0, 19] == 0
    with pytest.raises(ValueError, match=r"\(2, H, W\)"):
        WatershedInstances()(torch.zeros(1, 5, 5))
