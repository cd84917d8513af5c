"""Smoke test of bundles/fashion_vgg: train, evaluate and (standalone) inference as subprocesses, explain; the
last_layer arm with and without the ImageNet weights file, MONAI's workflow properties and the network shape
in-process; a learning check on two gross classes."""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from conftest import REPO_ROOT, bundle_layers, run_bundle, run_bundle_in_process, workflow_property_problems
from PIL import Image

from medkit.cli import main
from medkit.data.fashion import RAW_FILES, raw_folder, write_idx
from medkit.data.synthetic_fashion import generate_fashion_dataset
from medkit.networks.vgg import VGG16_IMAGENET_FILE

CONFIGS = REPO_ROOT / "bundles" / "fashion_vgg" / "configs"
TRAIN = str(CONFIGS / "train.json")
TINY = ["--epochs", "1", "--batch_size", "16", "--spatial_size", "[32, 32]", "--num_workers", "0"]
# the overrides of TINY that inference.json takes (it has no training keys)
INFER_TINY = ["--batch_size", "16", "--spatial_size", "[32, 32]", "--num_workers", "0"]


def _scalars(run_dir: Path) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: [e.value for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return generate_fashion_dataset(tmp_path_factory.mktemp("fashion") / "data", num_train=50, num_test=20)


@pytest.fixture(scope="module")
def training(data, tmp_path_factory) -> Iterator[dict]:
    out = tmp_path_factory.mktemp("fashion_run") / "scratch"
    proc = run_bundle("run", "--config_file", TRAIN, "--dataset_dir", str(data), "--output_dir", str(out), *TINY)
    yield {"out": out, "log": proc.stdout + proc.stderr}
    shutil.rmtree(out)  # VGG16's three checkpoints: 3.5 GB of disk until the session ends otherwise


@pytest.fixture(scope="module")
def trained(training) -> Path:
    return training["out"]


def test_scratch_training_writes_checkpoints_split_and_curves(trained, training):
    for name in ("model.pt", "model_final.pt", "checkpoint_epoch=1.pt", "datalist.json", "run_settings.json"):
        assert (trained / name).is_file(), name
    final = torch.load(trained / "model_final.pt", weights_only=True)
    assert set(final) == {"model", "optimizer", "trainer", "validator_best", "epoch_progress"}
    assert len(final["optimizer"]["state"]) == 32  # every VGG16 weight and bias trains from scratch
    split = json.loads((trained / "datalist.json").read_text())
    assert [len(split[k]) for k in ("train", "val", "test")] == [45, 5, 20] and split["synthetic"] is True
    assert json.loads((trained / "run_settings.json").read_text())["mode"] == "scratch"
    scalars = _scalars(trained)
    assert {"train_loss", "val_accuracy", "val_loss", "loss/train", "loss/validation"} <= set(scalars)
    assert len(scalars["train_loss"]) == 3  # 45 images in batches of 16
    log = training["log"]
    assert "Epoch 1/1: train_loss" in log and "Iter: 1/3" not in log  # one progress line per epoch
    assert "best val_accuracy" in log and "evaluate.json" in log  # the run summary
    assert "Epoch 1/1: train_loss" in (trained / "train.log").read_text()


def test_evaluate_writes_accuracy_per_class_and_confusion_matrix(trained, data):
    run_bundle("run", "--config_file", bundle_layers(CONFIGS, "train.json", "evaluate.json"),
               "--output_dir", str(trained), *TINY)  # fmt: skip
    report = json.loads((trained / "eval" / "metrics.json").read_text())
    assert report["num_samples"] == 20 and report["split"] == "test" and report["mode"] == "scratch"
    assert report["dataset_dir"] == str(data.resolve())  # the run's data, found through its datalist.json
    assert 0 <= report["metrics"]["accuracy"] <= 1 and report["metrics"]["cross_entropy"] > 0
    assert list(report["metrics"]["per_class_accuracy"])[0] == "T-shirt/top"
    assert len(report["metrics"]["per_class_accuracy"]) == 10
    assert sum(map(sum, report["confusion_matrix"]["rows_true_columns_predicted"])) == 20
    assert report["metrics"]["accuracy"] == pytest.approx(report["engine_metrics"]["val_accuracy"])
    assert (trained / "eval" / "confusion_matrix.png").stat().st_size > 1000


@pytest.fixture(scope="module")
def pngs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fashion_pngs")
    from medkit.data.synthetic_fashion import synthesize_garment

    rng = np.random.default_rng(0)
    for k in (0, 1, 7):
        Image.fromarray(synthesize_garment(rng, k)).save(folder / f"garment_{k}.png")
    return folder


def test_inference_on_a_png_folder_builds_no_training_data(trained, pngs, tmp_path):
    preds = tmp_path / "preds"
    # inference.json runs on its own; a dataset_dir that does not exist proves it builds no training data
    run_bundle("run", "--config_file", str(CONFIGS / "inference.json"), "--input_dir", str(pngs),
               "--output_dir", str(preds), "--ckpt_path", str(trained / "model.pt"),
               "--dataset_dir", str(tmp_path / "no_training_data_here"), *INFER_TINY)  # fmt: skip
    rows = list(csv.DictReader(open(preds / "predictions.csv")))
    assert [r["id"] for r in rows] == ["garment_0", "garment_1", "garment_7"]
    for r in rows:
        probs = [float(v) for k, v in r.items() if k.startswith("probability_")]
        assert len(probs) == 10 and sum(probs) == pytest.approx(1, abs=1e-4)
        assert int(r["predicted_label"]) == int(np.argmax(probs))


def test_explain_on_the_bundle(trained, pngs, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # explain expands inference.json's % macros from the repository root itself
    args = ["explain", "--bundle", "fashion_vgg", "--checkpoint", str(trained / "model.pt"), "--images", str(pngs),
            "--per-class", "1", "--output-dir", str(tmp_path), "--override", "spatial_size=[32, 32]"]  # fmt: skip
    assert main(args) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / f) for f in ("saliency.png", "gradcam.png",
                                                                           "feature_maps.png")]  # fmt: skip


