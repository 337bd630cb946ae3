"""Values that describe continuous traffic: what the traffic generator reports each second.

Pure data (no asyncio, no I/O): the window's charts, the API and the CLI read them; the
generator in `app.core.traffic` produces them (docs/architecture.md, "Traffic")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StepSecond:
    """One step's outcomes within one second (or since start, in a status)."""

    step_name: str
    ok: int = 0
    failed: int = 0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    not_reached: int = 0  # an earlier step failed: this one was never called (not a failure)
    # The incident on the step's service (app/core/incidents.py): in a status, the one in
    # effect now; in a second of the series, the one its hops said they were under.
    incident_id: str = ""
    incident_kind: str = ""

    def to_json(self) -> dict[str, Any]:
        incident = {"id": self.incident_id, "kind": self.incident_kind}
        return {
            "stepName": self.step_name,
            "ok": self.ok,
            "failed": self.failed,
            "notReached": self.not_reached,
            "p50Ms": round(self.p50_ms, 2),
            "p95Ms": round(self.p95_ms, 2),
            "incident": incident if self.incident_id else None,
        }


@dataclass(frozen=True)
class TrafficSecond:
    """The journeys that ended within one wall-clock second: one point of each chart."""

    at: float  # the second's start, wall clock
    completed: int = 0
    failed: int = 0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    steps: tuple[StepSecond, ...] = ()
    cancelled: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "p50Ms": round(self.p50_ms, 2),
            "p95Ms": round(self.p95_ms, 2),
            "perStep": [s.to_json() for s in self.steps],
        }


@dataclass(frozen=True)
class TrafficStatus:
    """Counts since start, the rate asked for and achieved, and the rolling per-second series
    (oldest first, at most `SERIES_SECONDS` long).

    Every journey sent ends exactly once: `sent == completed + failed + cancelled + in_flight`.
    Journeys the pacer could not send (the machine is behind, or the in-flight bound is hit)
    are `skipped`, never sent. `steps` are the current journey's, since it became current."""

    running: bool = False
    rate: float = 0.0  # journeys per second asked for
    achieved_rate: float = 0.0  # journeys per second sent over the last `BEHIND_WINDOW_S`
    behind: bool = False  # journeys were skipped in the last BEHIND_WINDOW_S of running
    paused: str = ""  # why no journey is sent now (a switch, a broken service); "" = not paused
    sent: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0  # cut short: a stop's drain bound, a service that broke under them
    skipped: int = 0
    in_flight: int = 0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    steps: tuple[StepSecond, ...] = ()
    series: tuple[TrafficSecond, ...] = field(default=(), repr=False)
    reason: str = ""  # why traffic stopped when the operator did not ask (a failed Run Journey)
    journey_id: str = ""  # the resident journey traffic goes through (the newest stream's)
    company: str = ""  # that journey's company
    steps_since: float = 0.0  # wall clock: when the current journey's step counts began
    # One status per stream (a resident journey's own traffic); the counts above sum them.
    streams: tuple[TrafficStatus, ...] = field(default=(), repr=False)

    def to_json(self, with_series: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "running": self.running,
            "rate": self.rate,
            "achievedRate": round(self.achieved_rate, 2),
            "behind": self.behind,
            "paused": self.paused or False,
            "sent": self.sent,
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "skipped": self.skipped,
            "inFlight": self.in_flight,
            "p50Ms": round(self.p50_ms, 2),
            "p95Ms": round(self.p95_ms, 2),
            "perStep": [s.to_json() for s in self.steps],
            "perStepSince": self.steps_since,
            "journey": self.journey_id or None,
            "company": self.company,
            "reason": self.reason,
        }
        if self.streams or not self.journey_id:
            out["streams"] = [s.to_json() for s in self.streams]
        if with_series:
            out["series"] = [s.to_json() for s in self.series]
        return out


SERIES_SECONDS = 300  # five minutes of per-second points for the charts
BEHIND_WINDOW_S = 10.0  # `behind` and the achieved rate describe the last seconds this long
