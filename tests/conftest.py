"""Shared fixtures: a private port range and state dir per test, the launcher it runs on (the fork
server unless marked `both_launchers`), and a leak check after each."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import psutil
import pytest

from app.core import probe
from app.core.settings import LauncherKind, Settings, parse_port_range
from app.service.forkserver import MODULE as FORK_SERVER_MODULE

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# Tests use their own range (never the panel's 8081-8120); BIZOBS_TEST_PORTS lets two test
# runs share a machine. The API port of a test is the port just below the range.
BASE_PORTS = parse_port_range(os.environ.get("BIZOBS_TEST_PORTS", "8141-8160"))


def worker_index(name: str | None = None) -> int:
    """Which pytest-xdist worker this process is (`gw2` is 2); 0 when the run is serial."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "") if name is None else name
    return int(name.removeprefix("gw")) if name else 0


def worker_ports(base: tuple[int, int], worker: int) -> tuple[int, int]:
    """Worker N's range: the base range N strides up, a stride being the range, its API port
    below it and one spare port, so the parallel workers of one run never share a port."""
    lo, hi = base
    shift = worker * (hi - lo + 3)
    return lo + shift, hi + shift


TEST_PORT_LO, TEST_PORT_HI = worker_ports(BASE_PORTS, worker_index())
T = TypeVar("T")
# The long run (README, "Two commands"): every test on `settings` under both launchers, as the
# suite once ran by default, and the repetitions that have a longer version (`repeat`) at length.
LONG_TESTS = os.environ.get("BIZOBS_LONG_TESTS", "") == "1"
LAUNCHERS = (LauncherKind.FORK, LauncherKind.EXEC)


def run(coro: Awaitable[T], timeout: float = 60.0) -> T:
    """Run a coroutine on a fresh event loop, bounded."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


@pytest.fixture
def port_range() -> range:
    return range(TEST_PORT_LO, TEST_PORT_HI + 1)


@pytest.fixture
def launcher_kind() -> LauncherKind:
    """How this test's services start: the fork server (the panel's default launcher), unless
    the test is marked `both_launchers` (see `pytest_generate_tests`)."""
    return LauncherKind.FORK


@pytest.fixture
def settings(
    request: pytest.FixtureRequest, launcher_kind: LauncherKind, tmp_path: Path, port_range: range
) -> Settings:
    """A test's settings, on `launcher_kind`. A test may still pin the launcher with
    `pytest.mark.parametrize("settings", [LauncherKind.FORK], indirect=True)`."""
    return make_settings(getattr(request, "param", launcher_kind), tmp_path, port_range)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`@pytest.mark.both_launchers`: the test runs once per launcher (fork server, exec). With
    BIZOBS_LONG_TESTS=1 every test on `launcher_kind` does, except one that pins `settings`.

    The launcher contract is tested on both in tests/core/test_launchers.py; the other tests
    that must also hold on exec carry the marker (docs/reliability.md says which and why)."""
    marked = metafunc.definition.get_closest_marker("both_launchers") is not None
    if "launcher_kind" not in metafunc.fixturenames:
        if marked:
            raise pytest.UsageError(
                f"{metafunc.definition.nodeid}: both_launchers needs the `settings` or "
                "`launcher_kind` fixture of tests/conftest.py"
            )
        return
    if marked or (LONG_TESTS and not _pins_settings(metafunc)):
        metafunc.parametrize("launcher_kind", LAUNCHERS, ids=[k.value for k in LAUNCHERS])


def _pins_settings(metafunc: pytest.Metafunc) -> bool:
    """A test parametrized on `settings` itself (indirect) chose its launcher already."""
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs["argnames"]
        if isinstance(names, str):
            names = names.split(",")
        if "settings" in [n.strip() for n in names]:
            return True
    return False


def repeat(default: int, long: int) -> int:
    """A repetition count: `default` in the default run, `long` with BIZOBS_LONG_TESTS=1 (e.g.
    hypothesis examples: the long run searches further). Such tests are marked `slow`."""
    return long if LONG_TESTS else default


def make_settings(launcher: LauncherKind, tmp_path: Path, port_range: range) -> Settings:
    """A test's own port range (the API on the port below it) and state dir, no essentials."""
    return Settings(
        launcher=launcher,
        port_lo=port_range.start,
        port_hi=port_range.stop - 1,
        state_dir=tmp_path / "state",
        stop_grace_ms=2000,
        start_timeout_ms=15000,
        api_port=port_range.start - 1,
        essential_services=(),
    )


def our_service_processes() -> list[psutil.Process]:
    """Every live step-service process of this test run (ours or a leftover).

    A fresh-interpreter service is found by its `--port` argument in the test range. A forked
    service carries its fork server's command line instead, so a process running the fork
    server module counts when its panel (`--parent-pid`) is this test process, or when it
    listens on a port of the test range (the orphans of a killed manager subprocess). Other
    test runs on this machine have other pids and other port ranges: never flagged here."""
    listeners = probe.scan_listeners(range(TEST_PORT_LO, TEST_PORT_HI + 1)).values()
    in_range = {lst.pid for lst in listeners}
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmd = proc.info["cmdline"] or []
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if FORK_SERVER_MODULE in cmd:
            if _arg(cmd, "--parent-pid") == str(os.getpid()) or proc.pid in in_range:
                found.append(proc)
        elif "app.service" in " ".join(cmd):
            port = _arg(cmd, "--port")
            if port.isdigit() and TEST_PORT_LO <= int(port) <= TEST_PORT_HI:
                found.append(proc)
    return found


def _arg(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1] if name in cmd[:-1] else ""


def wait_gone(procs: list[psutil.Process], timeout: float = 10.0) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return alive


@pytest.fixture(autouse=True)
def no_leaks(port_range: range) -> Iterator[Callable[[], None]]:
    """After every test: no step-service process and no listener left in the test range."""
    before = {p.pid for p in our_service_processes()}
    children_before = {p.pid for p in psutil.Process().children(recursive=True)}

    def check() -> None:
        leaked = [p for p in our_service_processes() if p.pid not in before]
        assert not leaked, f"leaked service processes: {[p.pid for p in leaked]}"
        kids = [
            p
            for p in psutil.Process().children(recursive=True)
            if p.pid not in children_before and p.status() != psutil.STATUS_ZOMBIE
        ]
        assert not kids, f"leaked child processes: {[(p.pid, p.cmdline()) for p in kids]}"
        listeners = probe.scan_listeners(port_range)
        assert not listeners, f"leaked listeners: {listeners}"

    yield check
    check()
