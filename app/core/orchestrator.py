"""The facade: the one object the window, the API and the CLI drive.

`open_core(settings)` assembles the parts for one state directory (lock, database, ledger, pool,
launcher, service manager) on an `AsyncExitStack` and takes them down again in reverse order,
each step running even when an earlier one raised. `Core` runs journeys phase by phase
(docs/architecture.md, "A Run Journey, phase by phase").

Over 400 lines on purpose: `Core` is the one facade the window, the API and the CLI share,
and every command they can give is one short method here; its parts live in their own modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from typing import Any

from aiohttp import ClientError, ClientSession, TCPConnector

from app.config import LauncherKind, Settings
from app.core import statedir
from app.core.db import open_db
from app.core.errors import (
    BusyError,
    CoreError,
    NoJourneyError,
    PoolExhaustedError,
    StateDatabaseError,
)
from app.core.events import CoreEvents, LogLevel, PhaseEvent, PhaseStatus, RunEvent, RunStatus
from app.core.export import Exporter, ExportSettings
from app.core.history import History
from app.core.journeys import Journey
from app.core.launcher import ExecLauncher, Launcher
from app.core.ledger import Ledger
from app.core.limits import MAX_CONCURRENCY, MAX_PACING_MS, MAX_TRAFFIC_IN_FLIGHT
from app.core.lock import StateLock
from app.core.model import (
    Listener,
    Phase,
    PortInfo,
    PortState,
    ServiceRecord,
    ServiceSpec,
    StopReport,
)
from app.core.ports import PortPool
from app.core.runlock import Exclusive, acquire
from app.core.runs import (
    PhaseResult,
    RunRequest,
    RunResult,
    make_request,
    new_run_id,
)
from app.core.services import ServiceManager
from app.core.simulation import (
    CustomerResult,
    SimulationResult,
    Simulator,
    build_hops,
    make_customers,
)
from app.core.traffic import Target, Traffic, check_rate, check_seed
from app.core.traffic_model import TrafficStatus

log = logging.getLogger(__name__)
CANCEL_WAIT_S = 30.0
HISTORY_STATUS = {
    RunStatus.FINISHED: "ok",
    RunStatus.FAILED: "failed",
    RunStatus.CANCELLED: "cancelled",
}
Work = Callable[[], Awaitable[dict[str, int]]]
WARM_ROUNDS = 3  # warm-up requests through a new chain: rounds of WARM_PARALLEL at once
WARM_PARALLEL = 4
WARM_TIMEOUT_S = 10.0


def make_launcher(kind: LauncherKind) -> Launcher:
    if kind is LauncherKind.FORK:
        from app.core.forkserver import ForkServerLauncher

        return ForkServerLauncher()
    return ExecLauncher()


@asynccontextmanager
async def open_core(
    settings: Settings,
    events: CoreEvents | None = None,
    *,
    export: ExportSettings | None = None,
    stop_services_on_close: bool = True,
) -> AsyncIterator[Core]:
    """The core for `settings.state_dir`, open for the body of the `async with`.

    On the way out: the run in progress is cancelled (it rolls back), every service is stopped
    (unless `stop_services_on_close` is False, which only tests use to play a crashed panel),
    then the exporter drains, the launcher, the database and the state-directory lock are let
    go — each of these even if an earlier one raised. `export` defaults to the OpenTelemetry
    environment (OTEL_*; a bad setting fails here, before anything is opened)."""
    events = events or CoreEvents()
    export = ExportSettings.from_env() if export is None else export
    async with AsyncExitStack() as stack:
        lock = StateLock(settings.state_dir)
        lock.acquire()
        stack.callback(lock.release)
        notes = statedir.tighten(settings.state_dir)  # ours now: no other panel writes it
        conn, message = open_db(settings.db_path)
        stack.callback(conn.close)
        launcher = make_launcher(settings.launcher)
        stack.push_async_callback(launcher.aclose)
        exporter = await Exporter.open(export)
        core: Core | None = None
        # The exporter in use at close drains here (Core.replace_exporter may have swapped it).
        stack.push_async_callback(lambda: (core.exporter if core else exporter).aclose())
        manager = ServiceManager(settings, PortPool(settings.ports), Ledger(conn), launcher, events)
        stack.push_async_callback(manager.aclose, stop_services_on_close)
        core = Core(settings, events, manager, History(conn), exporter)
        stack.push_async_callback(core.aclose)
        # Last in, first out: traffic drains before a run is cancelled and services stop.
        stack.push_async_callback(core.traffic.aclose)
        await core.start(*notes, message)
        yield core


class Core:
    """Open it with `open_core`; it is used from the event loop's thread only."""

    def __init__(
        self,
        settings: Settings,
        events: CoreEvents,
        manager: ServiceManager,
        history: History,
        exporter: Exporter,
    ) -> None:
        self.settings = settings
        self.events = events
        self.manager = manager
        self.history = history
        self.exporter = exporter
        self.startup_messages: list[str] = []
        self.reconciled: tuple[str, ...] = ()  # orphans of an earlier run stopped at open
        self._run_lock = asyncio.Lock()
        self._run_task: asyncio.Task[RunResult] | None = None
        self._cancelled_by: str | None = None
        self._journey: Journey | None = None  # the last journey run successfully
        self._http: ClientSession | None = None
        # Traffic is exported too, through whichever exporter is current (replace_exporter).
        self.traffic = Traffic(events, self._client, self._offer)
        self.warm_up = True  # warm each new chain before the launch is done (bench turns it off)

    async def start(self, *notes: str | None) -> None:
        for note in filter(None, notes):  # the state directory's and the database's
            self._startup_note(note)
        self.history.mark_interrupted()
        reaped = self.reconciled = await self.manager.reconcile()
        if reaped:
            self._startup_note(
                f"stopped {len(reaped)} services left by an earlier run: {', '.join(reaped)}"
            )

    def _startup_note(self, message: str) -> None:
        self.startup_messages.append(message)
        self.events.say("core", message, LogLevel.WARNING)

    async def aclose(self) -> None:
        """First step of closing: no run may go on while the services are stopped."""
        try:
            await self._cancel_run("the panel closing")
        finally:
            if self._http is not None:
                await self._http.close()

    # -- queries ------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._run_lock.locked()

    @property
    def pool_label(self) -> str:
        return self.manager.pool.label

    def owner_pids(self) -> list[int]:
        return self.manager.owner_pids()

    def scan(self, owner_pids: list[int] | None = None) -> Mapping[int, Listener]:
        """The OS scan alone (no shared state): safe on a worker thread when `owner_pids` was
        taken on the loop."""
        return self.manager.pool.scan(self.owner_pids() if owner_pids is None else owner_pids)

    def ports(self, listeners: Mapping[int, Listener] | None = None) -> list[PortInfo]:
        """Every port's state; from `listeners` if a scan was already made."""
        return self.manager.snapshot(listeners)

    def services(self) -> list[ServiceRecord]:
        return self.manager.services()

    def set_demo_pacing(self, ms: int) -> None:
        """An extra pause after each phase so an audience can follow (0–2 s)."""
        self.settings = self.settings.with_(demo_pacing_ms=max(0, min(MAX_PACING_MS, int(ms))))

    def essential_specs(self) -> list[ServiceSpec]:
        return [
            ServiceSpec(e.service_name, e.company, essential=True)
            for e in self.settings.essential_services
        ]

    # -- commands outside runs ----------------------------------------------------------------
    async def stop_all(self) -> StopReport:
        """Manual full cleanup. Traffic stops first, then a run in progress is cancelled (it
        rolls back)."""
        await self.traffic.stop("Stop All")
        await self._cancel_run("Stop All")
        async with self._exclusive("stop all", None):
            return await self.manager.stop_all()

    async def _cancel_run(self, why: str) -> None:
        task = self._run_task
        if task is None or task.done():
            return
        self._cancelled_by = why
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError, Exception):
            await asyncio.wait_for(asyncio.shield(task), CANCEL_WAIT_S)

    async def stop_service(self, key: str) -> StopReport:
        return await self.manager.stop([key])

    # -- traffic (docs/architecture.md, "Traffic") --------------------------------------------
    def start_traffic(self, rate: object, seed: object = None) -> TrafficStatus:
        """Continuous traffic through the running journey (or a new rate for it). A bad rate
        raises ValidationError, no running journey NoJourneyError; neither changes anything."""
        value, seed_value = check_rate(rate), check_seed(seed)
        if self.traffic.running:  # paused too: a switch under way keeps the new rate
            return self.traffic.set_rate(value)
        if self.busy:
            raise BusyError("cannot start traffic: a journey run is in progress")
        return self.traffic.start(value, self.traffic_target(), seed_value)

    def traffic_target(self) -> Target:
        journey = self._journey
        if journey is None or not self.journey_running(journey):
            raise NoJourneyError("no journey is running: run one first, then start traffic")
        return self.traffic_target_of(journey)

    async def stop_traffic(self) -> TrafficStatus:
        """Drain and stop: the final counts."""
        return await self.traffic.stop()

    async def cleanup(self, wait_s: float = 0.0) -> dict[str, int]:
        """Sweep now: stale allocations released, our orphans stopped (queueing up to
        `wait_s` behind a run)."""
        async with self._exclusive("cleanup", wait_s):
            report = await self.manager.sweep()
        return {"staleCleaned": report.stale_cleaned, "orphansReaped": report.orphans_reaped}

    # -- runs ---------------------------------------------------------------------------------
    def make_request(self, journey: Any, **params: Any) -> RunRequest:
        return make_request(
            journey,
            **params,
            max_steps=len(self.settings.ports),
            max_customers=self.settings.max_customers,
        )

    async def run_journey(
        self, journey: Any, wait_s: float = 0.0, reuse_running: bool = False, **params: Any
    ) -> RunResult:
        """Validate, then stop, wait, sweep, launch, simulate. Bad input raises ValidationError
        and stops nothing; a full pool raises PoolExhaustedError; a run in progress BusyError
        (after queueing up to `wait_s` for it to end). With `reuse_running`, a journey equal to
        the running one only simulates on its services. A run that fails later returns
        ok=False with the reason (its services rolled back).

        The run is a task of its own that holds the run lock until it ends: a caller that is
        cancelled (a closing API) leaves it running under the core, where Stop All and closing
        find and cancel it."""
        request = (
            journey if isinstance(journey, RunRequest) else self.make_request(journey, **params)
        )
        await acquire(self._run_lock, "run a journey", wait_s)
        try:
            # Under the lock: a queued request finds the pool as the run before it left it.
            reuse = reuse_running and self.journey_running(request.journey)
            if not reuse:
                self.check_capacity(len(self._launch_specs(request.journey)))
        except BaseException:
            self._run_lock.release()
            raise
        self._cancelled_by = None
        task = asyncio.create_task(self._run_locked(request, new_run_id(), reuse))
        self._run_task = task
        # A run the core cancels (Stop All, closing) ends with a result that says so; our
        # caller being cancelled leaves the run to the core (CancelledError here).
        return await asyncio.shield(task)

    async def _run_locked(self, request: RunRequest, run_id: str, reuse: bool) -> RunResult:
        try:
            return await self._run(request, run_id, reuse)
        finally:
            self._run_task = None
            self._run_lock.release()

    def journey_running(self, journey: Journey) -> bool:
        """Is `journey` the last one run, with each of its services still answering on its
        port and no other customer service up? Then it can be simulated without a restart."""
        if journey != self._journey:
            return False
        states = {p.key: p.state for p in self.ports() if p.key}
        needed = {s.key for s in journey.service_specs()}
        others = set(self.manager.customer_keys()) - needed
        return not others and all(states.get(k) is PortState.ALLOCATED for k in needed)

    def _launch_specs(self, journey: Journey) -> list[ServiceSpec]:
        """Essentials not yet running, then the journey's services (an essential key wins)."""
        running = {s.key for s in self.manager.services()}
        specs = [s for s in self.essential_specs() if s.key not in running]
        keys = {s.key for s in specs} | {s.key for s in self.manager.services() if s.essential}
        return specs + [s for s in journey.service_specs() if s.key not in keys]

    async def _run(self, req: RunRequest, run_id: str, reuse: bool = False) -> RunResult:
        company = req.journey.company_name
        self.history.start(run_id, time.time(), req.mode.value, req.journey.to_json())
        self.events.run.emit(RunEvent(run_id, RunStatus.STARTED, company))
        phases: list[PhaseResult] = []
        counts = {"stopped": 0, "staleCleaned": 0}

        def outcome(
            error: str | None = None,
            services: list[ServiceRecord] | None = None,
            sim: SimulationResult | None = None,
        ) -> RunResult:
            return RunResult(
                run_id,
                error is None,
                tuple(phases),
                counts["stopped"],
                counts["staleCleaned"],
                tuple(services or ()),
                sim,
                error,
                company,
                reuse,
            )

        try:
            phased = self._simulate_running if reuse else self._phases
            services, sim = await phased(req, run_id, phases, counts)
        except asyncio.CancelledError:
            result = replace(
                outcome(f"cancelled by {self._cancelled_by or 'the caller'}"), cancelled=True
            )
            self._end(result)
            if self._cancelled_by is None:
                raise
            return result  # cancelled on purpose by the core: the answer says so
        except StateDatabaseError as exc:  # the disk: the API answers 507, not a run result
            self._end(outcome(str(exc)))
            raise
        except CoreError as exc:  # the run failed and rolled back: a result that says why
            result = outcome(str(exc))
        except Exception as exc:  # a bug: say so in the history rather than stay "running"
            self._end(outcome(f"{type(exc).__name__}: {exc}"))
            raise
        else:
            result = outcome(services=services, sim=sim)
            self._journey = req.journey
        self._end(result)
        return result

    def _end(self, result: RunResult) -> None:
        status = (
            RunStatus.FINISHED
            if result.ok
            else RunStatus.CANCELLED
            if result.cancelled
            else RunStatus.FAILED
        )
        try:
            self.history.finish_run(result, HISTORY_STATUS[status])
        except Exception as exc:  # a full disk must not hide the run's own outcome
            self.events.say("core", f"run history not written: {exc}", LogLevel.ERROR)
        self.events.run.emit(
            RunEvent(result.run_id, status, result.company, result.error or "", result)
        )

    async def _phases(
        self, req: RunRequest, run_id: str, phases: list[PhaseResult], counts: dict[str, int]
    ) -> tuple[list[ServiceRecord], SimulationResult]:
        cleanup = self.settings.cleanup_enabled
        keys = self.manager.customer_keys() if cleanup else []

        async def stop() -> dict[str, int]:
            # In-flight traffic ends on the old services before they stop: the switch fails no
            # journey (docs/architecture.md, "Traffic").
            await self.traffic.pause()
            counts["stopped"] = len(await self.manager.request_stop(keys))
            return {"stopped": counts["stopped"]}

        async def wait() -> dict[str, int]:
            report = await self.manager.wait_stopped(keys)
            return {"exited": report.count, "killed": len(report.killed)}

        async def sweep() -> dict[str, int]:
            if not cleanup:
                return {"staleCleaned": 0, "orphansReaped": 0}
            report = await self.manager.sweep()
            counts["staleCleaned"] = report.stale_cleaned
            return {"staleCleaned": report.stale_cleaned, "orphansReaped": report.orphans_reaped}

        async def launch() -> dict[str, int]:
            started = await self.manager.start_many(self._launch_specs(req.journey), run_id)
            warmed = await self._warm(req.journey) if self.warm_up else 0
            self.traffic.resume(self.traffic_target_of(req.journey))
            return {"launched": len(started), "warmed": warmed}

        sim_box: list[SimulationResult] = []
        simulate = self._simulate_work(req, sim_box)

        work: tuple[tuple[Phase, Work], ...] = (
            (Phase.STOP, stop),
            (Phase.WAIT, wait),
            (Phase.SWEEP, sweep),
            (Phase.LAUNCH, launch),
            (Phase.SIMULATE, simulate),
        )
        try:
            for phase, step in work:
                phases.append(await self.phase(run_id, phase, step))
        except BaseException as exc:
            if self.traffic.paused:  # no new services to resume on: stopped, saying why
                why = f"failed: {exc}" if str(exc) else "cancelled"
                await self.traffic.stop(f"the Run Journey {why}")
            raise
        return self._journey_services(req.journey), sim_box[0]

    def traffic_target_of(self, journey: Journey) -> Target:
        return Target(journey, build_hops(journey, {s.key: s for s in self.manager.services()}))

    async def _warm(self, journey: Journey) -> int:
        """A few requests through the whole new chain (no latency, no injected errors, not
        customers, not exported) so connections are open and first-request costs paid before
        the launch is done: the first customers after a switch run at steady speed
        (docs/architecture.md, "Traffic"; docs/performance.md, "Traffic: warm-up after a
        switch")."""
        hops = [
            h | {"latencyMs": 0, "errorRate": 0}
            for h in build_hops(journey, {s.key: s for s in self.manager.services()})
        ]
        body = {"customer": {"id": "warm-up"}, "hops": hops, "journey": {}}
        http = self._client()

        async def one() -> bool:
            try:
                async with http.post(hops[0]["url"], json=body) as resp:
                    await resp.read()
                    return resp.status == 200
            except (ClientError, TimeoutError):
                return False

        ok = 0
        try:
            async with asyncio.timeout(WARM_TIMEOUT_S):
                for _ in range(WARM_ROUNDS):
                    ok += sum(await asyncio.gather(*(one() for _ in range(WARM_PARALLEL))))
        except TimeoutError:
            self.events.say("core", "warm-up did not finish in time", LogLevel.WARNING)
        return ok

    def _simulate_work(self, req: RunRequest, box: list[SimulationResult]) -> Work:
        """The simulate phase's work, for a full run and a rerun alike; its result goes into
        `box` (a phase's work answers only its counts)."""

        async def simulate() -> dict[str, int]:
            sim = await self._simulate(req)
            box.append(sim)
            s = sim.summary
            return {"customers": s.customers, "completed": s.completed, "failed": s.failed}

        return simulate

    async def _simulate_running(
        self, req: RunRequest, run_id: str, phases: list[PhaseResult], counts: dict[str, int]
    ) -> tuple[list[ServiceRecord], SimulationResult]:
        """The same journey again: its services are up, so only the simulate phase runs (no
        stop/wait/sweep/launch phase is reported, rather than ones with zero counts)."""
        sim_box: list[SimulationResult] = []
        simulate = self._simulate_work(req, sim_box)

        phases.append(await self.phase(run_id, Phase.SIMULATE, simulate))
        return self._journey_services(req.journey), sim_box[0]

    def _journey_services(self, journey: Journey) -> list[ServiceRecord]:
        keys = {s.key for s in journey.service_specs()}
        return [s for s in self.manager.services() if s.key in keys or s.essential]

    async def stop_customer_services(self, wait_s: float = 0.0) -> StopReport:
        """Stop every service but the essential ones, between runs (queueing up to `wait_s`)."""
        async with self._exclusive("stop the customer services", wait_s):
            return await self.manager.stop_customer_services()

    async def _simulate(self, req: RunRequest) -> SimulationResult:
        services = {s.key: s for s in self.manager.services()}
        hops = build_hops(req.journey, services)
        customers = make_customers(req.customers, req.journey.domain, req.seed)
        return await Simulator(self._client(), self._offer).run(
            req.journey, hops, customers, req.mode, req.think_time_ms, req.concurrency
        )

    def _offer(self, journey: Journey, hops: list[dict[str, Any]], result: CustomerResult) -> None:
        # Looked up per customer, so a replaced exporter takes the next customer; queues only.
        self.exporter.offer(journey, hops, result)

    async def replace_exporter(self, export: ExportSettings) -> dict[str, Any]:
        """Export to `export` from the next finished customer on (the window's settings
        dialog). The swap is one assignment once the new exporter is open, before the old one
        starts closing, so no customer is offered to a closing exporter; the old one then sends
        what it had queued to the old endpoint within its close bound, and what is left is
        dropped and counted. Returns the old exporter's final status
        (docs/architecture.md, "Export")."""
        old, self.exporter = self.exporter, await Exporter.open(export)
        await old.aclose()
        return old.status()

    def _client(self) -> ClientSession:
        if self._http is None or self._http.closed:
            self._http = ClientSession(
                connector=TCPConnector(limit=MAX_CONCURRENCY * 2 + MAX_TRAFFIC_IN_FLIGHT)
            )
        return self._http

    def _exclusive(self, what: str, wait_s: float | None = 0.0) -> Exclusive:
        return Exclusive(self._run_lock, what, wait_s)

    async def phase(self, run_id: str, phase: Phase, work: Work) -> PhaseResult:
        """Run one phase, emitting its start and end with duration and counts."""
        started_at = time.time()
        t0 = time.perf_counter()
        self.events.phase.emit(PhaseEvent(run_id, phase, PhaseStatus.STARTED, started_at))
        try:
            counts = await work()
        except BaseException:
            ms = (time.perf_counter() - t0) * 1000
            failed = PhaseEvent(run_id, phase, PhaseStatus.FAILED, started_at, ms, {"error": 1})
            self.events.phase.emit(failed)
            raise
        if self.settings.demo_pacing_ms:
            await asyncio.sleep(self.settings.demo_pacing_ms / 1000)  # deliberate, for audiences
        ms = (time.perf_counter() - t0) * 1000
        self.events.phase.emit(
            PhaseEvent(run_id, phase, PhaseStatus.FINISHED, started_at, ms, counts)
        )
        return PhaseResult(phase, started_at, ms, counts)

    def check_capacity(self, needed: int) -> None:
        """Would `needed` new services fit once the customer services are stopped?"""
        room = self.manager.free_capacity() + len(self.manager.customer_keys())
        if needed > room:
            raise PoolExhaustedError(
                f"the journey needs {needed} ports but the pool "
                f"{self.settings.port_lo}-{self.settings.port_hi} can offer only {room}"
            )
