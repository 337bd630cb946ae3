"""The port pool: which ports a new service may take, and every port's state for the grid.

The pool keeps no table of services of its own. Which ports are taken is the service manager's
table of service records (one record per service, docs/architecture.md "One record per
service"); the pool reads it, chooses a port, and derives each cell of the grid from the record,
the OS scan and the ledger's orphans. It knows which ports a company may take: a company with
reserved ports takes only those, and nobody else takes them. It grows, in contiguous blocks, up
to the range it may grow to when a launch does not fit, and shrinks back once a grown block
has been unused for a while ("Several companies in one pool"). Everything here runs on the
event loop's thread only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import replace

from app.core import probe
from app.core.errors import PoolExhaustedError
from app.core.model import Listener, PortInfo, PortState, ServiceRecord, ServiceState
from app.core.settings import Settings

Scanner = Callable[[range, list[int]], Mapping[int, Listener]]
Binder = Callable[[int], bool]
Records = Mapping[int, ServiceRecord]  # by port
BLOCK = 10  # the pool grows and shrinks by this many ports
SHRINK_AFTER_S = 60.0  # a grown block unused this long is given back


def pool_for(settings: Settings) -> PortPool:
    """The pool `settings` describe: its range, how far it may grow, the reserved ports."""
    reserved = {r.company_key: (r.company, r.ports) for r in settings.reserved_ports}
    return PortPool(settings.ports, max_ports=settings.max_ports, reserved=reserved)


class PortPool:
    def __init__(
        self,
        ports: range,
        scanner: Scanner = probe.scan_listeners,
        binder: Binder = probe.can_bind,
        max_ports: range | None = None,
        reserved: Mapping[str, tuple[str, range]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base = ports
        self.max_ports = max_ports if max_ports is not None else ports
        # company key -> (company name, its ports)
        self.reserved = dict(reserved or {})
        self._scan = scanner
        self._can_bind = binder
        self._clock = clock
        self._end = ports.stop  # the active pool is base.start .. _end (grown blocks above base)
        self._unused_since: dict[int, float] = {}  # grown block start -> when it became unused
        self.shrink_after_s = SHRINK_AFTER_S

    @property
    def ports(self) -> range:
        """The active pool: the configured range and the blocks grown above it."""
        return range(self.base.start, self._end)

    @property
    def label(self) -> str:
        return f"{self.ports.start}-{self.ports.stop - 1}"

    @property
    def ranges_text(self) -> str:
        """The pool and, when it may grow, how far: for messages."""
        base = f"{self.base.start}-{self.base.stop - 1}"
        if self.max_ports == self.base:
            return f"the pool {base}"
        now = f", now {self.label}" if self.ports != self.base else ""
        return f"the pool {base} (growing up to {self.max_ports.stop - 1}{now})"

    def reserved_for(self, port: int) -> str | None:
        """The company key whose reserved port this is, if any."""
        for key, (_, ports) in self.reserved.items():
            if port in ports:
                return key
        return None

    def allowed(self, company_key: str | None) -> list[int]:
        """The active ports a service of this company may take."""
        if company_key is not None and company_key in self.reserved:
            return list(self.reserved[company_key][1])
        return [p for p in self.ports if self.reserved_for(p) is None]

    # -- queries ------------------------------------------------------------------------------
    def scan(self, likely_owners: Iterable[int] = ()) -> Mapping[int, Listener]:
        """One OS scan of every port the pool may use. Pure (no shared state): safe on a
        worker thread."""
        return self._scan(self.max_ports, list(likely_owners))

    def is_free(self, port: int, taken: Collection[int], listeners: Mapping[int, Listener]) -> bool:
        return port not in taken and port not in listeners and self._can_bind(port)

    def free_capacity(
        self,
        taken: Collection[int],
        listeners: Mapping[int, Listener],
        company_key: str | None = None,
    ) -> int:
        return sum(1 for p in self.allowed(company_key) if self.is_free(p, taken, listeners))

    def growth_room(self, taken: Collection[int], listeners: Mapping[int, Listener]) -> int:
        """Free ports the pool could still grow into (foreign listeners skipped)."""
        above = range(self._end, self.max_ports.stop)
        return sum(1 for p in above if self.is_free(p, taken, listeners))

    def choose(
        self,
        taken: Collection[int],
        listeners: Mapping[int, Listener],
        avoid: Collection[int] = (),
        who: str = "a service",
        prefer: int | None = None,
        company_key: str | None = None,
    ) -> int:
        """`prefer` if it is free and this company may take it, else the first such port that
        is not taken, not listened on (foreign ports are skipped) and bindable right now. The
        caller records it before it awaits anything."""
        candidates = self.allowed(company_key)
        if prefer is not None and prefer in candidates:
            candidates.insert(0, prefer)
        for port in candidates:
            if port not in avoid and self.is_free(port, taken, listeners):
                return port
        if company_key in self.reserved:
            name, ports = self.reserved[company_key]
            raise PoolExhaustedError(
                f"{name}'s reserved ports {ports.start}-{ports.stop - 1} are full: no port for "
                f"{who}"
            )
        raise PoolExhaustedError(f"no free port in {self.ranges_text} for {who}")

    # -- growth ---------------------------------------------------------------------------------
    def grow(self, needed: int, taken: Collection[int], listeners: Mapping[int, Listener]) -> int:
        """Grow in blocks until `needed` unreserved ports are free, or the pool is at its
        limit; returns how many ports were added."""
        added = 0
        while self.free_capacity(taken, listeners) < needed and self._end < self.max_ports.stop:
            block = min(BLOCK, self.max_ports.stop - self._end)
            self._unused_since[self._end] = self._clock()
            self._end += block
            added += block
        return added

    def shrink(self, taken: Collection[int]) -> int:
        """Give back grown blocks from the top that have been unused for SHRINK_AFTER_S;
        returns how many ports were given back."""
        now = self._clock()
        removed = 0
        for start in sorted(self._unused_since, reverse=True):
            block = range(start, self._end)
            if start < self.base.stop or start >= self._end:
                continue
            if any(p in taken for p in block):
                self._unused_since[start] = now  # in use: unused from the next time it is not
                break
            if now - self._unused_since[start] < self.shrink_after_s:
                break
            del self._unused_since[start]
            removed += len(block)
            self._end = start
        return removed

    def is_grown(self, port: int) -> bool:
        return port >= self.base.stop

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
        ports = sorted(set(self.ports) | {p for p in records if p in self.max_ports})
        return [self._cell(p, records.get(p), listeners.get(p), orphans, troubles) for p in ports]

    def _cell(
        self,
        port: int,
        record: ServiceRecord | None,
        listener: Listener | None,
        orphans: Mapping[int, ServiceRecord],
        troubles: Mapping[str, str],
    ) -> PortInfo:
        info = self._port_info(port, record, listener, orphans, troubles)
        key = self.reserved_for(port)
        reserved = self.reserved[key][0] if key is not None else None
        if reserved is None and not self.is_grown(port):
            return info
        return replace(info, reserved_for=reserved, grown=self.is_grown(port))

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
                journey_id=record.journey_id,
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
