"""Progress, TensorBoard images and hparams (medkit.bundle.progress); published weights (medkit.bundle.models)."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest
import torch

from medkit.bundle.errors import UserError
from medkit.bundle.models import default_checkpoint, publish_model
from medkit.bundle.progress import RunSummary, TensorBoardImages, format_seconds, to_display_image


@pytest.mark.parametrize(
    "seconds, text", [(4.25, "4.2s"), (59.94, "59.9s"), (75.2, "1m15s"), (3725, "1h02m05s")], ids=str
)
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


def test_display_image_scales_grey_keeps_rgb_and_argmaxes_classes():
    grey = torch.tensor([[[2.0, 4.0], [6.0, 10.0]]])
    torch.testing.assert_close(to_display_image(grey), torch.tensor([[[0.0, 0.25], [0.5, 1.0]]]))
    onehot = torch.zeros(4, 1, 3)
    onehot[0, 0, 0] = onehot[3, 0, 1] = onehot[1, 0, 2] = 1
    torch.testing.assert_close(to_display_image(onehot), torch.tensor([[[0.0, 1.0, 1 / 3]]]))
    assert to_display_image(torch.ones(3, 2, 2)).shape == (3, 2, 2)
    assert to_display_image(torch.rand(1, 4, 4, 5)).shape == (1, 4, 4)  # middle slice of a volume
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        to_display_image(torch.zeros(5))


class _Writer:
    def __init__(self):
        self.images: dict[str, torch.Tensor] = {}

    def add_image(self, tag, value, step):
        self.images[tag] = (value, step)


def test_images_are_named_and_transposed_to_height_width():
    image = torch.arange(6.0).reshape(1, 3, 2)  # MONAI's (C, W, H)
    label = (image > 2).float()
    engine = SimpleNamespace(
        state=SimpleNamespace(batch=[{"image": image, "label": label}], output=[{"pred": 1 - label}], epoch=4)
    )
    writer = _Writer()
    TensorBoardImages(writer)(engine)
    assert sorted(writer.images) == ["image", "label", "prediction"]
    value, step = writer.images["image"]
    assert step == 4 and value.shape == (1, 2, 3)
    torch.testing.assert_close(value[0, 1, 0], torch.tensor(0.2))  # pixel (w=0, h=1) = 1 of 0..5
    # class labels of a classifier are not images: only the input is written
    writer = _Writer()
    engine.state.batch = {"image": image[None], "label": torch.tensor([[1.0]])}
    engine.state.output = {"pred": torch.tensor([[0.3]])}
    TensorBoardImages(writer)(engine)
    assert sorted(writer.images) == ["image"]


def test_summary_writes_hparams_against_best_metric(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tmp_path))
    validator = SimpleNamespace(
        state=SimpleNamespace(
            key_metric_name="val_dice", best_metric=0.8, best_metric_epoch=3, metrics={"val_dice": 0.7}
        )
    )
    summary = RunSummary(tmp_path, validator, writer, {"learning_rate": 0.01, "channels": [4, 8]}, bundle_root="b/x")
    assert summary.best() == ("val_dice", 0.8, 3)
    summary(SimpleNamespace(state=SimpleNamespace(epoch=5, max_epochs=5)))
    writer.close()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert events.Scalars("best/val_dice")[0].value == pytest.approx(0.8)
    assert events.Scalars("final/val_dice")[0].value == pytest.approx(0.7)
    content = b"".join(events.PluginTagToContent("hparams").values())
    assert b"learning_rate" in content and b"best/val_dice" in content


def test_evaluate_command_keeps_the_runs_data_layers_but_not_the_multi_gpu_one(tmp_path, monkeypatch):
    train, coco, gpu = "bundles/s/configs/train.json", "bundles/s/configs/coco_masks.json", "x/multi_gpu_train.json"
    argv = ["monai/bundle", "run", "--config_file", f"['{train}','{coco}','{gpu}']", "--epochs", "3", "--lr", "0.1"]
    monkeypatch.setattr(sys, "argv", argv)
    command = RunSummary(tmp_path, bundle_root="bundles/s").evaluate_command()
    assert command == (
        "python -m monai.bundle run --config_file "
        f"\"['{train}','{coco}','bundles/s/configs/evaluate.json']\" --output_dir {tmp_path} --lr 0.1"
    )


def test_default_checkpoint_prefers_published_weights(tmp_path):
    bundle, run = tmp_path / "bundles" / "x", tmp_path / "runs" / "x" / "default"
    with pytest.raises(UserError, match=r"no weights at .*models/model.pt or .*default/model.pt; pass --ckpt_path"):
        default_checkpoint(bundle, run)
    run.mkdir(parents=True)
    (run / "model.pt").write_bytes(b"run")
    assert default_checkpoint(bundle, run) == str(run / "model.pt")
    published = publish_model(bundle, run)
    assert published.read_bytes() == b"run" and default_checkpoint(bundle, run) == str(published)
    with pytest.raises(UserError, match="missing/model.pt does not exist"):
        publish_model(bundle, tmp_path / "missing")


def test_publish_takes_the_sidecars_inference_needs_but_not_the_split(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("model.pt", "mapping.json", "run_settings.json", "datalist.json"):
        (run / name).write_text(name)
    publish_model(tmp_path / "b", run)
    assert sorted(p.name for p in (tmp_path / "b" / "models").iterdir()) == [
        "mapping.json",
        "model.pt",
        "run_settings.json",
    ]
