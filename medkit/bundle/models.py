"""A bundle's published weights: ``bundles/<name>/models/model.pt``, where MONAI's tools look for them.

``medkit bundle publish <name> --run <run folder>`` copies a run's best weights there (and, with ``--torchscript``,
exports ``models/model.ts``); ``monai.bundle.load(name, bundle_dir="bundles")`` and the bundle's standalone
``inference.json`` then use them by default.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medkit.bundle.errors import UserError
from medkit.utils import atomic_path

__all__ = ["MODEL_FILENAME", "default_checkpoint", "publish_model", "trained_setting"]

logger = logging.getLogger(__name__)

MODEL_FILENAME = "model.pt"
SETTINGS_FILENAME = "run_settings.json"
# run files that stay behind: the split lists the local paths of the training data
_PRIVATE = frozenset({"datalist.json"})


def default_checkpoint(bundle_root: str | os.PathLike, default_run: str | os.PathLike | None = None) -> str:
    """The weights an inference run uses when ``--ckpt_path`` is not given.

    ``<bundle_root>/models/model.pt`` when published, else ``<default_run>/model.pt`` (the default training run).

    Raises:
        UserError: naming both places and how to fill them, when neither exists.
    """
    candidates = [Path(bundle_root) / "models" / MODEL_FILENAME]
    if default_run is not None:
        candidates.append(Path(default_run) / MODEL_FILENAME)
    for path in candidates:
        if path.is_file():
            return str(path)
    name = Path(bundle_root).name
    raise UserError(
        f"no weights at {' or '.join(str(p) for p in candidates)}; pass --ckpt_path <run>/model.pt, or train and "
        f"publish a run with `medkit bundle publish {name} --run <run folder>`"
    )


def publish_model(bundle_dir: str | os.PathLike, run_dir: str | os.PathLike, name: str = MODEL_FILENAME) -> Path:
    """Copies ``<run_dir>/<name>`` (a run's best weights) to ``<bundle_dir>/models/model.pt``, atomically.

    The run's JSON files (``run_settings.json``, and what inference reads next to the weights, such as
    ``mapping.json``) go along; ``datalist.json`` does not, since it lists the local paths of the training data.

    Args:
        bundle_dir: the bundle folder (holding ``configs/``).
        run_dir: the training run folder.
        name: the checkpoint in ``run_dir`` to publish (``model.pt``: the best validation metric).

    Returns:
        The published file.

    Raises:
        UserError: when the run holds no such checkpoint.
    """
    source = Path(run_dir) / name
    if not source.is_file():
        raise UserError(f"{source} does not exist; point --run at a finished training run folder")
    models = Path(bundle_dir) / "models"
    models.mkdir(parents=True, exist_ok=True)
    target = models / MODEL_FILENAME
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    logger.info("published %s as %s", source, target)
    for sidecar in sorted(Path(run_dir).glob("*.json")):
        if sidecar.name not in _PRIVATE:
            shutil.copyfile(sidecar, models / sidecar.name)
            logger.info("published %s", models / sidecar.name)
    return target


def trained_setting(ckpt_path: str | os.PathLike | Sequence[str | os.PathLike], key: str, default: Any) -> Any:
    """A setting of the run that wrote ``ckpt_path``: ``key`` in the ``run_settings.json`` beside it.

    Evaluation and inference configs call it so that they build the network the weights were trained with, e.g.
    ``"network": "$medkit.bundle.trained_setting(@ckpt_path, 'network', 'UNet')"``; a command-line override of the
    key still wins. Published weights have the file too (:func:`publish_model` copies it).

    Args:
        ckpt_path: the weights (``<run>/model.pt`` or ``bundles/<name>/models/model.pt``), or a list of seed-ensemble
            members' weights (one network_def builds every member, so the first member's settings are read).
        key: the setting's name in ``run_settings.json``.
        default: the value when there is no such file or it has no ``key`` (runs saved before the setting existed).

    Raises:
        UserError: naming the file, when it is not a JSON object.
    """
    from medkit.data.checks.files import read_json

    if isinstance(ckpt_path, (list, tuple)):
        if not ckpt_path:
            raise UserError(f"no checkpoints to read {key!r} from: the ensemble's checkpoint list is empty")
        ckpt_path = ckpt_path[0]
    path = Path(ckpt_path).parent / SETTINGS_FILENAME
    if not path.is_file():
        logger.info("%s: %r (no %s beside the weights)", key, default, path)
        return default
    try:
        settings = read_json(path)
    except ValueError as exc:
        raise UserError(f"{exc}; fix or delete it, or pass --{key} <value>") from None
    if not isinstance(settings, dict):
        raise UserError(f"{path}: expected a JSON object of run settings, got {type(settings).__name__}")
    value = settings.get(key, default)
    logger.info("%s: %r (%s)", key, value, f"from {path}" if key in settings else f"default, not in {path}")
    return value
