"""Continuous traffic: seeded customers sent through the running journey at a steady rate.

Open loop (docs/architecture.md, "Traffic"): sends follow a monotonic schedule, one every
1/rate seconds, whatever the answers do, so a slow chain shows as latency, not as a lower rate.
In-flight journeys are bounded: a send that would exceed the bound (or a slot the loop reached
too late) is skipped and counted, and the status says `behind` with the achieved rate, instead
of queueing without bound. Results are bucketed by the wall-clock second they ended in; once a
second the closed seconds join the rolling series and `CoreEvents.traffic` carries a
`TrafficStatus` to the window, the API and the CLI.

The core drives it around a Run Journey: `pause()` (no new sends, in-flight drained) before the
old services stop, `resume(target)` once the new ones are warm, `stop()` when the run fails.

Over 400 lines on purpose: the pacing loop, the drain and the per-second bookkeeping share one
state machine and stay together.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from aiohttp import ClientSession

from app.core.chain import Chain
from app.core.errors import Problem, ValidationError
from app.core.events import CoreEvents, LogLevel
from app.core.journeys import Journey
from app.core.limits import MAX_TRAFFIC_IN_FLIGHT, MAX_TRAFFIC_RATE, MIN_TRAFFIC_RATE
from app.core.simulation import (
    Customer,
    CustomerDone,
    CustomerResult,
    Simulator,
    customer_stream,
    percentile,
)
from app.core.traffic_model import SERIES_SECONDS, StepSecond, TrafficSecond, TrafficStatus
from app.service.protocol import Hop

DRAIN_S = 30.0  # in-flight journeys get this long to finish on stop/pause; then they are cut
MAX_BURST_S = 0.25  # a loop that wakes late sends the missed slots of up to this long, skips more
ACHIEVED_WINDOW_S = 5.0  # the achieved rate and `behind` look at the last seconds only
RESERVOIR = 20_000  # latencies kept for since-start percentiles (bounded memory over hours)
STEP_RESERVOIR = 4_000


class TrafficState(StrEnum):
    STOPPED = "stopped"
    RUNNING = "running"
    PAUSED = "paused"  # a Run Journey is switching the services under it


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


class _Sample:
    """Latencies: exact for one second, a uniform reservoir (Algorithm R) since start."""

    def __init__(self, size: int, rng: random.Random) -> None:
        self.values: list[float] = []
        self.seen = 0
        self._size = size
        self._rng = rng

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self.values) < self._size:
            self.values.append(value)
        elif (j := self._rng.randrange(self.seen)) < self._size:
            self.values[j] = value

    def p(self, pct: int) -> float:
        return percentile(sorted(self.values), pct)


@dataclass
class _Tally:
    """Outcomes of journeys (and of their steps): one wall-clock second's, or since start."""

    size: int
    step_size: int
    rng: random.Random
    completed: int = 0
    failed: int = 0
    latency: _Sample = field(init=False)
    steps: dict[str, tuple[list[int], _Sample]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.latency = _Sample(self.size, self.rng)

    def add(self, result: CustomerResult) -> None:
        if result.ok:
            self.completed += 1
        else:
            self.failed += 1
        self.latency.add(result.latency_ms)
        for step in result.steps:
            counts, sample = self.steps.setdefault(
                step.step_name, ([0, 0], _Sample(self.step_size, self.rng))
            )
            counts[0 if step.status == "ok" else 1] += 1
            if step.latency_ms is not None:
                sample.add(step.latency_ms)

    def add_failure(self) -> None:
        self.failed += 1

    def step_values(self, order: list[str]) -> tuple[StepSecond, ...]:
        names = order + [n for n in self.steps if n not in order]
        return tuple(
            StepSecond(n, c[0], c[1], s.p(50), s.p(95))
            for n in names
            if n in self.steps
            for c, s in [self.steps[n]]
        )


class Traffic:
    """Owned by the Core (created in open_core, closed on its exit stack before the services
    stop); used from the event loop's thread only."""

    def __init__(
        self,
        events: CoreEvents,
        http: Callable[[], ClientSession],
        on_customer: CustomerDone | None = None,
        max_in_flight: int = MAX_TRAFFIC_IN_FLIGHT,
    ) -> None:
        self._events = events
        self._http = http
        self._on_customer = on_customer
        self._max_in_flight = max_in_flight
        self.state = TrafficState.STOPPED
        self.reason = ""  # why traffic stopped when nobody asked (a failed Run Journey)
        self._rate = 0.0
        self._target: Target | None = None
        self._customers: Iterator[Customer] = iter(())
        self._pacer: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._rng = random.Random()
        self._reset(0.0)

    # -- commands ---------------------------------------------------------------------------
    def start(self, rate: object, target: Target, seed: int | None = None) -> TrafficStatus:
        """Start (or, when running, change the rate of) traffic through `target`. A bad rate
        raises ValidationError and changes nothing."""
        value = check_rate(rate)
        if self.state is not TrafficState.STOPPED:
            return self.set_rate(value)
        self._reset(value)
        self._seed = seed if seed is not None else random.randrange(2**32)
        self._aim(target)
        self._last_closed = int(time.time()) - 1  # the series starts with this second
        self.state = TrafficState.RUNNING
        self.reason = ""
        self._pacer = asyncio.create_task(self._pace(), name="traffic-pacer")
        self._ticker = asyncio.create_task(self._tick(), name="traffic-ticker")
        self._say(f"traffic started: {value:g} journeys/s through {target.journey.company_name}")
        return self._emit()

    def set_rate(self, rate: object) -> TrafficStatus:
        """A new rate for running (or paused) traffic; the pacer reads it at its next slot."""
        self._rate = check_rate(rate)
        self._say(f"traffic rate now {self._rate:g} journeys/s")
        return self._emit()

    async def pause(self) -> None:
        """No new sends; in-flight journeys finish (bounded by DRAIN_S). Rate and counts stay."""
        if self.state is not TrafficState.RUNNING:
            return
        self.state = TrafficState.PAUSED
        await self._stop_pacer()
        await self._drain()
        self._emit()

    def resume(self, target: Target) -> None:
        """Back to the rate asked for, through the new services (a no-op unless paused)."""
        if self.state is not TrafficState.PAUSED:
            return
        self._aim(target)
        self._sends.clear()  # the achieved rate counts from the resumption
        self._since = 0.0
        self.state = TrafficState.RUNNING
        self._pacer = asyncio.create_task(self._pace(), name="traffic-pacer")
        self._say(f"traffic resumed through {target.journey.company_name}")
        self._emit()

    async def stop(self, reason: str = "") -> TrafficStatus:
        """Drain: no new sends, in-flight journeys finish within DRAIN_S, then the final
        counts (emitted once more). `reason` says why when the operator did not ask."""
        if self.state is TrafficState.STOPPED:
            return self.status()
        self.state = TrafficState.STOPPED  # first: a run ending now must not resume it
        self.reason = reason
        await self._stop_pacer()
        await self._drain()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        self._close_seconds(int(time.time()) + 1)  # the last, partial second too
        self._say(
            f"traffic stopped{f' ({reason})' if reason else ''}: {self._sent} sent, "
            f"{self._total.completed} completed, {self._total.failed} failed",
            LogLevel.WARNING if reason else LogLevel.INFO,
        )
        return self._emit()

    async def aclose(self) -> None:
        await self.stop("the panel closing")

    # -- queries ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.state is not TrafficState.STOPPED

    @property
    def paused(self) -> bool:
        return self.state is TrafficState.PAUSED

    @property
    def rate(self) -> float:
        return self._rate

    def status(self) -> TrafficStatus:
        now = time.monotonic()
        while self._sends and self._sends[0] < now - ACHIEVED_WINDOW_S:
            self._sends.popleft()
        span = min(ACHIEVED_WINDOW_S, now - self._since) if self._since else 0.0
        achieved = len(self._sends) / span if span > 0.5 else 0.0
        order = [h["stepName"] for h in self._target.hops] if self._target else []
        return TrafficStatus(
            running=self.running,
            rate=self._rate,
            achieved_rate=achieved,
            behind=self.running and now - self._last_skip < ACHIEVED_WINDOW_S,
            paused=self.paused,
            sent=self._sent,
            completed=self._total.completed,
            failed=self._total.failed,
            in_flight=len(self._in_flight),
            p50_ms=self._total.latency.p(50),
            p95_ms=self._total.latency.p(95),
            steps=self._total.step_values(order),
            series=tuple(self._series),
            reason=self.reason,
        )

    # -- the pacer ------------------------------------------------------------------------
    async def _pace(self) -> None:
        """One send per slot of a monotonic schedule: the next slot is computed from the
        schedule, not from when the last send happened, so sleeping late never drifts."""
        next_at = time.monotonic()
        self._since = self._since or next_at
        while self.state is TrafficState.RUNNING:
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
                self._skipped += due - burst
                self._last_skip = now
            next_at += due * interval

    def _send_one(self, now: float) -> None:
        if len(self._in_flight) >= self._max_in_flight or self._target is None:
            self._skipped += 1
            self._last_skip = now
            return
        self._sent += 1
        self._sends.append(now)
        task = asyncio.create_task(self._journey(self._target, next(self._customers)))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _journey(self, target: Target, customer: Customer) -> None:
        sim = Simulator(self._http())
        try:
            result = await sim.customer_journey(target.chain, customer, 0.0)
        except asyncio.CancelledError:  # cut by a drain that ran out of time: a failure
            self._failed_one()
            raise
        except Exception:  # a bug or a closed session: counted, never an unretrieved error
            self._failed_one()
            return
        self._bucket(int(time.time())).add(result)
        self._total.add(result)
        if self._on_customer is not None:
            self._on_customer(target.journey, target.hops, result)  # queues, never waits

    def _failed_one(self) -> None:
        self._bucket(int(time.time())).add_failure()
        self._total.add_failure()

    async def _stop_pacer(self) -> None:
        if self._pacer is not None:
            self._pacer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pacer
            self._pacer = None

    async def _drain(self) -> None:
        if not self._in_flight:
            return
        _, late = await asyncio.wait(set(self._in_flight), timeout=DRAIN_S)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=DRAIN_S)
            self._say(f"traffic: {len(late)} journeys cut after {DRAIN_S:g} s", LogLevel.WARNING)

    # -- the series -----------------------------------------------------------------------
    async def _tick(self) -> None:
        """Just after each wall-clock second: close the seconds before it and emit."""
        while True:
            now = time.time()
            await asyncio.sleep(math.floor(now) + 1.02 - now)  # pacing the once-a-second report
            self._close_seconds(int(time.time()))
            self._emit()

    def _bucket(self, second: int) -> _Tally:
        tally = self._open.get(second)
        if tally is None:
            tally = self._open[second] = _Tally(1 << 30, 1 << 30, self._rng)  # exact
        return tally

    def _close_seconds(self, before: int) -> None:
        """Every second before `before` becomes a point, empty seconds too (a chart's x axis
        has no gaps)."""
        first = self._last_closed + 1
        order = [h["stepName"] for h in self._target.hops] if self._target else []
        for second in range(max(first, before - SERIES_SECONDS), before):
            tally = self._open.pop(second, None)
            if tally is None:
                self._series.append(TrafficSecond(float(second)))
            else:
                self._series.append(
                    TrafficSecond(
                        float(second),
                        tally.completed,
                        tally.failed,
                        tally.latency.p(50),
                        tally.latency.p(95),
                        tally.step_values(order),
                    )
                )
            self._last_closed = second
        for second in [s for s in self._open if s < before]:  # older than the series: dropped
            del self._open[second]

    # -- helpers ----------------------------------------------------------------------------
    def _reset(self, rate: float) -> None:
        self._rate = rate
        self._sent = 0
        self._skipped = 0
        self._last_skip = -math.inf
        self._since = 0.0
        self._sends: deque[float] = deque()
        self._total = _Tally(RESERVOIR, STEP_RESERVOIR, self._rng)
        self._open: dict[int, _Tally] = {}
        self._series: deque[TrafficSecond] = deque(maxlen=SERIES_SECONDS)
        self._last_closed = 0
        self._seed = 0

    def _aim(self, target: Target) -> None:
        self._target = target
        # Seeded profiles as a run has them; numbering goes on across a switch.
        self._customers = customer_stream(target.journey.domain, self._seed, start=self._sent)

    def _emit(self) -> TrafficStatus:
        status = self.status()
        self._events.traffic.emit(status)
        return status

    def _say(self, message: str, level: LogLevel = LogLevel.INFO) -> None:
        self._events.say("traffic", message, level)
