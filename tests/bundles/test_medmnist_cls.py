"""Smoke test of bundles/medmnist_cls: train, evaluate and (standalone) inference of the MLP as subprocesses; MobileNet
training and evaluation, resume, seed ensembles, flip test-time augmentation, MONAI's workflow properties, the network
shape and the metadata in-process."""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, bundle_layers, run_bundle, run_bundle_in_process, workflow_property_problems, write_png

from medkit.data.medmnist import generate_medmnist_npz
from medkit.networks import MobileNetV1

CONFIGS = REPO_ROOT / "bundles" / "medmnist_cls" / "configs"
TRAIN = str(CONFIGS / "train.json")
TINY = ["--epochs", "1", "--batch_size", "8", "--num_workers", "0"]


def _layers(*names: str) -> str:
    return bundle_layers(CONFIGS, *names)


_bundle = run_bundle


# binary task with MobileNet (BCE, one logit) and a 4-class task with the MLP (cross-entropy)
CASES = {"mobilenet": "breastmnist", "mlp": "octmnist"}
# the MLP trains the default two-member JointEnsemble; MobileNet one network, which the tests below load by hand
MEMBERS = {"mobilenet": ["--members", "1"], "mlp": []}
# the network whose train, evaluate and inference run as subprocesses, as a user runs them; the other runs in-process
SUBPROCESS_NETWORK = "mlp"


def _runner(network: str) -> Callable[..., subprocess.CompletedProcess]:
    """The subprocess runner for :data:`SUBPROCESS_NETWORK`, the in-process one for the other network."""
    return _bundle if network == SUBPROCESS_NETWORK else run_bundle_in_process


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, dict[str, Path]]:
    root = tmp_path_factory.mktemp("medmnist_cls")
    runs = {}
    for network, flag in CASES.items():
        data = root / "data"
        generate_medmnist_npz(data / f"{flag}.npz", flag=flag, counts=(16, 8, 8), seed=0)
        out = root / network
        args = ["--dataset_dir", str(data), "--flag", flag, "--network", network, "--output_dir", str(out)]
        args += MEMBERS[network]
        proc = _runner(network)("run", "--config_file", TRAIN, *args, *TINY)
        runs[network] = {"data": data, "out": out, "args": args, "log": proc.stdout + proc.stderr}
    return runs


@pytest.mark.parametrize("network", list(CASES))
def test_train_writes_checkpoints_events_and_source(trained, network):
    run = trained[network]
    out = run["out"]
    for name in ("model.pt", "model_final.pt", "data_source.json", "run_settings.json"):
        assert (out / name).is_file(), name
    assert list(out.glob("events.out.tfevents.*"))
    final = torch.load(out / "model_final.pt", weights_only=True)
    assert (
        set(final) == {"model", "optimizer", "lr_scheduler", "trainer", "validator_best", "epoch_progress"}
        and final["trainer"]["iteration"] == 2
    )
    source = json.loads((out / "data_source.json").read_text())
    assert source["flag"] == CASES[network] and source["counts"] == {"train": 16, "val": 8, "test": 8}
    assert not source["synthetic"]  # a given dataset_dir is never called synthetic
    settings = json.loads((out / "run_settings.json").read_text())
    assert settings["network"] == network
    # the MLP's default run trains two members together; model.pt holds both, each under its own prefix
    members = {k.split(".")[1] for k in final["model"] if k.startswith("members.")}
    assert (settings["members"], members) == ((2, {"0", "1"}) if network == "mlp" else (1, set()))
    assert "val_auc" in run["log"] and "val_acc" in run["log"] and "val_loss" in run["log"]
    assert json.loads((out / "run_settings.json").read_text())["precise_bn"] is True
    assert "Epoch 1/1: train_loss" in run["log"] and "best val_auc" in run["log"]  # epoch line and run summary


def test_resume_continues_from_the_last_epoch(trained):
    run = trained["mlp"]
    proc = run_bundle_in_process(
        "run", "--config_file", TRAIN, *run["args"], *TINY, "--epochs", "2", "--resume", "true"
    )
    log = proc.stdout + proc.stderr
    assert "Restored all variables" in log and "Epoch 2/2:" in log and "Epoch 1/2:" not in log
    assert torch.load(run["out"] / "model_final.pt", weights_only=True)["trainer"]["iteration"] == 4


