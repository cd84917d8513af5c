"""Shared pieces of the ``scripts/bench_*.py`` benchmarks: build a bundle's training config and time its trainer."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ignite.engine import Events
from monai.bundle import ConfigParser

from medkit.bundle.lookup import find_bundle

__all__ = ["bundle_parser", "seconds_per_bundle_iteration", "start_bundle_run"]


def bundle_parser(
    bundle: str | os.PathLike, data: str | os.PathLike, out: str | os.PathLike, overrides: dict[str, Any]
) -> ConfigParser:
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


def seconds_per_bundle_iteration(
    bundle: str | os.PathLike,
    data: str | os.PathLike,
    out: str | os.PathLike,
    iterations: int,
    warmup: int,
    overrides: dict[str, Any],
) -> float:
    """Runs the bundle's own ``train#trainer`` (validation off) for ``iterations`` and returns the seconds per
    iteration after the first ``warmup``.

    Args:
        bundle: the ``train.json`` file, or a bundle name or folder (as for :func:`bundle_parser`).
        data: the dataset folder.
        out: the run folder.
        iterations: training iterations to run.
        warmup: iterations left out of the timing.
        overrides: more config ids to set.

    Raises:
        ValueError: if ``warmup`` is not between 1 and ``iterations - 1``.
    """
    if not 1 <= warmup < iterations:
        raise ValueError(f"need 1 <= warmup < iterations, got warmup={warmup}, iterations={iterations}")
    parser = bundle_parser(bundle, data, Path(out), {**overrides, "val_interval": 10**6, "epochs": 10**6})
    start_bundle_run(parser)
    trainer = parser.get_parsed_content("train#trainer")
    stamps: list[float] = []

    @trainer.on(Events.ITERATION_COMPLETED)
    def _stamp(engine):
        stamps.append(time.perf_counter())
        if len(stamps) >= iterations:
            engine.terminate()

    trainer.run()
    return (stamps[-1] - stamps[warmup - 1]) / (len(stamps) - warmup)