def test_last_layer_mode_without_weights_names_the_file(data, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    proc = run_bundle_in_process("run", "--config_file", TRAIN, "--dataset_dir", str(data),
                                 "--output_dir", str(tmp_path / "run"), "--mode", "last_layer", *TINY,
                                 check=False)  # fmt: skip
    assert proc.returncode != 0
    expected = tmp_path / "torch_home" / "hub" / "checkpoints" / VGG16_IMAGENET_FILE
    assert f"ImageNet VGG16 weights not found at {expected}" in proc.stdout + proc.stderr


def test_last_layer_mode_trains_only_the_last_layer(data, tmp_path, monkeypatch):
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in torchvision.models.vgg16(weights=None).state_dict().items()}
    generator = torch.Generator().manual_seed(0)
    fake = {k: torch.randn(shape, generator=generator) * 0.01 for k, shape in shapes.items()}
    weights = tmp_path / "torch_home" / "hub" / "checkpoints" / VGG16_IMAGENET_FILE
    weights.parent.mkdir(parents=True)
    torch.save(fake, weights)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    out = tmp_path / "last_layer"
    # only model_final.pt is checked: no validation, so no model.pt (0.5 GB)
    proc = run_bundle_in_process("run", "--config_file", TRAIN, "--dataset_dir", str(data), "--output_dir", str(out),
                                 "--mode", "last_layer", "--learning_rate", "0.01", *TINY,
                                 "--val_interval", "2")  # fmt: skip
    assert "loading ImageNet VGG16 weights from" in proc.stdout + proc.stderr
    final = torch.load(out / "model_final.pt", weights_only=True)
    assert [len(g["params"]) for g in final["optimizer"]["param_groups"]] == [2]  # head weight and bias only
    assert {tuple(s["exp_avg"].shape) for s in final["optimizer"]["state"].values()} == {(10, 4096), (10,)}
    model = final["model"]
    for key, value in fake.items():
        if not key.startswith("classifier.6"):
            torch.testing.assert_close(model[key], value, rtol=0, atol=0, msg=key)
    assert model["head.weight"].shape == (10, 4096)


