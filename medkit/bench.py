"""Shared pieces of the ``scripts/bench_*.py`` benchmarks: build a bundle's training config, time its trainer against
a plain PyTorch loop and against its own step on one fixed batch, and sample GPU utilisation meanwhile.

The three figures answer different questions. ``bundle``: what a training run reaches (data pipeline, engine and
handlers included). ``plain``: what a hand-written loop reaches with the same network, loss, optimizer and autocast.
``compute_only``: the trainer's own step on one batch already on the device, i.e. what the device can do when the
data path costs nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Events
from monai.bundle import ConfigParser
from monai.config import PathLike
from monai.inferers import SimpleInferer

from medkit.bundle.lookup import find_bundle
from medkit.gpu_monitor import GPUUtilisation
from medkit.utils import as_bool

__all__ = [
    "GPUUtilisation",
    "add_timing_arguments",
    "bundle_parser",
    "compare_throughput",
    "describe_device",
    "parse_overrides",
    "plain_train_step",
    "scratch_folder",
    "seconds_per_bundle_iteration",
    "seconds_per_plain_iteration",
    "seconds_per_step",
    "start_bundle_run",
    "timing_options",
]

logger = logging.getLogger(__name__)

# training without validation and without an epoch limit: the timing loops stop the trainer themselves
_TRAIN_ONLY = {"val_interval": 10**6, "epochs": 10**6}


def describe_device(device: torch.device | str) -> str:
    """``"cpu"``, or ``"cuda:0 (NVIDIA H200)"`` with the GPU's name."""
    device = torch.device(device)
    if device.type != "cuda":
        return str(device)
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["batch_size=8", "channels=[4,8]"]`` -> ``{"batch_size": 8, "channels": [4, 8]}`` (values are JSON).

    Raises:
        ValueError: naming an item without ``=`` or with a value that is not JSON.
    """
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError("no '='")
            out[key] = json.loads(value)
        except ValueError as err:
            raise ValueError(f"--set wants KEY=JSON, got {item!r} ({err})") from None
    return out


def add_timing_arguments(parser: argparse.ArgumentParser, iterations: int, warmup: int, repeats: int) -> None:
    """Adds the options every throughput benchmark shares: ``--iterations``, ``--warmup``, ``--repeats``, ``--set``.

    Args:
        parser: the script's argument parser.
        iterations: default training iterations per measurement.
        warmup: default iterations left out of the timing.
        repeats: default repeats of each loop.
    """
    parser.add_argument("--iterations", type=int, default=iterations, help="timed training iterations per measurement")
    parser.add_argument("--warmup", type=int, default=warmup, help="iterations excluded from timing")
    parser.add_argument("--repeats", type=int, default=repeats, help="alternating repeats of each loop (median)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=JSON", help="config overrides, e.g. batch_size=8")


def timing_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :func:`compare_throughput` keywords that the options of :func:`add_timing_arguments` give."""
    return {
        "iterations": args.iterations,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "overrides": parse_overrides(args.set),
    }


@contextlib.contextmanager
def scratch_folder() -> Iterator[Path]:
    """A temporary folder for a benchmark's runs, with stdout sent to stderr meanwhile: the engines' progress lines
    stay out of the JSON the script prints."""
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(sys.stderr):
        yield Path(tmp)


def bundle_parser(bundle: PathLike, data: PathLike, out: PathLike, overrides: dict[str, Any]) -> ConfigParser:
    """Reads a bundle's ``train.json`` with ``dataset_dir`` (also as the default, so nothing is generated) and
    ``output_dir`` pointed at ``data`` and ``out``, plus ``overrides``.

    Args:
        bundle: the ``train.json`` file, or a bundle name or folder (see :func:`medkit.bundle.lookup.find_bundle`).
        data: the dataset folder.
        out: the run folder.
        overrides: more config ids to set.
    """
    train_json = Path(bundle) if Path(bundle).is_file() else find_bundle(bundle) / "configs" / "train.json"
    parser = ConfigParser()
    parser.read_config(str(train_json))
    parser.update({"dataset_dir": str(data), "default_dataset_dir": str(data), "output_dir": str(out), **overrides})
    return parser


def start_bundle_run(parser: ConfigParser) -> None:
    """Does what a bundle's ``run`` does before it builds the engine: its first item, ``medkit.bundle.start_run``
    (seed, MetaTensor tracking off for training, run folder and settings), so a benchmark times what a run times."""
    parser.get_parsed_content("run#0")


def _check_warmup(iterations: int, warmup: int) -> None:
    if not 1 <= warmup < iterations:
        raise ValueError(f"need 1 <= warmup < iterations, got warmup={warmup}, iterations={iterations}")


def _synchronize(device: torch.device) -> None:
    """Waits for the device's queued kernels, so a clock read after it has seen them run."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timing_run(
    bundle: PathLike, data: PathLike, out: PathLike, iterations: int, warmup: int, overrides: dict
) -> ConfigParser:
    """The bundle's config for a timing run (validation off, no epoch limit), with its run started."""
    _check_warmup(iterations, warmup)
    parser = bundle_parser(bundle, data, Path(out), {**overrides, **_TRAIN_ONLY})
    start_bundle_run(parser)
    return parser