@pytest.mark.parametrize("network", list(CASES))
def test_evaluate_writes_test_metrics(trained, network):
    run = trained[network]
    _runner(network)("run", "--config_file", _layers("train.json", "evaluate.json"), *run["args"], *TINY)
    report = json.loads((run["out"] / "eval" / "metrics.json").read_text())
    assert report["split"] == "test" and report["num_samples"] == 8 and report["flag"] == CASES[network]
    assert report["members"] == (2 if network == "mlp" else 1)  # read from the run's settings, not passed
    assert 0.0 <= report["metrics"]["roc_auc"] <= 1.0 and 0.0 <= report["metrics"]["accuracy"] <= 1.0
    # the report's own AUC and accuracy agree with the engine's metrics on the same (test) split
    assert report["metrics"]["roc_auc"] == pytest.approx(report["engine_metrics"]["val_auc"], abs=1e-6)
    assert report["metrics"]["accuracy"] == pytest.approx(report["engine_metrics"]["val_acc"], abs=1e-6)
    num_classes = 2 if CASES[network] == "breastmnist" else 4
    cm = np.array(report["confusion_matrix"]["rows_true_columns_predicted"])
    assert cm.shape == (num_classes, num_classes) and cm.sum() == 8
    assert (run["out"] / "eval" / "confusion_matrix.png").is_file()
    # binary flags decide at the threshold training saved beside model.pt (chosen on the validation split, read back by
    # evaluate; the engine's val_acc above uses it too); multi-class flags save none and decide by argmax
    saved = run["out"] / "threshold.json"
    if num_classes == 2:
        assert report["threshold"] == json.loads(saved.read_text())["threshold"]
    else:
        assert not saved.exists() and "threshold" not in report


def test_inference_writes_probabilities_per_file(trained, tmp_path):
    run = trained["mlp"]
    src = tmp_path / "inputs"
    write_png(src / "case_a.png", np.full((28, 28), 90, np.uint8))
    write_png(src / "case_b.png", np.zeros((32, 32, 3), np.uint8))  # resized and converted to grey
    # inference.json runs on its own; a dataset_dir that does not exist proves it builds no training data
    args = ["--flag", "octmnist", "--network", "mlp", "--dataset_dir", str(tmp_path / "no_training_data_here")]
    _bundle(
        "run",
        "--config_file",
        str(CONFIGS / "inference.json"),
        *args,
        "--input_dir",
        str(src),
        "--output_dir",
        str(tmp_path / "preds"),
        "--ckpt_path",
        str(run["out"] / "model.pt"),
    )
    with (tmp_path / "preds" / "inputs_predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == ["case_a", "case_b"]
    probs = np.array([[float(r[f"probability_{i}"]) for i in range(4)] for r in rows])
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-4)
    assert [int(r["predicted_label"]) for r in rows] == probs.argmax(1).tolist()
    assert {r["predicted_class"] for r in rows} <= {
        "choroidal neovascularization",
        "diabetic macular edema",
        "drusen",
        "normal",
    }


@pytest.mark.parametrize("workflow_type, config", [("train", "train.json"), ("inference", "inference.json")])
def test_monai_workflow_properties(trained, tmp_path, workflow_type, config):
    run = trained["mlp"]
    overrides = {
        "dataset_dir": str(run["data"]),
        "flag": "octmnist",
        "network": "mlp",
        "output_dir": str(tmp_path / "o"),
    }
    if workflow_type == "inference":
        overrides.update(input_dir=str(run["data"] / "octmnist.npz"), ckpt_path=str(run["out"] / "model.pt"))
    assert workflow_property_problems(CONFIGS / config, workflow_type, **overrides) == []


def test_metadata_is_valid():
    run_bundle_in_process(
        "verify_metadata",
        "--meta_file",
        str(CONFIGS / "metadata.json"),
        "--filepath",
        str(REPO_ROOT / "bundles" / "meta_schema.json"),
    )