@pytest.mark.parametrize("configs", [["train.json", "evaluate.json"], ["inference.json"]], ids=["evaluate", "infer"])
def test_last_layer_checkpoints_are_used_without_the_weights_file(configs, tmp_path, monkeypatch):
    from monai.bundle import ConfigParser

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no ImageNet file here: the checkpoint holds every weight
    monkeypatch.chdir(REPO_ROOT)  # inference.json's % macros name train.json from the repository root
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / name) for name in configs])
    parser["mode"] = "last_layer"
    parser["ckpt_path"] = str(tmp_path / "model.pt")  # inference.json reads the network's settings beside it
    net = parser.get_parsed_content("network_def")
    assert net.head.out_features == 10 and net.trainable_parameters()  # built, no FileNotFoundError


@pytest.mark.parametrize("workflow_type, config", [("train", "train.json"), ("inference", "inference.json")])
def test_monai_workflow_properties(trained, data, pngs, tmp_path, workflow_type, config):
    overrides = {"dataset_dir": str(data), "output_dir": str(tmp_path / "o")}
    if workflow_type == "inference":
        overrides.update(input_dir=str(pngs), ckpt_path=str(trained / "model.pt"))
    assert workflow_property_problems(CONFIGS / config, workflow_type, **overrides) == []


def test_metadata_verifies_against_the_shipped_schema(caplog):
    from monai.bundle import verify_metadata

    caplog.set_level("INFO")
    # in-process (the other bundles run it as a subprocess): it raises on an invalid file
    verify_metadata(meta_file=str(CONFIGS / "metadata.json"), filepath=str(REPO_ROOT / "bundles" / "meta_schema.json"))
    assert "metadata is verified with no error" in caplog.text


def _write_dark_and_bright(root: Path, num_train: int = 32, val_fraction: float = 0.25) -> Path:
    """IDX files of 28x28 images of two classes: label 0 (T-shirt/top) dark, grey 0-40, label 1 (Trouser) bright,
    grey 215-255, each pixel drawn on its own. Labels alternate within each part of the bundle's seeded train/val
    split (``split_items``, seed 0), so both parts are balanced; the test file holds two images."""
    from medkit.data.datalist import split_items

    rng = np.random.default_rng(0)
    labels = np.zeros(num_train, np.uint8)
    parts = split_items(range(num_train), (1 - val_fraction, val_fraction), seed=0, names=("train", "val"))
    for part in parts.values():
        labels[part] = np.arange(len(part)) % 2
    for split, split_labels in (("train", labels), ("test", np.array([0, 1], np.uint8))):
        images = np.where(split_labels[:, None, None] == 1, 215, 0) + rng.integers(0, 41, (len(split_labels), 28, 28))
        write_idx(raw_folder(root) / RAW_FILES[split][0], images.astype(np.uint8))
        write_idx(raw_folder(root) / RAW_FILES[split][1], split_labels)
    return root


def test_bundle_learns_dark_from_bright_garments(tmp_path):
    """Five epochs of the bundle's train.json (VGG16 from scratch) tell dark images from bright ones: the pipeline
    learns.

    The bound is derived, not copied from a run: always predicting one class scores the validation split's majority
    share, 0.5 (4 + 4 images, asserted below), and an untrained network, whose ten near-zero logits barely depend on
    the image, predicts one class for all, so at most that. The classes differ by 175 grey levels at every pixel, so a
    network that learns labels every validation image right: the bound is 0.9 (7 of 8 is 0.875). Overrides:
    batch size 8 (three optimizer steps an epoch) and no per-epoch checkpoints (1.7 GB each with Adam's state).
    Mutation: an optimizer with learning rate 0 (in train.json) scores 0.0 (every image put in a third class) and
    fails.
    """
    data = _write_dark_and_bright(tmp_path / "data")
    out = tmp_path / "run"
    proc = run_bundle_in_process("run", "--config_file", TRAIN, "--dataset_dir", str(data), "--output_dir", str(out),
                                 "--mode", "scratch", "--epochs", "5", "--batch_size", "8", "--spatial_size",
                                 "[32, 32]", "--num_workers", "0", "--val_fraction", "0.25",
                                 "--train#trainer#checkpoint_interval", "0")  # fmt: skip
    labels = torchvision.datasets.FashionMNIST(str(data), train=True, download=False).targets
    val = [int(labels[int(i.split(":")[1])]) for i in json.loads((out / "datalist.json").read_text())["val"]]
    shutil.rmtree(out)  # model.pt (0.5 GB) and model_final.pt (1.7 GB with Adam's state)
    assert sorted(val) == [0, 0, 0, 0, 1, 1, 1, 1]  # majority share 0.5
    best = float(re.search(r"best val_accuracy ([0-9.]+) at epoch", proc.stdout + proc.stderr).group(1))
    assert best > 0.9, best


