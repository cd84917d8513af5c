"""Colour overlays of multi-class maps (medkit.handlers.class_overlay)."""

from __future__ import annotations

import numpy as np
import torch
from ignite.engine import Engine
from monai.data import MetaTensor
from PIL import Image

from medkit.handlers import ClassOverlaySaver, overlay_classes
from medkit.handlers.class_overlay import PALETTE


def test_overlay_leaves_background_and_blends_classes():
    image = np.full((2, 2, 3), 0.5)
    classes = np.array([[0, 1], [2, 0]])
    out = overlay_classes(image, classes, alpha=0.5)
    assert out.dtype == np.uint8 and out[0, 0].tolist() == [128, 128, 128]
    np.testing.assert_allclose(out[0, 1], np.round(0.5 * 127.5 + 0.5 * PALETTE[0]), atol=1)
    np.testing.assert_allclose(out[1, 0], np.round(0.5 * 127.5 + 0.5 * PALETTE[1]), atol=1)


def test_saver_writes_one_strip_per_frame(tmp_path):
    image = MetaTensor(torch.rand(3, 4, 6), meta={"filename_or_obj": "/d/frame_a.png"})
    label = torch.zeros(1, 4, 6)
    pred = torch.zeros(2, 4, 6)
    pred[1, :2] = 1
    output = [{"image": image, "label": label, "pred": pred}] * 2
    engine = Engine(lambda e, b: output)
    ClassOverlaySaver(tmp_path, num_images=1).attach(engine)
    engine.run([0], max_epochs=1)
    strip = np.asarray(Image.open(tmp_path / "frame_a_overlay.png"))
    assert strip.shape == (4, 3 * 6 + 2 * 4, 3)
    assert len(list(tmp_path.iterdir())) == 1