@pytest.fixture(scope="module")
def ensemble(trained, tmp_path_factory) -> dict:
    """Two MobileNet runs on breastmnist, seeds 0 and 1, under one folder as ``medkit sweep --set seed=0,1`` lays them
    out; the members' mean probability of class 1 on the test images, computed here by hand."""
    run = trained["mobilenet"]
    root = tmp_path_factory.mktemp("medmnist_ensemble")
    (root / "seed=0").mkdir()
    (root / "seed=0" / "model.pt").write_bytes((run["out"] / "model.pt").read_bytes())
    args = ["--dataset_dir", str(run["data"]), "--flag", "breastmnist", "--network", "mobilenet", "--members", "1"]
    # validated with flip TTA: model.pt still holds the plain network's weights (loaded strictly below)
    seed1 = ["--seed", "1", "--output_dir", str(root / "seed=1"), "--tta", "true"]
    run_bundle_in_process("run", "--config_file", TRAIN, *args, *TINY, *seed1)
    npz = np.load(run["data"] / "breastmnist.npz")
    images = npz["test_images"]
    x = (torch.tensor(images, dtype=torch.float32)[:, None] / 255.0 - 0.5) / 0.5
    probs, mirrored = [], []
    for seed in (0, 1):
        net = MobileNetV1(1, 1, dropout=0.2, keep_resolution=2)
        net.load_state_dict(torch.load(root / f"seed={seed}" / "model.pt", weights_only=True))
        with torch.no_grad():
            probs.append(torch.sigmoid(net.eval()(x)).squeeze(1).numpy())
            mirrored.append(torch.sigmoid(net(x.flip(-1))).squeeze(1).numpy())  # left-right mirror images
    assert not np.allclose(probs[0], probs[1])  # two different members
    assert not np.allclose(probs[0], mirrored[0])  # the mirror images are predicted differently
    labels = npz["test_labels"].reshape(-1)
    return {
        "root": root,
        "args": args,
        "mean": np.mean(probs, 0),
        "labels": labels,
        # flip test-time augmentation: member 0 alone, and both members, averaged with their mirror images
        "tta_member0": (probs[0] + mirrored[0]) / 2,
        "tta_mean": np.mean(probs + mirrored, 0),
    }


def test_ensemble_evaluate_scores_the_mean_member_probability(ensemble):
    from sklearn.metrics import roc_auc_score

    layers = _layers("train.json", "evaluate.json", "ensemble.json")
    run_bundle_in_process(
        "run",
        "--config_file",
        layers,
        *ensemble["args"],
        *TINY,
        "--output_dir",
        str(ensemble["root"]),
        "--tta",
        "false",
    )
    report = json.loads((ensemble["root"] / "eval" / "metrics.json").read_text())
    assert [Path(p).parent.name for p in report["checkpoint"]] == ["seed=0", "seed=1"]
    mean, labels = ensemble["mean"], ensemble["labels"]
    assert report["metrics"]["roc_auc"] == pytest.approx(roc_auc_score(labels, mean), abs=1e-6)
    assert report["metrics"]["accuracy"] == pytest.approx(((mean >= 0.5) == labels).mean(), abs=1e-6)


