"""No web page and no other local client can start an incident: the step service's control
route is guarded like /process (Host, Origin, JSON only, then the control credential over the
raw bytes, a fresh `issuedAt` and an unseen nonce), and the API's incident and scenario routes
like every API route. Each refusal is checked to have changed nothing with real requests
afterwards: a signed `list` to the service and a customer through the chain.

Both launchers: the chain secret, the control credential's key, reaches a forked service over
the fork server's socket and an exec'd one over a pipe."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import aiohttp
import pytest

from app.api.server import ApiServer
from app.core.orchestrator import Core
from app.core.settings import Settings
from app.core.simulation import Simulator, make_customers
from app.service.protocol import (
    CONTROL_HEADER,
    CONTROL_PATH,
    control_credential,
    credential,
)
from tests.conftest import run
from tests.incidents.support import fleet, service

pytestmark = pytest.mark.both_launchers
EVIL = "http://evil.example"
JSON = "application/json"


def message(op: str = "start", age_s: float = 0.0, **extra: Any) -> bytes:
    """A control message as the panel makes it (`age_s` ago)."""
    body: dict[str, Any] = {
        "v": 2,
        "op": op,
        "issuedAt": time.monotonic() - age_s,
        "nonce": secrets.token_hex(16),
        **extra,
    }
    if op == "start" and "incident" not in body:
        body["incident"] = {
            "id": f"inc-{secrets.token_hex(4)}",
            "kind": "errors",
            "rate": 1.0,
            "durationS": 30,
            "endsAt": time.monotonic() + 30,
        }
    return json.dumps(body).encode()


async def post(
    port: int, data: bytes, headers: dict[str, str], path: str = CONTROL_PATH
) -> tuple[int, Any]:
    """One raw POST: exactly these headers (no automatic Content-Type)."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"http://127.0.0.1:{port}{path}",
            data=data,
            headers=headers,
            skip_auto_headers={"Content-Type"},
        ) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


async def nothing_active(core: Core, port: int) -> None:
    """A signed `list` answers no incident, and a real customer goes through the chain with
    no incident on any hop and no failure."""
    raw = message("list")
    status, answer = await post(
        port,
        raw,
        {"Content-Type": JSON, CONTROL_HEADER: control_credential(core.manager.chain_secret, raw)},
    )
    assert status == 200 and answer["incidents"] == [], answer
    chain = core.chain_for(core.journeys()[0].journey)
    [customer] = make_customers(1, "example.com")
    result = await Simulator(core._hop_client()).customer_journey(chain, customer, 0.0)
    assert result.ok, result
    assert all(s.span and "incidentId" not in s.span for s in result.steps), result.steps
    assert core.incidents.active() == []


