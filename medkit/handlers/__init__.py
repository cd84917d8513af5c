"""Ignite handlers and checkpoint helpers used by medkit bundles."""

from __future__ import annotations

from medkit.handlers.batchnorm import PreciseBNHandler
from medkit.handlers.checkpoint import find_resume_checkpoint
from medkit.handlers.classification import (
    THRESHOLD_FILENAME,
    BinaryClassificationReport,
    ClassificationReport,
    LossCurvesHandler,
    PredictionCSVWriter,
    ValidationThresholdSaver,
    best_accuracy_threshold,
    binary_decisions,
    binary_scores,
    class_decisions,
    class_probabilities,
    class_scores,
    load_threshold,
    per_sample_cross_entropy,
    plot_confusion_matrix,
    save_confusion_matrix_figure,
)
from medkit.handlers.grad_clip import GradientClipHandler
from medkit.handlers.label_overlay import TISSUE_PALETTE, LabelOverlaySaver, colour_overlay, to_label_map
from medkit.handlers.overlay import SegmentationOverlaySaver, error_overlay
from medkit.handlers.per_class import PerClassMetrics, per_class_scores
from medkit.handlers.reports import MetricsJSONWriter, SegmentationFigureSaver
from medkit.handlers.time_limit import TimeLimitHandler

__all__ = ["MetricsJSONWriter", "SegmentationFigureSaver", "TimeLimitHandler", "find_resume_checkpoint"]
__all__ += [
    "BinaryClassificationReport",
    "LossCurvesHandler",
    "PredictionCSVWriter",
    "binary_decisions",
    "binary_scores",
]

__all__ += ["GradientClipHandler"]

__all__ += ["plot_confusion_matrix"]
__all__ += ["THRESHOLD_FILENAME", "ValidationThresholdSaver", "best_accuracy_threshold", "load_threshold"]

__all__ += ["per_sample_cross_entropy"]

__all__ += ["SegmentationOverlaySaver", "error_overlay"]


__all__ += ["LabelOverlaySaver", "PerClassMetrics", "colour_overlay", "per_class_scores", "to_label_map"]
__all__ += ["TISSUE_PALETTE"]
__all__ += [
    "ClassificationReport",
    "class_decisions",
    "class_probabilities",
    "class_scores",
    "save_confusion_matrix_figure",
]
__all__ += ["PreciseBNHandler"]
