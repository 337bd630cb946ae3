"""Chaos: a fault, then journeys before and after; nothing may leak and the next journey works."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
import pytest

from app.core import probe
from app.core.model import PortState, ServiceState
from app.core.orchestrator import Core, open_core
from app.core.settings import Settings
from app.core.waiting import until
from tests.conftest import run
from tests.helpers import (
    ServeProcess,
    alive,
    journey,
    listen_on,
    listeners_are_exactly_ours,
    still_listening,
)


@contextmanager
def squat(*ports: int) -> Iterator[list[socket.socket]]:
    """Foreign listeners: plain sockets of the test process, which nothing may close."""
    socks = []
    try:
        for port in ports:
            socks.append(listen_on(port))
        yield socks
    finally:
        for sock in socks:
            sock.close()


async def next_journey_works(core: Core, company: str = "After Co") -> None:
    result = await core.run_journey(
        journey(company, "AfterOneService", "AfterTwoService"), customers=2, mode="multiple"
    )
    assert result.ok, result.error
    assert result.simulation and result.simulation.summary.completed == 2


# -- service faults -----------------------------------------------------------------------------
def test_service_sigstopped_is_killed_at_next_switch(settings: Settings) -> None:
    async def scenario() -> None:
        # A healthy service exits in milliseconds; the grace leaves room for a loaded machine.
        async with open_core(settings.with_(stop_grace_ms=1500)) as core:
            first = await core.run_journey(journey("Hung Co", "HungService", "OkService"))
            hung = next(s for s in first.services if s.service_name == "HungService")
            os.kill(hung.pid, signal.SIGSTOP)
            second = await core.run_journey(journey("Next Co", "NextService"))
            assert second.ok and second.stopped == 2
            wait = second.phases[1]
            assert wait.counts["killed"] == 1
            assert not alive(hung.pid)
            listeners_are_exactly_ours(core, settings)
            await next_journey_works(core)

    run(scenario())


def test_service_killed_mid_request(settings: Settings) -> None:
    async def scenario() -> None:
        async with open_core(settings) as core:
            j = journey("Crash Co", "FrontService", "SlowService", step2={"latencyMs": 5000})
            task = asyncio.create_task(core.run_journey(j, customers=2, mode="multiple"))
            assert await until(
                lambda: (
                    len(core.services()) == 2
                    and all(s.state is ServiceState.RUNNING for s in core.services())
                ),
                30,
            )
            slow = next(s for s in core.services() if s.service_name == "SlowService")
            os.kill(slow.pid, signal.SIGKILL)
            result = await task
            assert result.ok and result.simulation  # the run completes and reports the failure
            for cust in result.simulation.customers:
                front, dead = cust.steps
                assert front.status == "ok"
                assert dead.status == "failed" and dead.http_status == 502
            assert await until(lambda: PortState.STALE in {p.state for p in core.ports()}, 5)
            await next_journey_works(core)
            listeners_are_exactly_ours(core, settings)

    run(scenario())


def test_service_that_exits_at_start_rolls_back_the_launch(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIZOBS_FAULT_EXIT_AT_START", "BrokenService")

    async def scenario() -> None:
        async with open_core(settings) as core:
            before = await core.run_journey(journey("Before Co", "BeforeService"))
            assert before.ok
            result = await core.run_journey(
                journey("Broken Co", "GoodService", "BrokenService", "OtherService")
            )
            assert not result.ok
            assert "BrokenService" in (result.error or "") and "exited" in (result.error or "")
            assert core.services() == []  # rolled back; the previous journey was stopped
            assert probe.scan_listeners(settings.ports) == {}
            await next_journey_works(core)

    run(scenario())


# -- foreign squatters --------------------------------------------------------------------------
def test_foreign_squatter_on_the_first_port(settings: Settings) -> None:
    with squat(settings.port_lo) as (sock,):

        async def scenario() -> None:
            async with open_core(settings) as core:
                await next_journey_works(core, "One Co")
                await next_journey_works(core, "Two Co")
                assert settings.port_lo not in {s.port for s in core.services()}
                assert core.ports()[0].state is PortState.FOREIGN
                await core.stop_all()

        run(scenario())
        assert still_listening(sock)


def test_squatter_on_a_port_freed_a_moment_ago(settings: Settings) -> None:
    async def scenario() -> None:
        async with open_core(settings) as core:
            first = await core.run_journey(journey("First Co", "AService", "BService"))
            freed = min(s.port for s in first.services)
            await core.manager.stop([s.key for s in first.services if s.port == freed])
            with squat(freed) as (sock,):
                result = await core.run_journey(journey("Second Co", "CService", "DService"))
                assert result.ok and freed not in {s.port for s in result.services}
                assert still_listening(sock)
                assert next(p for p in core.ports() if p.port == freed).state is PortState.FOREIGN
                await core.stop_all()
                assert still_listening(sock)

    run(scenario())


def test_squatters_on_all_but_two_ports(settings: Settings) -> None:
    ports = list(settings.ports)
    with squat(*ports[:-2]) as socks:

        async def scenario() -> None:
            async with open_core(settings) as core:
                await next_journey_works(core)  # two steps fit exactly
                from app.core.errors import PoolExhaustedError

                with pytest.raises(PoolExhaustedError, match="can offer only 2"):
                    await core.run_journey(journey("Big Co", "X1Service", "X2Service", "X3Service"))
                assert len(core.services()) == 2  # nothing stopped by the refused run

        run(scenario())
        assert all(still_listening(s) for s in socks)


# -- the panel itself ---------------------------------------------------------------------------
def _restart_and_check(settings: Settings, old_pids: set[int]) -> None:
    server = ServeProcess(settings, BIZOBS_ESSENTIAL_SERVICES="").start()
    try:
        assert not any(alive(p) for p in old_pids), "a service of the killed panel survived"
        status = server.call("GET", "/api/ports/status")
        assert status["counts"]["free"] == len(settings.ports), status["counts"]
        result = server.call(
            "POST", "/api/journey/simulate", {"journey": journey("Reborn Co", "RebornService")}
        )
        assert result["ok"], result
    finally:
        server.stop()


def _post_ignoring_disconnect(server: ServeProcess, body: dict[str, object]) -> None:
    import http.client
    import urllib.error

    with contextlib.suppress(http.client.HTTPException, urllib.error.URLError, OSError):
        server.call("POST", "/api/journey/simulate-multiple", body, timeout=30)


def _ledger_pids(settings: Settings) -> set[int]:
    import sqlite3

    with sqlite3.connect(settings.db_path) as conn:
        return {row[0] for row in conn.execute("SELECT pid FROM services WHERE port > 0")}


@pytest.mark.parametrize("moment", ["mid-launch", "mid-simulation"])
def test_panel_sigkilled_then_restarted_on_same_state_dir(settings: Settings, moment: str) -> None:
    env = {"BIZOBS_ESSENTIAL_SERVICES": ""}
    if moment == "mid-launch":
        env["BIZOBS_FAULT_START_DELAY_MS"] = "3000"  # services sit in `starting` for 3 s
    server = ServeProcess(settings, **env).start()
    steps = [f"Chaos{i}Service" for i in range(6)]
    body = {"customers": 4, "journey": journey("Chaos Co", *steps, step3={"latencyMs": 4000})}

    async def fire_and_kill() -> set[int]:
        loop = asyncio.get_running_loop()
        # The request dies with the server; its outcome is not what this test checks.
        loop.run_in_executor(None, _post_ignoring_disconnect, server, body)
        want = "starting" if moment == "mid-launch" else "allocated"

        def reached() -> bool:
            counts = server.call("GET", "/api/ports/status")["counts"]
            return counts[want] == len(steps) and len(_ledger_pids(settings)) == len(steps)

        assert await until(reached, 30)
        pids = _ledger_pids(settings)
        server.kill9()
        return pids

    try:
        pids = run(fire_and_kill())
    finally:
        server.stop()  # no-op once killed; stops it if the test failed before the kill
    assert pids, "the ledger recorded the services before they served"
    _restart_and_check(settings, pids)
    # The killed server's own processes must be gone too (its fork server, if any).
    assert not [
        p
        for p in psutil.Process().children(recursive=True)
        if alive(p.pid) and "app" in " ".join(p.cmdline())
    ]


def test_corrupt_database_between_runs_recovers_and_kills_nothing_foreign(
    settings: Settings,
) -> None:
    with squat(settings.port_lo + 5) as (sock,):

        async def first() -> None:
            async with open_core(settings) as core:
                await next_journey_works(core, "Before Co")

        run(first())
        settings.db_path.write_bytes(b"this is not a database" * 100)

        async def second() -> None:
            async with open_core(settings) as core:
                assert any("corrupt" in m and "moved" in m for m in core.startup_messages)
                await next_journey_works(core, "After Co")
                assert core.history.count() == 1

        run(second())
        assert still_listening(sock)
        assert list(settings.state_dir.glob("state.db.corrupt-*"))


def test_database_deleted_while_services_run(settings: Settings) -> None:
    async def scenario() -> None:
        async with open_core(settings) as core:
            await next_journey_works(core, "Alive Co")
            settings.db_path.unlink()
            await next_journey_works(core, "Still Co")  # the open file keeps working
        async with open_core(settings) as core:
            await next_journey_works(core, "Fresh Co")

    run(scenario())


def test_two_runs_racing_one_gets_busy(settings: Settings) -> None:
    async def scenario() -> None:
        from app.core.errors import BusyError

        async with open_core(settings) as core:
            a = asyncio.create_task(core.run_journey(journey("A Co", "AService")))
            assert await until(lambda: core.busy, 5), "A never took the run lock"
            with pytest.raises(BusyError):
                await core.run_journey(journey("B Co", "BService"))
            assert (await a).ok
            listeners_are_exactly_ours(core, settings)

    run(scenario())