def test_the_control_route_refuses_every_caller_but_the_panel(settings: Settings) -> None:
    async def scenario() -> None:
        async with fleet(settings, rate=None) as core:
            b = service(core, "BService")
            secret = core.manager.chain_secret
            raw = message()
            good = control_credential(secret, raw)
            wrong_key = hmac.new(b"x" * 32, b"control\n" + raw, hashlib.sha256).hexdigest()
            attempts: list[tuple[dict[str, str], int, str]] = [
                # A cross-origin "simple" request a page can send without a pre-flight.
                (
                    {"Content-Type": "text/plain", "Origin": EVIL, CONTROL_HEADER: good},
                    403,
                    "origin",
                ),
                ({"Content-Type": JSON, "Origin": EVIL, CONTROL_HEADER: good}, 403, "origin"),
                ({"Content-Type": "text/plain", CONTROL_HEADER: good}, 415, JSON),
                ({"Content-Type": JSON, "Host": "evil.example", CONTROL_HEADER: good}, 403, "host"),
                ({"Content-Type": JSON}, 403, "credential"),
                ({"Content-Type": JSON, CONTROL_HEADER: wrong_key}, 403, "credential"),
                ({"Content-Type": JSON, CONTROL_HEADER: "é" * 64}, 403, "credential"),
                # A chain credential is no control credential (domain separation).
                (
                    {"Content-Type": JSON, CONTROL_HEADER: credential(secret, 0, raw)},
                    403,
                    "credential",
                ),
            ]
            for headers, status, said in attempts:
                got, answer = await post(b.port, raw, headers)
                assert got == status, (headers, got, answer)
                assert said in answer["error"]["message"].lower(), answer
            # Signed, but made long ago: a replay later does nothing.
            old = message(age_s=10.0)
            got, answer = await post(
                b.port, old, {"Content-Type": JSON, CONTROL_HEADER: control_credential(secret, old)}
            )
            assert got == 403 and "too old" in answer["error"]["message"], answer
            # A message signed over other bytes: the credential is over the raw body.
            tampered = raw.replace(b'"rate": 1.0', b'"rate": 0.5')
            got, _ = await post(b.port, tampered, {"Content-Type": JSON, CONTROL_HEADER: good})
            assert got == 403
            await nothing_active(core, b.port)
            # The genuine message once, then replayed at once: the replay does nothing.
            headers = {"Content-Type": JSON, CONTROL_HEADER: good}
            got, answer = await post(b.port, raw, headers)
            assert got == 201, answer
            incident_id = answer["incident"]["id"]
            end = message("end", id=incident_id)
            got, _ = await post(
                b.port, end, {"Content-Type": JSON, CONTROL_HEADER: control_credential(secret, end)}
            )
            assert got == 200
            got, answer = await post(b.port, raw, headers)
            assert got == 403 and "replay" in answer["error"]["message"], answer
            await nothing_active(core, b.port)

    run(scenario(), timeout=90)


def test_the_api_refuses_cross_origin_and_non_json_incident_requests(settings: Settings) -> None:
    """POST /api/incidents, DELETE /api/incidents and POST /api/scenarios/run from a page (an
    Origin, text/plain, a rebinding Host) are refused and start nothing; the same request
    from a local client of the panel works."""
    body = json.dumps({"service": "BService", "kind": "errors"}).encode()
    scenario_body = json.dumps({"name": "payment-outage"}).encode()

    async def scenario() -> None:
        async with fleet(settings, rate=None) as core:
            server = ApiServer(core, "127.0.0.1", settings.api_port)
            await server.start()
            try:
                b = service(core, "BService")
                for path, data in (
                    ("/api/incidents", body),
                    ("/api/scenarios/run", scenario_body),
                ):
                    for headers, status in (
                        ({"Content-Type": "text/plain", "Origin": EVIL}, 403),
                        ({"Content-Type": JSON, "Origin": EVIL}, 403),
                        ({"Content-Type": "text/plain"}, 415),
                        ({"Content-Type": JSON, "Host": "evil.example"}, 403),
                    ):
                        got, answer = await post(settings.api_port, data, headers, path)
                        assert got == status, (path, headers, answer)
                        assert answer["ok"] is False
                await nothing_active(core, b.port)
                async with aiohttp.ClientSession() as http:
                    url = f"http://127.0.0.1:{settings.api_port}/api/incidents"
                    async with http.delete(url, headers={"Origin": EVIL}) as resp:
                        assert resp.status == 403
                    async with http.get(url, headers={"Origin": EVIL}) as resp:
                        assert resp.status == 403
                got, answer = await post(
                    settings.api_port, body, {"Content-Type": JSON}, "/api/incidents"
                )
                assert got == 201 and answer["service"] == b.key, answer
                async with aiohttp.ClientSession() as http:
                    async with http.delete(url, headers={"Origin": EVIL}) as resp:
                        assert resp.status == 403
                    assert len(core.incidents.active()) == 1  # a page could not clear it
                    async with http.delete(url) as resp:
                        assert resp.status == 200
                assert core.incidents.active() == []
            finally:
                await server.stop()

    run(scenario(), timeout=90)
