"""Smoke test of bundles/endo_instrument_seg: finetuning, evaluation and standalone inference as subprocesses;
colorization pretraining, plain training with resume, MONAI's workflow and network checks and the metadata
in-process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, bundle_layers, run_bundle, run_bundle_in_process, workflow_property_problems
from PIL import Image

from medkit.data.synthetic_endo import GREY_LEVELS, generate_endo_dataset

CONFIGS = REPO_ROOT / "bundles" / "endo_instrument_seg" / "configs"
TINY = ["--batch_size", "4", "--spatial_size", "[32,40]", "--channels", "[4,8,16]", "--num_workers", "0"]
# the network and frame size of TINY, the overrides inference.json takes
INFER_TINY = ["--spatial_size", "[32,40]", "--channels", "[4,8,16]", "--num_workers", "0"]


def _layers(*names: str) -> str:
    return bundle_layers(CONFIGS, *names)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Pretrains (2 epochs, in-process) and finetunes (2 epochs, a subprocess) on a tiny generated set."""
    root = tmp_path_factory.mktemp("endo")
    data = generate_endo_dataset(
        root / "data", num_train=8, num_validation=2, num_test=3, num_colorization=8, num_colorization_validation=2,
        image_size=(32, 40), seed=0,
    )  # fmt: skip
    pre, fine = root / "pretrain", root / "finetune"
    common = ["--dataset_dir", str(data), "--epochs", "2", *TINY]
    pre_log = run_bundle_in_process("run", "--config_file", _layers("train.json", "pretrain_colorization.json"),
                                    "--output_dir", str(pre), *common)  # fmt: skip
    fine_log = run_bundle(
        "run", "--config_file", _layers("train.json", "finetune.json"), "--output_dir", str(fine),
        "--pretrained_ckpt", str(pre / "model.pt"), "--augmentation", "flips", *common,
    )  # fmt: skip
    return {"root": root, "data": data, "pre": pre, "fine": fine, "pre_log": pre_log.stdout + pre_log.stderr,
            "fine_log": fine_log.stdout + fine_log.stderr}  # fmt: skip


def test_pretraining_learns_grey_to_rgb(runs):
    pre = runs["pre"]
    state = torch.load(pre / "model.pt", weights_only=True)
    assert state["encoders.0.0.weight"].shape[1] == 1 and state["head.weight"].shape[0] == 3
    assert "val_psnr" in runs["pre_log"] and "val_mse" in runs["pre_log"]
    split = json.loads((pre / "datalist.json").read_text())
    assert [len(split["train"]), len(split["val"])] == [8, 2] and split["layout"] == "colorization"


def test_finetune_loads_matching_layers_and_logs_the_skipped_ones(runs):
    log = runs["fine_log"]
    assert f"from {runs['pre'] / 'model.pt'}" in log
    assert "skipped encoders.0.0.weight: shape (4, 1, 3, 3) in checkpoint vs (4, 3, 3, 3) in model" in log
    assert "skipped head.weight: shape (3, 4, 1, 1) in checkpoint vs (4, 4, 1, 1) in model" in log
    for name in ("model.pt", "model_final.pt", "checkpoint_epoch=2.pt", "datalist.json", "mapping.json"):
        assert (runs["fine"] / name).is_file(), name
    assert len(list(runs["fine"].glob("events.out.tfevents.*"))) == 1
    assert all(
        f", {key} " in log for key in ("val_dice_shaft", "val_dice_background", "val_dice_mean", "val_dice_mean_fg")
    )
    assert "Epoch 2/2: train_loss" in log and "Iter: 1/" not in log  # one progress line per epoch
    assert "best val_mean_dice" in log and str(runs["fine"] / "model.pt") in log  # the run summary
    settings = json.loads((runs["fine"] / "run_settings.json").read_text())
    assert settings["augmentation"] == "flips" and settings["pretrained_ckpt"].endswith("model.pt")


def test_loss_curves_share_one_chart(runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(runs["fine"])).Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/train", "loss/validation", "train_loss", "val_mean_dice", "val_dice_clasper"} <= tags
    assert len(events.Scalars("loss/validation")) == 2
    assert {"image", "label", "prediction"} <= set(events.Tags()["images"])


def test_evaluate_writes_per_class_metrics_and_overlays(runs):
    out = runs["fine"]
    run_bundle("run", "--config_file", _layers("train.json", "evaluate.json"), "--output_dir", str(out), *TINY)
    report = json.loads((out / "eval" / "metrics.json").read_text())
    assert report["classes"] == ["background", "shaft", "clasper", "probe"] and report["num_images"] == 3
    metrics = report["metrics"]
    for name in ("background", "shaft", "clasper", "probe"):
        assert f"test_dice_{name}" in metrics
    for key in ("test_mean_dice", "test_dice_mean_fg", "test_dice_mean"):
        assert 0.0 <= metrics[key] <= 1.0
    assert list(report["per_class"]["test_dice"]) == ["background", "shaft", "clasper", "probe"]
    assert len(list((out / "eval" / "overlays").glob("*_overlay.png"))) == 3


def test_inference_writes_grey_level_labels_at_input_size(runs, tmp_path):
    src = tmp_path / "frames"
    src.mkdir()
    frame = Image.open(runs["data"] / "segmentation" / "test" / "images" / "test_0000.png")
    frame.resize((50, 37)).save(src / "odd.png")
    preds = tmp_path / "preds"
    # inference.json runs on its own; a dataset_dir that does not exist proves it reads no training data
    run_bundle(
        "run", "--config_file", str(CONFIGS / "inference.json"), "--input_dir", str(src),
        "--output_dir", str(preds), "--ckpt_path", str(runs["fine"] / "model.pt"),
        "--dataset_dir", str(tmp_path / "no_training_data_here"), *INFER_TINY,
    )  # fmt: skip
    pred = np.asarray(Image.open(preds / "odd.png"))
    assert pred.shape == (37, 50) and pred.dtype == np.uint8 and set(np.unique(pred)) <= set(GREY_LEVELS)


