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

from medkit.metrics.instances import (  # noqa: E402
    DSB_THRESHOLDS,
    INSTANCE_SCORES,
    InstanceMetric,
    dsb_average_precision,
    instance_iou,
    instance_metric_handlers,
    instance_scores,
    match_counts,
)

__all__ += [
    "DSB_THRESHOLDS",
    "INSTANCE_SCORES",
    "InstanceMetric",
    "dsb_average_precision",
    "instance_iou",
    "instance_metric_handlers",
    "instance_scores",
    "match_counts",
]
