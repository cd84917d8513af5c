"""The engine wiring every medkit bundle shares: one trainer factory and one evaluator factory.

A bundle's ``train.json`` names what is particular to it (data, network, loss, optimizer, metrics, extra handlers)
and calls :func:`build_trainer` / :func:`build_evaluator` for the rest: learning-rate stepping, validation, time
limit, per-epoch progress, TensorBoard (loss, epoch-mean loss, learning rate, images, hparams), best and last
checkpoints, resume and the end-of-run summary. A cross-cutting change (a GPU data path, DDP, a NaN guard) is made
here once for all bundles.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import (
    CheckpointLoader,
    LrScheduleHandler,
    StatsHandler,
    TensorBoardStatsHandler,
    ValidationHandler,
)

from medkit.bundle.distributed import broadcast_buffers, is_distributed, is_main_process, wrap_ddp
from medkit.bundle.errors import UserError, failed_writes_as_user_errors
from medkit.bundle.preemption import PREEMPTED_EXIT_CODE, NonFiniteLossGuard, Preemption
from medkit.bundle.progress import EpochProgress, RunSummary, TensorBoardImages, loss_of
from medkit.handlers.checkpoint import BestMetricState, BestModelSaver, SafeDiskSaver, find_resume_checkpoint
from medkit.handlers.time_limit import TimeLimitHandler
from medkit.utils import as_bool

__all__ = ["amp_kwargs", "build_evaluator", "build_trainer"]

logger = logging.getLogger(__name__)

BEST_FILENAME = "model.pt"
FINAL_FILENAME = "model_final.pt"


def _attach_all(engine: Engine, handlers: Sequence[Any]) -> None:
    for handler in handlers:
        if handler is not None:
            handler.attach(engine)


def _quiet_engine_logs(trainer: Engine, validator: Engine | None) -> None:
    """One line per epoch: the engines' own INFO lines (run started, epoch complete, checkpoint saved, new best) and
    the validator's metric lines give way to :class:`EpochProgress`, which carries the validation metrics. Warnings
    and errors still show."""
    quiet = logging.getLogger(f"{__name__}.engines")
    quiet.setLevel(logging.WARNING)
    trainer.logger = quiet
    if validator is not None:
        validator.logger = quiet
        metric_log = getattr(validator, "metric_log", None)
        if metric_log is not None and validator.has_event_handler(metric_log.epoch_completed, Events.EPOCH_COMPLETED):
            validator.remove_event_handler(metric_log.epoch_completed, Events.EPOCH_COMPLETED)


class Trainer(SupervisedTrainer):
    """MONAI's ``SupervisedTrainer`` whose ``run()`` ends as a scheduler and a user expect.

    After a pre-emption checkpoint (SIGTERM/SIGINT, :class:`~medkit.bundle.preemption.Preemption`) the process exits
    with :data:`~medkit.bundle.preemption.PREEMPTED_EXIT_CODE`; after a NaN or infinite loss it ends with a one-line
    error naming the epoch, the iteration and the last good checkpoint.
    """

    preemption: Preemption | None = None
    nan_guard: NonFiniteLossGuard | None = None
    output_dir: Path | None = None

    def run(self) -> None:  # type: ignore[override]
        if self.preemption is not None:
            self.preemption.install()
        kept = "the checkpoints written before are kept (free some space, or pass another --output_dir)"
        try:
            with failed_writes_as_user_errors(self.output_dir, kept):
                super().run()
        finally:
            if self.preemption is not None:
                self.preemption.uninstall()
        if self.nan_guard is not None and self.nan_guard.message:
            try:
                kept = f"the last good checkpoint is {find_resume_checkpoint(self.output_dir, quiet=True)}"
            except FileNotFoundError:
                kept = "no checkpoint was written before"
            raise UserError(f"{self.nan_guard.message}; {kept} (lower --learning_rate, or check the data)")
        if self.preemption is not None and self.preemption.stopped_by is not None:
            raise SystemExit(PREEMPTED_EXIT_CODE)


def amp_kwargs(device: torch.device | str, amp: bool | str) -> dict[str, Any] | None:
    """The autocast settings of MONAI's engines on ``device``: bfloat16 on GPUs that support it (no loss scaling
    needed), float16 otherwise (MONAI's engines then scale the loss with a ``GradScaler``); ``None`` without AMP."""
    device = torch.device(device)
    if not as_bool(amp) or device.type != "cuda":
        return None
    return {"dtype": torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16}


def build_trainer(
    *,
    device: torch.device,
    max_epochs: int,
    train_data_loader: Any,
    network: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_function: Callable,
    output_dir: str | os.PathLike,
    lr_scheduler: Any = None,
    validator: Engine | None = None,
    val_interval: int = 1,
    pre_validation_handlers: Sequence[Any] = (),
    handlers: Sequence[Any] = (),
    early_stopper: Any = None,
    resume: bool | str = False,
    checkpoint_interval: int = 1,
    max_minutes: float | None = None,
    summary_writer: Any = None,
    run_settings: Mapping[str, Any] | None = None,
    bundle_root: str | None = None,
    non_blocking: bool = True,
    decollate: bool = False,
    compile: bool | str = False,
    **kwargs: Any,
) -> SupervisedTrainer:
    """A MONAI ``SupervisedTrainer`` with medkit's standard handlers attached.

    Attached in this order: the learning-rate step (each epoch, unless ``lr_scheduler`` is a ``ReduceLROnPlateau``,
    which the bundle steps from its validator), ``pre_validation_handlers``, validation every ``val_interval`` epochs,
    ``handlers``, the time limit, per-epoch progress and TensorBoard scalars, the summary with hparams, the
    checkpoint of every epoch (``model_final.pt`` at the end: model, optimizer, scheduler, trainer) and, with
    ``resume``, the loader of the newest checkpoint in ``output_dir``.

    Args:
        device: where the network runs.
        max_epochs: epochs to train (the bundle's ``epochs``).
        train_data_loader: the training batches.
        network: the network to train.
        optimizer: its optimizer.
        loss_function: the loss, called as ``loss_function(pred, label)``.
        output_dir: the run folder; checkpoints go there.
        lr_scheduler: a torch scheduler, saved in the checkpoints; ``None`` for a constant learning rate.
        validator: the evaluator run by the ``ValidationHandler``; ``None`` skips validation.
        val_interval: epochs between validations.
        pre_validation_handlers: bundle handlers that must run before each validation (e.g. BatchNorm statistics).
        handlers: other bundle handlers, attached after validation.
        early_stopper: a MONAI ``EarlyStopHandler`` built without a trainer; it is given this trainer and attached
            to ``validator``, whose metrics it watches (the config cannot wire it: the reference would be circular).
        resume: continue from the newest checkpoint in ``output_dir`` (``true``/``false`` as on the command line).
        checkpoint_interval: epochs between the resumable ``checkpoint_epoch=N.pt`` (the newest is kept); 0 writes
            only ``model_final.pt`` at the end, for networks whose checkpoints are large (a VGG16 is 0.5 GB).
        max_minutes: stop training after this many minutes; ``None`` for no limit.
        summary_writer: the run's TensorBoard ``SummaryWriter``; ``None`` writes no events.
        run_settings: the run's settings, logged as TensorBoard hparams against the best metric.
        bundle_root: the bundle folder, for the evaluate command the summary prints.
        non_blocking: host-to-device copies do not block.
        decollate: decollate the batch after each iteration (training needs no per-image outputs).
        compile: ``torch.compile`` the training network (``true``/``false`` as on the command line); the evaluator
            keeps the eager network.
        kwargs: passed on to ``SupervisedTrainer`` (``inferer``, ``amp``, ``prepare_batch``, ``to_kwargs``, ...).
            With ``amp`` on CUDA, autocast runs in bfloat16 where the GPU supports it (:func:`amp_kwargs`).

    Under ``torchrun`` (after :func:`medkit.bundle.start_run` joined the process group) the trainer trains
    ``network`` in ``DistributedDataParallel``; before each validation every rank takes rank 0's BatchNorm statistics,
    so the validation scores the weights rank 0 saves; logs, TensorBoard, the summary and checkpoints come from rank
    0; the time limit stops every rank at the same iteration.

    Returns:
        The trainer, ready to ``run()``.
    """
    distributed = is_distributed()
    _prepare_engine(device, train_data_loader, kwargs, "multi_gpu_train.json")
    main = is_main_process()
    trainer = Trainer(
        device=device,
        max_epochs=max_epochs,
        train_data_loader=train_data_loader,
        network=wrap_ddp(network, device) if distributed else network,
        optimizer=optimizer,
        loss_function=loss_function,
        non_blocking=non_blocking,
        decollate=decollate,
        compile=as_bool(compile),
        **kwargs,
    )
    if trainer.scaler is not None and trainer.amp_kwargs.get("dtype") == torch.bfloat16:
        trainer.scaler = torch.amp.GradScaler("cuda", enabled=False)  # bfloat16 has float32's range: no loss scaling
    trainer.output_dir = Path(output_dir)
    trainer.nan_guard = NonFiniteLossGuard()
    trainer.nan_guard.attach(trainer)
    steps_each_epoch = lr_scheduler is not None and not isinstance(
        lr_scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau
    )
    _attach_all(trainer, [LrScheduleHandler(lr_scheduler, print_lr=False) if steps_each_epoch else None])
    if distributed:
        trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _: broadcast_buffers(network))
    _attach_all(trainer, pre_validation_handlers)
    if validator is not None:
        ValidationHandler(validator=validator, interval=val_interval, epoch_level=True).attach(trainer)
    if early_stopper is not None:
        if validator is None:
            raise ValueError("early_stopper watches validation metrics, but no validator was given")
        early_stopper.set_trainer(trainer)
        early_stopper.attach(validator)
    _attach_all(trainer, handlers)
    TimeLimitHandler(max_minutes).attach(trainer)
    if not main:
        summary_writer = None
    progress = EpochProgress(
        optimizer=optimizer, summary_writer=summary_writer, validator=validator, progress_bar=None if main else False
    )
    progress.attach(trainer)
    _quiet_engine_logs(trainer, validator)
    if summary_writer is not None:
        TensorBoardStatsHandler(summary_writer, tag_name="train_loss", output_transform=loss_of).attach(trainer)
    state = _checkpoint_state(network, optimizer, trainer, lr_scheduler)
    # saved too, read back when present: checkpoints from before medkit 0.3 lack it
    optional: dict[str, Any] = {"epoch_progress": progress}
    if validator is not None:
        optional["validator_best"] = BestMetricState(validator)
    resume_from = find_resume_checkpoint(output_dir) if as_bool(resume) else None
    extras: dict[str, Any] = {}
    if resume_from is not None:
        CheckpointLoader(load_path=resume_from, load_dict=state, map_location=device, name=__name__).attach(trainer)
        extras = _checkpoint_entries(resume_from, [*optional, "resume_state"])
        trainer.add_event_handler(Events.STARTED, lambda _: _load_optional(extras, optional))
    state = {**state, **optional}
    trainer.preemption = Preemption(
        output_dir, state, train_data_loader, resume_state=extras.get("resume_state"), resume_from=resume_from
    )
    if main:
        _attach_outputs(
            trainer, state, output_dir, validator, summary_writer, run_settings, bundle_root, checkpoint_interval
        )
    trainer.preemption.attach(trainer)  # last: it stops after the epoch's validation and checkpoint
    return trainer


