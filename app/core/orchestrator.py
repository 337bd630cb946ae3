"""The facade: the one object the window, the API and the CLI drive.

`open_core(settings)` assembles the parts for one state directory (lock, database, ledger, pool,
launcher, service manager) on an `AsyncExitStack` and takes them down again in reverse order,
each step running even when an earlier one raised. `Core` is thin: queries and one-line
commands over its parts; a Run Journey is a use case of its own (app/core/run_journey.py),
planned before anything stops (app/core/run_plan.py), over the resident journeys
(app/core/residents.py) and their traffic streams (app/core/streams.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from aiohttp import ClientSession

from app.core import statedir
from app.core.alerts import Alerts
from app.core.chain import Chain, build_chain
from app.core.db import open_db
from app.core.descriptors import raise_open_files_limit
from app.core.errors import (
    BusyError,
    ClientGoneError,
    CoreError,
    NoJourneyError,
    UnknownServiceError,
    ValidationError,
)
from app.core.events import (
    CoreEvents,
    LogLevel,
    RunEvent,
    RunProgress,
    RunStatus,
    ServiceChange,
    ServiceEvent,
)
from app.core.export import Exporter, ExportSettings
from app.core.history import History
from app.core.incidents import Incidents
from app.core.journeys import Journey
from app.core.launcher import ExecLauncher, Launcher
from app.core.ledger import Ledger
from app.core.limits import (
    MAX_HOP_CALLS,
    MAX_PACING_MS,
    MAX_STEPS,
)
from app.core.lock import StateLock
from app.core.metrics import Metrics, Sources
from app.core.model import (
    JourneySummary,
    Listener,
    PortInfo,
    PortState,
    ServiceRecord,
    ServiceSpec,
    ServiceSummary,
    StopReport,
    TroubleKind,
)
from app.core.ports import pool_for
from app.core.residents import Resident, Residents, new_journey_id
from app.core.restarts import Restarter
from app.core.run_journey import SWITCH, Fleet, RunJourney
from app.core.run_plan import plan_run
from app.core.runlock import Exclusive, acquire
from app.core.runs import RunRequest, RunResult, make_request, new_run_id
from app.core.scenario_runner import ScenarioRunner
from app.core.services import ServiceManager
from app.core.settings import AutoRestart, LauncherKind, Settings
from app.core.simulation import CustomerResult
from app.core.streams import TrafficStreams
from app.core.tasks import TaskOwner
from app.core.traffic import STOP_DRAIN_S, Target, check_rate, check_seed
from app.core.traffic_model import TrafficStatus
from app.core.watch import Watcher
from app.service.hop_client import HopClient
from app.service.protocol import Hop

log = logging.getLogger(__name__)
CANCEL_WAIT_S = 30.0
RESTART_QUEUE_S = 10.0  # a restart queues this long behind a run before it is refused
STOP_SLACK_S = 5.0  # SIGKILL, the reap, the port check, a cancelled run's rollback
REUSE_ANSWER_S = 1.0  # reusing a running journey: each service must answer /health this fast


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

    On the way out: traffic stops, the run in progress is cancelled (it rolls back), every
    service is stopped (unless `stop_services_on_close` is False, which only tests use to play
    a crashed panel), then the exporter drains, the launcher, the database and the
    state-directory lock are let go — each of these even if an earlier one raised. `export`
    defaults to the OpenTelemetry environment (OTEL_*; a bad setting fails here, before
    anything is opened)."""
    events = events or CoreEvents()
    export = ExportSettings.from_env() if export is None else export
    raise_open_files_limit()  # before the fork server starts: it and its services inherit it
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
        manager = ServiceManager(
            settings, pool_for(settings), Ledger(conn), launcher, events, Alerts(events)
        )
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
        self.residents = Residents()
        self._run_lock = asyncio.Lock()
        self._run_task: asyncio.Task[RunResult] | None = None
        # Who cancelled the run, when the core did (Stop All, closing): a cancellation's own
        # message does not survive the task groups under a launch.
        self._cancelled_by: str | None = None
        self._http: ClientSession | None = None
        self._hops: HopClient | None = None  # the chains' calls: app/service/hop_client.py
        # Traffic is exported too, through whichever exporter is current (replace_exporter).
        self.traffic = TrafficStreams(events, self._hop_client, self._offer)
        # Incidents in the running services and scenarios of them (docs/architecture.md,
        # "Incidents and scenarios"); traffic shows each step's incident.
        self.incidents = Incidents(manager, self.residents, events, self._client, self.service_key)
        self.traffic.incident_of = self.incidents.headline_of
        # Alerts on cleanup failures and the Prometheus metrics (docs/architecture.md,
        # "Metrics and alerts"): one registry per Core, read by /metrics and the window.
        self.alerts = manager.alerts
        self.metrics = Metrics(
            events,
            Sources(
                ports=lambda: self.ports(),
                services=manager.services,
                export_status=lambda: self.exporter.status(),
                incidents_active=lambda: len(self.incidents.active()),
            ),
            self.alerts.snapshot,
        )
        self.traffic.on_second = self.metrics.traffic_second
        exporter.read_panel_metrics(self.metrics.registry)  # read, never counted twice
        self.scenarios = ScenarioRunner(self.incidents, events)
        self.warm_up = True  # warm each new chain before the launch is done (bench turns it off)
        self.watcher = Watcher(manager, lambda: self.traffic.running, self._housekeeping)
        self._background = TaskOwner("core", self._background_failed)
        self._restarter = Restarter(manager, events, self._background, self.restart_service)
        self._fleet = Fleet(
            settings=lambda: self.settings,
            events=events,
            manager=manager,
            history=history,
            traffic=self.traffic,
            residents=self.residents,
            hops=self._hop_client,
            offer=self._offer,
            warm_up=lambda: self.warm_up,
        )
        events.service.connect(self._on_service)
        events.run.connect(self._on_run)
        # The run in progress's latest count of customers done: GET /api/runs/{id} says it.
        self.progress: RunProgress | None = None
        events.progress.connect(self._on_progress)

    async def start(self, *notes: str | None) -> None:
        for note in filter(None, notes):  # the state directory's and the database's
            self._startup_note(note)
        self.history.mark_interrupted()
        reaped = self.reconciled = await self.manager.reconcile()
        if reaped:
            self._startup_note(
                f"stopped {len(reaped)} services left by an earlier run: {', '.join(reaped)}"
            )
        self.watcher.start()
        self._background.spawn(self.metrics.sample_forever(), "metrics samples")

    def _startup_note(self, message: str) -> None:
        self.startup_messages.append(message)
        self.events.say("core", message, LogLevel.WARNING)

    async def aclose(self) -> None:
        """First step of closing: no run, watch or restart may go on while the services are
        stopped."""
        try:
            await self.scenarios.aclose()
            await self.incidents.aclose()
            await self.watcher.aclose()
            await self._background.aclose()
            await self._cancel_run("the panel closing")
        finally:
            if self._http is not None:
                await self._http.close()
            if self._hops is not None:
                await self._hops.aclose()

    # -- queries ------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._run_lock.locked()

    @property
    def stop_bound_s(self) -> float:
        """How long Stop All may take, whatever the services do: traffic's drain, then every
        service's grace (they stop concurrently), the kill and the port check."""
        return STOP_DRAIN_S + self.settings.stop_grace_ms / 1000 + STOP_SLACK_S

    @property
    def pool_label(self) -> str:
        return self.manager.pool.label

    def likely_owners(self) -> list[int]:
        """The pids a scan looks among first (ServiceManager.likely_owners)."""
        return self.manager.likely_owners()

    def scan(self, likely: list[int] | None = None) -> Mapping[int, Listener]:
        """The OS scan alone (no shared state): safe on a worker thread when `likely` was
        taken on the loop."""
        return self.manager.pool.scan(self.likely_owners() if likely is None else likely)

    def ports(self, listeners: Mapping[int, Listener] | None = None) -> list[PortInfo]:
        """Every port's state; from `listeners` if a scan was already made."""
        return self.manager.snapshot(listeners)

    def services(self) -> list[ServiceRecord]:
        return self.manager.services()

    def journeys(self) -> list[Resident]:
        """The resident journeys, oldest first."""
        return list(self.residents)

    def journey_summaries(self) -> list[JourneySummary]:
        """Each resident journey with its services (and essential ones it calls) and its
        traffic, oldest first."""
        records = {s.key: s for s in self.manager.services()}
        out = []
        for r in self.residents:
            j = r.journey
            keys = [s.key for s in j.service_specs()]
            services = tuple(
                ServiceSummary(rec.service_name, rec.key, rec.port, rec.pid)
                for k in keys
                if (rec := records.get(k)) is not None
            )
            stream = self.traffic.get(r.id)
            traffic = stream.status() if stream is not None and stream.running else None
            steps = tuple((s.step_name, s.service_name) for s in j.steps)
            out.append(
                JourneySummary(
                    r.id,
                    j.company_name,
                    j.domain,
                    j.industry_type,
                    steps,
                    services,
                    r.started_at,
                    traffic,
                )
            )
        return out

    def set_demo_pacing(self, ms: int) -> None:
        """A pause in each phase that has work, so an audience can follow (0–2 s; where it goes:
        docs/architecture.md, "A Run Journey, phase by phase")."""
        self.settings = self.settings.with_(demo_pacing_ms=max(0, min(MAX_PACING_MS, int(ms))))

    def essential_specs(self) -> list[ServiceSpec]:
        return [
            ServiceSpec(e.service_name, e.company, essential=True)
            for e in self.settings.essential_services
        ]

    def chain_for(self, journey: Journey) -> Chain:
        """`journey`'s chain on the services running now, signed with this panel's key."""
        services = {s.key: s for s in self.manager.services()}
        return build_chain(journey, services, self.manager.chain_secret)

    def journey_running(self, resident: Resident) -> bool:
        """Does each service of `resident`'s chain (its own and essential ones) still answer
        on its port?"""
        states = {p.key: p.state for p in self.ports() if p.key}
        keys = {s.key for s in resident.journey.service_specs()}
        return all(states.get(k) is PortState.ALLOCATED for k in keys)

    # -- commands outside runs ----------------------------------------------------------------
    async def stop_all(self) -> StopReport:
        """Manual full cleanup. A scenario and traffic stop first, then a run in progress is
        cancelled (it rolls back); the incidents go with the services they were in."""
        await self.scenarios.stop("Stop All")
        await self.traffic.stop(reason="Stop All")
        await self._cancel_run("Stop All")
        async with self._exclusive("stop all", None):
            self.residents.clear()
            t0 = time.perf_counter()
            report = await self.manager.stop_all()
            self.metrics.cleanup("stop_all", time.perf_counter() - t0, report.count)
            return report

    async def stop_journey(self, journey_id: str, wait_s: float = 0.0) -> StopReport:
        """Stop one resident journey: its traffic, then its services (essentials stay)."""
        resident = self.residents.get(journey_id)
        if resident is None:
            raise UnknownServiceError(f"no running journey {journey_id!r}")
        async with self._exclusive(f"stop journey {journey_id}", wait_s):
            await self.traffic.stop(journey_id, f"journey {journey_id} was stopped")
            self.traffic.forget(journey_id)
            self.residents.remove(journey_id)
            keys = [k for k in resident.keys if (r := self.manager.get(k)) and not r.essential]
            return await self.manager.stop(keys)

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

    async def stop_customer_services(self, wait_s: float = 0.0) -> StopReport:
        """Stop every service but the essential ones, between runs (queueing up to `wait_s`)."""
        async with self._exclusive("stop the customer services", wait_s):
            # Like a Run Journey's stop phase: traffic ends on these services first, and goes on
            # through the next journey that runs.
            reason = "the customer services were stopped: traffic resumes with the next journey"
            await self.traffic.hold([t.journey_id for t in self.traffic.live()], SWITCH, reason)
            self.residents.clear()
            return await self.manager.stop_customer_services()

    async def cleanup(self, wait_s: float = 0.0, trigger: str = "sweep") -> dict[str, int]:
        """Sweep now: stale allocations released, our orphans stopped (queueing up to
        `wait_s` behind a run). `trigger` names the caller in the metrics (sweep, compat)."""
        async with self._exclusive("cleanup", wait_s):
            t0 = time.perf_counter()
            report = await self.manager.sweep()
            seconds = time.perf_counter() - t0
            self.metrics.cleanup(
                trigger, seconds, stale=report.stale_cleaned, orphans=report.orphans_reaped
            )
        return {"staleCleaned": report.stale_cleaned, "orphansReaped": report.orphans_reaped}

    # -- watching the fleet (docs/architecture.md, "Watching the fleet") ----------------------
    async def restart_service(self, name: str, wait_s: float = RESTART_QUEUE_S) -> ServiceRecord:
        """Stop service `name` (a key, or a service name running once) and start it again, on
        its port when free; traffic through it holds meanwhile and goes on through the new
        process (its chain rebuilt). Queues up to `wait_s` behind a run."""
        key = self.service_key(name)
        async with self._exclusive(f"restart {name}", wait_s):
            record = self.manager.get(key)
            if record is None:
                raise UnknownServiceError(f"no running service {name!r} (it was stopped)")
            hold = f"restart:{key}"
            self.traffic.hold_now(hold, f"restarting {record.service_name} on {record.port}", key)
            try:
                restarted = await self.manager.restart(key)
            except CoreError as exc:
                why = f"{record.service_name} could not be restarted: {exc}"
                self.traffic.hold_now(hold, why, key)
                raise
            await self._reaim(key, hold)
            self.metrics.restarted(restarted.service_name)
            return restarted

    async def _reaim(self, key: str, *holds: str) -> None:
        """Every stream through `key` goes on through its rebuilt chain (the key's new port)."""
        for stream in self.traffic.live():
            resident = self.residents.get(stream.journey_id)
            if resident is None or key not in resident.keys:
                continue
            target = Target(resident.journey, self.chain_for(resident.journey))
            for hold in (_trouble_hold(key), *holds):
                await self.traffic.release(resident.id, hold, target)

    def service_key(self, name: str) -> str:
        """The key of our running service `name`: a key, or a service name only one company
        runs now. UnknownServiceError / ValidationError (ambiguous) otherwise."""
        if self.manager.get(name) is not None:
            return name
        keys = sorted(s.key for s in self.manager.services() if s.service_name == name)
        if not keys:
            raise UnknownServiceError(f"no running service {name!r}")
        if len(keys) > 1:
            raise ValidationError(f"{name!r} runs for several companies: name one of {keys}")
        return keys[0]

    def _on_service(self, event: ServiceEvent) -> None:
        """A service broke or recovered: traffic through it holds at once (nothing more is
        sent to its port) and goes on when it answers again; restart it if asked to."""
        if event.change in (ServiceChange.EXITED, ServiceChange.TROUBLE):
            self._broken(event.key, event.detail)
        elif event.change is ServiceChange.RECOVERED:
            release = self.traffic.release_everywhere(_trouble_hold(event.key))
            self._background.spawn(release, "resume")

    def _broken(self, key: str, detail: str) -> None:
        record = self.manager.get(key)
        trouble = self.manager.trouble(key)
        if record is None or trouble is None:
            return
        reason = f"{record.service_name} on {record.port} {detail}"
        self.traffic.hold_now(_trouble_hold(key), reason, key)
        auto = self.settings.autorestart is AutoRestart.ON_FAILURE
        if auto and trouble.kind is not TroubleKind.GAVE_UP:
            self._restarter.broken(key)

    def _housekeeping(self) -> None:
        """Each round of the watcher: give back grown blocks of the pool that stay unused;
        alert once when the pool crosses 90 % used (app/core/alerts.py)."""
        self.check_pool()
        if self.busy:
            return
        if removed := self.manager.pool.shrink(self.manager.by_port()):
            label = self.manager.pool.label
            self.events.say("pool", f"the pool shrank by {removed} unused ports to {label}")

    def _on_progress(self, progress: RunProgress) -> None:
        self.progress = progress

    def progress_of(self, run_id: str) -> RunProgress | None:
        """The customers done so far of `run_id`, while it is the run in progress."""
        found = self.progress
        return found if found is not None and found.run_id == run_id and self.busy else None

    def _on_run(self, event: RunEvent) -> None:
        if event.status is not RunStatus.STARTED:  # a launch may have filled the pool
            self.check_pool()

    def check_pool(self) -> None:
        """Raise the pool alert when its use crosses the mark, clear it below (once each)."""
        cells = self.ports()
        used = sum(1 for c in cells if c.state is not PortState.FREE)
        self.alerts.check_pool(used, len(cells))

    def _background_failed(self, name: str, exc: BaseException) -> None:
        self.events.say("core", f"{name} failed: {type(exc).__name__}: {exc}", LogLevel.ERROR)

    # -- traffic (docs/architecture.md, "Traffic") --------------------------------------------
    async def start_traffic(
        self, rate: object, seed: object = None, journey: str | None = None
    ) -> TrafficStatus:
        """Continuous traffic through a resident journey (the newest by default), or a new
        rate for its stream. A bad rate raises ValidationError, no such running journey
        NoJourneyError; neither changes anything."""
        value, seed_value = check_rate(rate), check_seed(seed)
        resident = self._traffic_journey(journey)
        stream = self.traffic.get(resident.id)
        if stream is not None and stream.running:  # held too: a switch keeps the new rate
            return await self.traffic.set_rate(resident.id, value)
        if self.busy:
            raise BusyError("cannot start traffic: a journey run is in progress")
        if not self.journey_running(resident):
            raise NoJourneyError(self._not_running(resident))
        target = Target(resident.journey, self.chain_for(resident.journey))
        status = await self.traffic.start(resident.id, value, target, seed_value)
        self.watcher.poke()  # the chain carries customers now: watch it at the short interval
        return status

    def _traffic_journey(self, journey_id: str | None) -> Resident:
        if journey_id is not None:
            found = self.residents.get(journey_id)
            if found is None:
                raise NoJourneyError(f"no running journey {journey_id!r}")
            return found
        newest = self.residents.newest()
        if newest is None:
            raise NoJourneyError("no journey is running: run one first, then start traffic")
        return newest

    def _not_running(self, resident: Resident) -> str:
        """Why traffic cannot go through `resident`, and what the operator can do."""
        states = {p.key: p for p in self.ports() if p.key}
        journey = resident.journey
        for spec in journey.service_specs():
            port = states.get(spec.key)
            if port is None:
                return (
                    f"{spec.service_name} of {journey.company_name} is not running any more: "
                    "run the journey again, then start traffic"
                )
            if port.state is not PortState.ALLOCATED:
                what = port.trouble or port.state.value
                return (
                    f"{spec.service_name} of {journey.company_name} is {what}: restart it "
                    "(its cell's menu) or run the journey again, then start traffic"
                )
        return f"the journey {resident.id} is not running: run it again first"

    async def stop_traffic(self, journey: str | None = None) -> TrafficStatus:
        """Drain and stop one journey's stream, or all: the final counts."""
        if journey is not None and self.traffic.get(journey) is None:
            raise NoJourneyError(f"no traffic runs through journey {journey!r}")
        return await self.traffic.stop(journey)

    # -- runs ---------------------------------------------------------------------------------
    def make_request(self, journey: Any, **params: Any) -> RunRequest:
        return make_request(
            journey,
            **params,
            max_steps=min(MAX_STEPS, len(self.settings.max_ports)),
            max_customers=self.settings.max_customers,
            default_cleanup=self.settings.cleanup_strategy,
        )

    async def run_journey(
        self,
        journey: Any,
        wait_s: float = 0.0,
        reuse_running: bool = False,
        still_wanted: Callable[[], bool] | None = None,
        **params: Any,
    ) -> RunResult:
        """Validate and plan, then stop, wait, sweep, launch, simulate. Bad input raises
        ValidationError, a plan that cannot work RunConflictError or PoolExhaustedError — and
        nothing is stopped; a run in progress BusyError (after queueing up to `wait_s` for it
        to end). With `reuse_running`, a journey equal to a resident one, each of its services
        answering /health with its identity within REUSE_ANSWER_S, only simulates on its
        services. A queued run whose `still_wanted` says no once its turn comes is dropped
        (ClientGoneError) before anything happens. A run that fails later returns ok=False
        with the reason (its services rolled back).

        The run is a task of its own that holds the run lock until it ends: a caller that is
        cancelled (a closing API) leaves it running under the core, where Stop All and closing
        find and cancel it."""
        request = (
            journey if isinstance(journey, RunRequest) else self.make_request(journey, **params)
        )
        await acquire(self._run_lock, "run a journey", wait_s)
        try:
            if still_wanted is not None and not still_wanted():
                raise ClientGoneError("the caller went away while the run was queued")
            # Under the lock: a queued request finds the pool as the run before it left it.
            run = await self._prepare(request, reuse_running)
        except BaseException:
            self._run_lock.release()
            raise
        task = asyncio.create_task(self._run_locked(run))
        self._run_task = task
        # A run the core cancels (Stop All, closing) ends with a result that says so; our
        # caller being cancelled leaves the run to the core (CancelledError here).
        return await asyncio.shield(task)

    async def _prepare(self, request: RunRequest, reuse_running: bool) -> RunJourney:
        run_id = new_run_id()
        if reuse_running and (resident := await self._answering(request.journey)):
            return RunJourney(self._fleet, request, run_id, on=resident)
        plan = plan_run(
            request,
            new_journey_id(),
            self.residents,
            self.manager,
            self.essential_specs(),
            self.settings.preserve_companies,
            self.settings.cleanup_enabled,
        )
        return RunJourney(self._fleet, request, run_id, plan)

    async def _run_locked(self, run: RunJourney) -> RunResult:
        self._cancelled_by = None
        try:
            return await run.run(lambda: self._cancelled_by)
        finally:
            self._run_task = None
            self._run_lock.release()

    async def _answering(self, journey: Journey) -> Resident | None:
        """The resident journey equal to `journey`, each of its services answering with its
        identity now (a hung one must mean a full run, not a reuse that waits for it)."""
        resident = next((r for r in self.residents if r.journey == journey), None)
        if resident is None or not self.journey_running(resident):
            return None
        keys = [s.key for s in journey.service_specs()]
        ok = await self.manager.all_answer(keys, REUSE_ANSWER_S)
        return resident if ok else None

    # -- export -------------------------------------------------------------------------------
    def _offer(self, journey: Journey, hops: Sequence[Hop], result: CustomerResult) -> None:
        # Looked up per customer, so a replaced exporter takes the next customer; queues only.
        self.exporter.offer(journey, hops, result)

    async def replace_exporter(self, export: ExportSettings) -> dict[str, Any]:
        """Export to `export` from the next finished customer on (the window's settings
        dialog). The swap is one assignment once the new exporter is open, before the old one
        starts closing, so no customer is offered to a closing exporter; the old one then sends
        what it had queued to the old endpoint within its close bound, and what is left is
        dropped and counted. Returns the old exporter's final status
        (docs/architecture.md, "Export")."""
        new = await Exporter.open(export)
        new.read_panel_metrics(self.metrics.registry)
        old, self.exporter = self.exporter, new
        await old.aclose()
        return old.status()

    def _client(self) -> ClientSession:
        if self._http is None or self._http.closed:
            # The incidents' control calls only (chains go through the hop client).
            self._http = ClientSession()
        return self._http

    def _hop_client(self) -> HopClient:
        if self._hops is None or self._hops.closed:
            self._hops = HopClient(MAX_HOP_CALLS)
        return self._hops

    def _exclusive(self, what: str, wait_s: float | None = 0.0) -> Exclusive:
        return Exclusive(self._run_lock, what, wait_s)


def _trouble_hold(key: str) -> str:
    """The traffic hold while service `key` is broken."""
    return f"trouble:{key}"
