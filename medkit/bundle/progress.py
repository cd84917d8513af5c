"""Handlers through which a bundle run talks to its user: epoch progress, TensorBoard images, the run summary."""

from __future__ import annotations

import json
import logging
import numbers
import os
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events

from medkit.bundle.distributed import reduce_sum
from medkit.bundle.overrides import cli_override_keys, cli_overrides

__all__ = ["EpochProgress", "RunSummary", "TensorBoardImages", "format_seconds", "loss_of", "to_display_image"]

logger = logging.getLogger(__name__)


def format_seconds(seconds: float) -> str:
    """``75.2`` -> ``"1m15s"``, ``3725`` -> ``"1h02m05s"``, ``4.25`` -> ``"4.2s"``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def loss_of(output: Any) -> Any:
    """The loss of a trainer iteration's output (a dict, or a list of dicts when the trainer decollates)."""
    return output["loss"] if isinstance(output, Mapping) else output[0]["loss"]


def _loss(output: Any) -> float:
    loss = loss_of(output)
    return float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)


class EpochProgress:
    """One log line per epoch (mean training loss, learning rate, time, ETA), a progress bar on a terminal.

    Writes ``train_loss_epoch`` (the epoch's mean loss) and ``lr`` (the learning rate the epoch trained with) to
    TensorBoard when a writer is given. When stderr is a terminal, ignite's ``ProgressBar`` shows the iterations of
    the current epoch with their ETA; in logs (stderr redirected) only the epoch lines appear.

    Args:
        optimizer: the trainer's optimizer, whose first parameter group's learning rate is reported.
        summary_writer: a TensorBoard ``SummaryWriter``, or ``None``.
        progress_bar: show the iteration bar; ``None`` decides by whether stderr is a terminal.
        validator: the validation engine; the metrics of a validation run this epoch join the line, with the best
            key metric so far.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        summary_writer: Any = None,
        progress_bar: bool | None = None,
        validator: Engine | None = None,
    ):
        self.optimizer = optimizer
        self.writer = summary_writer
        self.validator = validator
        self.progress_bar = sys.stderr.isatty() if progress_bar is None else progress_bar
        self._sum = 0.0
        self._count = 0
        self._lr = float("nan")
        self._epoch_start = 0.0
        self._epoch_times: list[float] = []
        self._in_epoch = False
        self._resumed: tuple[float, int] | None = None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._start)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._accumulate)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)
        if self.progress_bar:
            from ignite.handlers import ProgressBar

            ProgressBar(persist=False).attach(engine, output_transform=lambda out: {"loss": _loss(out)})

    def state_dict(self) -> dict[str, float | int]:
        """The loss sums of the epoch in progress (zero between epochs), so a run resumed inside an epoch reports
        that epoch's mean over all its batches."""
        return {"sum": self._sum, "count": self._count} if self._in_epoch else {"sum": 0.0, "count": 0}

    def load_state_dict(self, state: Mapping[str, float | int]) -> None:
        self._resumed = (float(state["sum"]), int(state["count"]))

    def _start(self, engine: Engine) -> None:
        (self._sum, self._count), self._resumed = self._resumed or (0.0, 0), None
        self._in_epoch = True
        self._lr = float(self.optimizer.param_groups[0]["lr"])
        self._epoch_start = time.perf_counter()

    def _accumulate(self, engine: Engine) -> None:
        self._sum += _loss(engine.state.output)
        self._count += 1

    def _validation(self, epoch: int) -> str:
        state = getattr(self.validator, "state", None)
        if state is None or getattr(state, "epoch", None) != epoch or not state.metrics:
            return ""
        return _validation_text(state)

    def __call__(self, engine: Engine) -> None:
        seconds = time.perf_counter() - self._epoch_start
        self._epoch_times.append(seconds)
        self._in_epoch = False
        total, count = reduce_sum(self._sum, self._count)  # under torchrun: the mean over every rank's batches
        mean = total / max(count, 1)
        epoch, max_epochs = engine.state.epoch, engine.state.max_epochs
        recent = self._epoch_times[-5:]
        eta = sum(recent) / len(recent) * (max_epochs - epoch)
        logger.info(
            "Epoch %d/%d: train_loss %.4f%s, lr %.3g, %s, ETA %s",
            epoch,
            max_epochs,
            mean,
            self._validation(epoch),
            self._lr,
            format_seconds(seconds),
            format_seconds(eta),
        )
        if self.writer is not None:
            self.writer.add_scalar("train_loss_epoch", mean, epoch)
            self.writer.add_scalar("lr", self._lr, epoch)


