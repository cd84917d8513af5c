"""Ignite handlers for binary sequence/image classification: loss curves, evaluation reports and prediction CSVs.

They read batched (not decollated) engine outputs: ``engine.state.output`` is a dict with ``pred`` logits ``(B, 1)``
and ``label`` ``(B, 1)``, as MONAI engines give with ``decollate=False``.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events

__all__ = [
    "BinaryClassificationReport",
    "LossCurvesHandler",
    "PredictionCSVWriter",
    "binary_decisions",
    "binary_scores",
]
__all__ += ["save_confusion_matrix_figure"]

logger = logging.getLogger(__name__)


def binary_scores(output: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Output transform for ranking metrics (ROC AUC, average precision): flat logits and flat labels."""
    return output["pred"].detach().float().reshape(-1), output["label"].reshape(-1)


def binary_decisions(output: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Output transform for accuracy: logit > 0 (probability > 0.5) as 0/1, and integer labels."""
    return (output["pred"].detach().reshape(-1) > 0).long(), output["label"].reshape(-1).long()


class LossCurvesHandler:
    """Writes the mean training loss and the validation loss of each epoch to TensorBoard, on one chart.

    Attach it to the trainer after the ``ValidationHandler``, so the validator has run when the epoch completes. Both
    curves go to ``<tag>/train`` and ``<tag>/validation`` in the one event file, and a custom-scalars layout draws them
    together (TensorBoard's "Custom Scalars" tab).

    Args:
        summary_writer: the run's ``SummaryWriter``.
        validator: the validation engine whose ``state.metrics[metric_name]`` holds the validation loss.
        metric_name: the validation loss metric's name.
        tag: chart name.
    """

    def __init__(
        self, summary_writer: Any, validator: Engine, metric_name: str = "val_loss", tag: str = "loss"
    ) -> None:
        self.writer = summary_writer
        self.validator = validator
        self.metric_name = metric_name
        self.tag = tag
        self._sum = 0.0
        self._count = 0

    def attach(self, engine: Engine) -> None:
        self.writer.add_custom_scalars(
            {"curves": {self.tag: ["Multiline", [f"{self.tag}/train", f"{self.tag}/validation"]]}}
        )
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._accumulate)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _reset(self, engine: Engine) -> None:
        self._sum, self._count = 0.0, 0

    def _accumulate(self, engine: Engine) -> None:
        output = engine.state.output
        loss = output["loss"] if isinstance(output, dict) else output[0]["loss"]
        self._sum += float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
        self._count += 1

    def __call__(self, engine: Engine) -> None:
        epoch = engine.state.epoch
        if self._count:
            self.writer.add_scalar(f"{self.tag}/train", self._sum / self._count, epoch)
        val = self.validator.state.metrics.get(self.metric_name) if self.validator.state else None
        if val is not None and self.validator.state.epoch > 0:
            self.writer.add_scalar(f"{self.tag}/validation", float(val), epoch)
        self.writer.flush()


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_confusion_matrix_figure(
    labels: Sequence[int] | np.ndarray,
    predictions: Sequence[int] | np.ndarray,
    path: str | os.PathLike,
    class_names: Sequence[str] = ("negative", "positive"),
    title: str = "confusion matrix",
) -> dict[str, int]:
    """Draws the 2x2 confusion matrix of binary ``labels`` vs. ``predictions`` with TN, FP, FN and TP and their counts
    written in the cells, true labels on the rows and predicted labels on the columns, and saves it as a PNG.

    Args:
        labels: true 0/1 labels.
        predictions: predicted 0/1 labels, as many as ``labels``.
        path: the PNG file to write (its folder is created).
        class_names: names of class 0 and class 1 for the axis ticks.
        title: figure title.

    Returns:
        the counts ``{"tn", "fp", "fn", "tp"}``.
    """
    labels, predictions = np.asarray(labels).astype(int).ravel(), np.asarray(predictions).astype(int).ravel()
    if labels.shape != predictions.shape:
        raise ValueError(f"got {labels.size} labels but {predictions.size} predictions")
    if not set(np.unique(np.concatenate([labels, predictions]))) <= {0, 1}:
        raise ValueError("labels and predictions must be 0 or 1")
    if len(class_names) != 2:
        raise ValueError(f"class_names needs two names (class 0, class 1), got {list(class_names)}")
    matrix = np.array([[np.sum((labels == t) & (predictions == p)) for p in (0, 1)] for t in (0, 1)])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.imshow(matrix, cmap="Blues", vmin=0, vmax=max(int(matrix.max()), 1))
    names = (("TN", "FP"), ("FN", "TP"))
    for t in (0, 1):
        for p in (0, 1):
            dark = matrix[t, p] > 0.6 * matrix.max()
            ax.text(p, t, f"{names[t][p]}\n{matrix[t, p]}", ha="center", va="center", fontsize=13,
                    color="white" if dark else "black")  # fmt: skip
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=list(class_names), yticklabels=list(class_names))
    ax.set(xlabel="predicted label", ylabel="true label", title=f"{title} (n={labels.size})")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return {"tn": int(matrix[0, 0]), "fp": int(matrix[0, 1]), "fn": int(matrix[1, 0]), "tp": int(matrix[1, 1])}


class BinaryClassificationReport:
    """Collects probabilities and labels over an evaluation run, then writes ``metrics.json``, ``roc_curve.png``,
    ``pr_curve.png`` and ``confusion_matrix.png`` into ``output_dir``.

    ``metrics.json`` holds ROC AUC, PR AUC (average precision) and accuracy at probability 0.5 computed here with
    scikit-learn, the engine's own metrics under their engine names (``engine_metrics``; in a bundle's evaluate layer
    they keep the validation names, such as ``val_loss``, but are computed on the evaluated split), the confusion
    counts at probability 0.5 (``confusion_matrix``: tn, fp, fn, tp), the sample counts and ``extra``.

    Args:
        output_dir: folder for the four files.
        extra: constant fields for ``metrics.json``, such as the checkpoint path.
        class_names: names of class 0 and class 1 on the confusion-matrix axes.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        extra: dict[str, Any] | None = None,
        class_names: Sequence[str] = ("negative", "positive"),
    ) -> None:
        self.output_dir = Path(output_dir)
        self.extra = dict(extra or {})
        self.class_names = tuple(class_names)
        self._probs: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.COMPLETED, self)

    def _reset(self, engine: Engine) -> None:
        self._probs, self._labels = [], []

    def _collect(self, engine: Engine) -> None:
        logits, labels = binary_scores(engine.state.output)
        self._probs.append(torch.sigmoid(logits).cpu().numpy())
        self._labels.append(labels.cpu().numpy().astype(int))

    def __call__(self, engine: Engine) -> None:
        from sklearn.metrics import (
            accuracy_score,
            average_precision_score,
            precision_recall_curve,
            roc_auc_score,
            roc_curve,
        )

        probs, labels = np.concatenate(self._probs), np.concatenate(self._labels)
        if len(np.unique(labels)) < 2:
            raise ValueError(f"evaluation needs both classes; all {len(labels)} labels are {labels[:1].tolist()}")
        report = {
            "metrics": {
                "roc_auc": float(roc_auc_score(labels, probs)),
                "pr_auc": float(average_precision_score(labels, probs)),
                "accuracy": float(accuracy_score(labels, probs > 0.5)),
            },
            "engine_metrics": {
                k: float(v) for k, v in engine.state.metrics.items() if isinstance(v, (int, float, np.number))
            },
            "num_sequences": int(len(labels)),
            "num_samples": int(len(labels)),
            "num_positive": int(labels.sum()),
            **self.extra,
        }
        report["confusion_matrix"] = save_confusion_matrix_figure(
            labels, (probs > 0.5).astype(int), self.output_dir / "confusion_matrix.png", self.class_names
        )
        _write_atomic(self.output_dir / "metrics.json", json.dumps(report, indent=2))
        fpr, tpr, _ = roc_curve(labels, probs)
        precision, recall, _ = precision_recall_curve(labels, probs)
        m = report["metrics"]
        self._plot(
            fpr, tpr, "false positive rate", "true positive rate", f"ROC (AUC {m['roc_auc']:.3f})", "roc_curve.png"
        )
        self._plot(recall, precision, "recall", "precision", f"precision-recall (AP {m['pr_auc']:.3f})", "pr_curve.png")
        logger.info("test metrics %s written to %s", report["metrics"], self.output_dir / "metrics.json")

    def _plot(self, x: np.ndarray, y: np.ndarray, xlabel: str, ylabel: str, title: str, name: str) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.plot(x, y, lw=1.5)
        if name.startswith("roc"):
            ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title, xlim=(0, 1), ylim=(0, 1.02))
        fig.tight_layout()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        fig.savefig(self.output_dir / name, dpi=100)
        plt.close(fig)


