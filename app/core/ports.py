"""The port pool: which port belongs to which service, and every port's state."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from app.core import probe
from app.core.errors import PoolExhaustedError
from app.core.model import Listener, PortInfo, PortState, ServiceState


@dataclass(frozen=True)
class Allocation:
    port: int
    key: str
    service_name: str
    company: str
    run_id: str
    essential: bool = False
    state: ServiceState = ServiceState.STARTING
    pid: int | None = None
    create_time: float | None = None
    started_at: float | None = None


@dataclass(frozen=True)
class Orphan:
    """One of our own services from an earlier panel run that is not in the live table."""

    pid: int
    create_time: float
    key: str


Scanner = Callable[[range, list[int]], Mapping[int, Listener]]
Binder = Callable[[int], bool]


class PortPool:
    def __init__(
        self, ports: range, scanner: Scanner = probe.scan_listeners, binder: Binder = probe.can_bind
    ) -> None:
        self.ports = ports
        self._scan = scanner
        self._can_bind = binder
        self._allocations: dict[int, Allocation] = {}
        # Sync methods under one lock: two allocations (even from two threads) never share a port.
        self._lock = threading.Lock()

    # -- queries ------------------------------------------------------------------------------
    def scan(self) -> Mapping[int, Listener]:
        # Our own services are the likely owners of listeners in the pool: look there first.
        owners = [a.pid for a in self.allocations().values() if a.pid is not None]
        return self._scan(self.ports, owners)

    def allocations(self) -> dict[int, Allocation]:
        with self._lock:
            return dict(self._allocations)

    def get(self, port: int) -> Allocation | None:
        return self._allocations.get(port)

    def free_capacity(self, listeners: Mapping[int, Listener] | None = None) -> int:
        listeners = self.scan() if listeners is None else listeners
        with self._lock:
            return sum(1 for p in self.ports if self._is_free(p, listeners))

    # -- changes ------------------------------------------------------------------------------
    def allocate(
        self,
        key: str,
        service_name: str,
        company: str,
        run_id: str,
        essential: bool = False,
        listeners: Mapping[int, Listener] | None = None,
        avoid: frozenset[int] = frozenset(),
    ) -> Allocation:
        """Take the first port that is unallocated, unlistened (foreign ports are skipped) and
        bindable right now."""
        listeners = self.scan() if listeners is None else listeners
        with self._lock:
            for port in self.ports:
                if port in avoid or not self._is_free(port, listeners):
                    continue
                alloc = Allocation(port, key, service_name, company, run_id, essential)
                self._allocations[port] = alloc
                return alloc
        raise PoolExhaustedError(
            f"no free port in {self.ports.start}-{self.ports.stop - 1} for {key}"
        )

    def _is_free(self, port: int, listeners: Mapping[int, Listener]) -> bool:
        return port not in self._allocations and port not in listeners and self._can_bind(port)

    def update(self, port: int, **changes: object) -> Allocation:
        with self._lock:
            alloc = replace(self._allocations[port], **changes)  # type: ignore[arg-type]
            self._allocations[port] = alloc
            return alloc

    def release(self, port: int) -> Allocation | None:
        with self._lock:
            return self._allocations.pop(port, None)

    # -- stale allocations (the write-up's cleanupStaleAllocations) ---------------------------
    def stale_allocations(self, listeners: Mapping[int, Listener]) -> list[Allocation]:
        """Running allocations whose process no longer serves the port (it died, or it is gone
        and the port is free or taken by someone else). Starting/stopping ones are in flight."""
        with self._lock:
            return [a for a in self._allocations.values() if self._is_stale(a, listeners)]

    @staticmethod
    def _is_stale(alloc: Allocation, listeners: Mapping[int, Listener]) -> bool:
        if alloc.state is not ServiceState.RUNNING:
            return False
        listener = listeners.get(alloc.port)
        return listener is None or listener.pid != alloc.pid

    def cleanup_stale_allocations(
        self, listeners: Mapping[int, Listener] | None = None
    ) -> list[Allocation]:
        """Release every stale allocation; returns what was released (its length is the count)."""
        listeners = self.scan() if listeners is None else listeners
        stale = self.stale_allocations(listeners)
        for alloc in stale:
            self.release(alloc.port)
        return stale

    # -- the grid -----------------------------------------------------------------------------
    def snapshot(
        self,
        listeners: Mapping[int, Listener] | None = None,
        orphans: Mapping[int, Orphan] | None = None,
    ) -> list[PortInfo]:
        """Every port's state (DESIGN.md §3) from one scan. `orphans`: ledger rows by pid."""
        listeners = self.scan() if listeners is None else listeners
        orphans = orphans or {}
        allocations = self.allocations()
        return [
            self._port_info(p, allocations.get(p), listeners.get(p), orphans) for p in self.ports
        ]

    def _port_info(
        self,
        port: int,
        alloc: Allocation | None,
        listener: Listener | None,
        orphans: Mapping[int, Orphan],
    ) -> PortInfo:
        if alloc is not None:
            state = {
                ServiceState.STARTING: PortState.STARTING,
                ServiceState.STOPPING: PortState.STOPPING,
            }.get(alloc.state)
            if state is None:
                alive = listener is not None and listener.pid == alloc.pid
                state = PortState.ALLOCATED if alive else PortState.STALE
            return PortInfo(
                port,
                state,
                alloc.key,
                alloc.service_name,
                alloc.company,
                alloc.pid,
                alloc.essential,
                listener.name if listener else None,
                alloc.started_at,
            )
        if listener is not None:
            orphan = orphans.get(listener.pid) if listener.pid else None
            if (
                orphan
                and listener.create_time
                and abs(listener.create_time - orphan.create_time) < 0.01
            ):
                return PortInfo(
                    port,
                    PortState.STALE,
                    key=orphan.key,
                    pid=listener.pid,
                    process_name=listener.name,
                )
            return PortInfo(port, PortState.FOREIGN, pid=listener.pid, process_name=listener.name)
        if not self._can_bind(port):
            return PortInfo(port, PortState.FOREIGN, process_name="(bound, not listening)")
        return PortInfo(port, PortState.FREE)
