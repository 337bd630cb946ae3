"""Typed, Qt-free signals: the core emits, the window's bridge, the API and the CLI connect.

One signal per kind of event, each carrying one frozen dataclass whose statuses are StrEnums.
A handler that raises is logged and skipped: a broken view must never break a run (this is
why the signal is our own few lines and not psygnal's, which aborts the emission on the first
failing callback).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Generic, TypeVar

from app.core.incident_model import IncidentEvent
from app.core.model import Phase
from app.core.traffic_model import TrafficStatus

if TYPE_CHECKING:  # alerts.py emits through these signals: it imports this module
    from app.core.alerts import AlertEvent

log = logging.getLogger(__name__)
T = TypeVar("T")


class PhaseStatus(StrEnum):
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"


class RunStatus(StrEnum):
    STARTED = "started"
    FINISHED = "finished"  # every phase done (customers may still have hit injected errors)
    FAILED = "failed"  # a phase failed; the run's services were rolled back
    CANCELLED = "cancelled"  # Stop All or the panel closing cancelled it


class ServiceChange(StrEnum):
    """What happened to a service: its record's state, or how it ended."""

    STARTING = "starting"  # port reserved and process spawned, not yet ready
    RUNNING = "running"  # answered /health with its own identity
    STOPPING = "stopping"  # SIGTERM sent
    STOPPED = "stopped"  # exited after SIGTERM, port bindable: forgotten
    KILLED = "killed"  # needed SIGKILL after the stop grace: forgotten
    EXITED = "exited"  # died on its own while running: its port is stale until the sweep
    STALE = "stale"  # released by a sweep: forgotten
    FAILED = "failed"  # a launch that did not become ready
    TROUBLE = "trouble"  # running, but exited or not answering (detail: what, in words)
    RECOVERED = "recovered"  # answers again with its own identity


class LogLevel(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class PhaseEvent:
    run_id: str
    phase: Phase
    status: PhaseStatus
    started_at: float
    duration_ms: float = 0.0  # the whole phase, its demo-pacing pause included
    counts: dict[str, int] = field(default_factory=dict)
    # Of which the demo-pacing pause; on STARTED the pause the phase will take (0: none, it is
    # empty or pacing is off). docs/architecture.md, "A Run Journey, phase by phase".
    paced_ms: float = 0.0

    @property
    def work_ms(self) -> float:
        """The phase's own work, without its pause."""
        return max(0.0, self.duration_ms - self.paced_ms)


@dataclass(frozen=True)
class ServiceEvent:
    key: str
    change: ServiceChange
    port: int | None = None
    pid: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class LogEvent:
    source: str
    message: str
    level: LogLevel = LogLevel.INFO
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class RunEvent:
    run_id: str
    status: RunStatus
    company: str = ""
    detail: str = ""
    mode: str = ""  # the run's Mode value (the metrics count runs per mode)
    # On FINISHED/FAILED/CANCELLED: the RunResult (typed loosely here: runs.py imports us).
    result: object | None = None


@dataclass(frozen=True)
class RunProgress:
    """Customers through a run's simulate phase so far (app/core/progress.py throttles them):
    the first at 0 done, at most ten a second, the last at `done == total`."""

    run_id: str
    done: int
    total: int
    failed: int  # of those done: a step failed (injected errors included)

    @property
    def finished(self) -> bool:
        return self.done >= self.total

    def to_json(self) -> dict[str, int]:
        return {"done": self.done, "total": self.total, "failed": self.failed}


class Signal(Generic[T]):
    """Handlers are called in connection order, synchronously, on the emitter's thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._handlers: list[Callable[[T], object]] = []

    def connect(self, handler: Callable[[T], object]) -> Callable[[], None]:
        """Returns the function that disconnects it again."""
        self._handlers.append(handler)
        return lambda: self.disconnect(handler)

    def disconnect(self, handler: Callable[[T], object]) -> None:
        if handler in self._handlers:
            self._handlers.remove(handler)

    def emit(self, event: T) -> None:
        for handler in list(self._handlers):
            try:
                handler(event)
            except Exception:  # a broken view must not break a run
                log.exception("%s handler failed for %r", self.name, event)


class CoreEvents:
    """Every signal the core emits."""

    def __init__(self) -> None:
        self.phase: Signal[PhaseEvent] = Signal("phase")
        self.service: Signal[ServiceEvent] = Signal("service")
        self.log: Signal[LogEvent] = Signal("log")
        self.run: Signal[RunEvent] = Signal("run")
        # While a run's customers go through: done / total, failed so far (throttled).
        self.progress: Signal[RunProgress] = Signal("progress")
        # Once a second while traffic runs (and once when it stops): counts and the series.
        self.traffic: Signal[TrafficStatus] = Signal("traffic")
        # An incident started or ended (app/core/incidents.py): counted, listed, charted.
        self.incident: Signal[IncidentEvent] = Signal("incident")
        # An alert raised, acknowledged or cleared (app/core/alerts.py): the window's banner.
        self.alert: Signal[AlertEvent] = Signal("alert")

    def say(self, source: str, message: str, level: LogLevel = LogLevel.INFO) -> None:
        self.log.emit(LogEvent(source, message, level))