def _attach_outputs(
    trainer: Engine,
    state: dict,
    output_dir: str | os.PathLike,
    validator: Engine | None,
    summary_writer: Any,
    run_settings: Mapping[str, Any] | None,
    bundle_root: str | None,
    checkpoint_interval: int,
) -> None:
    """What rank 0 alone writes: the end-of-run summary and the checkpoints."""
    RunSummary(
        output_dir,
        validator=validator,
        summary_writer=summary_writer,
        run_settings=run_settings,
        bundle_root=bundle_root,
    ).attach(trainer)
    if int(checkpoint_interval) > 0:
        trainer.add_event_handler(
            Events.EPOCH_COMPLETED(every=int(checkpoint_interval)),
            Checkpoint(
                state,
                SafeDiskSaver(output_dir),
                filename_pattern="checkpoint_epoch={global_step}.{ext}",
                global_step_transform=lambda engine, _: engine.state.epoch,
                n_saved=1,
            ),
        )
    trainer.add_event_handler(
        Events.COMPLETED, Checkpoint(state, SafeDiskSaver(output_dir), filename_pattern=FINAL_FILENAME, n_saved=1)
    )


def _checkpoint_entries(path: str, keys: Sequence[str]) -> dict[str, Any]:
    """The entries ``keys`` of a checkpoint that has them, read once (MONAI's loader reads the required ones)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    return {key: checkpoint[key] for key in keys if isinstance(checkpoint, Mapping) and key in checkpoint}


def _load_optional(entries: Mapping[str, Any], objects: Mapping[str, Any]) -> None:
    """Restores the ``objects`` the checkpoint held entries for (leaves the others as they are)."""
    for key, obj in objects.items():
        if key in entries:
            obj.load_state_dict(entries[key])


def _checkpoint_state(network: torch.nn.Module, optimizer: Any, trainer: Engine, lr_scheduler: Any) -> dict:
    """What a training checkpoint holds: the (unwrapped) network, optimizer, trainer, scheduler and loss scaler."""
    state = {"model": network, "optimizer": optimizer, "trainer": trainer}
    if lr_scheduler is not None:
        state["lr_scheduler"] = lr_scheduler
    scaler = getattr(trainer, "scaler", None)
    if scaler is not None and scaler.is_enabled():
        state["scaler"] = scaler
    return state


def _prepare_engine(device: torch.device | str, loader: Any, kwargs: dict[str, Any], layer: str) -> None:
    """What both factories check and set first: each rank's data share under torchrun, the AMP dtype."""
    if is_distributed():
        _check_distributed_loader(loader, layer)
    if kwargs.get("amp_kwargs") is None:
        kwargs["amp_kwargs"] = amp_kwargs(device, kwargs.get("amp", False))


