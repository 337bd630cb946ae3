"""The window's one picture of the pool: a keyed model, port → cell (`PortInfo`).

Every view that shows cells (the port grid and its counts, the journey map) reads this model;
nothing else keeps a copy to patch (docs/architecture.md, "The window"). Two inputs feed it:

- a **service event** changes its port's cell at once: a fork-server service stops in ≈50 ms,
  often between two scans, and a cell must not wait a refresh to say what the core just did;
- a **scan** (the periodic snapshot, docs/architecture.md "Port states") replaces the picture
  whole, except on ports an event changed after that scan began: there the scan is older than
  the event (the OS scan may run on a worker thread while the core goes on), and the event's
  cell stays until a scan that began after it arrives.

Plain Python, no Qt: the bridge feeds it, the stage and the views read it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from app.core.events import ServiceChange, ServiceEvent
from app.core.model import PortInfo, PortState

# What a service event says its port's cell is now. Ended services (stopped, killed, released,
# a launch that failed) leave their port free: the core forgets a record only once its process
# has exited and the port is bindable again (docs/architecture.md, "One record per service").
EVENT_STATES: Mapping[ServiceChange, PortState] = {
    ServiceChange.STARTING: PortState.STARTING,
    ServiceChange.RUNNING: PortState.ALLOCATED,
    ServiceChange.STOPPING: PortState.STOPPING,
    ServiceChange.STOPPED: PortState.FREE,
    ServiceChange.KILLED: PortState.FREE,
    ServiceChange.STALE: PortState.FREE,
    ServiceChange.FAILED: PortState.FREE,
    ServiceChange.EXITED: PortState.STALE,
}


class CellModel:
    """Port → cell, changed by service events at once and reconciled with each scan."""

    def __init__(self) -> None:
        self._cells: dict[int, PortInfo] = {}
        self._seq = 0  # counts the events applied
        self._touched: dict[int, int] = {}  # port → the seq of the latest event that changed it
        self._sorted: list[PortInfo] | None = []

    @property
    def seq(self) -> int:
        """Take it before a scan begins and hand it to `reconcile` with that scan's cells."""
        return self._seq

    def ports(self) -> list[PortInfo]:
        """Every cell, by port (a new list each time the model changed; the same one otherwise)."""
        if self._sorted is None:
            self._sorted = [self._cells[p] for p in sorted(self._cells)]
        return self._sorted

    def cell(self, port: int) -> PortInfo | None:
        return self._cells.get(port)

    def states(self) -> dict[int, PortState]:
        return {p: c.state for p, c in self._cells.items()}

    def apply(self, event: ServiceEvent) -> bool:
        """The event's cell, at once; False when it says nothing about a cell."""
        if event.port is None:
            return False
        old = self._cells.get(event.port)
        new = _after(old, event)
        if new is None:
            return False
        self._seq += 1
        self._touched[event.port] = self._seq
        if new != old:
            self._cells[event.port] = new
            self._sorted = None
        return new != old

    def reconcile(self, scanned: Iterable[PortInfo], since: int | None = None) -> None:
        """A scan's cells replace the picture. `since` is `seq` when the scan began; None for a
        scan made on the spot (nothing can have happened in between)."""
        since = self._seq if since is None else since
        cells = {c.port: c for c in scanned}
        newer = {p: s for p, s in self._touched.items() if s > since and p in self._cells}
        for port in newer:
            cells[port] = self._cells[port]
        self._touched = newer
        self._cells = cells
        self._sorted = None


def _after(old: PortInfo | None, event: ServiceEvent) -> PortInfo | None:
    """The cell `event` makes of `old` (None when the event is no state change of a cell)."""
    assert event.port is not None
    port = event.port
    state = EVENT_STATES.get(event.change)
    if event.change is ServiceChange.TROUBLE and old is not None and old.key == event.key:
        return replace(old, trouble=event.detail)
    if event.change is ServiceChange.RECOVERED and old is not None and old.key == event.key:
        return replace(old, trouble="")
    if state is None:
        return None
    if state is PortState.FREE:
        if old is not None and old.key not in (None, event.key):
            return None  # another service holds the port now: not this event's cell
        return _free(old, port)
    base = old if old is not None and old.key == event.key else _new_cell(old, port, event)
    trouble = event.detail if state is PortState.STALE else base.trouble
    return replace(base, state=state, pid=event.pid or base.pid, trouble=trouble)


def _free(old: PortInfo | None, port: int) -> PortInfo:
    """A free cell that keeps what belongs to the port, not to the service that left it."""
    if old is None:
        return PortInfo(port, PortState.FREE)
    return PortInfo(
        port, PortState.FREE, others=old.others, reserved_for=old.reserved_for, grown=old.grown
    )


def _new_cell(old: PortInfo | None, port: int, event: ServiceEvent) -> PortInfo:
    """The cell of a service new on this port: its name and company come with the next scan."""
    free = _free(old, port)
    return replace(free, key=event.key, pid=event.pid)
