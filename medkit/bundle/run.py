"""What a bundle's ``run`` does before its engine starts: checks, seeds, run folder, settings and log file.

Bundles call :func:`start_run` as the first item of ``run``, not in ``initialize``: loading a config from Python
(``ConfigWorkflow.initialize()``, ``monai.bundle.load``) then changes no global state and writes no file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medkit.bundle.errors import install_excepthook
from medkit.bundle.overrides import check_cli_overrides
from medkit.utils import save_json

__all__ = ["LOG_FILENAME", "attach_log_file", "start_run"]

logger = logging.getLogger(__name__)

LOG_FILENAME = "train.log"
# MONAI's StatsHandler logs to its own non-propagating logger; the run's log file takes its lines too
_LOGGERS = ("", "monai.handlers.StatsHandler")
_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"


def attach_log_file(path: str | os.PathLike) -> Path:
    """Appends the INFO log of this process (medkit, MONAI's StatsHandler, ignite) to ``path``; idempotent."""
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    from monai.apps.utils import get_logger

    for name in _LOGGERS:
        # MONAI's get_logger gives its loggers a stdout handler only when it creates them: let it create them first
        target = get_logger(name) if name else logging.getLogger()
        if any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path for h in target.handlers):
            continue
        handler = logging.FileHandler(path)
        handler.setLevel(logging.INFO)
        handler.setFormatter(logging.Formatter(_FORMAT))
        target.addHandler(handler)
    if logging.getLogger().level > logging.INFO or logging.getLogger().level == logging.NOTSET:
        logging.getLogger().setLevel(logging.INFO)
    return path


def start_run(
    output_dir: str | os.PathLike,
    seed: int | None = 0,
    settings: Mapping[str, Any] | None = None,
    track_meta: bool = False,
    log_name: str | None = LOG_FILENAME,
    settings_name: str = "run_settings.json",
) -> Path:
    """Prepares a bundle run; the first item of a bundle's ``run`` list.

    In order: medkit input errors become one-line messages (:mod:`medkit.bundle.errors`); the command line's
    override keys are checked against the configs; under ``torchrun`` the process joins its group
    (:func:`medkit.bundle.distributed.init_distributed`; only rank 0 writes the log file and the settings); the run
    folder is created with its log file; MONAI's determinism
    is set from ``seed``; MetaTensor tracking is switched (off for training, where no transform needs metadata, which
    makes every call cheaper); ``settings`` are saved.

    Args:
        output_dir: the run folder.
        seed: seed for ``monai.utils.set_determinism`` (plus the rank under torchrun); ``None`` leaves the RNGs alone.
        settings: the run's resolved settings, saved as ``<output_dir>/<settings_name>``.
        track_meta: MONAI's ``set_track_meta`` value for this run.
        log_name: the log file in ``output_dir``; ``None`` writes none.
        settings_name: file name of the saved settings.

    Returns:
        The run folder.
    """
    import monai
    import torch

    from medkit.bundle.distributed import init_distributed, is_main_process

    install_excepthook()
    check_cli_overrides()
    init_distributed()
    main = is_main_process()
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if log_name and main:
        attach_log_file(folder / log_name)
    if seed is not None:
        # each rank its own augmentation stream; DDP copies rank 0's initial weights to every rank
        monai.utils.set_determinism(seed=int(seed) + (0 if main else torch.distributed.get_rank()))
    monai.data.set_track_meta(bool(track_meta))
    if settings is not None and main:
        save_json(dict(settings), folder / settings_name)
    logger.info("run folder %s", folder.resolve())
    return folder
