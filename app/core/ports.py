"""The port pool: which ports a new service may take, and every port's state for the grid.

The pool keeps no table of its own. Which ports are taken is the service manager's table of
service records (one record per service, docs/architecture.md "One record per service"); the
pool reads it, chooses a port, and derives each cell of the grid from the record, the OS scan
and the ledger's orphans. Everything here runs on the event loop's thread only.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping

from app.core import probe
from app.core.errors import PoolExhaustedError
from app.core.model import Listener, PortInfo, PortState, ServiceRecord, ServiceState

Scanner = Callable[[range, list[int]], Mapping[int, Listener]]
Binder = Callable[[int], bool]
Records = Mapping[int, ServiceRecord]  # by port


class PortPool:
    def __init__(
        self, ports: range, scanner: Scanner = probe.scan_listeners, binder: Binder = probe.can_bind
    ) -> None:
        self.ports = ports
        self._scan = scanner
        self._can_bind = binder

    @property
    def label(self) -> str:
        return f"{self.ports.start}-{self.ports.stop - 1}"

    # -- queries ------------------------------------------------------------------------------
    def scan(self, likely_owners: Iterable[int] = ()) -> Mapping[int, Listener]:
        """One OS scan of the pool. Pure (no shared state): safe on a worker thread."""
        return self._scan(self.ports, list(likely_owners))

    def is_free(self, port: int, taken: Collection[int], listeners: Mapping[int, Listener]) -> bool:
        return port not in taken and port not in listeners and self._can_bind(port)

    def free_capacity(self, taken: Collection[int], listeners: Mapping[int, Listener]) -> int:
        return sum(1 for p in self.ports if self.is_free(p, taken, listeners))

    def choose(
        self,
        taken: Collection[int],
        listeners: Mapping[int, Listener],
        avoid: Collection[int] = (),
        who: str = "a service",
        prefer: int | None = None,
    ) -> int:
        """`prefer` if it is free, else the first port that is not taken, not listened on
        (foreign ports are skipped) and bindable right now. The caller records it before it
        awaits anything."""
        candidates = list(self.ports)
        if prefer is not None and prefer in self.ports:
            candidates.insert(0, prefer)
        for port in candidates:
            if port not in avoid and self.is_free(port, taken, listeners):
                return port
        raise PoolExhaustedError(f"no free port in {self.label} for {who}")

    # -- stale allocations (the replaced system's cleanupStaleAllocations) ---------------------
    @staticmethod
    def is_stale(record: ServiceRecord, listeners: Mapping[int, Listener]) -> bool:
        """A running service whose process no longer serves its port (it died, or it is gone and
        the port is free or someone else's). Starting and stopping ones are in flight."""
        if record.state is not ServiceState.RUNNING:
            return False
        listener = listeners.get(record.port)
        return listener is None or listener.pid != record.pid

    # -- the grid -----------------------------------------------------------------------------
    def snapshot(
        self,
        records: Records,
        listeners: Mapping[int, Listener],
        orphans: Mapping[int, ServiceRecord] | None = None,
        troubles: Mapping[str, str] | None = None,
    ) -> list[PortInfo]:
        """Every port's state (docs/architecture.md, "Port states") from one scan; `orphans` are
        ledger rows of an earlier panel run, by pid; `troubles` what is wrong with our running
        services, by key, in words."""
        orphans = orphans or {}
        troubles = troubles or {}
        return [
            self._port_info(p, records.get(p), listeners.get(p), orphans, troubles)
            for p in self.ports
        ]

    def _port_info(
        self,
        port: int,
        record: ServiceRecord | None,
        listener: Listener | None,
        orphans: Mapping[int, ServiceRecord],
        troubles: Mapping[str, str],
    ) -> PortInfo:
        others = listener.others if listener else ()
        if record is not None:
            return PortInfo(
                port,
                _record_state(record, listener),
                record.key,
                record.service_name,
                record.company,
                record.pid,
                record.essential,
                listener.name if listener else None,
                record.started_at,
                others,
                troubles.get(record.key, ""),
            )
        if listener is not None:
            orphan = orphans.get(listener.pid) if listener.pid else None
            if orphan is not None and _same_process(listener, orphan):
                return PortInfo(
                    port,
                    PortState.STALE,
                    key=orphan.key,
                    pid=listener.pid,
                    process_name=listener.name,
                    others=others,
                )
            return PortInfo(
                port,
                PortState.FOREIGN,
                pid=listener.pid,
                process_name=listener.name,
                others=others,
            )
        if not self._can_bind(port):
            return PortInfo(port, PortState.FOREIGN, process_name="(bound, not listening)")
        return PortInfo(port, PortState.FREE)


def _record_state(record: ServiceRecord, listener: Listener | None) -> PortState:
    if record.state is ServiceState.STARTING:
        return PortState.STARTING
    if record.state is ServiceState.STOPPING:
        return PortState.STOPPING
    alive = listener is not None and listener.pid == record.pid
    return PortState.ALLOCATED if alive else PortState.STALE


def _same_process(listener: Listener, record: ServiceRecord) -> bool:
    if listener.create_time is None or record.create_time is None:
        return False
    return abs(listener.create_time - record.create_time) < 0.01
