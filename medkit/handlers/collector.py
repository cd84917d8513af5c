"""A base for ignite handlers that gather something from every iteration of a run and use it once the run completes."""

from __future__ import annotations

from ignite.engine import Engine, Events

__all__ = ["RunCollector"]


class RunCollector:
    """Attaches ``_reset`` at ``STARTED``, ``_collect`` at every ``ITERATION_COMPLETED`` and the handler itself at
    ``COMPLETED``, so each run (each evaluation) starts from nothing. Subclasses implement the three."""

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.COMPLETED, self)

    def _reset(self, engine: Engine) -> None:
        raise NotImplementedError

    def _collect(self, engine: Engine) -> None:
        raise NotImplementedError

    def __call__(self, engine: Engine) -> None:
        raise NotImplementedError
