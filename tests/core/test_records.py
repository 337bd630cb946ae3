"""One record per service, without processes: its transitions, the pool's choices and port states
through the scanner and binder seams, and the manager's reservations through the launcher seam.
The same paths with real processes are in test_lifecycle.py and tests/chaos."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from app.core.db import open_db
from app.core.errors import PoolExhaustedError, ServiceStartError
from app.core.events import CoreEvents, ServiceEvent
from app.core.launcher import HelperHook, LaunchRequest, LineHandler, ProcessHandle
from app.core.ledger import Ledger
from app.core.model import Listener, PortState, ServiceRecord, ServiceSpec, ServiceState
from app.core.ports import PortPool
from app.core.services import ServiceManager
from app.core.settings import Settings
from app.core.waiting import until
from tests.conftest import run

PORTS = range(9001, 9006)


def record(port: int = 9001, **changes: object) -> ServiceRecord:
    base = ServiceRecord("A-Co", "A", "Co", port, "run-1")
    return replace(base, **changes)  # type: ignore[arg-type]


def test_transitions_are_the_documented_ones() -> None:
    starting = record()
    running = starting.spawned(42, 1.0, "tok", 2.0).to(ServiceState.RUNNING)
    assert running.to(ServiceState.STOPPING).state is ServiceState.STOPPING
    assert starting.to(ServiceState.STOPPING).state is ServiceState.STOPPING  # failed launch
    for bad_from, bad_to in (
        (running, ServiceState.STARTING),
        (running, ServiceState.RUNNING),
        (running.to(ServiceState.STOPPING), ServiceState.RUNNING),
        (starting, ServiceState.STARTING),
    ):
        with pytest.raises(ValueError, match="is not a transition"):
            bad_from.to(bad_to)
    with pytest.raises(ValueError, match="spawned twice"):
        starting.spawned(42, 1.0, "tok", 2.0).spawned(43, 1.0, "tok", 2.0)


class FakeOS:
    """The scanner and binder seams: who listens, and which ports cannot be bound."""

    def __init__(self) -> None:
        self.listeners: dict[int, Listener] = {}
        self.unbindable: set[int] = set()

    def scan(self, ports: range, _owners: list[int]) -> Mapping[int, Listener]:
        return {p: lst for p, lst in self.listeners.items() if p in ports}

    def can_bind(self, port: int) -> bool:
        return port not in self.unbindable and port not in self.listeners


def test_the_pool_chooses_ports_that_are_free_in_every_sense() -> None:
    fake = FakeOS()
    pool = PortPool(PORTS, fake.scan, fake.can_bind)
    fake.listeners[9001] = Listener(9001, 7, "nginx", 1.0)
    fake.unbindable.add(9002)  # bound, not listening (or TIME_WAIT without SO_REUSEADDR)
    taken = {9003: record(9003)}
    assert pool.choose(taken, pool.scan()) == 9004
    assert pool.choose(taken, pool.scan(), avoid={9004}) == 9005
    assert pool.free_capacity(taken, pool.scan()) == 2
    with pytest.raises(PoolExhaustedError, match="no free port in the pool 9001-9005"):
        pool.choose({**taken, 9004: record(9004), 9005: record(9005)}, pool.scan())


def test_port_states_derive_from_records_listeners_and_orphans() -> None:
    fake = FakeOS()
    pool = PortPool(PORTS, fake.scan, fake.can_bind)
    running = record(9001).spawned(10, 1.0, "t", 1.0).to(ServiceState.RUNNING)
    died = replace(running, key="B-Co", port=9002, pid=11)
    orphan = replace(running, key="Old-Co", port=9005, pid=99, create_time=5.0)
    fake.listeners = {
        9001: Listener(9001, 10, "python", 1.0),
        9004: Listener(9004, 7, "nginx", 1.0),
        9005: Listener(9005, 99, "python", 5.0),
    }
    records = {9001: running, 9002: died, 9003: record(9003)}
    states = {p.port: p.state for p in pool.snapshot(records, pool.scan(), {99: orphan})}
    assert states == {
        9001: PortState.ALLOCATED,
        9002: PortState.STALE,  # running record, nothing of ours listens
        9003: PortState.STARTING,  # reserved, spawn in flight
        9004: PortState.FOREIGN,
        9005: PortState.STALE,  # an earlier panel's service, still listening
    }
    records[9001] = running.to(ServiceState.STOPPING)
    assert pool.snapshot(records, pool.scan())[0].state is PortState.STOPPING
    assert pool.is_stale(died, pool.scan()) and not pool.is_stale(running, pool.scan())


class RefusingLauncher:
    """The launcher seam: spawns that fail, or hang until cancelled; never a process."""

    def __init__(self, hang: bool) -> None:
        self.hang = hang
        self.requests: list[LaunchRequest] = []

    async def spawn(self, request: LaunchRequest, on_line: LineHandler) -> ProcessHandle:
        self.requests.append(request)
        if self.hang:
            await asyncio.Event().wait()
        raise ServiceStartError("cannot fork: out of memory (simulated)")

    def watch_helpers(self, started: HelperHook, gone: HelperHook) -> None:
        return None  # no helper process

    async def settle(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def manager(tmp_path: Path, launcher: RefusingLauncher, events: CoreEvents) -> ServiceManager:
    fake = FakeOS()
    conn, _ = open_db(tmp_path / "state.db")
    settings = Settings(port_lo=PORTS.start, port_hi=PORTS.stop - 1, api_port=9000)
    return ServiceManager(
        settings, PortPool(PORTS, fake.scan, fake.can_bind), Ledger(conn), launcher, events
    )


@pytest.mark.parametrize("hang", [False, True], ids=["spawn-fails", "spawn-cancelled"])
def test_a_reservation_ends_with_its_spawn(tmp_path: Path, hang: bool) -> None:
    """Reserved (starting, no pid) while the spawn is under way; whether the spawn fails or
    is cancelled, the reservation ends: no record, no ledger row, the port free again."""
    events = CoreEvents()
    seen: list[ServiceEvent] = []
    events.service.connect(seen.append)
    launcher = RefusingLauncher(hang)
    mgr = manager(tmp_path, launcher, events)
    specs = [ServiceSpec("A", "Co"), ServiceSpec("B", "Co")]

    async def scenario() -> None:
        task = asyncio.create_task(mgr.start_many(specs, "run-1"))
        assert await until(lambda: len(launcher.requests) == 2 or task.done(), 5)
        # Starts are asked for one per turn of the loop: a spawn that fails at once ends the
        # launch before the next one is asked for.
        assert len(launcher.requests) == (2 if hang else 1)
        if hang:
            ports = sorted(r.port for r in launcher.requests)
            assert ports == [9001, 9002]  # two starts in flight at once never share a port
            assert {r.state for r in mgr.by_port().values()} == {ServiceState.STARTING}
            assert mgr.services() == []  # no process yet: not a service
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            with pytest.raises(ServiceStartError, match="simulated"):
                await task
        assert mgr.by_port() == {} and mgr.ledger.records() == []
        assert all(p.state is PortState.FREE for p in mgr.pool.snapshot(mgr.by_port(), mgr.scan()))

    run(scenario())
    assert seen == []  # a service that never had a process never appeared


def test_run_ids_of_one_second_do_not_collide() -> None:
    """20,000 ids in a row, most in the same second: with the 24 random bits ids had, about 12
    of them would have shared an id (the history refused the second run with a 507)."""
    from app.core.runs import new_run_id

    ids = [new_run_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("run-") and len(i.rsplit("-", 1)[1]) == 12 for i in ids)
