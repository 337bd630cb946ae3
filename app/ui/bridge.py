"""The one UI module that touches the core.

`CoreBridge` owns the `Core`, turns its bus events into Qt signals, runs commands as coroutines on
the qasync loop (the same loop the window runs on), and refreshes the port snapshot about four
times a second. Everything the widgets show arrives through its signals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import psutil
from PySide6.QtCore import QObject, QTimer, Signal

from app.core.alerts import Alert, AlertChange, AlertEvent
from app.core.errors import CoreError, JourneyFileError, Problem, StateLockedError, ValidationError
from app.core.events import (
    CoreEvents,
    LogEvent,
    LogLevel,
    PhaseEvent,
    RunEvent,
    RunProgress,
    RunStatus,
    ServiceEvent,
)
from app.core.export import ExportSettings, ExportSettingsError
from app.core.export import Signal as ExportSignal
from app.core.export import saved as saved_export
from app.core.export.connection import ConnectionCheck, check_values
from app.core.export.saved import ExportForm, export_env
from app.core.export.settings import parse_pairs
from app.core.incident_model import Incident, IncidentChange, IncidentEvent
from app.core.journeys import read_journey_file, write_journey_file
from app.core.limits import MAX_PACING_MS
from app.core.metrics import MetricsSnapshot, Sample
from app.core.model import JourneySummary, PortInfo, ServiceRecord, StopReport
from app.core.orchestrator import Core, open_core
from app.core.runs import RunResult
from app.core.scenarios import packaged_names, read_scenario_file
from app.core.settings import Settings
from app.core.tasks import TaskOwner as TaskOwner  # re-exported for the window's own tasks
from app.core.traces import KeptTrace, TraceKind
from app.core.traffic_model import TrafficStatus
from app.ui import cadence
from app.ui.cells import CellModel

log = logging.getLogger(__name__)
# What the window needs of the core besides the bridge itself (it imports nothing else there).
__all__ = [
    "MAX_PACING_MS",
    "Alert",
    "AlertChange",
    "AlertEvent",
    "ApiStarter",
    "ApiStopper",
    "CoreBridge",
    "CoreError",
    "ExportForm",
    "ExportSettingsError",
    "Incident",
    "IncidentChange",
    "IncidentEvent",
    "JourneyFileError",
    "MetricsSnapshot",
    "Problem",
    "Sample",
    "Settings",
    "StateLockedError",
    "parse_pairs",
    "read_journey_file",
    "saved_export",
    "write_journey_file",
]

SLOW_SCAN_MS = 10.0  # snapshots slower than this (twice running) move the OS scan off the loop
SLOW_SCANS_TO_SWITCH = 2
EVENT_REFRESH_MS = 40  # a service event asks for a prompt (coalesced) refresh

# The control API hook (docs/architecture.md, "Control API"): called with the open Core once the
# bridge is open; returns an async callable that stops the API (or None). The window runs without
# it; `app/api` supplies it.
ApiStopper = Callable[[], Awaitable[None]]
ApiStarter = Callable[[Core], Awaitable[ApiStopper | None]]


class CoreBridge(QObject):
    """Signals carry the core's frozen value objects (PhaseEvent, ServiceEvent, LogEvent,
    RunProgress, RunResult, PortInfo, ...); slots in the window only read them.

    A signal declared with a Python class (`Signal(PhaseEvent)`) names its payload's one type;
    Qt itself registers it as PyObject, so the class documents the payload, it is not checked
    at emit. A list or dict payload cannot name its items' type to Qt: the comment does."""

    opened = Signal()
    closed = Signal()
    phaseEvent = Signal(PhaseEvent)
    serviceEvent = Signal(ServiceEvent)
    logEvent = Signal(LogEvent)
    runStarted = Signal(str, str)  # run id, company: every run, whoever started it
    runFinished = Signal(RunResult)  # ok, failed or cancelled: every run, whoever started it
    runProgress = Signal(RunProgress)  # customers done / total while a run simulates
    runRefused = Signal(list)  # list[Problem]: validation problems, nothing was stopped
    commandFailed = Signal(str, str)  # command, message (busy, pool full, ...)
    stopAllFinished = Signal(StopReport)
    sweepFinished = Signal(dict)  # dict[str, int]: {"staleCleaned": n, "orphansReaped": n}
    serviceStopped = Signal(str)  # key
    portsChanged = Signal(list)  # list[PortInfo]: the cell model's cells (app/ui/cells.py)
    busyChanged = Signal(bool)
    trafficChanged = Signal(TrafficStatus)  # about once a second while traffic runs
    journeysChanged = Signal(list)  # list[JourneySummary]: the resident journeys, when they change
    exportChanged = Signal()  # the export settings were saved and applied
    incidentsChanged = Signal(IncidentEvent)  # one started or ended
    alertChanged = Signal(AlertEvent)  # one raised, acknowledged or cleared

    def __init__(
        self,
        settings: Settings,
        api_starter: ApiStarter | None = None,
        parent: QObject | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._env = os.environ if env is None else env  # OTEL_*: they win over saved values
        self._api_starter = api_starter
        self._api_stop: ApiStopper | None = None
        self.events = CoreEvents()
        self.events.phase.connect(self._on_phase)
        self.events.service.connect(self._on_service)
        self.events.log.connect(self.logEvent.emit)
        self.events.run.connect(self._on_run)
        self.events.progress.connect(self.runProgress.emit)  # throttled by the core
        self.events.traffic.connect(self.trafficChanged.emit)
        self.events.incident.connect(self.incidentsChanged.emit)
        self.events.alert.connect(self.alertChanged.emit)
        self._stack: AsyncExitStack | None = None
        self.core: Core | None = None
        self._busy = False
        self._closing = False
        self._close_task: asyncio.Future[None] | None = None
        self.cells = CellModel()  # the window's one picture of the pool
        self.last_journeys: list[JourneySummary] = []
        self.last_scan_ms = 0.0
        self.scan_off_thread = False
        self._scan_task: asyncio.Task[None] | None = None
        self._slow_scans = 0
        self._executor: ThreadPoolExecutor | None = None
        self._soon = QTimer(self)
        self._soon.setSingleShot(True)
        self._soon.setInterval(EVENT_REFRESH_MS)
        self._soon.timeout.connect(self.refresh_ports)
        # Cells an event changed are shown on the next turn of the loop, not inside the event:
        # a switch's burst of service events is one repaint, not one per service.
        self._cells_soon = QTimer(self)
        self._cells_soon.setSingleShot(True)
        self._cells_soon.setInterval(0)
        self._cells_soon.timeout.connect(self._emit_cells)

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        return self.core.settings if self.core is not None else self._settings

    @property
    def is_open(self) -> bool:
        return self.core is not None

    @property
    def api_running(self) -> bool:
        return self._api_stop is not None

    @property
    def startup_messages(self) -> list[str]:
        """What opening the core had to say (orphans of an earlier run stopped, a bad database
        moved aside)."""
        return list(self.core.startup_messages) if self.core is not None else []

    async def open(self) -> None:
        """Open the core (lock, ledger reconcile). StateLockedError propagates to the caller."""
        if self.core is not None:
            return
        stack = AsyncExitStack()
        export = self._export_at_start()
        self.core = await stack.enter_async_context(
            open_core(self._settings, self.events, export=export)
        )
        self._stack = stack
        self.refresh_ports()
        cadence.shared().add(self, self.refresh_ports)  # four times a second, in its own turn
        if self._api_starter is not None and self._settings.api_enabled:
            try:
                self._api_stop = await self._api_starter(self.core)
            except Exception as exc:  # the window stays useful without its API
                self.events.say("api", f"control API not started: {exc}", LogLevel.WARNING)
        self.opened.emit()

    async def close(self) -> None:
        """Stop the API, then close the core, stopping every service. Callers that arrive while
        a close is under way wait for that same close."""
        if self._close_task is None:
            if self.core is None or self._stack is None:
                return
            self._close_task = asyncio.ensure_future(self._close(self._stack))
        task = self._close_task
        try:
            await asyncio.shield(task)
        finally:
            if task.done() and self._close_task is task:
                self._close_task = None

    async def _close(self, stack: AsyncExitStack) -> None:
        self._closing = True
        cadence.shared().remove(self)
        self._soon.stop()
        self._cells_soon.stop()
        try:
            if self._api_stop is not None:
                try:
                    await self._api_stop()
                except Exception as exc:
                    log.warning("stopping the control API failed: %s", exc)
                self._api_stop = None
            if self._scan_task is not None:
                self._scan_task.cancel()  # the worker thread's scan just finishes unused
                self._scan_task = None
            await stack.aclose()
        finally:
            self.core = None
            self._stack = None
            self._closing = False
            if self._executor is not None:
                self._executor.shutdown(wait=False)
                self._executor = None
            self._set_busy(False)
            self.closed.emit()

    def _require(self) -> Core:
        if self.core is None:
            raise CoreError("the panel's core is not open")
        return self.core

    # -- events --------------------------------------------------------------------------------
    def _on_phase(self, event: PhaseEvent) -> None:
        self.phaseEvent.emit(event)
        self._refresh_soon()

    def _on_service(self, event: ServiceEvent) -> None:
        self.serviceEvent.emit(event)
        if self.cells.apply(event) and not self._cells_soon.isActive():
            self._cells_soon.start()
        self._refresh_soon()

    def _on_run(self, event: RunEvent) -> None:
        if event.status is RunStatus.STARTED:
            self.runStarted.emit(event.run_id, event.company)
        elif isinstance(event.result, RunResult):
            self.runFinished.emit(event.result)

    def _refresh_soon(self) -> None:
        if self.core is not None and not self._soon.isActive():
            self._soon.start()

    # -- queries -------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._busy or (self.core is not None and self.core.busy)

    def services(self) -> list[ServiceRecord]:
        return self.core.services() if self.core is not None else []

    @property
    def last_ports(self) -> list[PortInfo]:
        """The cells as the window shows them now."""
        return self.cells.ports()

    def refresh_ports(self) -> None:
        """One snapshot of the pool → portsChanged. On the loop while snapshots take under
        SLOW_SCAN_MS; after repeated slow ones the OS scan runs on a worker thread from then on."""
        core = self.core
        if core is None or self._closing:
            return
        if self.scan_off_thread:
            if self._scan_task is None or self._scan_task.done():
                self._scan_task = asyncio.ensure_future(self._refresh_off_thread(core))
            return
        t0 = time.perf_counter()
        ports = core.ports()
        self.last_scan_ms = (time.perf_counter() - t0) * 1000
        self._slow_scans = self._slow_scans + 1 if self.last_scan_ms > SLOW_SCAN_MS else 0
        if self._slow_scans >= SLOW_SCANS_TO_SWITCH:
            self.scan_off_thread = True
            log.info("port snapshot took %.1f ms: scanning off the UI thread", self.last_scan_ms)
        self._publish(ports)

    async def _refresh_off_thread(self, core: Core) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="port-scan")
        loop = asyncio.get_running_loop()
        # A service that starts or stops during the scan is told by its event: the cell model
        # keeps the event's cell over this older scan's (app/ui/cells.py).
        since = self.cells.seq
        t0 = time.perf_counter()
        # Only the OS scan (psutil, no shared state) runs on the worker; the snapshot that
        # reads the core's tables stays on the loop.
        owners = core.likely_owners()  # read on the loop; the worker only asks the OS
        listeners = await loop.run_in_executor(self._executor, core.scan, owners)
        self.last_scan_ms = (time.perf_counter() - t0) * 1000
        if self.core is not core or self._closing:
            return
        self._publish(core.ports(listeners), since)

    def _publish(self, ports: list[PortInfo], since: int | None = None) -> None:
        self.cells.reconcile(ports, since)
        self._emit_cells()
        if self.core is not None:
            journeys = self.core.journey_summaries()
            if journeys != self.last_journeys:
                self.last_journeys = journeys
                self.journeysChanged.emit(journeys)

    def _emit_cells(self) -> None:
        self._cells_soon.stop()
        self.portsChanged.emit(self.cells.ports())

    def process_details(self, pid: int) -> dict[str, Any]:
        """Memory of one process, for a tooltip (one pid at a time; never a scan)."""
        try:
            proc = psutil.Process(pid)
            out: dict[str, Any] = {"rss_mb": proc.memory_info().rss / 2**20}
            with contextlib.suppress(psutil.AccessDenied, OSError):
                out["uss_mb"] = proc.memory_full_info().uss / 2**20
            return out
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return {}

    # -- export settings (docs/architecture.md, "Export") -------------------------------------
    def export_form(self) -> ExportForm:
        """The saved export values and the environment's; a bad saved file reads as none."""
        try:
            saved = saved_export.load(self._settings.state_dir)
        except ExportSettingsError:
            saved = {}
        return ExportForm(saved, export_env(self._env))

    def _export_at_start(self) -> ExportSettings:
        """Saved values under the environment. A bad saved file is set aside with a warning;
        a bad environment fails the start, as it always did (ExportSettingsError)."""
        env = export_env(self._env)
        try:
            return ExportForm(saved_export.load(self._settings.state_dir), env).settings()
        except ExportSettingsError as exc:
            export = ExportForm({}, env).settings()  # the environment alone, or raise
            # The message names the file or the variable, never a value (secrets).
            self.events.say("export", f"saved export settings not used: {exc}", LogLevel.WARNING)
            return export

    def export_status(self) -> dict[str, Any] | None:
        """Per signal {"endpoint", "sent", "dropped", ...}; no header value is ever in it."""
        return self.core.exporter.status() if self.core is not None else None

    def check_export(self, values: Mapping[str, str]) -> ExportSettings:
        """The settings `values` would give under the environment (ExportSettingsError)."""
        return self.export_form().settings(values)

    async def apply_export(self, values: Mapping[str, str]) -> str:
        """Validate, save (0600) and apply to the running core; returns what happened.

        Fields the environment owns keep their saved value. Nothing is saved when the values
        are invalid (ExportSettingsError). The customers queued for the old endpoint are sent
        there within the exporter's close bound; what is left is dropped and counted in the
        message (the new exporter's counts start at zero)."""
        form = self.export_form()
        kept = {
            k: form.saved.get(k, "") if form.owners(k) else values.get(k, "")
            for k in saved_export.SAVED_KEYS
        }
        export = form.settings(kept)
        saved_export.save(self._settings.state_dir, kept)
        message = "export settings saved"
        if self.core is not None:
            old = await self.core.replace_exporter(export)
            dropped = sum(int(s["dropped"]) for s in old.values())
            where = ", ".join(
                f"{signal} → {e.display_url}"
                for signal, e in ((s.value, export.endpoint(s)) for s in ExportSignal)
                if e is not None
            )
            message += f" and applied ({where or 'export off'})"
            if dropped:
                message += f"; {dropped} items the old settings had not sent were dropped"
        self.events.say("export", message, LogLevel.INFO)
        self.exportChanged.emit()
        return message

    async def test_export_connection(self, values: Mapping[str, str]) -> ConnectionCheck:
        """The traces endpoint `values` give (environment winning), tested by the core
        (app/core/export/connection.py); the dialog only shows the answer."""
        return await check_values(self.export_form(), values)

    # -- settings ------------------------------------------------------------------------------
    def set_pacing_ms(self, ms: int) -> None:
        """Demo pacing: a pause in each phase that has work, so an audience can follow (0–2 s;
        docs/architecture.md, "A Run Journey, phase by phase")."""
        ms = max(0, min(MAX_PACING_MS, int(ms)))
        self._settings = self._settings.with_(demo_pacing_ms=ms)
        if self.core is not None:
            self.core.set_demo_pacing(ms)

    # -- commands ------------------------------------------------------------------------------
    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busyChanged.emit(busy)

    async def run_journey(
        self,
        journey: dict[str, Any],
        customers: int = 1,
        mode: str = "single",
        think_time_ms: float = 0,
        cleanup: str | None = None,
        preserve: list[str] | None = None,
    ) -> RunResult | None:
        """Validate, then run. Invalid input → runRefused (nothing stopped); busy, a full pool
        or an unexpected failure → commandFailed; otherwise runFinished with the RunResult."""
        try:
            core = self._require()
            request = core.make_request(
                journey,
                customers=customers,
                mode=mode,
                think_time_ms=think_time_ms,
                cleanup=cleanup,
                preserve=preserve or None,
            )
            self._set_busy(True)  # only once the input is valid: a refusal changes nothing
            result = await core.run_journey(request)
        except ValidationError as exc:
            self.runRefused.emit(exc.problems)
            return None
        except CoreError as exc:
            self.commandFailed.emit("Run Journey", str(exc))
            return None
        except Exception as exc:  # a bug or an OS error must not take the window down
            log.exception("run failed")
            self.commandFailed.emit("Run Journey", f"{type(exc).__name__}: {exc}")
            return None
        finally:
            if self._busy:
                self._set_busy(False)
                self.refresh_ports()
        return result  # runFinished came with the core's run event, as for every run

    async def stop_all(self) -> None:
        """Stop every service (essentials too); a run in progress is cancelled first."""
        await self._command("Stop All", self._stop_all)

    async def _stop_all(self, core: Core) -> None:
        report = await core.stop_all()
        self.stopAllFinished.emit(report)

    async def start_traffic(self, rate: float) -> None:
        """Continuous traffic through the running journey (or a new rate); a bad rate or no
        running journey → commandFailed. Counts arrive through trafficChanged."""

        async def start(core: Core) -> None:
            await core.start_traffic(rate)

        await self._command("Start traffic", start)

    async def stop_traffic(self) -> None:
        """Drain and stop; the final counts arrive through trafficChanged."""

        async def stop(core: Core) -> None:
            await core.stop_traffic()

        await self._command("Stop traffic", stop)

    async def sweep(self) -> None:
        await self._command("Sweep", self._sweep)

    async def _sweep(self, core: Core) -> None:
        self.sweepFinished.emit(await core.cleanup())

    async def stop_service(self, key: str) -> None:
        async def stop(core: Core) -> None:
            report = await core.stop_service(key)
            if report.count:
                self.serviceStopped.emit(key)

        await self._command(f"Stop {key}", stop)

    async def stop_journey(self, journey_id: str) -> None:
        """Stop one resident journey: its traffic, its services (essentials stay)."""

        async def stop(core: Core) -> None:
            report = await core.stop_journey(journey_id)
            self.events.say("panel", f"stopped journey {journey_id}: {report.count} services")

        await self._command(f"Stop journey {journey_id}", stop)

    async def restart_service(self, key: str) -> None:
        """Restart one service in place; traffic through it goes on by itself once it runs."""

        async def restart(core: Core) -> None:
            record = await core.restart_service(key)
            self.events.say(key, f"restarted on port {record.port} (pid {record.pid})")

        await self._command(f"Restart {key}", restart)

    # -- incidents and scenarios (docs/architecture.md, "Incidents and scenarios") -------------
    def incidents(self) -> list[Incident]:
        return self.core.incidents.active() if self.core is not None else []

    def scenario_status(self) -> dict[str, Any] | None:
        """The running scenario, else the last one (ScenarioRun.to_json()), or None."""
        if self.core is None:
            return None
        run = self.core.scenarios.current
        return run.to_json() if run is not None else None

    def scenario_names(self) -> list[str]:
        return packaged_names()

    # -- metrics and alerts (docs/architecture.md, "Metrics and alerts") ------------------------
    def metrics(self) -> tuple[MetricsSnapshot, tuple[Sample, ...]] | None:
        """The registry now and its ring of samples (the Metrics view), or None when closed."""
        if self.core is None:
            return None
        return self.core.metrics.snapshot(), self.core.metrics.samples()

    def alerts(self) -> tuple[Alert, ...]:
        return self.core.alerts.snapshot() if self.core is not None else ()

    def ack_alert(self, alert_id: str) -> None:
        """Acknowledge one alert (as POST /api/alerts/{id}/ack); synchronous: no I/O."""
        if self.core is not None:
            self.core.alerts.ack(alert_id)

    def traffic_traces(self, kind: str) -> list[KeptTrace]:
        """The latest, slowest or failed journeys of continuous traffic (app/core/traces.py)."""
        return self.core.traffic.traces(TraceKind(kind)) if self.core is not None else []

    async def start_incident(self, body: dict[str, Any]) -> None:
        """POST /api/incidents's body; a refusal (naming the field) → commandFailed."""

        async def start(core: Core) -> None:
            await core.incidents.start(body)

        await self._command(f"Inject {body.get('kind')} on {body.get('service')}", start)

    async def clear_incidents(self, incident_id: str = "") -> None:
        """End one incident (its id), or every one ("")."""

        async def clear(core: Core) -> None:
            if incident_id:
                await core.incidents.end(incident_id)
            else:
                await core.incidents.clear()

        await self._command("Clear incident" if incident_id else "Clear incidents", clear)

    async def run_scenario(self, name: str = "", path: str = "") -> None:
        """A packaged scenario by `name`, or a scenario file at `path`."""

        async def start(core: Core) -> None:
            body = {"name": name} if name else {"scenario": read_scenario_file(Path(path))}
            await core.scenarios.run(body)

        await self._command(f"Run scenario {name or path}", start)

    async def stop_scenario(self) -> None:
        async def stop(core: Core) -> None:
            await core.scenarios.stop()

        await self._command("Stop scenario", stop)

    async def _command(self, name: str, work: Callable[[Core], Awaitable[None]]) -> None:
        try:
            await work(self._require())
        except CoreError as exc:
            self.commandFailed.emit(name, str(exc))
        except Exception as exc:
            log.exception("%s failed", name)
            self.commandFailed.emit(name, f"{type(exc).__name__}: {exc}")
        finally:
            self.refresh_ports()
