"""Recompute BatchNorm running statistics with the current weights ("precise BN") before validation."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from itertools import islice
from typing import Any

import torch
from ignite.engine import Engine, Events
from torch import nn
from torch.optim.swa_utils import update_bn

__all__ = ["PreciseBNHandler"]

logger = logging.getLogger(__name__)


class PreciseBNHandler:
    """Replaces the BatchNorm running statistics of ``network`` by their exact average over ``data_loader``, computed
    with the current weights at the end of every ``interval``-th training epoch (Wu and Johnson, "Rethinking 'Batch'
    in BatchNorm", 2021, arXiv:2105.07576, section 3).

    During training, BatchNorm keeps an exponential moving average (momentum 0.1) of the batch statistics, so each
    estimate mixes statistics of weights from the last ~10 iterations. With few iterations per epoch and fast-changing
    weights, the eval-mode network then normalises with stale statistics. Attach this handler to the trainer before
    the ``ValidationHandler`` so that validation and the saved checkpoints see the recomputed statistics. It runs
    ``torch.optim.swa_utils.update_bn`` (a forward pass without gradients in train mode, cumulative average).

    Args:
        network: the model whose ``_BatchNorm`` layers are updated (others are untouched).
        data_loader: batches of training images, as dicts with ``image_key`` or as tensors.
        device: device the images are moved to (default: the network's).
        num_batches: use only the first ``num_batches`` batches (default: all).
        interval: run every ``interval`` epochs.
        image_key: key of the images in dict batches.
    """

    def __init__(
        self,
        network: nn.Module,
        data_loader: Iterable[Any],
        device: torch.device | str | None = None,
        num_batches: int | None = None,
        interval: int = 1,
        image_key: str = "image",
    ) -> None:
        if num_batches is not None and num_batches < 1:
            raise ValueError(f"num_batches must be >= 1 or None, got {num_batches}")
        if interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval}")
        self.network = network
        self.data_loader = data_loader
        self.device = device
        self.num_batches = num_batches
        self.interval = interval
        self.image_key = image_key

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.interval), self)

    def _images(self) -> Iterable[torch.Tensor]:
        for batch in islice(self.data_loader, self.num_batches):
            yield batch[self.image_key] if isinstance(batch, dict) else batch

    def __call__(self, engine: Engine | None = None) -> None:
        device = self.device
        if device is None:
            device = next((p.device for p in self.network.parameters()), None)
        update_bn(self._images(), self.network, device=device)
        logger.debug("BatchNorm statistics recomputed over %s batches", self.num_batches or "all")
