"""Shared value types: frozen dataclasses and string enums."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class PortState(StrEnum):
    FREE = "free"
    STARTING = "starting"
    ALLOCATED = "allocated"
    STOPPING = "stopping"
    STALE = "stale"
    FOREIGN = "foreign"


class ServiceState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"


class Phase(StrEnum):
    STOP = "stop"
    WAIT = "wait"
    SWEEP = "sweep"
    LAUNCH = "launch"
    SIMULATE = "simulate"


def sanitize_company(company: str) -> str:
    """Company as used in service keys: anything outside [A-Za-z0-9_] becomes '_'."""
    return re.sub(r"[^A-Za-z0-9_]", "_", company.strip())


def service_key(service_name: str, company: str) -> str:
    return f"{service_name}-{sanitize_company(company)}"


@dataclass(frozen=True)
class ServiceSpec:
    """What to run: one step's service for one company."""

    service_name: str
    company: str
    essential: bool = False

    @property
    def key(self) -> str:
        return service_key(self.service_name, self.company)


@dataclass(frozen=True)
class ServiceInfo:
    """A service process the panel spawned and still tracks."""

    key: str
    service_name: str
    company: str
    port: int
    pid: int
    create_time: float
    token: str
    run_id: str
    essential: bool
    state: ServiceState
    started_at: float


@dataclass(frozen=True)
class Listener:
    """A process listening on a TCP port of the pool (from one OS scan)."""

    port: int
    pid: int | None
    name: str
    create_time: float | None


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


@dataclass(frozen=True)
class StopReport:
    """What stopping a set of services did."""

    stopped: tuple[str, ...] = ()
    killed: tuple[str, ...] = ()  # needed SIGKILL after the grace

    @property
    def count(self) -> int:
        return len(self.stopped)
