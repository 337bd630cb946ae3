"""Each kind of incident, in the running process (same pid), against real traffic: measured
from traffic's per-second series and from the OS (psutil), within 1 s of its start and of its
end, and bounded (docs/architecture.md, "Incidents and scenarios")."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import psutil
import pytest

from app.core.incident_model import IncidentChange, IncidentEvent
from app.core.model import PortState
from app.core.settings import AutoRestart, Settings
from app.core.waiting import until
from app.service.incident_kinds import CRASH_EXIT_CODE
from tests.conftest import run
from tests.helpers import alive
from tests.incidents.support import (
    RATE,
    cpu_s,
    fleet,
    flowing,
    pids,
    rss_mb,
    seconds_from,
    service,
    step,
)


def test_errors_fail_that_step_within_a_second_and_clear_and_expiry_restore_it(
    settings: Settings,
) -> None:
    """rate 1.0 on B: from a second after the start every B hop fails (503, "unavailable"),
    A stays healthy, C is never reached; no pid changes. Its expiry, and later a clear, bring
    B back within a second."""

    async def scenario() -> None:
        async with fleet(settings) as core:
            before = pids(core)
            events: list[IncidentEvent] = []
            core.events.incident.connect(events.append)
            [incident] = await core.incidents.start(
                {"service": "BService", "kind": "errors", "status": 503, "durationS": 5}
            )
            started = time.time()
            assert incident.key == "BService-Incident_Co" and incident.spec.rate == 1.0
            assert incident.spec.error_type == "unavailable"  # what 503 says
            for second in await seconds_from(core, started + 1.0):
                a, b, c = (step(second, n) for n in ("A", "B", "C"))
                assert b.failed > 0 and b.ok == 0, second
                assert (b.incident_id, b.incident_kind) == (incident.id, "errors")
                assert a.failed == 0 and a.ok == b.failed, second
                assert c.ok == c.failed == 0 and c.not_reached == b.failed, second
            now = {s.step_name: s for s in core.traffic.status().steps}
            assert now["B"].to_json()["incident"] == {"id": incident.id, "kind": "errors"}
            assert now["A"].to_json()["incident"] is None
            # Expiry: out of the list by its end, and B is healthy from a second after it.
            left = incident.ends_mono - time.monotonic()
            assert await until(lambda: not core.incidents.active(), left + 1.0)
            assert [(e.change, e.reason) for e in events] == [
                (IncidentChange.STARTED, ""),
                (IncidentChange.ENDED, "expired"),
            ]
            for second in await seconds_from(core, incident.ends_at + 1.0):
                b = step(second, "B")
                assert b.ok > 0 and b.failed == 0 and not b.incident_id, second
            # A clear: the same within a second of it.
            [again] = await core.incidents.start(
                {"service": "BService", "kind": "errors", "durationS": 60}
            )
            for second in await seconds_from(core, time.time() + 1.0, 1):
                assert step(second, "B").ok == 0, second
            await core.incidents.end(again.id)
            cleared = time.time()
            assert core.incidents.active() == []
            for second in await seconds_from(core, cleared + 1.0):
                assert step(second, "B").failed == 0 and step(second, "B").ok > 0, second
            assert pids(core) == before  # the same processes all along

    run(scenario(), timeout=90)


def test_latency_raises_that_steps_p50_and_returns_after_the_end(settings: Settings) -> None:
    """+200 ms on B: B's own p50 rises by at least 150 ms from a second after the start (A's
    does not), and is back within 50 ms of its baseline a second after the end."""

    async def scenario() -> None:
        async with fleet(settings) as core:
            baseline = [step(s, "B").p50_ms for s in await seconds_from(core, time.time(), 2)]
            [incident] = await core.incidents.start(
                {"service": "BService", "kind": "latency", "addMs": 200, "durationS": 4}
            )
            for second in await seconds_from(core, time.time() + 1.0):
                b, a = step(second, "B"), step(second, "A")
                assert b.ok > 0 and b.p50_ms >= max(baseline) + 150, (baseline, second)
                assert b.incident_kind == "latency"
                assert a.p50_ms < max(baseline) + 50, second
            left = incident.ends_mono - time.monotonic()
            assert await until(lambda: not core.incidents.active(), left + 1.0)
            for second in await seconds_from(core, incident.ends_at + 1.0):
                b = step(second, "B")
                assert b.ok > 0 and b.p50_ms < max(baseline) + 50, (baseline, second)

    run(scenario(), timeout=90)


def _held(pid: int, port: int) -> int:
    """Connections the service holds open on its own port (requests it has not answered)."""
    conns = psutil.Process(pid).net_connections(kind="tcp")
    return sum(1 for c in conns if c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED)


def test_a_hang_holds_requests_until_it_ends_and_then_they_complete(settings: Settings) -> None:
    """A 3 s hang on B: requests pile up in B (open connections, journeys in flight, none
    ends), the process sleeps (no CPU burnt, same pid, /health still answers); within a second
    of the end every held journey completes, none failed."""

    async def scenario() -> None:
        async with fleet(settings, rate=10) as core:
            b = service(core, "BService")
            assert b.pid is not None
            proc = psutil.Process(b.pid)
            [incident] = await core.incidents.start(
                {"service": "BService", "kind": "hang", "durationS": 3}
            )
            done = core.traffic.status().completed
            cpu = cpu_s(b.pid)
            assert await until(lambda: core.traffic.status().in_flight >= 10, 2.5)
            status = core.traffic.status()
            assert status.completed <= done + 2, status  # none gets through B
            # Each journey held is a request B has open: one connection each, in the OS.
            assert _held(b.pid, b.port) >= status.in_flight - 1
            assert proc.status() in (psutil.STATUS_SLEEPING, psutil.STATUS_RUNNING)
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{b.port}/health") as resp,
            ):
                assert resp.status == 200 and (await resp.json())["pid"] == b.pid
            assert await until(lambda: not core.incidents.active(), incident.remaining_s() + 1)
            assert await until(lambda: core.traffic.status().in_flight <= 2, 1.5)
            assert cpu_s(b.pid) - cpu < 0.5  # held, not spinning
            await flowing(core)
            final = core.traffic.status()
            assert final.failed == 0 and final.cancelled == 0, final
            assert service(core, "BService").pid == b.pid

    run(scenario(), timeout=90)


def test_a_hang_longer_than_the_chains_budget_fails_as_a_timeout_of_that_step(
    settings: Settings,
) -> None:
    """A hang far longer than the chain's time budget holds no request past it: each fails at
    B as a timeout (504) before the panel gives up on it, charged to B with the reason."""

    async def scenario() -> None:
        async with fleet(settings, rate=5) as core:
            await core.incidents.start({"service": "BService", "kind": "hang", "durationS": 60})
            budget = core.chain_for(core.journeys()[0].journey).budget_s()
            t0 = time.time()
            failed = core.traffic.status().failed
            assert await until(lambda: core.traffic.status().failed >= failed + 3, budget + 3)
            assert time.time() - t0 >= budget - 1.0  # held as long as the budget allows
            status = core.traffic.status()
            b = next(s for s in status.steps if s.step_name == "B")
            assert b.failed >= 3 and status.cancelled == 0, status
            held = status.in_flight
            assert held <= RATE * (budget + 1), status  # bounded by the budget, not the hang
            await core.incidents.clear()

    run(scenario(), timeout=90)


@pytest.mark.parametrize("autorestart", [AutoRestart.NO, AutoRestart.ON_FAILURE])
def test_a_crash_ends_the_process_once(settings: Settings, autorestart: AutoRestart) -> None:
    """The process exits with CRASH_EXIT_CODE: the watcher says `exited (code 86)` and traffic
    holds; it restarts only with BIZOBS_AUTORESTART=on-failure, clean (its incident gone)."""
    settings = settings.with_(autorestart=autorestart)

    async def scenario() -> None:
        async with fleet(settings) as core:
            b = service(core, "BService")
            assert b.pid is not None
            [incident] = await core.incidents.start({"service": "BService", "kind": "crash"})
            assert await until(lambda: not alive(b.pid or 0), 2.0)  # the OS: gone
            trouble = f"exited (code {CRASH_EXIT_CODE})"
            if autorestart is AutoRestart.NO:
                assert await until(lambda: core.manager.trouble(b.key) is not None, 1.0)
                cell = next(p for p in core.ports() if p.port == b.port)
                assert cell.state is PortState.STALE and cell.trouble == trouble
                assert core.traffic.status().paused == f"BService on {b.port} {trouble}"
                # The first automatic restart would come after 0.5 s: none comes.
                await asyncio.sleep(1.5)  # a window in which a restart would have happened
                assert service(core, "BService").pid == b.pid
                assert [i.id for i in core.incidents.active()] == [incident.id]
                await core.restart_service("BService")
            else:
                assert await until(lambda: service(core, "BService").pid != b.pid, 5.0)
            assert core.incidents.active() == []  # the restarted service starts clean
            await flowing(core)
            assert core.manager.trouble(b.key) is None

    run(scenario(), timeout=90)


def test_cpu_burns_at_most_its_cores_and_stops_at_the_end(settings: Settings) -> None:
    """cores 0.5 on B: its CPU time grows by at most half the wall time (and really grows),
    a thread more while it lasts; /health answers promptly meanwhile; at the end the thread
    is gone and the CPU time stops growing."""

    async def scenario() -> None:
        async with fleet(settings, rate=2) as core:
            b = service(core, "BService")
            assert b.pid is not None
            proc = psutil.Process(b.pid)
            threads = proc.num_threads()
            [incident] = await core.incidents.start(
                {"service": "BService", "kind": "cpu", "cores": 0.5, "durationS": 3}
            )
            t0, c0 = time.monotonic(), cpu_s(b.pid)
            assert proc.num_threads() == threads + 1
            async with aiohttp.ClientSession() as http:
                for _ in range(5):
                    async with http.get(
                        f"http://127.0.0.1:{b.port}/health", timeout=aiohttp.ClientTimeout(1.0)
                    ) as resp:
                        assert resp.status == 200
                    await asyncio.sleep(0.3)  # pacing the probes
            elapsed, burnt = time.monotonic() - t0, cpu_s(b.pid) - c0
            assert 0.1 * elapsed <= burnt <= 0.5 * elapsed + 0.2, (elapsed, burnt)
            assert await until(lambda: not core.incidents.active(), incident.remaining_s() + 1)
            assert await until(lambda: proc.num_threads() == threads, 1.0)
            c1 = cpu_s(b.pid)
            await flowing(core, more=2)
            assert cpu_s(b.pid) - c1 < 0.3  # traffic's own work only
            assert core.manager.trouble(b.key) is None

    run(scenario(), timeout=90)


def test_memory_grows_to_its_cap_holds_it_and_frees_it_at_the_end(settings: Settings) -> None:
    """64 MiB/s up to 96 MiB on B: RSS grows by about the cap (touched pages, not reserved
    ones), never much beyond, and falls back within a second of the end."""

    async def scenario() -> None:
        async with fleet(settings, rate=2) as core:
            b = service(core, "BService")
            assert b.pid is not None
            base = rss_mb(b.pid)
            [incident] = await core.incidents.start(
                {"service": "BService", "kind": "memory", "mbPerS": 64, "capMb": 96, "durationS": 4}
            )
            seen: list[float] = []

            def grown() -> bool:
                seen.append(rss_mb(b.pid or 0) - base)
                return seen[-1] >= 90

            assert await until(grown, 3.0), seen[-5:]
            assert max(seen) <= 96 + 16, seen  # the cap, and the page tables' own share
            assert await until(lambda: not core.incidents.active(), incident.remaining_s() + 1)
            assert await until(lambda: rss_mb(b.pid or 0) - base < 16, 1.0)
            assert service(core, "BService").pid == b.pid

    run(scenario(), timeout=90)
