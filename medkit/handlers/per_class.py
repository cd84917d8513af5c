"""Per-class metric reporting: turns MONAI's per-class metric tensors into one named scalar per class."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events

__all__ = ["PerClassMetrics", "per_class_scores"]

logger = logging.getLogger(__name__)


def _tag(name: str) -> str:
    """A TensorBoard- and CSV-friendly form of a class name: ``"Bipolar Forceps"`` -> ``"bipolar_forceps"``."""
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower() or "class"


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def per_class_scores(values: Any, class_names: Sequence[str]) -> dict[str, float]:
    """Names the entries of a per-class metric vector.

    Args:
        values: one value per class, e.g. ``DiceMetric(reduction="mean_batch")`` output; NaN marks a class absent
            from every ground truth.
        class_names: all class names, background first. A vector one shorter than ``class_names`` is taken to
            exclude the background (``include_background=False``).

    Returns:
        ``{class_name: value}`` in class order.

    Raises:
        ValueError: if the vector length fits neither all classes nor the classes without background.
    """
    array = values.detach().float().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values, float)
    array = np.atleast_1d(array.squeeze())
    if array.ndim != 1 or array.size not in (len(class_names), len(class_names) - 1):
        raise ValueError(
            f"expected {len(class_names)} per-class values (or {len(class_names) - 1} without background) for "
            f"classes {list(class_names)}, got shape {tuple(array.shape)}"
        )
    names = class_names if array.size == len(class_names) else class_names[1:]
    return {name: float(v) for name, v in zip(names, array)}


class PerClassMetrics:
    """Replaces per-class metric tensors in ``engine.state.metrics`` by one scalar per class name.

    For each ``name`` in ``metric_names`` (a metric attached with ``reduction="mean_batch"``, whose value is a
    ``(C,)`` tensor), it adds ``<name>_<class>`` scalars (class names lower-cased, non-alphanumerics as ``_``), plus
    ``<name>_mean`` over all reported classes and, when background is among them, ``<name>_mean_fg`` over the others
    (NaN classes are skipped). A class absent from every ground truth reads NaN (computed from the per-image values
    that MONAI keeps with ``save_details=True``, its default). The tensor itself is removed so that loggers only see
    scalars. The nested form ``{name: {class_name: value}}`` is kept in ``engine.state.per_class_metrics``, which
    :class:`~medkit.handlers.MetricsJSONWriter` writes under ``"per_class"``.

    Attach it to an evaluator **before** ``StatsHandler``, ``TensorBoardStatsHandler`` and ``MetricsJSONWriter`` (list
    it first in ``val_handlers``) so they see the per-class scalars; MONAI attaches the metrics themselves earlier.

    Args:
        class_names: all class names, background first (index 0).
        metric_names: names of per-class metrics in ``engine.state.metrics``.
        background: index-0 class name treated as background for ``_mean_fg``; ``None`` if there is no background.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        metric_names: Sequence[str] = ("val_dice", "val_iou"),
        background: str | None = "background",
    ) -> None:
        if len(class_names) < 2:
            raise ValueError(f"need at least 2 class names, got {list(class_names)}")
        self.class_names = [str(c) for c in class_names]
        self.metric_names = [metric_names] if isinstance(metric_names, str) else list(metric_names)
        self.background = background if background is not None and background == self.class_names[0] else None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    @staticmethod
    def _class_means(engine: Engine, name: str, value: Any) -> Any:
        """Per-class means from the per-image details when MONAI kept them, so a class absent from every ground
        truth reads NaN (MONAI's ``mean_batch`` reports 0 for it); otherwise the metric value itself."""
        details = getattr(engine.state, "metric_details", {}).get(name)
        if details is None:
            return value
        array = details.detach().float().cpu().numpy() if isinstance(details, torch.Tensor) else np.asarray(details)
        if array.ndim != 2:
            return value
        counts = (~np.isnan(array)).sum(axis=0)
        sums = np.nansum(array, axis=0)
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)

    def __call__(self, engine: Engine) -> None:
        metrics = engine.state.metrics
        report: dict[str, dict[str, float]] = {}
        for name in self.metric_names:
            if name not in metrics:
                logger.warning("per-class metric %s not found among %s", name, sorted(metrics))
                continue
            scores = per_class_scores(self._class_means(engine, name, metrics.pop(name)), self.class_names)
            report[name] = scores
            for cls, value in scores.items():
                metrics[f"{name}_{_tag(cls)}"] = value
            metrics[f"{name}_mean"] = _nanmean(list(scores.values()))
            if self.background in scores:
                metrics[f"{name}_mean_fg"] = _nanmean([v for cls, v in scores.items() if cls != self.background])
        engine.state.per_class_metrics = report
