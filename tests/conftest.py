"""Shared fixtures: determinism and tiny generated nuclei datasets; bundle runners (subprocess and in-process)."""

from __future__ import annotations

import contextlib
import gc
import io
import json
import logging
import os
import random
import subprocess
import sys
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
# MEDKIT_TEST_CUDA=1 runs the bundle commands on CUDA (scripts/gpu_acceptance.sh); by default they run on the CPU
ON_CUDA = os.environ.get("MEDKIT_TEST_CUDA") == "1"


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    np.random.seed(0)
    yield


@pytest.fixture
def real_data_dir() -> Path:
    """``$MEDKIT_REAL_DATA``; tests using it skip when the variable is unset or the folder is missing."""
    root = os.environ.get("MEDKIT_REAL_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("MEDKIT_REAL_DATA is not set to a folder")
    return Path(root)


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


@pytest.fixture
def tiny_dsb(tmp_path: Path) -> Path:
    """A 2-case DSB2018 layout: case ``a`` is RGBA 12x20 with two nuclei, case ``b`` is RGB 16x16 with one."""
    root = tmp_path / "stage1_train"
    img = np.zeros((12, 20, 4), np.uint8)
    img[..., 3] = 255
    img[2:5, 3:7, :3] = 200
    img[8:11, 14:18, :3] = 120
    write_png(root / "a" / "images" / "a.png", img)
    m1 = np.zeros((12, 20), np.uint8)
    m1[2:5, 3:7] = 255
    m2 = np.zeros((12, 20), np.uint8)
    m2[8:11, 14:18] = 255
    write_png(root / "a" / "masks" / "m1.png", m1)
    write_png(root / "a" / "masks" / "m2.png", m2)
    img_b = np.zeros((16, 16, 3), np.uint8)
    img_b[4:8, 4:8] = 255
    write_png(root / "b" / "images" / "b.png", img_b)
    mb = np.zeros((16, 16), np.uint8)
    mb[4:8, 4:8] = 255
    write_png(root / "b" / "masks" / "m.png", mb)
    return root


@pytest.fixture
def figures(monkeypatch) -> list:
    """The matplotlib figures ``medkit.curves`` saves, in order (still readable after they are closed)."""
    from medkit import curves

    saved = []
    save = curves._save

    def keep(fig, out_path):
        saved.append(fig)
        return save(fig, out_path)

    monkeypatch.setattr(curves, "_save", keep)
    return saved


def bundle_layers(configs: Path, *names: str) -> str:
    """The ``--config_file`` value that layers ``names`` (files in ``configs``) in order."""
    return "[" + ",".join(f"'{configs / n}'" for n in names) + "]"


NUCLEI_CONFIGS = REPO_ROOT / "bundles" / "nuclei_seg" / "configs"
# nuclei_seg small enough for a test: 64-pixel images, a 3-level U-Net of 4-16 channels, batch 2, no workers
NUCLEI_TINY = ["--batch_size", "2", "--spatial_size", "[64,64]", "--channels", "[4,8,16]", "--num_workers", "0"]


def slow_nuclei_training(folder: Path, iteration: int, seconds: float) -> tuple[str, Path, dict[str, str]]:
    """A nuclei_seg training that, from ``iteration`` on, writes a marker file and sleeps after each iteration
    (tests/bundle/helpers/slow_after.py), so a test can act on the process while it is inside an epoch.

    Returns:
        The ``--config_file`` value (train.json plus the slowing layer written into ``folder``), the marker file and
        the environment a subprocess needs to import the handler.
    """
    marker, layer = folder / "marker", folder / "slow.json"
    handler = {"_target_": "slow_after.SlowAfter", "iteration": iteration, "marker": str(marker), "seconds": seconds}
    layer.write_text(json.dumps({"+train#handlers": [handler]}))
    helpers = os.pathsep.join([str(REPO_ROOT / "tests" / "bundle" / "helpers"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": helpers}
    return bundle_layers(NUCLEI_CONFIGS, "train.json", str(layer)), marker, env


def _checked(proc: subprocess.CompletedProcess, args: tuple[str, ...], check: bool) -> subprocess.CompletedProcess:
    """``proc``, or an ``AssertionError`` with the tail of its output when ``check`` is set and it failed."""
    if check and proc.returncode != 0:
        raise AssertionError(f"monai.bundle {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def run_bundle(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Runs ``python -m monai.bundle <args>`` from the repo root on the CPU, as a user would."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if not ON_CUDA:
        env["CUDA_VISIBLE_DEVICES"] = ""
    proc = subprocess.run(
        [sys.executable, "-m", "monai.bundle", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return _checked(proc, args, check)


# the `python -m monai.bundle` commands the tests use, for the in-process runner
_BUNDLE_COMMANDS = ("run", "verify_metadata", "ckpt_export", "verify_net_in_out")
# the format of the bundles' configs/logging.conf, which the subprocess runs log with
_LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"


def _log_files() -> set[tuple[logging.Logger, logging.Handler]]:
    """The file handlers on every logger now."""
    loggers = [logging.getLogger(), *logging.root.manager.loggerDict.values()]
    return {
        (logger, handler)
        for logger in loggers
        for handler in getattr(logger, "handlers", [])
        if isinstance(handler, logging.FileHandler)
    }


def _close_log_files(before: set[tuple[logging.Logger, logging.Handler]]) -> None:
    """Detaches and closes the file handlers added since ``before`` (a run's ``train.log`` in a folder that a test's
    tmp_path cleanup will delete)."""
    for logger, handler in _log_files() - before:
        logger.removeHandler(handler)
        handler.close()


@pytest.fixture(autouse=True)
def _no_leaked_log_files():
    """Code that calls ``medkit.bundle.start_run`` in the test process (benchmarks, in-process workflows) leaves no
    log file attached to a logger after the test."""
    before = _log_files()
    yield
    _close_log_files(before)


@contextlib.contextmanager
def _isolated_bundle_state(stream: io.StringIO) -> Iterator[None]:
    """Sends every INFO log record to ``stream`` and restores the global state a bundle run changes.

    Restored afterwards: MONAI's ``track_meta`` and determinism flags, the torch/numpy/random RNG states, torch's
    thread count, ``sys.path``, the working directory, the warning filters and the handlers and level of the root
    logger and of loggers that do not propagate (MONAI's own, which log to stdout). TensorBoard writers the run opened
    are closed (flushing their events and ending their threads), as the end of a subprocess would.
    """
    import monai
    from monai.data.meta_obj import get_track_meta
    from torch.utils.tensorboard import SummaryWriter

    writers: list[SummaryWriter] = []
    writer_init = SummaryWriter.__init__

    def tracked_writer_init(self: SummaryWriter, *args: object, **kwargs: object) -> None:
        writer_init(self, *args, **kwargs)
        writers.append(self)

    capture = logging.StreamHandler(stream)
    capture.setFormatter(logging.Formatter(_LOG_FORMAT))
    capture.setLevel(logging.INFO)
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    # loggers such as monai.bundle.scripts print to the stdout they saw at import time, past redirect_stdout
    detached = {
        logger: logger.handlers[:]
        for logger in list(logging.root.manager.loggerDict.values())
        if isinstance(logger, logging.Logger) and not logger.propagate and logger.handlers
    }
    saved = {
        "track_meta": get_track_meta(),
        "rng": (torch.get_rng_state(), np.random.get_state(), random.getstate()),
        "threads": torch.get_num_threads(),
        "sys_path": sys.path[:],
        "cwd": os.getcwd(),
        "excepthook": sys.excepthook,
        "log_files": _log_files(),
    }
    try:
        root.addHandler(capture)
        root.setLevel(logging.INFO)
        for logger in detached:
            logger.handlers = [capture]
        os.chdir(REPO_ROOT)
        with warnings.catch_warnings():
            # shown as a subprocess shows them (on stderr), not collected into pytest's warnings summary
            warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: sys.stderr.write(
                warnings.formatwarning(message, category, filename, lineno, line)
            )
            with (
                mock.patch.object(torch.cuda, "is_available", return_value=ON_CUDA and torch.cuda.is_available()),
                mock.patch.object(SummaryWriter, "__init__", tracked_writer_init),
            ):
                yield
    finally:
        for writer in writers:
            writer.close()
        # medkit.bundle.start_run adds the run's log file to loggers and installs its one-line error hook
        sys.excepthook = saved["excepthook"]
        _close_log_files(saved["log_files"])
        os.chdir(saved["cwd"])
        sys.path[:] = saved["sys_path"]
        for logger, handlers in detached.items():
            logger.handlers = handlers
        root.handlers[:] = saved_root[0]
        root.setLevel(saved_root[1])
        monai.data.set_track_meta(saved["track_meta"])
        monai.utils.set_determinism(seed=None)  # restores cuDNN's deterministic/benchmark flags
        torch.set_rng_state(saved["rng"][0])
        np.random.set_state(saved["rng"][1])
        random.setstate(saved["rng"][2])
        if torch.get_num_threads() != saved["threads"]:
            torch.set_num_threads(saved["threads"])
        gc.collect()  # engines and networks hold reference cycles; free their memory before the next run


def _repoint_handlers(streams: list[tuple[io.StringIO, object]]) -> None:
    """Points log handlers created during a run at the real streams instead of its (now unread) capture buffers.

    MONAI's ``get_logger`` gives each new logger (``monai.handlers.StatsHandler``, ...) a handler on the ``sys.stdout``
    of the moment, which was the run's buffer.
    """
    for logger in [logging.getLogger(), *logging.root.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler):
                real = next((real for buffer, real in streams if handler.stream is buffer), None)
                if real is not None:
                    handler.setStream(real)


def run_bundle_in_process(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Runs ``python -m monai.bundle <args>`` through ``fire`` in this process, on the CPU.

    Same signature and result as :func:`run_bundle`, about 12 s cheaper per call (no torch/MONAI import). The
    arguments are parsed by ``fire`` exactly as on the command line. ``run`` gets ``--logging_file False``, so the
    bundle's ``configs/logging.conf`` leaves the root logger alone; INFO log records are captured instead, into
    ``stdout`` with the format that file sets, and warnings into ``stderr``. An exception (or a ``fire`` usage error)
    gives ``returncode`` 1 (or fire's exit code) with its traceback at the end of ``stderr``.

    Args:
        args: the command (``run``, ``verify_metadata`` or ``ckpt_export``) and its arguments.
        check: raise an ``AssertionError`` with the output's tail when the command fails.

    Returns:
        The arguments, exit status and captured output, as ``subprocess.run`` returns them.
    """
    import fire
    from monai.bundle import scripts

    if not args or args[0] not in _BUNDLE_COMMANDS:
        raise ValueError(f"run_bundle_in_process supports {_BUNDLE_COMMANDS}, got {args[:1]}")
    command = [*args, "--logging_file", "False"] if args[0] == "run" else list(args)
    out, err = io.StringIO(), io.StringIO()
    returncode = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _isolated_bundle_state(out):
        try:
            fire.Fire({name: getattr(scripts, name) for name in _BUNDLE_COMMANDS}, command=command)
        except SystemExit as exc:  # fire's usage errors
            returncode = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        except Exception:
            returncode = 1
            sys.stderr.write(traceback.format_exc())
    _repoint_handlers([(out, sys.stdout), (err, sys.stderr)])
    from medkit.bundle.run import release_locks

    release_locks()  # as the end of a subprocess would: a later subprocess may use the same run folder
    proc = subprocess.CompletedProcess(["monai.bundle", *command], returncode, out.getvalue(), err.getvalue())
    return _checked(proc, args, check)


def workflow_property_problems(config_file: str | Path, workflow_type: str, **overrides: object) -> list[str]:
    """The missing or misplaced properties MONAI's ``ConfigWorkflow.check_properties()`` reports for a bundle config.

    Runs in-process with the same isolation as :func:`run_bundle_in_process`; the config is initialized and its
    properties are built (with ``overrides``), as MONAI's tools do when they load a bundle.
    """
    from monai.bundle import ConfigWorkflow

    with _isolated_bundle_state(io.StringIO()):
        workflow = ConfigWorkflow(
            config_file=str(config_file), workflow_type=workflow_type, logging_file=False, **overrides
        )
        workflow.initialize()
        return list(workflow.check_properties() or [])
