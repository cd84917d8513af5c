"""Colour overlays and the overlay saver."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from monai.data import MetaTensor
from PIL import Image

from medkit.handlers import TISSUE_PALETTE, LabelOverlaySaver, colour_overlay, to_label_map


def test_colour_overlay_blends_foreground_only():
    image = np.full((2, 2, 3), 100, np.uint8)
    label = np.array([[0, 1], [2, 0]])
    out = colour_overlay(image, label, palette=[(200, 0, 0), (0, 0, 200)], alpha=0.5)
    np.testing.assert_array_equal(out[0, 0], [100, 100, 100])
    np.testing.assert_array_equal(out[0, 1], [150, 50, 50])
    np.testing.assert_array_equal(out[1, 0], [50, 50, 150])


def test_to_label_map_accepts_index_and_one_hot():
    index = torch.tensor([[[0.0, 2.0], [1.0, 0.0]]])
    onehot = torch.nn.functional.one_hot(index[0].long(), 3).permute(2, 0, 1)
    np.testing.assert_array_equal(to_label_map(index), to_label_map(onehot))
    with pytest.raises(ValueError, match="2D label map"):
        to_label_map(torch.zeros(1, 2, 2, 2))


def test_saver_writes_panels_and_legend(tmp_path):
    image = MetaTensor(torch.rand(3, 5, 4), meta={"filename_or_obj": "/x/case_7.png"})  # (C, W, H) as PILReader
    label = torch.zeros(1, 5, 4)
    label[0, 1, 2] = 1
    engine = Engine(lambda e, b: [{"image": image, "label": label, "pred": label.clone()}])
    LabelOverlaySaver(tmp_path, class_names=["background", "a"], num_images=1, scale=2).attach(engine)
    engine.run([0, 1], max_epochs=1)
    panel = np.asarray(Image.open(tmp_path / "case_7_overlay.png"))
    assert panel.shape == (4 * 2, 5 * 3 * 2, 3)  # H x (3 panels of W), upscaled 2x
    assert len(list(tmp_path.glob("*_overlay.png"))) == 1
    assert json.loads((tmp_path / "legend.json").read_text())["background"] is None


# moved from the former ClassOverlaySaver tests (endo_instrument_seg's settings)
def test_saver_row_major_frames_in_a_fixed_range_with_gaps_and_tissue_palette(tmp_path):
    image = MetaTensor(torch.full((3, 4, 6), 0.5), meta={"filename_or_obj": "/d/frame_a.png"})
    image[:, 0, 0] = 2.0  # out of range: clipped to white, not rescaling the rest
    label = torch.zeros(1, 4, 6)
    pred = torch.zeros(2, 4, 6)
    pred[1, :2] = 1
    output = [{"image": image, "label": label, "pred": pred}] * 2
    engine = Engine(lambda e, b: output)
    saver = LabelOverlaySaver(
        tmp_path, num_images=None, scale=1, transpose=False, palette=TISSUE_PALETTE, intensity_range=(0, 1), gap=4
    )
    saver.attach(engine)
    engine.run([0], max_epochs=1)
    strip = np.asarray(Image.open(tmp_path / "frame_a_overlay.png"))
    assert strip.shape == (4, 3 * 6 + 2 * 4, 3)  # (H, W) kept, three panels, two 4-px gaps
    assert strip[0, 0].tolist() == [255, 255, 255] and strip[3, 5].tolist() == [128, 128, 128]
    assert strip[:, 6:10].min() == 255  # white gap
    pred_panel = strip[:, 2 * (6 + 4) :]
    np.testing.assert_allclose(pred_panel[1, 1], np.round(0.5 * 128 + 0.5 * np.array(TISSUE_PALETTE[0])), atol=1)
    assert pred_panel[3, 1].tolist() == [128, 128, 128]  # background untouched
    assert saver._saved == 2  # num_images=None: every sample (both have the same name here)


def test_saver_rejects_bad_sizes(tmp_path):
    with pytest.raises(ValueError, match="num_images and scale"):
        LabelOverlaySaver(tmp_path, num_images=0)
