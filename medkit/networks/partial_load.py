"""Initialising a network from a checkpoint of a related one: every tensor whose name and shape match is copied.

Used to fine-tune a segmentation U-Net from a colorization-pretrained U-Net of the same widths: the encoder and decoder
weights carry over, while the first convolution (1 grey vs 3 RGB input channels) and the head (3 RGB vs C class
outputs) keep their fresh initialisation.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import torch
from torch import nn

from medkit.networks.checkpoint import read_model_state

__all__ = ["load_matching_state_dict", "load_pretrained"]

logger = logging.getLogger(__name__)


def load_matching_state_dict(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor]
) -> tuple[list[str], dict[str, str]]:
    """Copies into ``model`` every tensor of ``state_dict`` whose name and shape match one of the model's.

    Parameters and buffers (such as batch-norm statistics) are both considered. A ``module.`` prefix (DataParallel)
    on the checkpoint keys is removed first.

    Returns:
        ``(loaded, skipped)``: the names that were copied, and for every other name (from either side) why it was
        skipped, e.g. ``"shape (8, 1, 3, 3) in checkpoint vs (8, 3, 3, 3) in model"`` or ``"not in checkpoint"``.
    """
    own = model.state_dict()
    incoming = {k.removeprefix("module."): v for k, v in state_dict.items()}
    loaded, skipped, update = [], {}, {}
    for name, value in incoming.items():
        if name not in own:
            skipped[name] = "not in model"
        elif tuple(value.shape) != tuple(own[name].shape):
            skipped[name] = f"shape {tuple(value.shape)} in checkpoint vs {tuple(own[name].shape)} in model"
        else:
            update[name] = value
            loaded.append(name)
    for name in own:
        if name not in incoming:
            skipped[name] = "not in checkpoint"
    model.load_state_dict(update, strict=False)
    return loaded, skipped


def load_pretrained(model: nn.Module, path: str | os.PathLike, key: str | None = None) -> nn.Module:
    """Loads the matching tensors of the checkpoint at ``path`` into ``model`` and logs what was skipped.

    Args:
        model: the network to initialise (modified in place and returned).
        path: a ``torch.save``d state dict, or a dict holding one under ``key`` (``"model"`` is tried when ``key`` is
            None and the file holds a full training checkpoint).
        key: entry of the checkpoint dict that holds the state dict.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if no tensor matched (the checkpoint is of an unrelated network).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"pretrained checkpoint {path} does not exist; run the pretraining first")
    loaded, skipped = load_matching_state_dict(model, read_model_state(path, key))
    if not loaded:
        raise ValueError(f"{path}: no tensor matches the network by name and shape; skipped {sorted(skipped)[:5]}")
    logger.info("initialised %d of %d tensors from %s", len(loaded), len(model.state_dict()), path)
    for name, why in skipped.items():
        logger.info("skipped %s: %s", name, why)
    return model
