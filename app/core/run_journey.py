"""Run Journey as a use case of its own: one method per phase, each returning a typed result,
folded into the `RunResult` (docs/architecture.md, "A Run Journey, phase by phase").

The plan (app/core/run_plan.py) was made and checked before the run began; this runs it:
**stop** what it replaces (traffic through those journeys held first), **wait** until they are
gone and their ports free, **sweep**, **launch** the new services (and keep the unchanged ones),
build the chain once — shared by the warm-up, traffic and the simulate phase — and make the
journey resident, then **simulate**. A run that only simulates on a resident journey's services
(the compatibility routes' reuse) runs the simulate phase alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol, TypeVar

from app.core.chain import Chain, build_chain
from app.core.errors import CoreError, StateDatabaseError
from app.core.events import CoreEvents, LogLevel, PhaseEvent, PhaseStatus, RunEvent, RunStatus
from app.core.history import History
from app.core.journeys import Journey
from app.core.model import Phase, ServiceRecord, StopReport
from app.core.progress import ProgressMeter
from app.core.residents import Resident, Residents
from app.core.run_plan import Plan
from app.core.runs import PhaseResult, RunRequest, RunResult
from app.core.services import ServiceManager, SweepReport
from app.core.settings import Settings
from app.core.simulation import (
    CustomerDone,
    CustomerResult,
    SimulationResult,
    Simulator,
    make_customers,
)
from app.core.streams import TrafficStreams
from app.core.traffic import Target
from app.service.hop_client import HopClient, HopClientError
from app.service.protocol import Hop

SWITCH = "switch"  # the traffic hold of a Run Journey (and of stopping the customer services)
WARM_PARALLEL = 8  # warm-up requests in flight at once (two cores; as START_CONCURRENCY)
# Requests per link, all at once, so each hop has as many connections to the next open when the
# first customers come, several in flight together: the first 50 after a switch then ran at
# 88-99 % of steady against 77-81 % with one per link, and a 40-service switch took ≈40 ms
# longer (docs/performance.md, "Against the targets").
WARM_CONNECTIONS = 4
WARM_TIMEOUT_S = 10.0
HISTORY_STATUS = {
    RunStatus.FINISHED: "ok",
    RunStatus.FAILED: "failed",
    RunStatus.CANCELLED: "cancelled",
}


class Pause(Enum):
    """Where a phase's demo-pacing pause goes (docs/architecture.md, "A Run Journey, phase by
    phase"): where no cell is changing, so what the window shows is what is true."""

    NONE = "none"  # nothing to do: an empty phase is not padded
    BEFORE = "before"  # the phase is lit, its cells as they were; then the work, shown as done
    AFTER = "after"  # the work's cells settle first (the wait: processes exit, ports free)


class _Counted(Protocol):
    def counts(self) -> dict[str, int]: ...


_R = TypeVar("_R", bound=_Counted)


@dataclass
class Fleet:
    """What a run works with: the core's parts, handed over by the Core."""

    settings: Callable[[], Settings]  # read at each phase: demo pacing may change meanwhile
    events: CoreEvents
    manager: ServiceManager
    history: History
    traffic: TrafficStreams
    residents: Residents
    hops: Callable[[], HopClient]  # the chains' calls (app/service/hop_client.py)
    offer: CustomerDone
    warm_up: Callable[[], bool]


# -- each phase's result ------------------------------------------------------------------------
@dataclass(frozen=True)
class Stopped:
    stopped: tuple[str, ...]
    kept: tuple[str, ...]

    def counts(self) -> dict[str, int]:
        return {"stopped": len(self.stopped), "kept": len(self.kept)}


@dataclass(frozen=True)
class Waited:
    report: StopReport

    def counts(self) -> dict[str, int]:
        return {"exited": self.report.count, "killed": len(self.report.killed)}


@dataclass(frozen=True)
class Swept:
    report: SweepReport

    def counts(self) -> dict[str, int]:
        return {
            "staleCleaned": self.report.stale_cleaned,
            "orphansReaped": self.report.orphans_reaped,
        }


@dataclass(frozen=True)
class Launched:
    started: tuple[ServiceRecord, ...]
    kept: tuple[str, ...]
    chain: Chain
    warmed: int

    def counts(self) -> dict[str, int]:
        return {"launched": len(self.started), "kept": len(self.kept), "warmed": self.warmed}


