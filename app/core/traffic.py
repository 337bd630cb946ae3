"""Continuous traffic: seeded customers sent through the running journey at a steady rate.

Open loop (docs/architecture.md, "Traffic"): sends follow a monotonic schedule, one every
1/rate seconds, whatever the answers do, so a slow chain shows as latency, not as a lower rate.
In-flight journeys are bounded: a send that would exceed the bound (or a slot the loop reached
too late) is skipped and counted, and the status says `behind`, instead of queueing without
bound. Every journey sent ends exactly once, as completed, failed or cancelled (cut short by a
stop's drain bound or a service that broke under it). Results are bucketed by the wall-clock
second they ended in; once a second the closed seconds join the rolling series and
`CoreEvents.traffic` carries a `TrafficStatus` to the window, the API and the CLI. The counting
itself is app/core/traffic_stats.py.

Commands (start, rate, hold, release, stop) are serialised: each runs to its end before the
next begins, so concurrent callers can never leave two pacers or a stopped series that grows.
A *hold* stops new sends for a reason (a Run Journey switching the services, a service that
exited or stopped answering); sends resume when the last hold is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from enum import StrEnum

from app.core.chain import Chain
from app.core.errors import Problem, ValidationError
from app.core.events import CoreEvents, LogLevel
from app.core.journeys import Journey
from app.core.limits import MAX_TRAFFIC_IN_FLIGHT, MAX_TRAFFIC_RATE, MIN_TRAFFIC_RATE
from app.core.model import service_key
from app.core.simulation import Customer, CustomerDone, CustomerResult, Simulator, customer_stream
from app.core.traces import TraceKeeper
from app.core.traffic_model import (
    BEHIND_WINDOW_S,
    SERIES_SECONDS,
    StepSecond,
    TrafficSecond,
    TrafficStatus,
)
from app.core.traffic_stats import Tally
from app.service.hop_client import HopClient
from app.service.protocol import Hop

STOP_DRAIN_S = 2.0  # Stop All and traffic stop: in-flight journeys get this long, then are cut
SWITCH_DRAIN_S = 5.0  # a Run Journey lets in-flight journeys end on the old services this long
CUT_WAIT_S = 2.0  # cancelled journeys end at once (their connections close); bounded anyway
MAX_BURST_S = 0.25  # a loop that wakes late sends the missed slots of up to this long, skips more
IncidentOf = Callable[[str], "tuple[str, str] | None"]  # service key -> (incident id, kind)
# A closed second: (company, step name -> service name, its tally).
SecondDone = Callable[[str, dict[str, str], Tally], None]
log = logging.getLogger(__name__)


class TrafficState(StrEnum):
    STOPPED = "stopped"
    RUNNING = "running"
    PAUSED = "paused"  # running, but held: a switch, or a service of the chain is broken


@dataclass(frozen=True)
class Target:
    """What traffic is sent through: the journey and its chain (app/core/chain.py)."""

    journey: Journey
    chain: Chain

    @property
    def hops(self) -> tuple[Hop, ...]:
        return self.chain.hops


def check_rate(rate: object) -> float:
    """The rate in journeys/s, or ValidationError (a bool, a string, NaN, inf, out of range)."""
    if isinstance(rate, bool) or not isinstance(rate, int | float):
        raise ValidationError(Problem("rate", "the rate must be a number of journeys per second"))
    value = float(rate)
    if not math.isfinite(value) or not MIN_TRAFFIC_RATE <= value <= MAX_TRAFFIC_RATE:
        raise ValidationError(
            Problem(
                "rate",
                f"the rate must be from {MIN_TRAFFIC_RATE:g} to {MAX_TRAFFIC_RATE:g} journeys "
                "per second",
            )
        )
    return value


def check_seed(seed: object) -> int | None:
    """The customers' seed (None: a random one), or ValidationError."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2**63:
        raise ValidationError(Problem("seed", "the seed must be a whole number from 0 to 2^63"))
    return seed


