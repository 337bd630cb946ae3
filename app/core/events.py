"""A small Qt-free event bus: the core emits, views and the API subscribe."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.core.model import Phase

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhaseEvent:
    run_id: str
    phase: Phase
    status: str  # "started" | "finished" | "failed"
    started_at: float
    duration_ms: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceEvent:
    key: str
    state: str  # ServiceState value, or "stopped" / "failed"
    port: int | None = None
    pid: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class LogEvent:
    source: str
    message: str
    level: str = "info"
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class RunEvent:
    run_id: str
    status: str  # "started" | "finished" | "failed"
    detail: str = ""


Event = PhaseEvent | ServiceEvent | LogEvent | RunEvent
Handler = Callable[[Any], None]


class EventBus:
    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler) if handler in self._handlers else None

    def emit(self, event: Event) -> None:
        for handler in list(self._handlers):
            try:
                handler(event)
            except Exception:  # a broken view must not break a run
                log.exception("event handler failed for %r", event)

    def log(self, source: str, message: str, level: str = "info") -> None:
        self.emit(LogEvent(source, message, level))
