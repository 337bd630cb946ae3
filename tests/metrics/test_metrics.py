"""Every metric of GET /metrics from real runs, real traffic and real cleanups (real services on
the test ports, the real API), the alerts on cleanup failures, and the window's snapshot read
from the same registry (docs/architecture.md, "Metrics and alerts")."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from app.api.server import ApiServer
from app.core.alerts import AlertChange, AlertEvent, AlertKind
from app.core.orchestrator import Core, open_core
from app.core.settings import Settings
from app.core.waiting import until
from tests.conftest import run
from tests.helpers import journey, listen_on

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


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


async def scrape(http: aiohttp.ClientSession) -> Samples:
    async with http.get("/metrics") as resp:
        assert resp.status == 200, await resp.text()
        assert resp.content_type == "text/plain"
        text = await resp.text()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


async def post(http: aiohttp.ClientSession, path: str, body: Any = None) -> tuple[int, Any]:
    async with http.post(path, json=body if body is not None else {}) as resp:
        return resp.status, await resp.json()


def test_runs_and_cleanups_are_counted(settings: Settings) -> None:
    async def scenario() -> None:
        async with served(settings) as (core, http):
            before = await scrape(http)
            assert value(before, "bizobs_cleanups_total", trigger="run") == 0
            assert total(before, "process_cpu_seconds_total") > 0  # the process collector
            for _ in range(2):
                status, body = await post(
                    http,
                    "/api/journey/simulate-multiple",
                    {"journey": journey(), "customers": 3},
                )
                assert status == 200, body
            m = await scrape(http)
            assert value(m, "bizobs_cleanups_total", trigger="run") == 2
            assert value(m, "bizobs_cleanup_stopped_total") == 2  # the second run's two
            assert value(m, "bizobs_cleanup_duration_seconds_count") == 2
            assert value(m, "bizobs_runs_total", mode="multiple", outcome="finished") == 2
            assert value(m, "bizobs_run_phase_duration_seconds_count", phase="launch") == 2
            assert value(m, "bizobs_journeys_total", company="Acme Corp", outcome="ok") == 6
            for service in ("LoginService", "BrowseService"):
                assert value(m, "bizobs_step_requests_total", service=service, outcome="ok") == 6
                assert value(m, "bizobs_step_duration_seconds_count", service=service) == 6
                inf = value(m, "bizobs_step_duration_seconds_bucket", service=service, le="+Inf")
                assert inf == 6
            size = len(settings.ports)
            assert value(m, "bizobs_pool_size") == size
            assert total(m, "bizobs_ports") == size
            assert value(m, "bizobs_ports", state="allocated") == 2
            assert value(m, "bizobs_services", company="Acme Corp") == 2
            assert ("bizobs_export_sent_total", frozenset({("signal", "traces")})) in m

            stopped = await core.stop_all()
            assert stopped.count == 2
            assert (await post(http, "/api/ports/cleanup"))[0] == 200
            assert (await post(http, "/api/admin/ports/cleanup"))[0] == 200
            m = await scrape(http)
            assert value(m, "bizobs_cleanups_total", trigger="stop_all") == 1
            assert value(m, "bizobs_cleanups_total", trigger="sweep") == 1
            assert value(m, "bizobs_cleanups_total", trigger="compat") == 1
            assert value(m, "bizobs_cleanup_stopped_total") == 4
            assert value(m, "bizobs_ports", state="free") == size
            assert value(m, "bizobs_services", company="Acme Corp") == 0

            snap = core.metrics.snapshot()
            assert snap.cleanups_total == 5 and snap.pool_size == size
            assert dict(snap.ports_by_state)["free"] == size
            assert snap.cleanup_p50_s is not None and snap.cleanup_p95_s is not None
            assert snap.cleanup_p50_s <= snap.cleanup_p95_s
            assert snap.last_cleanup_s is not None and snap.failures == ()

    run(scenario(), timeout=90)


def test_stale_cleaned_and_restarts_are_counted(settings: Settings) -> None:
    """A service killed under the panel is swept (stale cleaned); a restart is counted."""

    async def scenario() -> None:
        async with served(settings) as (core, http):
            assert (await core.run_journey(journey("Acme Corp", "AService", "BService"))).ok
            await core.restart_service("AService")
            b = core.manager.get("BService-Acme_Corp")
            assert b is not None and b.pid is not None
            os.kill(b.pid, 9)
            assert await until(lambda: core.manager.gone(b.key), 10)
            await core.cleanup()
            m = await scrape(http)
            assert value(m, "bizobs_service_restarts_total", service="AService") == 1
            assert value(m, "bizobs_cleanup_stale_cleaned_total") == 1
            assert core.metrics.snapshot().stale_cleaned_total == 1

    run(scenario(), timeout=90)


def test_traffic_is_counted_from_its_seconds(settings: Settings) -> None:
    async def scenario() -> None:
        async with served(settings) as (core, http):
            assert (await core.run_journey(journey("Flow Co", "AService", "BService"))).ok
            await core.start_traffic(40)
            assert await until(lambda: core.traffic.status().completed >= 40, 20)
            final = await core.stop_traffic()
            m = await scrape(http)
            ok = value(m, "bizobs_journeys_total", company="Flow Co", outcome="ok")
            assert ok == final.completed + 1  # the run's one customer and every traffic one
            steps = value(m, "bizobs_step_requests_total", service="AService", outcome="ok")
            assert steps == final.completed + 1
            count = value(m, "bizobs_step_duration_seconds_count", service="BService")
            assert count == final.completed + 1

    run(scenario(), timeout=90)


def test_a_foreign_listener_in_the_way_is_an_alert_listed_and_acknowledged(
    settings: Settings,
) -> None:
    async def scenario() -> None:
        async with served(settings) as (core, http):
            seen: list[AlertEvent] = []
            core.events.alert.connect(seen.append)
            first = await core.run_journey(journey())
            port = next(s.port for s in first.services if s.service_name == "LoginService")
            await core.stop_all()
            sock = listen_on(port)  # not ours: the panel must go round it and say so
            try:
                again = await core.run_journey(journey())
                assert again.ok
                moved = next(s.port for s in again.services if s.service_name == "LoginService")
                assert moved != port
                async with http.get("/api/alerts") as resp:
                    body = await resp.json()
                assert resp.status == 200 and body["count"] == 1, body
                alert = body["alerts"][0]
                assert alert["kind"] == "foreign_listener" and alert["port"] == port
                assert alert["pid"] == os.getpid() and not alert["acknowledged"]
                assert str(moved) in alert["message"]
                assert [e.change for e in seen] == [AlertChange.RAISED]
                status, acked = await post(http, f"/api/alerts/{alert['id']}/ack")
                assert status == 200 and acked["alert"]["acknowledged"], acked
                assert core.alerts.unacknowledged() == ()
                assert (await post(http, "/api/alerts/a-999/ack"))[0] == 404
                m = await scrape(http)
                assert value(m, "bizobs_alerts_total", kind="foreign_listener") == 1
                assert value(m, "bizobs_cleanup_failures_total", reason="foreign_listener") == 1
                snap = core.metrics.snapshot()
                assert [a.kind for a in snap.failures] == [AlertKind.FOREIGN_LISTENER]
            finally:
                sock.close()

    run(scenario(), timeout=90)


def test_the_pool_alert_is_raised_once_per_crossing(settings: Settings) -> None:
    small = settings.with_(port_hi=settings.port_lo + 3)  # four ports

    async def scenario() -> None:
        async with served(small) as (core, http):
            seen: list[AlertEvent] = []
            core.events.alert.connect(seen.append)
            four = journey("Acme Corp", "AService", "BService", "CService", "DService")
            assert (await core.run_journey(four)).ok
            for _ in range(3):  # every watcher round checks: still the one alert
                core.check_pool()
            assert [(e.change, e.alert.kind) for e in seen] == [
                (AlertChange.RAISED, AlertKind.POOL_NEARLY_FULL)
            ]
            assert "100 %" in seen[0].alert.message
            await core.stop_all()
            core.check_pool()
            assert seen[-1].change is AlertChange.CLEARED
            assert (await core.run_journey(four)).ok
            assert [e.change for e in seen].count(AlertChange.RAISED) == 2
            m = await scrape(http)
            assert value(m, "bizobs_alerts_total", kind="pool_nearly_full") == 2
            assert value(m, "bizobs_cleanup_failures_total", reason="pool_nearly_full") == 0

    run(scenario(), timeout=90)


def test_the_endpoint_is_behind_the_guard(settings: Settings) -> None:
    async def scenario() -> None:
        async with served(settings) as (core, http):
            alert = core.alerts.raise_(AlertKind.KILL_FAILED, "a test alert", "nothing", "none")
            evil = {"Origin": "http://evil.example"}
            for path in ("/metrics", "/api/alerts"):
                async with http.get(path, headers=evil) as resp:
                    assert resp.status == 403, path
            async with http.get("/metrics", headers={"Host": "evil.example"}) as resp:
                assert resp.status == 403
            async with http.post("/api/alerts/a-1/ack", data=b"x") as resp:
                assert resp.status == 415  # not JSON: refused before the handler
            ack = f"/api/alerts/{alert.id}/ack"
            for headers in (evil, {"Host": "evil.example"}):  # refused, and it changes nothing
                async with http.post(ack, json={}, headers=headers) as resp:
                    assert resp.status == 403, headers
            assert [a.id for a in core.alerts.unacknowledged()] == [alert.id]

    run(scenario(), timeout=30)


def test_company_labels_are_capped(settings: Settings) -> None:
    """Beyond COMPANY_CAP distinct companies, every new one is `other`: a long demo cannot
    make the series grow without bound."""
    from app.core.metrics import COMPANY_CAP
    from app.core.traffic_stats import Tally

    async def scenario() -> None:
        async with served(settings) as (core, http):
            tally = Tally()
            tally.journey(True, 1.0, [("A", "ok", 1.0)])
            for i in range(COMPANY_CAP + 5):
                core.metrics.traffic_second(f"Company {i}", {"A": "AService"}, tally)
            m = await scrape(http)
            companies = {
                dict(labels)["company"] for (name, labels) in m if name == "bizobs_journeys_total"
            }
            assert len(companies) == COMPANY_CAP + 1 and "other" in companies
            assert value(m, "bizobs_journeys_total", company="other", outcome="ok") == 5

    run(scenario(), timeout=30)
