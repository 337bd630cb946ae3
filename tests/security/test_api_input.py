"""Input that passes a first look but used to fail later: refused with 400 before anything is
stopped, and no handler ever answers 500 text/plain."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from app.core.settings import Settings
from tests.conftest import run
from tests.helpers import journey
from tests.security.api import JSON, request, served, snapshot


def test_json_nested_ten_thousand_deep_is_a_400_and_stops_nothing(api_settings: Settings) -> None:
    deep = b'{"journey": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    deep_object = b'{"journey": ' + b'{"a":' * 10_000 + b"1" + b"}" * 10_000 + b"}"

    async def scenario() -> None:
        async with served(api_settings) as (core, _, http, before):
            for raw in (deep, deep_object):
                for path in ("/api/journey/simulate", "/api/journey/simulate-multiple"):
                    status, answer, hdrs = await request(http, "POST", path, data=raw, headers=JSON)
                    assert status == 400, (path, status, answer)
                    assert hdrs["Content-Type"].startswith("application/json")
                    assert "nested" in answer["error"], answer
            assert snapshot(core) == before

    run(scenario())


@pytest.mark.parametrize("limit", ["²", "٣", "１０", "1_0", " 10", "+5", "0", "501", "9" * 5000])
def test_runs_limit_must_be_ascii_decimal(api_settings: Settings, limit: str) -> None:
    async def scenario() -> None:
        async with served(api_settings) as (_, _server, http, _before):
            status, answer, _ = await request(http, "GET", "/api/runs", params={"limit": limit})
            assert status == 400, (limit, status, answer)
            assert "limit" in answer["error"]
            status, answer, _ = await request(http, "GET", "/api/runs", params={"limit": "10"})
            assert status == 200 and len(answer["runs"]) == 1

    run(scenario())


def test_unexpected_errors_are_json_500_and_logged(
    api_settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug in a handler (here: history failing) is a JSON 500 with a message, and logged."""

    def broken(*_: Any) -> Any:
        raise RuntimeError("history exploded")

    async def scenario() -> None:
        async with served(api_settings) as (core, _, http, before):
            monkeypatch.setattr(core.history, "runs", broken)
            monkeypatch.setattr(core.history, "get", broken)
            for path in ("/api/runs", "/api/runs/run-x"):
                async with http.get(path) as resp:
                    assert resp.status == 500, path
                    assert resp.content_type == "application/json", await resp.text()
                    answer = await resp.json()
                assert answer["ok"] is False and "history exploded" in answer["error"]
            assert snapshot(core)[0] == before[0]

    with caplog.at_level(logging.ERROR, logger="app.api"):
        run(scenario())
    assert any("history exploded" in r.getMessage() or r.exc_info for r in caplog.records)


def test_integral_floats_are_whole_numbers(api_settings: Settings) -> None:
    """JSON Schema calls 3.0 an integer; so does the API (the OpenAPI document says integer)."""

    async def scenario() -> None:
        async with served(api_settings) as (_, _server, http, _before):
            body = {
                "customers": 3.0,
                "concurrency": 2.0,
                "seed": 7.0,
                "journey": journey("Victim Co", "LoginService", "PayService"),
            }
            status, answer, _ = await request(
                http, "POST", "/api/journey/simulate-multiple", json=body
            )
            assert status == 200, answer
            assert answer["summary"]["customers"] == 3
            body["customers"] = 2.5
            status, answer, _ = await request(
                http, "POST", "/api/journey/simulate-multiple", json=body
            )
            assert status == 400 and answer["problems"][0]["field"] == "customers"

    run(scenario())
