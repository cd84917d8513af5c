"""Smoke test of bundles/dna_binding: train, evaluate and (standalone) inference as subprocesses; early stop, resume,
export, the --network and --rc_average switches, MONAI's workflow properties, network shape and metadata in-process."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT, bundle_layers, run_bundle, run_bundle_in_process, workflow_property_problems

from medkit.data.synthetic_dna import generate_dna_dataset, synthesize_sequences
from medkit.networks import DanQClassifier, ReverseComplementAverage

CONFIGS = REPO_ROOT / "bundles" / "dna_binding" / "configs"
TRAIN = str(CONFIGS / "train.json")
TINY = ["--epochs", "2", "--batch_size", "32", "--hidden_dim", "8", "--conv_channels", "8", "--num_workers", "0"]
# evaluate.json and inference.json read the network and its sizes from the run's run_settings.json: no sizes here
INFER_TINY = ["--batch_size", "32"]


def _tiny_danq(path: Path) -> DanQClassifier:
    net = DanQClassifier(conv_channels=8, hidden_dim=8).eval()
    net.load_state_dict(torch.load(path, weights_only=True))
    return net


def _layers(*names: str) -> str:
    return bundle_layers(CONFIGS, *names)


_bundle = run_bundle


def _scalars(run_dir: Path) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: [e.value for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dna_binding")
    data = generate_dna_dataset(root / "data", num_sequences=240, length=41, seed=0)
    out = root / "run"
    proc = _bundle("run", "--config_file", TRAIN, "--dataset_dir", str(data), "--output_dir", str(out), *TINY)
    return {"root": root, "data": data, "out": out, "log": proc.stdout + proc.stderr}


def test_train_writes_checkpoints_split_and_loss_curves(trained):
    out = trained["out"]
    for name in ("model.pt", "model_final.pt", "checkpoint_epoch=2.pt", "datalist.json", "run_settings.json"):
        assert (out / name).is_file(), name
    final = torch.load(out / "model_final.pt", weights_only=True)
    assert set(final) == {"model", "optimizer", "lr_scheduler", "trainer", "validator_best", "epoch_progress"}
    assert final["trainer"]["iteration"] == 2 * 6  # 173 training sequences in batches of 32
    split = json.loads((out / "datalist.json").read_text())
    assert [len(split[k]) for k in ("train", "val", "test")] == [173, 19, 48]
    assert split["synthetic"] is True
    scalars = _scalars(out)
    assert len(scalars["loss/train"]) == 2 and len(scalars["loss/validation"]) == 2  # one chart, both curves
    assert {"val_roc_auc", "val_pr_auc", "val_accuracy", "val_loss", "train_loss"} <= set(scalars)
    assert "val_roc_auc" in trained["log"] and "val_pr_auc" in trained["log"]
    assert "Epoch 1/2: train_loss" in trained["log"] and "Epoch 2/2: train_loss" in trained["log"]  # one line per epoch
    assert "best val_roc_auc" in trained["log"] and str(out / "model.pt") in trained["log"]  # the run summary


def test_early_stopping_ends_a_run_that_does_not_improve(tmp_path, trained):
    proc = run_bundle_in_process(
        "run",
        "--config_file",
        TRAIN,
        "--dataset_dir",
        str(trained["data"]),
        "--output_dir",
        str(tmp_path / "stuck"),
        *TINY,
        "--epochs",
        "30",
        "--learning_rate",
        "0.0",
        "--early_stop_patience",
        "2",
    )
    final = torch.load(tmp_path / "stuck" / "model_final.pt", weights_only=True)
    assert final["trainer"]["iteration"] == 3 * 6  # epoch 1 sets the best loss, epochs 2-3 do not improve on it
    assert "EarlyStopping: Stop training" in proc.stdout + proc.stderr


def test_resume_continues_from_the_last_epoch(trained):
    proc = run_bundle_in_process(
        "run",
        "--config_file",
        TRAIN,
        "--dataset_dir",
        str(trained["data"]),
        "--output_dir",
        str(trained["out"]),
        *TINY,
        "--epochs",
        "3",
        "--resume",
        "true",
    )
    log = proc.stdout + proc.stderr
    assert "Restored all variables" in log and "Epoch 3/3:" in log and "Epoch 1/3:" not in log
    assert torch.load(trained["out"] / "model_final.pt", weights_only=True)["trainer"]["iteration"] == 3 * 6


def test_evaluate_writes_metrics_and_curves(trained):
    out = trained["out"]
    _bundle("run", "--config_file", _layers("train.json", "evaluate.json"), "--output_dir", str(out), *INFER_TINY)
    report = json.loads((out / "eval" / "metrics.json").read_text())
    assert report["num_sequences"] == 48 and report["split"] == "test"
    assert report["network"] == "danq" and report["rc_average"] is True
    for key in ("roc_auc", "pr_auc", "accuracy"):
        assert 0.0 <= report["metrics"][key] <= 1.0
    assert report["metrics"]["roc_auc"] == pytest.approx(report["engine_metrics"]["val_roc_auc"], abs=1e-6)
    assert report["engine_metrics"]["val_loss"] > 0
    assert (out / "eval" / "roc_curve.png").stat().st_size > 1000
    assert (out / "eval" / "pr_curve.png").stat().st_size > 1000


def test_inference_writes_a_csv_per_input_file(trained, tmp_path):
    src = tmp_path / "inputs"
    src.mkdir()
    (src / "peaks.fa").write_text(">p1\nACGTACGTNNACGTTGACTCAGCA\n>p2\nacgt\n>p3\n" + "ACGT" * 20 + "\n")
    preds = tmp_path / "preds"
    # inference.json runs on its own; a dataset_dir that does not exist proves it builds no training data
    _bundle(
        "run",
        "--config_file",
        str(CONFIGS / "inference.json"),
        "--input_dir",
        str(src),
        "--output_dir",
        str(preds),
        "--ckpt_path",
        str(trained["out"] / "model.pt"),
        "--dataset_dir",
        str(tmp_path / "no_training_data_here"),
        *INFER_TINY,
    )
    rows = list(csv.DictReader(open(preds / "peaks_predictions.csv")))
    assert [r["id"] for r in rows] == ["p1", "p2", "p3"]
    for r in rows:
        assert 0.0 <= float(r["probability"]) <= 1.0
        assert int(r["predicted_label"]) == int(float(r["probability"]) >= 0.5)
    # padding-invariant, and the mean of both strands: p2 scored in a padded batch equals p2 and ACGT's reverse
    # complement (ACGT again) scored alone
    net = ReverseComplementAverage(_tiny_danq(trained["out"] / "model.pt"))
    from medkit.transforms import OneHotDNA

    alone = torch.sigmoid(net(OneHotDNA()("ACGT")[None])).item()
    assert float(rows[1]["probability"]) == pytest.approx(alone, abs=1e-5)


def test_ckpt_export_matches_checkpoint(trained, tmp_path):
    ts = tmp_path / "model.ts"
    run_bundle_in_process(
        "ckpt_export",
        "network_def",
        "--filepath",
        str(ts),
        "--ckpt_file",
        str(trained["out"] / "model.pt"),
        "--meta_file",
        str(CONFIGS / "metadata.json"),
        "--config_file",
        TRAIN,
        "--hidden_dim",
        "8",
        "--conv_channels",
        "8",
    )
    net = _tiny_danq(trained["out"] / "model.pt")
    exported = torch.jit.load(str(ts)).eval()
    x, lengths = torch.randn(3, 41, 4), torch.tensor([41, 10, 30])
    torch.testing.assert_close(exported(x, lengths), net(x, lengths))


@pytest.mark.parametrize("workflow_type, config", [("train", "train.json"), ("inference", "inference.json")])
def test_monai_workflow_properties(trained, tmp_path, workflow_type, config):
    overrides = {"dataset_dir": str(trained["data"]), "output_dir": str(tmp_path / "o")}
    if workflow_type == "train":
        overrides.update(hidden_dim=8, conv_channels=8)
    if workflow_type == "inference":
        overrides.update(input_dir=str(trained["data"]), ckpt_path=str(trained["out"] / "model.pt"))
    assert workflow_property_problems(CONFIGS / config, workflow_type, **overrides) == []


def test_metadata_verifies_against_the_shipped_schema():
    proc = run_bundle_in_process(
        "verify_metadata",
        "--meta_file",
        str(CONFIGS / "metadata.json"),
        "--filepath",
        str(REPO_ROOT / "bundles" / "meta_schema.json"),
    )
    assert "metadata is verified with no error" in proc.stdout + proc.stderr


def test_bundle_learns_a_planted_motif(tmp_path):
    """Ten epochs of the bundle as configured tell sequences carrying an exact motif from motif-free ones.

    The data: 800 random 14-bp sequences with 50% GC in both classes (so base composition says nothing); half carry
    one exact copy of the 10-bp :data:`MOTIF` somewhere in them. A random 14-mer holds the motif with probability
    about 5 * 4**-10, so the classes are separable and a perfect scorer reaches ROC AUC 1.

    The bound is derived, not copied from a run: a scorer that ignores the sequence ranks the validation sequences at
    random, with ROC AUC 0.5 on average and standard deviation sqrt((n0 + n1 + 1) / (12 n0 n1)) (the Mann-Whitney
    null), about 0.07 for the 64 validation sequences here; 0.9 is more than four of those above chance, even for the
    best of ten epochs. Mutation: an optimizer with lr 0 keeps the initial network's AUC, 0.40, and fails.
    """
    sequences, labels = synthesize_sequences(
        800, length=14, mutation_rate=0.0, positive_gc=0.5, motif_copies=(1, 1), position_sd=None, seed=0
    )
    data = tmp_path / "motif.csv"
    with open(data, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "sequence", "label"])
        writer.writerows((f"s{i:03d}", s, y) for i, (s, y) in enumerate(zip(sequences, labels)))
    out = tmp_path / "run"
    proc = run_bundle_in_process(
        "run", "--config_file", TRAIN, "--dataset_dir", str(data), "--output_dir", str(out),
        "--epochs", "10", "--batch_size", "16", "--hidden_dim", "16", "--num_workers", "0",
    )  # fmt: skip
    val = [item["label"] for item in json.loads((out / "datalist.json").read_text())["val"]]
    n1, n0 = sum(val), len(val) - sum(val)
    assert 0.5 + 4 * math.sqrt((n0 + n1 + 1) / (12 * n0 * n1)) < 0.9, (n0, n1)
    best = float(re.search(r"best val_roc_auc ([0-9.]+) at epoch", proc.stdout + proc.stderr).group(1))
    assert best > 0.9, best


def test_bilstm_switch_is_rebuilt_by_evaluate_and_inference(trained, tmp_path):
    """--network bilstm trains the 0.1 network; evaluate and inference rebuild it from run_settings.json alone.

    Mutation: evaluate.json with ``"network": "danq"`` instead of the trained setting fails to load the weights.
    """
    out = tmp_path / "bilstm"
    common = ["--dataset_dir", str(trained["data"]), "--output_dir", str(out)]
    run_bundle_in_process("run", "--config_file", TRAIN, *common, *TINY, "--epochs", "1", "--network", "bilstm")
    settings = json.loads((out / "run_settings.json").read_text())
    assert (settings["network"], settings["hidden_dim"]) == ("bilstm", 8)
    state = torch.load(out / "model.pt", weights_only=True)
    assert "lstm.weight_ih_l0" in state and "conv.weight" not in state
    evaluate = _layers("train.json", "evaluate.json")
    for rc_average in ("true", "false"):
        run_bundle_in_process("run", "--config_file", evaluate, *common, *INFER_TINY, "--rc_average", rc_average)
        report = json.loads((out / "eval" / "metrics.json").read_text())
        assert (report["network"], report["rc_average"]) == ("bilstm", rc_average == "true")
        assert report["num_sequences"] == 48
