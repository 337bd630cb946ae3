"""The facade: the one object the window, the API and the CLI drive.

`Core` assembles the parts for one state directory (lock, database, ledger, pool, launcher,
service manager) and runs journeys phase by phase (DESIGN.md §4).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from app.config import LauncherKind, Settings
from app.core.db import open_db
from app.core.errors import BusyError, PoolExhaustedError
from app.core.events import EventBus, PhaseEvent, RunEvent
from app.core.launcher import ExecLauncher, Launcher
from app.core.ledger import Ledger
from app.core.lock import StateLock
from app.core.model import Phase, PortInfo, ServiceInfo, ServiceSpec, StopReport
from app.core.ports import PortPool
from app.core.services import ServiceManager


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


class Core:
    """Open with `await Core.open(settings)`; close with `await core.close()`."""

    def __init__(self, settings: Settings, bus: EventBus | None = None) -> None:
        self.settings = settings
        self.bus = bus or EventBus()
        self.startup_messages: list[str] = []
        self.reconciled: tuple[str, ...] = ()  # orphans of an earlier run stopped at open
        self._lock = StateLock(settings.state_dir)
        self._run_lock = asyncio.Lock()
        self.db_conn: Any = None
        self.manager: ServiceManager

    @classmethod
    async def open(cls, settings: Settings, bus: EventBus | None = None) -> Core:
        core = cls(settings, bus)
        await core._start()
        return core

    async def _start(self) -> None:
        self._lock.acquire()
        try:
            self.db_conn, message = open_db(self.settings.db_path)
            if message:
                self.startup_messages.append(message)
                self.bus.log("core", message, "warning")
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
        except BaseException:
            self._lock.release()
            raise

    async def close(self, stop_services: bool = True) -> None:
        await self.manager.aclose(stop_services)
        await self.manager.launcher.aclose()
        self.db_conn.close()
        self._lock.release()

    # -- queries ------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._run_lock.locked()

    def ports(self) -> list[PortInfo]:
        return self.manager.snapshot()

    def services(self) -> list[ServiceInfo]:
        return self.manager.services()

    # -- commands outside runs ----------------------------------------------------------------
    async def stop_all(self) -> StopReport:
        async with self._exclusive("stop all"):
            return await self.manager.stop_all()

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
    def _exclusive(self, what: str) -> _Exclusive:
        return _Exclusive(self._run_lock, what)

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
        except BaseException as exc:
            ms = (time.perf_counter() - t0) * 1000
            self.bus.emit(PhaseEvent(run_id, phase, "failed", started_at, ms))
            self.bus.emit(RunEvent(run_id, "failed", str(exc)))
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

    def __init__(self, lock: asyncio.Lock, what: str) -> None:
        self._lock = lock
        self._what = what

    async def __aenter__(self) -> None:
        if self._lock.locked():
            raise BusyError(f"cannot {self._what}: a journey run is in progress")
        await self._lock.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()
