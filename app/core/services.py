"""ServiceManager: start services on pool ports, verify them, stop them for sure.

The manager owns one record per service (`ServiceRecord`, docs/architecture.md "One record per
service"): it is created when a port is reserved, moves starting -> running -> stopping through
`ServiceRecord.to`, and is forgotten once the process is gone and its port bindable. The pool's
view and the ledger row are derived from it. Everything here runs on the event loop's thread.

Stopping is SIGTERM to the service's process group, an event-driven wait for exit (pidfd),
SIGKILL after the stop grace, and a bounded check that the port is bindable again. Only
processes that are provably ours are ever signalled: ones we hold a handle to, or ledger rows
whose pid, create time and command-line token all still match (see `reaper`).

Over 400 lines on purpose: the service manager is the one owner of service records, and its
start and stop paths must stay beside the transitions they drive.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from aiohttp import ClientConnectionError, ClientError, ClientSession, ClientTimeout, TCPConnector

from app.core import probe, reaper, waiting
from app.core.alerts import AlertKind, Alerts
from app.core.errors import (
    CoreError,
    PoolExhaustedError,
    PortInUseError,
    ServiceStartError,
    StateDatabaseError,
)
from app.core.events import CoreEvents, LogLevel, ServiceChange, ServiceEvent
from app.core.launcher import Helper, Launcher, LaunchRequest, ProcessHandle
from app.core.ledger import Ledger
from app.core.model import (
    Listener,
    PortInfo,
    PortState,
    ServiceRecord,
    ServiceSpec,
    ServiceState,
    StopReport,
    Trouble,
    TroubleKind,
    sanitize_company,
)
from app.core.ports import PortPool
from app.core.settings import Settings
from app.service.protocol import SECRET_BYTES

log = logging.getLogger(__name__)
PORT_FREE_WAIT_S = 2.0
# The ledger row of a launcher's helper process (the fork server): no port, and a key no
# service can have (service names are validated identifiers), so it is never a service.
HELPER_KEY = "(fork server)"
BIND_RETRIES = 3  # another process may take a port between the probe and the service's bind
# Starts in flight at once. Forty at once became ready in the same instants, and their
# continuations ran back to back: a 50 ms stall of the window's loop. Eight take about as long
# in all, since two cores start no more than that anyway (docs/performance.md, "Window").
START_CONCURRENCY = 8


@dataclass(frozen=True)
class SweepReport:
    stale_cleaned: int
    orphans_reaped: int


class ServiceManager:
    def __init__(
        self,
        settings: Settings,
        pool: PortPool,
        ledger: Ledger,
        launcher: Launcher,
        events: CoreEvents,
        alerts: Alerts | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.ledger = ledger
        self.launcher = launcher
        self.events = events
        # Cleanup failures the operator must hear of (app/core/alerts.py).
        self.alerts = alerts if alerts is not None else Alerts(events)
        self._records: dict[str, ServiceRecord] = {}
        self._handles: dict[str, ProcessHandle] = {}
        # What is wrong with a running service (it exited, it does not answer): kept until it
        # recovers, is restarted or is forgotten (app/core/watch.py).
        self._troubles: dict[str, Trouble] = {}
        self._last_port: dict[str, int] = {}  # where each service ran last (port reuse)
        self._http: ClientSession | None = None
        self._helpers: set[int] = set()  # pids of this panel's live helpers (the fork server)
        # The chain credential's key, one per panel: only this panel can start a chain or
        # steer its services (app/service/protocol.py). Handed to each service at spawn.
        self.chain_secret = secrets.token_bytes(SECRET_BYTES)
        self.start_concurrency = START_CONCURRENCY  # (a benchmark compares others)
        launcher.watch_helpers(self._helper_started, self._helper_gone)

    # -- queries ------------------------------------------------------------------------------
    def services(self) -> list[ServiceRecord]:
        """Every service with a process (a reservation whose spawn is under way is not one)."""
        live = (r for r in self._records.values() if r.pid is not None)
        return sorted(live, key=lambda r: r.port)

    def get(self, key: str) -> ServiceRecord | None:
        return self._records.get(key)

    def by_port(self) -> dict[int, ServiceRecord]:
        return {r.port: r for r in self._records.values()}

    def owner_pids(self) -> list[int]:
        return [r.pid for r in self._records.values() if r.pid is not None]

    def likely_owners(self) -> list[int]:
        """Where a listener in the pool is looked for first: our services, and the children of
        our fork server, which listen before their fork reply gives us their pids. Without
        those, each new service's socket sent the scan through every process's descriptors
        (4–8 ms on the window's loop, about twice a switch: docs/performance.md)."""
        forked = [child for helper in self._helpers for child in probe.children(helper)]
        return [*self.owner_pids(), *forked]

    def scan(self) -> Mapping[int, Listener]:
        return self.pool.scan(self.likely_owners())

    def orphans(self) -> dict[int, ServiceRecord]:
        """Ledger rows that are not in the live table (an earlier panel's services, and its fork
        server: port 0, never in the pool's grid), by pid."""
        live = set(self.owner_pids()) | self._helpers
        return {r.pid: r for r in self._ledger_records() if r.pid is not None and r.pid not in live}

    def snapshot(self, listeners: Mapping[int, Listener] | None = None) -> list[PortInfo]:
        listeners = self.scan() if listeners is None else listeners
        now = time.monotonic()
        troubles = {k: t.text(now) for k, t in self._troubles.items()}
        cells = self.pool.snapshot(self.by_port(), listeners, self.orphans(), troubles)
        return [replace(c, gone=True) if self._dead(c) else c for c in cells]

    def _dead(self, cell: PortInfo) -> bool:
        """A stale cell of our own table whose process has exited (an earlier panel's stale
        cell is a live process: no handle here, but not gone)."""
        key = cell.key
        if cell.state is not PortState.STALE or key is None or key not in self._records:
            return False
        return self.gone(key)

    def trouble(self, key: str) -> Trouble | None:
        return self._troubles.get(key)

    def gone(self, key: str) -> bool:
        """Has `key`'s process died (its exit perhaps still being reported)?"""
        handle = self._handles.get(key)
        return handle is None or handle.gone

    def troubles(self) -> dict[str, Trouble]:
        return dict(self._troubles)

    def free_capacity(
        self, listeners: Mapping[int, Listener] | None = None, company_key: str | None = None
    ) -> int:
        """Free ports a service of `company_key` may take now (without growing the pool)."""
        listeners = self.scan() if listeners is None else listeners
        return self.pool.free_capacity(self.by_port(), listeners, company_key)

    def room(self, needs: Mapping[str | None, int], freed: Iterable[str] = ()) -> list[str]:
        """What would not fit if the services `freed` were stopped: for each company (None:
        every company without reserved ports) how many new services it needs. The unreserved
        ports count the room the pool can still grow into. Empty when everything fits."""
        gone = {self._records[k].port for k in freed if k in self._records}
        listeners = self.scan()
        taken = self.by_port()
        problems = []
        for company_key, needed in needs.items():
            # The freed services' ports are ours: free once they stop (not bindable before).
            allowed = set(self.pool.allowed(company_key))
            free = self.pool.free_capacity(taken, listeners, company_key) + len(gone & allowed)
            if company_key in self.pool.reserved:
                name, ports = self.pool.reserved[company_key]
                if needed > free:
                    problems.append(
                        f"{name}'s reserved ports {ports.start}-{ports.stop - 1} can offer "
                        f"{free}, its journey needs {needed}"
                    )
                continue
            if needed > free + self.pool.growth_room(taken, listeners):
                problems.append(
                    f"the journey needs {needed} ports but {self.pool.ranges_text} can offer "
                    f"only {free + self.pool.growth_room(taken, listeners)}"
                )
        return problems

    def needs(self, specs: Iterable[ServiceSpec]) -> dict[str | None, int]:
        """New services per company with reserved ports, and (None) for all the others."""
        needs: dict[str | None, int] = {}
        for spec in specs:
            key = _company_key(spec)
            group = key if key in self.pool.reserved else None
            needs[group] = needs.get(group, 0) + 1
        return needs

    def adopt(self, key: str, journey_id: str) -> None:
        """Service `key` goes on running for another resident journey (it was kept)."""
        record = self._records.get(key)
        if record is not None:
            self._records[key] = replace(record, journey_id=journey_id)

    def customer_keys(self) -> list[str]:
        return [k for k, r in self._records.items() if not r.essential and k in self._handles]

    # -- start --------------------------------------------------------------------------------
    async def start_many(self, specs: Sequence[ServiceSpec], run_id: str) -> list[ServiceRecord]:
        """Start services concurrently. All or nothing: if one fails (or the caller is
        cancelled), the others started by this call are stopped again and the error raised."""
        specs = [s for s in specs if s.key not in self._records]
        if not specs:
            return []
        listeners = self.scan()
        unreserved = sum(1 for s in specs if _company_key(s) not in self.pool.reserved)
        if grown := self.pool.grow(unreserved, self.by_port(), listeners):
            self.events.say("pool", f"the pool grew by {grown} ports to {self.pool.label}")
        if problems := self.room(self.needs(specs)):
            self._foreign_in_the_way(listeners, "; ".join(problems))
            raise PoolExhaustedError("; ".join(problems))
        started: list[ServiceRecord] = []
        gate = asyncio.Semaphore(self.start_concurrency)
        try:
            async with asyncio.TaskGroup() as group:
                for spec in specs:
                    group.create_task(self._start_into(started, spec, run_id, listeners, gate))
                    # Each start's first step (reserve, ask the launcher) in its own turn of
                    # the loop: 40 in one turn stalled the window (docs/performance.md).
                    await asyncio.sleep(0)
        except BaseException as exc:
            # To the end: a cancellation must not leave the first ones running.
            await waiting.to_the_end(self.stop([r.key for r in started]))
            raise _first_error(exc) from None
        return sorted(started, key=lambda r: r.port)

    async def _start_into(
        self,
        started: list[ServiceRecord],
        spec: ServiceSpec,
        run_id: str,
        listeners: Mapping[int, Listener],
        gate: asyncio.Semaphore,
    ) -> None:
        async with gate:  # each start's own deadline begins once it is let through
            started.append(await self.start(spec, run_id, listeners))

    async def start(
        self,
        spec: ServiceSpec,
        run_id: str,
        listeners: Mapping[int, Listener] | None = None,
        prefer: int | None = None,
    ) -> ServiceRecord:
        """Start one service, on `prefer` when that port is free (a restart keeps its port)."""
        if spec.key in self._records:
            raise ServiceStartError(f"{spec.key} is already running")
        avoid: set[int] = set()
        for attempt in range(BIND_RETRIES):
            seen = listeners if attempt == 0 and listeners is not None else self.scan()
            record = self._reserve(spec, run_id, seen, avoid, prefer)
            try:
                return await self._start_on(record)
            except PortInUseError as exc:
                avoid.add(record.port)
                self.alerts.raise_(
                    AlertKind.FOREIGN_LISTENER,
                    f"port {record.port} was taken by another process as {spec.key} started "
                    f"there ({exc})",
                    "the panel starts it on another port of the pool",
                    f"find who listens on {record.port} (ss -ltnp 'sport = :{record.port}') "
                    "and stop it, or leave the panel to skip it",
                    port=record.port,
                    service=spec.key,
                )
                self.events.say(spec.key, f"port {record.port} was taken ({exc}); trying another")
        raise ServiceStartError(f"{spec.key}: every port tried was taken: {sorted(avoid)}")

    def _reserve(
        self,
        spec: ServiceSpec,
        run_id: str,
        listeners: Mapping[int, Listener],
        avoid: set[int],
        prefer: int | None = None,
    ) -> ServiceRecord:
        """Choose a port and record it in one step (no await in between): the table of records
        is the reservation, so two concurrent starts can never choose the same port."""
        # The same port again when it is free: stable addresses for dashboards.
        wanted = prefer if prefer is not None else self._last_port.get(spec.key)
        port = self.pool.choose(
            self.by_port(),
            listeners,
            avoid,
            who=spec.key,
            prefer=wanted,
            company_key=_company_key(spec),
        )
        if wanted is not None and port != wanted:
            self._foreign_on(wanted, listeners, spec.key, port)
        record = ServiceRecord(
            key=spec.key,
            service_name=spec.service_name,
            company=spec.company,
            port=port,
            run_id=run_id,
            essential=spec.essential,
            token=secrets.token_hex(16),
            journey_id=spec.journey_id,
        )
        self._records[spec.key] = record
        return record

    async def _start_on(self, record: ServiceRecord) -> ServiceRecord:
        handle = await self._spawn(record)
        try:
            # One start deadline covers both the readiness line and the /health check.
            timeout = self.settings.start_timeout_ms / 1000
            deadline = time.monotonic() + timeout
            await handle.wait_ready(timeout)
            await self._verify_health(self._records[record.key], deadline, timeout)
        except BaseException as exc:
            # Also on cancellation (Stop All during a launch): the process and its port go.
            await waiting.to_the_end(self._finish_stop(record.key, 0.0, ServiceChange.FAILED))
            if isinstance(exc, PortInUseError) or not isinstance(exc, CoreError):
                raise
            raise ServiceStartError(f"{record.key} on port {record.port}: {exc}") from exc
        return self._set(self._records[record.key].to(ServiceState.RUNNING))

    async def _spawn(self, record: ServiceRecord) -> ProcessHandle:
        """Spawn the process; once it exists it is tracked in the ledger, or killed at once."""
        request = LaunchRequest(
            record.service_name,
            record.company,
            record.port,
            record.token,
            self.chain_secret,
            self.settings.max_ports,  # where hops may lead: the pool however far it grows
            self.settings.api_port,
        )
        try:
            handle = await self.launcher.spawn(
                request, lambda line: self.events.say(record.key, line)
            )
        except BaseException:
            self._records.pop(record.key, None)  # no process: the reservation just ends
            raise
        spawned = record.spawned(handle.pid, handle.create_time, handle.cmdline_token, time.time())
        self._records[record.key] = spawned
        self._handles[record.key] = handle
        handle.on_exit = lambda code: self._on_exit(record.key, handle, code)
        try:
            self.ledger.add(spawned)
        except sqlite3.Error as exc:
            # Untracked it could outlive a crash unnoticed: it goes now, before it serves.
            await waiting.to_the_end(self._finish_stop(record.key, 0.0, ServiceChange.FAILED))
            raise StateDatabaseError(
                f"the state database {self.settings.db_path} cannot be written ({exc}); "
                f"{record.key} was stopped again. Free disk space in {self.settings.state_dir}."
            ) from exc
        self._emit(spawned)
        return handle

    async def _verify_health(self, record: ServiceRecord, deadline: float, timeout: float) -> None:
        """Ready means /health answers with this service's own name, pid and token: a leftover
        process on the same port cannot pass for it."""
        left = deadline - time.monotonic()
        try:
            body = await self._health(record, left)
        except TimeoutError as exc:
            raise ServiceStartError(
                f"not ready within {timeout:.1f} s: /health did not answer in time"
            ) from exc
        except (ClientError, ValueError) as exc:
            raise ServiceStartError(f"/health did not answer: {exc!r}") from exc
        if (got := _identity(body)) != (expected := _expected(record)):
            raise ServiceStartError(f"/health answered {got}, expected {expected}")

    async def identity_problem(
        self, record: ServiceRecord, timeout: float
    ) -> tuple[TroubleKind, str] | None:
        """None when the service answers /health with its own identity within `timeout`;
        else what is wrong (the watcher's probe, app/core/watch.py)."""
        try:
            body = await self._health(record, timeout)
        except TimeoutError:
            return TroubleKind.NOT_ANSWERING, f"no answer within {timeout:g} s"
        except ClientConnectionError:
            return TroubleKind.NOT_LISTENING, f"port {record.port} refuses connections"
        except (ClientError, ValueError) as exc:
            return TroubleKind.NOT_ANSWERING, f"/health failed: {type(exc).__name__}"
        if _identity(body) != _expected(record):
            return TroubleKind.NOT_OURS, f"port {record.port} answers for another process"
        return None

    async def all_answer(self, keys: Iterable[str], timeout: float) -> bool:
        """Does every one of these services answer /health with its identity within
        `timeout`? (Reusing a running journey needs that, not only listening sockets.)"""
        records = [self._records.get(k) for k in keys]
        if any(r is None for r in records):
            return False
        checks = [self.identity_problem(r, timeout) for r in records if r is not None]
        return not any(await asyncio.gather(*checks))

    async def _health(self, record: ServiceRecord, timeout: float) -> object:
        if timeout <= 0:
            raise TimeoutError
        url = f"http://127.0.0.1:{record.port}/health"
        async with self._client().get(url, timeout=ClientTimeout(total=timeout)) as resp:
            return await resp.json()

    def _client(self) -> ClientSession:
        if self._http is None or self._http.closed:
            # One connection per check, closed at once: kept-alive connections would all hit
            # EOF in the same moment when a journey's services stop, and stall the loop.
            self._http = ClientSession(connector=TCPConnector(force_close=True))
        return self._http

    # -- stop ---------------------------------------------------------------------------------
    async def request_stop(self, keys: Iterable[str]) -> list[str]:
        """SIGTERM each service's process group and mark it stopping; does not wait for exits.

        One service per turn of the loop: the woken service may take this CPU for 1-25 ms
        (measured, docs/performance.md "Window"), and 40 signals in one turn stalled the
        window's loop for 50-110 ms."""
        requested = []
        for key in list(keys):
            record, handle = self._records.get(key), self._handles.get(key)
            if record is None or handle is None or record.state is ServiceState.STOPPING:
                continue
            self._set(record.to(ServiceState.STOPPING))
            handle.signal_group(signal.SIGTERM)
            requested.append(key)
            await asyncio.sleep(0)
        return requested

    async def wait_stopped(self, keys: Iterable[str]) -> StopReport:
        """Wait until each service exited and its port is bindable; SIGKILL after the grace."""
        grace = self.settings.stop_grace_ms / 1000
        keys = [k for k in keys if k in self._handles]
        killed = await asyncio.gather(*(self._finish_stop(k, grace) for k in keys))
        return StopReport(
            stopped=tuple(keys), killed=tuple(k for k, was in zip(keys, killed, strict=True) if was)
        )

    async def stop(self, keys: Iterable[str]) -> StopReport:
        return await self.wait_stopped(await self.request_stop(list(keys)))

    async def stop_customer_services(self) -> StopReport:
        """Stop every service except the essential ones (the replaced system's behaviour)."""
        return await self.stop(self.customer_keys())

    async def stop_all(self) -> StopReport:
        """Stop every service of ours: the live table and any orphans the ledger knows."""
        report = await self.stop(list(self._handles))
        await self.launcher.settle()  # services a cancelled launch spawned too late
        reaped = await self._reap_orphans()
        return StopReport(stopped=report.stopped + reaped, killed=report.killed)

    async def _finish_stop(self, key: str, grace: float, how: ServiceChange | None = None) -> bool:
        """Make sure the process is gone and its port free; returns whether SIGKILL was needed."""
        record, handle = self._records.get(key), self._handles.get(key)
        if record is None or handle is None:
            return False
        if record.state is not ServiceState.STOPPING:
            record = self._set(record.to(ServiceState.STOPPING))
            # Once only: request_stop sent it already otherwise. A signal to a process group
            # costs ≈0.7 ms (profiled: the woken service may take the CPU), and a switch's wait
            # starts 40 of these in one turn of the loop.
            handle.signal_group(signal.SIGTERM)
        killed = not await handle.wait_exit(grace)
        if killed:
            handle.signal_group(signal.SIGKILL)
            if not await handle.wait_exit(reaper.KILL_WAIT_S):
                self.events.say(
                    key,
                    f"pid {record.pid} survived SIGKILL for {reaper.KILL_WAIT_S} s",
                    LogLevel.ERROR,
                )
                self._kill_failed(record)
                return killed
        handle.close()
        if not await waiting.until(lambda: probe.can_bind(record.port), PORT_FREE_WAIT_S):
            self.events.say(
                key, f"port {record.port} still not bindable after exit", LogLevel.WARNING
            )
            self.alerts.raise_(
                AlertKind.PORT_NOT_FREED,
                f"port {record.port} of {key} (pid {record.pid}, exited) is still not "
                f"bindable {PORT_FREE_WAIT_S:g} s after the exit",
                "the panel forgot the service; the port shows as foreign and is skipped",
                f"find who holds {record.port} (ss -ltnp 'sport = :{record.port}'); a "
                "process that inherited the socket must be stopped by hand",
                port=record.port,
                pid=record.pid,
                service=key,
            )
        self._forget(key, how or (ServiceChange.KILLED if killed else ServiceChange.STOPPED))
        return killed

    def _forget(self, key: str, how: ServiceChange) -> None:
        record = self._records.pop(key)
        self._handles.pop(key, None)
        self._troubles.pop(key, None)
        if record.pid is not None:
            self._last_port[key] = record.port
        if record.pid is not None:
            self._ledger_remove(record.pid)
        self.events.service.emit(ServiceEvent(key, how, record.port, record.pid))

    def _on_exit(self, key: str, handle: ProcessHandle, code: int | None) -> None:
        record = self._records.get(key)
        if record is None or self._handles.get(key) is not handle:
            return
        if record.state is ServiceState.RUNNING:
            # Died on its own: its port shows as stale until it is restarted or swept.
            self.events.say(
                key,
                f"exited unexpectedly (code {code}); port {record.port} is stale",
                LogLevel.WARNING,
            )
            trouble = self._troubles[key] = Trouble(
                TroubleKind.EXITED, time.monotonic(), f"code {code}"
            )
            event = ServiceEvent(
                key, ServiceChange.EXITED, record.port, record.pid, trouble.text(trouble.since)
            )
            self.events.service.emit(event)

    # -- troubles (app/core/watch.py) -----------------------------------------------------------
    def note_trouble(
        self, key: str, kind: TroubleKind, detail: str = "", since: float | None = None
    ) -> None:
        """Record what is wrong with running service `key` since `since` (time.monotonic; now
        by default), once per kind: the first time it was seen stays; and say so."""
        record = self._records.get(key)
        current = self._troubles.get(key)
        if record is None or (current is not None and current.kind is kind):
            return
        final = current is not None and current.kind in (TroubleKind.EXITED, TroubleKind.GAVE_UP)
        if final and kind is not TroubleKind.GAVE_UP:
            return  # an exit is final until a restart; a probe of a dead port says no more
        trouble = self._troubles[key] = Trouble(kind, since or time.monotonic(), detail)
        text = trouble.text(time.monotonic())
        self.events.say(key, f"{text} on port {record.port}", LogLevel.WARNING)
        self.events.service.emit(
            ServiceEvent(key, ServiceChange.TROUBLE, record.port, record.pid, text)
        )

    def clear_trouble(self, key: str) -> None:
        """`key` answers again with its own identity."""
        trouble = self._troubles.get(key)
        record = self._records.get(key)
        if record is None or trouble is None or trouble.kind not in _CLEARABLE:
            return
        del self._troubles[key]
        self.events.say(key, f"answers again on port {record.port}")
        self.events.service.emit(
            ServiceEvent(key, ServiceChange.RECOVERED, record.port, record.pid)
        )

    async def restart(self, key: str) -> ServiceRecord:
        """Stop `key`'s process for sure (at once if it does not answer: it cannot shut down
        gracefully) and start it again, on the same port when that is free."""
        record = self._records.get(key)
        if record is None or key not in self._handles:
            raise ServiceStartError(f"{key} is not running: there is nothing to restart")
        trouble = self._troubles.get(key)
        hung = trouble is not None and trouble.kind is TroubleKind.NOT_ANSWERING
        grace = 0.0 if hung else self.settings.stop_grace_ms / 1000
        await waiting.to_the_end(self._finish_stop(key, grace, ServiceChange.STOPPED))
        spec = ServiceSpec(record.service_name, record.company, record.essential)
        restarted = await self.start(spec, record.run_id, prefer=record.port)
        self.events.say(key, f"restarted: pid {restarted.pid} on port {restarted.port}")
        return restarted

    # -- stale allocations and orphans ----------------------------------------------------------
    async def sweep(self) -> SweepReport:
        """Release allocations whose service no longer serves its port, and stop our orphans."""
        listeners = self.scan()
        stale = [r for r in self._records.values() if self.pool.is_stale(r, listeners)]
        for record in stale:
            handle = self._handles[record.key]
            # The process died, or lives without its port: either way it is ours and useless.
            handle.signal_group(signal.SIGKILL)
            if await handle.wait_exit(reaper.KILL_WAIT_S):
                handle.close()
            else:
                self._kill_failed(record)
            self._forget(record.key, ServiceChange.STALE)
            self.events.say(record.key, f"released stale allocation of port {record.port}")
        reaped = await self._reap_orphans()
        return SweepReport(stale_cleaned=len(stale), orphans_reaped=len(reaped))

    def sweepable(self) -> bool:
        """Would a sweep find anything (a stale allocation, an orphan)? One scan, no signal."""
        listeners = self.scan()
        stale = any(self.pool.is_stale(r, listeners) for r in self._records.values())
        return stale or bool(self.orphans())

    async def reconcile(self) -> tuple[str, ...]:
        """At start: stop every service an earlier panel run left behind (ours only)."""
        return await self._reap_orphans()

    async def _reap_orphans(self) -> tuple[str, ...]:
        """Stop the orphans that are provably ours; returns the keys of the services among them
        (an earlier panel's fork server is stopped and said, but it is not a service)."""
        orphans = list(self.orphans().values())
        grace = self.settings.stop_grace_ms / 1000
        results = await asyncio.gather(*(reaper.reap(r, grace) for r in orphans))
        for record, stopped in zip(orphans, results, strict=True):
            if stopped:
                where = f"on port {record.port}" if record.port else "left by an earlier panel"
                self.events.say(record.key, f"stopped orphan pid {record.pid} {where}")
            # Stopped, or not ours any more (exited, or the pid is someone else's): forget it.
            self._ledger_remove(record.pid)
        return tuple(
            r.key for r, stopped in zip(orphans, results, strict=True) if stopped and r.port
        )

    # -- the ledger -----------------------------------------------------------------------------
    def _ledger_records(self) -> list[ServiceRecord]:
        return self.ledger.records() + self.ledger.helpers()

    def _helper_started(self, helper: Helper) -> None:
        """A helper process (the fork server) is recorded like a service, so that a crashed
        panel's helper is found and ended by the next start (docs/architecture.md "One record
        per service"). Raising makes the launcher stop it again: never untracked."""
        row = ServiceRecord(
            key=HELPER_KEY,
            service_name=HELPER_KEY,
            company="",
            port=0,
            run_id="",
            token=helper.cmdline_token,
        ).spawned(helper.pid, helper.create_time, helper.cmdline_token, time.time())
        try:
            self.ledger.add(row)
        except sqlite3.Error as exc:
            raise StateDatabaseError(
                f"the state database {self.settings.db_path} cannot be written ({exc}); the "
                f"fork server was stopped again. Free disk space in {self.settings.state_dir}."
            ) from exc
        self._helpers.add(helper.pid)

    def _helper_gone(self, helper: Helper) -> None:
        self._helpers.discard(helper.pid)
        self._ledger_remove(helper.pid)

    def _ledger_remove(self, pid: int | None) -> None:
        if pid is None:
            return
        try:
            self.ledger.remove(pid)
        except sqlite3.Error as exc:
            # A row left behind is harmless: the next reconcile proves the process gone.
            log.warning("ledger row of pid %s not removed: %s", pid, exc)

    # -- shutdown -------------------------------------------------------------------------------
    async def aclose(self, stop_services: bool = True) -> None:
        try:
            if stop_services:
                await self.stop_all()
        finally:
            for handle in self._handles.values():
                handle.close()
            if self._http is not None:
                await self._http.close()

    # -- alerts (app/core/alerts.py) -------------------------------------------------------------
    def _kill_failed(self, record: ServiceRecord) -> None:
        self.alerts.raise_(
            AlertKind.KILL_FAILED,
            f"pid {record.pid} of {record.key} on port {record.port} survived SIGKILL for "
            f"{reaper.KILL_WAIT_S:g} s",
            "the panel gave up waiting for it (an uninterruptible process: D state)",
            f"check it with ps -o pid,stat,wchan -p {record.pid}; it ends when its I/O does, "
            "or after a reboot",
            port=record.port,
            pid=record.pid,
            service=record.key,
        )

    def _foreign_on(
        self, port: int, listeners: Mapping[int, Listener], key: str, instead: int
    ) -> None:
        """`key` wanted `port` (its last one): say so when something not ours holds it."""
        listener = listeners.get(port)
        ours = set(self.owner_pids())
        if listener is None or listener.pid in ours or port in self.by_port():
            return
        who = f"pid {listener.pid} ({listener.name})" if listener.pid else "a process"
        self.alerts.raise_(
            AlertKind.FOREIGN_LISTENER,
            f"{key}'s port {port} is held by {who}, not by the panel",
            f"the panel started {key} on port {instead} instead and never signals {who}",
            f"stop {who} to get the stable address back, or point dashboards at {instead}",
            port=port,
            pid=listener.pid,
            service=key,
        )

    def _foreign_in_the_way(self, listeners: Mapping[int, Listener], problems: str) -> None:
        """A launch that does not fit: say so when foreign listeners take ports of the pool."""
        ours = set(self.owner_pids()) | set(self.orphans())
        foreign = sorted(
            (p, lst) for p, lst in listeners.items() if p in self.pool.ports and lst.pid not in ours
        )
        if not foreign:
            return
        port, first = foreign[0]
        ports = ", ".join(str(p) for p, _ in foreign[:10])
        self.alerts.raise_(
            AlertKind.FOREIGN_LISTENER,
            f"{len(foreign)} port(s) of the pool are held by processes not ours ({ports}), "
            f"and the launch does not fit: {problems}",
            "the panel refused the run before stopping anything (503)",
            "stop those processes, widen BIZOBS_PORTS or set BIZOBS_PORTS_MAX",
            port=port,
            pid=first.pid,
        )

    # -- helpers --------------------------------------------------------------------------------
    def _set(self, record: ServiceRecord) -> ServiceRecord:
        self._records[record.key] = record
        self._emit(record)
        return record

    def _emit(self, record: ServiceRecord) -> None:
        change = ServiceChange(record.state.value)
        self.events.service.emit(ServiceEvent(record.key, change, record.port, record.pid))


_CLEARABLE = frozenset({TroubleKind.NOT_ANSWERING, TroubleKind.NOT_LISTENING, TroubleKind.NOT_OURS})


def _company_key(spec: ServiceSpec) -> str:
    return sanitize_company(spec.company)


def _identity(body: object) -> object:
    keys = ("service", "pid", "token")
    return {k: body.get(k) for k in keys} if isinstance(body, dict) else body


def _expected(record: ServiceRecord) -> dict[str, object]:
    return {"service": record.service_name, "pid": record.pid, "token": record.token}


def _first_error(exc: BaseException) -> BaseException:
    """The error to report from a failed task group: the first that is not a cancellation of a
    sibling; a cancellation of the caller stays a cancellation."""
    if isinstance(exc, BaseExceptionGroup):
        errors = [e for e in exc.exceptions if not isinstance(e, asyncio.CancelledError)]
        return _first_error(errors[0]) if errors else asyncio.CancelledError()
    return exc
