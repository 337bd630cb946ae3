"""What the window's run views show of a run, in order, grid and timeline in the same frame.

The bridge relays the core's events as they happen, and its cell model (app/ui/cells.py) has
every service event applied at once; a phase event and the cells that show its effect may still
arrive a loop turn or a refresh apart. The stage turns those signals into frames:

- a phase event waits for the next cells (bounded), so the grid and the timeline change in the
  same frame;
- frames are applied on the next turn of the loop, so a burst of cell changes is one frame;
- runs started and finished go through the same queue: results never overtake the phases; a
  run's progress (customers done) rides with the last frame still queued, the latest replacing
  an earlier one, so "120 / 500" never shows before the simulate phase has started on screen.

It holds nothing back. Demo pacing is the core's: each phase pauses where no cell is changing
(docs/architecture.md, "A Run Journey, phase by phase"), so what the views show is always what
is true, at the pace of the run itself.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

PORTS_WAIT_MS = 120  # a phase event waits this long at most for its cells (bridge: 40 ms)


@dataclass
class Frame:
    phases: list[Any] = field(default_factory=list)  # PhaseEvent
    ports: list[Any] | None = None  # PortInfo: the cell model's cells
    run_started: tuple[str, str] | None = None
    run_finished: Any = None  # RunResult
    progress: Any = None  # the latest RunProgress by the time the frame is shown


class Stage(QObject):
    """Feeds the window's run views; `applied` fires after every frame (tests, benchmarks)."""

    runStarted = Signal(str, str)
    phaseEvent = Signal(object)
    portsChanged = Signal(list)
    runFinished = Signal(object)
    runProgress = Signal(object)
    applied = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue: deque[Frame] = deque()
        self._waiting: list[Any] = []  # phase events waiting for their snapshot
        self._shown = False  # the first cells appear at once
        self._progress: Any = None  # a RunProgress that came after phase events still waiting
        self._ports_wait = QTimer(self)
        self._ports_wait.setSingleShot(True)
        self._ports_wait.setInterval(PORTS_WAIT_MS)
        self._ports_wait.timeout.connect(self._flush_waiting)
        # Frames are applied on the next loop turn, not inside the signal: a burst of 40
        # service events (a switch) coalesces into one frame instead of 40 grid repaints.
        self._soon = QTimer(self)
        self._soon.setSingleShot(True)
        self._soon.setInterval(0)
        self._soon.timeout.connect(self._pump)

    # -- input (bridge signals) ----------------------------------------------------------------
    def bind(self, bridge: Any) -> None:
        """The bridge's run signals in; the run views bind the stage's signals out. The cells
        arrive from the bridge's cell model (app/ui/cells.py), events already applied."""
        bridge.portsChanged.connect(self.on_ports)
        bridge.phaseEvent.connect(self.on_phase)
        bridge.runStarted.connect(self.on_run_started)
        bridge.runFinished.connect(self.on_run_finished)
        bridge.runProgress.connect(self.on_progress)

    def on_run_started(self, run_id: str, company: str) -> None:
        self._flush_waiting()
        self._push(Frame(run_started=(run_id, company)))

    def on_phase(self, event: Any) -> None:
        self._waiting.append(event)
        if not self._ports_wait.isActive():
            self._ports_wait.start()

    def on_progress(self, event: Any) -> None:
        """A run's progress never overtakes the phase events before it (the simulate phase's
        start): it rides with the frame still to be shown, the latest replacing an earlier
        one, and is shown at once when the screen is up to date."""
        if self._waiting:
            self._progress = event
        elif self._queue:
            self._queue[-1].progress = event
        else:
            self.runProgress.emit(event)

    def on_ports(self, ports: list[Any]) -> None:
        self._ports_wait.stop()
        frame = Frame(phases=self._waiting, ports=ports)
        frame.progress, self._progress = self._progress, None
        self._waiting = []
        tail = self._queue[-1] if self._queue else None
        if (
            tail is not None
            and not frame.phases
            and tail.ports is not None
            and not tail.run_finished
        ):
            tail.ports = ports  # not shown yet: the latest cells replace it
            return
        self._push(frame)

    def on_run_finished(self, result: Any) -> None:
        self._flush_waiting()
        self._push(Frame(run_finished=result))

    def idle(self) -> bool:
        return not self._queue and not self._waiting and not self._soon.isActive()

    # -- output --------------------------------------------------------------------------------
    def _flush_waiting(self) -> None:
        self._ports_wait.stop()
        if self._waiting:
            self._push(Frame(phases=self._waiting, progress=self._progress))
            self._waiting, self._progress = [], None

    def _push(self, frame: Frame) -> None:
        self._queue.append(frame)
        if not self._shown:  # the very first snapshot: the grid appears at once
            self._pump()
        elif not self._soon.isActive():
            self._soon.start()

    def _pump(self) -> None:
        while self._queue:
            self._apply(self._queue.popleft())

    def _apply(self, frame: Frame) -> None:
        if frame.run_started is not None:
            self.runStarted.emit(*frame.run_started)
        if frame.ports is not None:
            self._shown = True
            self.portsChanged.emit(frame.ports)
        for event in frame.phases:
            self.phaseEvent.emit(event)
        if frame.progress is not None:
            self.runProgress.emit(frame.progress)
        if frame.run_finished is not None:
            self.runFinished.emit(frame.run_finished)
        self.applied.emit()