def _scalar(value: Any) -> float | None:
    """``value`` as a float when it is one number (python, numpy or a one-element tensor or array), else ``None``."""
    if isinstance(value, torch.Tensor):
        return float(value) if value.numel() == 1 else None
    if isinstance(value, np.ndarray):
        return float(value.reshape(-1)[0]) if value.size == 1 else None
    return float(value) if isinstance(value, numbers.Real) else None


def _validation_text(state: Any) -> str:
    values = {k: _scalar(v) for k, v in state.metrics.items()}
    parts = [f", {k} {v:.4f}" for k, v in values.items() if v is not None]
    name, best_epoch = getattr(state, "key_metric_name", None), getattr(state, "best_metric_epoch", -1)
    if name is not None and best_epoch is not None and best_epoch >= 0:
        key = next((i for i, p in enumerate(parts) if p.startswith(f", {name} ")), None)
        if key is not None:
            parts[key] += f" (best {state.best_metric:.4f} at epoch {best_epoch})"
    return "".join(parts)


def to_display_image(x: torch.Tensor) -> torch.Tensor:
    """A channel-first 2D image, label or prediction as a ``(1|3, H, W)`` float image in [0, 1] for TensorBoard.

    One channel is min-max scaled (a label map of classes 0..K becomes K+1 grey levels); three channels are taken as
    RGB; other channel counts are class channels (one-hot or probabilities), shown as their argmax. 3D inputs show
    their middle slice along the last axis.
    """
    x = torch.as_tensor(x).detach().float().cpu()
    if x.ndim == 4:
        x = x[..., x.shape[-1] // 2]
    if x.ndim != 3:
        raise ValueError(f"expected a channel-first 2D or 3D image, got shape {tuple(x.shape)}")
    if x.shape[0] not in (1, 3):
        x = x.argmax(0, keepdim=True).float()
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if hi > lo else torch.zeros_like(x)


def _first(data: Any, key: str) -> Any:
    if isinstance(data, Mapping):
        value = data.get(key)
        return None if value is None else value[0]
    if isinstance(data, Sequence) and data and isinstance(data[0], Mapping):
        return data[0].get(key)
    return None


class TensorBoardImages:
    """Writes ``image``, ``label`` and ``prediction`` of the first item of each evaluator run to TensorBoard.

    The step is the evaluator's epoch, which a ``ValidationHandler`` sets to the trainer's. ``label`` and
    ``prediction`` are written only when they are images of the same spatial size as ``image`` (not for class
    labels).

    Args:
        summary_writer: the run's ``SummaryWriter``.
    """

    def __init__(self, summary_writer: Any) -> None:
        self.writer = summary_writer

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        image = _first(engine.state.batch, "image")
        if image is None or torch.as_tensor(image).ndim < 3:
            return
        image = torch.as_tensor(image)
        images = {
            "image": image,
            "label": _first(engine.state.batch, "label"),
            "prediction": _first(engine.state.output, "pred"),
        }
        for tag, value in images.items():
            if value is None:
                continue
            value = torch.as_tensor(value)
            if value.ndim != image.ndim or value.shape[1:] != image.shape[1:]:
                continue
            # MONAI's PILReader lays out images as (C, W, H); transpose to TensorBoard's (C, H, W)
            self.writer.add_image(tag, to_display_image(value).transpose(-1, -2), engine.state.epoch)


def _hparam_value(value: Any) -> Any:
    if isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, default=str)


