"""The DSB2018 metric and object counts on hand-built label images: split, merged, missed and spurious nuclei."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.handlers import IgniteMetricHandler

from medkit.metrics import (
    DSB_THRESHOLDS,
    InstanceMetric,
    dsb_average_precision,
    instance_iou,
    instance_metric_handlers,
    instance_scores,
    match_counts,
)


def _labels(shape: tuple[int, int], *boxes: tuple[int, int, int, int, int]) -> np.ndarray:
    """A label image with each ``(value, row0, row1, col0, col1)`` box filled with its value."""
    out = np.zeros(shape, np.int32)
    for value, r0, r1, c0, c1 in boxes:
        out[r0:r1, c0:c1] = value
    return out


TRUE = _labels((20, 20), (1, 0, 4, 0, 4), (2, 10, 20, 0, 10))  # a 16-px and a 100-px nucleus


def test_thresholds_are_the_competition_ones():
    assert DSB_THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def test_iou_matrix_by_hand_with_gaps_in_the_numbering():
    # predicted: nucleus 1 exact (label 7), nucleus 2 only its left 8 of 10 columns (label 3)
    pred = _labels((20, 20), (7, 0, 4, 0, 4), (3, 10, 20, 0, 8))
    iou = instance_iou(pred, TRUE)
    # rows: true 1, 2; columns: pred 3, 7 (sorted labels)
    np.testing.assert_allclose(iou, [[0.0, 1.0], [0.8, 0.0]])


def test_perfect_prediction_scores_one():
    assert dsb_average_precision(TRUE * 5, TRUE) == 1.0


def test_partial_overlap_counts_only_below_its_iou():
    pred = _labels((20, 20), (1, 0, 4, 0, 4), (2, 10, 20, 0, 8))  # IoUs 1.0 and 0.8
    # thresholds 0.5..0.75 (6): 2 TP -> 1; 0.8..0.95 (4): IoU 0.8 is not above 0.8 -> TP 1, FP 1, FN 1 -> 1/3
    assert dsb_average_precision(pred, TRUE) == pytest.approx((6 * 1 + 4 / 3) / 10)


def test_merged_nuclei_lose_both():
    true = _labels((10, 10), (1, 0, 10, 0, 5), (2, 0, 10, 5, 10))
    merged = (true > 0).astype(np.int32)  # one object over both: IoU 0.5 with each, not above 0.5
    scores = instance_scores(merged, true)
    # no match at any threshold: TP 0, FP 1, FN 2 -> 0
    assert scores["dsb_map"] == 0.0
    assert scores["count_error"] == pytest.approx(0.5)
    assert (scores["pred_count"], scores["true_count"]) == (1.0, 2.0)


def test_split_nucleus_counts_one_match_and_one_false_positive():
    true = _labels((10, 10), (1, 0, 10, 0, 10))
    split = _labels((10, 10), (1, 0, 10, 0, 6), (2, 0, 10, 6, 10))  # IoUs 0.6 and 0.4
    iou = instance_iou(split, true)
    assert match_counts(iou, 0.5) == (1, 1, 0)
    assert match_counts(iou, 0.6) == (0, 2, 1)
    # 0.5, 0.55: 1/(1+1+0) = 0.5; 0.6..0.95: 0
    assert dsb_average_precision(split, true) == pytest.approx(2 * 0.5 / 10)


def test_missed_and_spurious_nuclei():
    missed = _labels((20, 20), (1, 0, 4, 0, 4))  # nucleus 2 missed: TP 1, FN 1 -> 0.5 at every threshold
    assert dsb_average_precision(missed, TRUE) == pytest.approx(0.5)
    spurious = TRUE.copy()
    spurious[15:18, 15:18] = 9  # one extra object: TP 2, FP 1 -> 2/3
    assert dsb_average_precision(spurious, TRUE) == pytest.approx(2 / 3)
    assert instance_scores(spurious, TRUE)["count_error"] == pytest.approx(0.5)


def test_empty_images():
    empty = np.zeros_like(TRUE)
    assert dsb_average_precision(empty, empty) == 1.0
    assert dsb_average_precision(empty, TRUE) == 0.0
    assert dsb_average_precision(TRUE, empty) == 0.0
    full = np.ones_like(TRUE)  # no background pixel at all: one object over the whole image
    assert instance_iou(full, full).shape == (1, 1)


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="differ in shape"):
        instance_iou(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="integer labels"):
        instance_iou(np.full((3, 3), 0.5), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="not unique"):
        match_counts(np.zeros((1, 1)), 0.3)
    with pytest.raises(ValueError, match="unknown instance score"):
        InstanceMetric("map")


def test_cumulative_metric_averages_images_and_keeps_details():
    perfect = torch.from_numpy(TRUE)[None].float()
    missed = torch.from_numpy(_labels((20, 20), (1, 0, 4, 0, 4)))[None].float()
    metric = InstanceMetric("dsb_map")
    metric([perfect, missed], [perfect, perfect])  # a list of channel-first images, as from_engine gives
    assert metric.aggregate().item() == pytest.approx((1.0 + 0.5) / 2)
    np.testing.assert_allclose(metric.get_buffer().flatten().numpy(), [1.0, 0.5])


def test_handlers_cover_every_score():
    handlers = instance_metric_handlers("p", "t")
    assert set(handlers) == {"val_dsb_map", "val_ap50", "val_count_error", "val_pred_count", "val_true_count"}
    assert all(isinstance(h, IgniteMetricHandler) for h in handlers.values())
