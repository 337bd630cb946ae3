"""The accounting of continuous traffic: pure, no asyncio, no I/O (the pacer: app/core/traffic.py).

Latencies are kept as a histogram of rounded buckets, as Locust's stats.py keeps response times:
a percentile is a walk over at most a few hundred buckets however many journeys were counted,
so a status costs well under a millisecond with hours of traffic behind it (a sorted reservoir
of 20,000 values cost 9-18 ms per status on the window's loop). The rounding keeps two
significant digits (0.1 ms below 10 ms, 1 ms below 100 ms, ...): a p95 of 12.3 ms reads 12 ms.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from app.core.traffic_model import StepSecond, TrafficSecond

OK, FAILED, SKIPPED = "ok", "failed", "skipped"  # a step result's status (simulation.StepResult)
StepOutcome = tuple[str, str, float | None]  # step name, status, latency (ms)
StepIncident = tuple[str, str]  # the incident a hop said it was under: id, kind


def bucket(ms: float) -> float:
    """`ms` rounded to two significant digits (at least to 0.1 ms)."""
    if ms < 10:
        return round(ms, 1)
    digits = math.floor(math.log10(ms)) - 1
    return float(round(ms, -digits))


class Histogram:
    """Latencies in rounded buckets: count, add, percentile (nearest rank)."""

    __slots__ = ("_counts", "count")

    def __init__(self) -> None:
        self._counts: Counter[float] = Counter()
        self.count = 0

    def add(self, ms: float) -> None:
        self._counts[bucket(max(0.0, ms))] += 1
        self.count += 1

    def merge(self, other: Histogram) -> None:
        self._counts.update(other._counts)
        self.count += other.count

    def items(self) -> list[tuple[float, int]]:
        """(bucket value in ms, how many), for a reader that keeps buckets of its own."""
        return list(self._counts.items())

    def percentile(self, pct: float) -> float | None:
        """The latency `pct` % of the values are at or below; None when there are none."""
        if not self.count:
            return None
        rank = max(1, math.ceil(self.count * pct / 100))
        seen = 0
        for value in sorted(self._counts):
            seen += self._counts[value]
            if seen >= rank:
                return value
        return max(self._counts)


@dataclass
class StepTally:
    """One step's outcomes: ok, failed, and never reached (an earlier step failed)."""

    ok: int = 0
    failed: int = 0
    not_reached: int = 0
    latency: Histogram = field(default_factory=Histogram)
    incident: StepIncident | None = None  # the last one its hops were under

    def count(
        self,
        status: str,
        latency_ms: float | None,
        latency: bool = True,
        incident: StepIncident | None = None,
    ) -> None:
        if incident is not None:
            self.incident = incident
        if status == SKIPPED:
            self.not_reached += 1
            return
        if status == OK:
            self.ok += 1
        else:
            self.failed += 1
        if latency and latency_ms is not None:
            self.latency.add(latency_ms)

    def merge(self, other: StepTally) -> None:
        self.ok += other.ok
        self.failed += other.failed
        self.not_reached += other.not_reached
        self.latency.merge(other.latency)
        self.incident = other.incident or self.incident

    def value(self, name: str) -> StepSecond:
        incident_id, kind = self.incident or ("", "")
        return StepSecond(
            name,
            self.ok,
            self.failed,
            _or_zero(self.latency.percentile(50)),
            _or_zero(self.latency.percentile(95)),
            self.not_reached,
            incident_id,
            kind,
        )


@dataclass
class Tally:
    """Journeys (and their steps) that ended in one wall-clock second, or since a start."""

    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    latency: Histogram = field(default_factory=Histogram)
    steps: dict[str, StepTally] = field(default_factory=dict)

    def journey(
        self,
        ok: bool,
        latency_ms: float,
        steps: Iterable[tuple[str, str, float | None]],
        latency: bool = True,
        incidents: Mapping[str, StepIncident] | None = None,
    ) -> None:
        """A journey that ended: its outcome, latency, each step's (name, status, ms), and the
        incident each step's hop said it was under (by step name). Without `latency`, the counts
        only: the latencies come later, a second's at a time (`merge_latencies`), since a
        histogram's add is most of what counting costs."""
        if ok:
            self.completed += 1
        else:
            self.failed += 1
        if latency:
            self.latency.add(latency_ms)
        incidents = incidents or {}
        for name, status, ms in steps:
            self.steps.setdefault(name, StepTally()).count(status, ms, latency, incidents.get(name))

    def merge_latencies(self, other: Tally, steps: bool = True) -> None:
        """Add `other`'s latencies (a closed second's) to these counts' histograms."""
        self.latency.merge(other.latency)
        if steps:
            for name, step in other.steps.items():
                self.steps.setdefault(name, StepTally()).latency.merge(step.latency)

    def merge(self, other: Tally) -> None:
        """Add `other`'s counts (another stream's, the same second)."""
        self.completed += other.completed
        self.failed += other.failed
        self.cancelled += other.cancelled
        self.latency.merge(other.latency)
        for name, step in other.steps.items():
            self.steps.setdefault(name, StepTally()).merge(step)

    def cut(self) -> None:
        """A journey cut short (a stop's drain bound, a broken service): cancelled, not failed."""
        self.cancelled += 1

    def lost(self) -> None:
        """A journey that ended without a result (a closed session, a bug): failed."""
        self.failed += 1

    def step_values(self, order: list[str]) -> tuple[StepSecond, ...]:
        names = order + [n for n in self.steps if n not in order]
        return tuple(self.steps[n].value(n) for n in names if n in self.steps)

    def p(self, pct: float) -> float:
        return _or_zero(self.latency.percentile(pct))

    def second(self, at: float, order: list[str]) -> TrafficSecond:
        """This tally as one point of a series (its steps in `order` first)."""
        values = self.step_values(order)
        return TrafficSecond(
            at, self.completed, self.failed, self.p(50), self.p(95), values, self.cancelled
        )


def _or_zero(value: float | None) -> float:
    return 0.0 if value is None else value
