"""Stopping a training run safely: on SIGTERM/SIGINT (pre-emption) and on a loss that is not finite.

:class:`Preemption` turns SIGTERM or SIGINT into a checkpoint at the current iteration
(``checkpoint_interrupted.pt``: model, optimizer, scheduler, loss scaler, trainer state, the random states and the
position in the epoch) and an exit with :data:`PREEMPTED_EXIT_CODE`. ``--resume true`` continues from it: the random
states of the interrupted epoch are restored, the batches it had trained on are drawn again and skipped, and the run
goes on as if nothing had happened: the same batches, augmentations and losses as a run that was never interrupted.
Under torchrun the ranks agree on the stop after each iteration, so all stop at the same one.

:class:`NonFiniteLossGuard` stops at the first NaN or infinite loss, before the weights it produced are saved: the
epoch checkpoints and ``model.pt`` written before stay as they were.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events

from medkit.bundle.distributed import gather_lists, is_distributed, is_main_process, reduce_sum
from medkit.utils import atomic_path

__all__ = [
    "INTERRUPTED_FILENAME",
    "PREEMPTED_EXIT_CODE",
    "NonFiniteLossGuard",
    "Preemption",
    "get_rng_state",
    "set_rng_state",
]

logger = logging.getLogger(__name__)

INTERRUPTED_FILENAME = "checkpoint_interrupted.pt"
#: exit status of a run stopped by SIGTERM/SIGINT after saving its checkpoint (EX_TEMPFAIL: "try again")
PREEMPTED_EXIT_CODE = 75
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _generators(loader: Any) -> list[np.random.RandomState]:
    """The numpy generators of ``loader``'s dataset transforms, in a fixed order: each random transform's own (``R``)
    and those of the transforms it holds (a dictionary transform draws its values with an inner array transform)."""
    transform = getattr(getattr(loader, "dataset", None), "transform", None)
    if transform is None:
        return []
    found: dict[int, np.random.RandomState] = {}

    def walk(obj: Any, depth: int) -> None:
        if isinstance(obj, np.random.RandomState):
            found.setdefault(id(obj), obj)
        elif depth < 6 and hasattr(obj, "__dict__") and not isinstance(obj, (torch.Tensor, np.ndarray)):
            for name in sorted(vars(obj)):
                walk(vars(obj)[name], depth + 1)
        elif depth < 6 and isinstance(obj, (list, tuple)):
            for item in obj:
                walk(item, depth + 1)

    # walked, not Compose.flatten(): a new Compose re-seeds every transform it is given
    walk(transform, 0)
    return list(found.values())


def _numpy_state(state: tuple) -> dict[str, Any]:
    # a plain dict of a tensor and numbers, which torch.load(weights_only=True) reads back
    return {"keys": torch.from_numpy(state[1].astype(np.int64)), "pos": int(state[2]), "gauss": [state[3], state[4]]}


def _numpy_tuple(state: Mapping[str, Any]) -> tuple:
    keys = state["keys"].numpy().astype(np.uint32)
    return ("MT19937", keys, int(state["pos"]), int(state["gauss"][0]), float(state["gauss"][1]))


def get_rng_state(loader: Any = None) -> dict[str, Any]:
    """Every random state a training step draws from: torch (CPU and CUDA), numpy, python, and the generators of
    ``loader``'s random transforms; only tensors, numbers and lists, so ``torch.load(weights_only=True)`` reads it."""
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": _numpy_state(np.random.get_state()),
        "python": [py_version, list(py_state), py_gauss],
        "transforms": [_numpy_state(g.get_state()) for g in _generators(loader)],
    }


