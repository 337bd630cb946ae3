"""A managing process killed with SIGKILL leaves nothing the next one does not clean up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace

import psutil
import pytest

from app.core import probe
from app.core.model import PortState, ServiceRecord
from app.core.orchestrator import open_core
from app.core.settings import Settings
from tests.conftest import run
from tests.helpers import alive

MANAGER_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, os, signal, sys
    from pathlib import Path
    from app.core.settings import LauncherKind, Settings
    from app.core.model import ServiceSpec
    from app.core.orchestrator import open_core

    async def main():
        lo, hi, state, n_stopped = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
        settings = Settings(port_lo=lo, port_hi=hi, state_dir=Path(state),
                            essential_services=(), launcher=LauncherKind(sys.argv[5]))
        async with open_core(settings) as core:
            started = await core.manager.start_many(
                [ServiceSpec(f"Svc{i}", "Crash Co") for i in range(3)], "doomed")
            # A hung service (SIGSTOPped) will not act on its death signal: a real orphan.
            for info in started[:n_stopped]:
                os.kill(info.pid, signal.SIGSTOP)
            print(json.dumps([[s.pid, s.port] for s in started]), flush=True)
            await asyncio.Event().wait()

    asyncio.run(main())
    """
)


def _spawn_manager(settings: Settings, n_stopped: int) -> tuple[subprocess.Popen[str], list]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            MANAGER_SCRIPT,
            str(settings.port_lo),
            str(settings.port_hi),
            str(settings.state_dir),
            str(n_stopped),
            settings.launcher.value,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # bounded by the test timeout
    return proc, json.loads(line)


@pytest.mark.both_launchers  # orphans of each: own token (exec), their server's token (fork)
def test_kill9_manager_then_new_manager_reconciles(settings: Settings) -> None:
    proc, services = _spawn_manager(settings, n_stopped=2)
    pids = [pid for pid, _ in services]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    # The running one dies with its parent; the two stopped ones are genuine orphans.
    assert sum(alive(p) for p in pids) >= 2

    async def scenario() -> None:
        async with open_core(settings) as core:
            assert any("left by an earlier run" in m for m in core.startup_messages)
            assert not any(alive(p) for p in pids)
            assert core.manager.ledger.records() == []
            assert core.manager.by_port() == {}
            for _, port in services:
                assert probe.can_bind(port)
            assert {p.state for p in core.ports()} == {PortState.FREE}

    run(scenario())


def test_reconcile_never_kills_a_process_that_reused_a_pid(settings: Settings) -> None:
    """A ledger row whose pid now belongs to an unrelated process: create time or token differ."""
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ctime = psutil.Process(bystander.pid).create_time()

        async def seed_and_reconcile() -> None:
            ghost = ServiceRecord(
                key="Ghost-X",
                service_name="Ghost",
                company="X",
                port=settings.port_lo,
                run_id="old",
                token="t",
                started_at=0.0,
            )
            # Same pid, other create time (pid reuse); and same pid + time, wrong token.
            async with open_core(settings, stop_services_on_close=False) as core:
                core.manager.ledger.add(
                    replace(ghost, pid=bystander.pid, create_time=ctime - 100, cmdline_token="x")
                )
            async with open_core(settings) as core:
                assert bystander.poll() is None
                core.manager.ledger.add(
                    replace(
                        ghost, pid=bystander.pid, create_time=ctime, cmdline_token="not-its-token"
                    )
                )
                await core.manager.stop_all()
                assert bystander.poll() is None, "an unrelated process was killed"
                assert core.manager.ledger.records() == []

        run(seed_and_reconcile())
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait(10)