def test_plain_training_and_resume(runs):
    out = runs["root"] / "plain"
    common = ["--dataset_dir", str(runs["data"]), "--output_dir", str(out), *TINY, "--loss_name", "dice"]
    first = run_bundle_in_process("run", "--config_file", str(CONFIGS / "train.json"), "--epochs", "1", *common)
    assert "initialised" not in first.stdout + first.stderr  # no pretrained weights by default
    resumed = run_bundle_in_process("run", "--config_file", str(CONFIGS / "train.json"), "--epochs", "2",
                                    "--resume", "true", *common)  # fmt: skip
    log = resumed.stdout + resumed.stderr
    assert "Restored all variables" in log and "Epoch 2/2:" in log and "Epoch 1/2:" not in log
    assert torch.load(out / "model_final.pt", weights_only=True)["trainer"]["iteration"] == 2 * 2


@pytest.mark.parametrize("workflow_type, config", [("train", "train.json"), ("inference", "inference.json")])
def test_monai_workflow_properties(runs, tmp_path, workflow_type, config):
    overrides = {"output_dir": str(tmp_path / "o"), "spatial_size": [32, 40], "channels": [4, 8, 16]}
    if workflow_type == "train":
        overrides["dataset_dir"] = str(runs["data"])
    else:
        frames = runs["data"] / "segmentation" / "test"
        overrides.update(input_dir=str(frames), ckpt_path=str(runs["fine"] / "model.pt"))
    assert workflow_property_problems(CONFIGS / config, workflow_type, **overrides) == []


def test_metadata_verifies_against_the_shipped_schema():
    # what `monai.bundle verify_metadata --filepath bundles/meta_schema.json` checks, without another subprocess
    import jsonschema

    metadata = json.loads((CONFIGS / "metadata.json").read_text())
    jsonschema.validate(metadata, json.loads((REPO_ROOT / "bundles" / "meta_schema.json").read_text()))
    assert metadata["network_data_format"]["outputs"]["pred"]["num_channels"] == 4


def _write_two_instruments(root: Path, counts: dict[str, int], size: tuple[int, int] = (32, 40), seed: int = 0) -> Path:
    """A course-layout set with two easy instruments on reddish noisy tissue: a dark grey shaft entering from the left
    border (grey level 85 in the label) and a bluish-white probe entering from the right (255), one in the upper half
    of the frame and the other in the lower; every frame holds both."""
    rng = np.random.default_rng(seed)
    h, w = size
    seg = root / "segmentation"
    seg.mkdir(parents=True)
    mapping = {"0": {"index": 0, "name": "background"}, "85": {"index": 1, "name": "shaft"},
               "255": {"index": 2, "name": "probe"}}  # fmt: skip
    (seg / "mapping.json").write_text(json.dumps(mapping))
    colours = np.array([[170, 60, 50], [50, 50, 50], [200, 200, 230]], np.float64)
    greys = np.array([0, 85, 255], np.uint8)
    for split, n in counts.items():
        (seg / split / "images").mkdir(parents=True)
        (seg / split / "labels").mkdir()
        for i in range(n):
            index = np.zeros(size, np.uint8)
            for cls, half in zip((1, 2), rng.permutation(2)):
                width, length = rng.integers(5, 9), rng.integers(w // 2, w - 4)
                row = rng.integers(half * h // 2, (half + 1) * h // 2 - width)
                cols = slice(0, length) if cls == 1 else slice(w - length, w)
                index[row : row + width, cols] = cls
            frame = np.clip(colours[index] + rng.normal(0, 15, (h, w, 3)), 0, 255).astype(np.uint8)
            name = f"{split}_{i:02d}.png"
            Image.fromarray(frame).save(seg / split / "images" / name)
            Image.fromarray(greys[index]).save(seg / split / "labels" / name)
    return root


def test_bundle_learns_two_easy_instruments(tmp_path):
    """Fifteen epochs of the bundle as configured (Dice+CE on softmax, grey-level labels through mapping.json) segment
    two instruments told apart by colour: the pipeline learns.

    The bound is derived, not copied from a run: val_mean_dice averages the instruments' Dice over the validation
    frames, so predicting class k everywhere scores at most (2 p_k / (1 + p_k)) / 2 (p_k the mean fraction of class k;
    the other instrument scores 0), 0.14 here, and all-background scores 0. Colour alone tells every pixel's class
    (colours over 120 grey levels apart, noise 15), so a pipeline that learns is far above 0.7. Mutation: an optimizer
    with lr 0 scores 0.38 and fails.
    """
    data = _write_two_instruments(tmp_path / "data", {"train": 24, "validation": 4, "test": 1})
    out = tmp_path / "run"
    proc = run_bundle_in_process(
        "run", "--config_file", str(CONFIGS / "train.json"), "--dataset_dir", str(data), "--output_dir", str(out),
        "--epochs", "15", "--batch_size", "4", "--spatial_size", "[32,40]", "--channels", "[8,16,32]",
        "--num_workers", "0",
    )  # fmt: skip
    labels = [np.asarray(Image.open(p)) for p in sorted((data / "segmentation" / "validation" / "labels").iterdir())]
    fractions = [float(np.mean([(label == grey).mean() for label in labels])) for grey in (85, 255)]
    constant = max(2 * p / (1 + p) for p in fractions) / 2
    assert constant < 0.2, constant
    best = float(re.search(r"best val_mean_dice ([0-9.]+) at epoch", proc.stdout + proc.stderr).group(1))
    assert best > 0.7, best
