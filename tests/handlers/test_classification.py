"""Classification handlers on a tiny ignite engine with fixed outputs."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
from ignite.engine import Engine
from ignite.metrics import Accuracy
from monai.metrics import compute_roc_auc

from medkit.handlers import (
    BinaryClassificationReport,
    ClassificationReport,
    PredictionCSVWriter,
    binary_decisions,
    binary_scores,
    class_decisions,
    class_scores,
)

# logits of 4 samples: sorted scores give 3 of 4 positive-negative pairs in the right order -> ROC AUC 0.75
LOGITS = torch.tensor([[2.0], [-1.0], [0.5], [-3.0]])
LABELS = torch.tensor([[1.0], [1.0], [0.0], [0.0]])


def _engine(batches):
    def step(engine, batch):
        engine.state.batch = batch
        return {"pred": batch["pred"], "label": batch["label"]}

    return Engine(step), batches


def test_output_transforms():
    out = {"pred": LOGITS, "label": LABELS}
    scores, labels = binary_scores(out)
    assert scores.shape == (4,) and labels.tolist() == [1, 1, 0, 0]
    decisions, labels = binary_decisions(out)
    assert decisions.tolist() == [1, 0, 1, 0] and labels.dtype == torch.long


def test_report_writes_hand_checked_metrics_and_curves(tmp_path):
    engine, data = _engine([{"pred": LOGITS[:2], "label": LABELS[:2]}, {"pred": LOGITS[2:], "label": LABELS[2:]}])
    BinaryClassificationReport(tmp_path, extra={"split": "test"}).attach(engine)
    engine.run(data)
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["metrics"]["roc_auc"] == pytest.approx(0.75)
    assert report["metrics"]["accuracy"] == pytest.approx(0.5)
    assert report["metrics"]["pr_auc"] == pytest.approx((1.0 + 2 / 3) / 2)  # precision at each positive's rank
    assert report["num_sequences"] == 4 and report["num_positive"] == 2 and report["split"] == "test"
    assert (tmp_path / "roc_curve.png").is_file() and (tmp_path / "pr_curve.png").is_file()


def test_report_needs_both_classes(tmp_path):
    engine, data = _engine([{"pred": LOGITS, "label": torch.ones(4, 1)}])
    BinaryClassificationReport(tmp_path).attach(engine)
    with pytest.raises(ValueError, match="needs both classes"):
        engine.run(data)


def test_prediction_csv_per_source(tmp_path):
    batch = {"pred": LOGITS, "label": LABELS, "id": ["a", "b", "c", "d"], "source": ["x", "x", "y", "y"]}
    engine, data = _engine([batch])
    PredictionCSVWriter(tmp_path).attach(engine)
    engine.run(data)
    x = list(csv.DictReader(open(tmp_path / "x_predictions.csv")))
    y = list(csv.DictReader(open(tmp_path / "y_predictions.csv")))
    assert [r["id"] for r in x] == ["a", "b"] and [r["id"] for r in y] == ["c", "d"]
    assert float(x[0]["probability"]) == pytest.approx(torch.sigmoid(torch.tensor(2.0)).item(), abs=1e-6)
    assert [r["predicted_label"] for r in x + y] == ["1", "0", "1", "0"]


def test_confusion_matrix_figure_counts(tmp_path):
    from medkit.handlers import save_confusion_matrix_figure

    counts = save_confusion_matrix_figure([1, 1, 1, 0, 0], [1, 0, 1, 1, 0], tmp_path / "cm" / "cm.png", ("n", "t"))
    assert counts == {"tn": 1, "fp": 1, "fn": 1, "tp": 2}
    assert (tmp_path / "cm" / "cm.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="2 predictions"):
        save_confusion_matrix_figure([1, 0, 1], [1, 0], tmp_path / "x.png")
    with pytest.raises(ValueError, match="0 or 1"):
        save_confusion_matrix_figure([2, 0], [1, 0], tmp_path / "x.png")


def test_report_adds_confusion_counts_and_figure(tmp_path):
    engine, data = _engine([{"pred": LOGITS, "label": LABELS}])
    BinaryClassificationReport(tmp_path, class_names=("normal", "tumour")).attach(engine)
    engine.run(data)
    report = json.loads((tmp_path / "metrics.json").read_text())
    # probabilities > 0.5 for logits 2.0 and 0.5: one true positive, one false positive
    assert report["confusion_matrix"] == {"tn": 1, "fp": 1, "fn": 1, "tp": 1}
    assert report["num_samples"] == 4
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 1000


def test_prediction_csv_id_header(tmp_path):
    engine = Engine(lambda e, b: {"pred": b["pred"]})
    PredictionCSVWriter(tmp_path, id_header="file").attach(engine)
    engine.run([{"pred": torch.tensor([[3.0], [-3.0]]), "id": ["a.jpg", "b.png"], "source": ["slide", "slide"]}])
    rows = list(csv.reader(open(tmp_path / "slide_predictions.csv")))
    assert rows[0] == ["file", "probability", "predicted_label"]
    assert [r[0] for r in rows[1:]] == ["a.jpg", "b.png"] and [r[2] for r in rows[1:]] == ["1", "0"]


# 4 samples, 3 classes, logits = log(probabilities). One-vs-rest AUCs by hand: class 0 1/1, class 1 3/4 (sample 3's
# 0.15 is below sample 1's 0.2), class 2 2/3 (sample 4's 0.4 is below sample 3's 0.6); argmax [0, 1, 2, 0]: ACC 1/2
MC_PROBS = torch.tensor([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.25, 0.15, 0.6], [0.5, 0.1, 0.4]])
MC_LOGITS = MC_PROBS.log()
MC_LABELS = torch.tensor([[0], [1], [1], [2]])
MC_AUC = (1 + 3 / 4 + 2 / 3) / 3


def test_class_transforms_binary_and_multiclass():
    scores, labels = class_scores({"pred": LOGITS, "label": LABELS})
    assert scores.shape == (4,) and labels.tolist() == [1, 1, 0, 0]  # binary: the same as binary_scores
    probs, onehot = class_scores({"pred": MC_LOGITS, "label": MC_LABELS})
    assert torch.allclose(probs, MC_PROBS)
    assert onehot.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert compute_roc_auc(probs, onehot, average="macro") == pytest.approx(MC_AUC)
    decisions, labels = class_decisions({"pred": MC_LOGITS, "label": MC_LABELS})
    assert decisions.argmax(1).tolist() == [0, 1, 2, 0] and decisions.sum().item() == 4
    assert labels.tolist() == [0, 1, 1, 2]
    accuracy = Accuracy(output_transform=class_decisions)
    accuracy.update(class_decisions({"pred": MC_LOGITS, "label": MC_LABELS}))
    assert accuracy.compute() == 0.5
    assert class_decisions({"pred": LOGITS, "label": LABELS})[0].tolist() == [1, 0, 1, 0]


def test_classification_report_multiclass(tmp_path):
    engine, data = _engine(
        [{"pred": MC_LOGITS[:3], "label": MC_LABELS[:3]}, {"pred": MC_LOGITS[3:], "label": MC_LABELS[3:]}]
    )
    ClassificationReport(tmp_path, class_names=["a", "b", "c"], extra={"split": "test"}).attach(engine)
    engine.run(data)
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["metrics"]["roc_auc"] == pytest.approx(MC_AUC) and report["metrics"]["accuracy"] == 0.5
    assert report["roc_auc_per_class"]["c"] == pytest.approx(2 / 3)
    assert report["confusion_matrix"]["rows_true_columns_predicted"] == [[1, 0, 0], [0, 1, 1], [1, 0, 0]]
    assert report["class_counts"] == {"a": 1, "b": 2, "c": 1} and report["split"] == "test"
    assert (tmp_path / "confusion_matrix.png").is_file()


@pytest.mark.parametrize(
    ("threshold", "accuracy", "cm"),
    [(0.5, 0.5, [[1, 1], [1, 1]]), (0.25, 0.75, [[1, 1], [0, 2]])],
    ids=["t0.5", "t0.25"],
)
def test_classification_report_binary_threshold(tmp_path, threshold, accuracy, cm):
    engine, data = _engine([{"pred": LOGITS, "label": LABELS}])
    ClassificationReport(tmp_path, threshold=threshold).attach(engine)
    engine.run(data)
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["metrics"]["roc_auc"] == pytest.approx(0.75) and report["metrics"]["accuracy"] == accuracy
    assert report["confusion_matrix"]["rows_true_columns_predicted"] == cm and report["threshold"] == threshold


def test_classification_report_rejects_wrong_class_names(tmp_path):
    engine, data = _engine([{"pred": MC_LOGITS, "label": MC_LABELS}])
    ClassificationReport(tmp_path, class_names=["a", "b"]).attach(engine)
    with pytest.raises(ValueError, match="2 class names"):
        engine.run(data)


def test_prediction_csv_multiclass_with_names(tmp_path):
    batch = {"pred": MC_LOGITS, "label": MC_LABELS, "id": ["w", "x", "y", "z"]}
    engine, data = _engine([batch])
    PredictionCSVWriter(tmp_path, class_names=["a", "b", "c"]).attach(engine)
    engine.run(data)
    rows = list(csv.DictReader(open(tmp_path / "predictions_predictions.csv")))
    assert list(rows[0]) == [
        "id",
        "probability_0",
        "probability_1",
        "probability_2",
        "predicted_label",
        "predicted_class",
    ]
    assert [r["predicted_label"] for r in rows] == ["0", "1", "2", "0"]
    assert [r["predicted_class"] for r in rows] == ["a", "b", "c", "a"]
    assert sum(float(rows[0][f"probability_{k}"]) for k in range(3)) == pytest.approx(1.0, abs=1e-5)


def test_classification_report_cross_entropy_and_per_class_accuracy(tmp_path):
    # preds: 0 (a tie -> the first class), 0, 1, 1; class c never occurs, so its accuracy is None
    logits = torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 3.0, 0.0]])
    engine, data = _engine([{"pred": logits[:2], "label": torch.tensor([0, 0])},
                            {"pred": logits[2:], "label": torch.tensor([1, 0])}])  # fmt: skip
    ClassificationReport(tmp_path, class_names=["a", "b", "c"]).attach(engine)
    engine.run(data)
    report = json.loads((tmp_path / "metrics.json").read_text())
    metrics = report["metrics"]
    assert metrics["accuracy"] == 0.75
    assert metrics["per_class_accuracy"] == {"a": pytest.approx(2 / 3), "b": 1.0, "c": None}
    assert report["confusion_matrix"]["rows_true_columns_predicted"] == [[2, 1, 0], [0, 1, 0], [0, 0, 0]]
    # cross-entropy: -log softmax of the true class
    ce = [math.log(3), -math.log(math.e**2 / (math.e**2 + 2)), -math.log(math.e / (math.e + 2)),
          -math.log(1 / (math.e**3 + 2))]  # fmt: skip
    assert metrics["cross_entropy"] == pytest.approx(sum(ce) / 4, rel=1e-6)


def test_classification_report_binary_cross_entropy(tmp_path):
    engine, data = _engine([{"pred": LOGITS, "label": LABELS}])
    ClassificationReport(tmp_path).attach(engine)
    engine.run(data)
    metrics = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    # -log sigmoid(z) for the positives (2, -1), -log(1 - sigmoid(z)) = -log sigmoid(-z) for the negatives (0.5, -3)
    ce = [math.log1p(math.exp(-z)) for z in (2.0, -1.0, -0.5, 3.0)]
    assert metrics["cross_entropy"] == pytest.approx(sum(ce) / 4, rel=1e-6)
    assert metrics["per_class_accuracy"] == {"0": 0.5, "1": 0.5}


def test_prediction_csv_one_named_file_for_all_sources(tmp_path):
    batches = [
        {"pred": torch.tensor([[3.0, 0.0], [0.0, 1.0]]), "label": torch.tensor([0, 0]), "id": ["x", "y"],
         "source": ["s1", "s1"]},
        {"pred": torch.tensor([[0.0, 2.0]]), "label": torch.tensor([1]), "id": ["z"], "source": ["s2"]},
    ]  # fmt: skip
    engine, data = _engine(batches)
    PredictionCSVWriter(tmp_path, class_names=["cat", "dog"], filename="predictions.csv").attach(engine)
    engine.run(data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.csv"]
    rows = list(csv.DictReader(open(tmp_path / "predictions.csv")))
    assert [(r["id"], r["predicted_class"]) for r in rows] == [("x", "cat"), ("y", "dog"), ("z", "dog")]
    assert float(rows[0]["probability_0"]) == pytest.approx(1 / (1 + math.exp(-3)), abs=1e-6)
