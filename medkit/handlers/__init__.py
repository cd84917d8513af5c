"""Ignite handlers and checkpoint helpers used by medkit bundles."""

from __future__ import annotations

from medkit.handlers.batchnorm import PreciseBNHandler
from medkit.handlers.checkpoint import find_resume_checkpoint
from medkit.handlers.classification import (
    BinaryClassificationReport,
    ClassificationReport,
    LossCurvesHandler,
    PredictionCSVWriter,
    binary_decisions,
    binary_scores,
    class_decisions,
    class_probabilities,
    class_scores,
    save_confusion_matrix_figure,
)
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

__all__ += [
    "ClassificationReport",
    "class_decisions",
    "class_probabilities",
    "class_scores",
    "save_confusion_matrix_figure",
]
__all__ += ["PreciseBNHandler"]
