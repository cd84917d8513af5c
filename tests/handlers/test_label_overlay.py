"""Colour overlays and the overlay saver."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from monai.data import MetaTensor
from PIL import Image

from medkit.handlers import LabelOverlaySaver, colour_overlay, to_label_map


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
