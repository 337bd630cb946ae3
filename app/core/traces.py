"""The traces of continuous traffic the window can show: the latest, the slowest and the failed
journeys, each bounded (docs/architecture.md, "Traffic").

A journey's result is kept as it is (its steps and their span facts: what the waterfall
draws); nothing is copied or serialised on the hop's path, and each add is a deque append and,
for the slowest, one heap push — constant work per journey whatever the rate.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from app.core.simulation import CustomerResult

LATEST = 200
SLOWEST = 20
FAILED = 50


class TraceKind(StrEnum):
    LATEST = "latest"
    SLOWEST = "slowest"
    FAILED = "failed"


@dataclass(frozen=True, order=True)
class KeptTrace:
    """One journey of traffic: when it ended, whose, and its result."""

    at: float  # wall clock: when it ended
    company: str = field(compare=False)
    journey_id: str = field(compare=False)
    result: CustomerResult = field(compare=False, repr=False)


class TraceKeeper:
    """Bounded lists of one traffic stream's journeys. Used from the event loop's thread."""

    def __init__(self) -> None:
        self._latest: deque[KeptTrace] = deque(maxlen=LATEST)
        self._failed: deque[KeptTrace] = deque(maxlen=FAILED)
        self._slowest: list[tuple[float, int, KeptTrace]] = []  # a min-heap by latency
        self._order = itertools.count()  # ties: the heap never compares two traces

    def add(self, company: str, journey_id: str, result: CustomerResult) -> None:
        kept = KeptTrace(time.time(), company, journey_id, result)
        self._latest.append(kept)
        if not result.ok:
            self._failed.append(kept)
        entry = (result.latency_ms, next(self._order), kept)
        if len(self._slowest) < SLOWEST:
            heapq.heappush(self._slowest, entry)
        elif entry[0] > self._slowest[0][0]:
            heapq.heapreplace(self._slowest, entry)

    def get(self, kind: TraceKind) -> list[KeptTrace]:
        """Newest first; the slowest: slowest first."""
        if kind is TraceKind.SLOWEST:
            return [k for _, _, k in sorted(self._slowest, reverse=True)]
        chosen = self._failed if kind is TraceKind.FAILED else self._latest
        return list(reversed(chosen))

    def clear(self) -> None:
        self._latest.clear()
        self._failed.clear()
        self._slowest.clear()


def merged(keepers: list[TraceKeeper], kind: TraceKind, limit: int) -> list[KeptTrace]:
    """Several streams' traces as one list, in the order `kind` has."""
    found = [k for keeper in keepers for k in keeper.get(kind)]
    if kind is TraceKind.SLOWEST:
        found.sort(key=lambda k: k.result.latency_ms, reverse=True)
    else:
        found.sort(key=lambda k: k.at, reverse=True)
    return found[:limit]