@dataclass(frozen=True)
class Simulated:
    simulation: SimulationResult

    def counts(self) -> dict[str, int]:
        s = self.simulation.summary
        return {"customers": s.customers, "completed": s.completed, "failed": s.failed}


@dataclass
class _Outcome:
    """What the phases so far produced (a run that stops half-way reports these)."""

    phases: list[PhaseResult] = field(default_factory=list)
    stopped: Stopped | None = None
    swept: Swept | None = None
    launched: Launched | None = None
    simulated: Simulated | None = None


class RunJourney:
    """One run of `request` under `plan` (or, with `on`, a rerun on that resident journey)."""

    def __init__(
        self,
        fleet: Fleet,
        request: RunRequest,
        run_id: str,
        plan: Plan | None = None,
        on: Resident | None = None,
    ) -> None:
        self.fleet = fleet
        self.request = request
        self.run_id = run_id
        self.plan = plan
        self.on = on  # simulate only, on this resident journey's services
        self._done = _Outcome()
        self._taken_over: list[str] = []  # the streams its stop phase held

    # -- the run ----------------------------------------------------------------------------
    async def run(self, cancelled_by: Callable[[], str | None]) -> RunResult:
        """The whole run with its history row and events; a failure after validation is a
        result that says why (its services rolled back), a cancellation by the core one that
        says so."""
        f = self.fleet
        company = self.request.journey.company_name
        mode, journey = self.request.mode.value, self.request.journey.to_json()
        f.history.start(self.run_id, time.time(), mode, journey)
        f.events.run.emit(RunEvent(self.run_id, RunStatus.STARTED, company, mode=mode))
        try:
            await (self._rerun() if self.on is not None else self._phases())
        except asyncio.CancelledError:
            who = cancelled_by()
            self._end(self._result(f"cancelled by {who or 'the caller'}", cancelled=True))
            if who is None:
                raise
            return self._last  # cancelled on purpose by the core: the answer says so
        except StateDatabaseError as exc:  # the disk: the API answers 507, not a run result
            self._end(self._result(str(exc)))
            raise
        except CoreError as exc:  # the run failed and rolled back: a result that says why
            self._end(self._result(str(exc)))
            return self._last
        except Exception as exc:  # a bug: say so in the history rather than stay "running"
            self._end(self._result(f"{type(exc).__name__}: {exc}"))
            raise
        self._end(self._result())
        return self._last

    async def _phases(self) -> None:
        plan = self._plan
        try:
            await self._phase(Phase.STOP, self.stop, _pause_if(plan.stop, Pause.BEFORE))
            stopped = self._done.stopped.stopped if self._done.stopped else ()
            await self._phase(Phase.WAIT, self.wait, _pause_if(stopped, Pause.AFTER))
            await self._phase(Phase.SWEEP, self.sweep, _pause_if(self._sweepable(), Pause.BEFORE))
            launch = _pause_if(plan.launch, Pause.BEFORE)
            launched = await self._phase(Phase.LAUNCH, self.launch, launch)
            await self._phase(Phase.SIMULATE, lambda: self.simulate(launched.chain))
        except BaseException as exc:
            await self._abandon_traffic(exc)
            raise

    async def _rerun(self) -> None:
        assert self.on is not None
        chain = self._chain(self.on.journey)
        await self._phase(Phase.SIMULATE, lambda: self.simulate(chain))

    def _sweepable(self) -> bool:
        return self.fleet.settings().cleanup_enabled and self.fleet.manager.sweepable()

    # -- the phases ---------------------------------------------------------------------------
    async def stop(self) -> Stopped:
        """Hold traffic through the journeys replaced (in-flight journeys end on the old
        services first: the switch fails none), then SIGTERM their services."""
        plan = self._plan
        f = self.fleet
        switching = "a Run Journey is switching the services"
        self._taken_over = self._streams_replaced()
        await f.traffic.hold(self._taken_over, SWITCH, switching)
        for resident in plan.replaced:
            f.residents.remove(resident.id)
        stopped = await f.manager.request_stop(plan.stop)
        self._done.stopped = Stopped(tuple(stopped), plan.kept)
        return self._done.stopped

    async def wait(self) -> Waited:
        return Waited(await self.fleet.manager.wait_stopped(self._plan.stop))

    async def sweep(self) -> Swept:
        settings = self.fleet.settings()
        manager = self.fleet.manager
        report = await manager.sweep() if settings.cleanup_enabled else SweepReport(0, 0)
        self._done.swept = Swept(report)
        return self._done.swept

    async def launch(self) -> Launched:
        """Start the new services, keep the unchanged ones, build the chain once, warm it, make
        the journey resident, and aim the traffic it takes over at it."""
        f, plan = self.fleet, self._plan
        started = await f.manager.start_many(plan.launch, self.run_id)
        for key in plan.kept:
            f.manager.adopt(key, plan.journey_id)
        chain = self._chain(self.request.journey)
        warmed = await self._warm(chain) if f.warm_up() else 0
        essential = {r.key for r in f.manager.services() if r.essential}
        # It owns its own services; an essential one serves every journey and stays.
        keys = frozenset(s.key for s in self.request.journey.service_specs()) - essential
        resident = Resident(plan.journey_id, self.request.journey, self.run_id, time.time(), keys)
        f.residents.add(resident)
        await self._take_over_traffic(chain)
        self._done.launched = Launched(tuple(started), plan.kept, chain, warmed)
        return self._done.launched

    async def simulate(self, chain: Chain) -> Simulated:
        """The customers through the chain, reporting their progress as they finish."""
        req, f = self.request, self.fleet
        customers = make_customers(req.customers, req.journey.domain, req.seed)
        meter = ProgressMeter(self.run_id, len(customers), f.events.progress.emit)

        def finished(journey: Journey, hops: Sequence[Hop], result: CustomerResult) -> None:
            f.offer(journey, hops, result)
            meter.count(result.ok)

        meter.start()
        sim = await Simulator(f.hops(), finished).run(
            chain, customers, req.mode, req.think_time_ms, req.concurrency
        )
        self._done.simulated = Simulated(sim)
        return self._done.simulated

    # -- traffic around the switch ---------------------------------------------------------------
    def _streams_replaced(self) -> list[str]:
        """The streams this run takes over or ends: those of the journeys it replaces, and any
        left held by stopped customer services (admin/new-customer-journey)."""
        f = self.fleet
        replaced = [r.id for r in self._plan.replaced]
        orphans = [t.journey_id for t in f.traffic.live() if f.residents.get(t.journey_id) is None]
        found = [j for j in [*replaced, *orphans] if f.traffic.get(j) is not None]
        return list(dict.fromkeys(found))

    async def _take_over_traffic(self, chain: Chain) -> None:
        """The newest stream of a replaced journey goes on through the new one; the others
        stop, saying why."""
        f = self.fleet
        streams = [j for j in self._taken_over if (t := f.traffic.get(j)) and t.running]
        if not streams:
            return
        *others, inherited = streams
        company = self.request.journey.company_name
        for journey_id in others:
            await f.traffic.stop(journey_id, f"its journey was replaced by {company}'s")
        f.traffic.move(inherited, self._plan.journey_id)
        target = Target(self.request.journey, chain)
        await f.traffic.release(self._plan.journey_id, SWITCH, target)

    async def _abandon_traffic(self, exc: BaseException) -> None:
        """A run that fails or is cancelled while it holds traffic: no new services to go on
        through, so that traffic stops, saying why."""
        f = self.fleet
        why = f"failed: {exc}" if str(exc) else "cancelled"
        held = [t.journey_id for t in f.traffic.live() if t.paused and SWITCH in t.holds]
        for journey_id in held:
            await f.traffic.stop(journey_id, f"the Run Journey {why}")

    # -- helpers ----------------------------------------------------------------------------
    @property
    def _plan(self) -> Plan:
        assert self.plan is not None
        return self.plan

    def _chain(self, journey: Journey) -> Chain:
        services = {s.key: s for s in self.fleet.manager.services()}
        return build_chain(journey, services, self.fleet.manager.chain_secret)

    async def _warm(self, chain: Chain) -> int:
        """Open every hop's connections to the next and touch its handler, all links at once
        (no latency, no injected errors, not customers, not exported), so the first customers
        after a switch run near steady speed; the services arrive warm from the fork server
        already (docs/performance.md, "Against the targets"). Bounded by WARM_TIMEOUT_S."""
        hops = self.fleet.hops()
        gate = asyncio.Semaphore(WARM_PARALLEL)

        async def one(link: Chain) -> bool:
            body, headers, wait_s = link.request({"id": "warm-up"})
            try:
                async with gate:
                    answer = await hops.post(link.first_port, body, headers, wait_s)
                return answer.status == 200
            except (OSError, HopClientError):  # TimeoutError too
                return False

        try:
            async with asyncio.timeout(WARM_TIMEOUT_S):
                links = chain.quiet().links()
                calls = (one(k) for k in links for _ in range(WARM_CONNECTIONS))
                return sum(await asyncio.gather(*calls))
        except TimeoutError:
            self.fleet.events.say("core", "warm-up did not finish in time", LogLevel.WARNING)
            return 0

    async def _phase(
        self, phase: Phase, work: Callable[[], Awaitable[_R]], pause: Pause = Pause.BEFORE
    ) -> _R:
        """Run one phase, emitting its start and end with duration, pause and counts."""
        events = self.fleet.events
        started_at = time.time()
        t0 = time.perf_counter()
        paced = 0.0
        # A started phase says the pause it will take, so the window can say it is paced.
        planned = self.fleet.settings().demo_pacing_ms if pause is not Pause.NONE else 0
        events.phase.emit(
            PhaseEvent(self.run_id, phase, PhaseStatus.STARTED, started_at, paced_ms=planned)
        )
        try:
            paced += await self._pause() if pause is Pause.BEFORE else 0.0
            result = await work()
            paced += await self._pause() if pause is Pause.AFTER else 0.0
        except BaseException:
            ms = (time.perf_counter() - t0) * 1000
            failed = {"error": 1}
            events.phase.emit(
                PhaseEvent(self.run_id, phase, PhaseStatus.FAILED, started_at, ms, failed, paced)
            )
            raise
        ms = (time.perf_counter() - t0) * 1000
        counts = result.counts()
        events.phase.emit(
            PhaseEvent(self.run_id, phase, PhaseStatus.FINISHED, started_at, ms, counts, paced)
        )
        self._done.phases.append(PhaseResult(phase, started_at, ms, counts, paced))
        return result

    async def _pause(self) -> float:
        """The demo-pacing pause, deliberate, for audiences; returns how long it was (ms)."""
        pacing = self.fleet.settings().demo_pacing_ms
        if not pacing:
            return 0.0
        t0 = time.perf_counter()
        await asyncio.sleep(pacing / 1000)
        return (time.perf_counter() - t0) * 1000

    def _result(self, error: str | None = None, cancelled: bool = False) -> RunResult:
        done = self._done
        ok = error is None
        services = self._services() if ok else ()
        self._last = RunResult(
            run_id=self.run_id,
            ok=ok,
            phases=tuple(done.phases),
            stopped=len(done.stopped.stopped) if done.stopped else 0,
            stale_cleaned=done.swept.report.stale_cleaned if done.swept else 0,
            services=services,
            simulation=done.simulated.simulation if done.simulated and ok else None,
            error=error,
            company=self.request.journey.company_name,
            reused=self.on is not None,
            cancelled=cancelled,
            journey_id=self.on.id if self.on is not None else self._plan.journey_id,
        )
        return self._last

    def _services(self) -> tuple[ServiceRecord, ...]:
        keys = {s.key for s in self.request.journey.service_specs()}
        records = self.fleet.manager.services()
        return tuple(s for s in records if s.key in keys or s.essential)

    def _end(self, result: RunResult) -> None:
        status = (
            RunStatus.FINISHED
            if result.ok
            else RunStatus.CANCELLED
            if result.cancelled
            else RunStatus.FAILED
        )
        try:
            self.fleet.history.finish_run(result, HISTORY_STATUS[status])
        except Exception as exc:  # a full disk must not hide the run's own outcome
            self.fleet.events.say("core", f"run history not written: {exc}", LogLevel.ERROR)
        self.fleet.events.run.emit(
            RunEvent(
                result.run_id,
                status,
                result.company,
                result.error or "",
                mode=self.request.mode.value,
                result=result,
            )
        )


def _pause_if(work: object, where: Pause) -> Pause:
    """`where`, when the phase has work to show; no pause for an empty one."""
    return where if work else Pause.NONE
