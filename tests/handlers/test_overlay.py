from __future__ import annotations

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from monai.data import MetaTensor
from PIL import Image

from medkit.handlers import SegmentationOverlaySaver, error_overlay
from medkit.handlers.overlay import OVERLAY_COLOURS

LABEL = np.array([[1, 1, 0], [0, 0, 0]], dtype=np.float32)
PRED = np.array([[0.9, 0.1, 0.8], [0.0, 0.7, 0.0]], dtype=np.float32)
FOV = np.array([[1, 1, 1], [1, 0, 1]], dtype=np.float32)


def test_error_overlay_colours():
    out = error_overlay(np.zeros((1, 2, 3)), LABEL, PRED, FOV)
    assert out.shape == (2, 3, 3) and out.dtype == np.uint8
    assert tuple(out[0, 0]) == OVERLAY_COLOURS["tp"]
    assert tuple(out[0, 1]) == OVERLAY_COLOURS["fn"]
    assert tuple(out[0, 2]) == OVERLAY_COLOURS["fp"]
    assert tuple(out[1, 1]) == (0, 0, 0)  # a false positive outside the FOV is not coloured
    assert tuple(out[1, 0]) == (0, 0, 0)


def test_error_overlay_shape_mismatch():
    with pytest.raises(ValueError, match="label shape"):
        error_overlay(np.zeros((2, 3)), LABEL, PRED.T)


def test_saver_writes_one_png_per_image_at_the_input_size(tmp_path):
    # PILReader layout: (C, W, H) for an image 2 high and 3 wide
    image = MetaTensor(torch.rand(3, 3, 2), meta={"filename_or_obj": "/data/21_training.tif"})
    item = {"image": image, "label": torch.from_numpy(LABEL.T[None]), "pred": torch.from_numpy(PRED.T[None]),
            "fov": torch.from_numpy(FOV.T[None])}  # fmt: skip
    engine = Engine(lambda e, b: [item])
    SegmentationOverlaySaver(tmp_path).attach(engine)
    engine.run([0], max_epochs=1)
    png = np.asarray(Image.open(tmp_path / "21_training_overlay.png"))
    assert png.shape == (2, 3, 3)
    assert tuple(png[0, 2]) == OVERLAY_COLOURS["fp"]


def test_saver_stops_at_max_images_and_counts_each_run_afresh(tmp_path):
    def item(name):
        image = MetaTensor(torch.rand(1, 3, 2), meta={"filename_or_obj": f"/data/{name}.png"})
        return {"image": image, "label": torch.from_numpy(LABEL.T[None]), "pred": torch.from_numpy(PRED.T[None])}

    engine = Engine(lambda e, b: [item("a"), item("b")])
    saver = SegmentationOverlaySaver(tmp_path, keys=("image", "label", "pred", None), max_images=1)
    saver.attach(engine)
    engine.run([0], max_epochs=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_overlay.png"]
    (tmp_path / "a_overlay.png").unlink()
    engine.run([0], max_epochs=1)  # a new run saves again
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_overlay.png"]
