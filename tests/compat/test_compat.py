"""The replaced system's routes as aliases: real core, real services, real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.api import compat
from app.api.common import MAX_BODY
from app.api.compat import COMPAT_ROUTES, derive_service_name
from app.api.openapi import SPEC
from app.api.server import ApiServer
from app.core import probe
from app.core.orchestrator import Core, open_core
from app.core.settings import EssentialService, Settings
from app.core.waiting import until
from tests.conftest import run
from tests.helpers import alive, journey

SIM = "/api/journey-simulation"
ALL_PHASES = ["stop", "wait", "sweep", "launch", "simulate"]


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[tuple[Core, aiohttp.ClientSession]]:
    async with open_core(settings) as core:
        server = ApiServer(core, "127.0.0.1", settings.api_port)
        try:
            await server.start()
            async with aiohttp.ClientSession(base_url=server.url) as http:
                yield core, http
        finally:
            await server.stop()


async def call(http: aiohttp.ClientSession, method: str, path: str, **kw: Any) -> tuple[int, Any]:
    if method == "POST" and "json" not in kw:  # the API takes POSTs as JSON only, body or not
        kw.setdefault("headers", {"Content-Type": "application/json"})
    async with http.request(method, path, **kw) as resp:
        if resp.content_type == "text/html":
            return resp.status, await resp.text()
        return resp.status, await resp.json()


def listening_pids(settings: Settings) -> set[int]:
    """Who listens in the pool, from the OS (not from the core's own tables)."""
    found = probe.scan_listeners(settings.ports).values()
    return {lst.pid for lst in found if lst.pid is not None}


def check_run(body: dict[str, Any], services: list[str], stopped: int) -> set[int]:
    """A full Run Journey answered in that system's shape; returns the new services' pids."""
    assert body["success"] is True and body["reused"] is False, body
    assert body["runId"].startswith("run-")
    assert [p["name"] for p in body["phases"]] == ALL_PHASES
    assert body["cleanup"] == {"stopped": stopped, "staleCleaned": 0}
    assert sorted(s["name"] for s in body["services"]) == sorted(services)
    return {s["pid"] for s in body["services"]}


def test_simulate_journey_with_each_body_shape_cleans_up_like_ours(settings: Settings) -> None:
    async def scenario() -> None:
        async with served(settings) as (core, http):
            # 1. only `journey: {name, steps}` and `customerName`: defaults, derived services
            status, body = await call(
                http,
                "POST",
                f"{SIM}/simulate-journey",
                json={
                    "journey": {
                        "name": "Shop",
                        "steps": [{"stepName": "Login"}, {"name": "Browse"}],
                    },
                    "customerName": "Ada Lovelace",
                },
            )
            assert status == 200, body
            first = check_run(body, ["LoginService", "BrowseService"], stopped=0)
            journey = body["journey"]
            assert journey["companyName"] == "DefaultCompany"
            assert journey["domain"] == "default.com" and journey["industryType"] == "general"
            assert journey["customerName"] == "Ada Lovelace" and journey["journeyId"]
            assert [(s["stepName"], s["serviceName"], s["status"]) for s in journey["steps"]] == [
                ("Login", "LoginService", "completed"),
                ("Browse", "BrowseService", "completed"),
            ]
            assert listening_pids(settings) == first

            # 2. a top-level journey: the previous services stopped first, exact counts
            status, body = await call(
                http,
                "POST",
                f"{SIM}/simulate-journey",
                json={
                    "companyName": "TechStart Inc",
                    "domain": "techstart.io",
                    "industryType": "SaaS",
                    "journeyId": "journey_42",
                    "steps": [
                        {"stepName": "Signup", "serviceName": "SignupService"},
                        {"stepName": "Onboard", "serviceName": "OnboardService"},
                    ],
                },
            )
            assert status == 200, body
            second = check_run(body, ["SignupService", "OnboardService"], stopped=2)
            assert body["journey"]["journeyId"] == "journey_42"
            assert body["journey"]["companyName"] == "TechStart Inc"
            assert not any(alive(pid) for pid in first)
            assert listening_pids(settings) == second

            # 3. an `aiJourney`
            status, body = await call(
                http,
                "POST",
                f"{SIM}/simulate-journey",
                json={
                    "aiJourney": {
                        "companyName": "Retail Plus",
                        "domain": "retailplus.com",
                        "industryType": "Retail",
                        "steps": [{"stepName": "Browse"}, {"stepName": "Checkout"}],
                    },
                    "errorSimulationEnabled": False,
                },
            )
            assert status == 200, body
            third = check_run(body, ["BrowseService", "CheckoutService"], stopped=2)
            assert {s["status"] for s in body["journey"]["steps"]} == {"completed"}
            assert not any(alive(pid) for pid in second)
            assert listening_pids(settings) == third == {s.pid for s in core.services()}

    run(scenario())


def test_multiple_and_batch_chained_aliases(settings: Settings) -> None:
    async def scenario() -> None:
        async with served(settings) as (_core, http):
            retail = {
                "companyName": "Retail Plus",
                "domain": "retailplus.com",
                "industryType": "Retail",
                "steps": [{"stepName": "Browse"}, {"stepName": "Checkout"}],
            }
            status, body = await call(
                http,
                "POST",
                f"{SIM}/simulate-multiple-journeys",
                json={"customers": 3, "aiJourney": retail},
            )
            assert status == 200, body
            first = check_run(body, ["BrowseService", "CheckoutService"], stopped=0)
            assert body["loadTestSummary"] == {
                "customersProcessed": 3,
                "successfulCustomers": 3,
                "failedCustomers": 0,
                "successRate": "100.0%",
            }
            assert len(body["correlationIds"]) == len(set(body["correlationIds"])) == 3
            assert [d["customerIndex"] for d in body["detailedResults"]] == [1, 2, 3]
            assert len(body["journey"]["steps"]) == 2

            status, body = await call(
                http,
                "POST",
                f"{SIM}/simulate-batch-chained",
                json={"customers": 4, "thinkTimeMs": 5, "journey": {**retail, "companyName": "B"}},
            )
            assert status == 200, body
            second = check_run(body, ["BrowseService", "CheckoutService"], stopped=2)
            assert body["ok"] is True
            assert body["summary"]["customers"] == body["summary"]["completed"] == 4
            assert [s["status"] for s in body["sample"]] == ["completed"] * 4
            assert not any(alive(pid) for pid in first)
            assert listening_pids(settings) == second

    run(scenario())


def test_steps_sharing_a_service_run_one_process_called_per_step(settings: Settings) -> None:
    banking = {
        "companyName": "First Digital Bank",
        "domain": "firstdigital.bank",
        "industryType": "Banking",
        "steps": [
            {"stepName": "Login", "serviceName": "AuthService"},
            {"stepName": "Transfer", "serviceName": "TransferService"},
            {"stepName": "Logout", "serviceName": "AuthService"},
        ],
    }

    async def scenario() -> None:
        async with served(settings) as (_core, http):
            for path, body in (
                (f"{SIM}/simulate-journey", {"journey": banking}),
                ("/api/journey/simulate", {"journey": banking}),  # ours too
            ):
                status, answer = await call(http, "POST", path, json=body)
                assert status == 200, answer
                services = answer["services"]
                assert sorted(s["name"] for s in services) == ["AuthService", "TransferService"]
                assert listening_pids(settings) == {s["pid"] for s in services}
                steps = (
                    answer["journey"]["steps"]
                    if "journey" in answer
                    else answer["customers"][0]["steps"]
                )
                assert [(s["stepName"], s["serviceName"]) for s in steps] == [
                    ("Login", "AuthService"),
                    ("Transfer", "TransferService"),
                    ("Logout", "AuthService"),
                ]
                assert all(s["httpStatus"] == 200 for s in steps), steps
                assert len({s["spanId"] for s in steps}) == 3  # three calls, one per step

    run(scenario())


ACME = {
    "companyName": "Acme Corp",
    "domain": "acme.com",
    "industryType": "E-Commerce",
    "steps": [{"stepName": "Login"}, {"stepName": "Browse"}],
}


def test_admin_routes_health_and_index(settings: Settings) -> None:
    keep = settings.with_(essential_services=(EssentialService("DiscoveryService", "Dynatrace"),))

    async def scenario() -> None:
        async with served(keep) as (core, http):
            status, body = await call(
                http,
                "POST",
                f"{SIM}/simulate-journey",
                json={"journey": ACME},
            )
            assert status == 200, body
            keys = {s.key: s.pid for s in core.services()}
            assert set(keys) == {
                "DiscoveryService-Dynatrace",
                "LoginService-Acme_Corp",
                "BrowseService-Acme_Corp",
            }

            _, health = await call(http, "GET", "/health")
            assert health["status"] == "healthy" and health["services"] == "running"
            assert health["timestamp"].endswith("Z")

            _, services = await call(http, "GET", "/api/admin/services")
            assert services["ok"] is True
            assert {s["service"]: s["pid"] for s in services["services"]} == keys

            _, status_body = await call(http, "GET", "/api/admin/services/status")
            assert status_body["totalServices"] == status_body["runningServices"] == 3
            login = next(
                s for s in status_body["services"] if s["service"] == "LoginService-Acme_Corp"
            )
            assert login["status"] == "running" and login["pid"] == keys[login["service"]]
            assert login["companyContext"] == {
                "companyName": "Acme Corp",
                "domain": "acme.com",
                "industryType": "E-Commerce",
            }
            assert {"startTime", "uptime", "port"} <= set(login)
            essential = next(s for s in status_body["services"] if s["essential"])
            assert essential["companyContext"] == {
                "companyName": "Dynatrace",
                "domain": None,  # not the journey's: it only started in that run
                "industryType": None,
            }
            assert status_body["serverPid"] > 0 and status_body["serverUptime"] >= 0

            _, ports = await call(http, "GET", "/api/admin/ports")
            total = len(keep.ports)
            assert ports["portStatus"] | {"counts": None} == {
                "available": total - 3,
                "allocated": 3,
                "total": total,
                "range": f"{keep.port_lo}-{keep.port_hi}",
                "counts": None,
            }
            assert {s["service"] for s in ports["services"]} == set(keys)

            _, cleaned = await call(http, "POST", "/api/admin/ports/cleanup")
            assert cleaned["ok"] is True and cleaned["cleaned"] == 0 and cleaned["message"]
            assert cleaned["portStatus"]["allocated"] == 3

            status, page = await call(http, "GET", "/")
            assert status == 200 and "BizObs Journey Control Panel" in page
            assert "/api/openapi.json" in page and f"{keep.port_lo}-{keep.port_hi}" in page

            _, fresh = await call(http, "POST", "/api/admin/new-customer-journey")
            assert fresh["ok"] is True and fresh["stopped"] == 2 and fresh["message"]
            assert [s.key for s in core.services()] == ["DiscoveryService-Dynatrace"]
            assert listening_pids(keep) == {keys["DiscoveryService-Dynatrace"]}

            _, reset = await call(http, "POST", "/api/admin/reset-ports")
            assert reset == {"ok": True, "message": reset["message"], "stopped": 1}
            assert core.services() == [] and listening_pids(keep) == set()
            assert not any(alive(pid) for pid in keys.values())

    run(scenario())


GOOD = {"companyName": "A", "domain": "a.com", "industryType": "x", "steps": [{"stepName": "Go"}]}
BAD: list[tuple[str, str, dict[str, Any], int]] = [
    ("not JSON", "simulate-journey", {"data": b"{nope"}, 400),
    ("JSON array", "simulate-journey", {"json": [GOOD]}, 400),
    ("empty body", "simulate-journey", {"data": b""}, 400),
    ("journey not an object", "simulate-journey", {"json": {"journey": "x"}}, 400),
    ("aiJourney not an object", "simulate-multiple-journeys", {"json": {"aiJourney": 3}}, 400),
    ("no steps anywhere", "simulate-journey", {"json": {"journey": {"name": "n"}}}, 400),
    ("steps empty", "simulate-journey", {"json": {"journey": {**GOOD, "steps": []}}}, 400),
    (
        "shell in service name",
        "simulate-journey",
        {"json": {"journey": {**GOOD, "steps": [{"stepName": "a", "serviceName": "B$(x)"}]}}},
        400,
    ),
    (
        "step name of symbols, no service",
        "simulate-journey",
        {"json": {"journey": {**GOOD, "steps": [{"stepName": "!!!"}]}}},
        400,
    ),
    (
        "customers zero",
        "simulate-multiple-journeys",
        {"json": {"customers": 0, "journey": GOOD}},
        400,
    ),
    (
        "think time negative",
        "simulate-batch-chained",
        {"json": {"thinkTimeMs": -1, "journey": GOOD}},
        400,
    ),
    (
        "error switch not boolean",
        "simulate-journey",
        {"json": {"errorSimulationEnabled": "no", "journey": GOOD}},
        400,
    ),
    ("customerName a number", "simulate-journey", {"json": {"customerName": 7, **GOOD}}, 400),
    (
        "oversized body",
        "simulate-journey",
        {"data": b'{"journey": "' + b"x" * (MAX_BODY + 10) + b'"}'},
        413,
    ),
]


def test_bad_bodies_get_4xx_success_false_and_stop_nothing(settings: Settings) -> None:
    async def scenario() -> None:
        async with served(settings) as (core, http):
            status, _ = await call(http, "POST", f"{SIM}/simulate-journey", json=GOOD)
            assert status == 200
            before = {(s.key, s.pid) for s in core.services()}
            for label, route, kw, expected in BAD:
                status, body = await call(http, "POST", f"{SIM}/{route}", **kw)
                assert status == expected, (label, status, body)
                assert body["success"] is False and body["error"], label
                assert {(s.key, s.pid) for s in core.services()} == before, label
                assert listening_pids(settings) == {pid for _, pid in before}, label

    run(scenario())


def test_five_concurrent_alias_calls_wait_their_turn(settings: Settings) -> None:
    async def scenario() -> None:
        async with served(settings) as (core, http):
            bodies = [
                {
                    "journey": {
                        "name": f"j{i}",
                        "companyName": f"Co{i}",
                        "steps": [{"stepName": "A"}],
                    }
                }
                for i in range(5)
            ]
            results = await asyncio.gather(
                *(call(http, "POST", f"{SIM}/simulate-journey", json=b) for b in bodies)
            )
            assert [s for s, _ in results] == [200] * 5, results
            assert all(b["success"] and not b["reused"] for _, b in results)
            # Each ran a full Run Journey in turn: four of them stopped the one before.
            assert sorted(b["cleanup"]["stopped"] for _, b in results) == [0, 1, 1, 1, 1]
            assert len(core.services()) == 1 and not core.busy
            assert listening_pids(settings) == {s.pid for s in core.services()}

    run(scenario())


def test_a_call_still_queued_after_the_bound_gets_409(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compat, "QUEUE_WAIT_S", 0.3)
    slow = {
        "companyName": "Slow Co",
        "domain": "slow.com",
        "industryType": "x",
        "steps": [{"stepName": "Wait", "serviceName": "WaitService", "latencyMs": 2000}],
    }

    async def scenario() -> None:
        async with served(settings) as (core, http):
            running = asyncio.create_task(
                call(http, "POST", "/api/journey/simulate", json={"journey": slow})
            )
            assert await until(lambda: core.busy, 10)
            status, body = await call(http, "POST", f"{SIM}/simulate-journey", json=GOOD)
            assert status == 409 and body["success"] is False, body
            assert "still in progress after 0.3 s" in body["error"]
            status, _ = await running
            assert status == 200
            assert [s.service_name for s in core.services()] == ["WaitService"]

    run(scenario())


def test_the_running_journey_again_reuses_its_services(settings: Settings) -> None:
    body = {
        "journey": {"name": "Shop", "steps": [{"stepName": "Login"}, {"stepName": "Browse"}]},
        "customerName": "Ada",
    }

    async def scenario() -> None:
        async with served(settings) as (core, http):
            status, first = await call(http, "POST", f"{SIM}/simulate-journey", json=body)
            assert status == 200, first
            pids = check_run(first, ["LoginService", "BrowseService"], stopped=0)

            results = await asyncio.gather(
                *(call(http, "POST", f"{SIM}/simulate-journey", json=body) for _ in range(5))
            )
            for status, again in results:
                assert status == 200 and again["success"] and again["reused"] is True, again
                assert [p["name"] for p in again["phases"]] == ["simulate"]
                assert again["cleanup"] == {"stopped": 0, "staleCleaned": 0}
                assert {s["pid"] for s in again["services"]} == pids
                assert [s["status"] for s in again["journey"]["steps"]] == ["completed"] * 2
            assert listening_pids(settings) == pids
            assert len({r["runId"] for _, r in results}) == 5  # each is a run of its own

            # Another journey (one more step) is a full Run Journey again.
            other = {
                "journey": {
                    **body["journey"],
                    "steps": [*body["journey"]["steps"], {"stepName": "Pay"}],
                }
            }
            status, changed = await call(http, "POST", f"{SIM}/simulate-journey", json=other)
            assert status == 200
            new = check_run(changed, ["LoginService", "BrowseService", "PayService"], stopped=2)
            assert not new & pids and not any(alive(pid) for pid in pids)
            assert listening_pids(settings) == new == {s.pid for s in core.services()}

    run(scenario())


def test_node_fetch_client_five_calls_at_once(settings: Settings) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the Node.js client cannot run here")
    client = Path(__file__).with_name("client.mjs")

    async def scenario() -> list[dict[str, Any]]:
        async with served(settings) as (core, _http):
            proc = await asyncio.create_subprocess_exec(
                node,
                str(client),
                f"http://127.0.0.1:{settings.api_port}",
                "5",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                out, err = await asyncio.wait_for(proc.communicate(), 90)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise
            assert proc.returncode == 0, (out, err)
            assert len(core.services()) == 2  # Login and Logout share LoginService
            return list(json.loads(out))

    results = run(scenario(), timeout=120)
    assert len(results) == 5 and all(r["success"] and r["httpStatus"] == 200 for r in results)
    assert sorted(r["reused"] for r in results) == [False, True, True, True, True]
    for r in results:
        assert [(s["stepName"], s["serviceName"], s["status"]) for s in r["steps"]] == [
            ("Login", "LoginService", "completed"),
            ("Browse Catalog", "BrowseCatalogService", "completed"),
            ("Logout", "LoginService", "completed"),
        ]


def test_aliases_are_in_openapi_under_the_compat_tag() -> None:
    for method, path, _ in COMPAT_ROUTES:
        assert SPEC["paths"][path][method.lower()]["tags"] == ["compat"], path
    assert any(t["name"] == "compat" for t in SPEC["tags"])


def test_aliases_pass_through_the_app_wide_middlewares(settings: Settings) -> None:
    """Registered on the app itself: a middleware added to the app sees every alias."""
    from aiohttp import web

    from app.api.app import make_app

    seen: list[str] = []

    @web.middleware
    async def witness(request: web.Request, handler: Any) -> web.StreamResponse:
        seen.append(request.path)
        return await handler(request)

    async def scenario() -> None:
        async with open_core(settings) as core:
            app = make_app(core)
            app.middlewares.append(witness)
            runner = web.AppRunner(app, shutdown_timeout=1.0)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", settings.api_port)
            try:
                await site.start()
                async with aiohttp.ClientSession(f"http://127.0.0.1:{settings.api_port}") as http:
                    for method, path, _ in COMPAT_ROUTES:
                        if method == "GET":
                            async with http.get(path) as resp:
                                assert resp.status == 200, path
            finally:
                await runner.cleanup()

    run(scenario())
    assert seen == [path for method, path, _ in COMPAT_ROUTES if method == "GET"]


@pytest.mark.parametrize("name", ["Add To Cart", "login", "3D Secure check", "!!!", "Pay-Now 2"])
def test_derived_service_names_follow_the_editor(name: str) -> None:
    editor = pytest.importorskip("app.ui.widgets.journey_editor", reason="needs PySide6")
    assert derive_service_name(name) == editor.suggest_service_name(name)


def test_the_gates_refusals_speak_the_aliases_error_shape_too(settings: Settings) -> None:
    """The security gate's own answers (415, 403, 405) on an alias path also say
    `"success": false`, the field that system's clients test; nothing is stopped."""

    async def scenario() -> None:
        async with served(settings) as (core, http):
            result = await core.run_journey(journey("Kept Co", "KeptService"))
            before = {(r.key, r.pid) for r in core.services()}
            assert result.ok and before
            path = "/api/admin/reset-ports"
            for headers, status in (
                ({}, 415),
                ({"Content-Type": "text/plain"}, 415),
                ({"Origin": "http://evil.example", "Content-Type": "application/json"}, 403),
            ):
                async with http.post(path, headers=headers) as resp:
                    body = await resp.json()
                assert (resp.status, body["success"]) == (status, False), body
            async with http.get(path) as resp:
                assert resp.status == 405 and (await resp.json())["success"] is False
                assert resp.headers["Allow"] == "POST"
            async with http.post("/api/health", headers={"Content-Type": "application/json"}) as r:
                assert "success" not in await r.json()  # our own routes keep our shape
            assert {(r.key, r.pid) for r in core.services()} == before

    run(scenario())


def test_reuse_needs_every_service_answering_a_hung_one_means_a_full_run(
    settings: Settings,
) -> None:
    """The running journey again, but one of its services is SIGSTOPped: reuse would wait on
    it (it answered after 60 s once), so the alias runs the journey in full and answers at
    once with new services."""
    body = {"journey": {"name": "Shop", "steps": [{"stepName": "Login"}, {"stepName": "Pay"}]}}

    async def scenario() -> None:
        async with served(settings) as (core, http):
            status, first = await call(http, "POST", f"{SIM}/simulate-journey", json=body)
            assert status == 200, first
            pids = check_run(first, ["LoginService", "PayService"], stopped=0)
            [hung] = [s for s in core.services() if s.service_name == "PayService"]
            os.kill(hung.pid or 0, signal.SIGSTOP)
            try:
                status, again = await asyncio.wait_for(
                    call(http, "POST", f"{SIM}/simulate-journey", json=body), 30
                )
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(hung.pid or 0, signal.SIGCONT)
            assert status == 200 and again["reused"] is False, again
            new = check_run(again, ["LoginService", "PayService"], stopped=2)
            assert not new & pids
            assert [s["status"] for s in again["journey"]["steps"]] == ["completed"] * 2

    run(scenario(), timeout=90)


def test_a_queued_alias_call_whose_client_left_is_dropped_unstarted(
    settings: Settings,
) -> None:
    """The generator gives up on a slow call: its run, still queued behind another, is dropped
    when its turn comes (nothing stopped, launched or recorded for it)."""
    slow = {
        "companyName": "Slow Co",
        "domain": "slow.com",
        "industryType": "x",
        "steps": [{"stepName": "Wait", "serviceName": "WaitService", "latencyMs": 1500}],
    }

    async def scenario() -> None:
        async with served(settings) as (core, http):
            runs_before = core.history.count()
            running = asyncio.create_task(
                call(http, "POST", "/api/journey/simulate", json={"journey": slow})
            )
            assert await until(lambda: core.busy, 10)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(
                    call(http, "POST", f"{SIM}/simulate-journey", json=GOOD), 0.3
                )
            status, _ = await running
            assert status == 200
            # Its turn came right after the slow run; a run for it would take the lock again.
            assert await until(lambda: not core.busy, 10)
            # Only the slow run (counted at its start or its end, as the machine's timing falls).
            assert core.history.count() == runs_before + 1
            assert [s.service_name for s in core.services()] == ["WaitService"]

    run(scenario())