@pytest.mark.parametrize("network, size", [("vgg16", (32, 32)), ("mlp", (28, 28)), ("mobilenet", (36, 44))])
def test_network_switch_builds_each_network_for_ten_classes(network, size):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(TRAIN)
    parser.update({"network": network, "spatial_size": list(size)})
    net = parser.get_parsed_content("network_def").eval()
    expected = {"vgg16": "VGGTransfer", "mlp": "MLP", "mobilenet": "MobileNetV1"}[network]
    assert type(net).__name__ == expected
    with torch.no_grad():
        assert net(torch.zeros(3, 1, *size)).shape == (3, 10)


def test_last_layer_mode_refuses_networks_without_imagenet_weights():
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(TRAIN)
    parser.update({"network": "mlp", "mode": "last_layer"})
    with pytest.raises(RuntimeError) as info:  # MONAI wraps the error of a $ expression
        parser.get_parsed_content("network_def")
    assert str(info.value.__cause__) == "unknown network for --mode last_layer 'mlp'; choose one of ['vgg16']"


def test_mlp_run_is_evaluated_and_applied_with_the_network_it_was_trained_with(data, pngs, tmp_path):
    """Train the MLP at 28x28, then evaluate and infer without --network or --spatial_size: both read them from the
    run's run_settings.json (the VGG16 default at 64x64 would not load the MLP's weights)."""
    out = tmp_path / "mlp"
    run_bundle_in_process("run", "--config_file", TRAIN, "--dataset_dir", str(data), "--output_dir", str(out),
                          "--network", "mlp", "--spatial_size", "[28, 28]", "--epochs", "1",
                          "--batch_size", "16")  # fmt: skip
    settings = json.loads((out / "run_settings.json").read_text())
    assert (settings["network"], settings["spatial_size"]) == ("mlp", [28, 28])
    final = torch.load(out / "model_final.pt", weights_only=True)
    assert final["model"]["layers.0.weight"].shape == (256, 28 * 28)  # the MLP on the flattened 28x28 image
    run_bundle_in_process("run", "--config_file", bundle_layers(CONFIGS, "train.json", "evaluate.json"),
                          "--output_dir", str(out))  # fmt: skip
    report = json.loads((out / "eval" / "metrics.json").read_text())
    assert report["network"] == "mlp" and report["num_samples"] == 20
    preds = tmp_path / "preds"
    run_bundle_in_process("run", "--config_file", str(CONFIGS / "inference.json"), "--input_dir", str(pngs),
                          "--output_dir", str(preds), "--ckpt_path", str(out / "model.pt"))  # fmt: skip
    assert len(list(csv.DictReader(open(preds / "predictions.csv")))) == 3


def test_evaluate_keeps_the_runs_split_of_a_single_pair(tmp_path):
    """A single image/label pair is split by the run's seed. Evaluate without --seed scores the run's own test split:
    the split drawn with the default seed 0 would hold images that the seed-3 run trained on. Mutation: without
    evaluate.json's seed line, evaluate splits again with seed 0 and rewrites datalist.json (this test fails)."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10, dtype=np.uint8), 7)  # 70 images, the fewest a stratified split takes
    write_idx(tmp_path / "data" / "tiny-images-idx3-ubyte", rng.integers(0, 256, (70, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "data" / "tiny-labels-idx1-ubyte", labels)
    out = tmp_path / "run"
    run_bundle_in_process("run", "--config_file", TRAIN, "--dataset_dir", str(tmp_path / "data"), "--output_dir",
                          str(out), "--network", "mlp", "--spatial_size", "[28, 28]", "--epochs", "1", "--seed", "3",
                          "--batch_size", "16")  # fmt: skip
    saved = (out / "datalist.json").read_text()
    split = json.loads(saved)
    assert split["seed"] == 3 and split["layout"] == "pair"
    run_bundle_in_process("run", "--config_file", bundle_layers(CONFIGS, "train.json", "evaluate.json"),
                          "--output_dir", str(out))  # fmt: skip
    assert (out / "datalist.json").read_text() == saved
    report = json.loads((out / "eval" / "metrics.json").read_text())
    assert report["num_samples"] == len(split["test"])
