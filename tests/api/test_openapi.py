"""The OpenAPI document: valid, served address, every status the API answers, and request
schemas that reject what the server rejects."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate

from app.core.orchestrator import open_core
from app.core.settings import Settings
from tests.api.test_api import MAX_BODY, api, call
from tests.conftest import run
from tests.helpers import journey

JSON = {"Content-Type": "application/json"}


def _served_spec(settings: Settings) -> dict[str, Any]:
    async def scenario() -> dict[str, Any]:
        async with api(settings) as (_, url, http):
            status, body = await call(http, "GET", "/api/openapi.json")
            assert status == 200
            assert body["servers"] == [{"url": url}]
            return body

    return run(scenario())


def test_document_is_valid_openapi_with_the_served_address(settings: Settings) -> None:
    spec = _served_spec(settings)
    validate(spec)
    assert spec["servers"][0]["url"] == f"http://127.0.0.1:{settings.api_port}"
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert spec["security"] == [{}]  # loopback: no token


def test_allow_remote_document_requires_the_bearer_token(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.api.server import ApiServer

    monkeypatch.setenv("BIZOBS_API_TOKEN", "t0ken-t0ken-t0ken")

    async def scenario() -> dict[str, Any]:
        async with open_core(settings) as core:
            server = ApiServer(core, "127.0.0.1", settings.api_port, allow_remote=True)
            try:
                await server.start()
                import aiohttp

                headers = {"Authorization": "Bearer t0ken-t0ken-t0ken"}
                async with (
                    aiohttp.ClientSession(base_url=server.url, headers=headers) as http,
                    http.get("/api/openapi.json") as resp,
                ):
                    return await resp.json()
            finally:
                await server.stop()

    spec = run(scenario())
    validate(spec)
    assert spec["security"] == [{"bearer": []}]


# (method, path, the operation's path, request options, status); all answered by the server.
OBSERVED: list[tuple[str, str, str, dict[str, Any], int]] = [
    ("GET", "/api/runs?limit=x", "/api/runs", {}, 400),
    ("GET", "/api/runs/run-nope", "/api/runs/{run_id}", {}, 404),
    ("POST", "/api/traffic/start", "/api/traffic/start", {"json": {"rate": 0}}, 400),
    ("POST", "/api/traffic/start", "/api/traffic/start", {"json": {"rate": 5}}, 409),
    ("GET", "/api/traffic/status?series=x", "/api/traffic/status", {}, 400),
    ("GET", "/api/journey/simulate", "/api/journey/simulate", {}, 405),
    ("POST", "/api/health", "/api/health", {"headers": JSON}, 405),
    ("POST", "/api/services/stop-all", "/api/services/stop-all", {}, 415),
    ("POST", "/api/ports/cleanup", "/api/ports/cleanup", {"data": b"x"}, 415),
    (
        "GET",
        "/api/ports/status",
        "/api/ports/status",
        {"headers": {"Origin": "http://evil.example"}},
        403,
    ),
    (
        "GET",
        "/api/services/status",
        "/api/services/status",
        {"headers": {"Host": "evil.example"}},
        403,
    ),
    (
        "POST",
        "/api/journey/simulate",
        "/api/journey/simulate",
        {"data": b'{"journey": "' + b"x" * MAX_BODY + b'"}', "headers": JSON},
        413,
    ),
    (
        "POST",
        "/api/journey/simulate",
        "/api/journey/simulate",
        {"json": {"journey": journey("A", *[f"S{i}" for i in range(30)])}},
        400,
    ),
]


def test_every_status_answered_is_documented_for_its_operation(settings: Settings) -> None:
    async def scenario() -> dict[str, Any]:
        async with api(settings) as (_, _url, http):
            _, spec = await call(http, "GET", "/api/openapi.json")
            for method, path, op_path, kw, expected in OBSERVED:
                async with http.request(method, path, **kw) as resp:
                    assert resp.status == expected, (method, path, await resp.text())
                    assert resp.content_type == "application/json", (method, path)
                    if expected == 405:
                        allowed = set(resp.headers["Allow"].split(","))
                        assert allowed == {m.upper() for m in spec["paths"][op_path]}
                ops = spec["paths"][op_path]
                op = ops.get(method.lower()) or next(iter(ops.values()))
                assert str(expected) in op["responses"], (method, path, expected)
            return spec

    spec = run(scenario())
    every = {"400", "403", "405", "500"}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert every <= set(op["responses"]), (path, method)
            if method == "post":
                assert "415" in op["responses"], path
    for path in ("/api/journey/simulate", "/api/journey/simulate-multiple"):
        assert {"409", "413", "503"} <= set(spec["paths"][path]["post"]["responses"])


def _body_validator(spec: dict[str, Any], path: str) -> jsonschema.Draft202012Validator:
    schema = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return jsonschema.Draft202012Validator({**schema, "components": spec["components"]})


def _with(company: str = "Acme Corp", **fields: Any) -> dict[str, Any]:
    data = journey(company)
    data.update(fields)
    return data


REJECTED: list[tuple[str, str, dict[str, Any]]] = [
    ("company of blanks", "/api/journey/simulate", {"journey": _with("   ")}),
    ("company of punctuation", "/api/journey/simulate", {"journey": _with("!!! ???")}),
    ("domain not a name", "/api/journey/simulate", {"journey": _with(domain="not a domain")}),
    ("domain with a slash", "/api/journey/simulate", {"journey": _with(domain="a.com/x")}),
    ("industry of blanks", "/api/journey/simulate", {"journey": _with(industryType=" ")}),
    (
        "step name of blanks",
        "/api/journey/simulate",
        {"journey": _with(steps=[{"stepName": "  ", "serviceName": "AService"}])},
    ),
    (
        "several customers on simulate",
        "/api/journey/simulate",
        {"customers": 3, "journey": _with()},
    ),
    (
        "more steps than the pool",
        "/api/journey/simulate",
        {"journey": journey("A", *[f"S{i}" for i in range(30)])},
    ),
    (
        "customers above the limit",
        "/api/journey/simulate-multiple",
        {"customers": 10**9, "journey": _with()},
    ),
]


def test_requests_the_server_rejects_are_invalid_by_the_schema(settings: Settings) -> None:
    async def scenario() -> dict[str, Any]:
        async with api(settings) as (_, _url, http):
            _, spec = await call(http, "GET", "/api/openapi.json")
            for label, path, body in REJECTED:
                status, answer = await call(http, "POST", path, json=body)
                assert status == 400, (label, status, answer)
            return spec

    spec = run(scenario())
    for label, path, body in REJECTED:
        assert not _body_validator(spec, path).is_valid(body), label
    good = {"customers": 3.0, "journey": journey()}
    assert _body_validator(spec, "/api/journey/simulate-multiple").is_valid(good)
