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

from medkit.bundle.errors import UserError, install_excepthook
from medkit.bundle.overrides import check_cli_overrides
from medkit.utils import as_bool, save_json

__all__ = [
    "LOCK_FILENAME",
    "LOG_FILENAME",
    "attach_log_file",
    "lock_run_folder",
    "release_locks",
    "set_deterministic",
    "start_run",
]

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


LOCK_FILENAME = ".medkit.lock"
_HELD: set[Path] = set()  # the run folders this process has locked


def release_locks() -> None:
    """Releases the run folders this process locked (at exit; the test runner calls it after each in-process run)."""
    import json

    for path in list(_HELD):
        try:
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()
        except (OSError, ValueError):
            pass
        _HELD.discard(path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_run_folder(folder: str | os.PathLike) -> Path:
    """Marks ``folder`` as used by this process (``.medkit.lock``: pid, host, start time) until it exits.

    A second run into the same folder while the first is alive stops with one line; a lock left by a process that
    no longer runs (killed, crashed) on this host is taken over with a warning. The same process may start several
    runs there one after the other (a resume in the same Python session).

    Raises:
        UserError: another live process holds the folder.
    """
    import atexit
    import json
    import socket
    import time

    path = Path(folder) / LOCK_FILENAME
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            other = json.loads(path.read_text())
        except (OSError, ValueError):
            other = {}
        pid, host = int(other.get("pid", -1)), other.get("host")
        if pid != os.getpid() and (host != me["host"] or _pid_alive(pid)):
            raise UserError(
                f"{Path(folder).resolve()} is in use by another run (pid {pid} on {host}, started "
                f"{other.get('started')}): wait for it to end or pass another --output_dir; if no run uses it, "
                f"delete {path}"
            ) from None
        if pid != os.getpid():
            logger.warning("taking over %s from pid %s, which no longer runs", path, pid)
        path.write_text(json.dumps(me))
    else:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(me))

    if not _HELD:
        atexit.register(release_locks)
    _HELD.add(path)
    return path


def set_deterministic(enabled: bool | str) -> None:
    """Deterministic kernels (``true``/``false`` as on the command line): cuDNN deterministic and not benchmarking,
    ``torch.use_deterministic_algorithms`` and the cuBLAS workspace it needs. Slower on GPU (see docs/gpu.md); CPU
    runs with a fixed seed are reproducible without it."""
    on = as_bool(enabled)
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import torch

    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = not on and torch.backends.cudnn.benchmark
    torch.use_deterministic_algorithms(on)


def start_run(
    output_dir: str | os.PathLike,
    seed: int | None = 0,
    settings: Mapping[str, Any] | None = None,
    track_meta: bool = False,
    log_name: str | None = LOG_FILENAME,
    settings_name: str = "run_settings.json",
    deterministic: bool | str = False,
) -> Path:
    """Prepares a bundle run; the first item of a bundle's ``run`` list.

    In order: medkit input errors become one-line messages (:mod:`medkit.bundle.errors`); the command line's
    override keys are checked against the configs; the run folder is locked against a second run
    (:func:`lock_run_folder`); under ``torchrun`` the process joins its group
    (:func:`medkit.bundle.distributed.init_distributed`; only rank 0 writes the log file and the settings); the run
    folder is created with its log file; MONAI's determinism
    is set from ``seed``; MetaTensor tracking is switched (off for training, where no transform needs metadata, which
    makes every call cheaper); ``settings`` are saved.

    Args:
        output_dir: the run folder.
        seed: seed for ``monai.utils.set_determinism`` (plus the rank under torchrun); ``None`` leaves the RNGs alone.
        settings: the run's resolved settings, saved as ``<output_dir>/<settings_name>``.
        track_meta: MONAI's ``set_track_meta`` value for this run.
        deterministic: deterministic kernels on GPU (:func:`set_deterministic`).
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
    if main:
        lock_run_folder(folder)
    set_deterministic(deterministic)
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
