"""The panel watches the fleet it drives: a service that exits or hangs is seen at once with its
reason, traffic through it holds and never reaches a listener that is not ours, a restart (by
hand or automatic) puts the chain back and traffic goes on by itself. Real services, real
signals (SIGKILL, SIGSTOP), real foreign listeners."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from app.core.model import PortState, ServiceRecord
from app.core.orchestrator import Core, open_core
from app.core.settings import AutoRestart, Settings
from app.core.traffic_model import TrafficStatus
from app.core.waiting import until
from app.core.watch import NOT_ANSWERING_S, WATCH_INTERVAL_S
from tests.conftest import run
from tests.helpers import journey

RATE = 20.0
SEEN_WITHIN_S = 1.0  # an exit is seen at once (pidfd); this bounds the test's own wait
HANG_SEEN_WITHIN_S = WATCH_INTERVAL_S + NOT_ANSWERING_S + 2.0


def balanced(status: TrafficStatus) -> bool:
    return status.sent == status.completed + status.failed + status.cancelled + status.in_flight


def service(core: Core, name: str) -> ServiceRecord:
    [found] = [s for s in core.services() if s.service_name == name]
    return found


def cell(core: Core, port: int):  # type: ignore[no-untyped-def]
    return next(p for p in core.ports() if p.port == port)


@asynccontextmanager
async def foreign_listener(port: int) -> AsyncIterator[list[bytes]]:
    """Someone else's server on `port`: records every byte anyone sends it."""
    got: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with_data = await reader.read(65536)
        if with_data:
            got.append(with_data)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", port, reuse_address=True)
    try:
        yield got
    finally:
        server.close()
        await server.wait_closed()


async def flowing(core: Core, more: int = 10, timeout: float = 15.0) -> None:
    """Wait until `more` journeys beyond now have completed."""
    target = core.traffic.status().completed + more
    assert await until(lambda: core.traffic.status().completed >= target, timeout), (
        core.traffic.status()
    )


def test_an_exit_is_seen_at_once_and_no_customer_reaches_a_foreign_listener(
    settings: Settings,
) -> None:
    """SIGKILL the middle service under traffic: the cell says "exited (code -9)" and traffic
    holds at once with the reason; a foreign process then binds the dead port and gets not one
    byte; a restart takes another port (the old one is taken) and traffic goes on by itself."""

    async def scenario() -> None:
        async with open_core(settings) as core:
            result = await core.run_journey(journey("Watch Co", "AService", "BService", "CService"))
            assert result.ok, result.error
            await core.start_traffic(RATE)
            await flowing(core)
            victim = service(core, "BService")
            os.kill(victim.pid or 0, signal.SIGKILL)
            reason = f"BService on {victim.port} exited (code -9)"
            assert await until(lambda: core.traffic.status().paused == reason, SEEN_WITHIN_S)
            info = cell(core, victim.port)
            assert info.state is PortState.STALE and info.trouble == "exited (code -9)"
            # The port is free again once the kernel closed the dead socket: someone binds it.
            assert await until(lambda: _bindable(victim.port), 5.0)
            async with foreign_listener(victim.port) as got:
                sent = core.traffic.status().sent
                await asyncio.sleep(2.0)  # a window in which traffic would have flowed
                status = core.traffic.status()
                assert status.sent == sent and status.paused == reason, status
                assert got == []
                restarted = await core.restart_service("BService")
                assert restarted.pid != victim.pid and restarted.port != victim.port
                await flowing(core)  # resumed by itself, through the new port
                assert got == []  # not one byte, from the kill to here
            status = core.traffic.status()
            assert not status.paused and balanced(status), status
            final = await core.stop_traffic()
            assert balanced(final) and final.in_flight == 0

    run(scenario(), timeout=90)


def test_a_hung_service_is_not_answering_and_traffic_resumes_when_it_answers(
    settings: Settings,
) -> None:
    """SIGSTOP a service: within the watch's bound its cell says "not answering for N s" and
    traffic holds (journeys stuck in it are cut, counted cancelled, not failed); SIGCONT: it
    answers again, the trouble clears and traffic goes on by itself."""

    async def scenario() -> None:
        async with open_core(settings) as core:
            result = await core.run_journey(journey("Hang Co", "AService", "BService"))
            assert result.ok, result.error
            await core.start_traffic(RATE)
            await flowing(core)
            victim = service(core, "BService")
            os.kill(victim.pid or 0, signal.SIGSTOP)
            try:
                held = await until(
                    lambda: "not answering" in core.traffic.status().paused, HANG_SEEN_WITHIN_S
                )
                status = core.traffic.status()
                assert held, status
                assert status.paused.startswith(f"BService on {victim.port} not answering for")
                assert cell(core, victim.port).trouble.startswith("not answering for")
                # The hold cancels the stuck journeys at once; each ends on the loop's next turns.
                assert await until(lambda: core.traffic.status().in_flight == 0, 2), status
                assert balanced(core.traffic.status())
            finally:
                os.kill(victim.pid or 0, signal.SIGCONT)
            assert await until(lambda: not core.traffic.status().paused, HANG_SEEN_WITHIN_S)
            assert cell(core, victim.port).trouble == ""
            await flowing(core)
            final = await core.stop_traffic()
            assert balanced(final) and final.failed == 0, final

    run(scenario(), timeout=90)


