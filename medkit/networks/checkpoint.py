"""Reading network weights from the files MONAI's ``CheckpointSaver`` writes.

A ``CheckpointSaver`` with one entry (``model.pt``) saves the network's state dict itself; one with several entries
(``model_final.pt``: model, optimizer, scheduler, trainer) saves a dict that holds it under ``"model"``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

__all__ = ["load_checkpoint", "read_model_state"]


def read_model_state(
    path: str | os.PathLike, key: str | None = None, map_location: str | torch.device = "cpu"
) -> Mapping[str, torch.Tensor]:
    """The state dict in the checkpoint at ``path`` (``torch.load`` with ``weights_only=True``).

    Args:
        path: a state dict, or a dict of several states.
        key: the entry that holds the state dict; when None, ``"model"`` is taken if the file is a training checkpoint
            that has one, else the whole file.
        map_location: passed to ``torch.load``.
    """
    state = torch.load(path, map_location=map_location, weights_only=True)
    if key is not None:
        return state[key]
    if "model" in state and isinstance(state["model"], Mapping):
        return state["model"]
    return state


def load_checkpoint(network: nn.Module, path: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """Loads the checkpoint at ``path`` into ``network`` strictly (every tensor must fit) and returns ``network``.

    Raises:
        FileNotFoundError: if ``path`` is missing.
        ValueError: if its tensors do not fit ``network`` (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        network.load_state_dict(read_model_state(path, map_location=map_location))
    except RuntimeError as exc:
        raise ValueError(f"checkpoint {path} does not fit {type(network).__name__}: {exc}") from None
    return network
