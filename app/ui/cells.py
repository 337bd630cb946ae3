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
from typing import Any

# What a service event (its change) says its port's cell is now (a port state). Ended services
# (stopped, killed, released, a launch that failed) leave their port free: the core forgets a
# record only once its process has exited and the port is bindable again (docs/architecture.md,
# "One record per service"). The window reaches the core only through the bridge: a state is
# made from the cell's own state type, never imported.
EVENT_STATES: Mapping[str, str] = {
    "starting": "starting",
    "running": "allocated",
    "stopping": "stopping",
    "stopped": "free",
    "killed": "free",
    "stale": "free",
    "failed": "free",
    "exited": "stale",
}
Cell = Any  # a PortInfo (frozen dataclass): port, state, key, pid, trouble, ...
Event = Any  # a ServiceEvent: key, change, port, pid, detail


class CellModel:
    """Port → cell, changed by service events at once and reconciled with each scan."""

    def __init__(self) -> None:
        self._cells: dict[int, Cell] = {}
        self._seq = 0  # counts the events applied
        self._touched: dict[int, int] = {}  # port → the seq of the latest event that changed it
        self._sorted: list[Cell] | None = []

    @property
    def seq(self) -> int:
        """Take it before a scan begins and hand it to `reconcile` with that scan's cells."""
        return self._seq

    def ports(self) -> list[Cell]:
        """Every cell, by port (a new list each time the model changed; the same one otherwise)."""
        if self._sorted is None:
            self._sorted = [self._cells[p] for p in sorted(self._cells)]
        return self._sorted

    def cell(self, port: int) -> Cell | None:
        return self._cells.get(port)

    def states(self) -> dict[int, str]:
        return {p: str(c.state) for p, c in self._cells.items()}

    def apply(self, event: Event) -> bool:
        """The event's cell, at once; False when it changes no cell. A port no scan has shown
        yet waits for the next scan."""
        old = self._cells.get(event.port) if event.port is not None else None
        new = _after(old, event) if old is not None else None
        if new is None:
            return False
        self._seq += 1
        self._touched[event.port] = self._seq
        changed = bool(new != old)
        if changed:
            self._cells[event.port] = new
            self._sorted = None
        return changed

    def reconcile(self, scanned: Iterable[Cell], since: int | None = None) -> None:
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


def _after(old: Cell, event: Event) -> Cell | None:
    """The cell `event` makes of `old` (None when the event is no change of this cell)."""
    change = str(event.change)
    ours = old.key == event.key
    if change == "trouble" and ours:
        return replace(old, trouble=event.detail)
    if change == "recovered" and ours:
        return replace(old, trouble="")
    state = EVENT_STATES.get(change)
    if state is None:
        return None
    if state == "free":
        # Another service holding the port now is not this event's cell.
        return _free(old) if ours or old.key is None else None
    base = old if ours else replace(_free(old), key=event.key)
    trouble = event.detail if state == "stale" else base.trouble
    # An exit is told by the process's pidfd: the process is gone (a sweep releases the port).
    return replace(
        base,
        state=type(old.state)(state),
        pid=event.pid or base.pid,
        trouble=trouble,
        gone=change == "exited",
    )


def _free(old: Cell) -> Cell:
    """A free cell that keeps what belongs to the port, not to the service that left it (its
    name and company, for a service new on the port, come with the next scan)."""
    return type(old)(
        old.port,
        type(old.state)("free"),
        others=old.others,
        reserved_for=old.reserved_for,
        grown=old.grown,
    )
