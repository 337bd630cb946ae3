"""ServiceManager: start services on pool ports, verify them, stop them for sure.

Stopping is SIGTERM to the service's process group, an event-driven wait for exit (pidfd),
SIGKILL after the stop grace, and a bounded check that the port is bindable again. Only
processes that are provably ours are ever signalled: ones we hold a handle to, or ledger rows
whose pid, create time and command-line token all still match.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector

from app.config import Settings
from app.core import probe, waiting
from app.core.errors import CoreError, PoolExhaustedError, ServiceStartError
from app.core.events import EventBus, ServiceEvent
from app.core.launcher import Launcher, LaunchRequest, PortInUseError, ProcessHandle
from app.core.ledger import Ledger, LedgerEntry
from app.core.model import (
    Listener,
    PortInfo,
    ServiceInfo,
    ServiceSpec,
    ServiceState,
    StopReport,
)
from app.core.ports import Allocation, Orphan, PortPool

KILL_WAIT_S = 5.0  # after SIGKILL: only an uninterruptible (D-state) process takes longer
PORT_FREE_WAIT_S = 2.0
BIND_RETRIES = 3  # another process may take a port between the probe and the service's bind


@dataclass
class _Tracked:
    info: ServiceInfo
    handle: ProcessHandle


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
        bus: EventBus,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.ledger = ledger
        self.launcher = launcher
        self.bus = bus
        self._services: dict[str, _Tracked] = {}
        self._http: ClientSession | None = None

    # -- queries ------------------------------------------------------------------------------
    def services(self) -> list[ServiceInfo]:
        return sorted((t.info for t in self._services.values()), key=lambda i: i.port)

    def get(self, key: str) -> ServiceInfo | None:
        tracked = self._services.get(key)
        return tracked.info if tracked else None

    def orphans(self) -> dict[int, Orphan]:
        """Ledger rows that are not in the live table (an earlier panel's services)."""
        live = {t.info.pid for t in self._services.values()}
        return {
            e.pid: Orphan(e.pid, e.create_time, e.key)
            for e in self.ledger.entries()
            if e.pid not in live
        }

    def snapshot(self, listeners: dict[int, Listener] | None = None) -> list[PortInfo]:
        return self.pool.snapshot(listeners, self.orphans())

    # -- start --------------------------------------------------------------------------------
    async def start_many(self, specs: Sequence[ServiceSpec], run_id: str) -> list[ServiceInfo]:
        """Start services concurrently. All or nothing: if one fails, the others started by this
        call are stopped again and the first error is raised."""
        specs = [s for s in specs if s.key not in self._services]
        if not specs:
            return []
        listeners = self.pool.scan()
        if (room := self.pool.free_capacity(listeners)) < len(specs):
            raise PoolExhaustedError(
                f"the port pool has {room} free ports, {len(specs)} services need one each"
            )
        results = await asyncio.gather(
            *(self.start(s, run_id, listeners) for s in specs), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            started = [r.key for r in results if isinstance(r, ServiceInfo)]
            await self.stop(started)
            raise errors[0]
        return [r for r in results if isinstance(r, ServiceInfo)]

    async def start(
        self, spec: ServiceSpec, run_id: str, listeners: dict[int, Listener] | None = None
    ) -> ServiceInfo:
        if spec.key in self._services:
            raise ServiceStartError(f"{spec.key} is already running")
        avoid: set[int] = set()
        for attempt in range(BIND_RETRIES):
            alloc = self.pool.allocate(
                spec.key,
                spec.service_name,
                spec.company,
                run_id,
                spec.essential,
                listeners=listeners if attempt == 0 else None,
                avoid=frozenset(avoid),
            )
            try:
                return await self._start_on(spec, alloc)
            except PortInUseError as exc:
                avoid.add(alloc.port)
                self.bus.log(spec.key, f"port {alloc.port} was taken ({exc}); trying another")
        raise ServiceStartError(f"{spec.key}: every port tried was taken: {sorted(avoid)}")

    async def _start_on(self, spec: ServiceSpec, alloc: Allocation) -> ServiceInfo:
        token = secrets.token_hex(16)
        request = LaunchRequest(spec.service_name, spec.company, alloc.port, token)
        try:
            handle = await self.launcher.spawn(request, lambda line: self.bus.log(spec.key, line))
        except Exception:
            self.pool.release(alloc.port)
            raise
        info = ServiceInfo(
            key=spec.key,
            service_name=spec.service_name,
            company=spec.company,
            port=alloc.port,
            pid=handle.pid,
            create_time=handle.create_time,
            token=token,
            run_id=alloc.run_id,
            essential=spec.essential,
            state=ServiceState.STARTING,
            started_at=time.time(),
        )
        self.ledger.add(_ledger_entry(info, handle.cmdline_token))
        self.pool.update(
            alloc.port, pid=handle.pid, create_time=handle.create_time, started_at=info.started_at
        )
        tracked = _Tracked(info, handle)
        self._services[spec.key] = tracked
        handle.on_exit = lambda code: self._on_exit(tracked, code)
        self._emit(info)
        try:
            # One start deadline covers both the readiness line and the /health check.
            timeout = self.settings.start_timeout_ms / 1000
            deadline = time.monotonic() + timeout
            await handle.wait_ready(timeout)
            await self._verify_health(info, deadline, timeout)
        except BaseException as exc:
            await self._finish_stop(tracked, grace=0.0)
            if isinstance(exc, ServiceStartError | CoreError):
                if isinstance(exc, PortInUseError):
                    raise
                raise ServiceStartError(f"{spec.key} on port {alloc.port}: {exc}") from exc
            raise
        return self._set_state(tracked, ServiceState.RUNNING)

    async def _verify_health(self, info: ServiceInfo, deadline: float, timeout: float) -> None:
        """Ready means /health answers with this service's own name, pid and token: a leftover
        process on the same port cannot pass for it."""
        url = f"http://127.0.0.1:{info.port}/health"
        left = deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            async with self._client().get(url, timeout=ClientTimeout(total=left)) as resp:
                body = await resp.json()
        except TimeoutError as exc:
            raise ServiceStartError(
                f"not ready within {timeout:.1f} s: /health did not answer in time"
            ) from exc
        except (ClientError, ValueError) as exc:
            raise ServiceStartError(f"/health did not answer: {exc!r}") from exc
        expected = {"service": info.service_name, "pid": info.pid, "token": info.token}
        got = {k: body.get(k) for k in expected} if isinstance(body, dict) else body
        if got != expected:
            raise ServiceStartError(f"/health answered {got}, expected {expected}")

    def _client(self) -> ClientSession:
        if self._http is None or self._http.closed:
            # One connection per check, closed at once: kept-alive connections would all hit
            # EOF in the same moment when a journey's services stop, and stall the loop.
            self._http = ClientSession(connector=TCPConnector(force_close=True))
        return self._http

    # -- stop ---------------------------------------------------------------------------------
    def request_stop(self, keys: Iterable[str]) -> list[str]:
        """SIGTERM each service's process group and mark it stopping; does not wait."""
        requested = []
        for key in keys:
            tracked = self._services.get(key)
            if tracked is None or tracked.info.state is ServiceState.STOPPING:
                continue
            self._set_state(tracked, ServiceState.STOPPING)
            tracked.handle.signal_group(signal.SIGTERM)
            requested.append(key)
        return requested

    async def wait_stopped(self, keys: Iterable[str]) -> StopReport:
        """Wait until each service exited and its port is bindable; SIGKILL after the grace."""
        grace = self.settings.stop_grace_ms / 1000
        tracked = [self._services[k] for k in keys if k in self._services]
        killed = await asyncio.gather(*(self._finish_stop(t, grace) for t in tracked))
        return StopReport(
            stopped=tuple(t.info.key for t in tracked),
            killed=tuple(t.info.key for t, k in zip(tracked, killed, strict=True) if k),
        )

    async def stop(self, keys: Iterable[str]) -> StopReport:
        return await self.wait_stopped(self.request_stop(list(keys)))

    def customer_keys(self) -> list[str]:
        return [k for k, t in self._services.items() if not t.info.essential]

    async def stop_customer_services(self) -> StopReport:
        """Stop every service except the essential ones (the write-up's behaviour)."""
        return await self.stop(self.customer_keys())

    async def stop_all(self) -> StopReport:
        """Stop every service of ours: the live table and any orphans the ledger knows."""
        report = await self.stop(list(self._services))
        reaped = await self._reap_orphans()
        return replace(report, stopped=report.stopped + reaped)

    async def _finish_stop(self, tracked: _Tracked, grace: float) -> bool:
        """Make sure the process is gone and its port free; returns whether SIGKILL was needed."""
        handle, info = tracked.handle, tracked.info
        if tracked.info.state is not ServiceState.STOPPING:
            self._set_state(tracked, ServiceState.STOPPING)
        handle.signal_group(signal.SIGTERM)
        killed = False
        if not await handle.wait_exit(grace):
            killed = True
            handle.signal_group(signal.SIGKILL)
            if not await handle.wait_exit(KILL_WAIT_S):
                self.bus.log(
                    info.key, f"pid {info.pid} survived SIGKILL for {KILL_WAIT_S} s", "error"
                )
                return killed
        handle.close()
        if not await waiting.until(lambda: probe.can_bind(info.port), PORT_FREE_WAIT_S):
            self.bus.log(info.key, f"port {info.port} still not bindable after exit", "warning")
        self._forget(tracked, "killed" if killed else "stopped")
        return killed

    def _forget(self, tracked: _Tracked, how: str) -> None:
        info = tracked.info
        self._services.pop(info.key, None)
        self.pool.release(info.port)
        self.ledger.remove(info.pid)
        self.bus.emit(ServiceEvent(info.key, how, info.port, info.pid))

    def _on_exit(self, tracked: _Tracked, code: int | None) -> None:
        if tracked.info.state is ServiceState.RUNNING:
            # Died on its own: its port now shows as stale until the next sweep releases it.
            self.bus.log(
                tracked.info.key,
                f"exited unexpectedly (status {code}); port {tracked.info.port} is stale",
                "warning",
            )
            self.bus.emit(
                ServiceEvent(
                    tracked.info.key,
                    "exited",
                    tracked.info.port,
                    tracked.info.pid,
                    f"status {code}",
                )
            )

    # -- stale allocations and orphans ----------------------------------------------------------
    async def sweep(self) -> SweepReport:
        """Release allocations whose service no longer serves its port, and stop our orphans."""
        released = self.pool.cleanup_stale_allocations()
        for alloc in released:
            tracked = self._services.get(alloc.key)
            if tracked is None:
                continue
            # The process died, or lives without its port: either way it is ours and useless.
            tracked.handle.signal_group(signal.SIGKILL)
            if await tracked.handle.wait_exit(KILL_WAIT_S):
                tracked.handle.close()
            self._forget(tracked, "stale")
            self.bus.log(alloc.key, f"released stale allocation of port {alloc.port}")
        reaped = await self._reap_orphans()
        return SweepReport(stale_cleaned=len(released), orphans_reaped=len(reaped))

    async def reconcile(self) -> tuple[str, ...]:
        """At start: stop every service an earlier panel run left behind (ours only)."""
        return await self._reap_orphans()

    async def _reap_orphans(self) -> tuple[str, ...]:
        live = {t.info.pid for t in self._services.values()}
        entries = [e for e in self.ledger.entries() if e.pid not in live]
        results = await asyncio.gather(*(self._reap_orphan(e) for e in entries))
        return tuple(e.key for e, stopped in zip(entries, results, strict=True) if stopped)

    async def _reap_orphan(self, entry: LedgerEntry) -> bool:
        stopped = False
        if probe.is_ours(entry.pid, entry.create_time, entry.cmdline_token):
            stopped = await _stop_foreign_parented(entry.pid, self.settings.stop_grace_ms / 1000)
            self.bus.log(entry.key, f"stopped orphan pid {entry.pid} on port {entry.port}")
            await waiting.until(lambda: probe.can_bind(entry.port), PORT_FREE_WAIT_S)
        # Not ours any more (exited, or the pid now belongs to someone else): just forget it.
        self.ledger.remove(entry.pid)
        return stopped

    # -- shutdown -------------------------------------------------------------------------------
    async def aclose(self, stop_services: bool = True) -> None:
        if stop_services:
            await self.stop_all()
        for tracked in self._services.values():
            tracked.handle.close()
        if self._http is not None:
            await self._http.close()

    # -- helpers --------------------------------------------------------------------------------
    def _set_state(self, tracked: _Tracked, state: ServiceState) -> ServiceInfo:
        tracked.info = replace(tracked.info, state=state)
        if self.pool.get(tracked.info.port) is not None:
            self.pool.update(tracked.info.port, state=state)
        self._emit(tracked.info)
        return tracked.info

    def _emit(self, info: ServiceInfo) -> None:
        self.bus.emit(ServiceEvent(info.key, info.state.value, info.port, info.pid))


def _ledger_entry(info: ServiceInfo, cmdline_token: str) -> LedgerEntry:
    return LedgerEntry(
        pid=info.pid,
        create_time=info.create_time,
        token=info.token,
        cmdline_token=cmdline_token,
        key=info.key,
        service_name=info.service_name,
        company=info.company,
        port=info.port,
        run_id=info.run_id,
        essential=info.essential,
        started_at=info.started_at,
    )


async def _stop_foreign_parented(pid: int, grace: float) -> bool:
    """Stop a process we are not the parent of (checked to be ours by the caller)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    loop = asyncio.get_running_loop()
    gone = loop.create_future()
    loop.add_reader(pidfd, lambda: gone.done() or gone.set_result(None))
    try:
        _signal_process_group(pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(gone), grace)
        except TimeoutError:
            _signal_process_group(pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(gone), KILL_WAIT_S)
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    return True


def _signal_process_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        # Our services lead their own group; anything else gets only the single signal.
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
