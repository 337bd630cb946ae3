"""The pre-warmed fork server: identity, replacement, and dying with the panel. What it promises
like every launcher (spawn, ready, exit status, ...) is proved in test_launchers.py."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import aiohttp
import psutil
import pytest

from app.core import probe, waiting
from app.core.forkserver import ForkServerLauncher
from app.core.model import PortState, ServiceSpec
from app.core.orchestrator import Core, open_core
from app.core.settings import LauncherKind, Settings
from app.service.forkserver import MODULE
from tests.conftest import run
from tests.core.test_reconcile import _spawn_manager
from tests.helpers import alive as _alive
from tests.helpers import journey, sigstop

GONE_TIMEOUT_S = 10.0


# These tests are about the fork launcher only, also in the long run (BIZOBS_LONG_TESTS=1, which
# runs other tests on both launchers): the `settings` fixture gets just that param.
only_fork = pytest.mark.parametrize("settings", [LauncherKind.FORK], indirect=True, ids=["fork"])


def _until(condition: Callable[[], bool], timeout: float = GONE_TIMEOUT_S) -> bool:
    return run(waiting.until(condition, timeout), timeout=timeout + 5)


def _fork_server_of(manager_pid: int) -> int:
    [server] = [p.pid for p in psutil.Process(manager_pid).children() if MODULE in p.cmdline()]
    return server


@only_fork
def test_forked_service_has_its_own_identity_and_is_provably_ours(settings: Settings) -> None:
    async def scenario() -> None:
        async with open_core(settings) as core:
            launcher = core.manager.launcher
            assert isinstance(launcher, ForkServerLauncher)
            [info] = await core.manager.start_many([ServiceSpec("LoginService", "Acme Corp")], "r")
            url = f"http://127.0.0.1:{info.port}/health"
            async with aiohttp.ClientSession() as http, http.get(url) as resp:
                body = await resp.json()
            assert (body["service"], body["company"]) == ("LoginService", "Acme Corp")
            assert (body["pid"], body["port"], body["token"]) == (info.pid, info.port, info.token)
            server = psutil.Process(launcher.server_pid)
            assert psutil.Process(info.pid).ppid() == server.pid  # forked, not a new interpreter
            assert server.ppid() == os.getpid()  # the server is the panel's child, never the panel
            assert os.getsid(info.pid) == info.pid and os.getpgid(info.pid) == info.pid
            [entry] = core.manager.ledger.records()
            assert f"--token={entry.cmdline_token}" in server.cmdline()
            assert probe.is_ours(info.pid, info.create_time, entry.cmdline_token)
            assert states(core)[info.port] is PortState.ALLOCATED
        assert not _alive(server.pid), "aclose() must stop the fork server"

    run(scenario())


def states(core: Core) -> dict[int, PortState]:
    return {p.port: p.state for p in core.ports()}


@only_fork
def test_killed_fork_server_takes_its_services_and_is_replaced(settings: Settings) -> None:
    async def scenario() -> None:
        async with open_core(settings) as core:
            launcher = core.manager.launcher
            assert isinstance(launcher, ForkServerLauncher)
            started = await core.manager.start_many(
                [ServiceSpec(f"S{i}Service", "Acme") for i in range(2)], "r"
            )
            old_server = launcher.server_pid
            assert old_server is not None
            os.kill(old_server, signal.SIGKILL)
            # PR_SET_PDEATHSIG: the services stop with their server; their ports go stale.
            assert await waiting.until(
                lambda: not any(_alive(s.pid) for s in started), GONE_TIMEOUT_S
            )
            assert all(states(core)[s.port] is PortState.STALE for s in started)
            assert (await core.manager.sweep()).stale_cleaned == 2
            [again] = await core.manager.start_many([ServiceSpec("S0Service", "Acme")], "r2")
            assert launcher.server_pid not in (None, old_server)
            assert states(core)[again.port] is PortState.ALLOCATED

    run(scenario())


@only_fork
def test_fork_server_and_services_die_when_the_panel_is_killed(settings: Settings) -> None:
    manager, services = _spawn_manager(settings, n_stopped=0)
    server = _fork_server_of(manager.pid)
    pids = [pid for pid, _ in services]
    os.kill(manager.pid, signal.SIGKILL)
    manager.wait(10)
    assert _until(lambda: not _alive(server) and not any(_alive(p) for p in pids))
    assert all(probe.can_bind(port) for _, port in services)


@only_fork
def test_services_die_with_the_panel_even_if_the_fork_server_hangs(
    settings: Settings,
) -> None:
    """Each forked service watches the panel itself, not only its server."""
    manager, services = _spawn_manager(settings, n_stopped=0)
    server = _fork_server_of(manager.pid)
    try:  # resumed whatever happens: a stopped server left behind keeps its death signal
        sigstop(server)  # a stopped server cannot pass the panel's death on
        os.kill(manager.pid, signal.SIGKILL)
        manager.wait(10)
        assert _until(lambda: not any(_alive(pid) for pid, _ in services))
        assert _alive(server)
    finally:
        if manager.poll() is None:  # the test failed before the panel's death: end it now
            manager.kill()
            manager.wait(10)
        os.kill(server, signal.SIGCONT)  # its pending death signal then ends it
    assert _until(lambda: not _alive(server))


@only_fork
def test_the_prewarmed_fork_server_keeps_no_socket_thread_or_listener(settings: Settings) -> None:
    """The fork server serves one chain in itself before it forks anything (its children are
    born warm); afterwards it holds no TCP socket, no listener and no thread a child would
    inherit."""

    async def scenario() -> None:
        async with open_core(settings) as core:
            assert (await core.run_journey(journey("Warm Co", "AService"))).ok
            launcher = core.manager.launcher
            assert isinstance(launcher, ForkServerLauncher) and launcher.server_pid
            server = psutil.Process(launcher.server_pid)
            assert server.num_threads() == 1
            assert server.net_connections(kind="tcp") == []

    run(scenario())