def test_automatic_restart_with_backoff_then_gives_up(settings: Settings) -> None:
    """BIZOBS_AUTORESTART=on-failure: a killed service comes back by itself (same port, new
    pid) and traffic resumes; after three restarts within a minute the fourth exit is given
    up, and the cell says so."""
    settings = settings.with_(autorestart=AutoRestart.ON_FAILURE)

    async def scenario() -> None:
        async with open_core(settings) as core:
            result = await core.run_journey(journey("Auto Co", "AService", "BService"))
            assert result.ok, result.error
            await core.start_traffic(RATE)
            await flowing(core)
            port = service(core, "BService").port
            pids = [service(core, "BService").pid]
            for _ in range(3):
                os.kill(pids[-1] or 0, signal.SIGKILL)
                assert await until(lambda: _restarted(core, pids), 15.0)
                pids.append(service(core, "BService").pid)
                assert service(core, "BService").port == port
                await flowing(core, more=5)
            os.kill(pids[-1] or 0, signal.SIGKILL)
            assert await until(lambda: "gave up" in cell(core, port).trouble, 15.0)
            assert cell(core, port).trouble == "gave up (after 3 restarts in 60 s)"
            assert core.traffic.status().paused.startswith(f"BService on {port} ")
            final = await core.stop_traffic()
            assert balanced(final), final

    run(scenario(), timeout=120)


def test_stop_all_is_bounded_with_traffic_stuck_in_a_hung_service(settings: Settings) -> None:
    """Traffic in flight piles up in a SIGSTOPped service: Stop All still ends within its
    bound (traffic's drain, the stop grace, the slack); the journeys cut are cancelled, not
    failed, and the stopped service is killed."""

    async def scenario() -> None:
        async with open_core(settings.with_(stop_grace_ms=1000)) as core:
            result = await core.run_journey(journey("Stuck Co", "AService", "BService"))
            assert result.ok, result.error
            await core.start_traffic(RATE)
            await flowing(core)
            os.kill(service(core, "BService").pid or 0, signal.SIGSTOP)
            assert await until(lambda: core.traffic.status().in_flight >= 5, 5.0)
            t0 = time.monotonic()
            await core.stop_all()
            took = time.monotonic() - t0
            assert took < core.stop_bound_s, (took, core.stop_bound_s)
            final = core.traffic.status()
            assert final.cancelled >= 5 and final.failed == 0 and balanced(final), final
            assert core.services() == []

    run(scenario(), timeout=90)


def test_stop_all_during_a_35_s_step_is_bounded(settings: Settings) -> None:
    """A run whose customer waits in a 35 s step: Stop All cancels it and ends within its
    bound (the cancelled request unwinds the chain: each hop's handler is cancelled)."""

    async def scenario() -> None:
        async with open_core(settings.with_(stop_grace_ms=1000)) as core:
            slow = journey("Slow Co", "AService", "SlowService", step2={"latencyMs": 35_000})
            simulating = asyncio.Event()
            core.events.phase.connect(
                lambda e: simulating.set() if e.phase.value == "simulate" else None
            )
            running = asyncio.create_task(core.run_journey(slow))
            await asyncio.wait_for(simulating.wait(), 20)
            t0 = time.monotonic()
            await core.stop_all()
            took = time.monotonic() - t0
            result = await asyncio.wait_for(running, 5)
            assert took < core.stop_bound_s, (took, core.stop_bound_s)
            assert result.cancelled and not result.ok
            assert core.services() == []

    run(scenario(), timeout=90)


def _restarted(core: Core, pids: list[int | None]) -> bool:
    found = [s for s in core.services() if s.service_name == "BService"]
    return (
        bool(found)
        and found[0].pid not in pids
        and cell(core, found[0].port).state is (PortState.ALLOCATED)
    )


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize("rounds", [30])
def test_concurrent_starts_and_stops_leave_one_pacer_and_exact_counts(
    settings: Settings, rounds: int
) -> None:
    """30 rounds of start and stop from several callers at once: at most one pacer ever, none
    after the last stop, a stopped series that does not grow, and every status balanced."""

    async def scenario() -> None:
        async with open_core(settings) as core:
            result = await core.run_journey(journey("Race Co", "AService", "BService"))
            assert result.ok, result.error
            statuses: list[TrafficStatus] = []
            core.events.traffic.connect(statuses.append)
            for i in range(rounds):
                calls = [core.start_traffic(0.5 + i), core.stop_traffic(), core.start_traffic(50)]
                calls += [core.stop_traffic(), core.start_traffic(3)]
                await asyncio.gather(*calls)
                assert _pacers() <= 1
            final = await core.stop_traffic()
            assert _pacers() == 0 and not final.running
            assert all(balanced(s) for s in statuses), [s for s in statuses if not balanced(s)]
            length = len(core.traffic.status().series)
            await asyncio.sleep(2.2)  # two wall-clock seconds in which a live ticker would tick
            assert len(core.traffic.status().series) == length

    run(scenario(), timeout=120)


def _pacers() -> int:
    return sum(1 for t in asyncio.all_tasks() if t.get_name() == "traffic-pacer" and not t.done())
