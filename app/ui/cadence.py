"""`Cadence`: one clock for the window's periodic work, one job per tick, each in turn.

Separate repeating timers drift into step. Qt aligns coarse timers to shared boundaries, and a
late timer is due again from when it fired, so after one stall every periodic job fires in the
same turn of the loop and their repaints follow in the next. The pool refresh, the traffic chart
and the timeline chart, each four times a second, fired within 5 ms of each other during a
40-service switch and stalled the loop for their sum (docs/performance.md, "Window").

One clock runs one job per tick, so two jobs never share a turn of the loop. With n jobs it ticks
every period / n: each job still runs once a period, and the jobs are spread evenly over it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, Qt, QTimer

PERIOD_MS = 250  # each job runs four times a second


@dataclass(frozen=True)
class Job:
    owner: int  # the address of the QObject whose destruction ends the job
    run: Callable[[], None]


class Cadence(QObject):
    def __init__(self, period_ms: int = PERIOD_MS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.period_ms = period_ms
        self.jobs: list[Job] = []
        self._turn = 0
        self._timer = QTimer(self)
        # Precise: a coarse timer may be moved up to 5 % to share a wake-up with other timers.
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)

    @property
    def tick_ms(self) -> int:
        return self.period_ms // max(len(self.jobs), 1)

    def add(self, owner: QObject, run: Callable[[], None]) -> None:
        """Run `run` once a period until `owner` is destroyed or `remove` is called."""
        key = _address(owner)
        self.jobs.append(Job(key, run))
        owner.destroyed.connect(lambda *_args: self._drop(key))
        self._retime()

    def remove(self, owner: QObject) -> None:
        self._drop(_address(owner))

    def _drop(self, owner: int) -> None:
        self.jobs = [job for job in self.jobs if job.owner != owner]
        self._retime()

    def _retime(self) -> None:
        if not self.jobs:
            self._timer.stop()
            return
        self._timer.setInterval(self.tick_ms)
        if not self._timer.isActive():
            self._timer.start()

    def _tick(self) -> None:
        if not self.jobs:
            return
        self._turn = (self._turn + 1) % len(self.jobs)
        self.jobs[self._turn].run()


def _address(owner: QObject) -> int:
    """The C++ object's address: unlike id() of its Python wrapper, it is the object that sends
    `destroyed`, and it is not reused before that."""
    return int(shiboken6.getCppPointer(owner)[0])


def shared() -> Cadence:
    """The application's clock (one event loop, one clock), created on first use."""
    app = QCoreApplication.instance()
    if app is None:
        raise RuntimeError("the window's clock needs a QApplication")
    clock = app.findChild(Cadence, "windowCadence")
    if clock is None:
        clock = Cadence(parent=app)
        clock.setObjectName("windowCadence")
    return clock
