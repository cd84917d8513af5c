"""The binary decision threshold chosen on the validation split: best_accuracy_threshold, ValidationThresholdSaver
(threshold.json beside model.pt) and load_threshold, with hand-computed cases."""

from __future__ import annotations

import json

import pytest
import torch
from ignite.engine import Engine, Events

from medkit.handlers import (
    THRESHOLD_FILENAME,
    ValidationThresholdSaver,
    best_accuracy_threshold,
    class_decisions,
    load_threshold,
)

# at 0.5 the 0.45 positive is missed (accuracy 3/4); every cut in (0.35, 0.45] is right on all four -> midpoint 0.40
PROBS_LOW = [0.9, 0.45, 0.35, 0.2]
LABELS_LOW = [1, 1, 0, 0]
# at 0.5 the negatives 0.7 and 0.6 are called positive (2/4); any cut in (0.7, 0.9] is right on all -> midpoint 0.8
PROBS_HIGH = [0.9, 0.7, 0.6, 0.1]
LABELS_HIGH = [1, 0, 0, 0]


@pytest.mark.parametrize(
    ("probs", "labels", "expected"),
    [
        (PROBS_LOW, LABELS_LOW, (0.40, 1.0)),
        (PROBS_HIGH, LABELS_HIGH, (0.80, 1.0)),
        # 0.5 gives 3/4 and so does the cut (0.1, 0.3]; no cut beats 0.5, so it is kept
        ([0.8, 0.4, 0.3, 0.1], [1, 0, 1, 0], (0.5, 0.75)),
        # cuts (0.2, 0.3] and (0.8, 0.9] both give 3/4 (0.5 gives 2/4): the midpoint nearer 0.5 (0.25 vs 0.85) wins
        ([0.9, 0.8, 0.3, 0.2], [1, 0, 1, 0], (0.25, 0.75)),
    ],
    ids=["below_half", "above_half", "half_kept", "tie_nearest_half"],
)
def test_best_accuracy_threshold_hand_computed(probs, labels, expected):
    threshold, accuracy = best_accuracy_threshold(probs, labels)
    assert threshold == pytest.approx(expected[0]) and accuracy == pytest.approx(expected[1])
    # the returned threshold gives the returned accuracy (class 1 at or above it)
    assert sum((p >= threshold) == bool(y) for p, y in zip(probs, labels)) / len(labels) == pytest.approx(accuracy)


def test_best_accuracy_threshold_rejects_bad_input():
    with pytest.raises(ValueError, match="both classes"):
        best_accuracy_threshold([0.2, 0.7], [1, 1])
    with pytest.raises(ValueError, match="3 probabilities but 2 labels"):
        best_accuracy_threshold([0.2, 0.7, 0.9], [0, 1])


def _validation_engine(batches, best_epoch: int) -> tuple[Engine, list]:
    """An evaluator stand-in whose logits and labels are fixed and whose ``best_metric_epoch`` is set at epoch end,
    as MONAI's evaluator sets it before ``COMPLETED`` handlers run."""

    def step(engine, batch):
        return {"pred": batch["pred"], "label": batch["label"]}

    engine = Engine(step)
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: setattr(e.state, "best_metric_epoch", best_epoch))
    return engine, batches


def _binary_batches(probs, labels):
    logits = torch.logit(torch.tensor(probs, dtype=torch.float64)).float()[:, None]
    labels = torch.tensor(labels, dtype=torch.float32)[:, None]
    return [{"pred": logits[:2], "label": labels[:2]}, {"pred": logits[2:], "label": labels[2:]}]


def test_saver_writes_the_validation_threshold_of_the_best_epoch(tmp_path):
    engine, data = _validation_engine(_binary_batches(PROBS_HIGH, LABELS_HIGH), best_epoch=1)
    ValidationThresholdSaver(tmp_path).attach(engine)
    engine.run(data)
    record = json.loads((tmp_path / THRESHOLD_FILENAME).read_text())
    assert record["threshold"] == pytest.approx(0.8, abs=1e-6) and record["val_accuracy"] == 1.0
    assert record["val_accuracy_at_0.5"] == 0.5 and record["epoch"] == 1 and record["num_samples"] == 4
    assert load_threshold(tmp_path / "model.pt") == pytest.approx(0.8, abs=1e-6)


def test_saver_writes_nothing_when_not_best_or_multiclass(tmp_path):
    engine, data = _validation_engine(_binary_batches(PROBS_HIGH, LABELS_HIGH), best_epoch=0)  # an earlier epoch
    ValidationThresholdSaver(tmp_path / "not_best").attach(engine)
    engine.run(data)
    assert not (tmp_path / "not_best" / THRESHOLD_FILENAME).exists()
    multi = [{"pred": torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), "label": torch.tensor([0, 2])}]
    engine, data = _validation_engine(multi, best_epoch=1)
    ValidationThresholdSaver(tmp_path / "multi").attach(engine)
    engine.run(data)
    assert not (tmp_path / "multi" / THRESHOLD_FILENAME).exists()  # multi-class decides by argmax


def test_load_threshold_defaults_and_errors(tmp_path):
    assert load_threshold(tmp_path / "model.pt") == 0.5  # an older run without threshold.json
    assert load_threshold([tmp_path / "a" / "model.pt", tmp_path / "b" / "model.pt"]) == 0.5  # an ensemble
    assert load_threshold(None, default=0.3) == 0.3
    (tmp_path / THRESHOLD_FILENAME).write_text(json.dumps({"threshold": 1.7}))
    with pytest.raises(ValueError, match=f"{tmp_path / THRESHOLD_FILENAME}: threshold 1.7 is not a probability"):
        load_threshold(tmp_path / "model.pt")
    (tmp_path / THRESHOLD_FILENAME).write_text("{}")
    with pytest.raises(ValueError, match="holds no threshold"):
        load_threshold(tmp_path / "model.pt")


def test_class_decisions_at_a_threshold():
    batches = _binary_batches(PROBS_HIGH, LABELS_HIGH)
    both = {"pred": torch.cat([b["pred"] for b in batches]), "label": torch.cat([b["label"] for b in batches])}
    assert class_decisions(both)[0].tolist() == [1, 1, 1, 0]  # 0.9, 0.7, 0.6 above 0.5
    assert class_decisions(both, 0.8)[0].tolist() == [1, 0, 0, 0]
    assert class_decisions(both, 0.65)[0].tolist() == [1, 1, 0, 0]
