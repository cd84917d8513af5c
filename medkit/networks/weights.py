"""Reading pretrained torchvision weights from torch's hub cache, never downloading them.

medkit runs offline: a pretrained network reads the file torchvision itself would have cached,
``$TORCH_HOME/hub/checkpoints/<file>``, and fails with a message that says what to fetch and where to put it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

__all__ = ["TORCHVISION_URL", "hub_checkpoint_path", "load_hub_checkpoint"]

logger = logging.getLogger(__name__)

TORCHVISION_URL = "https://download.pytorch.org/models/"


def hub_checkpoint_path(filename: str) -> Path:
    """Where torch's hub cache keeps ``filename``: ``$TORCH_HOME/hub/checkpoints/<filename>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def load_hub_checkpoint(filename: str, description: str) -> dict[str, torch.Tensor]:
    """Loads the state dict ``filename`` from the hub cache on the CPU (``weights_only=True``).

    Args:
        filename: torchvision's file name, e.g. ``"resnet18-f37072fd.pth"``.
        description: what the weights are, for the messages (e.g. ``"ImageNet ResNet-18"``).

    Raises:
        FileNotFoundError: if the file is missing; the message gives the path, the download URL and ``weights=None``.
    """
    path = hub_checkpoint_path(filename)
    if not path.is_file():
        raise FileNotFoundError(
            f"{description} weights not found at {path}. medkit never downloads at run time: fetch "
            f"{TORCHVISION_URL}{filename} yourself and save it as {path} (the folder is $TORCH_HOME/hub/checkpoints), "
            f"or pass weights=None for random initialisation."
        )
    logger.info("loading %s weights from %s", description, path)
    return torch.load(path, map_location="cpu", weights_only=True)
