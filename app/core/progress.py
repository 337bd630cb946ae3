"""A run's progress through its simulate phase: customers done out of all, and how many
failed, as `RunProgress` events (docs/architecture.md, "A Run Journey, phase by phase").

Counting a customer costs one clock read and a comparison; an event goes out at most every
PROGRESS_INTERVAL_S (a 10,000-customer batch would otherwise emit 10,000 of them to the
window), plus the first one (nothing done yet) and the last one (all done), always.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from app.core.events import RunProgress

PROGRESS_INTERVAL_S = 0.1  # at most ten events a second


class ProgressMeter:
    def __init__(
        self,
        run_id: str,
        total: int,
        emit: Callable[[RunProgress], object],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.run_id = run_id
        self.total = total
        self.done = 0
        self.failed = 0
        self._emit = emit
        self._clock = clock
        self._due = 0.0

    def start(self) -> None:
        """The first event: nothing done yet (the window shows "0 / N" at once)."""
        self._send(self._clock())

    def count(self, ok: bool) -> None:
        """One customer through; an event when one is due, and always for the last."""
        self.done += 1
        self.failed += not ok
        if self.done >= self.total:
            self._send(0.0)
        elif (now := self._clock()) >= self._due:
            self._send(now)

    def _send(self, now: float) -> None:
        self._due = now + PROGRESS_INTERVAL_S
        self._emit(RunProgress(self.run_id, self.done, self.total, self.failed))
