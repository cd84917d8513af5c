"""Smoke test of bundles/shapes_seg: train, evaluate and inference as subprocesses; resume, each loss, the MONAI
workflow properties and the network's shapes in-process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, bundle_layers, run_bundle, run_bundle_in_process, workflow_property_problems
from monai.bundle import verify_metadata
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from medkit.data.synthetic_shapes import SHAPE_CLASSES, generate_shapes_dataset

CONFIGS = REPO_ROOT / "bundles" / "shapes_seg" / "configs"
TRAIN = str(CONFIGS / "train.json")
TINY = ["--epochs", "1", "--batch_size", "4", "--channels", "[4,8]", "--num_workers", "0"]
# the network of TINY, the override inference.json takes
INFER_TINY = ["--channels", "[4,8]"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("shapes_seg")
    data = generate_shapes_dataset(root / "data", num_images=14, image_size=32, seed=0)
    out = root / "run"
    proc = run_bundle("run", "--config_file", TRAIN, "--dataset_dir", str(data), "--output_dir", str(out), *TINY)
    return {"root": root, "data": data, "out": out, "log": proc.stdout + proc.stderr}


def test_train_writes_checkpoints_events_and_per_class_metrics(trained):
    out = trained["out"]
    for name in ("model.pt", "model_final.pt", "checkpoint_epoch=1.pt", "datalist.json", "run_settings.json"):
        assert (out / name).is_file(), name
    assert len(list(out.glob("events.out.tfevents.*"))) == 1
    final = torch.load(out / "model_final.pt", weights_only=True)
    assert set(final) == {"model", "optimizer", "lr_scheduler", "trainer"}
    assert final["trainer"]["iteration"] == 2  # 10 training images, batch 4, last partial batch dropped
    assert json.loads((out / "run_settings.json").read_text())["loss"] == "dice_mse"
    log = trained["log"]
    assert "Epoch 1/1: train_loss" in log and "(mean of 2 iterations)" in log  # one progress line per epoch
    assert "val_dice_star" in log and "val_iou_background" in log and "val_mean_iou" in log
    assert "best val_mean_iou" in log  # the run summary
    # PerClassMetrics runs before the TensorBoard writer, which therefore gets one scalar per class
    events = EventAccumulator(str(out)).Reload()
    assert {"val_dice_star", "val_iou_background", "val_mean_iou", "train_loss"} <= set(events.Tags()["scalars"])


def test_resume_continues_from_the_last_epoch(trained):
    proc = run_bundle_in_process(
        "run", "--config_file", TRAIN, "--dataset_dir", str(trained["data"]), "--output_dir", str(trained["out"]),
        *TINY[2:], "--epochs", "2", "--resume", "true",
    )  # fmt: skip
    log = proc.stdout + proc.stderr
    assert "Restored all variables" in log and "Epoch 2/2:" in log and "Epoch 1/2:" not in log


def _train_in_process(data: Path, out: Path, loss: str, check: bool = True):
    """Runs train.json in this process (cheaper than a subprocess) for one iteration with ``loss``."""
    return run_bundle_in_process(
        "run", "--config_file", TRAIN, "--dataset_dir", str(data), "--output_dir", str(out), "--epochs", "1",
        "--batch_size", "8", "--channels", "[4,8]", "--num_workers", "0", "--val_interval", "2", "--loss", loss,
        check=check,
    )  # fmt: skip


@pytest.mark.parametrize("loss", ["mse", "dice"])
def test_each_loss_trains_one_iteration(trained, tmp_path, loss):
    _train_in_process(trained["data"], tmp_path, loss=loss)  # the module fixture trained dice_mse
    state = torch.load(tmp_path / "model_final.pt", weights_only=True)
    assert state["trainer"]["iteration"] == 1  # 10 training images, batch 8
    assert json.loads((tmp_path / "run_settings.json").read_text())["loss"] == loss
    assert next(tmp_path.glob("events.out.tfevents.*")).stat().st_size > 0


def test_unknown_loss_is_named(trained, tmp_path):
    proc = _train_in_process(trained["data"], tmp_path, loss="focal", check=False)
    assert proc.returncode == 1 and "RuntimeError" in proc.stderr
    assert "unknown loss 'focal'; choose one of ['dice', 'dice_mse', 'mse']" in proc.stderr


def test_evaluate_writes_per_class_metrics_and_overlays(trained):
    out = trained["out"]
    run_bundle("run", "--config_file", bundle_layers(CONFIGS, "train.json", "evaluate.json"), "--output_dir", str(out),
               *TINY)  # fmt: skip
    report = json.loads((out / "eval" / "metrics.json").read_text())
    assert report["split"] == "test" and report["num_images"] == 3
    assert list(report["per_class"]["val_dice"]) == list(SHAPE_CLASSES)
    for name in ("val_mean_iou", "val_mean_dice", "val_dice_rectangle", "val_iou_star", "val_dice_mean_fg"):
        assert name in report["metrics"], name
    assert 0.0 <= report["metrics"]["val_mean_iou"] <= 1.0
    overlays = sorted((out / "eval" / "overlays").glob("*_overlay.png"))
    assert len(overlays) == 3
    assert Image.open(overlays[0]).size == (32 * 3 * 4, 32 * 4)


def test_inference_writes_class_index_pngs(trained, tmp_path):
    src = tmp_path / "inputs"
    src.mkdir()
    image = Image.open(next((trained["data"] / "images").iterdir()))
    image.save(src / "a.png")
    image.crop((0, 0, 30, 21)).convert("L").save(src / "odd_grey.png")  # grey and not a multiple of 2
    preds = tmp_path / "preds"
    # inference.json runs on its own; a dataset_dir that does not exist proves it builds no training data
    run_bundle(
        "run", "--config_file", str(CONFIGS / "inference.json"), "--input_dir", str(src),
        "--output_dir", str(preds), "--ckpt_path", str(trained["out"] / "model.pt"),
        "--dataset_dir", str(tmp_path / "no_training_data_here"), *INFER_TINY,
    )  # fmt: skip
    a = np.asarray(Image.open(preds / "a.png"))
    odd = np.asarray(Image.open(preds / "odd_grey.png"))
    assert a.shape == (32, 32) and odd.shape == (21, 30)
    assert a.dtype == np.uint8 and a.max() < len(SHAPE_CLASSES)


def test_metadata_verifies_against_the_shipped_schema():
    verify_metadata(meta_file=str(CONFIGS / "metadata.json"), filepath=str(REPO_ROOT / "bundles" / "meta_schema.json"))


@pytest.mark.parametrize("workflow_type, config", [("train", "train.json"), ("inference", "inference.json")])
def test_monai_workflow_properties(trained, tmp_path, workflow_type, config):
    overrides = {"dataset_dir": str(trained["data"]), "output_dir": str(tmp_path / "o"), "channels": [4, 8]}
    if workflow_type == "inference":
        overrides.update(input_dir=str(trained["data"] / "images"), ckpt_path=str(trained["out"] / "model.pt"))
    assert workflow_property_problems(CONFIGS / config, workflow_type, **overrides) == []


def test_verify_net_in_out():
    proc = run_bundle_in_process(
        "verify_net_in_out", "network_def", "--meta_file", str(CONFIGS / "metadata.json"),
        "--config_file", str(CONFIGS / "inference.json"),
    )  # fmt: skip
    assert "data shape of network is verified with no error" in proc.stdout + proc.stderr
