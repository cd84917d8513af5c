"""Gradient-norm clipping for MONAI's SupervisedTrainer, which has no clipping option of its own."""

from __future__ import annotations

import logging

import torch
from ignite.engine import Engine
from monai.engines.utils import IterationEvents

__all__ = ["GradientClipHandler"]

logger = logging.getLogger(__name__)


class GradientClipHandler:
    """Clips the global gradient norm of the trainer's network between ``backward()`` and ``optimizer.step()``.

    It runs on MONAI's ``IterationEvents.BACKWARD_COMPLETED``, which the trainer fires right before the optimizer
    step. Under AMP the gradients are first unscaled through the trainer's ``GradScaler`` so ``max_norm`` applies to
    the true gradients (the scaler then skips its own unscale). The norm before clipping is stored as
    ``engine.state.grad_norm`` for logging.

    Recurrent networks at large learning rates (the BiLSTM at Adam 1e-2) occasionally take one exploding step that
    throws away what they have learned; clipping to a norm of about 1 prevents that without slowing normal steps.

    Args:
        max_norm: largest allowed L2 norm of all gradients together; ``None`` or ``0`` disables clipping.
        norm_type: the p of the p-norm (``float("inf")`` for the max norm).
    """

    def __init__(self, max_norm: float | None = 1.0, norm_type: float = 2.0) -> None:
        if max_norm is not None and max_norm < 0:
            raise ValueError(f"max_norm must be >= 0 or None, got {max_norm}")
        self.max_norm = max_norm
        self.norm_type = norm_type

    def attach(self, engine: Engine) -> None:
        if not self.max_norm:
            logger.info("gradient clipping disabled")
            return
        if not engine.has_event_handler(self, IterationEvents.BACKWARD_COMPLETED):
            engine.add_event_handler(IterationEvents.BACKWARD_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        scaler = getattr(engine, "scaler", None)
        if scaler is not None and getattr(engine, "amp", False):
            scaler.unscale_(engine.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(engine.network.parameters(), self.max_norm, norm_type=self.norm_type)
        engine.state.grad_norm = float(norm)
