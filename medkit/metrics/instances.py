"""Instance segmentation scores: the 2018 Data Science Bowl metric (mean average precision over IoU thresholds) and
object counts, as plain functions and a MONAI cumulative metric for ignite handlers.

The DSB2018 score of one image, for each IoU threshold ``t`` in 0.50, 0.55, ..., 0.95: a predicted object matches a
true object when their IoU exceeds ``t`` (above 0.5 a match is unique by construction), and the image scores
``TP / (TP + FP + FN)`` at ``t``; the image's score is the mean over the ten thresholds, and a data set's score the
mean over its images (Kaggle, "2018 Data Science Bowl: Evaluation").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.metrics import CumulativeIterationMetric

__all__ = [
    "DSB_THRESHOLDS",
    "INSTANCE_SCORES",
    "InstanceMetric",
    "dsb_average_precision",
    "instance_iou",
    "instance_metric_handlers",
    "instance_scores",
    "match_counts",
]

DSB_THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
INSTANCE_SCORES = ("dsb_map", "ap50", "count_error", "pred_count", "true_count")


def _as_labels(labels: np.ndarray | torch.Tensor, what: str) -> np.ndarray:
    array = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    array = np.squeeze(array)
    if array.dtype.kind == "f":
        if (array != np.round(array)).any() or (array < 0).any():
            raise ValueError(f"{what} must hold integer labels >= 0 (one per object); got fractional or negative ones")
        array = array.astype(np.int64)
    return array


def instance_iou(pred: np.ndarray | torch.Tensor, true: np.ndarray | torch.Tensor) -> np.ndarray:
    """The IoU of every true object with every predicted object, ``(n_true, n_pred)``.

    Args:
        pred: predicted label image (0 background, one positive integer per object; gaps in the numbering are fine).
        true: true label image of the same shape.

    Raises:
        ValueError: if the shapes differ or a label image holds fractional or negative values.
    """
    p, t = _as_labels(pred, "pred"), _as_labels(true, "true")
    if p.shape != t.shape:
        raise ValueError(f"pred labels {p.shape} and true labels {t.shape} differ in shape")
    p_ids, p = np.unique(p, return_inverse=True)  # sequential labels; index 0 is background when 0 is present
    t_ids, t = np.unique(t, return_inverse=True)
    p, t = p.ravel(), t.ravel()
    n_p, n_t = len(p_ids), len(t_ids)
    inter = np.bincount(t * n_p + p, minlength=n_t * n_p).reshape(n_t, n_p)
    area_t, area_p = inter.sum(axis=1), inter.sum(axis=0)
    t0, p0 = int(n_t > 0 and t_ids[0] == 0), int(n_p > 0 and p_ids[0] == 0)
    inter, area_t, area_p = inter[t0:, p0:], area_t[t0:], area_p[p0:]
    union = area_t[:, None] + area_p[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def match_counts(iou: np.ndarray, threshold: float) -> tuple[int, int, int]:
    """``(TP, FP, FN)`` at one IoU threshold: a pair matches when its IoU exceeds ``threshold`` (unique above 0.5).

    Args:
        iou: ``(n_true, n_pred)`` from :func:`instance_iou`.
        threshold: IoU a match must exceed, at least 0.5.
    """
    if threshold < 0.5:
        raise ValueError(f"threshold {threshold} < 0.5: matches above it are not unique; use 0.5 or more")
    tp = int((iou > threshold).sum())
    n_true, n_pred = iou.shape
    return tp, n_pred - tp, n_true - tp


def dsb_average_precision(
    pred: np.ndarray | torch.Tensor, true: np.ndarray | torch.Tensor, thresholds: Sequence[float] = DSB_THRESHOLDS
) -> float:
    """The DSB2018 score of one image: the mean over ``thresholds`` of ``TP / (TP + FP + FN)``.

    An image with no true and no predicted object scores 1; with objects on one side only, 0.

    Args:
        pred: predicted label image.
        true: true label image.
        thresholds: IoU thresholds (the competition's 0.50:0.05:0.95 by default).
    """
    return instance_scores(pred, true, thresholds)["dsb_map"]


def instance_scores(
    pred: np.ndarray | torch.Tensor, true: np.ndarray | torch.Tensor, thresholds: Sequence[float] = DSB_THRESHOLDS
) -> dict[str, float]:
    """Every score in :data:`INSTANCE_SCORES` for one image.

    Returns:
        ``dsb_map`` (:func:`dsb_average_precision`), ``ap50`` (its value at IoU 0.5 alone), ``count_error``
        (``|n_pred - n_true| / max(n_true, 1)``), ``pred_count`` and ``true_count``.
    """
    iou = instance_iou(pred, true)
    n_true, n_pred = iou.shape
    precisions = []
    for threshold in thresholds:
        tp, fp, fn = match_counts(iou, threshold)
        precisions.append(1.0 if tp + fp + fn == 0 else tp / (tp + fp + fn))
    tp50, fp50, fn50 = match_counts(iou, 0.5)
    return {
        "dsb_map": float(np.mean(precisions)),
        "ap50": 1.0 if tp50 + fp50 + fn50 == 0 else tp50 / (tp50 + fp50 + fn50),
        "count_error": abs(n_pred - n_true) / max(n_true, 1),
        "pred_count": float(n_pred),
        "true_count": float(n_true),
    }


class InstanceMetric(CumulativeIterationMetric):
    """One score of :func:`instance_scores` per image, averaged over the images seen (MONAI cumulative metric).

    Use with ``monai.handlers.IgniteMetricHandler`` on label images, e.g. ``output_transform=
    from_engine(["pred_instances", "instances"])``; the per-image values are the handler's details (``MetricsSaver``
    writes them per image) and are gathered over ranks under DDP.

    Args:
        score: one of :data:`INSTANCE_SCORES`.
        thresholds: IoU thresholds of ``dsb_map``.
    """

    def __init__(self, score: str = "dsb_map", thresholds: Sequence[float] = DSB_THRESHOLDS) -> None:
        super().__init__()
        if score not in INSTANCE_SCORES:
            raise ValueError(f"unknown instance score {score!r}; expected one of {', '.join(INSTANCE_SCORES)}")
        self.score = score
        self.thresholds = tuple(thresholds)

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        if y is None:
            raise ValueError("InstanceMetric needs the true label images (y)")
        if y_pred.shape != y.shape:
            raise ValueError(f"predicted labels {tuple(y_pred.shape)} and true labels {tuple(y.shape)} differ in shape")
        values = [instance_scores(p, t, self.thresholds)[self.score] for p, t in zip(y_pred, y)]
        return torch.tensor(values, dtype=torch.float64).reshape(-1, 1)

    def aggregate(self) -> torch.Tensor:  # type: ignore[override]
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor) or data.numel() == 0:
            raise ValueError("InstanceMetric has seen no image")
        return data.float().mean()


def instance_metric_handlers(
    pred_key: str = "pred_instances",
    true_key: str = "instances",
    prefix: str = "val_",
    scores: Sequence[str] = INSTANCE_SCORES,
) -> dict[str, Any]:
    """Ignite metric handlers, one per score, for an evaluator's ``additional_metrics``: ``{prefix + score: handler}``.

    Args:
        pred_key: the engine output entry holding the predicted label images.
        true_key: the entry holding the true label images.
        prefix: prepended to each score's name.
        scores: a subset of :data:`INSTANCE_SCORES`.
    """
    from monai.handlers import IgniteMetricHandler, from_engine

    return {
        f"{prefix}{score}": IgniteMetricHandler(
            metric_fn=InstanceMetric(score), output_transform=from_engine([pred_key, true_key]), save_details=True
        )
        for score in scores
    }
