"""Stop training after a wall-clock budget."""

from __future__ import annotations

import logging
import time

from ignite.engine import Engine, Events
from ignite.handlers import TimeLimit

from medkit.bundle.distributed import is_distributed, is_main_process, reduce_sum

__all__ = ["TimeLimitHandler"]

logger = logging.getLogger(__name__)


class TimeLimitHandler:
    """Attaches ignite's :class:`~ignite.handlers.TimeLimit` so a bundle can stop after ``minutes`` of training.

    The engine terminates cleanly after the iteration that crosses the limit, so ``COMPLETED`` handlers (final
    checkpoint, reports) still run. ``minutes`` of ``None`` disables the limit. Under torchrun the ranks agree after
    each iteration (rank 0's clock decides), so they stop at the same iteration and none waits for the others.
    """

    def __init__(self, minutes: float | None) -> None:
        if minutes is not None and minutes <= 0:
            raise ValueError(f"minutes must be positive or None, got {minutes}")
        self.minutes = minutes

    def attach(self, engine: Engine) -> None:
        if self.minutes is None:
            return
        limit = max(1, round(self.minutes * 60))
        if is_distributed():
            engine.add_event_handler(Events.STARTED, self._started)
            engine.add_event_handler(Events.ITERATION_COMPLETED, self._check_all_ranks, limit)
        else:
            engine.add_event_handler(Events.ITERATION_COMPLETED, TimeLimit(limit_sec=limit))
        logger.info("training stops after %s minutes", self.minutes)

    def _started(self, engine: Engine) -> None:
        self._start = time.perf_counter()

    def _check_all_ranks(self, engine: Engine, limit: float) -> None:
        over = time.perf_counter() - self._start > limit if is_main_process() else False
        if reduce_sum(float(over))[0] > 0:
            logger.info("reached the time limit of %s minutes: stopping", self.minutes)
            engine.terminate()
