"""The launcher contract, on both launchers: the fork server and a fresh interpreter (exec).

What a launcher promises the service manager (app/core/launcher.py): a spawned service runs in
its own session and process group as soon as `spawn` returns; it is ready once its readiness
line came, and then /health answers its identity; its exit is reported through the pidfd with
its status, also when it was SIGKILLed by someone else; a signal to its group reaches it and
nothing else of ours; its ledger row (pid, create time, command-line token) proves it ours; a
launch cancelled during its spawns leaves nothing behind; a port taken before the bind is exit
status 98, and the manager retries on another port.

Every other test runs on the fork server only (tests/conftest.py, `launcher_kind`): what the
two launchers do differently is proved here, on real processes and real ports.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import aiohttp
import psutil
import pytest

from app.core import probe
from app.core.errors import PortInUseError, ServiceStartError
from app.core.launcher import Launcher, LaunchRequest, LineHandler, ProcessHandle
from app.core.model import PortState, ServiceSpec
from app.core.orchestrator import Core, make_launcher, open_core
from app.core.settings import LauncherKind, Settings
from app.core.waiting import until
from app.service.faults import EXIT_FAULT
from app.service.runner import EXIT_ADDR_IN_USE, READY_PREFIX
from tests.conftest import our_service_processes, run
from tests.core.test_lifecycle import specs, states
from tests.helpers import (
    alive,
    journey,
    launch_request,
    listen_on,
    listeners_are_exactly_ours,
    still_listening,
)

pytestmark = pytest.mark.both_launchers

READY_TIMEOUT_S = 15.0
EXIT_TIMEOUT_S = 10.0


@asynccontextmanager
async def launcher_of(kind: LauncherKind) -> AsyncIterator[Launcher]:
    """The panel's launcher of that kind, closed afterwards (the fork server stops)."""
    launcher = make_launcher(kind)
    try:
        yield launcher
    finally:
        await launcher.aclose()


def request(port: int, service: str = "LoginService") -> LaunchRequest:
    return launch_request(service, "Acme Corp", port, secrets.token_hex(16))


def ignore(_: str) -> None:
    return None


# -- spawn ------------------------------------------------------------------------------------
def test_a_service_has_its_own_session_as_soon_as_spawn_returns(
    launcher_kind: LauncherKind, port_range: range
) -> None:
    """The panel may signal the group at once (a rollback does): the fork server replies only
    after the child's setsid() and PR_SET_PDEATHSIG, as Popen returns only after exec. A
    SIGKILL to the group is then reported as the exit status (on fork, by the server)."""

    async def scenario() -> None:
        async with launcher_of(launcher_kind) as launcher:
            for i in range(5):
                handle = await launcher.spawn(request(port_range.start + i, f"S{i}Service"), ignore)
                assert os.getsid(handle.pid) == handle.pid
                assert os.getpgid(handle.pid) == handle.pid != os.getpgid(0)
                handle.signal_group(signal.SIGKILL)
                assert await handle.wait_exit(EXIT_TIMEOUT_S)
                assert handle.returncode == -signal.SIGKILL
                handle.close()

    run(scenario())


# -- ready ------------------------------------------------------------------------------------
def test_ready_is_the_readiness_line_and_health_answers_the_identity(
    launcher_kind: LauncherKind, port_range: range
) -> None:
    """Ready: the `BIZOBS-READY` line came; /health then answers the name, company, pid, port
    and token of this very process. SIGTERM to its group stops it gracefully: status 0, and its
    last line is read before the exit is reported."""

    async def scenario() -> None:
        lines: list[str] = []
        async with launcher_of(launcher_kind) as launcher:
            req = request(port_range.start)
            handle = await launcher.spawn(req, lines.append)
            await handle.wait_ready(READY_TIMEOUT_S)
            ready = [line for line in lines if line.startswith(READY_PREFIX)]
            assert ready == [
                f"{READY_PREFIX} service=LoginService port={req.port} pid={handle.pid}"
            ]
            url = f"http://127.0.0.1:{req.port}/health"
            async with aiohttp.ClientSession() as http, http.get(url) as resp:
                body = await resp.json()
            assert (body["service"], body["company"]) == ("LoginService", "Acme Corp")
            assert (body["pid"], body["port"], body["token"]) == (handle.pid, req.port, req.token)

            handle.signal_group(signal.SIGTERM)
            assert await handle.wait_exit(EXIT_TIMEOUT_S)
            assert handle.returncode == 0
            assert f"stopped service=LoginService port={req.port}" in lines
            handle.signal_group(signal.SIGTERM)  # once it is gone: a no-op, no stray signal
            handle.close()
            assert await until(lambda: probe.can_bind(req.port), 2.0)

    run(scenario())


