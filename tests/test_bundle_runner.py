"""The in-process bundle runner of conftest: same result as the subprocess one, global state restored."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from pathlib import Path

import pytest
import torch
from conftest import run_bundle_in_process
from monai.data.meta_obj import get_track_meta


def _bundle(root: Path, run: list[str]) -> Path:
    """A config that switches off track_meta, seeds everything, logs, prints and writes a TensorBoard scalar, then
    runs ``run``."""
    configs = root / "configs"
    configs.mkdir(parents=True)
    config = {
        "imports": ["$import logging", "$import sys", "$import monai", "$import torch"],
        "message": "hello",
        "tb_writer": {"_target_": "torch.utils.tensorboard.SummaryWriter", "log_dir": str(root / "tb")},
        "initialize": ["$monai.data.set_track_meta(False)", "$monai.utils.set_determinism(seed=0)"],
        "run": [
            "$logging.getLogger('medkit.test_runner').info('logged ' + @message)",
            "$print('printed ' + str(torch.cuda.is_available()))",
            "$sys.stderr.write('to stderr\\n')",
            "$@tb_writer.add_scalar('loss', 1.0, 0)",
            *run,
        ],
    }
    (configs / "train.json").write_text(json.dumps(config))
    return configs / "train.json"


def test_run_captures_logs_and_output_and_restores_global_state(tmp_path):
    config = _bundle(tmp_path / "bundle", ["$torch.set_num_threads(torch.get_num_threads() + 1)"])
    root = logging.getLogger()
    handlers, level, path, cwd = root.handlers[:], root.level, sys.path[:], os.getcwd()
    threads, rng, alive = torch.get_num_threads(), torch.get_rng_state(), threading.active_count()
    proc = run_bundle_in_process("run", "--config_file", str(config), "--message", "'there'")
    assert proc.returncode == 0
    assert " - medkit.test_runner - INFO - logged there" in proc.stdout  # the override went through fire
    assert "printed False" in proc.stdout  # on the CPU, like the subprocess runner
    assert "to stderr" in proc.stderr
    assert "--logging_file" in proc.args
    assert get_track_meta() is True
    assert root.handlers == handlers and root.level == level
    assert sys.path == path and os.getcwd() == cwd
    assert torch.get_num_threads() == threads and torch.equal(torch.get_rng_state(), rng)
    assert not torch.backends.cudnn.deterministic
    assert threading.active_count() == alive  # the TensorBoard writer was closed, as at the end of a subprocess
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "bundle" / "tb")).Reload()
    assert [e.value for e in events.Scalars("loss")] == [1.0]  # and flushed


def test_failing_config_is_returncode_1_with_the_error_on_stderr(tmp_path):
    config = _bundle(tmp_path / "bundle", ["$medkit_no_such_name.run()"])
    proc = run_bundle_in_process("run", "--config_file", str(config), check=False)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "medkit_no_such_name" in proc.stderr
    assert "logged hello" in proc.stdout  # what ran before the error is kept
    assert get_track_meta() is True
    with pytest.raises(AssertionError, match="monai.bundle run --config_file .* failed"):
        run_bundle_in_process("run", "--config_file", str(config))


def test_verify_metadata_logs_its_result(tmp_path):
    from conftest import REPO_ROOT

    configs = REPO_ROOT / "bundles" / "shapes_seg" / "configs"
    proc = run_bundle_in_process(
        "verify_metadata", "--meta_file", str(configs / "metadata.json"),
        "--filepath", str(REPO_ROOT / "bundles" / "meta_schema.json"),
    )  # fmt: skip
    assert "metadata is verified with no error" in proc.stdout
    bad = tmp_path / "metadata.json"
    bad.write_text(json.dumps({**json.loads((configs / "metadata.json").read_text()), "version": 3}))
    proc = run_bundle_in_process(
        "verify_metadata", "--meta_file", str(bad), "--filepath", str(REPO_ROOT / "bundles" / "meta_schema.json"),
        check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and "Failed validating" in proc.stderr
