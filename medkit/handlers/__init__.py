"""Ignite handlers and checkpoint helpers used by medkit bundles."""

from __future__ import annotations

from medkit.handlers.checkpoint import find_resume_checkpoint
from medkit.handlers.classification import ClassificationCSVWriter, probs_and_labels, probs_and_onehot
from medkit.handlers.reports import MetricsJSONWriter, SegmentationFigureSaver
from medkit.handlers.time_limit import TimeLimitHandler

__all__ = [
    "ClassificationCSVWriter",
    "probs_and_labels",
    "probs_and_onehot",
    "MetricsJSONWriter",
    "SegmentationFigureSaver",
    "TimeLimitHandler",
    "find_resume_checkpoint",
]
