"""The holes found under attack (lifecycle and faults): each test reproduces one and proves it
closed. Real services on real ports; the leak check of tests/conftest.py runs after each."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core import db, probe
from app.core.errors import StateDatabaseError
from app.core.events import RunEvent, RunStatus
from app.core.model import Phase, PortState, ServiceState
from app.core.orchestrator import Core, open_core
from app.core.settings import Settings
from app.core.waiting import until
from tests.conftest import run
from tests.helpers import alive, journey


def ten_steps(company: str) -> dict[str, object]:
    return journey(company, *[f"Step{i}Service" for i in range(10)])


def nothing_in_flight(core: Core, settings: Settings) -> None:
    """No record, no ledger row, no listener: every port free, none left starting."""
    assert core.manager.by_port() == {}
    assert core.manager.ledger.records() == []
    assert {p.state for p in core.ports()} == {PortState.FREE}
    assert probe.scan_listeners(settings.ports) == {}


@pytest.mark.both_launchers  # the cancelled spawn differs: a forked child arriving late, a Popen
@pytest.mark.slow
def test_stop_all_during_a_launch_leaks_no_port(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 1: Stop All 0.25 s into a 10-step launch left its ports `starting` with no pid (a
    cancellation inside the spawn skipped the release). Ten rounds, each must leave nothing."""
    monkeypatch.setenv("BIZOBS_FAULT_START_DELAY_MS", "300")

    async def scenario() -> None:
        async with open_core(settings) as core:
            for round_no in range(10):
                task = asyncio.create_task(core.run_journey(ten_steps(f"Round {round_no}")))
                # Even rounds: as the first port is reserved (spawns in flight); odd rounds:
                # once some services are spawned and waiting to be ready.
                spawned = round_no % 2
                assert await until(lambda n=spawned: _launching(core, n), 10)
                await core.stop_all()
                result = await task
                assert not result.ok and "cancelled by Stop All" in (result.error or "")
                nothing_in_flight(core, settings)
            await next_journey_works(core)

    run(scenario(), timeout=180)


def _launching(core: Core, spawned: int) -> bool:
    records = core.manager.by_port().values()
    return sum(r.pid is not None for r in records) >= spawned and bool(records)


async def next_journey_works(core: Core) -> None:
    result = await core.run_journey(journey("After Co", "AfterOneService"))
    assert result.ok, result.error


def test_a_cancelled_caller_leaves_the_run_to_the_core(settings: Settings) -> None:
    """Item 2: when the caller of run_journey was cancelled (an API closing), the run lock was
    released while the run went on, and Stop All then found nothing to stop."""
    statuses: list[RunStatus] = []

    async def scenario() -> None:
        async with open_core(settings) as core:
            core.events.run.connect(lambda e: statuses.append(e.status))
            caller = asyncio.create_task(core.run_journey(ten_steps("Cancel Co")))
            assert await until(lambda: core.manager.by_port() != {}, 10)
            caller.cancel()
            with pytest.raises(asyncio.CancelledError):
                await caller
            assert core.busy, "the run goes on under the core, still holding the run lock"
            await core.stop_all()
            assert not core.busy
            nothing_in_flight(core, settings)
            [latest] = core.history.runs(1)
            assert latest["status"] in ("cancelled", "ok")  # cancelled, or it had finished
        assert statuses[0] is RunStatus.STARTED and len(statuses) == 2

    run(scenario(), timeout=120)


def test_an_unwritable_ledger_stops_the_service_it_could_not_track(settings: Settings) -> None:
    """Item 5: a ledger write failing after a spawn left a listening, untracked process that
    Stop All could not stop, and the run stayed `running`. Spawned => tracked or killed."""

    async def scenario() -> None:
        async with open_core(settings) as core:
            conn = core.manager.ledger._conn

            def disk_full(event: RunEvent) -> None:
                if event.status is RunStatus.STARTED:  # after the history row, before any spawn
                    conn.execute("PRAGMA query_only = ON")

            core.events.run.connect(disk_full)
            with pytest.raises(StateDatabaseError, match="cannot be written"):
                await core.run_journey(journey("Full Co", "OneService", "TwoService"))
            conn.execute("PRAGMA query_only = OFF")
            core.events.run.disconnect(disk_full)
            nothing_in_flight(core, settings)
            assert not core.busy
            await next_journey_works(core)
            statuses = {r["company"]: r["status"] for r in core.history.runs(5)}
            assert statuses == {"Full Co": "failed", "After Co": "ok"}

    run(scenario(), timeout=120)


@pytest.fixture
def short_lock_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "LOCK_WAIT_S", 0.5)


@pytest.fixture
def locked_database(settings: Settings) -> Iterator[Path]:
    """Another process's write lock on the state database, as a stuck panel would hold."""
    path = settings.db_path
    path.parent.mkdir(parents=True, exist_ok=True)
    run(_open_and_close(settings))
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield path
    finally:
        holder.execute("ROLLBACK")
        holder.close()


async def _open_and_close(settings: Settings) -> None:
    async with open_core(settings) as core:
        await next_journey_works(core)


def test_a_locked_database_is_refused_not_thrown_away(
    settings: Settings, short_lock_wait: None, locked_database: Path
) -> None:
    """Item 6: a locked database at start was treated as corrupt and moved aside, losing the
    ledger of a crashed panel. Locked != corrupt: wait a bounded time, then refuse clearly."""
    before = sorted(p.name for p in locked_database.parent.iterdir())

    async def scenario() -> None:
        with pytest.raises(StateDatabaseError, match="locked by another process"):
            async with open_core(settings):
                pass

    run(scenario())
    after = sorted(p.name for p in locked_database.parent.iterdir())
    assert not [n for n in after if ".corrupt-" in n], "a locked database was moved aside"
    assert set(before) <= set(after)


def test_a_listener_on_another_address_never_makes_ours_stale(settings: Settings) -> None:
    """Item 7: a socket on 127.0.0.2:P marked our healthy service on 127.0.0.1:P stale, and the
    sweep killed it. Ours stays allocated; the other listener is shown, never a reason."""

    async def scenario() -> None:
        async with open_core(settings) as core:
            result = await core.run_journey(journey("Share Co", "SharedPortService"))
            [svc] = result.services
            other = socket.socket()
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            other.bind(("127.0.0.2", svc.port))
            other.listen()
            try:
                [cell] = [p for p in core.ports() if p.port == svc.port]
                assert cell.state is PortState.ALLOCATED and cell.pid == svc.pid
                assert cell.others and cell.others[0].endswith("on 127.0.0.2")
                assert await core.cleanup() == {"staleCleaned": 0, "orphansReaped": 0}
                again = await core.run_journey(journey("Share Co", "SharedPortService"))
                assert again.ok and again.phase(Phase.SWEEP).counts["staleCleaned"] == 0
                assert alive(again.services[0].pid)
                assert core.manager.get(svc.key).state is ServiceState.RUNNING
            finally:
                other.close()

    run(scenario())
