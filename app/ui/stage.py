"""What the window shows of a run, in order and at a pace an audience can follow.

The bridge relays the core's events as they happen: a phase event and the port snapshot that
shows its effect arrive up to a refresh apart, and with demo pacing the core pauses *after* a
phase's work (docs/architecture.md, "A Run Journey, phase by phase"), so a launch's `starting`
cells would be gone before anyone saw them. The stage turns those signals into frames:

- a phase event waits for the next port snapshot (bounded), so the grid and the timeline change
  in the same frame;
- with pacing, a frame that shows something new (a phase starting, cells `stopping` or
  `starting` appearing) stays on screen for the pacing time before the next one is applied;
  snapshots that show nothing new are coalesced, so the queue stays short.

Runs started and finished go through the same queue: results never overtake the phases. A
run's progress (customers done) rides with the last frame still queued, the latest replacing
an earlier one, so "120 / 500" never shows before the simulate phase has started on screen.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

PORTS_WAIT_MS = 120  # a phase event waits this long at most for its snapshot (bridge: 40 ms)
HELD_STATES = frozenset({"stopping", "starting"})  # transient states an audience should see
# A service event that moves a cell into a held state patches the latest snapshot at once: a
# fork-server service stops in ≈50 ms, often between two snapshots (docs/performance.md).
# (The window reaches the core only through the bridge: a state is made from the cell's own
# state type, never imported.)
EVENT_STATES = frozenset({"starting", "stopping"})


@dataclass
class Frame:
    phases: list[Any] = field(default_factory=list)  # PhaseEvent
    ports: list[Any] | None = None  # PortInfo snapshot
    states: frozenset[str] = frozenset()  # the snapshot's states, computed once
    run_started: tuple[str, str] | None = None
    run_finished: Any = None  # RunResult
    progress: Any = None  # the latest RunProgress by the time the frame is shown


class Stage(QObject):
    """Feeds the window's views; `applied` fires after every frame (tests, benchmarks)."""

    runStarted = Signal(str, str)
    phaseEvent = Signal(object)
    portsChanged = Signal(list)
    runFinished = Signal(object)
    runProgress = Signal(object)
    applied = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pacing_ms = 0
        self._queue: deque[Frame] = deque()
        self._waiting: list[Any] = []  # phase events waiting for their snapshot
        self._shown_states: frozenset[str] = frozenset()
        self._shown_held: dict[int, str] = {}  # port → its held state, as on screen
        self._latest: list[Any] = []  # PortInfo
        self._progress: Any = None  # a RunProgress that came after phase events still waiting
        self._hold = QTimer(self)
        self._hold.setSingleShot(True)
        self._hold.timeout.connect(self._pump)
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
        """The bridge's run signals in; the run views bind the stage's signals out."""
        bridge.portsChanged.connect(self.on_ports)
        bridge.phaseEvent.connect(self.on_phase)
        bridge.runStarted.connect(self.on_run_started)
        bridge.runFinished.connect(self.on_run_finished)
        bridge.runProgress.connect(self.on_progress)
        bridge.serviceEvent.connect(self.on_service)

    def set_pacing_ms(self, ms: int) -> None:
        self.pacing_ms = max(0, int(ms))

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

    def on_service(self, event: Any) -> None:
        change = _value(event.change)
        if change not in EVENT_STATES or event.port is None or not self._latest:
            return
        patched = [
            replace(p, state=type(p.state)(change), key=event.key, pid=event.pid or p.pid)
            if p.port == event.port
            else p
            for p in self._latest
        ]
        self.on_ports(patched)

    def on_ports(self, ports: list[Any]) -> None:
        self._latest = ports
        self._ports_wait.stop()
        frame = Frame(phases=self._waiting, ports=ports, states=_states(ports))
        frame.progress, self._progress = self._progress, None
        self._waiting = []
        tail = self._queue[-1] if self._queue else None
        if (
            tail is not None
            and not frame.phases
            and tail.ports is not None
            and not tail.run_finished
            and tail.states == frame.states
        ):
            tail.ports = ports  # nothing new to see: the latest snapshot replaces it
            return
        self._push(frame)

    def on_run_finished(self, result: Any) -> None:
        self._flush_waiting()
        self._push(Frame(run_finished=result))

    def idle(self) -> bool:
        busy = self._hold.isActive() or self._soon.isActive()
        return not self._queue and not self._waiting and not busy

    # -- output --------------------------------------------------------------------------------
    def _flush_waiting(self) -> None:
        self._ports_wait.stop()
        if self._waiting:
            self._push(Frame(phases=self._waiting, progress=self._progress))
            self._waiting, self._progress = [], None

    def _push(self, frame: Frame) -> None:
        if self._hold.isActive() and not self._queue and self._extends_hold(frame):
            self._apply(frame)  # the held picture, growing: the hold goes on
            return
        self._queue.append(frame)
        if not self._shown_states:  # the very first snapshot: the grid appears at once
            self._pump()
        elif not self._hold.isActive() and not self._soon.isActive():
            self._soon.start()

    def _pump(self) -> None:
        while self._queue:
            frame = self._queue.popleft()
            hold = self._apply(frame)
            if hold and self.pacing_ms:
                self._hold.start(self.pacing_ms)
                return

    def _extends_hold(self, frame: Frame) -> bool:
        """A snapshot that only moves more cells into the states on screen and none out of a
        held one. The core signals one service per turn of its loop, so a phase's cells turn
        `stopping` over several frames; the first one's hold must not queue the rest behind it."""
        if frame.ports is None or frame.phases or frame.run_started or frame.run_finished:
            return False
        if not frame.states <= self._shown_states:
            return False
        now = {p.port: str(p.state) for p in frame.ports}
        return all(now.get(port) == state for port, state in self._shown_held.items())

    def _apply(self, frame: Frame) -> bool:
        """Emit one frame; True when it shows something the audience has not seen yet."""
        new = False
        if frame.run_started is not None:
            self.runStarted.emit(*frame.run_started)
        if frame.ports is not None:
            new = bool((frame.states - self._shown_states) & HELD_STATES)
            self._shown_states = frame.states
            self._shown_held = {
                p.port: str(p.state) for p in frame.ports if str(p.state) in HELD_STATES
            }
            self.portsChanged.emit(frame.ports)
        for event in frame.phases:
            self.phaseEvent.emit(event)
            new = new or _value(event.status) == "started"
        if frame.progress is not None:
            self.runProgress.emit(frame.progress)
        if frame.run_finished is not None:
            self.runFinished.emit(frame.run_finished)
        self.applied.emit()
        return new


def _states(ports: list[Any]) -> frozenset[str]:
    return frozenset(str(state) for state in {p.state for p in ports})  # StrEnum: str is its value


def _value(x: Any) -> str:
    return str(getattr(x, "value", x))
