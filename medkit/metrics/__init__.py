"""Metrics that MONAI and ignite lack, as plain functions and ignite ``Metric`` classes."""

from __future__ import annotations

from medkit.metrics.fov import (
    FOV_SCORES,
    FOVROCAUC,
    FOVConfusionMetric,
    fov_confusion,
    fov_roc_auc,
    fov_scores,
    scores_from_confusion,
)
from medkit.metrics.outputs import stack_outputs

__all__: list[str] = []


__all__ += [
    "FOV_SCORES",
    "FOVROCAUC",
    "FOVConfusionMetric",
    "fov_confusion",
    "fov_roc_auc",
    "fov_scores",
    "scores_from_confusion",
]


__all__ += ["stack_outputs"]
