"""Output transforms and a CSV writer for classification engines (decollated outputs with ``pred``/``label``)."""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events

__all__ = ["ClassificationCSVWriter", "probs_and_labels", "probs_and_onehot"]

logger = logging.getLogger(__name__)


def _two_columns(probs: torch.Tensor) -> torch.Tensor:
    # one sigmoid output p becomes [1 - p, p], so binary and multi-class tasks share accuracy and macro AUC
    return torch.cat([1 - probs, probs], dim=1) if probs.shape[1] == 1 else probs


def _probs(output: Sequence[dict[str, Any]]) -> torch.Tensor:
    return _two_columns(torch.stack([torch.as_tensor(o["pred"]).detach().float().reshape(-1).cpu() for o in output]))


def probs_and_labels(output: Sequence[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(probs (B, C), labels (B,))`` from decollated items whose ``pred`` holds probabilities (sigmoid or softmax).

    A single sigmoid probability is expanded to two columns ``[1 - p, p]``; ``label`` is a class index.
    Use as ``output_transform`` of ``ignite.metrics.Accuracy``.
    """
    labels = torch.stack([torch.as_tensor(o["label"]).detach().reshape(-1)[0].long().cpu() for o in output])
    return _probs(output), labels


def probs_and_onehot(output: Sequence[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(probs (B, C), one-hot labels (B, C))``, the one-vs-rest input of MONAI's ``ROCAUC`` handler.

    For a binary task the macro average of the two columns equals the AUC of ``p`` itself.
    """
    probs, labels = probs_and_labels(output)
    return probs, torch.nn.functional.one_hot(labels, probs.shape[1]).float()


class ClassificationCSVWriter:
    """Writes one CSV row per input at the end of a run: name, class probabilities, predicted index and name.

    Names come from the ``name`` key of each collated batch; probabilities from the decollated ``pred`` outputs.

    Args:
        output_path: the CSV file (parent folders are created; the write is atomic).
        class_names: class names by index, for the column headers and the ``predicted_label`` column.
    """

    def __init__(self, output_path: str | os.PathLike, class_names: Sequence[str]) -> None:
        self.output_path = Path(output_path)
        self.class_names = [str(c) for c in class_names]
        self._rows: list[list[Any]] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, lambda _: self._rows.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.COMPLETED, self)

    def _collect(self, engine: Engine) -> None:
        batch = engine.state.batch
        # MONAI engines decollate the batch along with the output, so it may be a list of items or one dict
        names = [b.get("name") for b in batch] if isinstance(batch, list) else list(batch.get("name", []))
        probs = _probs(engine.state.output)
        if len(names) != len(probs) or None in names:
            names = [str(len(self._rows) + i) for i in range(len(probs))]
        for name, p in zip(names, probs.tolist()):
            k = int(max(range(len(p)), key=p.__getitem__))
            self._rows.append([name, *(f"{v:.6f}" for v in p), k, self.class_names[k]])

    def __call__(self, engine: Engine) -> None:
        self.output_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.output_path.with_name(f".{self.output_path.name}.tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(
                ["name", *(f"prob_{i}" for i in range(len(self.class_names))), "predicted", "predicted_label"]
            )
            writer.writerows(self._rows)
        os.replace(tmp, self.output_path)
        logger.info("%d predictions written to %s", len(self._rows), self.output_path)
