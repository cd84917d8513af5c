"""Multi-class report and prediction CSV on hand-computed values."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from ignite.engine import Engine

from medkit.handlers import MulticlassClassificationReport, MulticlassPredictionCSVWriter, multiclass_report


def test_report_hand_computed():
    logits = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 3.0, 0.0]])
    labels = np.array([0, 0, 1, 0])  # preds: 0 (argmax ties -> 0), 0, 1, 1
    report = multiclass_report(logits, labels, ["a", "b", "c"])
    assert report["accuracy"] == 0.75
    assert report["per_class_accuracy"] == {"a": pytest.approx(2 / 3), "b": 1.0, "c": None}
    assert report["confusion_matrix"] == [[2, 1, 0], [0, 1, 0], [0, 0, 0]]
    # cross-entropy: -log softmax of the true class
    ce = [math.log(3), -math.log(math.e**2 / (math.e**2 + 2)), -math.log(math.e / (math.e + 2)),
          -math.log(1 / (math.e**3 + 2))]  # fmt: skip
    assert report["cross_entropy"] == pytest.approx(np.mean(ce))
    with pytest.raises(ValueError, match="3 classes"):
        multiclass_report(logits[:, :2], labels, ["a", "b", "c"])


def _engine(batches):
    def step(engine, batch):
        return {"pred": batch["pred"], "label": batch["label"]}

    return Engine(step), batches


def test_handlers_write_metrics_png_and_csv(tmp_path):
    batches = [
        {"pred": torch.tensor([[3.0, 0.0], [0.0, 1.0]]), "label": torch.tensor([0, 0]), "id": ["x", "y"]},
        {"pred": torch.tensor([[0.0, 2.0]]), "label": torch.tensor([1]), "id": ["z"]},
    ]
    engine, data = _engine(batches)
    MulticlassClassificationReport(tmp_path / "eval", ["cat", "dog"], extra={"split": "test"}).attach(engine)
    MulticlassPredictionCSVWriter(tmp_path / "pred", ["cat", "dog"]).attach(engine)
    engine.run(data)
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert report["metrics"]["accuracy"] == pytest.approx(2 / 3) and report["split"] == "test"
    assert report["metrics"]["per_class_accuracy"] == {"cat": 0.5, "dog": 1.0} and report["num_images"] == 3
    assert (tmp_path / "eval" / "confusion_matrix.png").stat().st_size > 1000
    rows = list(csv.DictReader(open(tmp_path / "pred" / "predictions.csv")))
    assert [(r["id"], r["predicted_class"]) for r in rows] == [("x", "cat"), ("y", "dog"), ("z", "dog")]
    assert float(rows[0]["p_cat"]) == pytest.approx(1 / (1 + math.exp(-3)), abs=1e-6)