def _check_distributed_loader(loader: Any, layer: str = "multi_gpu_train.json") -> None:
    """Under torchrun each rank must see its own share: a ``DistributedSampler`` from the multi-GPU layer."""
    sampler = getattr(loader, "sampler", None)
    if not isinstance(sampler, torch.utils.data.distributed.DistributedSampler):
        raise UserError(
            f"started by torchrun, but a data loader has no DistributedSampler: add the bundle's configs/{layer} "
            "as the last file of --config_file (docs/distributed.md)"
        )


def build_evaluator(
    *,
    device: torch.device,
    val_data_loader: Any,
    network: torch.nn.Module,
    key_val_metric: Mapping[str, Any] | None = None,
    handlers: Sequence[Any] = (),
    load_path: str | os.PathLike | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    summary_writer: Any = None,
    log_images: bool = False,
    non_blocking: bool = True,
    **kwargs: Any,
) -> SupervisedEvaluator:
    """A MONAI ``SupervisedEvaluator`` with medkit's standard handlers attached.

    Attached in this order: ``handlers`` (so the metrics they add are logged), the weights loader (``load_path``,
    run when the evaluator starts), the metric log line of each run, TensorBoard metrics and images
    (``summary_writer``), and the best-weights checkpoint (``checkpoint_dir``).

    Args:
        device: where the network runs.
        val_data_loader: the batches to score or predict.
        network: the network.
        key_val_metric: ``{name: metric}`` that picks the best weights; ``None`` for inference.
        handlers: bundle handlers (reports, figures, writers, per-class metrics); ``val_handlers`` in ``kwargs``
            are the same.
        load_path: weights to load before running (a ``model.pt`` or a full checkpoint with a ``model`` entry).
        checkpoint_dir: save ``model.pt`` there whenever the key metric improves; ``None`` saves nothing.
        summary_writer: TensorBoard writer for the metrics and the first image of each run; ``None`` writes none.
        log_images: write ``image``, ``label`` and ``prediction`` of the first validation image to TensorBoard.
        non_blocking: host-to-device copies do not block.
        kwargs: passed on to ``SupervisedEvaluator`` (``inferer``, ``postprocessing``, ``additional_metrics``,
            ``amp``, ``prepare_batch``, ``decollate``, ``to_kwargs``, ...).

    Returns:
        The evaluator, ready to ``run()`` or to be run by a ``ValidationHandler``.
    """
    _prepare_engine(device, val_data_loader, kwargs, "multi_gpu_train.json (or multi_gpu_evaluate.json)")
    # the bundle's handlers go first, so metrics they add (per-class scores) are in state.metrics when logged
    val_handlers = [*(kwargs.pop("val_handlers", None) or ()), *handlers]
    evaluator = SupervisedEvaluator(
        device=device,
        val_data_loader=val_data_loader,
        network=network,
        key_val_metric=dict(key_val_metric) if key_val_metric else None,
        val_handlers=[h for h in val_handlers if h is not None] or None,
        non_blocking=non_blocking,
        **kwargs,
    )
    if load_path is not None:
        CheckpointLoader(load_path=str(load_path), load_dict={"model": network}, map_location=device).attach(evaluator)
    metric_log = StatsHandler(iteration_log=False)
    metric_log.attach(evaluator)
    evaluator.metric_log = metric_log  # build_trainer folds it into the epoch line when this is its validator
    if not is_main_process():  # under torchrun: metrics are gathered on every rank, written by rank 0
        return evaluator
    if summary_writer is not None:
        TensorBoardStatsHandler(summary_writer, iteration_log=False).attach(evaluator)
        if as_bool(log_images):
            TensorBoardImages(summary_writer).attach(evaluator)
    if checkpoint_dir is not None and key_val_metric:
        BestModelSaver(network, checkpoint_dir, BEST_FILENAME).attach(evaluator)
    return evaluator