class PredictionCSVWriter:
    """Writes one CSV per input file, ``<output_dir>/<source>_predictions.csv`` with ``id,probability,predicted_label``.

    Ids and sources come from the batch (``engine.state.batch[id_key]``, ``[source_key]``); probabilities are the
    sigmoid of the ``pred`` logits.

    Args:
        output_dir: the folder for the CSV files.
        threshold: probability at or above which ``predicted_label`` is 1.
        id_key: batch key of the record ids.
        source_key: batch key of the input file stems.
        id_header: the CSV header of the id column (``file`` for one row per image file, say).
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        threshold: float = 0.5,
        id_key: str = "id",
        source_key: str = "source",
        id_header: str = "id",
    ) -> None:
        self.output_dir = Path(output_dir)
        self.threshold = threshold
        self.id_key = id_key
        self.source_key = source_key
        self.id_header = id_header
        self._rows: dict[str, list[tuple[str, float]]] = defaultdict(list)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, lambda _: self._rows.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.COMPLETED, self)

    def _collect(self, engine: Engine) -> None:
        batch = engine.state.batch
        probs = torch.sigmoid(engine.state.output["pred"].detach().float().reshape(-1)).cpu().tolist()
        sources = batch.get(self.source_key) or ["predictions"] * len(probs)
        for record, source, prob in zip(batch[self.id_key], sources, probs):
            self._rows[source].append((record, prob))

    def __call__(self, engine: Engine) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for source, rows in self._rows.items():
            path = self.output_dir / f"{source}_predictions.csv"
            tmp = path.with_name(f".{path.name}.tmp")
            with open(tmp, "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow([self.id_header, "probability", "predicted_label"])
                writer.writerows((r, f"{p:.6f}", int(p >= self.threshold)) for r, p in rows)
            os.replace(tmp, path)
            logger.info("%d predictions written to %s", len(rows), path)
