"""Checkpoint helpers for resuming training runs."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from ignite.handlers import DiskSaver

__all__ = ["BestMetricState", "BestModelSaver", "SafeDiskSaver", "find_resume_checkpoint"]

logger = logging.getLogger(__name__)

_EPOCH = re.compile(r"checkpoint_epoch=(\d+)\.pt$")


def find_resume_checkpoint(
    output_dir: str | os.PathLike, final_name: str = "model_final.pt", quiet: bool = False
) -> str:
    """Returns the newest full training checkpoint in ``output_dir`` to resume from.

    The newest of the per-epoch checkpoint (``checkpoint_epoch=N.pt``), the checkpoint a pre-empted run saved
    (``checkpoint_interrupted.pt``) and ``final_name`` wins, which covers runs interrupted after an earlier
    completed run.

    Raises:
        FileNotFoundError: if ``output_dir`` holds no training checkpoint; the message names the folder.
    """
    folder = Path(output_dir)
    candidates = [p for p in folder.glob("checkpoint_epoch=*.pt") if _EPOCH.search(p.name)]
    for name in (final_name, "checkpoint_interrupted.pt"):
        if (folder / name).is_file():
            candidates.append(folder / name)
    if not candidates:
        raise FileNotFoundError(
            f"resume requested but {folder} holds no {final_name}, checkpoint_epoch=N.pt or checkpoint_interrupted.pt; "
            "train once without --resume first, or point --output_dir at an earlier run"
        )
    newest = max(candidates, key=lambda p: p.stat().st_mtime)
    if not quiet:
        logger.info("resuming from %s", newest)
    return str(newest)


class SafeDiskSaver(DiskSaver):
    """Ignite's ``DiskSaver`` that never leaves a run without a good checkpoint.

    Each file is written to a temporary file in the folder and renamed into place (``atomic``), so a full disk or a
    kill mid-write leaves no truncated checkpoint; and the file a new checkpoint replaces (ignite's ``Checkpoint``
    asks to remove it before saving the new one) is removed only after the new one is written.

    Args:
        dirname: the folder of the checkpoints.
    """

    def __init__(self, dirname: str | os.PathLike) -> None:
        super().__init__(str(dirname), atomic=True, require_empty=False)
        self._stale: list[str] = []

    def remove(self, filename: str) -> None:
        self._stale.append(filename)

    def __call__(self, checkpoint: Any, filename: str, metadata: Any = None) -> None:
        super().__call__(checkpoint, filename, metadata)
        for old in self._stale:
            if old != filename and (Path(self.dirname) / old).exists():
                super().remove(old)
        self._stale.clear()


class BestModelSaver:
    """Saves ``model.pt`` (the network's weights) atomically whenever the evaluator's key metric improves.

    MONAI's evaluator tracks the best key metric in ``state.best_metric`` and its epoch; this writes the weights when
    the current run set a new best. After a resume that state is restored (:class:`BestMetricState`), so a worse epoch
    after the resume does not replace the best ``model.pt``.

    Args:
        network: the network (a ``DistributedDataParallel`` wrapper is unwrapped).
        output_dir: the folder of ``model.pt``.
        filename: the file name.
    """

    def __init__(self, network: torch.nn.Module, output_dir: str | os.PathLike, filename: str = "model.pt") -> None:
        self.network = network
        self.saver = SafeDiskSaver(output_dir)
        self.filename = filename

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if getattr(engine.state, "best_metric_epoch", -1) != engine.state.epoch:
            return
        module = getattr(self.network, "module", self.network)
        self.saver(module.state_dict(), self.filename)


class BestMetricState:
    """The evaluator's best key metric and its epoch as a checkpointable object (``state_dict``/``load_state_dict``),
    so a resumed run remembers which epoch was best."""

    def __init__(self, evaluator: Engine) -> None:
        self.evaluator = evaluator

    def state_dict(self) -> dict[str, float | int]:
        return {
            "best_metric": float(getattr(self.evaluator.state, "best_metric", -1)),
            "best_metric_epoch": int(getattr(self.evaluator.state, "best_metric_epoch", -1)),
        }

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        self.evaluator.state.best_metric = float(state["best_metric"])
        self.evaluator.state.best_metric_epoch = int(state["best_metric_epoch"])
