"""Start and stop real service processes on real ports; nothing may leak."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import psutil
import pytest

from app.core import probe
from app.core.model import PortState, ServiceSpec
from app.core.orchestrator import Core, open_core
from app.core.settings import EssentialService, Settings
from tests.conftest import run, wait_gone
from tests.helpers import alive as _alive


def specs(n: int, company: str = "Acme Corp") -> list[ServiceSpec]:
    return [ServiceSpec(f"Step{i}Service", company) for i in range(n)]


def states(core: Core) -> dict[int, PortState]:
    return {p.port: p.state for p in core.ports()}


@pytest.mark.slow
def test_start_five_stop_five_fifty_times_leaks_nothing(settings: Settings) -> None:
    async def scenario() -> None:
        async with open_core(settings) as core:
            for round_no in range(50):
                started = await core.manager.start_many(specs(5), f"run{round_no}")
                pids = [s.pid for s in started]
                assert len({s.port for s in started}) == 5
                assert all(psutil.pid_exists(p) for p in pids)
                report = await core.manager.stop([s.key for s in started])
                assert report.count == 5
                assert not any(_alive(p) for p in pids), f"round {round_no}: survivors"
                assert all(probe.can_bind(s.port) for s in started), f"round {round_no}"
                assert core.services() == []
                assert core.manager.ledger.records() == []
                assert set(states(core).values()) == {PortState.FREE}

    run(scenario(), timeout=300)


def test_starts_in_flight_stay_within_the_gate(settings: Settings) -> None:
    """At most `start_concurrency` services are between spawned and ready at once, and all of
    them start: the gate spaces the starts, it does not drop any."""
    from app.core.events import ServiceChange, ServiceEvent

    async def scenario() -> None:
        async with open_core(settings) as core:
            core.manager.start_concurrency = 2
            in_flight: set[str] = set()
            most = 0

            def watch(event: ServiceEvent) -> None:
                nonlocal most
                if event.change is ServiceChange.STARTING:
                    in_flight.add(event.key)
                    most = max(most, len(in_flight))
                elif event.change in (ServiceChange.RUNNING, ServiceChange.FAILED):
                    in_flight.discard(event.key)

            core.events.service.connect(watch)
            started = await core.manager.start_many(specs(6), "gated")
            assert len(started) == 6 and most == 2, most
            report = await core.manager.stop([s.key for s in started])
            assert report.count == 6 and not any(_alive(s.pid) for s in started)

    run(scenario(), timeout=120)


def test_service_that_dies_is_stale_and_swept(settings: Settings) -> None:
    async def scenario() -> None:
        async with open_core(settings) as core:
            started = await core.manager.start_many(specs(2), "r")
            victim = started[0]
            os.kill(victim.pid, signal.SIGKILL)
            psutil.Process(victim.pid).wait(5) if _alive(victim.pid) else None
            assert await _until_state(core, victim.port, PortState.STALE)
            assert states(core)[started[1].port] is PortState.ALLOCATED
            report = await core.manager.sweep()
            assert report.stale_cleaned == 1
            assert states(core)[victim.port] is PortState.FREE
            assert [s.key for s in core.services()] == [started[1].key]
            # Released once: the record, its ledger row and its cell went together.
            assert (await core.manager.sweep()).stale_cleaned == 0

    run(scenario())


async def _until_state(core: Core, port: int, state: PortState) -> bool:
    from app.core.waiting import until

    return await until(lambda: states(core)[port] is state, 5.0)


def test_sweep_releases_dead_service_and_forgets_it(settings: Settings) -> None:
    async def scenario() -> None:
        async with open_core(settings) as core:
            [info] = await core.manager.start_many(specs(1), "r")
            os.kill(info.pid, signal.SIGKILL)
            assert await _until_state(core, info.port, PortState.STALE)
            report = await core.manager.sweep()
            assert report.stale_cleaned == 1
            assert core.services() == []
            assert core.manager.ledger.records() == []

    run(scenario())


@pytest.fixture
def foreign_socket(port_range: range) -> Iterator[int]:
    port = port_range.start
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    yield port
    sock.close()


@pytest.fixture
def foreign_http_server(port_range: range) -> Iterator[subprocess.Popen[bytes]]:
    port = port_range.start + 2
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline_ok = run(_wait_listening(port), timeout=15)
    assert deadline_ok
    yield proc
    proc.terminate()
    proc.wait(10)


async def _wait_listening(port: int) -> bool:
    from app.core.waiting import until

    return await until(lambda: port in probe.scan_listeners([port]), 10.0)


def test_foreign_listeners_are_reported_skipped_and_never_killed(
    settings: Settings, foreign_socket: int, foreign_http_server: subprocess.Popen[bytes]
) -> None:
    http_port = foreign_socket + 2

    async def scenario() -> None:
        async with open_core(settings) as core:
            st = states(core)
            assert st[foreign_socket] is PortState.FOREIGN
            assert st[http_port] is PortState.FOREIGN
            started = await core.manager.start_many(specs(4), "r")
            ports = {s.port for s in started}
            assert foreign_socket not in ports and http_port not in ports
            await core.manager.stop_all()
            assert foreign_http_server.poll() is None, "foreign http.server was killed"
            assert states(core)[http_port] is PortState.FOREIGN
            assert states(core)[foreign_socket] is PortState.FOREIGN

    run(scenario())


def test_essential_services_survive_customer_stop_but_not_stop_all(settings: Settings) -> None:
    async def scenario() -> None:
        essentials = (EssentialService("DiscoveryService", "Dynatrace"),)
        async with open_core(settings.with_(essential_services=essentials)) as core:
            [ess] = await core.manager.start_many(core.essential_specs(), "r")
            customers = await core.manager.start_many(specs(3), "r")
            report = await core.manager.stop_customer_services()
            assert sorted(report.stopped) == sorted(c.key for c in customers)
            assert [s.key for s in core.services()] == ["DiscoveryService-Dynatrace"]
            assert _alive(ess.pid)
            assert states(core)[ess.port] is PortState.ALLOCATED
            assert next(p for p in core.ports() if p.port == ess.port).essential
            await core.manager.stop_all()
            assert not _alive(ess.pid)
            assert core.services() == []

    run(scenario())


def test_second_core_on_same_state_dir_is_refused(settings: Settings) -> None:
    from app.core.errors import StateLockedError

    async def scenario() -> None:
        async with open_core(settings):
            with pytest.raises(StateLockedError, match="already uses state directory"):
                async with open_core(settings):
                    pass

    run(scenario())


def test_pool_too_small_is_refused_before_starting_anything(settings: Settings) -> None:
    from app.core.errors import PoolExhaustedError

    async def scenario() -> None:
        async with open_core(settings.with_(port_hi=settings.port_lo + 2)) as core:
            with pytest.raises(PoolExhaustedError, match=r"needs 4 ports but the pool .* only 3"):
                await core.manager.start_many(specs(4), "r")
            assert core.services() == []

    run(scenario())


def test_core_imports_no_qt() -> None:
    code = (
        "import sys, app.core.orchestrator, app.core.services, app.core.probe;"
        "bad=[m for m in sys.modules if m.split('.')[0] in ('PySide6','qasync','shiboken6')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_wait_gone_helper_reports_survivors() -> None:
    # The leak checks rely on wait_gone; prove it can report a live process.
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert wait_gone([psutil.Process(proc.pid)], timeout=0.1)
    finally:
        proc.kill()
        proc.wait(10)
