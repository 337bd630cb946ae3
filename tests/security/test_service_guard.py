"""A step service is a trust boundary of its own: no web page and no other local client can make
it call anything, and only the panel can start a chain.

The attacks are the ones a page on evil.example can send without a pre-flight (a CORS "simple"
POST to a step service whose `hops[1]` names the control API) and what a local client could
try. Real core, real API, real services (both launchers: the secret reaches a forked service
over the fork server's socket, an exec'd one over a pipe); every refusal is checked to have
changed nothing: services and pids, runs, traffic."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from app.api.server import ApiServer
from app.core.chain import Chain
from app.core.orchestrator import Core, open_core
from app.core.settings import EssentialService, Settings
from app.service.protocol import CHAIN_HEADER, HOP_HEADER, Hop, credential, hop_url
from tests.conftest import run
from tests.helpers import journey

# How the secret reaches a service differs by launcher (fork request, pipe): both, always.
pytestmark = pytest.mark.both_launchers
EVIL = "http://evil.example"
ESSENTIAL = EssentialService("DiscoveryService", "Dynatrace")


def _api_hop(url: str) -> dict[str, Any]:
    return {"url": url, "stepName": "x", "serviceName": "x", "journey": journey("Evil Co")}


def relay_bodies(api: str) -> list[tuple[str, dict[str, Any]]]:
    """The relay attack: hop 0 is the service itself, hop 1 a route of the control API."""
    return [
        (path, {"hops": [{"serviceName": "DiscoveryService"}, _api_hop(f"{api}{path}")]})
        for path in (
            "/api/services/stop-all",
            "/api/journey/simulate",
            "/api/traffic/start",
        )
    ]


State = tuple[frozenset[tuple[str, int | None]], int, bool, float]


def state(core: Core) -> State:
    """What an attack could change: our services and pids, the runs, traffic and its rate."""
    services = frozenset((s.key, s.pid) for s in core.services())
    return services, core.history.count(), core.traffic.running, core.traffic.rate


@asynccontextmanager
async def fleet(settings: Settings) -> AsyncIterator[tuple[Core, str, int]]:
    """An API, the essential service on the first pool port, and a journey with traffic."""
    settings = settings.with_(essential_services=(ESSENTIAL,))
    async with open_core(settings) as core:
        server = ApiServer(core, "127.0.0.1", settings.api_port)
        await server.start()
        try:
            result = await core.run_journey(journey("Victim Co", "LoginService", "PayService"))
            assert result.ok, result.error
            await core.start_traffic(2)
            [essential] = [s for s in core.services() if s.essential]
            assert essential.port == settings.port_lo
            yield core, server.url, essential.port
        finally:
            await core.stop_traffic()
            await server.stop()


async def post(
    port: int, data: bytes, headers: dict[str, str], host: str | None = None
) -> tuple[int, Any]:
    """One raw POST to a step service's /process: exactly these headers (no automatic
    Content-Type), answered as JSON whatever it claims."""
    url = f"http://127.0.0.1:{port}/process"
    sent = dict(headers) | ({"Host": host} if host else {})
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=data, headers=sent, skip_auto_headers={"Content-Type"}) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


def test_a_web_page_cannot_relay_through_a_step_service(settings: Settings) -> None:
    """The reproduced attack: a cross-origin "simple" POST (text/plain, Origin: evil.example) to
    the essential service at the first pool port, whose hops[1] is the API's stop-all, a run
    route or traffic/start. Every variant a page or a local client can send is refused and
    changes nothing: no service stops, no journey replaces the running one, no traffic."""

    async def scenario() -> None:
        async with fleet(settings) as (core, api, port):
            before = state(core)
            for path, body in relay_bodies(api):
                raw = json.dumps(body).encode()
                attempts = [
                    ({"Content-Type": "text/plain", "Origin": EVIL}, 403, "origin"),
                    ({"Content-Type": "application/json", "Origin": EVIL}, 403, "origin"),
                    ({"Content-Type": "text/plain"}, 415, "application/json"),
                    ({"Content-Type": "application/x-www-form-urlencoded"}, 415, "json"),
                    ({"Content-Type": "application/json"}, 403, "credential"),
                    ({"Content-Type": "application/json", HOP_HEADER: "0"}, 403, "credential"),
                ]
                for headers, status, said in attempts:
                    got, answer = await post(port, raw, headers)
                    assert got == status, (path, headers, got, answer)
                    assert said in answer["error"]["message"].lower(), answer
                    assert answer["status"] == "failed"
                assert state(core) == before, path
            # A page on a rebinding name (Host evil.example) is refused before anything else.
            got, _ = await post(port, b"{}", {"Content-Type": "application/json"}, "evil.example")
            assert got == 403
            assert state(core) == before

    run(scenario())


def test_forged_credentials_are_refused_and_nothing_is_forwarded(settings: Settings) -> None:
    """A credential made with another key, for another hop index, or for other bytes is 403;
    the body is not even parsed, and nothing reaches the next hop."""

    async def scenario() -> None:
        async with fleet(settings) as (core, _, port), captured(settings.port_hi) as seen:
            before = state(core)
            chain = running_chain(core)
            body, headers, _ = with_capture(chain, settings.port_hi).request({"id": "c"})
            forged = [
                credential(secrets.token_bytes(32), 0, body),  # another panel's key
                credential(core.manager.chain_secret, 1, body),  # another hop
                credential(core.manager.chain_secret, 0, body + b" "),  # other bytes
                "00" * 32,
                "not-hex-é",
            ]
            first = chain.hops[0]["url"].rsplit(":", 1)[1].split("/")[0]
            for mac in forged:
                got, answer = await post(int(first), body, headers | {CHAIN_HEADER: mac})
                assert got == 403 and "credential" in answer["error"]["message"], answer
            assert seen == [] and state(core) == before
            # The genuine one passes, and reaches the capture at the end of the chain.
            got, answer = await post(int(first), body, headers)
            assert got == 200 and answer["status"] == "ok", answer
            assert len(seen) == 1
            assert port == settings.port_lo  # the essential service took the first port

    run(scenario())


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{api}/api/services/stop-all",  # the API: never a hop
        "http://127.0.0.1:{api}/process",
        "http://127.0.0.1:{outside}/process",  # outside the pool
        "http://localhost:{inside}/process",  # another spelling of a pool port
        "http://127.0.0.1:{inside}/other",  # another path
        "http://evil.example:{inside}/process",  # another host
        "http://127.0.0.1:{inside}@evil.example/process",
    ],
)
def test_a_signed_chain_still_cannot_leave_the_pool(settings: Settings, target: str) -> None:
    """Even a request signed with the panel's own key is refused, before a byte is forwarded,
    when any hop is not http://127.0.0.1:<pool port>/process or names the API's port."""
    outside = settings.port_hi + 1

    async def scenario() -> None:
        async with fleet(settings) as (core, _, _), captured(outside) as seen:
            before = state(core)
            chain = running_chain(core)
            url = target.format(api=settings.api_port, outside=outside, inside=settings.port_hi)
            bad = Hop(**(chain.hops[1] | {"url": url}))
            signed = replace(chain, hops=(chain.hops[0], bad))
            body, headers, _ = signed.request({"id": "c"})
            got, answer = await post(_port(chain.first_url), body, headers)
            assert got == 403 and "pool port" in answer["error"]["message"], answer
            assert seen == [] and state(core) == before

    run(scenario())