def _trainer_part(parser: ConfigParser, key: str, default: Any = None) -> Any:
    """A ``build_trainer`` argument of the bundle, as the trainer gets it (bundles name their parts differently)."""
    item = f"train#trainer#{key}"
    return parser.get_parsed_content(item) if item in parser else default


def _epochs(batches: Iterable[Any], count: int) -> Iterator[Any]:
    """The first ``count`` items of ``batches``, iterated again (a data loader's next epoch) as often as needed."""
    given = 0
    while given < count:
        before = given
        for batch in itertools.islice(batches, count - given):
            given += 1
            yield batch
        if given == before:
            raise ValueError(f"no batches to time in {batches!r} (a dataset smaller than one batch with drop_last?)")


def seconds_per_step(
    step: Callable[[Any], Any],
    batches: Iterable[Any],
    iterations: int,
    warmup: int,
    device: torch.device | str = "cpu",
    monitor: GPUUtilisation | None = None,
) -> float:
    """Calls ``step`` on ``iterations`` batches and returns the seconds per call after the first ``warmup``.

    Args:
        step: one training iteration.
        batches: its inputs, iterated again (a data loader's next epoch) until ``iterations`` calls are made.
        iterations: calls to make.
        warmup: calls left out of the timing.
        device: the training device; on CUDA the clock is read after the queued kernels have run.
        monitor: sampled during the timed calls.

    Raises:
        ValueError: if ``warmup`` is not between 1 and ``iterations - 1``.
    """
    _check_warmup(iterations, warmup)
    device = torch.device(device)
    start = 0.0
    try:
        for calls, batch in enumerate(_epochs(batches, iterations), start=1):
            step(batch)
            if calls == warmup:
                _synchronize(device)
                start = time.perf_counter()
                if monitor is not None:
                    monitor.start()
        _synchronize(device)
        end = time.perf_counter()
    finally:
        if monitor is not None:
            monitor.stop()
    return (end - start) / (iterations - warmup)


def _on_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {key: _on_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_on_device(value, device) for value in batch)
    return batch


def seconds_per_bundle_iteration(
    bundle: PathLike,
    data: PathLike,
    out: PathLike,
    iterations: int,
    warmup: int,
    overrides: dict[str, Any],
    monitor: GPUUtilisation | None = None,
    compute_only: bool = False,
) -> float:
    """Runs the bundle's own ``train#trainer`` (validation off) for ``iterations`` and returns the seconds per
    iteration after the first ``warmup``.

    With ``compute_only`` the trainer's own step runs on one fixed batch already on the device: its
    ``prepare_batch`` and ``to_kwargs``, inferer, CUDA AMP (or the inferer's CPU autocast), loss, backward and
    optimizer step, without the data loader, the host-to-device copy and the engine's event loop and handlers.

    Args:
        bundle: the ``train.json`` file, or a bundle name or folder (as for :func:`bundle_parser`).
        data: the dataset folder.
        out: the run folder.
        iterations: training iterations to run.
        warmup: iterations left out of the timing.
        overrides: more config ids to set.
        monitor: sampled during the timed iterations.
        compute_only: time the step on one fixed batch instead of the run.

    Raises:
        ValueError: if ``warmup`` is not between 1 and ``iterations - 1``.
    """
    parser = _timing_run(bundle, data, out, iterations, warmup, overrides)
    trainer = parser.get_parsed_content("train#trainer")
    device = torch.device(trainer.state.device or "cpu")
    if compute_only:
        batch = _on_device(next(iter(trainer.data_loader)), device)
        # _iteration is the process function SupervisedTrainer hands to ignite: the very step a run takes
        return seconds_per_step(partial(trainer._iteration, trainer), [batch], iterations, warmup, device, monitor)
    stamps: list[float] = []

    @trainer.on(Events.ITERATION_COMPLETED)
    def _stamp(engine):
        if engine.state.iteration in (warmup, iterations):
            _synchronize(device)
        stamps.append(time.perf_counter())
        if monitor is not None and len(stamps) == warmup:
            monitor.start()
        if len(stamps) >= iterations:
            if monitor is not None:
                monitor.stop()  # before the end-of-run handlers (final checkpoint, summary) run
            engine.terminate()

    try:
        trainer.run()
    finally:
        if monitor is not None:
            monitor.stop()
    return (stamps[-1] - stamps[warmup - 1]) / (len(stamps) - warmup)


