"""The control API in-process: real core, real services, real HTTP."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import aiohttp
import pytest

from app.api.app import ALL_ROUTES
from app.api.common import MAX_BODY
from app.api.openapi import SPEC, spec_for
from app.api.security import Guard
from app.api.server import ApiBindError, ApiServer
from app.core.events import RunProgress
from app.core.model import PortState
from app.core.orchestrator import Core, open_core
from app.core.settings import Settings
from tests.conftest import run
from tests.helpers import journey


@asynccontextmanager
async def api(settings: Settings) -> AsyncIterator[tuple[Core, str, aiohttp.ClientSession]]:
    async with open_core(settings) as core:
        server = ApiServer(core, "127.0.0.1", settings.api_port)
        try:
            await server.start()
            async with aiohttp.ClientSession(base_url=server.url) as http:
                yield core, server.url, http
        finally:
            await server.stop()


async def call(http: aiohttp.ClientSession, method: str, path: str, **kw: Any) -> tuple[int, Any]:
    if method == "POST" and "json" not in kw:  # the API takes POSTs as JSON only
        kw["headers"] = {"Content-Type": "application/json", **kw.get("headers", {})}
    async with http.request(method, path, **kw) as resp:
        return resp.status, await resp.json()


def test_simulate_then_status_endpoints(settings: Settings) -> None:
    async def scenario() -> None:
        async with api(settings) as (core, _, http):
            status, body = await call(
                http, "POST", "/api/journey/simulate", json={"journey": journey()}
            )
            assert status == 200, body
            assert body["ok"] and body["runId"].startswith("run-")
            assert [p["name"] for p in body["phases"]] == [
                "stop",
                "wait",
                "sweep",
                "launch",
                "simulate",
            ]
            assert all(isinstance(p["ms"], float | int) for p in body["phases"])
            assert body["cleanup"] == {"stopped": 0, "staleCleaned": 0}
            assert sorted(s["name"] for s in body["services"]) == ["BrowseService", "LoginService"]
            assert len(body["customers"]) == 1 and body["summary"]["completed"] == 1
            status, ports = await call(http, "GET", "/api/ports/status")
            assert ports["range"] == [settings.port_lo, settings.port_hi]
            assert set(ports["counts"]) == {s.value for s in PortState}
            assert ports["counts"]["allocated"] == 2
            assert ports["counts"]["free"] == len(settings.ports) - 2
            cell = next(p for p in ports["ports"] if p["state"] == "allocated")
            assert set(cell) >= {"port", "state", "service", "company", "pid", "essential"}
            _, services = await call(http, "GET", "/api/services/status")
            assert services["count"] == 2
            _, runs = await call(http, "GET", "/api/runs")
            assert runs["runs"][0]["runId"] == body["runId"]
            _, detail = await call(http, "GET", f"/api/runs/{body['runId']}")
            assert len(detail["stepResults"]) == 2
            status, _ = await call(http, "GET", "/api/runs/run-nope")
            assert status == 404
            _, cleaned = await call(http, "POST", "/api/ports/cleanup")
            assert cleaned == {"ok": True, "staleCleaned": 0, "orphansReaped": 0}
            _, stopped = await call(http, "POST", "/api/services/stop-all")
            assert stopped["stopped"] == 2 and core.services() == []
            _, health = await call(http, "GET", "/api/health")
            assert health["ok"] and health["services"] == 0

    run(scenario())


def test_multiple_and_batch_chained(settings: Settings) -> None:
    async def scenario() -> None:
        async with api(settings) as (_, _url, http):
            status, body = await call(
                http,
                "POST",
                "/api/journey/simulate-multiple",
                json={"customers": 6, "journey": journey()},
            )
            assert status == 200 and body["summary"]["customers"] == 6
            status, body = await call(
                http,
                "POST",
                "/api/journey/simulate-batch-chained",
                json={"customers": 4, "thinkTimeMs": 5, "journey": journey("Other Co")},
            )
            assert status == 200 and body["summary"]["completed"] == 4
            assert body["cleanup"]["stopped"] == 2
            latencies = [c["latencyMs"] for c in body["customers"]]
            assert min(latencies) >= 5  # one think time between the two steps

    run(scenario())


BAD: list[tuple[str, str, str, dict[str, Any], int]] = [
    ("not JSON", "POST", "/api/journey/simulate", {"data": b"{nope"}, 400),
    ("JSON array", "POST", "/api/journey/simulate", {"json": [1, 2]}, 400),
    ("empty body", "POST", "/api/journey/simulate", {"data": b""}, 400),
    ("no journey", "POST", "/api/journey/simulate", {"json": {"customers": 1}}, 400),
    ("journey not object", "POST", "/api/journey/simulate", {"json": {"journey": "x"}}, 400),
    (
        "missing steps",
        "POST",
        "/api/journey/simulate",
        {"json": {"journey": {"companyName": "A", "domain": "a.com", "industryType": "x"}}},
        400,
    ),
    (
        "shell in service name",
        "POST",
        "/api/journey/simulate",
        {"json": {"journey": journey("A", "Bad$(reboot)")}},
        400,
    ),
    (
        "customers zero",
        "POST",
        "/api/journey/simulate-multiple",
        {"json": {"customers": 0, "journey": journey()}},
        400,
    ),
    (
        "customers text",
        "POST",
        "/api/journey/simulate-multiple",
        {"json": {"customers": "ten", "journey": journey()}},
        400,
    ),
    (
        "customers absurd",
        "POST",
        "/api/journey/simulate-multiple",
        {"json": {"customers": 10**9, "journey": journey()}},
        400,
    ),
    (
        "think time negative",
        "POST",
        "/api/journey/simulate-batch-chained",
        {"json": {"customers": 2, "thinkTimeMs": -1, "journey": journey()}},
        400,
    ),
    (
        "several customers on simulate",
        "POST",
        "/api/journey/simulate",
        {"json": {"customers": 3, "journey": journey()}},
        400,
    ),
    (
        "oversized body",
        "POST",
        "/api/journey/simulate",
        {"data": b'{"journey": "' + b"x" * (MAX_BODY + 10) + b'"}'},
        413,
    ),
    ("wrong method", "GET", "/api/journey/simulate", {}, 405),
    ("unknown path", "POST", "/api/journey/teleport", {"json": {}}, 404),
    ("bad runs limit", "GET", "/api/runs?limit=-3", {}, 400),
    (
        "too many steps for pool",
        "POST",
        "/api/journey/simulate",
        {"json": {"journey": journey("A", *[f"S{i}" for i in range(30)])}},
        400,
    ),
]


def test_a_run_in_progress_says_how_many_customers_are_done(settings: Settings) -> None:
    """GET /api/runs/{id} of the run in progress carries its progress; once done, not."""
    customers = 400  # 5 at once, ≥ 20 ms each: the simulate phase lasts ≥ 1.6 s

    async def scenario() -> None:
        async with api(settings) as (core, _, http):
            mid_run = asyncio.Event()

            def on_progress(progress: RunProgress) -> None:
                if 0 < progress.done < progress.total:
                    mid_run.set()

            core.events.progress.connect(on_progress)
            trip = journey("Batch Co", "LoginService", "PayService", step1={"latencyMs": 20})
            body = {"customers": customers, "concurrency": 5, "journey": trip}
            posted = asyncio.ensure_future(
                call(http, "POST", "/api/journey/simulate-multiple", json=body)
            )
            await asyncio.wait_for(mid_run.wait(), 30)
            assert core.progress is not None
            run_id = core.progress.run_id
            status, found = await call(http, "GET", f"/api/runs/{run_id}")
            assert status == 200 and found["status"] == "running", found
            progress = found["progress"]
            assert progress["total"] == customers and 0 < progress["done"] <= customers
            assert progress["failed"] == 0
            status, answer = await asyncio.wait_for(posted, 60)
            assert status == 200 and answer["runId"] == run_id, answer
            status, found = await call(http, "GET", f"/api/runs/{run_id}")
            assert status == 200 and found["status"] == "ok" and "progress" not in found

    run(scenario())


def test_bad_requests_get_4xx_with_message_and_change_nothing(settings: Settings) -> None:
    assert len(BAD) >= 12

    async def scenario() -> None:
        async with api(settings) as (core, _, http):
            status, _ = await call(
                http, "POST", "/api/journey/simulate", json={"journey": journey()}
            )
            assert status == 200
            before = {(s.key, s.pid) for s in core.services()}
            for label, method, path, kw, expected in BAD:
                status, body = await call(http, method, path, **kw)
                assert status == expected, (label, status, body)
                assert body["ok"] is False and body["error"], label
                assert {(s.key, s.pid) for s in core.services()} == before, label

    run(scenario())


def test_pool_that_cannot_fit_gets_503_and_stops_nothing(settings: Settings) -> None:
    import socket

    async def scenario() -> None:
        small = settings.with_(port_hi=settings.port_lo + 3)
        squatters = []
        try:
            async with api(small) as (core, _, http):
                status, _ = await call(
                    http, "POST", "/api/journey/simulate", json={"journey": journey()}
                )
                assert status == 200
                before = {(s.key, s.pid) for s in core.services()}
                for port in (small.port_lo + 2, small.port_lo + 3):  # foreign squatters
                    sock = socket.socket()
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind(("127.0.0.1", port))
                    sock.listen()
                    squatters.append(sock)
                status, body = await call(
                    http,
                    "POST",
                    "/api/journey/simulate",
                    json={"journey": journey("B", "X1", "X2", "X3")},
                )
                assert status == 503 and "can offer only 2" in body["error"]
                assert {(s.key, s.pid) for s in core.services()} == before
        finally:
            for sock in squatters:
                sock.close()

    run(scenario())


def test_concurrent_runs_one_runs_the_others_get_409(settings: Settings) -> None:
    async def scenario() -> None:
        async with api(settings) as (core, _, http):
            bodies = [{"journey": journey(f"Co{i}")} for i in range(5)]
            results = await asyncio.gather(
                *(call(http, "POST", "/api/journey/simulate", json=b) for b in bodies)
            )
            statuses = sorted(s for s, _ in results)
            assert statuses == [200, 409, 409, 409, 409], results
            assert all("in progress" in b["error"] for s, b in results if s == 409)
            assert len(core.services()) == 2

    run(scenario())


def test_openapi_describes_exactly_the_routes(settings: Settings) -> None:
    routes = {(path, method.lower()) for method, path, _ in ALL_ROUTES}
    routes |= {(path, "head") for path, method in routes if method == "get"}  # GET answers HEAD
    described = {(path, method) for path, ops in SPEC["paths"].items() for method in ops}
    assert routes == described

    async def scenario() -> None:
        async with api(settings) as (_, url, http):
            status, body = await call(http, "GET", "/api/openapi.json")
            guard = Guard("127.0.0.1", settings.api_port)
            assert status == 200 and body == spec_for(guard, settings)
            assert body["paths"].keys() == SPEC["paths"].keys()
            assert body["servers"] == [{"url": url}]

    run(scenario())


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com"])
def test_api_refuses_non_loopback_binds(settings: Settings, host: str) -> None:
    async def scenario() -> None:
        async with open_core(settings) as core:
            with pytest.raises(ApiBindError, match="loopback-only"):
                ApiServer(core, host, settings.api_port)

    run(scenario())


@pytest.mark.parametrize("phase", ["launch", "simulate"])
def test_stop_all_during_a_run_cancels_it_and_leaves_nothing(
    settings: Settings, phase: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if phase == "launch":  # forked services are ready in milliseconds: widen the window
        monkeypatch.setenv("BIZOBS_FAULT_START_DELAY_MS", "2000")
    from app.core.model import ServiceState
    from app.core.waiting import until

    def reached() -> bool:
        states = [s.state for s in core_box[0].services()]
        if phase == "launch":
            return ServiceState.STARTING in states
        return len(states) == 2 and set(states) == {ServiceState.RUNNING}

    core_box: list[Core] = []

    async def scenario() -> None:
        async with api(settings) as (core, _, http):
            core_box.append(core)
            slow = journey("Slow Co", "AService", "BService")
            slow["steps"][1]["latencyMs"] = 3000
            run_task = asyncio.create_task(
                call(
                    http,
                    "POST",
                    "/api/journey/simulate-multiple",
                    json={"customers": 2, "journey": slow},
                )
            )
            assert await until(reached, 30)
            status, body = await call(http, "POST", "/api/services/stop-all")
            assert status == 200
            if phase == "simulate":
                assert body["stopped"] == 2
            status, result = await run_task
            assert result["ok"] is False and "Stop All" in result["error"]
            # The cancelled run answers as itself: its id and the phases it went through.
            assert status == 409 and result["cancelled"] is True
            assert result["runId"].startswith("run-") and result["phases"]
            assert core.services() == [] and not core.busy
            assert core.history.runs(1)[0]["status"] == "cancelled"

    run(scenario())


def test_a_misspelt_field_is_refused_with_a_hint(settings: Settings) -> None:
    async def scenario() -> None:
        async with api(settings) as (core, _, http):
            body = {"customer": 3, "journey": journey()}
            status, answer = await call(http, "POST", "/api/journey/simulate-multiple", json=body)
            assert status == 400, answer
            assert answer["problems"] == [
                {
                    "field": "customer",
                    "message": "unknown field 'customer' (did you mean 'customers'?)",
                }
            ]
            assert core.services() == [] and core.history.count() == 0

    run(scenario())


@contextmanager
def _unwritable(core: Core, how: str) -> Iterator[None]:
    """The state database refusing writes: read-only (SQLite's SQLITE_READONLY, what a read-only
    file gives a user who is not root), or write-locked by another process (busy)."""
    conn = core.history._conn
    if how == "read-only":
        conn.execute("PRAGMA query_only = ON")
        try:
            yield
        finally:
            conn.execute("PRAGMA query_only = OFF")
        return
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
            "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); sys.stdin.read()",
            str(core.settings.db_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    conn.execute("PRAGMA busy_timeout = 300")  # bounded: the default 5 s would do too
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)
        conn.execute("PRAGMA busy_timeout = 5000")


@pytest.mark.parametrize("how", ["read-only", "locked"])
def test_history_unwritable_at_run_start_is_507_and_leaves_nothing(
    settings: Settings, how: str
) -> None:
    """The run's history row is its first write: a disk that refuses it is the disk (507),
    like the ledger's, not an internal error; nothing was started, the next run works."""

    async def scenario() -> None:
        async with api(settings) as (core, _, http):
            with _unwritable(core, how):
                status, body = await call(
                    http, "POST", "/api/journey/simulate", json={"journey": journey("Full Co")}
                )
                assert status == 507, body
                assert body["ok"] is False and "state database" in body["error"], body
                assert core.services() == [] and not core.busy
            status, body = await call(
                http, "POST", "/api/journey/simulate", json={"journey": journey("After Co")}
            )
            assert status == 200, body
            assert [r["company"] for r in core.history.runs(5)] == ["After Co"]

    run(scenario())
