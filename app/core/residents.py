"""Resident journeys: every journey whose services run, each a value with an identity that owns
its services, until a Run Journey replaces it or it is stopped (docs/architecture.md, "Several
companies in one pool")."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from app.core.journeys import Journey
from app.core.model import CleanupStrategy


def new_journey_id() -> str:
    return f"j-{os.urandom(4).hex()}"


@dataclass(frozen=True)
class Resident:
    """A journey that runs: its services are the records whose `journey_id` is `id`."""

    id: str
    journey: Journey
    run_id: str  # the run that made it resident
    started_at: float  # wall clock
    keys: frozenset[str]  # its services' keys

    @property
    def company_key(self) -> str:
        return self.journey.company_key

    def replaced_by(self, journey: Journey, strategy: CleanupStrategy) -> bool:
        """Does a run of `journey` with `strategy` replace this one (preserving aside)?"""
        if strategy is CleanupStrategy.COMPANY:
            return self.company_key == journey.company_key
        if strategy is CleanupStrategy.JOURNEY_TYPE:
            return self.journey.industry_type.casefold() == journey.industry_type.casefold()
        return True


class Residents:
    """The resident journeys, oldest first. Used from the event loop's thread only."""

    def __init__(self) -> None:
        self._by_id: dict[str, Resident] = {}

    def __iter__(self) -> Iterator[Resident]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, journey_id: str) -> Resident | None:
        return self._by_id.get(journey_id)

    def newest(self) -> Resident | None:
        return next(reversed(self._by_id.values()), None)

    def owner(self, key: str) -> Resident | None:
        """The resident journey service `key` serves, if any."""
        return next((r for r in self._by_id.values() if key in r.keys), None)

    def add(self, resident: Resident) -> None:
        self._by_id[resident.id] = resident

    def remove(self, journey_id: str) -> Resident | None:
        return self._by_id.pop(journey_id, None)

    def clear(self) -> None:
        self._by_id.clear()
