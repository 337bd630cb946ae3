"""Incidents as the panel keeps them: the operator's request (checked whole before anything
changes), the incident in effect on one service, and the event that says it started or ended.

Pure values (docs/architecture.md, "Incidents and scenarios"); the kinds, their parameters and
bounds are the step service's own (app/service/incident_kinds.py), so both sides check the
same rules. The incidents table and the control channel are app/core/incidents.py.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from app.core.errors import Problem, ValidationError
from app.service.incident_kinds import TAG_ORDER, IncidentKind, IncidentSpec, parse_spec

EVERY_SERVICE = "*"  # every customer service of a resident journey (the newest by default)
TARGET_FIELDS = ("service", "journey")
MAX_NAME = 140  # a service key: a service name and a company


def new_incident_id() -> str:
    return f"inc-{os.urandom(4).hex()}"


@dataclass(frozen=True)
class IncidentRequest:
    """Where an incident goes (a service name, a key, or "*"; in which resident journey) and
    what it does."""

    service: str
    journey: str | None
    spec: IncidentSpec


def parse_request(data: object, at: str = "") -> IncidentRequest:
    """The request `data` describes; ValidationError with every problem (field paths prefixed
    by `at`) otherwise."""
    if not isinstance(data, dict):
        raise ValidationError(Problem(at.rstrip("."), "an incident must be a JSON object"))
    problems = []
    service, journey = data.get("service"), data.get("journey")
    if not isinstance(service, str) or not 0 < len(service.strip()) <= MAX_NAME:
        problems.append(
            Problem(f"{at}service", 'the service must be a service name, its key or "*"')
        )
    if journey is not None and (not isinstance(journey, str) or not journey.strip()):
        problems.append(Problem(f"{at}journey", "the journey must be a resident journey's id"))
    spec, found = parse_spec(data, also=TARGET_FIELDS, at=at)
    problems += [Problem(f, m) for f, m in found]
    if problems or spec is None:
        raise ValidationError(problems)
    assert isinstance(service, str)
    return IncidentRequest(service.strip(), journey.strip() if journey else None, spec)


@dataclass(frozen=True)
class Incident:
    """One incident in effect on one service (its record's key, port and pid when it began)."""

    id: str
    key: str
    service_name: str
    company: str
    journey_id: str
    port: int
    pid: int
    spec: IncidentSpec
    started_at: float  # wall clock
    ends_at: float  # wall clock
    ends_mono: float  # time.monotonic(): when it ends here and in the service
    scenario: str = ""  # the scenario run that started it, if any

    @property
    def kind(self) -> IncidentKind:
        return self.spec.kind

    def remaining_s(self, now: float | None = None) -> float:
        return max(0.0, self.ends_mono - (time.monotonic() if now is None else now))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "service": self.key,
            "serviceName": self.service_name,
            "company": self.company,
            "journey": self.journey_id or None,
            "port": self.port,
            "pid": self.pid,
            **self.spec.to_json(),
            "startedAt": self.started_at,
            "endsAt": self.ends_at,
            "remainingS": round(self.remaining_s(), 1),
            "scenario": self.scenario or None,
        }

    def label(self) -> str:
        """ "errors on PaymentService-ShopNow (60 % fail with 503 unavailable)"."""
        return f"{self.kind.value} on {self.key} ({self.spec.summary()})"


def headline(incidents: Iterable[Incident]) -> Incident | None:
    """Of one service's incidents, the one that names it (the order spans use)."""
    by_kind = {i.kind: i for i in incidents}
    return next((by_kind[k] for k in TAG_ORDER if k in by_kind), None)


class IncidentChange(StrEnum):
    STARTED = "started"
    ENDED = "ended"


class EndReason(StrEnum):
    EXPIRED = "expired"  # its duration is over
    CLEARED = "cleared"  # the operator ended it (DELETE, Clear, incident clear)
    SERVICE_STOPPED = "service stopped"  # Run Journey, Stop All, a restart, a sweep
    SCENARIO_STOPPED = "scenario stopped"
    REPLACED = "replaced"  # a scenario's next step of the same kind on the same service
    CLOSING = "the panel closing"


@dataclass(frozen=True)
class IncidentEvent:
    change: IncidentChange
    incident: Incident
    reason: str = ""  # ENDED: an EndReason's value
