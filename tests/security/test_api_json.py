"""JSON in and out of the control API is RFC 8259 JSON, and every string of a journey is checked
where it is parsed: what passes validation can be written to a process, the database, an
export and a JavaScript client alike. Real core, real services, real HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.core.settings import Settings
from tests.conftest import run
from tests.helpers import journey
from tests.security.api import JSON, request, served, snapshot

SIM = "/api/journey-simulation"


def strict_json(raw: bytes) -> Any:
    """What Node's JSON.parse accepts: no NaN, Infinity or -Infinity."""

    def refuse(token: str) -> Any:
        raise ValueError(f"{token} is not JSON")

    return json.loads(raw, parse_constant=refuse)


def _body(step_extra: str) -> bytes:
    """A run body whose second step carries `step_extra` (raw JSON text) as a field."""
    data = json.dumps({"journey": journey("Victim Co", "LoginService", "PayService")})
    return data.replace('"serviceName": "PayService"', f'"serviceName": "PayService", {step_extra}')


NON_FINITE = [
    ("/api/journey/simulate", _body('"weight": NaN'), "NaN"),
    ("/api/journey/simulate", _body('"weight": Infinity'), "Infinity"),
    ("/api/journey/simulate-multiple", _body('"weight": -Infinity'), "-Infinity"),
    ("/api/journey/simulate", _body('"weight": 1e400'), "1e400"),
    ("/api/traffic/start", b'{"rate": NaN}', "NaN"),
    (f"{SIM}/simulate-journey", b'{"steps": [{"stepName": "Go"}], "additionalFields": NaN}', "NaN"),
    (f"{SIM}/simulate-multiple-journeys", b'{"customers": Infinity, "steps": []}', "Infinity"),
]


@pytest.mark.parametrize(("path", "raw", "token"), NON_FINITE, ids=[t for *_, t in NON_FINITE])
def test_non_finite_numbers_are_refused_in_every_body(
    api_settings: Settings, path: str, raw: bytes, token: str
) -> None:
    """Python's json.loads takes NaN and Infinity; JSON (and JSON.parse) does not."""

    async def scenario() -> None:
        async with served(api_settings) as (core, _, http, before):
            async with http.post(path, data=raw, headers=JSON) as resp:
                text = await resp.read()
                assert resp.status == 400, (path, resp.status, text)
            answer = strict_json(text)
            assert answer.get("ok", answer.get("success")) is False
            assert token in answer["error"] and "not JSON" in answer["error"], answer
            assert snapshot(core) == before
            async with http.get("/api/runs") as resp:
                strict_json(await resp.read())  # the history stays readable by any client

    run(scenario())


