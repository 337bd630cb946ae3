"""Shared fixtures: a private port range and state dir per test, and a leak check after each."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import psutil
import pytest

from app.config import Settings, parse_port_range
from app.core import probe

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# Tests use their own range (never the panel's 8081-8120); BIZOBS_TEST_PORTS lets two test
# runs share a machine. The API port of a test is the port just below the range.
TEST_PORT_LO, TEST_PORT_HI = parse_port_range(os.environ.get("BIZOBS_TEST_PORTS", "8141-8160"))
T = TypeVar("T")


def run(coro: Awaitable[T], timeout: float = 60.0) -> T:
    """Run a coroutine on a fresh event loop, bounded."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


@pytest.fixture
def port_range() -> range:
    return range(TEST_PORT_LO, TEST_PORT_HI + 1)


@pytest.fixture
def settings(tmp_path: Path, port_range: range) -> Settings:
    return Settings(
        port_lo=port_range.start,
        port_hi=port_range.stop - 1,
        state_dir=tmp_path / "state",
        stop_grace_ms=2000,
        start_timeout_ms=15000,
        api_port=port_range.start - 1,
        essential_services=(),
    )


def our_service_processes() -> list[psutil.Process]:
    """Every live step-service process serving a port of the test range (ours or a leftover).

    Found by the service's `--port` argument; forked services carry their fork server's
    command line, so the fork server is checked too (its range is on its command line)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmd = proc.info["cmdline"] or []
        if proc.info["status"] == psutil.STATUS_ZOMBIE or "app.service" not in " ".join(cmd):
            continue
        port = cmd[cmd.index("--port") + 1] if "--port" in cmd else ""
        if port.isdigit() and TEST_PORT_LO <= int(port) <= TEST_PORT_HI:
            found.append(proc)
    return found


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
