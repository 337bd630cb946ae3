"""Alerts on cleanup failures: what failed (port, pid, service), what the panel did, and what the
operator can do (docs/architecture.md, "Metrics and alerts").

Raised by the service manager (a port not freed after the stop grace, a kill that failed, a
foreign listener in a launch's way) and by the Core (the pool at or above 90 % used). Each one
is logged, counted in the metrics (app/core/metrics.py listens to `CoreEvents.alert`), emitted
for the window's banner, listed at `GET /api/alerts` and acknowledged there. The list is
bounded: the newest `LIMIT` are kept.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from app.core.events import CoreEvents, LogLevel

log = logging.getLogger(__name__)
LIMIT = 200  # alerts kept; older ones leave the list (their counts stay in the metrics)
POOL_ALERT_AT = 0.90  # the pool's share in use that raises POOL_NEARLY_FULL, once per crossing


class AlertKind(StrEnum):
    PORT_NOT_FREED = "port_not_freed"  # our process exited, its port stayed unbindable
    KILL_FAILED = "kill_failed"  # a process survived SIGKILL (or could not be signalled)
    FOREIGN_LISTENER = "foreign_listener"  # something not ours holds a port a launch wanted
    POOL_NEARLY_FULL = "pool_nearly_full"  # POOL_ALERT_AT of the pool's ports in use


class AlertChange(StrEnum):
    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"  # the condition ended (the pool fell below the mark again)


@dataclass(frozen=True)
class Alert:
    """One alert. `message` is the three parts in one sentence each: what failed, what the
    panel did, what the operator can do."""

    id: str
    at: float  # wall clock
    kind: AlertKind
    failed: str
    did: str
    remedy: str
    port: int | None = None
    pid: int | None = None
    service: str = ""
    acknowledged: bool = False

    @property
    def message(self) -> str:
        return " ".join(f"{_sentence(part)}." for part in (self.failed, self.did, self.remedy))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "kind": self.kind.value,
            "message": self.message,
            "port": self.port,
            "pid": self.pid,
            "service": self.service or None,
            "acknowledged": self.acknowledged,
        }


@dataclass(frozen=True)
class AlertEvent:
    change: AlertChange
    alert: Alert


class Alerts:
    """The bounded list of alerts, oldest first; used from the event loop's thread only."""

    def __init__(self, events: CoreEvents, limit: int = LIMIT) -> None:
        self._events = events
        self._list: deque[Alert] = deque(maxlen=limit)
        self._ids = itertools.count(1)
        self._pool_alert: Alert | None = None  # raised and not yet cleared

    def raise_(
        self,
        kind: AlertKind,
        failed: str,
        did: str,
        remedy: str,
        *,
        port: int | None = None,
        pid: int | None = None,
        service: str = "",
    ) -> Alert:
        alert = Alert(
            f"a-{next(self._ids)}", time.time(), kind, failed, did, remedy, port, pid, service
        )
        self._list.append(alert)
        log.warning("alert %s (%s): %s", alert.id, kind.value, alert.message)
        self._events.say("alert", alert.message, LogLevel.ERROR)
        self._events.alert.emit(AlertEvent(AlertChange.RAISED, alert))
        return alert

    def list(self) -> list[Alert]:
        return list(self._list)

    def snapshot(self) -> tuple[Alert, ...]:
        """The alerts now (a frozen value for the window's banner), oldest first."""
        return tuple(self._list)

    def unacknowledged(self) -> tuple[Alert, ...]:
        return tuple(a for a in self._list if not a.acknowledged)

    def ack(self, alert_id: str) -> Alert | None:
        """Mark `alert_id` acknowledged; None when no listed alert has that id."""
        for i, alert in enumerate(self._list):
            if alert.id == alert_id:
                if not alert.acknowledged:
                    alert = self._list[i] = replace(alert, acknowledged=True)
                    self._events.alert.emit(AlertEvent(AlertChange.ACKNOWLEDGED, alert))
                return alert
        return None

    def check_pool(self, used: int, size: int) -> Alert | None:
        """Raise POOL_NEARLY_FULL when the pool crosses POOL_ALERT_AT, once: not again at
        every scan while it stays there, but again after it fell below and crossed anew."""
        full = size > 0 and used >= POOL_ALERT_AT * size
        if full and self._pool_alert is None:
            self._pool_alert = self.raise_(
                AlertKind.POOL_NEARLY_FULL,
                f"the port pool is {used * 100 // size} % used ({used} of {size} ports)",
                "the panel still launches into the ports left, and grows the pool if allowed",
                "stop journeys that are not needed (Journeys list, POST /api/journeys/{id}/stop)"
                ", widen BIZOBS_PORTS or set BIZOBS_PORTS_MAX",
            )
            return self._pool_alert
        if not full and self._pool_alert is not None:
            cleared, self._pool_alert = self._pool_alert, None
            self._events.alert.emit(AlertEvent(AlertChange.CLEARED, cleared))
        return None


def _sentence(text: str) -> str:
    """A part as a sentence of its own: "the panel started …" → "The panel started …"."""
    return text[:1].upper() + text[1:]
