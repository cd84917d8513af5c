"""Binary segmentation metrics restricted to a field-of-view (FOV) mask, as functions and ignite metrics.

Fundus photographs have a black border around the circular FOV. Counted over the whole image, that border adds many
easy true negatives and inflates accuracy and specificity, so retinal vessel papers (DRIVE, CHASE_DB1, STARE) score
only the pixels inside the FOV. Here every metric takes an optional ``fov`` mask; pixels outside it are ignored.

Scores are pooled over all pixels of all images, as in the DRIVE literature (not averaged per image):

* Dice = F1 = 2 TP / (2 TP + FP + FN)
* accuracy = (TP + TN) / (TP + FP + FN + TN)
* sensitivity = TP / (TP + FN), specificity = TN / (TN + FP)
* ROC AUC of the foreground probabilities (scikit-learn's ``roc_auc_score``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced, sync_all_reduce
from sklearn.metrics import roc_auc_score

__all__ = [
    "FOV_SCORES",
    "FOVConfusionMetric",
    "FOVROCAUC",
    "fov_confusion",
    "fov_roc_auc",
    "fov_scores",
    "scores_from_confusion",
]

logger = logging.getLogger(__name__)

FOV_SCORES = ("dice", "f1", "accuracy", "sensitivity", "specificity")


def _inside(label: torch.Tensor, fov: torch.Tensor | None) -> torch.Tensor:
    if fov is None:
        return torch.ones_like(label, dtype=torch.bool)
    if fov.shape != label.shape:
        raise ValueError(f"fov shape {tuple(fov.shape)} differs from label shape {tuple(label.shape)}")
    return fov > 0.5


def fov_confusion(
    pred: torch.Tensor, label: torch.Tensor, fov: torch.Tensor | None = None, threshold: float = 0.5
) -> torch.Tensor:
    """Counts ``[TP, FP, FN, TN]`` of a prediction inside the FOV.

    Args:
        pred: foreground probabilities or a binary prediction, any shape.
        label: binary ground truth (values > 0.5 are foreground), the shape of ``pred``.
        fov: optional mask of the shape of ``pred``; only pixels where it is > 0.5 count. ``None`` counts every pixel.
        threshold: ``pred > threshold`` is foreground.

    Returns:
        int64 tensor ``[TP, FP, FN, TN]``.
    """
    if pred.shape != label.shape:
        raise ValueError(f"pred shape {tuple(pred.shape)} differs from label shape {tuple(label.shape)}")
    inside = _inside(label, fov)
    p, g = (pred > threshold) & inside, (label > 0.5) & inside
    tp = (p & g).sum()
    fp = (p & ~g).sum()
    fn = (~p & g & inside).sum()
    tn = inside.sum() - tp - fp - fn
    return torch.stack([tp, fp, fn, tn]).to(torch.int64).cpu()


def scores_from_confusion(counts: Sequence[int] | torch.Tensor) -> dict[str, float]:
    """Dice/F1, accuracy, sensitivity and specificity from ``[TP, FP, FN, TN]``; an empty denominator gives NaN."""
    tp, fp, fn, tn = (float(c) for c in counts)

    def ratio(num: float, den: float) -> float:
        return num / den if den > 0 else float("nan")

    dice = ratio(2 * tp, 2 * tp + fp + fn)
    return {
        "dice": dice,
        "f1": dice,
        "accuracy": ratio(tp + tn, tp + fp + fn + tn),
        "sensitivity": ratio(tp, tp + fn),
        "specificity": ratio(tn, tn + fp),
    }


def fov_scores(
    pred: torch.Tensor, label: torch.Tensor, fov: torch.Tensor | None = None, threshold: float = 0.5
) -> dict[str, float]:
    """Dice/F1, accuracy, sensitivity and specificity of one prediction inside the FOV (see :func:`fov_confusion`)."""
    return scores_from_confusion(fov_confusion(pred, label, fov, threshold))


def fov_roc_auc(prob: torch.Tensor, label: torch.Tensor, fov: torch.Tensor | None = None) -> float:
    """ROC AUC of foreground probabilities inside the FOV; NaN when only one class is present there."""
    inside = _inside(label, fov)
    y = (label[inside] > 0.5).cpu().numpy()
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, prob[inside].detach().float().cpu().numpy()))


def _fov_batch(output: Sequence) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor | None]]:
    """Splits an engine output ``(preds, labels[, fovs])`` into per-image lists."""
    if len(output) not in (2, 3):
        raise ValueError(f"expected (pred, label) or (pred, label, fov) from output_transform, got {len(output)} items")
    preds, labels = list(output[0]), list(output[1])
    fovs = list(output[2]) if len(output) == 3 else [None] * len(preds)
    return preds, labels, fovs


class FOVConfusionMetric(Metric):
    """Pooled Dice/F1, accuracy, sensitivity or specificity inside the FOV, as an ignite metric.

    The engine output, after ``output_transform``, is ``(preds, labels)`` or ``(preds, labels, fovs)``: sequences (or
    batch tensors) of per-image foreground probabilities, binary labels and FOV masks, e.g.
    ``monai.handlers.from_engine(["pred", "label", "fov"])`` on a decollated evaluator output.

    Args:
        score: one of :data:`FOV_SCORES`.
        threshold: ``pred > threshold`` is foreground.
        output_transform: ignite's output transform.
        device: where ignite keeps the counts.
    """

    def __init__(
        self,
        score: str = "dice",
        threshold: float = 0.5,
        output_transform: Callable = lambda x: x,
        device: str | torch.device = "cpu",
    ) -> None:
        if score not in FOV_SCORES:
            raise ValueError(f"unknown score {score!r}; expected one of {FOV_SCORES}")
        self.score = score
        self.threshold = float(threshold)
        super().__init__(output_transform=output_transform, device=device, skip_unrolling=True)

    @reinit__is_reduced
    def reset(self) -> None:
        self._counts = torch.zeros(4, dtype=torch.int64, device=self._device)

    @reinit__is_reduced
    def update(self, output: Sequence) -> None:
        for pred, label, fov in zip(*_fov_batch(output)):
            self._counts += fov_confusion(pred, label, fov, self.threshold).to(self._device)

    @sync_all_reduce("_counts")
    def compute(self) -> float:
        return scores_from_confusion(self._counts)[self.score]


class FOVROCAUC(Metric):
    """Pooled ROC AUC of foreground probabilities inside the FOV, as an ignite metric.

    Keeps the probabilities and labels of every FOV pixel until :meth:`compute` (about 4.5 million pixels, 23 MB, for
    DRIVE's 20 test images). Takes the same engine output as :class:`FOVConfusionMetric`; ``pred`` must hold
    probabilities, not thresholded masks.
    """

    def __init__(self, output_transform: Callable = lambda x: x, device: str | torch.device = "cpu") -> None:
        super().__init__(output_transform=output_transform, device=device, skip_unrolling=True)

    @reinit__is_reduced
    def reset(self) -> None:
        self._probs: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []

    @reinit__is_reduced
    def update(self, output: Sequence) -> None:
        for pred, label, fov in zip(*_fov_batch(output)):
            if pred.shape != label.shape:
                raise ValueError(f"pred shape {tuple(pred.shape)} differs from label shape {tuple(label.shape)}")
            inside = _inside(label, fov)
            self._probs.append(pred[inside].detach().float().cpu().numpy())
            self._labels.append((label[inside] > 0.5).cpu().numpy())

    def compute(self) -> float:
        if not self._labels:
            raise RuntimeError("FOVROCAUC needs at least one image before compute()")
        import ignite.distributed as idist

        probs, labels = np.concatenate(self._probs), np.concatenate(self._labels)
        if idist.get_world_size() > 1:
            probs = idist.all_gather(torch.from_numpy(probs)).numpy()
            labels = idist.all_gather(torch.from_numpy(labels)).numpy()
        if labels.all() or not labels.any():
            logger.warning("ROC AUC undefined: only one class inside the FOV")
            return float("nan")
        return float(roc_auc_score(labels, probs))
