"""Ignite handlers for sequence/image classification: loss curves, evaluation reports and prediction CSVs.

They read batched (not decollated) engine outputs: ``engine.state.output`` is a dict with ``pred`` logits ``(B, 1)``
and ``label`` ``(B, 1)``, as MONAI engines give with ``decollate=False``. Multi-class engines give ``pred`` logits
``(B, C)`` and class-index labels ``(B,)`` or ``(B, 1)``; ``class_scores``, ``class_decisions``,
``ClassificationReport`` and ``PredictionCSVWriter`` handle both.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events

from medkit.handlers.collector import RunCollector
from medkit.utils import atomic_path, save_figure, save_json

__all__ = [
    "BinaryClassificationReport",
    "LossCurvesHandler",
    "PredictionCSVWriter",
    "binary_decisions",
    "binary_scores",
]
__all__ += ["THRESHOLD_FILENAME", "ValidationThresholdSaver", "best_accuracy_threshold", "load_threshold"]
__all__ += [
    "ClassificationReport",
    "class_decisions",
    "class_probabilities",
    "class_scores",
    "per_sample_cross_entropy",
    "plot_confusion_matrix",
    "save_confusion_matrix_figure",
]

logger = logging.getLogger(__name__)

#: the file next to ``model.pt`` that holds the binary decision threshold chosen on the validation split
THRESHOLD_FILENAME = "threshold.json"


def binary_scores(output: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Output transform for ranking metrics (ROC AUC, average precision): flat logits and flat labels."""
    return output["pred"].detach().float().reshape(-1), output["label"].reshape(-1)


