"""Continuous traffic per resident journey: one stream (a `Traffic`, app/core/traffic.py) each,
started, held and stopped on its own; what clients read sums them (docs/architecture.md,
"Traffic" and "Several companies in one pool").

The summed status keeps the meaning a one-stream client knows: counts and latencies over every
stream, the per-step figures and the paused reason of the newest stream, and a per-second series
merged from every stream's tallies; `streams` lists each stream's own status. A stream belongs to
a journey id; when a Run Journey replaces a journey, the new journey takes over its stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

from app.core.errors import NoJourneyError
from app.core.events import CoreEvents
from app.core.limits import MAX_TRAFFIC_IN_FLIGHT
from app.core.simulation import CustomerDone
from app.core.traces import LATEST, KeptTrace, TraceKind, merged
from app.core.traffic import (
    STOP_DRAIN_S,
    SWITCH_DRAIN_S,
    IncidentOf,
    SecondDone,
    Target,
    Traffic,
)
from app.core.traffic_model import TrafficSecond, TrafficStatus
from app.core.traffic_stats import Tally
from app.service.hop_client import HopClient


class TrafficStreams:
    """Owned by the Core; used from the event loop's thread only."""

    def __init__(
        self,
        events: CoreEvents,
        hops: Callable[[], HopClient],
        on_customer: CustomerDone | None = None,
    ) -> None:
        self._events = events
        self._hops = hops
        self._on_customer = on_customer
        self._streams: dict[str, Traffic] = {}  # journey id -> its stream, the newest last
        self.max_in_flight = MAX_TRAFFIC_IN_FLIGHT  # per stream
        # The incident in effect on a service, by key (the Core sets it: app/core/incidents.py).
        self.incident_of: IncidentOf = lambda _key: None
        # Where each stream's closed seconds are counted (the Core sets it: app/core/metrics.py).
        self.on_second: SecondDone | None = None

    # -- queries --------------------------------------------------------------------------------
    def get(self, journey_id: str) -> Traffic | None:
        return self._streams.get(journey_id)

    def traces(self, kind: TraceKind, limit: int = LATEST) -> list[KeptTrace]:
        """The latest, slowest or failed journeys of every stream (app/core/traces.py)."""
        return merged([t.traces for t in self._streams.values()], kind, limit)

    def live(self) -> list[Traffic]:
        return [t for t in self._streams.values() if t.running]

    @property
    def running(self) -> bool:
        return any(t.running for t in self._streams.values())

    @property
    def rate(self) -> float:
        return sum(t.rate for t in self.live())

    def status(self) -> TrafficStatus:
        """Every stream summed; one stream's status is its own (with `streams` listing it)."""
        statuses = [t.status() for t in self._streams.values()]
        live = [s for s, t in zip(statuses, self._streams.values(), strict=True) if t.running]
        if not statuses:
            return TrafficStatus()
        newest = live[-1] if live else statuses[-1]
        totals = Tally()
        for stream in self._streams.values():
            totals.merge(stream.totals)
        counted = live or statuses[-1:]
        return replace(
            newest,
            running=bool(live),
            rate=sum(s.rate for s in live) if live else newest.rate,
            achieved_rate=sum(s.achieved_rate for s in counted),
            behind=any(s.behind for s in counted),
            sent=sum(s.sent for s in statuses),
            completed=totals.completed,
            failed=totals.failed,
            cancelled=totals.cancelled,
            skipped=sum(s.skipped for s in statuses),
            in_flight=sum(s.in_flight for s in statuses),
            p50_ms=totals.p(50),
            p95_ms=totals.p(95),
            series=self._series(newest) if len(statuses) > 1 else newest.series,
            streams=tuple(replace(s, series=()) for s in statuses),
        )

    def _series(self, newest: TrafficStatus) -> tuple[TrafficSecond, ...]:
        """One point per second, each merged from every stream's tally of that second."""
        seconds: dict[float, Tally] = {}
        for stream in self._streams.values():
            for at, tally in stream.second_tallies().items():
                seconds.setdefault(at, Tally()).merge(tally)
        order = [s.step_name for s in newest.steps]
        return tuple(
            TrafficSecond(
                at, t.completed, t.failed, t.p(50), t.p(95), t.step_values(order), t.cancelled
            )
            for at, t in sorted(seconds.items())
        )

    # -- commands -------------------------------------------------------------------------------
    async def start(
        self, journey_id: str, rate: float, target: Target, seed: int | None = None
    ) -> TrafficStatus:
        """Start `journey_id`'s stream (or, running, set its rate)."""
        stream = self._streams.get(journey_id)
        if stream is None or not stream.running:
            stream = Traffic(
                self._events,
                self._hops,
                self._on_customer,
                self.max_in_flight,
                on_status=self._emit,
                journey_id=journey_id,
                incident_of=lambda key: self.incident_of(key),
                on_second=self._second,
            )
            self._streams.pop(journey_id, None)
            self._streams[journey_id] = stream
            await stream.start(rate, target, seed)
        else:
            await stream.set_rate(rate)
        return self.status()

    async def set_rate(self, journey_id: str, rate: float) -> TrafficStatus:
        stream = self._streams.get(journey_id)
        if stream is None or not stream.running:
            raise NoJourneyError(f"no traffic runs through journey {journey_id}")
        await stream.set_rate(rate)
        return self.status()

    async def stop(
        self, journey_id: str | None = None, reason: str = "", drain_s: float = STOP_DRAIN_S
    ) -> TrafficStatus:
        """Stop one stream, or every one (concurrently: Stop All is bounded by one drain)."""
        streams = [self._streams[journey_id]] if journey_id in self._streams else []
        if journey_id is None:
            streams = list(self._streams.values())
        await asyncio.gather(*(s.stop(reason, drain_s) for s in streams))
        return self.status()

    async def aclose(self) -> None:
        await self.stop(reason="the panel closing")

    def forget(self, journey_id: str) -> None:
        """A stopped journey's stream goes (its counts leave the totals)."""
        stream = self._streams.get(journey_id)
        if stream is not None and not stream.running:
            del self._streams[journey_id]

    def hold_now(self, key: str, reason: str, service: str) -> None:
        """Hold, at once, every stream whose chain goes through service `service`."""
        for stream in self.live():
            target = stream.target
            if target is not None and service in target.chain.keys:
                stream.hold_now(key, reason, service)

    async def hold(
        self, journey_ids: list[str], key: str, reason: str, drain_s: float = SWITCH_DRAIN_S
    ) -> None:
        streams = [self._streams[j] for j in journey_ids if j in self._streams]
        await asyncio.gather(*(s.hold(key, reason, drain_s) for s in streams))

    async def release(self, journey_id: str, key: str, target: Target | None = None) -> None:
        stream = self._streams.get(journey_id)
        if stream is not None:
            await stream.release(key, target)

    async def release_everywhere(self, key: str) -> None:
        await asyncio.gather(*(s.release(key) for s in self.live()))

    def move(self, old_id: str, new_id: str) -> None:
        """The journey `new_id` replaced `old_id`: it takes over its stream (now the newest)."""
        stream = self._streams.pop(old_id, None)
        if stream is not None:
            stream.journey_id = new_id
            self._streams.pop(new_id, None)
            self._streams[new_id] = stream

    def _second(self, company: str, services: dict[str, str], tally: Tally) -> None:
        if self.on_second is not None:
            self.on_second(company, services, tally)

    def _emit(self, _status: TrafficStatus) -> None:
        self._events.traffic.emit(self.status())