def test_started_service_answers_health_with_its_identity(settings: Settings) -> None:
    async def scenario() -> None:
        async with open_core(settings) as core:
            [info] = await core.manager.start_many([ServiceSpec("LoginService", "Acme Corp")], "r")
            assert info.key == "LoginService-Acme_Corp"
            url = f"http://127.0.0.1:{info.port}/health"
            async with aiohttp.ClientSession() as http, http.get(url) as resp:
                body = await resp.json()
            assert body["service"] == "LoginService"
            assert body["company"] == "Acme Corp"
            assert body["pid"] == info.pid
            assert body["token"] == info.token
            assert states(core)[info.port] is PortState.ALLOCATED
            # Its own session and process group: signals to the group reach only it.
            assert os.getpgid(info.pid) == info.pid
            assert os.getsid(info.pid) == info.pid

    run(scenario())


def test_a_service_that_exits_before_ready_is_reported_with_its_status_and_output(
    launcher_kind: LauncherKind, port_range: range, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIZOBS_FAULT_EXIT_AT_START", "DoomedService")

    async def scenario() -> None:
        async with launcher_of(launcher_kind) as launcher:
            handle = await launcher.spawn(request(port_range.start, "DoomedService"), ignore)
            why = f"exited with status {EXIT_FAULT} before ready: fault injected: DoomedService"
            with pytest.raises(ServiceStartError, match=re.escape(why)):
                await handle.wait_ready(READY_TIMEOUT_S)
            assert handle.exited and handle.returncode == EXIT_FAULT
            handle.close()

    run(scenario())


# -- exit and signals -----------------------------------------------------------------------------
def test_the_exit_of_a_service_killed_from_outside_is_reported_with_its_status(
    launcher_kind: LauncherKind, port_range: range
) -> None:
    """Nobody asked the launcher: the pidfd says the process exited, the status says how (on
    fork the server reaped it and sent the status), and `on_exit` hears it once."""

    async def scenario() -> None:
        async with launcher_of(launcher_kind) as launcher:
            handle = await launcher.spawn(request(port_range.start), ignore)
            await handle.wait_ready(READY_TIMEOUT_S)
            exits: list[int | None] = []
            handle.on_exit = exits.append
            os.kill(handle.pid, signal.SIGKILL)
            assert await handle.wait_exit(EXIT_TIMEOUT_S)
            assert handle.returncode == -signal.SIGKILL
            assert exits == [-signal.SIGKILL]
            assert not alive(handle.pid)
            handle.close()

    run(scenario())


def test_service_ignoring_sigterm_is_killed_after_grace(settings: Settings) -> None:
    async def scenario() -> None:
        async with open_core(settings.with_(stop_grace_ms=300)) as core:
            [info] = await core.manager.start_many(specs(1), "r")
            os.kill(info.pid, signal.SIGSTOP)  # a stopped process cannot act on SIGTERM
            report = await core.manager.stop([info.key])
            assert report.killed == (info.key,)
            assert not alive(info.pid)
            assert probe.can_bind(info.port)
            assert states(core)[info.port] is PortState.FREE

    run(scenario())


# -- the ledger row ---------------------------------------------------------------------------
def test_the_ledger_row_proves_the_service_is_ours(settings: Settings) -> None:
    """pid + create time + a `--token=` on the process's own command line (exec: the service's
    token; fork: its server's, which the forked child's command line is)."""

    async def scenario() -> None:
        async with open_core(settings) as core:
            [info] = await core.manager.start_many([ServiceSpec("LoginService", "Acme Corp")], "r")
            [row] = core.manager.ledger.records()
            proc = psutil.Process(info.pid)
            assert (row.key, row.pid, row.port, row.token) == (
                info.key,
                info.pid,
                info.port,
                info.token,
            )
            assert row.create_time is not None
            assert abs(row.create_time - proc.create_time()) <= 0.01
            assert f"--token={row.cmdline_token}" in proc.cmdline()
            assert probe.is_ours(info.pid, row.create_time, row.cmdline_token)
            # Each part counts: another token, or another create time (a reused pid), is not ours.
            assert not probe.is_ours(info.pid, row.create_time, secrets.token_hex(16))
            assert not probe.is_ours(info.pid, row.create_time - 1, row.cmdline_token)
            await core.manager.stop([info.key])
            assert core.manager.ledger.records() == []
            assert not probe.is_ours(info.pid, row.create_time, row.cmdline_token)

    run(scenario())


# -- cancellation during a spawn --------------------------------------------------------------
def _launching(core: Core, spawned: int) -> bool:
    records = core.manager.by_port().values()
    return bool(records) and sum(r.pid is not None for r in records) >= spawned


@pytest.mark.parametrize("moment", ["spawning", "spawned"])
def test_a_launch_cancelled_during_its_spawns_leaves_nothing(
    settings: Settings, moment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller of a launch is cancelled as the first port is reserved (spawns in flight), or
    once a service is spawned and not yet ready: no record, no ledger row, no process, no
    listener, once the launcher has settled what it forked for nobody; the next launch works."""
    monkeypatch.setenv("BIZOBS_FAULT_START_DELAY_MS", "300")  # services sit in `starting`

    async def scenario() -> None:
        async with open_core(settings) as core:
            launch = asyncio.create_task(core.manager.start_many(specs(6), "doomed"))
            spawned = 0 if moment == "spawning" else 1
            assert await until(lambda: _launching(core, spawned), 10)
            launch.cancel()
            with pytest.raises(asyncio.CancelledError):
                await launch
            await core.manager.launcher.settle()
            assert core.manager.by_port() == {}
            assert core.manager.ledger.records() == []
            assert {p.state for p in core.ports()} == {PortState.FREE}
            assert probe.scan_listeners(settings.ports) == {}
            server = getattr(core.manager.launcher, "server_pid", None)
            assert [p.pid for p in our_service_processes() if p.pid != server] == []
            again = await core.manager.start_many(specs(2, "Next Co"), "next")
            assert len(again) == 2 and all(alive(s.pid) for s in again)

    run(scenario())


# -- a port taken before the bind ---------------------------------------------------------------
@pytest.fixture
def taken_port(port_range: range) -> Iterator[int]:
    sock = listen_on(port_range.start)  # SO_REUSEADDR: earlier tests' TIME_WAIT
    yield port_range.start
    sock.close()


def test_a_service_that_cannot_bind_exits_98(launcher_kind: LauncherKind, taken_port: int) -> None:
    async def scenario() -> None:
        async with launcher_of(launcher_kind) as launcher:
            handle = await launcher.spawn(launch_request("BusyService", "X", taken_port), print)
            with pytest.raises(PortInUseError, match="BIZOBS-BIND-FAILED"):
                await handle.wait_ready(10)
            assert await handle.wait_exit(10)
            assert handle.returncode == EXIT_ADDR_IN_USE
            handle.close()

    run(scenario())


class RacingLauncher:
    """Wraps the real launcher: a foreign process takes the port just after the pool chose it
    and before the service binds — the race every probe has."""

    def __init__(self, inner: Launcher, victims: int) -> None:
        self.inner = inner
        self.victims = victims
        self.squatters: list[socket.socket] = []

    async def spawn(self, request: LaunchRequest, on_line: LineHandler) -> ProcessHandle:
        if len(self.squatters) < self.victims:
            self.squatters.append(listen_on(request.port))
        return await self.inner.spawn(request, on_line)

    async def settle(self) -> None:
        await self.inner.settle()

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_port_taken_between_probe_and_bind_is_retried_elsewhere(settings: Settings) -> None:
    async def scenario() -> None:
        async with open_core(settings) as core:
            racing = RacingLauncher(core.manager.launcher, victims=2)
            core.manager.launcher = racing
            try:
                result = await core.run_journey(journey("Race Co", "AService", "BService"))
                assert result.ok, result.error
                taken = {s.getsockname()[1] for s in racing.squatters}
                assert len(taken) == 2 and not taken & {s.port for s in core.services()}
                for sock in racing.squatters:
                    assert still_listening(sock)
                listeners_are_exactly_ours(core, settings, foreign=taken)
            finally:
                for sock in racing.squatters:
                    sock.close()

    run(scenario())
