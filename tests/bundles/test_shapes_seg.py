"""Smoke test of bundles/shapes_seg: train, evaluate and inference as subprocesses; resume, each loss, --network
mUnet through train, evaluate and inference, the MONAI workflow properties and the network's shapes in-process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import (
    REPO_ROOT,
    bundle_layers,
    run_bundle,
    run_bundle_in_process,
    workflow_property_problems,
    write_png,
)
from monai.bundle import verify_metadata
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from medkit.data.synthetic_shapes import SHAPE_CLASSES, generate_shapes_dataset

CONFIGS = REPO_ROOT / "bundles" / "shapes_seg" / "configs"
TRAIN = str(CONFIGS / "train.json")
TINY = ["--epochs", "1", "--batch_size", "4", "--channels", "[4,8]", "--num_workers", "0"]
# the network of TINY, the override inference.json takes
INFER_TINY = ["--channels", "[4,8]"]
# a small mUnet: evaluate and inference read its name and widths from the run's settings
MUNET_TINY = ["--munet_channels", "[4,8]", "--munet_depth", "4"]


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
    assert set(final) == {"model", "optimizer", "lr_scheduler", "trainer", "validator_best", "epoch_progress"}
    assert final["trainer"]["iteration"] == 2  # 10 training images, batch 4, last partial batch dropped
    assert json.loads((out / "run_settings.json").read_text())["loss"] == "dice"  # the default
    log = trained["log"]
    assert "Epoch 1/1: train_loss" in log and "Iter:" not in log  # one progress line per epoch
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


@pytest.mark.parametrize("loss", ["mse", "dice_mse"])
def test_each_loss_trains_one_iteration(trained, tmp_path, loss):
    _train_in_process(trained["data"], tmp_path, loss=loss)  # the module fixture trained dice, the default
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


def test_munet_trains_and_evaluate_and_inference_read_the_choice(trained, tmp_path):
    out = tmp_path / "munet"
    run_bundle_in_process(
        "run", "--config_file", TRAIN, "--dataset_dir", str(trained["data"]), "--output_dir", str(out), *TINY,
        "--network", "mUnet", *MUNET_TINY, "--loss", "dice_mse",
    )  # fmt: skip
    assert json.loads((out / "run_settings.json").read_text())["network"] == "mUnet"
    state = torch.load(out / "model.pt", weights_only=True)
    assert "decoder3_norm.weight" in state and state["stem.0.weight"].shape == (4, 3, 3, 3)  # mUnet's, not UNet's
    # no --network, widths or loss below: read from the run_settings.json beside model.pt (UNet, or mUnet at its
    # default widths, would not load these weights)
    proc = run_bundle_in_process(
        "run", "--config_file", bundle_layers(CONFIGS, "train.json", "evaluate.json"), "--output_dir", str(out),
    )  # fmt: skip
    assert "Restored all variables" in proc.stdout + proc.stderr
    report = json.loads((out / "eval" / "metrics.json").read_text())
    assert report["network"] == "mUnet" and report["num_images"] == 3
    assert report["loss"] == "dice_mse"  # the run's, not train.json's default
    src = tmp_path / "inputs"
    src.mkdir()
    Image.open(next((trained["data"] / "images").iterdir())).crop((0, 0, 30, 21)).save(src / "odd.png")
    run_bundle_in_process(
        "run", "--config_file", str(CONFIGS / "inference.json"), "--input_dir", str(src), "--output_dir",
        str(tmp_path / "preds"), "--ckpt_path", str(out / "model.pt"),
    )  # fmt: skip
    assert np.asarray(Image.open(tmp_path / "preds" / "odd.png")).shape == (21, 30)


def test_unknown_network_is_named(trained, tmp_path):
    proc = run_bundle_in_process(
        "run", "--config_file", TRAIN, "--dataset_dir", str(trained["data"]), "--output_dir", str(tmp_path), *TINY,
        "--network", "munet", check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and "unknown network 'munet'; choose one of ['UNet', 'mUnet']" in proc.stderr


def test_metadata_verifies_against_the_shipped_schema():
    verify_metadata(meta_file=str(CONFIGS / "metadata.json"), filepath=str(REPO_ROOT / "bundles" / "meta_schema.json"))


@pytest.mark.parametrize("workflow_type, config", [("train", "train.json"), ("inference", "inference.json")])
def test_monai_workflow_properties(trained, tmp_path, workflow_type, config):
    overrides = {"dataset_dir": str(trained["data"]), "output_dir": str(tmp_path / "o"), "channels": [4, 8]}
    if workflow_type == "inference":
        overrides.update(input_dir=str(trained["data"] / "images"), ckpt_path=str(trained["out"] / "model.pt"))
    assert workflow_property_problems(CONFIGS / config, workflow_type, **overrides) == []


def _write_red_and_blue(root: Path, n: int = 40, size: int = 32, seed: int = 0) -> Path:
    """A 3-class set in the bundle's layout: a red rectangle (class 1) in one half and a blue disc (class 2) in the
    other, on a grey noisy background; every image holds both classes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    half = size // 2
    for i in range(n):
        label = np.zeros((size, size), np.uint8)
        h, w = rng.integers(6, 12, 2)
        y, x = rng.integers(0, size - h), rng.integers(0, half - w)
        label[y : y + h, x : x + w] = 1
        r = rng.integers(4, 7)
        cy, cx = rng.integers(r, size - r), rng.integers(half + r, size - r)
        label[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 2
        if rng.random() < 0.5:
            label = label[:, ::-1]
        colours = np.array([[110, 110, 110], [200, 40, 40], [40, 40, 200]], np.float64)
        image = np.clip(colours[label] + rng.normal(0, 15, (size, size, 3)), 0, 255).astype(np.uint8)
        write_png(root / "images" / f"c{i:02d}.png", image)
        write_png(root / "labels" / f"c{i:02d}.png", np.ascontiguousarray(label))
    (root / "classes.json").write_text(json.dumps({"0": "background", "1": "red_rectangle", "2": "blue_disc"}))
    return root


def test_bundle_learns_red_and_blue_shapes(tmp_path):
    """Twenty epochs of the bundle as configured (Dice+MSE on softmax, argmax and one-hot metrics) segment two colour
    classes: the multi-class pipeline learns.

    The bound is derived, not copied from a run: val_mean_iou averages the foreground classes' IoU over the validation
    images, so predicting class k everywhere scores p_k / 2 (p_k the mean fraction of class k: the IoU of class k is
    its fraction, the other class scores 0), at most 0.05 here, and all-background scores 0. Colour alone tells every
    pixel's class (colours over 130 grey levels apart, noise 15), so a pipeline that learns is far above 0.7; the best
    epoch counts, as val_mean_iou dips for a few epochs after its first peak on this data. Mutation: an optimizer with
    lr 0 scores 0.11 and fails.
    """
    data = _write_red_and_blue(tmp_path / "data")
    out = tmp_path / "run"
    proc = run_bundle_in_process(
        "run", "--config_file", TRAIN, "--dataset_dir", str(data), "--output_dir", str(out), "--num_classes", "3",
        "--epochs", "20", "--batch_size", "4", "--channels", "[8,16,32]", "--num_workers", "0",
    )  # fmt: skip
    val = json.loads((out / "datalist.json").read_text())["val"]
    labels = [np.asarray(Image.open(item["label"])) for item in val]
    constant = max(float(np.mean([(label == k).mean() for label in labels])) for k in (1, 2)) / 2
    assert constant < 0.1, constant
    best = float(re.search(r"best val_mean_iou ([0-9.]+) at epoch", proc.stdout + proc.stderr).group(1))
    assert best > 0.7, best
