"""FOV-restricted metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from ignite.engine import Engine

from medkit.metrics import FOVROCAUC, FOVConfusionMetric, fov_confusion, fov_roc_auc, fov_scores

# A 4x4 image: the FOV is the central 2x2 block plus (0, 1); everything else is black border.
LABEL = torch.tensor([[0, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.float32)
PRED = torch.tensor([[0, 1, 0, 1], [0, 0.9, 0.2, 0], [0, 0.7, 0.1, 0], [0, 0, 0, 0]], dtype=torch.float32)
FOV = torch.tensor([[0, 1, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]], dtype=torch.float32)
# inside the FOV (5 pixels): (0,1) TP, (1,1) TP, (1,2) FN, (2,1) FP, (2,2) TN  -> TP 2, FP 1, FN 1, TN 1
# whole image (16 pixels):  the same plus (0,3) FP and 10 more TN             -> TP 2, FP 2, FN 1, TN 11


def test_confusion_inside_fov_and_over_the_whole_image():
    assert fov_confusion(PRED, LABEL, FOV).tolist() == [2, 1, 1, 1]
    assert fov_confusion(PRED, LABEL).tolist() == [2, 2, 1, 11]


def test_fov_restriction_changes_accuracy_and_specificity():
    inside, whole = fov_scores(PRED, LABEL, FOV), fov_scores(PRED, LABEL)
    assert inside["accuracy"] == pytest.approx(3 / 5)
    assert whole["accuracy"] == pytest.approx(13 / 16)  # the black border inflates accuracy
    assert inside["specificity"] == pytest.approx(1 / 2)
    assert whole["specificity"] == pytest.approx(11 / 13)
    assert inside["dice"] == inside["f1"] == pytest.approx(4 / 6)
    assert whole["dice"] == pytest.approx(4 / 7)
    assert inside["sensitivity"] == whole["sensitivity"] == pytest.approx(2 / 3)


def test_roc_auc_inside_fov():
    # FOV probabilities: positives 1.0, 0.9, 0.2; negatives 0.7, 0.1 -> pairs ranked right: 3 + 2 + 1 of 6
    assert fov_roc_auc(PRED, LABEL, FOV) == pytest.approx(5 / 6)
    # whole image: 13 negatives, the extra border negatives are 0 except (0, 3) at 1.0
    assert fov_roc_auc(PRED, LABEL) != pytest.approx(5 / 6)


def test_empty_denominators_give_nan():
    scores = fov_scores(torch.zeros(2, 2), torch.zeros(2, 2))
    assert math.isnan(scores["dice"]) and math.isnan(scores["sensitivity"]) and scores["accuracy"] == 1.0
    assert math.isnan(fov_roc_auc(torch.rand(2, 2), torch.zeros(2, 2)))


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match=r"fov shape \(3, 3\)"):
        fov_confusion(PRED, LABEL, torch.ones(3, 3))
    with pytest.raises(ValueError, match="pred shape"):
        fov_confusion(torch.zeros(2, 2), LABEL)
    with pytest.raises(ValueError, match="unknown score"):
        FOVConfusionMetric("iou")


def _run(metric, batches):
    engine = Engine(lambda e, b: b)
    metric.attach(engine, "m")
    return engine.run(batches, max_epochs=1).metrics["m"]


# A second, different image (2x2, no FOV): thresholded at 0.5 the prediction is [1, 1, 1, 0] for the label [1, 0, 0, 0]
# -> TP 1, FP 2, FN 0, TN 1. Pooled with the first image's FOV counts (TP 2, FP 1, FN 1, TN 1): TP 3, FP 3, FN 1, TN 2.
PRED_B = torch.tensor([[0.8, 0.6], [0.95, 0.3]])
LABEL_B = torch.tensor([[1.0, 0.0], [0.0, 0.0]])


@pytest.mark.parametrize(
    "score,pooled,per_image_mean",
    [
        ("dice", 6 / 10, (4 / 6 + 2 / 4) / 2),
        ("accuracy", 5 / 9, (3 / 5 + 2 / 4) / 2),
        ("sensitivity", 3 / 4, (2 / 3 + 1 / 1) / 2),
        ("specificity", 2 / 5, (1 / 2 + 1 / 3) / 2),
    ],
    ids=["dice", "accuracy", "sensitivity", "specificity"],
)
@pytest.mark.parametrize("layout", ["one-batch", "two-iterations"])
def test_ignite_metric_pools_different_images_not_their_scores(score, pooled, per_image_mean, layout):
    # channel-first images, as a decollated evaluator output holds them
    a, b = (PRED[None], LABEL[None], FOV[None]), (PRED_B[None], LABEL_B[None], torch.ones(1, 2, 2))
    if layout == "one-batch":
        batches = [([a[0], b[0]], [a[1], b[1]], [a[2], b[2]])]
    else:
        batches = [([a[0]], [a[1]], [a[2]]), ([b[0]], [b[1]], [b[2]])]
    assert pooled != pytest.approx(per_image_mean)
    assert _run(FOVConfusionMetric(score), batches) == pytest.approx(pooled)


def test_ignite_roc_auc_pools_different_images():
    # FOV of the first image: positives 1.0, 0.9, 0.2; negatives 0.7, 0.1 (AUC 5/6 alone). Second image: positive 0.8,
    # negatives 0.6, 0.95, 0.3 (AUC 2/3 alone). Pooled, of 4 x 5 pairs the positive ranks higher in:
    # 1.0: 5, 0.9: 4 (not 0.95), 0.2: 1 (0.1), 0.8: 4 (not 0.95) -> 14 / 20; the mean of the two AUCs would be 3/4
    batches = [([PRED], [LABEL], [FOV]), ([PRED_B], [LABEL_B])]
    assert fov_roc_auc(PRED_B, LABEL_B) == pytest.approx(2 / 3)
    assert _run(FOVROCAUC(), batches) == pytest.approx(14 / 20)


def test_ignite_metric_without_fov_counts_every_pixel():
    assert _run(FOVConfusionMetric("accuracy"), [([PRED], [LABEL])]) == pytest.approx(13 / 16)


def test_ignite_roc_auc():
    assert _run(FOVROCAUC(), [([PRED], [LABEL], [FOV])]) == pytest.approx(5 / 6)