def test_ensemble_inference_writes_the_mean_member_probability(ensemble, tmp_path):
    layers = _layers("inference.json", "ensemble.json")
    out = tmp_path / "preds"
    run_bundle_in_process(
        "run",
        "--config_file",
        layers,
        *ensemble["args"],
        "--ensemble_dir",
        str(ensemble["root"]),
        "--output_dir",
        str(out),
        "--tta",
        "false",
    )
    with (out / "breastmnist_predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    np.testing.assert_allclose([float(r["probability"]) for r in rows], ensemble["mean"], atol=1e-5)


def test_ensemble_without_members_names_the_folder(ensemble, tmp_path):
    layers = _layers("train.json", "evaluate.json", "ensemble.json")
    args = ("run", "--config_file", layers, *ensemble["args"], *TINY, "--output_dir", str(tmp_path))
    proc = run_bundle_in_process(*args, check=False)
    assert proc.returncode != 0
    assert f"nothing matches {tmp_path}/*/model.pt" in proc.stdout + proc.stderr


def test_tta_evaluate_scores_image_and_mirror_image(ensemble, tmp_path):
    from sklearn.metrics import roc_auc_score

    run_bundle_in_process(
        "run",
        "--config_file",
        _layers("train.json", "evaluate.json"),
        *ensemble["args"],
        *TINY,
        "--output_dir",
        str(ensemble["root"] / "seed=0"),
        "--eval_dir",
        str(tmp_path / "eval"),
        "--tta",
        "true",
    )
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert report["tta_spatial_axes"] == [1]
    tta, labels = ensemble["tta_member0"], ensemble["labels"]
    assert report["metrics"]["roc_auc"] == pytest.approx(roc_auc_score(labels, tta), abs=1e-6)
    assert report["metrics"]["accuracy"] == pytest.approx(((tta >= 0.5) == labels).mean(), abs=1e-6)
    # the cross-entropy is continuous in the probabilities, so it also tells the mean from the unflipped prediction
    bce = -np.mean(labels * np.log(tta) + (1 - labels) * np.log(1 - tta))
    assert report["metrics"]["cross_entropy"] == pytest.approx(bce, abs=1e-5)


def test_ensemble_inference_with_tta_averages_members_and_mirror_images(ensemble, tmp_path):
    layers = _layers("inference.json", "ensemble.json")
    out = tmp_path / "preds"
    args = [*ensemble["args"], "--ensemble_dir", str(ensemble["root"]), "--output_dir", str(out), "--tta", "true"]
    run_bundle_in_process("run", "--config_file", layers, *args)
    with (out / "breastmnist_predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    np.testing.assert_allclose([float(r["probability"]) for r in rows], ensemble["tta_mean"], atol=1e-5)


def _write_bright_dark_npz(path: Path, counts: tuple[int, int, int] = (64, 48, 8), seed: int = 0) -> Path:
    """A breastmnist-layout npz (grey 28x28, labels (N, 1)) whose classes are dark (label 0) and bright (label 1)
    images: per-image mean grey level 40-100 or 140-200, pixel noise 30; each split is half and half."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in zip(("train", "val", "test"), counts):
        labels = np.arange(n) % 2
        rng.shuffle(labels)
        means = np.where(labels == 1, rng.uniform(140, 200, n), rng.uniform(40, 100, n))
        images = means[:, None, None] + rng.normal(0, 30, (n, 28, 28))
        arrays[f"{split}_images"] = np.clip(np.round(images), 0, 255).astype(np.uint8)
        arrays[f"{split}_labels"] = labels.astype(np.uint8)[:, None]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def test_bundle_learns_bright_vs_dark(tmp_path):
    """A few epochs of the bundle as configured (MobileNet, augmentation, precise BatchNorm) tell bright images from
    dark ones.

    The bound is derived, not copied from a run: a classifier that ignores the image ranks the validation images at
    random, with ROC AUC 0.5 on average and standard deviation sqrt((n0 + n1 + 1) / (12 n0 n1)) (the Mann-Whitney
    null), about 0.08 for the 24 + 24 validation images here; 0.9 is more than four of those above chance, even for
    the best of the epochs. The classes' mean grey levels (40-100 vs 140-200, noise 30 per pixel) do not overlap, so
    the image mean alone reaches AUC 1. Mutation: an optimizer with lr 0 scores 0.52 (only precise BatchNorm
    statistics move) and fails.
    """
    data = tmp_path / "data"
    with np.load(_write_bright_dark_npz(data / "breastmnist.npz")) as npz:
        n1 = int(npz["val_labels"].sum())
        n0 = len(npz["val_labels"]) - n1
    proc = run_bundle_in_process(
        "run", "--config_file", TRAIN, "--dataset_dir", str(data), "--flag", "breastmnist",
        "--output_dir", str(tmp_path / "run"), "--epochs", "3", "--batch_size", "16",
        "--num_workers", "0",
    )  # fmt: skip
    assert 0.5 + 4 * math.sqrt((n0 + n1 + 1) / (12 * n0 * n1)) < 0.9, (n0, n1)
    best = float(re.search(r"best val_auc ([0-9.]+) at epoch", proc.stdout + proc.stderr).group(1))
    assert best > 0.9, best
