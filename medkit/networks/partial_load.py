"""Initialising a network from a checkpoint of a related one: a thin adapter over MONAI's ``copy_model_state``.

Used to fine-tune a segmentation U-Net from a colorization-pretrained U-Net of the same widths: the encoder and decoder
weights carry over, while the first convolution (1 grey vs 3 RGB input channels) and the head (3 RGB vs C class
outputs) keep their fresh initialisation.

:func:`monai.networks.utils.copy_model_state` copies every tensor whose name and shape match (with ``exclude_vars``
and ``mapping``). medkit adds what it does not do: it removes a ``module.`` (DataParallel) prefix from the checkpoint
keys, says *why* each tensor was skipped (MONAI returns only the model's unchanged names, not the checkpoint's unused
ones nor the reason), and refuses a checkpoint of which nothing matched.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import torch
from monai.networks.utils import copy_model_state
from torch import nn

from medkit.networks.checkpoint import read_model_state

__all__ = ["load_matching_state_dict", "load_pretrained"]

logger = logging.getLogger(__name__)


def _skip_reasons(
    own: Mapping[str, torch.Tensor],
    incoming: Mapping[str, torch.Tensor],
    loaded: set[str],
    mapping: Mapping[str, str],
    exclude_vars: str | None,
) -> dict[str, str]:
    """Why each name (of the checkpoint, or of the model) was not copied."""
    skipped = {}
    for name, value in incoming.items():
        target = mapping.get(name, name)
        if target in loaded:
            continue
        if target not in own:
            skipped[name] = "not in model"
        elif tuple(value.shape) != tuple(own[target].shape):
            skipped[name] = f"shape {tuple(value.shape)} in checkpoint vs {tuple(own[target].shape)} in model"
        else:
            skipped[name] = f"excluded by exclude_vars {exclude_vars!r}"
    targets = {mapping.get(name, name) for name in incoming}
    skipped.update({name: "not in checkpoint" for name in own if name not in loaded and name not in targets})
    return skipped


def load_matching_state_dict(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    exclude_vars: str | None = None,
    mapping: Mapping[str, str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """Copies into ``model`` every tensor of ``state_dict`` whose name and shape match one of the model's.

    Parameters and buffers (such as batch-norm statistics) are both considered. A ``module.`` prefix (DataParallel)
    on the checkpoint keys is removed first. The copy is :func:`monai.networks.utils.copy_model_state`.

    Args:
        model: the network to update in place.
        state_dict: the checkpoint's tensors.
        exclude_vars: a regular expression; model names that it matches keep their values.
        mapping: ``{"checkpoint name": "model name"}`` for tensors whose names differ (their shapes must match).

    Returns:
        ``(loaded, skipped)``: the model names that were copied (sorted), and for every other name (from either side)
        why it was skipped, e.g. ``"shape (8, 1, 3, 3) in checkpoint vs (8, 3, 3, 3) in model"``, ``"not in
        checkpoint"``, ``"not in model"`` or ``"excluded by exclude_vars '...'"``.
    """
    own = dict(model.state_dict())
    incoming = {k.removeprefix("module."): v for k, v in state_dict.items()}
    _, loaded, _ = copy_model_state(model, incoming, mapping=mapping, exclude_vars=exclude_vars, inplace=True)
    return loaded, _skip_reasons(own, incoming, set(loaded), mapping or {}, exclude_vars)


def load_pretrained(
    model: nn.Module, path: str | os.PathLike, key: str | None = None, exclude_vars: str | None = None
) -> nn.Module:
    """Loads the matching tensors of the checkpoint at ``path`` into ``model`` and logs what was skipped.

    Args:
        model: the network to initialise (modified in place and returned).
        path: a ``torch.save``d state dict, or a dict holding one under ``key`` (``"model"`` is tried when ``key`` is
            None and the file holds a full training checkpoint).
        key: entry of the checkpoint dict that holds the state dict.
        exclude_vars: a regular expression of model names to keep fresh (see :func:`load_matching_state_dict`).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if no tensor matched (the checkpoint is of an unrelated network).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"pretrained checkpoint {path} does not exist; run the pretraining first")
    loaded, skipped = load_matching_state_dict(model, read_model_state(path, key), exclude_vars=exclude_vars)
    if not loaded:
        raise ValueError(f"{path}: no tensor matches the network by name and shape; skipped {sorted(skipped)[:5]}")
    logger.info("initialised %d of %d tensors from %s", len(loaded), len(model.state_dict()), path)
    for name, why in skipped.items():
        logger.info("skipped %s: %s", name, why)
    return model
