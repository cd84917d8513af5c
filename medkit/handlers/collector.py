"""A base for ignite handlers that gather something from every iteration of a run and use it once the run completes."""

from __future__ import annotations

from ignite.engine import Engine, Events

from medkit.bundle.distributed import gather_lists, is_distributed, is_main_process

__all__ = ["RunCollector"]


class RunCollector:
    """Attaches ``_reset`` at ``STARTED``, ``_collect`` at every ``ITERATION_COMPLETED`` and the handler itself at
    ``COMPLETED``, so each run (each evaluation) starts from nothing. Subclasses implement the three.

    Under torchrun each rank collects its share of the data; at ``COMPLETED`` the list attributes named in
    ``collected`` are gathered from every rank (in rank order) and rank 0 alone runs the handler, so a report or
    table covers the whole dataset once.
    """

    #: the list attributes ``_collect`` fills, gathered from every rank under torchrun
    collected: tuple[str, ...] = ()

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.COMPLETED, self._complete)

    def _complete(self, engine: Engine) -> None:
        if is_distributed():
            for name in self.collected:
                setattr(self, name, gather_lists(getattr(self, name)))
            if not is_main_process():
                return
        self(engine)

    def _reset(self, engine: Engine) -> None:
        raise NotImplementedError

    def _collect(self, engine: Engine) -> None:
        raise NotImplementedError

    def __call__(self, engine: Engine) -> None:
        raise NotImplementedError