class RunSummary:
    """At the end of training: the best metric and its epoch, where the weights are, and what to run next.

    Logs the path of the best ``model.pt`` and of ``model_final.pt``, the TensorBoard command and the evaluate
    command (with this run's overrides), and writes the run's settings as TensorBoard hparams against the best and the
    last validation metrics, so TensorBoard's HParams tab compares the runs of a sweep.

    Args:
        output_dir: the run folder.
        validator: the validation engine, whose ``state`` holds the best metric; ``None`` when there is no validation.
        summary_writer: the run's ``SummaryWriter``, or ``None``.
        run_settings: the settings written as hparams.
        bundle_root: the bundle folder, for the evaluate command.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        validator: Engine | None = None,
        summary_writer: Any = None,
        run_settings: Mapping[str, Any] | None = None,
        bundle_root: str | None = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.validator = validator
        self.writer = summary_writer
        self.run_settings = dict(run_settings or {})
        self.bundle_root = bundle_root
        self._start = 0.0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._started)
        engine.add_event_handler(Events.COMPLETED, self)

    def _started(self, engine: Engine) -> None:
        self._start = time.perf_counter()

    def best(self) -> tuple[str | None, float | None, int | None]:
        """The key metric's name, best value and the epoch of the best, or ``None``s without validation."""
        state = getattr(self.validator, "state", None)
        name = getattr(state, "key_metric_name", None)
        epoch = getattr(state, "best_metric_epoch", -1)
        if name is None or epoch is None or epoch < 0:
            return name, None, None
        return name, float(state.best_metric), int(epoch)

    def evaluate_command(self) -> str | None:
        if self.bundle_root is None:
            return None
        # layers the run was trained with (a data layer such as shapes_seg's coco_masks.json) sit between train.json
        # and evaluate.json; the multi-GPU layer is left out: the evaluation runs in one process
        parsed = cli_override_keys(sys.argv[1:])
        given = parsed[1] if parsed else []
        layers = [f for f in given if Path(f).name not in ("train.json", "multi_gpu_train.json")]
        files = [f"{self.bundle_root}/configs/train.json", *layers, f"{self.bundle_root}/configs/evaluate.json"]
        configs = "[" + ",".join(f"'{f}'" for f in files) + "]"
        extra = cli_overrides(drop=("epochs", "resume", "max_minutes", "output_dir"))
        words = ["--output_dir", str(self.output_dir), *extra]
        return f'python -m monai.bundle run --config_file "{configs}" ' + shlex.join(words)

    def __call__(self, engine: Engine) -> None:
        name, value, epoch = self.best()
        lines = [
            f"finished {engine.state.epoch} of {engine.state.max_epochs} epochs in "
            f"{format_seconds(time.perf_counter() - self._start)}"
        ]
        if value is not None:
            lines.append(f"best {name} {value:.4f} at epoch {epoch}: {self.output_dir / 'model.pt'}")
        lines.append(f"last state (for --resume true): {self.output_dir / 'model_final.pt'}")
        lines.append(f"TensorBoard: tensorboard --logdir {self.output_dir}")
        command = self.evaluate_command()
        if command:
            lines.append(f"evaluate: {command}")
        if (self.output_dir / "train.log").is_file():
            lines.append(f"log: {self.output_dir / 'train.log'}")
        logger.info("run summary\n  %s", "\n  ".join(lines))
        self._write_hparams(name, value)

    def _write_hparams(self, name: str | None, best: float | None) -> None:
        if self.writer is None or not self.run_settings:
            return
        from torch.utils.tensorboard.summary import hparams

        metrics: dict[str, float] = {}
        if best is not None:
            metrics[f"best/{name}"] = best
        for key, value in getattr(getattr(self.validator, "state", None), "metrics", {}).items():
            if _scalar(value) is not None:
                metrics[f"final/{key}"] = _scalar(value)
        settings = {k: _hparam_value(v) for k, v in self.run_settings.items()}
        for summary in hparams(settings, metrics):
            self.writer._get_file_writer().add_summary(summary)
        for tag, value in metrics.items():
            self.writer.add_scalar(tag, value, 0)
        self.writer.flush()
