"""A test-only training handler for the SIGTERM test: from ``iteration`` on it writes ``marker`` and sleeps after each
iteration, so the test can signal the process while it is inside an epoch."""

from __future__ import annotations

import time
from pathlib import Path

from ignite.engine import Engine, Events


class SlowAfter:
    def __init__(self, iteration: int, marker: str, seconds: float = 1.0) -> None:
        self.iteration, self.marker, self.seconds = iteration, Path(marker), seconds

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if engine.state.iteration >= self.iteration:
            self.marker.write_text(str(engine.state.iteration))
            time.sleep(self.seconds)