def plain_train_step(parser: ConfigParser) -> tuple[Callable[..., torch.Tensor], torch.device]:
    """The training step a plain PyTorch loop writes by hand, with the bundle's parts.

    Network, loss, optimizer and inferer (with its CPU autocast) are the ones ``train#trainer`` gets; on CUDA the
    step autocasts with a ``GradScaler`` when the trainer's ``amp`` is on, as MONAI's trainer does.

    Args:
        parser: the bundle's training config (see :func:`bundle_parser`).

    Returns:
        ``(step, device)``: ``step(inputs, targets, *args)`` runs one iteration on tensors already on ``device``
        and returns the loss.
    """
    device = torch.device(_trainer_part(parser, "device"))
    network = _trainer_part(parser, "network")
    loss_function = _trainer_part(parser, "loss_function")
    optimizer = _trainer_part(parser, "optimizer")
    inferer = _trainer_part(parser, "inferer") or SimpleInferer()
    amp = device.type == "cuda" and as_bool(_trainer_part(parser, "amp", False))
    amp_kwargs = _trainer_part(parser, "amp_kwargs") or {}
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    network.train()

    def step(inputs: torch.Tensor, targets: torch.Tensor, *args: Any) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, enabled=amp, **amp_kwargs):
            loss = loss_function(inferer(inputs, network, *args), targets).mean()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss

    return step, device


def seconds_per_plain_iteration(
    bundle: PathLike, data: PathLike, out: PathLike, iterations: int, warmup: int, overrides: dict[str, Any]
) -> float:
    """Seconds per iteration of a plain PyTorch loop (:func:`plain_train_step`) over the bundle's own training
    data loader: the same data, batch size and parts as the trainer; only the engine differs.

    Args:
        bundle, data, out, iterations, warmup, overrides: as for :func:`seconds_per_bundle_iteration`.
    """
    parser = _timing_run(bundle, data, out, iterations, warmup, overrides)
    step, device = plain_train_step(parser)
    to_kwargs = _trainer_part(parser, "to_kwargs") or {}
    loader = _trainer_part(parser, "train_data_loader")

    def run(batch: Mapping[str, Any]) -> None:
        inputs, targets = (
            torch.as_tensor(batch[key]).to(device, non_blocking=True, **to_kwargs) for key in ("image", "label")
        )
        step(inputs, targets)

    return seconds_per_step(run, loader, iterations, warmup, device)


def compare_throughput(
    bundle: PathLike,
    data: PathLike,
    out: PathLike,
    *,
    iterations: int,
    warmup: int,
    repeats: int,
    overrides: dict[str, Any],
    unit: str = "images",
    plain: Callable[..., float] | None = None,
) -> dict[str, Any]:
    """Times the bundle's trainer, a plain loop and the compute-only step in one run and returns the JSON figures.

    Each repeat runs all three, in an order that rotates from repeat to repeat, so drift and warm-up favour none;
    medians are reported with ratios between them. GPU utilisation is sampled during the timed bundle iterations
    (``gpu_utilisation``) and the timed compute-only iterations (``gpu_utilisation_compute_only``).

    Args:
        bundle: the ``train.json`` file, or a bundle name or folder (as for :func:`bundle_parser`).
        data: the dataset folder.
        out: a scratch folder for the runs.
        iterations: training iterations per measurement.
        warmup: iterations left out of each timing.
        repeats: measurements of each loop.
        overrides: more config ids to set.
        unit: what a batch holds, for the key names (``bundle_<unit>_per_s``).
        plain: the plain loop, called like :func:`seconds_per_plain_iteration` without ``bundle``; by default
            that function.
    """
    plain = plain or partial(seconds_per_plain_iteration, bundle)
    parser = bundle_parser(bundle, data, Path(out) / "config", overrides)
    batch, device = parser.get_parsed_content("batch_size"), _trainer_part(parser, "device", "cpu")
    gpu, gpu_compute = GPUUtilisation(), GPUUtilisation()
    loops = {
        "bundle": partial(seconds_per_bundle_iteration, bundle, monitor=gpu),
        "plain_loop": plain,
        "compute_only": partial(seconds_per_bundle_iteration, bundle, monitor=gpu_compute, compute_only=True),
    }
    seconds: dict[str, list[float]] = {name: [] for name in loops}
    for r in range(repeats):
        for name in itertools.islice(itertools.cycle(loops), r % len(loops), r % len(loops) + len(loops)):
            seconds[name].append(loops[name](data, Path(out) / f"{name}{r}", iterations, warmup, overrides))
    median = {name: statistics.median(values) for name, values in seconds.items()}
    result: dict[str, Any] = {
        "device": describe_device(device),
        "torch_threads": torch.get_num_threads(),
        "batch_size": batch,
        "iterations": iterations,
        "warmup": warmup,
        "repeats": repeats,
        "overrides": overrides,
    }
    for name in loops:
        result[f"{name}_{unit}_per_s_each"] = [round(batch / s, 3) for s in seconds[name]]
    for name in loops:
        result[f"{name}_ms_per_iteration"] = round(1000 * median[name], 2)
        result[f"{name}_{unit}_per_s"] = round(batch / median[name], 3)
    result["ratio_bundle_vs_plain"] = round(median["plain_loop"] / median["bundle"], 3)
    result["ratio_bundle_vs_compute"] = round(median["compute_only"] / median["bundle"], 3)
    result["ratio_plain_vs_compute"] = round(median["compute_only"] / median["plain_loop"], 3)
    result["gpu_utilisation"] = gpu.summary()
    result["gpu_utilisation_compute_only"] = gpu_compute.summary()
    return result
