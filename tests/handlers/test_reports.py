from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import torch
from ignite.engine import Engine, Events
from monai.data import MetaTensor
from PIL import Image

from medkit.handlers import MetricsJSONWriter, SegmentationFigureSaver, TimeLimitHandler, find_resume_checkpoint


def _engine_with_outputs(n: int) -> Engine:
    def step(engine, i):
        img = MetaTensor(torch.rand(1, 8, 6), meta={"filename_or_obj": f"/data/img{i}.png"})
        return [{"image": img, "label": (img > 0.5).float(), "pred": (img > 0.4).float()}]

    engine = Engine(step)

    @engine.on(Events.COMPLETED)
    def _metrics(e):
        e.state.metrics = {"val_mean_dice": 0.75, "note": "text is skipped"}
        e.state.metric_details = {"val_mean_dice": torch.tensor([[0.5], [1.0], [0.75]])}

    return engine


def test_metrics_json_lists_per_image_values(tmp_path: Path):
    engine = _engine_with_outputs(3)
    writer = MetricsJSONWriter(tmp_path / "eval" / "metrics.json", extra={"checkpoint": "model.pt"})
    writer.attach(engine)
    engine.run(range(3), max_epochs=1)
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert report["metrics"] == {"val_mean_dice": 0.75}
    assert report["num_images"] == 3 and report["checkpoint"] == "model.pt"
    assert [r["image"] for r in report["per_image"]] == ["/data/img0.png", "/data/img1.png", "/data/img2.png"]
    assert [r["val_mean_dice"] for r in report["per_image"]] == [0.5, 1.0, 0.75]


def test_figure_has_one_row_per_image(tmp_path: Path):
    engine = _engine_with_outputs(5)
    SegmentationFigureSaver(tmp_path / "ex.png", num_images=3).attach(engine)
    engine.run(range(5), max_epochs=1)
    with Image.open(tmp_path / "ex.png") as im:
        width, height = im.size
    assert (width, height) == (900, 900)  # 3 columns x 3 rows of 3 inches at 100 dpi
    with pytest.raises(ValueError, match="num_images"):
        SegmentationFigureSaver(tmp_path / "x.png", num_images=0)


def test_resume_checkpoint_prefers_newest(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="holds no model_final.pt"):
        find_resume_checkpoint(tmp_path)
    final = tmp_path / "model_final.pt"
    final.write_bytes(b"x")
    assert find_resume_checkpoint(tmp_path) == str(final)
    epoch = tmp_path / "checkpoint_epoch=7.pt"
    epoch.write_bytes(b"x")
    past = time.time() - 100
    os.utime(final, (past, past))
    assert find_resume_checkpoint(tmp_path) == str(epoch)


def test_time_limit_stops_training():
    engine = Engine(lambda e, b: time.sleep(0.01))
    TimeLimitHandler(minutes=1 / 60).attach(engine)  # one second of 10 s of work
    engine.run(range(1000), max_epochs=1)
    assert 0 < engine.state.iteration < 1000
    TimeLimitHandler(None).attach(Engine(lambda e, b: None))
    with pytest.raises(ValueError, match="positive"):
        TimeLimitHandler(0)