class Traffic:
    """Owned by the Core (created in open_core, closed on its exit stack before the services
    stop); used from the event loop's thread only."""

    def __init__(
        self,
        events: CoreEvents,
        hops: Callable[[], HopClient],
        on_customer: CustomerDone | None = None,
        max_in_flight: int = MAX_TRAFFIC_IN_FLIGHT,
        on_status: Callable[[TrafficStatus], None] | None = None,
        journey_id: str = "",
        incident_of: IncidentOf | None = None,
        on_second: SecondDone | None = None,
    ) -> None:
        self._events = events
        # Each closed second's tally, once (the metrics: app/core/metrics.py); never per journey.
        self._on_second = on_second
        # The incident in effect on a service (by key), shown with its step in the status.
        self._incident_of: IncidentOf = incident_of or (lambda _key: None)
        self._hops = hops
        self._on_customer = on_customer
        self._max_in_flight = max_in_flight
        # Where each status goes: the streams' aggregate (app/core/streams.py), or the bus.
        self._on_status = on_status or events.traffic.emit
        self.journey_id = journey_id
        self.traces = TraceKeeper()  # the latest, slowest and failed journeys, for the window
        self._lock = asyncio.Lock()  # one command at a time, each to its end
        self._running = False
        self.reason = ""  # why traffic stopped when nobody asked (a failed Run Journey)
        # Why sends are held, oldest first: key -> (reason, the service key it is about, if any).
        self._holds: dict[str, tuple[str, str | None]] = {}
        self._unheld = asyncio.Event()
        self._unheld.set()
        self._target: Target | None = None
        self._customers: Iterator[Customer] = iter(())
        self._pacer: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._reset(0.0)

    # -- commands ---------------------------------------------------------------------------
    async def start(self, rate: object, target: Target, seed: int | None = None) -> TrafficStatus:
        """Start (or, when running, change the rate of) traffic through `target`. A bad rate
        raises ValidationError and changes nothing."""
        value = check_rate(rate)
        async with self._lock:
            if self._running:
                return self._set_rate(value)
            self._reset(value)
            self._seed = seed if seed is not None else random.randrange(2**32)
            self._aim(target)
            self._last_closed = int(time.time()) - 1  # the series starts with this second
            self._running = True
            self.reason = ""
            self._pacer = asyncio.create_task(self._pace(), name="traffic-pacer")
            self._ticker = asyncio.create_task(self._tick(), name="traffic-ticker")
            company = target.journey.company_name
            self._say(f"traffic started: {value:g} journeys/s through {company}")
            return self._emit()

    async def set_rate(self, rate: object) -> TrafficStatus:
        """A new rate for running (or held) traffic; the pacer reads it at its next slot."""
        value = check_rate(rate)
        async with self._lock:
            return self._set_rate(value)

    def hold_now(self, key: str, reason: str, service: str | None = None) -> None:
        """No new sends from now on, and every journey in flight is cut (counted cancelled):
        a service under them broke, and whatever listens on its port now must get nothing.
        Synchronous, for the moment a service is seen to exit. A hold about `service` (a
        service key) ends by itself once traffic is aimed at a chain without it."""
        if not self._running:
            return
        changed = self._holds.get(key, ("", None))[0] != reason
        self._hold(key, reason, service)
        for task in list(self._in_flight):
            task.cancel()
        if changed:
            self._say(f"traffic paused: {reason}", LogLevel.WARNING)
            self._emit()

    async def hold(self, key: str, reason: str, drain_s: float = SWITCH_DRAIN_S) -> None:
        """No new sends; in-flight journeys end within `drain_s` (then they are cut)."""
        async with self._lock:
            if not self._running:
                return
            self._hold(key, reason)
            await self._drain(drain_s)
            self._emit()

    async def release(self, key: str, target: Target | None = None) -> None:
        """Drop hold `key`, aiming at `target` first when given (new services); sends resume
        once no hold is left."""
        async with self._lock:
            if not self._running:
                return
            if target is not None:
                self._aim(target)
                keys = target.chain.keys
                for moot in [k for k, (_, svc) in self._holds.items() if svc and svc not in keys]:
                    del self._holds[moot]  # about a service this chain no longer has
            if self._holds.pop(key, None) is None and target is None:
                return
            if not self._holds:
                self._unheld.set()
                self._sends.clear()  # the achieved rate counts from the resumption
                self._since = 0.0
                company = self._target.journey.company_name if self._target else ""
                self._say(f"traffic resumed through {company}")
            self._emit()

    async def stop(self, reason: str = "", drain_s: float = STOP_DRAIN_S) -> TrafficStatus:
        """No new sends; in-flight journeys end within `drain_s`, then are cut (cancelled);
        the final counts (emitted once more). `reason` says why when the operator did not ask."""
        async with self._lock:
            if not self._running:
                return self.status()
            self._running = False  # first: a run ending now must not resume it
            self._stopped_at = time.monotonic()
            self.reason = reason
            await _cancelled(self._pacer)
            self._pacer = None
            await self._drain(drain_s)
            await _cancelled(self._ticker)
            self._ticker = None
            self._holds.clear()
            self._unheld.set()
            self._close_seconds(int(time.time()) + 1)  # the last, partial second too
            total = self._total
            self._say(
                f"traffic stopped{f' ({reason})' if reason else ''}: {self._sent} sent, "
                f"{total.completed} completed, {total.failed} failed, {total.cancelled} "
                "cancelled",
                LogLevel.WARNING if reason else LogLevel.INFO,
            )
            return self._emit()

    async def aclose(self) -> None:
        await self.stop("the panel closing")

    # -- queries ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._running

    @property
    def paused(self) -> bool:
        return self._running and bool(self._holds)

    @property
    def state(self) -> TrafficState:
        if not self._running:
            return TrafficState.STOPPED
        return TrafficState.PAUSED if self._holds else TrafficState.RUNNING

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def holds(self) -> frozenset[str]:
        return frozenset(self._holds)

    @property
    def target(self) -> Target | None:
        return self._target

    def status(self) -> TrafficStatus:
        ref = time.monotonic() if self._running else self._stopped_at
        while self._sends and self._sends[0] < ref - BEHIND_WINDOW_S:
            self._sends.popleft()
        span = min(BEHIND_WINDOW_S, ref - self._since) if self._since else 0.0
        achieved = len(self._sends) / span if span > 0.5 else 0.0
        total = self._total
        return TrafficStatus(
            running=self._running,
            rate=self._rate,
            achieved_rate=achieved,
            behind=self._last_skip > ref - BEHIND_WINDOW_S,
            paused=next(iter(self._holds.values()), ("", None))[0] if self._running else "",
            sent=self._sent,
            completed=total.completed,
            failed=total.failed,
            cancelled=total.cancelled,
            skipped=self._skipped,
            in_flight=len(self._in_flight),
            p50_ms=total.p(50),
            p95_ms=total.p(95),
            steps=self._with_incidents(self._steps.step_values(self._order())),
            series=tuple(self._series),
            reason=self.reason,
            journey_id=self.journey_id,
            company=self._target.journey.company_name if self._target else "",
            steps_since=self._steps_since,
        )

    @property
    def totals(self) -> Tally:
        """Everything counted since start (streams merge these)."""
        return self._total

    def second_tallies(self) -> dict[float, Tally]:
        """The tally behind each point of the series, by second (streams merge these)."""
        return dict(self._closed)

    # -- the pacer ------------------------------------------------------------------------
    async def _pace(self) -> None:
        """One send per slot of a monotonic schedule: the next slot is computed from the
        schedule, not from when the last send happened, so sleeping late never drifts. While
        held, nothing is sent and the schedule starts again once released."""
        next_at = time.monotonic()
        while True:
            if self._holds:
                await self._unheld.wait()
                next_at = time.monotonic()
                continue
            self._since = self._since or next_at
            interval = 1.0 / self._rate
            now = time.monotonic()
            if next_at > now:
                await asyncio.sleep(next_at - now)  # pacing, not synchronisation
                continue
            due = int((now - next_at) / interval) + 1
            burst = max(1, int(MAX_BURST_S / interval))
            for _ in range(min(due, burst)):
                self._send_one(now)
            if due > burst:
                self._skip(due - burst, now)
            next_at += due * interval

    def _send_one(self, now: float) -> None:
        if len(self._in_flight) >= self._max_in_flight or self._target is None or self._holds:
            self._skip(1, now)
            return
        self._sent += 1
        self._sends.append(now)
        journey = self._journey(self._target, next(self._customers), self._steps_gen)
        task = asyncio.create_task(journey)
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    def _skip(self, n: int, now: float) -> None:
        self._skipped += n
        self._last_skip = now

    async def _journey(self, target: Target, customer: Customer, gen: int) -> None:
        sim = Simulator(self._hops())
        second = self._bucket
        try:
            result = await sim.customer_journey(target.chain, customer, 0.0)
        except asyncio.CancelledError:  # cut: a drain that ran out of time, a broken service
            for tally in (second(int(time.time())), self._total):
                tally.cut()
            raise
        except Exception:  # a bug or a closed session: counted, never an unretrieved error
            for tally in (second(int(time.time())), self._total):
                tally.lost()
            return
        self._count(result, current=gen == self._steps_gen)
        self.traces.add(target.journey.company_name, self.journey_id, result)
        if self._on_customer is not None:
            self._on_customer(target.journey, target.hops, result)  # queues, never waits

    def _count(self, result: CustomerResult, current: bool) -> None:
        """Counts at once (the totals stay exact); latencies into the second's tally only,
        merged into the totals when the second closes. A journey of a journey no longer
        current counts without its steps: they are not the current journey's. Each step's
        incident is the one its hop said it was under."""
        steps = [(s.step_name, s.status, s.latency_ms) for s in result.steps] if current else []
        incidents = {
            s.step_name: (str(s.span["incidentId"]), str(s.span.get("incidentKind", "")))
            for s in result.steps
            if current and s.span and s.span.get("incidentId")
        }
        self._bucket(int(time.time())).journey(
            result.ok, result.latency_ms, steps, incidents=incidents
        )
        self._total.journey(result.ok, result.latency_ms, (), latency=False)
        if current:
            self._steps.journey(
                result.ok, result.latency_ms, steps, latency=False, incidents=incidents
            )

    async def _drain(self, drain_s: float) -> None:
        """Let in-flight journeys end within `drain_s`; cut the rest and wait for them."""
        if not self._in_flight:
            return
        _, late = await asyncio.wait(set(self._in_flight), timeout=drain_s)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=CUT_WAIT_S)
            self._say(f"traffic: {len(late)} journeys cut after {drain_s:g} s", LogLevel.WARNING)

    def _hold(self, key: str, reason: str, service: str | None = None) -> None:
        self._holds[key] = (reason, service)
        self._unheld.clear()

    def _set_rate(self, value: float) -> TrafficStatus:
        self._rate = value
        self._say(f"traffic rate now {value:g} journeys/s")
        return self._emit()

    # -- the series -----------------------------------------------------------------------
    async def _tick(self) -> None:
        """Just after each wall-clock second: close the seconds before it and emit."""
        while True:
            now = time.time()
            await asyncio.sleep(math.floor(now) + 1.02 - now)  # pacing the once-a-second report
            self._close_seconds(int(time.time()))
            self._emit()

    def _bucket(self, second: int) -> Tally:
        tally = self._open.get(second)
        if tally is None:
            tally = self._open[second] = Tally()
        return tally

    def _close_seconds(self, before: int) -> None:
        """Every second before `before` becomes a point, empty seconds too (a chart's x axis
        has no gaps)."""
        first = self._last_closed + 1
        order = self._order()
        for second in range(max(first, before - SERIES_SECONDS), before):
            counted = self._open.pop(second, None)
            tally = counted or Tally()
            if counted is not None and self._on_second is not None and self._target is not None:
                self._second_done(counted)
            self._total.merge_latencies(tally, steps=False)
            self._steps.merge_latencies(tally)
            self._closed[float(second)] = tally
            while len(self._closed) > SERIES_SECONDS:
                del self._closed[next(iter(self._closed))]
            self._series.append(tally.second(float(second), order))
            self._last_closed = second
        for second in [s for s in self._open if s < before]:  # older than the series: dropped
            del self._open[second]

    def _second_done(self, tally: Tally) -> None:
        assert self._on_second is not None and self._target is not None
        journey = self._target.journey
        services = {h["stepName"]: h["serviceName"] for h in self._target.hops}
        try:
            self._on_second(journey.company_name, services, tally)
        except Exception:  # the counting must never stop the series
            log.exception("traffic: a second's tally was not counted")

    # -- helpers ----------------------------------------------------------------------------
    def _reset(self, rate: float) -> None:
        self._rate = rate
        self._sent = 0
        self._skipped = 0
        self._last_skip = -math.inf
        self._since = 0.0
        self._stopped_at = 0.0
        self._sends: deque[float] = deque()
        self._total = Tally()
        self._steps = Tally()  # the current journey's steps, since it became current
        self._steps_since = time.time()
        self._steps_gen = 0  # which journey's steps `_steps` counts (a journey sent counts there
        self._current_journey: Journey | None = None  # only if it is still the current one)
        self._open: dict[int, Tally] = {}
        self._series: deque[TrafficSecond] = deque(maxlen=SERIES_SECONDS)
        self._closed: dict[float, Tally] = {}  # the tallies behind the series, oldest first
        self._last_closed = 0
        self._seed = 0

    def _aim(self, target: Target) -> None:
        if target.journey != self._current_journey:
            # Another journey: its steps are counted afresh (totals since start go on).
            self._current_journey = target.journey
            self._steps = Tally()
            self._steps_since = time.time()
            self._steps_gen += 1
            for tally in self._open.values():
                tally.steps.clear()  # the old journey's steps: not to be merged into the new
        self._target = target
        # Seeded profiles as a run has them; numbering goes on across a switch.
        self._customers = customer_stream(target.journey.domain, self._seed, start=self._sent)

    def _order(self) -> list[str]:
        return [h["stepName"] for h in self._target.hops] if self._target else []

    def _with_incidents(self, steps: tuple[StepSecond, ...]) -> tuple[StepSecond, ...]:
        """Each step with the incident in effect on its service now (none: none)."""
        if self._target is None:
            return steps
        company = self._target.journey.company_name
        keys = {h["stepName"]: service_key(h["serviceName"], company) for h in self._target.hops}
        out = []
        for step in steps:
            key = keys.get(step.step_name)
            found = self._incident_of(key) if key else None
            incident_id, kind = found or ("", "")
            out.append(replace(step, incident_id=incident_id, incident_kind=kind))
        return tuple(out)

    def _emit(self) -> TrafficStatus:
        status = self.status()
        self._on_status(status)
        return status

    def _say(self, message: str, level: LogLevel = LogLevel.INFO) -> None:
        self._events.say("traffic", message, level)


async def _cancelled(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