def test_no_answer_ever_carries_a_non_finite_number(
    api_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever a handler is given to answer, what goes out is JSON: a value that has no JSON
    form is an error answer (logged), never `NaN` on the wire."""

    async def scenario() -> None:
        async with served(api_settings) as (core, _, http, _before):
            monkeypatch.setattr(core.history, "runs", lambda _limit: [{"p95": float("nan")}])
            async with http.get("/api/runs") as resp:
                text = await resp.read()
                assert resp.status == 500, text
            answer = strict_json(text)
            assert answer["ok"] is False and "JSON" in answer["error"], answer

    run(scenario())


def _with_step(**fields: Any) -> dict[str, Any]:
    data = journey("Victim Co", "LoginService", "PayService")
    data["steps"][1].update(fields)
    return data


# (where, the journey, the JSON path the answer must name)
UNUSABLE: list[tuple[str, dict[str, Any], str]] = [
    ("surrogate in description", _with_step(description="pay \ud800 now"), "steps[1].description"),
    ("NUL in category", _with_step(category="a\x00b"), "steps[1].category"),
    ("surrogate in an extra field", _with_step(note="x\udfff"), "steps[1].note"),
    (
        "escape in a nested extra",
        _with_step(meta={"tags": ["ok", "bell\x07"]}),
        "steps[1].meta.tags[1]",
    ),
    ("surrogate in an extra key", _with_step(**{"k\ud801": 1}), "steps[1]"),
    (
        "surrogate in a journey field",
        {**journey("Victim Co", "LoginService"), "customerProfile": {"name": "\ud83d"}},
        "customerProfile.name",
    ),
    ("bidi override in company", journey("Acme \u202eevil", "LoginService"), "companyName"),
    ("bidi isolate in step name", _with_step(stepName="Pay \u2066x\u2069"), "steps[1].stepName"),
    (
        "zero-width space in industry",
        {**journey("A"), "industryType": "Re\u200btail"},
        "industryType",
    ),
    ("BOM in domain", {**journey("A"), "domain": "\ufeffacme.com"}, "domain"),
    ("word joiner in description", _with_step(description="a\u2060b"), "steps[1].description"),
]


@pytest.mark.parametrize(("label", "data", "field"), UNUSABLE, ids=[u[0] for u in UNUSABLE])
def test_unusable_characters_anywhere_in_a_journey_are_a_400_naming_the_field(
    api_settings: Settings, label: str, data: dict[str, Any], field: str
) -> None:
    """A lone surrogate cannot be encoded for a process, the database or an export; control,
    bidi and zero-width characters garble or disguise what an operator reads."""
    raw = json.dumps({"journey": data}).encode()  # ensure_ascii: \\ud800 travels as an escape

    async def scenario() -> None:
        async with served(api_settings) as (core, _, http, before):
            for path in ("/api/journey/simulate", f"{SIM}/simulate-journey"):
                status, answer, _ = await request(http, "POST", path, data=raw, headers=JSON)
                assert status == 400, (label, path, status, answer)
                fields = [p["field"] for p in answer["problems"]]
                # The aliases name a field where the body has it (here under "journey").
                assert field in fields or f"journey.{field}" in fields, (label, path, answer)
            assert snapshot(core) == before

    run(scenario())


# Wrongly typed fields on the aliases: refused naming the field, never replaced by a default.
COMPAT_TYPES: list[tuple[str, str, dict[str, Any], str]] = [
    ("customers as text", "simulate-multiple-journeys", {"customers": "3"}, "customers"),
    ("think time a list", "simulate-batch-chained", {"thinkTimeMs": []}, "thinkTimeMs"),
    ("company a number", "simulate-journey", {"companyName": 5}, "companyName"),
    ("company empty", "simulate-journey", {"companyName": ""}, "companyName"),
    ("domain false", "simulate-journey", {"domain": False}, "domain"),
    ("industry zero", "simulate-journey", {"industryType": 0}, "industryType"),
    ("journeyId a number", "simulate-journey", {"journeyId": 7}, "journeyId"),
    (
        "error switch text",
        "simulate-journey",
        {"errorSimulationEnabled": "no"},
        "errorSimulationEnabled",
    ),
    ("seed text", "simulate-multiple-journeys", {"seed": "x"}, "seed"),
]


@pytest.mark.parametrize(
    ("label", "route", "fields", "field"), COMPAT_TYPES, ids=[c[0] for c in COMPAT_TYPES]
)
def test_compat_wrong_types_are_a_400_naming_the_field(
    api_settings: Settings, label: str, route: str, fields: dict[str, Any], field: str
) -> None:
    body = {"steps": [{"stepName": "Login"}], **fields}

    async def scenario() -> None:
        async with served(api_settings) as (core, _, http, before):
            status, answer, _ = await request(http, "POST", f"{SIM}/{route}", json=body)
            assert status == 400, (label, status, answer)
            assert answer["success"] is False
            assert field in [p["field"] for p in answer["problems"]], (label, answer)
            assert snapshot(core) == before

    run(scenario())


def test_integral_floats_are_whole_numbers_on_both_route_families(api_settings: Settings) -> None:
    """`"customers": 3.0` is 3 on our routes (JSON Schema's integer): the aliases agree."""

    async def scenario() -> None:
        async with served(api_settings) as (_, _server, http, _before):
            steps = {"companyName": "Victim Co", "steps": [{"stepName": "Login"}]}
            status, answer, _ = await request(
                http,
                "POST",
                f"{SIM}/simulate-multiple-journeys",
                json={**steps, "customers": 3.0, "seed": 7.0},
            )
            assert status == 200, answer
            assert answer["loadTestSummary"]["customersProcessed"] == 3

    run(scenario())


def test_traffic_start_refuses_unknown_fields(api_settings: Settings) -> None:
    async def scenario() -> None:
        async with served(api_settings) as (core, _, http, before):
            status, answer, _ = await request(
                http, "POST", "/api/traffic/start", json={"rate": 5, "sed": 3}
            )
            assert status == 400, answer
            assert answer["problems"][0]["field"] == "sed"
            assert "did you mean 'seed'" in answer["problems"][0]["message"]
            assert not core.traffic.running and snapshot(core) == before

    run(scenario())
