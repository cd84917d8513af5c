"""Evaluation reports written at the end of an ignite engine run: metrics JSON and example figures."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine

from medkit.handlers.collector import RunCollector
from medkit.utils import save_figure, save_json

__all__ = ["MetricsJSONWriter", "SegmentationFigureSaver"]

logger = logging.getLogger(__name__)


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x)


def _source_name(item: dict) -> str:
    image = item.get("image")
    meta = getattr(image, "meta", {}) if image is not None else {}
    return str(meta.get("filename_or_obj", ""))


class MetricsJSONWriter(RunCollector):
    """Writes ``engine.state.metrics`` and the per-image values behind them to a JSON file when the run completes.

    Per-image values come from ``engine.state.metric_details`` (filled by MONAI metric handlers with
    ``save_details=True``), matched to the source file names seen in the engine's outputs.

    Kept beside MONAI's ``MetricsSaver``, which the segmentation evaluate layers also run, because the two write
    different things: ``MetricsSaver`` writes CSV tables (one per metric, per image and summary statistics) and
    nothing else; this writes one JSON document with the run's context (``extra``: checkpoint, split, resizing), the
    image count and medkit's per-class scores, which ``scripts/compare_endo_pretraining.py``,
    ``scripts/shapes_loss_table.py`` and ``scripts/bench_nuclei.py`` read. Neither duplicates the other's files.

    Args:
        output_path: the JSON file to write (parent folders are created; the write is atomic).
        extra: constant fields to add, such as the checkpoint path.
    """

    collected = ("_names",)

    def __init__(self, output_path: str | os.PathLike, extra: dict[str, Any] | None = None) -> None:
        self.output_path = Path(output_path)
        self.extra = dict(extra or {})
        self._names: list[str] = []

    def _reset(self, engine: Engine) -> None:
        self._names.clear()

    def _collect(self, engine: Engine) -> None:
        output = engine.state.output
        if isinstance(output, list):
            self._names.extend(_source_name(item) for item in output if isinstance(item, dict))

    def __call__(self, engine: Engine) -> None:
        report: dict[str, Any] = {
            k: float(v) for k, v in engine.state.metrics.items() if isinstance(v, (int, float, np.number))
        }
        per_image: dict[str, list] = {}
        for name, details in getattr(engine.state, "metric_details", {}).items():
            values = _to_numpy(details)
            per_image[name] = np.nanmean(values.reshape(values.shape[0], -1), axis=1).tolist()
        report = {"metrics": report, "num_images": len(self._names), **self.extra}
        if getattr(engine.state, "per_class_metrics", None):  # set by medkit.handlers.PerClassMetrics
            report["per_class"] = engine.state.per_class_metrics
        if per_image:
            names = self._names if len(self._names) == len(next(iter(per_image.values()))) else None
            report["per_image"] = [
                {"image": names[i] if names else i, **{k: v[i] for k, v in per_image.items()}}
                for i in range(len(next(iter(per_image.values()))))
            ]
        self.output_path.parent.mkdir(parents=True, exist_ok=True)
        save_json(report, self.output_path)
        logger.info("metrics %s written to %s", report["metrics"], self.output_path)


class SegmentationFigureSaver(RunCollector):
    """Saves a PNG with image, ground truth and prediction side by side for the first ``num_images`` samples.

    It reads channel-first 2D ``image``, ``label`` and ``pred`` entries from the decollated engine output, so place it
    after post-processing that brings all three to one size (for example ``Invertd`` on ``pred`` and ``image``).

    Args:
        output_path: the PNG file to write.
        num_images: how many samples to show, one row each.
        keys: the image, label and prediction keys.
    """

    collected = ("_rows",)

    def __init__(
        self,
        output_path: str | os.PathLike,
        num_images: int = 3,
        keys: tuple[str, str, str] = ("image", "label", "pred"),
    ) -> None:
        if num_images < 1:
            raise ValueError(f"num_images must be >= 1, got {num_images}")
        self.output_path = Path(output_path)
        self.num_images = num_images
        self.keys = keys
        self._rows: list[tuple[str, list[np.ndarray]]] = []

    def _reset(self, engine: Engine) -> None:
        self._rows.clear()

    def _collect(self, engine: Engine) -> None:
        output = engine.state.output
        for item in output if isinstance(output, list) else []:
            if len(self._rows) >= self.num_images:
                return
            # MONAI's PIL reader lays 2D images out as (W, H): transpose back for display
            planes = [_to_numpy(item[k])[0].T for k in self.keys]
            name = Path(_source_name(item)).name
            self._rows.append((name if len(name) <= 32 else f"{name[:14]}...{name[-14:]}", planes))

    def __call__(self, engine: Engine) -> None:
        if not self._rows:
            logger.warning("no samples collected; %s not written", self.output_path)
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = len(self._rows)
        fig, axes = plt.subplots(rows, 3, figsize=(9, 3 * rows), squeeze=False)
        for r, (name, (image, label, pred)) in enumerate(self._rows):
            for c, (plane, title) in enumerate(((image, "image"), (label, "ground truth"), (pred, "prediction"))):
                ax = axes[r, c]
                ax.imshow(plane, cmap="gray", interpolation="nearest")
                ax.set_title(f"{title}\n{name}" if c == 0 else title, fontsize=8)
                ax.axis("off")
        save_figure(fig, self.output_path)
        logger.info("example figure written to %s", self.output_path)
