"""Ignite handlers for multi-class image classification: an evaluation report and a prediction CSV.

They read batched (not decollated) engine outputs: ``engine.state.output`` holds ``pred`` logits ``(B, C)`` and
``label`` ``(B,)`` class indices, as MONAI engines give with ``decollate=False``.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events

__all__ = ["MulticlassClassificationReport", "MulticlassPredictionCSVWriter", "multiclass_report"]

logger = logging.getLogger(__name__)


def multiclass_report(logits: np.ndarray, labels: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, per-class accuracy (recall), mean cross-entropy and the confusion matrix (rows: true class).

    Args:
        logits: ``(N, C)`` raw logits.
        labels: ``(N,)`` class indices.
        class_names: ``C`` names.
    """
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels).astype(int).reshape(-1)
    if logits.ndim != 2 or logits.shape[1] != len(class_names) or len(logits) != len(labels):
        raise ValueError(f"logits {logits.shape} do not fit {len(labels)} labels and {len(class_names)} classes")
    preds = logits.argmax(1)
    log_probs = logits - logits.max(1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(1, keepdims=True))
    confusion = np.zeros((len(class_names),) * 2, dtype=int)
    np.add.at(confusion, (labels, preds), 1)
    support = confusion.sum(1)
    return {
        "accuracy": float((preds == labels).mean()),
        "cross_entropy": float(-log_probs[np.arange(len(labels)), labels].mean()),
        "per_class_accuracy": {
            name: (float(confusion[k, k] / support[k]) if support[k] else None) for k, name in enumerate(class_names)
        },
        "confusion_matrix": confusion.tolist(),
    }


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class MulticlassClassificationReport:
    """Collects logits and labels over an evaluation run, then writes ``metrics.json`` (see
    :func:`multiclass_report`, plus the engine's metrics under ``engine_metrics`` and ``extra``) and
    ``confusion_matrix.png`` into ``output_dir``.

    Args:
        output_dir: folder for the two files.
        class_names: one name per logit.
        extra: constant fields for ``metrics.json``, such as the checkpoint path.
    """

    def __init__(
        self, output_dir: str | os.PathLike, class_names: Sequence[str], extra: dict[str, Any] | None = None
    ) -> None:
        self.output_dir = Path(output_dir)
        self.class_names = [str(c) for c in class_names]
        self.extra = dict(extra or {})
        self._logits: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.COMPLETED, self)

    def _reset(self, engine: Engine) -> None:
        self._logits, self._labels = [], []

    def _collect(self, engine: Engine) -> None:
        output = engine.state.output
        self._logits.append(output["pred"].detach().float().cpu().numpy())
        self._labels.append(output["label"].detach().reshape(-1).cpu().numpy())

    def __call__(self, engine: Engine) -> None:
        logits, labels = np.concatenate(self._logits), np.concatenate(self._labels)
        metrics = multiclass_report(logits, labels, self.class_names)
        confusion = metrics.pop("confusion_matrix")
        report = {
            "metrics": metrics,
            "engine_metrics": {
                k: float(v) for k, v in engine.state.metrics.items() if isinstance(v, (int, float, np.number))
            },
            "class_names": self.class_names,
            "confusion_matrix": confusion,
            "num_images": int(len(labels)),
            **self.extra,
        }
        _write_atomic(self.output_dir / "metrics.json", json.dumps(report, indent=2))
        self._plot(np.asarray(confusion), metrics["accuracy"])
        logger.info("accuracy %.4f on %d images; report in %s", metrics["accuracy"], len(labels), self.output_dir)

    def _plot(self, confusion: np.ndarray, accuracy: float) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        size = 1.5 + 0.55 * len(self.class_names)
        fig, ax = plt.subplots(figsize=(size, size))
        ax.imshow(confusion, cmap="Blues")
        for (i, j), count in np.ndenumerate(confusion):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                    color="white" if count > confusion.max() / 2 else "black")  # fmt: skip
        ticks = range(len(self.class_names))
        ax.set_xticks(ticks, self.class_names, rotation=90, fontsize=7)
        ax.set_yticks(ticks, self.class_names, fontsize=7)
        ax.set(xlabel="predicted", ylabel="true", title=f"accuracy {accuracy:.3f}")
        fig.tight_layout()
        fig.savefig(self.output_dir / "confusion_matrix.png", dpi=100)
        plt.close(fig)


class MulticlassPredictionCSVWriter:
    """Writes ``<output_dir>/predictions.csv``: ``id, predicted_label, predicted_class`` and one softmax probability
    column per class (``p_<name>``), in input order.

    Args:
        output_dir: folder of the CSV.
        class_names: one name per logit.
        id_key: batch key of the sample ids.
        filename: CSV file name.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        class_names: Sequence[str],
        id_key: str = "id",
        filename: str = "predictions.csv",
    ) -> None:
        self.path = Path(output_dir) / filename
        self.class_names = [str(c) for c in class_names]
        self.id_key = id_key
        self._rows: list[list[Any]] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, lambda _: self._rows.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.COMPLETED, self)

    def _collect(self, engine: Engine) -> None:
        probs = torch.softmax(engine.state.output["pred"].detach().float(), dim=1).cpu().numpy()
        for record, p in zip(engine.state.batch[self.id_key], probs):
            k = int(p.argmax())
            self._rows.append([record, k, self.class_names[k], *(f"{v:.6f}" for v in p)])

    def __call__(self, engine: Engine) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "predicted_label", "predicted_class", *(f"p_{c}" for c in self.class_names)])
            writer.writerows(self._rows)
        os.replace(tmp, self.path)
        logger.info("%d predictions written to %s", len(self._rows), self.path)
