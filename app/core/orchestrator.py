"""The facade: the one object the window, the API and the CLI drive.

`Core` assembles the parts for one state directory (lock, database, ledger, pool, launcher,
service manager) and runs journeys phase by phase (DESIGN.md §4).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, TCPConnector

from app.config import LauncherKind, Settings
from app.core.db import open_db
from app.core.errors import BusyError, CoreError, PoolExhaustedError, ValidationError
from app.core.events import EventBus, PhaseEvent, RunEvent
from app.core.export import Exporter, ExportSettings
from app.core.history import History
from app.core.journeys import Journey, parse_journey
from app.core.launcher import ExecLauncher, Launcher
from app.core.ledger import Ledger
from app.core.lock import StateLock
from app.core.model import Listener, Phase, PortInfo, ServiceInfo, ServiceSpec, StopReport
from app.core.ports import PortPool
from app.core.services import ServiceManager
from app.core.simulation import (
    DEFAULT_CONCURRENCY,
    Mode,
    SimulationResult,
    Simulator,
    build_hops,
    make_customers,
)

MAX_THINK_TIME_MS = 10_000
MAX_PACING_MS = 2000
MAX_CONCURRENCY = 200
CANCEL_WAIT_S = 30.0


def make_launcher(kind: LauncherKind) -> Launcher:
    if kind is LauncherKind.FORK:
        from app.core.forkserver import ForkServerLauncher

        return ForkServerLauncher()
    return ExecLauncher()


@dataclass(frozen=True)
class PhaseResult:
    phase: Phase
    started_at: float
    duration_ms: float
    counts: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.phase.value, "ms": round(self.duration_ms, 2), **self.counts}


@dataclass(frozen=True)
class RunRequest:
    """A validated request to run a journey."""

    journey: Journey
    customers: int = 1
    mode: Mode = Mode.SINGLE
    think_time_ms: float = 0.0
    concurrency: int = DEFAULT_CONCURRENCY
    seed: int | None = None


@dataclass(frozen=True)
class RunResult:
    run_id: str
    ok: bool
    phases: tuple[PhaseResult, ...]
    stopped: int = 0
    stale_cleaned: int = 0
    services: tuple[ServiceInfo, ...] = ()
    simulation: SimulationResult | None = None
    error: str | None = None

    def phase(self, phase: Phase) -> PhaseResult | None:
        return next((p for p in self.phases if p.phase is phase), None)

    def as_json(self) -> dict[str, Any]:
        sim = self.simulation
        return {
            "ok": self.ok,
            "runId": self.run_id,
            "phases": [p.as_json() for p in self.phases],
            "cleanup": {"stopped": self.stopped, "staleCleaned": self.stale_cleaned},
            "services": [_service_json(s) for s in self.services],
            "customers": [c.to_json() for c in sim.customers] if sim else [],
            "summary": sim.summary.to_json() if sim else None,
            **({"error": self.error} if self.error else {}),
        }


def _service_json(s: ServiceInfo) -> dict[str, Any]:
    return {
        "name": s.service_name,
        "key": s.key,
        "company": s.company,
        "port": s.port,
        "pid": s.pid,
        "essential": s.essential,
    }


def new_run_id() -> str:
    return f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(3).hex()}"


def make_request(
    journey: Any,
    customers: Any = 1,
    mode: Any = Mode.SINGLE,
    think_time_ms: Any = 0,
    concurrency: Any = DEFAULT_CONCURRENCY,
    seed: Any = None,
    max_steps: int = 40,
    max_customers: int = 10_000,
) -> RunRequest:
    """Validate every run parameter; raises ValidationError listing what is wrong."""
    problems: list[str] = []
    try:
        parsed = journey if isinstance(journey, Journey) else parse_journey(journey, max_steps)
    except ValidationError as exc:
        problems += exc.problems
        parsed = None
    if not _whole(customers, 1, max_customers):
        problems.append(f"customers must be a whole number from 1 to {max_customers}")
    try:
        mode = Mode(mode)
    except ValueError:
        problems.append(f"mode must be one of {', '.join(m.value for m in Mode)}")
    if not _number(think_time_ms, 0, MAX_THINK_TIME_MS):
        problems.append(f"thinkTimeMs must be a number from 0 to {MAX_THINK_TIME_MS}")
    if not _whole(concurrency, 1, MAX_CONCURRENCY):
        problems.append(f"concurrency must be a whole number from 1 to {MAX_CONCURRENCY}")
    if seed is not None and not _whole(seed, 0, 2**63):
        problems.append("seed must be a non-negative whole number")
    if problems or parsed is None:
        raise ValidationError(problems)
    return RunRequest(parsed, customers, mode, float(think_time_ms), concurrency, seed)


def _whole(value: Any, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _number(value: Any, lo: float, hi: float) -> bool:
    ok_type = isinstance(value, int | float) and not isinstance(value, bool)
    return ok_type and lo <= value <= hi


class Core:
    """Open with `await Core.open(settings)`; close with `await core.close()`."""

    def __init__(
        self, settings: Settings, bus: EventBus | None = None, export: ExportSettings | None = None
    ) -> None:
        self.settings = settings
        self.export_settings = export
        self.exporter = Exporter(ExportSettings())  # replaced by an open one at start
        self.bus = bus or EventBus()
        self.startup_messages: list[str] = []
        self.reconciled: tuple[str, ...] = ()  # orphans of an earlier run stopped at open
        self._lock = StateLock(settings.state_dir)
        self._run_lock = asyncio.Lock()
        self._run_task: asyncio.Task[RunResult] | None = None
        self._cancelled_by: str | None = None
        self._http: ClientSession | None = None
        self.db_conn: Any = None
        self.manager: ServiceManager
        self.history: History

    @classmethod
    async def open(
        cls, settings: Settings, bus: EventBus | None = None, export: ExportSettings | None = None
    ) -> Core:
        core = cls(settings, bus, export)
        await core._start()
        return core

    async def _start(self) -> None:
        export = self.export_settings or ExportSettings.from_env()  # a bad setting fails here
        self._lock.acquire()
        try:
            self.db_conn, message = open_db(self.settings.db_path)
            if message:
                self.startup_messages.append(message)
                self.bus.log("core", message, "warning")
            self.history = History(self.db_conn)
            self.history.mark_interrupted()
            launcher = make_launcher(self.settings.launcher)
            pool = PortPool(self.settings.ports)
            self.manager = ServiceManager(
                self.settings, pool, Ledger(self.db_conn), launcher, self.bus
            )
            reaped = self.reconciled = await self.manager.reconcile()
            if reaped:
                msg = f"stopped {len(reaped)} services left by an earlier run: {', '.join(reaped)}"
                self.startup_messages.append(msg)
                self.bus.log("core", msg, "warning")
            self.exporter = await Exporter.open(export)
        except BaseException:
            self._lock.release()
            raise

    async def close(self, stop_services: bool = True) -> None:
        await self._cancel_run("the panel closing")
        await self.exporter.aclose()
        await self.manager.aclose(stop_services)
        if self._http is not None:
            await self._http.close()
        await self.manager.launcher.aclose()
        self.db_conn.close()
        self._lock.release()

    # -- queries ------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._run_lock.locked()

    def scan(self) -> Mapping[int, Listener]:
        """The OS scan alone (psutil, no shared state): safe to run on a worker thread."""
        return self.manager.pool.scan()

    def ports(self, listeners: Mapping[int, Listener] | None = None) -> list[PortInfo]:
        """Every port's state; from `listeners` if a scan was already made."""
        return self.manager.snapshot(listeners)

    def set_demo_pacing(self, ms: int) -> None:
        """An extra pause after each phase so an audience can follow (0–2 s)."""
        self.settings = self.settings.with_(demo_pacing_ms=max(0, min(MAX_PACING_MS, int(ms))))

    def services(self) -> list[ServiceInfo]:
        return self.manager.services()

    # -- commands outside runs ----------------------------------------------------------------
    async def stop_all(self) -> StopReport:
        """Manual full cleanup. A run in progress is cancelled first (it rolls back)."""
        await self._cancel_run("Stop All")
        async with self._exclusive("stop all", wait=True):
            return await self.manager.stop_all()

    async def _cancel_run(self, why: str) -> None:
        task = self._run_task
        if task is None or task.done():
            return
        self._cancelled_by = why
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError, CoreError):
            await asyncio.wait_for(asyncio.shield(task), CANCEL_WAIT_S)

    async def stop_service(self, key: str) -> StopReport:
        return await self.manager.stop([key])

    async def cleanup(self) -> dict[str, int]:
        """Sweep now: stale allocations released, our orphans stopped."""
        async with self._exclusive("cleanup"):
            report = await self.manager.sweep()
        return {"staleCleaned": report.stale_cleaned, "orphansReaped": report.orphans_reaped}

    def essential_specs(self) -> list[ServiceSpec]:
        return [
            ServiceSpec(e.service_name, e.company, essential=True)
            for e in self.settings.essential_services
        ]

    # -- runs ---------------------------------------------------------------------------------
    def make_request(self, journey: Any, **params: Any) -> RunRequest:
        return make_request(
            journey,
            **params,
            max_steps=len(self.settings.ports),
            max_customers=self.settings.max_customers,
        )

    async def run_journey(self, journey: Any, **params: Any) -> RunResult:
        """Validate, then stop, wait, sweep, launch, simulate. Bad input raises ValidationError
        and stops nothing; a full pool raises PoolExhaustedError; a run in progress BusyError.
        A run that fails later returns ok=False with the reason (its services rolled back)."""
        request = (
            journey if isinstance(journey, RunRequest) else self.make_request(journey, **params)
        )
        if self.busy:
            raise BusyError("a journey run is already in progress; try again when it finishes")
        self.check_capacity(len(self._launch_specs(request.journey)))
        async with self._exclusive("run a journey"):
            self._cancelled_by = None
            task = asyncio.create_task(self._run(request, new_run_id()))
            self._run_task = task
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                if self._cancelled_by is None:
                    raise
                return (
                    task.result()
                    if task.done() and not task.cancelled()
                    else RunResult("", False, (), error=f"cancelled by {self._cancelled_by}")
                )
            finally:
                self._run_task = None

    def _launch_specs(self, journey: Journey) -> list[ServiceSpec]:
        """Essentials not yet running, then the journey's services (an essential key wins)."""
        running = {s.key for s in self.manager.services()}
        specs = [s for s in self.essential_specs() if s.key not in running]
        keys = {s.key for s in specs} | {s.key for s in self.manager.services() if s.essential}
        return specs + [s for s in journey.service_specs() if s.key not in keys]

    async def _run(self, req: RunRequest, run_id: str) -> RunResult:
        started = time.time()
        self.history.start(run_id, started, req.mode.value, req.journey.to_json())
        self.bus.emit(RunEvent(run_id, "started", req.journey.company_name))
        phases: list[PhaseResult] = []
        counts = {"stopped": 0, "staleCleaned": 0}
        try:
            services, sim = await self._phases(req, run_id, phases, counts)
            result = RunResult(
                run_id,
                True,
                tuple(phases),
                counts["stopped"],
                counts["staleCleaned"],
                tuple(services),
                sim,
            )
        except asyncio.CancelledError:
            why = f"cancelled by {self._cancelled_by or 'the caller'}"
            self._record(run_id, "cancelled", phases, [], None, why)
            self.bus.emit(RunEvent(run_id, "failed", why))
            raise
        except CoreError as exc:
            result = RunResult(
                run_id,
                False,
                tuple(phases),
                counts["stopped"],
                counts["staleCleaned"],
                error=str(exc),
            )
        self._record(
            run_id,
            "ok" if result.ok else "failed",
            phases,
            list(result.services),
            result.simulation,
            result.error,
        )
        self.bus.emit(RunEvent(run_id, "finished" if result.ok else "failed", result.error or ""))
        return result

    async def _phases(
        self, req: RunRequest, run_id: str, phases: list[PhaseResult], counts: dict[str, int]
    ) -> tuple[list[ServiceInfo], SimulationResult]:
        cleanup = self.settings.cleanup_enabled
        keys = self.manager.customer_keys() if cleanup else []

        async def stop() -> dict[str, int]:
            counts["stopped"] = len(self.manager.request_stop(keys))
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
            return {"launched": len(started)}

        sim_box: list[SimulationResult] = []

        async def simulate() -> dict[str, int]:
            services = {s.key: s for s in self.manager.services()}
            hops = build_hops(req.journey, services)
            customers = make_customers(req.customers, req.journey.domain, req.seed)
            on_customer = self.exporter.offer if self.exporter.enabled else None
            sim = await Simulator(self._client(), on_customer).run(
                req.journey, hops, customers, req.mode, req.think_time_ms, req.concurrency
            )
            sim_box.append(sim)
            return {
                "customers": sim.summary.customers,
                "completed": sim.summary.completed,
                "failed": sim.summary.failed,
            }

        for phase, work in (
            (Phase.STOP, stop),
            (Phase.WAIT, wait),
            (Phase.SWEEP, sweep),
            (Phase.LAUNCH, launch),
            (Phase.SIMULATE, simulate),
        ):
            phases.append(await self.phase(run_id, phase, work))
        keys_now = {s.key for s in req.journey.service_specs()}
        services = [s for s in self.manager.services() if s.key in keys_now or s.essential]
        return services, sim_box[0]

    def _record(
        self,
        run_id: str,
        status: str,
        phases: list[PhaseResult],
        services: list[ServiceInfo],
        sim: SimulationResult | None,
        error: str | None,
    ) -> None:
        self.history.finish(
            run_id,
            time.time(),
            status,
            [p.as_json() for p in phases],
            [_service_json(s) for s in services],
            sim.summary.to_json() if sim else None,
            [
                c.to_json() | {"steps": [s.to_json() | {"event": s.event} for s in c.steps]}
                for c in sim.customers
            ]
            if sim
            else [],
            error,
        )

    def _client(self) -> ClientSession:
        if self._http is None or self._http.closed:
            self._http = ClientSession(connector=TCPConnector(limit=MAX_CONCURRENCY * 2))
        return self._http

    def _exclusive(self, what: str, wait: bool = False) -> _Exclusive:
        return _Exclusive(self._run_lock, what, wait)

    async def phase(
        self,
        run_id: str,
        phase: Phase,
        work: Callable[[], Awaitable[dict[str, int]]],
    ) -> PhaseResult:
        """Run one phase, emitting its start and end with duration and counts."""
        started_at = time.time()
        t0 = time.perf_counter()
        self.bus.emit(PhaseEvent(run_id, phase, "started", started_at))
        try:
            counts = await work()
        except BaseException:
            ms = (time.perf_counter() - t0) * 1000
            self.bus.emit(PhaseEvent(run_id, phase, "failed", started_at, ms, {"error": 1}))
            raise
        if self.settings.demo_pacing_ms:
            await asyncio.sleep(self.settings.demo_pacing_ms / 1000)  # deliberate, for audiences
        ms = (time.perf_counter() - t0) * 1000
        self.bus.emit(PhaseEvent(run_id, phase, "finished", started_at, ms, counts))
        return PhaseResult(phase, started_at, ms, counts)

    def check_capacity(self, needed: int) -> None:
        """Would `needed` new services fit once the customer services are stopped?"""
        listeners = self.manager.pool.scan()
        reusable = len(self.manager.customer_keys())
        room = self.manager.pool.free_capacity(listeners) + reusable
        if needed > room:
            raise PoolExhaustedError(
                f"the journey needs {needed} ports but the pool "
                f"{self.settings.port_lo}-{self.settings.port_hi} can offer only {room}"
            )


class _Exclusive:
    """Serialises runs and manual cleanups: a second one gets a clear BusyError at once."""

    def __init__(self, lock: asyncio.Lock, what: str, wait: bool) -> None:
        self._lock = lock
        self._what = what
        self._wait = wait

    async def __aenter__(self) -> None:
        if self._lock.locked() and not self._wait:
            raise BusyError(f"cannot {self._what}: a journey run is in progress")
        await self._lock.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()
