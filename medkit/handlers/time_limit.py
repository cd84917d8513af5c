"""Stop training after a wall-clock budget."""

from __future__ import annotations

import logging

from ignite.engine import Engine, Events
from ignite.handlers import TimeLimit

__all__ = ["TimeLimitHandler"]

logger = logging.getLogger(__name__)


class TimeLimitHandler:
    """Attaches ignite's :class:`~ignite.handlers.TimeLimit` so a bundle can stop after ``minutes`` of training.

    The engine terminates cleanly after the iteration that crosses the limit, so ``COMPLETED`` handlers (final
    checkpoint, reports) still run. ``minutes`` of ``None`` disables the limit.
    """

    def __init__(self, minutes: float | None) -> None:
        if minutes is not None and minutes <= 0:
            raise ValueError(f"minutes must be positive or None, got {minutes}")
        self.minutes = minutes

    def attach(self, engine: Engine) -> None:
        if self.minutes is None:
            return
        engine.add_event_handler(Events.ITERATION_COMPLETED, TimeLimit(limit_sec=max(1, round(self.minutes * 60))))
        logger.info("training stops after %s minutes", self.minutes)
