"""Shared value types: frozen dataclasses and string enums."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from app.core.traffic_model import TrafficStatus


class PortState(StrEnum):
    FREE = "free"
    STARTING = "starting"
    ALLOCATED = "allocated"
    STOPPING = "stopping"
    STALE = "stale"
    FOREIGN = "foreign"


class ServiceState(StrEnum):
    """A service record's own state; the port grid derives its cell state from it (and the OS).

    starting -> running -> stopping, or starting -> stopping (a launch that failed or was
    cancelled). A record that leaves stopping is forgotten: its port is free again. "stale" is not
    a state of the record but what the OS scan says of a running one (docs/architecture.md,
    "Port states")."""

    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"


_NEXT_STATES: dict[ServiceState, frozenset[ServiceState]] = {
    ServiceState.STARTING: frozenset({ServiceState.RUNNING, ServiceState.STOPPING}),
    ServiceState.RUNNING: frozenset({ServiceState.STOPPING}),
    ServiceState.STOPPING: frozenset(),
}


class TroubleKind(StrEnum):
    """What is wrong with a running service the panel watches (app/core/watch.py)."""

    EXITED = "exited"  # its process is gone (the pidfd said so at once)
    NOT_ANSWERING = "not answering"  # /health gave no answer within the watch's bound
    NOT_LISTENING = "not listening"  # alive, but its port refuses connections
    NOT_OURS = "not ours"  # something answers on its port, but not with its identity
    GAVE_UP = "gave up"  # automatic restarts used up their limit


@dataclass(frozen=True)
class Trouble:
    kind: TroubleKind
    since: float  # time.monotonic() when it was seen
    detail: str = ""  # e.g. "code -9", or the restart limit

    def text(self, now: float) -> str:
        """How the grid, the journey map and the traffic status say it."""
        if self.kind is TroubleKind.NOT_ANSWERING:
            return f"not answering for {max(0.0, now - self.since):.0f} s"
        return f"{self.kind.value} ({self.detail})" if self.detail else self.kind.value


class CleanupStrategy(StrEnum):
    """Which resident journeys a Run Journey replaces (docs/architecture.md, "Several
    companies in one pool")."""

    ALL = "all"  # every customer service (the replaced system's behaviour, the default)
    COMPANY = "company"  # only the same company's journey
    JOURNEY_TYPE = "journeyType"  # only journeys of the same industryType


class Reuse(StrEnum):
    """What a Run Journey does with a service whose step is unchanged."""

    RESTART = "restart"  # stop it and start it again, as the replaced system visibly does
    UNCHANGED = "unchanged"  # keep it running (same pid): the phases count it `kept`


class Mode(StrEnum):
    """How a run drives its customers (the replaced system's three endpoints)."""

    SINGLE = "single"
    MULTIPLE = "multiple"
    BATCH_CHAINED = "batch-chained"


class Phase(StrEnum):
    STOP = "stop"
    WAIT = "wait"
    SWEEP = "sweep"
    LAUNCH = "launch"
    SIMULATE = "simulate"


_NOT_KEY = re.compile(r"[^A-Za-z0-9_]")
KEY_HASH_CHARS = 10  # of a non-ASCII name's SHA-256: 40 bits, no two real companies share one


def sanitize_company(company: str) -> str:
    """Company as used in service keys, [A-Za-z0-9_] only, the same in every process.

    An ASCII name keeps the key it always had (anything outside [A-Za-z0-9_] becomes '_'). Any
    other name is folded to ASCII where a letter has a base letter ('Café' -> 'Cafe'), and gets a
    short hash of its NFC form: 'Рога и копыта' and '株式会社テスト' each have their own key, and a
    name typed composed or decomposed is one company (docs/architecture.md, "One record per
    service")."""
    name = company.strip()
    if name.isascii():
        return _NOT_KEY.sub("_", name)
    nfc = unicodedata.normalize("NFC", name)
    folded = unicodedata.normalize("NFKD", nfc).encode("ascii", "ignore").decode("ascii")
    digest = hashlib.sha256(nfc.encode("utf-8", "surrogatepass")).hexdigest()[:KEY_HASH_CHARS]
    return f"{_NOT_KEY.sub('_', folded)}_{digest}"


def service_key(service_name: str, company: str) -> str:
    return f"{service_name}-{sanitize_company(company)}"


@dataclass(frozen=True)
class ServiceSpec:
    """What to run: one step's service for one company (for one resident journey)."""

    service_name: str
    company: str
    essential: bool = False
    journey_id: str = ""

    @property
    def key(self) -> str:
        return service_key(self.service_name, self.company)


@dataclass(frozen=True)
class ServiceRecord:
    """The one record of a service the panel runs: from the moment its port is reserved until
    its process is gone and the port is bindable again.

    The service manager owns these records; the ledger row (what a later panel needs to prove a
    process is ours) and the port grid's cell are derived from them, never kept beside them.
    Before the spawn returns, `pid` is None: the port is reserved but no process exists yet."""

    key: str
    service_name: str
    company: str
    port: int
    run_id: str
    essential: bool = False
    state: ServiceState = ServiceState.STARTING
    pid: int | None = None
    create_time: float | None = None
    token: str = ""  # the service's identity token, answered by its /health
    cmdline_token: str = ""  # the token on the process's command line: proof it is ours
    started_at: float | None = None  # wall clock, once spawned
    journey_id: str = ""  # the resident journey it serves ("" for an essential service)

    def to(self, state: ServiceState) -> ServiceRecord:
        """The record in its next state; an illegal transition is a bug, never silently taken."""
        if state not in _NEXT_STATES[self.state]:
            raise ValueError(f"{self.key}: {self.state.value} -> {state.value} is not a transition")
        return replace(self, state=state)

    def spawned(self, pid: int, create_time: float, cmdline_token: str, at: float) -> ServiceRecord:
        """The process exists now: who it is, and how a later panel proves it is ours."""
        if self.state is not ServiceState.STARTING or self.pid is not None:
            raise ValueError(f"{self.key}: spawned twice or after starting")
        return replace(
            self, pid=pid, create_time=create_time, cmdline_token=cmdline_token, started_at=at
        )


@dataclass(frozen=True)
class Listener:
    """A process listening on a TCP port of the pool (from one OS scan)."""

    port: int
    pid: int | None
    name: str
    create_time: float | None
    address: str = "127.0.0.1"
    # Other sockets listening on the same port on another address (e.g. 127.0.0.2): shown,
    # never a reason to call the primary one stale (docs/architecture.md, "Port states").
    others: tuple[str, ...] = ()


@dataclass(frozen=True)
class PortInfo:
    """One cell of the port grid."""

    port: int
    state: PortState
    key: str | None = None
    service_name: str | None = None
    company: str | None = None
    pid: int | None = None
    essential: bool = False
    process_name: str | None = None
    started_at: float | None = None
    others: tuple[str, ...] = ()  # other listeners on this port (another address), as text
    trouble: str = ""  # what is wrong with our service here, in words ("exited (code -9)")
    journey_id: str = ""  # the resident journey its service serves
    reserved_for: str | None = None  # the company whose reserved port this is
    grown: bool = False  # a port of a block the pool grew into
    gone: bool = False  # stale, and its process has exited: a sweep releases it, nothing to stop


@dataclass(frozen=True)
class StopReport:
    """What stopping a set of services did."""

    stopped: tuple[str, ...] = ()
    killed: tuple[str, ...] = ()  # needed SIGKILL after the grace

    @property
    def count(self) -> int:
        return len(self.stopped)


@dataclass(frozen=True)
class ServiceSummary:
    service_name: str
    key: str
    port: int
    pid: int | None


@dataclass(frozen=True)
class JourneySummary:
    """What the window's Journeys list, the journey map and GET /api/journeys show of one
    resident journey."""

    id: str
    company: str
    domain: str
    industry: str
    steps: tuple[tuple[str, str], ...]  # (step name, service name), in order
    services: tuple[ServiceSummary, ...]
    started_at: float
    traffic: TrafficStatus | None  # its stream's status, when it has one

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "companyName": self.company,
            "domain": self.domain,
            "industryType": self.industry,
            "steps": [{"stepName": s, "serviceName": n} for s, n in self.steps],
            "services": [
                {"serviceName": s.service_name, "key": s.key, "port": s.port, "pid": s.pid}
                for s in self.services
            ],
            "startedAt": self.started_at,
            "traffic": self.traffic.to_json() if self.traffic is not None else None,
        }