def test_health_is_guarded_like_every_route(settings: Settings) -> None:
    """A page cannot read a service's identity either: Origin and Host are checked on GET."""

    async def scenario() -> None:
        async with fleet(settings) as (_core, _, port), aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{port}/health"
            async with http.get(url, headers={"Origin": EVIL}) as resp:
                assert resp.status == 403 and not _cors(resp.headers)
            async with http.get(url, headers={"Host": f"evil.example:{port}"}) as resp:
                assert resp.status == 403
            async with http.get(url, headers={"Host": f"localhost:{port}"}) as resp:
                assert resp.status == 200 and (await resp.json())["port"] == port
            async with http.put(url, json={}) as resp:  # errors are JSON, 405 included
                assert resp.status == 405 and (await resp.json())["status"] == "failed"

    run(scenario())


# -- helpers ------------------------------------------------------------------------------
def running_chain(core: Core) -> Chain:
    journeys = [s for s in core.services() if not s.essential]
    assert journeys
    from app.core.journeys import parse_journey

    return core.chain_for(parse_journey(journey("Victim Co", "LoginService", "PayService")))


def with_capture(chain: Chain, port: int) -> Chain:
    capture = Hop(
        url=hop_url(port),
        stepName="capture",
        serviceName="capture",
        latencyMs=0.0,
        errorRate=0.0,
        errorType="internal",
        fields={},
    )
    return replace(chain, hops=(*chain.hops, capture))


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def _cors(headers: Any) -> list[str]:
    return [h for h in headers if h.lower().startswith("access-control-allow")]


@asynccontextmanager
async def captured(port: int) -> AsyncIterator[list[bytes]]:
    """A listener on `port` that records every request body it gets (answering as a last hop
    would), so a test can prove nothing was forwarded to it."""
    seen: list[bytes] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(await request.read())
        return web.json_response({"serviceName": "capture", "status": "ok", "downstream": None})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield seen
    finally:
        await runner.cleanup()
