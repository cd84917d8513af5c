"""Per-class Dice from one-hot segmentations, with and without the background class, as a function and an ignite
metric that reports each class by name."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced, sync_all_reduce
from monai.metrics import compute_dice

__all__ = ["PerClassDice", "per_class_dice", "stack_outputs"]

logger = logging.getLogger(__name__)


def per_class_dice(y_pred: torch.Tensor, y: torch.Tensor, include_background: bool = True) -> torch.Tensor:
    """Dice of every class in every image, from one-hot (or binarised) ``(B, C, *spatial)`` tensors.

    ``Dice = 2 |P ∩ G| / (|P| + |G|)`` per image and class. A class absent from an image's ground truth gives NaN for
    that image (MONAI's ``ignore_empty``), so averages over images skip it instead of counting it as 0 or 1.

    Args:
        y_pred: binarised prediction, ``(B, C, *spatial)``.
        y: one-hot ground truth of the same shape.
        include_background: if false, channel 0 is dropped from the result.

    Returns:
        ``(B, C)`` or ``(B, C - 1)`` float tensor.

    Raises:
        ValueError: if the shapes differ or have fewer than 3 dimensions.
    """
    if y_pred.shape != y.shape or y_pred.dim() < 3:
        raise ValueError(
            f"expected one-hot (B, C, *spatial) tensors of one shape, got {tuple(y_pred.shape)} and {tuple(y.shape)}"
        )
    return compute_dice(y_pred.float(), y.float(), include_background=include_background, ignore_empty=True)


def stack_outputs(output: Any, *keys: str) -> tuple[torch.Tensor, ...]:
    """Output transform: stacks ``keys`` of a decollated engine output (a list of dicts) into batch tensors."""
    if isinstance(output, dict):
        return tuple(output[k] for k in keys)
    return tuple(torch.stack([torch.as_tensor(item[k]) for item in output]) for k in keys)


class PerClassDice(Metric):
    """Mean Dice per class over a run (images where a class is absent from the ground truth are skipped).

    ``compute`` returns ``{f"{prefix}dice_{name}": value}`` for every class, plus ``f"{prefix}dice_class_mean"`` (mean
    over the foreground classes) and ``f"{prefix}dice_class_mean_with_background"`` (mean over all classes); ignite
    writes each entry into ``engine.state.metrics`` as its own scalar. A class never present in the ground truth reports
    NaN and is left out of the means.

    Args:
        class_names: one name per channel, background first.
        prefix: prepended to every metric name, such as ``"val_"``.
        output_transform: maps the engine output to ``(y_pred, y)`` one-hot batch tensors.
        device: where the accumulators live.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        prefix: str = "",
        output_transform: Callable = lambda x: x,
        device: str | torch.device = "cpu",
    ) -> None:
        if len(class_names) < 2:
            raise ValueError(f"PerClassDice needs background plus at least one class, got {list(class_names)}")
        self.class_names = [str(n) for n in class_names]
        self.prefix = prefix
        super().__init__(output_transform=output_transform, device=device)
        self._metrics_result_mode = "flatten"

    @reinit__is_reduced
    def reset(self) -> None:
        n = len(self.class_names)
        self._sum = torch.zeros(n, dtype=torch.float64, device=self._device)
        self._count = torch.zeros(n, dtype=torch.float64, device=self._device)

    @reinit__is_reduced
    def update(self, output: Sequence[torch.Tensor]) -> None:
        y_pred, y = output[0].detach(), output[1].detach()
        if y_pred.shape[1] != len(self.class_names):
            raise ValueError(f"got {y_pred.shape[1]} channels for {len(self.class_names)} classes {self.class_names}")
        scores = per_class_dice(y_pred, y, include_background=True).to(self._device, torch.float64)
        valid = ~torch.isnan(scores)
        self._sum += torch.where(valid, scores, torch.zeros_like(scores)).sum(0)
        self._count += valid.sum(0)

    @sync_all_reduce("_sum", "_count")
    def compute(self) -> dict[str, float]:
        per_class = torch.where(self._count > 0, self._sum / self._count.clamp(min=1), torch.nan)
        out = {f"{self.prefix}dice_{name}": float(v) for name, v in zip(self.class_names, per_class)}
        out[f"{self.prefix}dice_class_mean"] = float(per_class[1:].nanmean())
        out[f"{self.prefix}dice_class_mean_with_background"] = float(per_class.nanmean())
        return out