def binary_decisions(output: dict, threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Output transform for accuracy: probability > ``threshold`` (logit > its logit; 0 for 0.5) as 0/1, and
    integer labels."""
    cut = torch.logit(torch.tensor(float(threshold), dtype=torch.float64)).item()
    return (output["pred"].detach().reshape(-1) > cut).long(), output["label"].reshape(-1).long()


def class_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Sigmoid of ``(B, 1)`` logits (probability of class 1) or softmax over the classes of ``(B, C)`` logits."""
    logits = logits.detach().float()
    return torch.sigmoid(logits) if logits.shape[-1] == 1 else torch.softmax(logits, dim=-1)


def per_sample_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each sample: binary cross-entropy of ``(B, 1)`` logits against 0/1 labels, or the softmax
    cross-entropy of ``(B, C)`` logits against class indices ``(B,)`` or ``(B, 1)``."""
    logits, labels = logits.detach().float(), labels.detach().reshape(-1)
    if logits.shape[-1] == 1:
        return torch.nn.functional.binary_cross_entropy_with_logits(
            logits.reshape(-1), labels.float(), reduction="none"
        )
    return torch.nn.functional.cross_entropy(logits, labels.long(), reduction="none")


def class_scores(output: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Output transform for ROC AUC of a binary or multi-class engine.

    Binary ``(B, 1)`` logits give ``binary_scores``; ``(B, C)`` logits give softmax probabilities and one-hot labels
    ``(B, C)``, the one-vs-rest input of MONAI's ``ROCAUC`` (its ``average="macro"`` then averages the C AUCs).
    """
    pred = output["pred"]
    if pred.shape[-1] == 1:
        return binary_scores(output)
    labels = output["label"].reshape(-1).long()
    return class_probabilities(pred), torch.nn.functional.one_hot(labels, pred.shape[-1]).to(pred.device)


def class_decisions(output: dict, threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Output transform for ignite's ``Accuracy``: ``binary_decisions`` at ``threshold`` for ``(B, 1)`` logits; for
    ``(B, C)`` logits the one-hot argmax ``(B, C)`` and class indices ``(B,)``, the shapes ignite reads as a
    multi-class task (``threshold`` unused)."""
    pred = output["pred"]
    if pred.shape[-1] == 1:
        return binary_decisions(output, threshold)
    decisions = torch.nn.functional.one_hot(pred.detach().argmax(-1), pred.shape[-1])
    return decisions, output["label"].reshape(-1).long()


class LossCurvesHandler:
    """Writes the mean training loss and the validation loss of each epoch to TensorBoard, on one chart.

    Attach it to the trainer after the ``ValidationHandler``, so the validator has run when the epoch completes. Both
    curves go to ``<tag>/train`` and ``<tag>/validation`` in the one event file, and a custom-scalars layout draws them
    together (TensorBoard's "Custom Scalars" tab).

    Args:
        summary_writer: the run's ``SummaryWriter``; ``None`` (ranks above 0 under torchrun) attaches nothing.
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
        if self.writer is None:
            return
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


def save_confusion_matrix_figure(
    labels: Sequence[int] | np.ndarray,
    predictions: Sequence[int] | np.ndarray,
    path: str | os.PathLike,
    class_names: Sequence[str] = ("negative", "positive"),
    title: str = "confusion matrix",
) -> dict[str, int]:
    """Counts the 2x2 confusion matrix of binary ``labels`` vs. ``predictions`` and saves it as a PNG with TN, FP, FN
    and TP and their counts in the cells (true labels on the rows, predicted on the columns; see
    :func:`plot_confusion_matrix`).

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
    plot_confusion_matrix(matrix, list(class_names), path, title=f"{title} (n={labels.size})")
    return {"tn": int(matrix[0, 0]), "fp": int(matrix[0, 1]), "fn": int(matrix[1, 0]), "tp": int(matrix[1, 1])}


class BinaryClassificationReport(RunCollector):
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

    collected = ("_probs", "_labels")

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
        save_json(report, self.output_dir / "metrics.json")
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
        save_figure(fig, self.output_dir / name)


class ClassificationReport(RunCollector):
    """Collects class probabilities and labels over an evaluation run of a binary or multi-class engine, then writes
    ``metrics.json`` and an annotated ``confusion_matrix.png`` into ``output_dir``.

    ``metrics.json`` holds accuracy, ROC AUC (one-vs-rest macro average for multi-class, with the per-class AUCs), the
    mean cross-entropy of the logits and the per-class accuracy (recall; ``None`` for a class absent from the labels)
    computed here, the confusion matrix (rows: true class, columns: predicted class), the engine's
    own metrics (``engine_metrics``), the sample counts and ``extra``. Binary decisions are probability >=
    ``threshold`` (with a threshold other than 0.5, ``accuracy_at_0.5`` is reported beside it); multi-class decisions
    are the argmax.

    Args:
        output_dir: folder for the two files.
        class_names: class names by index (default ``"0"``, ``"1"``, ...).
        threshold: probability of class 1 at or above which a binary prediction is class 1.
        extra: constant fields for ``metrics.json``, such as the checkpoint path.
    """

    collected = ("_probs", "_labels", "_losses")

    def __init__(
        self,
        output_dir: str | os.PathLike,
        class_names: list[str] | None = None,
        threshold: float = 0.5,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.class_names = [str(c) for c in class_names] if class_names else None
        self.threshold = threshold
        self.extra = dict(extra or {})
        self._probs: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self._losses: list[np.ndarray] = []

    def _reset(self, engine: Engine) -> None:
        for collected in (self._probs, self._labels, self._losses):
            collected.clear()

    def _collect(self, engine: Engine) -> None:
        output = engine.state.output
        logits, labels = output["pred"].detach().float(), output["label"].detach().reshape(-1)
        self._probs.append(class_probabilities(logits).cpu().numpy())
        self._labels.append(labels.long().cpu().numpy())
        self._losses.append(per_sample_cross_entropy(logits, labels).cpu().numpy())

    def __call__(self, engine: Engine) -> None:
        from sklearn.metrics import accuracy_score, confusion_matrix, roc_auc_score

        probs, labels = np.concatenate(self._probs), np.concatenate(self._labels)
        binary = probs.shape[1] == 1
        num_classes = 2 if binary else probs.shape[1]
        names = self.class_names or [str(i) for i in range(num_classes)]
        if len(names) != num_classes:
            raise ValueError(f"{len(names)} class names {names} for a {num_classes}-class output")
        present = np.unique(labels)
        if len(present) < 2:
            raise ValueError(f"evaluation needs at least two classes; all {len(labels)} labels are {present.tolist()}")
        decisions = (probs[:, 0] >= self.threshold).astype(int) if binary else probs.argmax(1)
        if binary:
            auc, per_class = float(roc_auc_score(labels, probs[:, 0])), None
        else:
            # one-vs-rest AUC per class present in the labels (a class with no positives has no AUC)
            per_class = {names[k]: float(roc_auc_score(labels == k, probs[:, k])) for k in present}
            auc = float(np.mean(list(per_class.values())))
        cm = confusion_matrix(labels, decisions, labels=list(range(num_classes)))
        support = cm.sum(1)
        report = {
            "metrics": {
                "accuracy": float(accuracy_score(labels, decisions)),
                "roc_auc": auc,
                "cross_entropy": float(np.concatenate(self._losses).mean()),
                **(
                    {"accuracy_at_0.5": float(accuracy_score(labels, probs[:, 0] >= 0.5))}
                    if binary and self.threshold != 0.5
                    else {}
                ),
                "per_class_accuracy": {
                    name: (float(cm[k, k] / support[k]) if support[k] else None) for k, name in enumerate(names)
                },
            },
            "roc_auc_per_class": per_class,
            "confusion_matrix": {"class_names": names, "rows_true_columns_predicted": cm.tolist()},
            "engine_metrics": {
                k: float(v) for k, v in engine.state.metrics.items() if isinstance(v, (int, float, np.number))
            },
            "num_samples": int(len(labels)),
            "class_counts": {names[k]: int((labels == k).sum()) for k in range(num_classes)},
            **({"threshold": self.threshold} if binary else {}),
            **self.extra,
        }
        save_json(report, self.output_dir / "metrics.json")
        title = f"ACC {report['metrics']['accuracy']:.3f}, AUC {auc:.3f}"
        plot_confusion_matrix(cm, names, self.output_dir / "confusion_matrix.png", title=title)
        logger.info("test metrics %s written to %s", report["metrics"], self.output_dir / "metrics.json")


def best_accuracy_threshold(
    probabilities: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray
) -> tuple[float, float]:
    """The decision threshold on the probability of class 1 that maximises accuracy on ``labels``.

    The candidates are scikit-learn's ``roc_curve`` thresholds (every distinct probability; class 1 at or above it).
    Each holds for a whole interval of thresholds, so the one returned is the interval's midpoint (the largest
    probability below the cut and the cut itself; 0 and 1 at the ends), which keeps a margin to the nearest
    probabilities. 0.5 is kept unless a cut is more accurate; among equally accurate cuts the one nearest 0.5 wins.

    Args:
        probabilities: probabilities of class 1.
        labels: 0/1 labels, as many as ``probabilities``.

    Returns:
        ``(threshold, accuracy)``: the threshold and the accuracy it gives on ``labels``.
    """
    from sklearn.metrics import roc_curve

    probs = np.asarray(probabilities, dtype=float).ravel()
    labels = np.asarray(labels).astype(int).ravel()
    if probs.shape != labels.shape:
        raise ValueError(f"got {probs.size} probabilities but {labels.size} labels; pass one probability per label")
    if set(np.unique(labels).tolist()) != {0, 1}:
        raise ValueError(f"a threshold needs labels of both classes 0 and 1, got {np.unique(labels).tolist()}")
    fpr, tpr, cuts = roc_curve(labels, probs, drop_intermediate=False)
    positives, negatives = int(labels.sum()), int(labels.size - labels.sum())
    accuracy = (tpr * positives + (1.0 - fpr) * negatives) / labels.size
    # cuts[0] is inf (nothing is class 1); cuts[i] gives the same decisions for any threshold in (cuts[i+1], cuts[i]]
    upper, lower = np.minimum(cuts, 1.0), np.append(cuts[1:], 0.0)
    midpoints = (upper + lower) / 2
    at_half = float(np.mean((probs >= 0.5) == labels.astype(bool)))
    if np.isclose(at_half, accuracy.max()):
        return 0.5, at_half
    best = np.flatnonzero(np.isclose(accuracy, accuracy.max()))
    i = best[np.argmin(np.abs(midpoints[best] - 0.5))]
    return float(midpoints[i]), float(accuracy[i])


class ValidationThresholdSaver(RunCollector):
    """Writes ``threshold.json`` beside ``model.pt``: the binary decision threshold that maximises accuracy on the
    validation run whose key metric set a new best (the run whose weights :class:`BestModelSaver` saves as
    ``model.pt``), chosen by :func:`best_accuracy_threshold` on that run's class-1 probabilities.

    Attach it to a validation evaluator that scores the same probabilities as evaluation (the flip TTA inferer
    included). Multi-class engines (``(B, C)`` logits) write nothing: they decide by argmax.

    Args:
        output_dir: the folder of ``model.pt``.
        filename: the threshold file's name.
    """

    collected = ("_probs", "_labels")

    def __init__(self, output_dir: str | os.PathLike, filename: str = THRESHOLD_FILENAME) -> None:
        self.path = Path(output_dir) / filename
        self._probs: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []

    def _reset(self, engine: Engine) -> None:
        self._probs, self._labels = [], []

    def _collect(self, engine: Engine) -> None:
        output = engine.state.output
        if output["pred"].shape[-1] != 1:
            return
        logits, labels = binary_scores(output)
        self._probs.append(torch.sigmoid(logits).cpu().numpy())
        self._labels.append(labels.cpu().numpy())

    def __call__(self, engine: Engine) -> None:
        if not self._probs or getattr(engine.state, "best_metric_epoch", -1) != engine.state.epoch:
            return
        probs, labels = np.concatenate(self._probs), np.concatenate(self._labels)
        threshold, accuracy = best_accuracy_threshold(probs, labels)
        record = {
            "threshold": threshold,
            "criterion": "validation accuracy",
            "val_accuracy": accuracy,
            "val_accuracy_at_0.5": float(np.mean((probs >= 0.5) == labels.astype(bool))),
            "epoch": int(engine.state.epoch),
            "num_samples": int(labels.size),
        }
        save_json(record, self.path)
        logger.info("threshold %.4f (validation accuracy %.4f) written to %s", threshold, accuracy, self.path)


def load_threshold(checkpoint: str | os.PathLike | Sequence[Any] | None, default: float | None = 0.5) -> float | None:
    """The binary decision threshold saved beside ``checkpoint`` (its folder's ``threshold.json``, written by
    :class:`ValidationThresholdSaver`), or ``default`` when there is none (older runs, multi-class runs, a list of
    ensemble checkpoints).

    Args:
        checkpoint: the ``model.pt`` path; a list (ensemble members) or ``None`` gives ``default``.
        default: the threshold without a file (``None`` where a caller tells "no saved threshold" apart).

    Returns:
        the threshold on the probability of class 1, or ``default``.
    """
    if checkpoint is None or isinstance(checkpoint, (list, tuple)):
        return default
    path = Path(checkpoint).parent / THRESHOLD_FILENAME
    if not path.is_file():
        logger.info("no %s beside %s: decision threshold %s", THRESHOLD_FILENAME, checkpoint, default)
        return default
    import json

    try:
        threshold = float(json.loads(path.read_text())["threshold"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} holds no threshold ({error}); delete it to use {default}") from error
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"{path}: threshold {threshold} is not a probability in [0, 1]; delete the file or fix it")
    logger.info("decision threshold %.4f from %s", threshold, path)
    return threshold


def plot_confusion_matrix(cm: np.ndarray, class_names: list[str], path: str | os.PathLike, title: str = "") -> Path:
    """Draws a confusion matrix (rows true, columns predicted) with the count in every cell; for two classes the cells
    are also marked TN, FP, FN, TP (class 1 positive). Returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(class_names)
    fig, ax = plt.subplots(figsize=(2.2 + 0.7 * k, 1.8 + 0.7 * k))
    ax.imshow(cm, cmap="Blues")
    tags = [["TN", "FP"], ["FN", "TP"]] if k == 2 else None
    for (i, j), n in np.ndenumerate(cm):
        text = f"{tags[i][j]}\n{n}" if tags else str(n)
        ax.text(j, i, text, ha="center", va="center", color="white" if n > cm.max() / 2 else "black", fontsize=9)
    ax.set_xticks(range(k), class_names, rotation=45 if k > 3 else 0, ha="right" if k > 3 else "center", fontsize=8)
    ax.set_yticks(range(k), class_names, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return save_figure(fig, path)


class PredictionCSVWriter(RunCollector):
    """Writes one CSV per input file, ``<output_dir>/<source>_predictions.csv``, atomically.

    Binary ``(B, 1)`` logits give ``id,probability,predicted_label`` (sigmoid; label 1 at or above ``threshold``).
    Multi-class ``(B, C)`` logits give ``id,probability_0,...,probability_<C-1>,predicted_label`` (softmax, argmax).
    With ``class_names``, a ``predicted_class`` column holds the predicted class's name. With ``filename``, all rows
    go to ``<output_dir>/<filename>`` instead, whatever their source.

    Ids and sources come from the batch (``engine.state.batch[id_key]``, ``[source_key]``). Rows that
    :meth:`finished` found in an existing CSV are kept when that CSV is rewritten with the new rows, so an inference
    rerun that skips finished inputs (:class:`medkit.bundle.InferenceDataLoader`) loses none.

    Args:
        output_dir: the folder for the CSV files.
        threshold: probability at or above which a binary ``predicted_label`` is 1.
        id_key: batch key of the record ids.
        source_key: batch key of the input file stems.
        class_names: optional class names by index, for the ``predicted_class`` column.
        id_header: the CSV header of the id column (``file`` for one row per image file, say).
        filename: one CSV file name for all rows (``predictions.csv``, say) instead of one file per source.
    """

    collected = ("_rows",)

    def __init__(
        self,
        output_dir: str | os.PathLike,
        threshold: float = 0.5,
        id_key: str = "id",
        source_key: str = "source",
        class_names: list[str] | None = None,
        id_header: str = "id",
        filename: str | None = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.filename = filename
        self.threshold = threshold
        self.id_key = id_key
        self.source_key = source_key
        self.class_names = [str(c) for c in class_names] if class_names else None
        self.id_header = id_header
        self._rows: list[tuple[str, str, list[float]]] = []  # (source, id, probabilities)
        self._num_columns = 1
        self._existing: dict[Path, dict[str, list[str]]] = {}  # rows of CSVs already on disk, by id
        self._kept: dict[Path, dict[str, list[str]]] = {}  # those of finished inputs, written again

    def _path(self, source: str | None) -> Path:
        return self.output_dir / (self.filename or f"{source or 'predictions'}_predictions.csv")

    def _read_existing(self, path: Path) -> dict[str, list[str]]:
        if path not in self._existing:
            try:
                with open(path, newline="") as f:
                    self._existing[path] = {row[0]: row for row in list(csv.reader(f))[1:] if row}
            except FileNotFoundError:
                self._existing[path] = {}
            except (OSError, UnicodeDecodeError, csv.Error) as error:
                logger.warning("%s is unreadable (%s): its inputs are predicted again", path, error)
                self._existing[path] = {}
        return self._existing[path]

    def finished(self, item: Mapping[str, Any]) -> bool:
        """Whether the CSV in ``output_dir`` already holds ``item``'s row (found by its ``id_key``); that row is
        then kept when the CSV is rewritten."""
        path = self._path(None if self.filename else item.get(self.source_key))
        record = str(item[self.id_key])
        row = self._read_existing(path).get(record)
        if row is not None:
            self._kept.setdefault(path, {})[record] = row
        return row is not None

    def _reset(self, engine: Engine) -> None:
        self._rows.clear()

    def _collect(self, engine: Engine) -> None:
        batch = engine.state.batch
        pred = engine.state.output["pred"]
        probs = class_probabilities(pred.reshape(len(pred), -1)).cpu().tolist()
        self._num_columns = len(probs[0]) if probs else self._num_columns
        sources = (None if self.filename else batch.get(self.source_key)) or ["predictions"] * len(probs)
        self._rows.extend((str(s), str(r), p) for s, r, p in zip(sources, batch[self.id_key], probs))

    def _row(self, record: str, probs: list[float]) -> list:
        label = int(probs[0] >= self.threshold) if len(probs) == 1 else int(np.argmax(probs))
        name = [] if self.class_names is None else [self.class_names[label]]
        return [record, *(f"{p:.6f}" for p in probs), label, *name]

    def __call__(self, engine: Engine) -> None:
        k = self._num_columns
        header = [
            self.id_header,
            *(["probability"] if k == 1 else [f"probability_{i}" for i in range(k)]),
            "predicted_label",
        ]
        header += [] if self.class_names is None else ["predicted_class"]
        new: dict[Path, list[list]] = {}
        for source, record, probs in self._rows:
            new.setdefault(self._path(None if self.filename else source), []).append(self._row(record, probs))
        for path, rows in new.items():
            redone = {row[0] for row in rows}
            kept = [row for record, row in self._kept.get(path, {}).items() if record not in redone]
            with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(header)
                writer.writerows([*kept, *rows])
            logger.info("%d predictions written to %s (%d kept from an earlier run)", len(rows), path, len(kept))
