"""Classification handlers on a tiny ignite engine with fixed outputs."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from ignite.engine import Engine

from medkit.handlers import BinaryClassificationReport, PredictionCSVWriter, binary_decisions, binary_scores

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
