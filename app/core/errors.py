"""One error family for the core; every message is meant to be shown to an operator as is."""

from __future__ import annotations


class CoreError(Exception):
    """Base of every error the core raises on purpose."""


class ValidationError(CoreError):
    """Input (a journey, a request) is not acceptable; nothing was changed."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class BusyError(CoreError):
    """A run is already in progress."""


class PoolExhaustedError(CoreError):
    """The port pool cannot fit what was asked."""


class ServiceStartError(CoreError):
    """A service process did not become ready."""


class StateLockedError(CoreError):
    """Another panel already uses this state directory."""
