"""Every error the project raises on purpose, in one family; each message is meant to be shown to
an operator as is."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class CoreError(Exception):
    """Base of every error raised on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (a JSON path such as `steps[0].serviceName`, or ""
    for the input as a whole) and what, in words an operator reads (no JSON field names)."""

    field: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class ValidationError(CoreError):
    """Input (a journey, a request) is not acceptable; nothing was changed."""

    def __init__(self, problems: Iterable[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem("", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("; ".join(p.message for p in self.problems))

    @property
    def messages(self) -> list[str]:
        return [p.message for p in self.problems]


class JourneyFileError(CoreError):
    """A journey file cannot be read, or holds no JSON object."""


class ScenarioFileError(CoreError):
    """A scenario file cannot be read, or holds no JSON."""


class BusyError(CoreError):
    """A run is already in progress."""


class NoJourneyError(CoreError):
    """Continuous traffic needs a running journey, and none is running."""


class RunConflictError(CoreError):
    """A run cannot work with the journeys that stay resident (a shared service, a preserved
    company); nothing was stopped."""


class ClientGoneError(CoreError):
    """A queued request's caller went away before its turn: it is dropped unstarted."""


class UnknownServiceError(CoreError):
    """No running service of ours has that name or key."""


class IncidentConflictError(CoreError):
    """An incident cannot start now: one of its kind is in effect on that service, the service
    is broken, or a scenario runs already; nothing was changed."""


class IncidentControlError(CoreError):
    """A service did not carry out a control message (it did not answer, or refused)."""


class PoolExhaustedError(CoreError):
    """The port pool cannot fit what was asked."""


class ServiceStartError(CoreError):
    """A service process did not become ready."""


class PortInUseError(ServiceStartError):
    """The service could not bind its port: something took it after the probe said free."""


class StateLockedError(CoreError):
    """Another panel already uses this state directory."""


class StateDatabaseError(CoreError):
    """The state database cannot be used now (locked by another process, unwritable, disk full)."""


class SettingsError(CoreError, ValueError):
    """A setting from the environment or the command line cannot be used."""


class ApiBindError(CoreError):
    """The control API cannot listen where it was asked to."""
