"""The bundle layer: engine wiring, run start, override checks and one-line errors shared by every medkit bundle.

Bundle configs call these by dotted path: ``"_target_": "medkit.bundle.build_trainer"``,
``"$medkit.bundle.start_run(@output_dir, @seed, @run_settings)"``. Names are imported on first access, so the
light modules (``medkit.bundle.lookup``, ``medkit.bundle.overrides``) load neither torch nor MONAI.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module under medkit.bundle
_EXPORTS = {
    "build_evaluator": "engines",
    "build_trainer": "engines",
    "loss_of": "progress",
    "UserError": "errors",
    "install_excepthook": "errors",
    "check_cli_overrides": "overrides",
    "check_override_keys": "overrides",
    "EpochProgress": "progress",
    "RunSummary": "progress",
    "TensorBoardImages": "progress",
    "start_run": "run",
    "default_checkpoint": "models",
    "publish_model": "models",
    "trained_setting": "models",
    "find_bundle": "lookup",
    "distributed_sampler": "distributed",
    "end_distributed": "distributed",
    "init_distributed": "distributed",
    "is_main_process": "distributed",
    "local_device": "distributed",
    "rank0_summary_writer": "distributed",
    "wrap_ddp": "distributed",
    "cached_dataset": "data",
    "data_loader": "data",
    "InferenceDataLoader": "inference",
    "read_each": "inference",
    "run_inference": "inference",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
