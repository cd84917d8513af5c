from __future__ import annotations

from ignite.engine import Engine

from medkit.handlers.collector import RunCollector


class _Sum(RunCollector):
    def __init__(self) -> None:
        self.values: list[int] = []
        self.totals: list[int] = []

    def _reset(self, engine: Engine) -> None:
        self.values.clear()

    def _collect(self, engine: Engine) -> None:
        self.values.append(engine.state.output)

    def __call__(self, engine: Engine) -> None:
        self.totals.append(sum(self.values))


def test_each_run_collects_from_nothing_and_writes_once():
    engine = Engine(lambda engine, batch: batch)
    handler = _Sum()
    handler.attach(engine)
    engine.run([1, 2, 3])
    engine.run([4, 5])
    assert handler.totals == [6, 9]
