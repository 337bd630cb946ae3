"""Several companies through the control API: GET /api/journeys, a run's cleanup,
preserve and reuse fields, traffic per journey, stopping one journey. Real services on real
ports; every refusal is checked to have changed nothing."""

from __future__ import annotations

from typing import Any

import aiohttp

from app.core import probe
from app.core.settings import Settings
from app.core.waiting import until
from tests.api.test_api import api, call
from tests.conftest import run
from tests.helpers import alive, journey

RUN = "/api/journey/simulate"


def bank() -> dict[str, Any]:
    return journey("First Bank", "LoginService", "TransferService") | {"industryType": "Banking"}


def shop() -> dict[str, Any]:
    return journey("Acme Corp", "BrowseService", "CartService")


def customer_pids(services: list[dict[str, Any]]) -> set[int]:
    return {s["pid"] for s in services if s.get("pid")}


async def journeys(http: aiohttp.ClientSession) -> list[dict[str, Any]]:
    status, body = await call(http, "GET", "/api/journeys")
    assert status == 200 and body["count"] == len(body["journeys"]), body
    return list(body["journeys"])


def test_two_companies_listed_traffic_per_journey_and_one_stopped(settings: Settings) -> None:
    async def scenario() -> None:
        async with api(settings) as (core, _, http):
            status, first = await call(http, "POST", RUN, json={"journey": shop()})
            assert status == 200, first
            status, second = await call(
                http, "POST", RUN, json={"journey": bank(), "cleanup": "company"}
            )
            assert status == 200 and second["journeyId"] != first["journeyId"], second
            listed = await journeys(http)
            assert [j["companyName"] for j in listed] == ["Acme Corp", "First Bank"]
            assert [j["id"] for j in listed] == [first["journeyId"], second["journeyId"]]
            acme = customer_pids(listed[0]["services"])
            assert acme and all(alive(p) for p in acme)

            body = {"rate": 10, "journey": first["journeyId"]}
            status, started = await call(http, "POST", "/api/traffic/start", json=body)
            assert status == 200 and started["journey"] == first["journeyId"], started
            assert await until(lambda: core.traffic.status().completed >= 5, 15)
            status, _ = await call(http, "POST", "/api/traffic/start", json={"rate": 5})
            assert status == 200  # the newest journey's stream: two side by side
            assert await until(lambda: len(core.traffic.status().streams) == 2, 5)

            path = f"/api/journeys/{first['journeyId']}/stop"
            status, stopped = await call(http, "POST", path, json={})
            assert status == 200 and stopped["stopped"] == 2, stopped
            assert await until(lambda: not any(alive(p) for p in acme), 10)
            listening = {lst.pid for lst in probe.scan_listeners(settings.max_ports).values()}
            assert not acme & listening
            left = await journeys(http)
            assert [j["companyName"] for j in left] == ["First Bank"]
            assert left[0]["traffic"]["running"], left[0]  # the other stream goes on
            status, answer = await call(
                http, "POST", "/api/traffic/stop", json={"journey": second["journeyId"]}
            )
            assert status == 200 and not answer["running"], answer

    run(scenario())


def test_bad_run_fields_and_unknown_journeys_change_nothing(settings: Settings) -> None:
    async def scenario() -> None:
        async with api(settings) as (core, _, http):
            status, first = await call(http, "POST", RUN, json={"journey": shop()})
            assert status == 200, first
            before = {s.key: s.pid for s in core.services()}
            for extra, field in (
                ({"cleanup": "everything"}, "cleanup"),
                ({"preserve": "Acme Corp"}, "preserve"),
                ({"reuse": "sometimes"}, "reuse"),
            ):
                status, answer = await call(http, "POST", RUN, json={"journey": bank(), **extra})
                assert status == 400, answer
                assert field in [p["field"] for p in answer["problems"]], answer
            status, answer = await call(http, "POST", "/api/journeys/nope/stop", json={})
            assert status == 404, answer
            status, answer = await call(
                http, "POST", "/api/traffic/start", json={"rate": 5, "journey": "nope"}
            )
            assert status == 409, answer
            status, answer = await call(http, "POST", "/api/traffic/stop", json={"jorney": 1})
            assert status == 400 and "journey" in answer["error"], answer
            assert {s.key: s.pid for s in core.services()} == before
            assert len(await journeys(http)) == 1

    run(scenario())