def set_rng_state(state: Mapping[str, Any], loader: Any = None) -> None:
    """Restores what :func:`get_rng_state` returned (the transforms' generators when ``loader`` has the same ones)."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(_numpy_tuple(state["numpy"]))
    version, py_state, gauss = state["python"]
    random.setstate((version, tuple(py_state), gauss))
    generators = _generators(loader)
    if len(generators) != len(state.get("transforms", [])):
        logger.warning("the training transforms changed since the checkpoint: their random states are not restored")
        return
    for generator, saved in zip(generators, state["transforms"]):
        generator.set_state(_numpy_tuple(saved))


class Preemption:
    """Checkpoint and stop on SIGTERM/SIGINT at the next iteration's end; continue exactly on resume.

    Attach it last among the trainer's handlers. The trainer calls :meth:`install` / :meth:`uninstall` around its run
    (signal handlers exist only in the main thread; elsewhere signals keep their default action).

    Args:
        output_dir: the run folder; the checkpoint is ``<output_dir>/checkpoint_interrupted.pt``.
        save_dict: the objects to save and restore (``{"model": ..., "optimizer": ..., "trainer": ...}``).
        loader: the training data loader, whose transforms' random states are saved.
        resume_state: the ``resume_state`` entry of the checkpoint the run resumes from (only a checkpoint this
            handler saved has one): the position and random states to restore.
        resume_from: that checkpoint's path, for messages.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        save_dict: Mapping[str, Any],
        loader: Any,
        resume_state: Mapping[str, Any] | None = None,
        resume_from: str | os.PathLike | None = None,
    ) -> None:
        self.path = Path(output_dir) / INTERRUPTED_FILENAME
        self.save_dict = dict(save_dict)
        self.loader = loader
        self.signal: int | None = None
        self.stopped_by: str | None = None
        self._previous: dict[int, Any] = {}
        self._epoch_rng: dict[str, Any] | None = None
        self._resume = self._this_rank(resume_state, resume_from) if resume_state is not None else None
        self._skip = 0

    @staticmethod
    def _this_rank(state: Mapping[str, Any], path: str | os.PathLike | None) -> dict[str, Any]:
        """The saved position with this rank's random states (rank 0's when the number of processes changed)."""
        rank = torch.distributed.get_rank() if is_distributed() else 0
        world = torch.distributed.get_world_size() if is_distributed() else 1
        if len(state["epoch_rng"]) != world:
            logger.warning(
                "%s was written by %d processes, this run has %d: the batches are not replayed exactly",
                path,
                len(state["epoch_rng"]),
                world,
            )
            rank = 0
        return {**state, "epoch_rng": state["epoch_rng"][rank], "rng": state["rng"][rank]}

    # -- signals

    def _request(self, signum: int, frame: Any) -> None:
        self.signal = signum
        logger.warning("%s received: saving a checkpoint after this iteration", signal.Signals(signum).name)

    def install(self) -> None:
        """Routes SIGTERM and SIGINT to this handler (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in _SIGNALS:
            self._previous[sig] = signal.signal(sig, self._request)

    def uninstall(self) -> None:
        """Gives SIGTERM and SIGINT back to the handlers they had before :meth:`install`."""
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    # -- engine events

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._epoch_started)
        engine.add_event_handler(Events.GET_BATCH_STARTED, self._skip_done_batches)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._maybe_stop, False)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._maybe_stop, True)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._discard_stale)

    def _epoch_started(self, engine: Engine) -> None:
        resume, self._resume = self._resume, None
        if resume is not None and resume["epoch"] == engine.state.epoch and resume["batch_in_epoch"] > 0:
            # draw the interrupted epoch's batches again: same shuffle, same augmentations; skip those trained on
            set_rng_state(resume["epoch_rng"], self.loader)
            self._skip = int(resume["batch_in_epoch"])
            self._after_skip = resume["rng"]
        elif resume is not None:
            set_rng_state(resume["rng"], self.loader)
        self._epoch_rng = get_rng_state(self.loader)

    def _skip_done_batches(self, engine: Engine) -> None:
        if not self._skip:
            return
        iterator = engine._dataloader_iter  # ignite's iterator over this epoch's batches
        for _ in range(self._skip):
            next(iterator)
        logger.info("resumed inside epoch %d: skipped the %d batches it had trained on", engine.state.epoch, self._skip)
        self._skip = 0
        set_rng_state(self._after_skip, self.loader)

    def _maybe_stop(self, engine: Engine, epoch_end: bool) -> None:
        epoch_length = engine.state.epoch_length or 0
        done = engine.state.iteration - (engine.state.epoch - 1) * epoch_length
        if not epoch_end and done >= epoch_length > 0:
            return  # the epoch's last batch: stop after its validation and checkpoint, at EPOCH_COMPLETED
        requested = self.signal is not None
        if is_distributed():
            requested = reduce_sum(float(requested))[0] > 0
        if not requested or self.stopped_by is not None:
            return
        resume_state = {
            "epoch": engine.state.epoch,
            "batch_in_epoch": done if done < epoch_length else 0,
            "epoch_rng": gather_lists([self._epoch_rng]),
            "rng": gather_lists([get_rng_state(self.loader)]),
        }
        name = signal.Signals(self.signal).name if self.signal is not None else "a stop on another rank"
        if is_main_process():
            checkpoint = {key: obj.state_dict() for key, obj in self.save_dict.items()}
            checkpoint["resume_state"] = resume_state
            with atomic_path(self.path) as tmp:
                torch.save(checkpoint, tmp)
            logger.warning(
                "%s: stopped at epoch %d, iteration %d (%d of %d in the epoch); saved %s; "
                "continue with the same command and --resume true",
                name,
                engine.state.epoch,
                engine.state.iteration,
                done,
                epoch_length,
                self.path,
            )
        self.stopped_by = name
        engine.terminate(skip_completed=True)

    def _discard_stale(self, engine: Engine) -> None:
        # a completed epoch after the stop has its own checkpoint: the interrupted one would only mislead a resume
        if self.stopped_by is None and is_main_process() and self.path.is_file():
            self.path.unlink()


class NonFiniteLossGuard:
    """Stops training at the first NaN or infinite loss, before anything saves the weights it produced.

    The trainer then ends with one line naming the epoch and iteration and the last good checkpoint; the epoch
    checkpoints and ``model.pt`` written before are kept as they were. Attach it before other
    ``ITERATION_COMPLETED`` handlers.
    """

    def __init__(self) -> None:
        self.message: str | None = None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        output = engine.state.output
        loss = output.get("loss") if isinstance(output, Mapping) else output
        if not isinstance(loss, torch.Tensor):
            return
        bad = not bool(torch.isfinite(loss.detach()).all())
        if is_distributed():
            bad = reduce_sum(float(bad))[0] > 0
        if not bad:
            return
        epoch_length = engine.state.epoch_length or 0
        done = engine.state.iteration - (engine.state.epoch - 1) * epoch_length
        self.message = (
            f"training loss is {float(loss.detach().float().mean())} at epoch {engine.state.epoch}, iteration "
            f"{engine.state.iteration} ({done} of {epoch_length} in the epoch): stopped before saving"
        )
        engine.terminate(skip_completed=True)
