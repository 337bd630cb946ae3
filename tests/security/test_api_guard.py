"""The control API cannot be driven by a web page: Host, Origin, pre-flight, Content-Type and,
with --allow-remote, a bearer token. Real core, real services, real HTTP; every refusal is
checked to have changed nothing (services, pids, ports, run history)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from app.core.settings import Settings
from tests.conftest import run
from tests.helpers import ServeProcess, journey
from tests.security.api import EVIL, JSON, assert_no_cors, request, served, snapshot

SIMPLE_BODIES = [
    ("text/plain", b'{"journey": {}}'),
    ("application/x-www-form-urlencoded", b"journey=x"),
    ("multipart/form-data; boundary=b", b"--b\r\n\r\nx\r\n--b--\r\n"),
]
SIM_COMPAT = "/api/journey-simulation"
TARGETS = ["/api/services/stop-all", "/api/journey/simulate", "/api/ports/cleanup"]


def test_cross_origin_simple_posts_are_refused_and_change_nothing(api_settings: Settings) -> None:
    """What a page on evil.example can send without a pre-flight: all refused, nothing runs."""

    async def scenario() -> None:
        async with served(api_settings) as (core, _, http, before):
            body = {"journey": journey("Evil Co", "EvilService")}
            for path in TARGETS:
                for ctype, raw in SIMPLE_BODIES:
                    headers = {"Origin": EVIL, "Content-Type": ctype}
                    status, answer, hdrs = await request(
                        http, "POST", path, data=raw, headers=headers
                    )
                    assert status == 403, (path, ctype, status, answer)
                    assert answer["ok"] is False and "origin" in answer["error"].lower()
                    assert_no_cors(hdrs)
                # Even a JSON body (a page could only send it after a pre-flight) is refused.
                status, _, _ = await request(
                    http, "POST", path, json=body, headers={"Origin": EVIL}
                )
                assert status == 403, path
                assert snapshot(core) == before, path

    run(scenario())


def test_simple_posts_without_origin_need_json_and_change_nothing(api_settings: Settings) -> None:
    """A form or text/plain POST (the browser's "simple" requests) gets 415, even body-less."""

    async def scenario() -> None:
        async with served(api_settings) as (core, _, http, before):
            for path in TARGETS:
                for ctype, raw in SIMPLE_BODIES:
                    status, answer, _ = await request(
                        http, "POST", path, data=raw, headers={"Content-Type": ctype}
                    )
                    assert status == 415, (path, ctype, status, answer)
                    assert "application/json" in answer["error"]
                status, _, _ = await request(http, "POST", path)  # no body, no Content-Type
                assert status == 415, path
                assert snapshot(core) == before, path
            # The same origin (a page served by this very address) may send JSON.
            same = {"Origin": f"http://127.0.0.1:{api_settings.api_port}", **JSON}
            status, answer, _ = await request(http, "POST", "/api/ports/cleanup", headers=same)
            assert status == 200 and answer["ok"], answer
            assert snapshot(core) == before

    run(scenario())


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:{port}",
        "127.0.0.1.evil.example:{port}",
        "127.0.0.1:{other}",
        "localhost:{other}",
        "127.0.0.2:{port}",
        "[::2]:{port}",
        "",
    ],
)
def test_foreign_host_is_refused_and_changes_nothing(api_settings: Settings, host: str) -> None:
    """DNS rebinding: a name the attacker controls, resolved to 127.0.0.1, is not our Host."""
    host = host.format(port=api_settings.api_port, other=api_settings.api_port + 1000)

    async def scenario() -> None:
        async with served(api_settings) as (core, _, http, before):
            for method, path in [("GET", "/api/services/status"), ("GET", "/api/health")] + [
                ("POST", p) for p in TARGETS
            ]:
                kw: dict[str, Any] = {"headers": {"Host": host, **JSON}}
                if path.startswith("/api/journey"):
                    kw["json"] = {"journey": journey("Evil Co", "EvilService")}
                status, answer, hdrs = await request(http, method, path, **kw)
                assert status in (400, 403), (host, path, status, answer)
                assert answer["ok"] is False and "host" in answer["error"].lower()
                assert_no_cors(hdrs)
            assert snapshot(core) == before

    run(scenario())


def test_request_without_host_header_is_refused(api_settings: Settings) -> None:
    """HTTP/1.0 allows no Host; without one we cannot tell a rebinding page from a client."""

    async def scenario() -> None:
        async with served(api_settings) as (core, _, _http, before):
            reader, writer = await asyncio.open_connection("127.0.0.1", api_settings.api_port)
            try:
                writer.write(
                    b"POST /api/services/stop-all HTTP/1.0\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 0\r\n\r\n"
                )
                await writer.drain()
                answer = await asyncio.wait_for(reader.read(), 10)
            finally:
                writer.close()
            assert answer.startswith(b"HTTP/1.0 400") or answer.startswith(b"HTTP/1.1 400"), answer
            assert b'"ok": false' in answer and b"Host" in answer
            assert snapshot(core) == before

    run(scenario())


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}"])
def test_loopback_hosts_and_same_origin_are_accepted(api_settings: Settings, host: str) -> None:
    host = host.format(port=api_settings.api_port)

    async def scenario() -> None:
        async with served(api_settings) as (_, _server, http, _before):
            origin = f"http://{host.lower()}"
            headers = {"Host": host, "Origin": origin}
            status, answer, hdrs = await request(http, "GET", "/api/health", headers=headers)
            assert status == 200 and answer["ok"], answer
            assert_no_cors(hdrs)

    run(scenario())


def test_ipv6_loopback_host_is_accepted(api_settings: Settings) -> None:
    async def scenario() -> None:
        async with served(api_settings) as (_, _server, http, _before):
            headers = {"Host": f"[::1]:{api_settings.api_port}"}
            status, answer, _ = await request(http, "GET", "/api/health", headers=headers)
            assert status == 200 and answer["ok"], answer

    run(scenario())


@pytest.mark.parametrize("origin", [EVIL, "null", "http://127.0.0.1:1", "https://127.0.0.1:{port}"])
def test_preflight_is_refused_without_cors_headers(api_settings: Settings, origin: str) -> None:
    """The pre-flight a page needs before a JSON POST is refused, and grants nothing."""
    origin = origin.format(port=api_settings.api_port)

    async def scenario() -> None:
        async with served(api_settings) as (core, _, http, before):
            for path in TARGETS:
                headers = {
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-type",
                }
                status, answer, hdrs = await request(http, "OPTIONS", path, headers=headers)
                assert status == 403, (origin, path, status, answer)
                assert answer["ok"] is False
                assert_no_cors(hdrs)
                status, _, hdrs = await request(
                    http, "GET", "/api/services/status", headers={"Origin": origin}
                )
                assert status == 403, origin  # a page cannot read our state either
                assert_no_cors(hdrs)
            assert snapshot(core) == before

    run(scenario())


def test_allow_remote_requires_the_bearer_token(
    api_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "s3cret-token-for-the-test"
    monkeypatch.setenv("BIZOBS_API_TOKEN", token)

    async def scenario() -> None:
        async with served(api_settings, allow_remote=True) as (core, server, http, before):
            assert server.token == token and not server.token_generated
            wrong = [
                {},
                {"Authorization": "Bearer nope"},
                {"Authorization": f"Basic {token}"},
                {"Authorization": f"Bearer {token}x"},
                {"Authorization": "Bearer é"},
            ]
            for auth in wrong:
                for method, path in [("GET", "/api/services/status"), ("POST", TARGETS[0])]:
                    status, answer, hdrs = await request(
                        http, method, path, headers={**auth, **JSON}
                    )
                    assert status == 401, (auth, path, status, answer)
                    assert hdrs["WWW-Authenticate"].startswith("Bearer")
                    assert answer["ok"] is False
            assert snapshot(core) == before
            good = {"Authorization": f"Bearer {token}", **JSON}
            status, answer, _ = await request(http, "GET", "/api/health", headers=good)
            assert status == 200 and answer["ok"]
            status, answer, _ = await request(http, "POST", TARGETS[0], headers=good)
            assert status == 200 and answer["stopped"] == 2
            assert core.services() == []

    run(scenario())


def test_serve_allow_remote_generates_and_prints_a_token_once(api_settings: Settings) -> None:
    env = {"BIZOBS_API_TOKEN": ""}
    server = ServeProcess(api_settings, **env).start("--allow-remote")
    try:
        printed = [line for line in server.output if "token" in line.lower()]
        assert len(printed) == 1, server.output
        token = printed[0].split()[-1]
        assert len(token) >= 32
        answer = server.call("GET", "/api/health")
        assert answer["httpStatus"] == 401
        server.token = token
        assert server.call("GET", "/api/health")["ok"] is True
        assert server.call("POST", "/api/services/stop-all")["ok"] is True
    finally:
        out = server.stop()
    assert out.count(token) == 1  # printed once, never repeated


def test_routes_added_after_make_app_are_guarded_too(api_settings: Settings) -> None:
    """Other modules add routes to the app make_app returns: the gate covers them as well."""
    from aiohttp import web

    from app.api.app import make_app
    from app.api.security import Guard
    from app.core.orchestrator import open_core

    calls: list[str] = []

    async def later(request: web.Request) -> web.Response:
        calls.append(request.method)
        return web.json_response({"ok": True})

    async def scenario() -> None:
        async with open_core(api_settings) as core:
            app = make_app(core, Guard("127.0.0.1", api_settings.api_port))
            app.router.add_post("/api/later", later)
            runner = web.AppRunner(app)
            await runner.setup()
            try:
                await web.TCPSite(runner, "127.0.0.1", api_settings.api_port).start()
                url = f"http://127.0.0.1:{api_settings.api_port}"
                async with aiohttp.ClientSession(base_url=url) as http:
                    refused = [
                        ({"Origin": EVIL, **JSON}, 403),
                        ({"Host": "evil.example", **JSON}, 403),
                        ({"Content-Type": "text/plain"}, 415),
                    ]
                    for headers, expected in refused:
                        status, _, _ = await request(http, "POST", "/api/later", headers=headers)
                        assert status == expected, headers
                    assert calls == []
                    status, _, _ = await request(http, "POST", "/api/later", headers=JSON)
                    assert status == 200 and calls == ["POST"]
                    status, answer, _ = await request(
                        http, "GET", "/api/nowhere", headers={"Host": "evil.example"}
                    )
                    assert status == 403, answer  # unrouted paths pass the gate first too
            finally:
                await runner.cleanup()

    run(scenario())


def test_a_raw_non_ascii_byte_in_authorization_is_a_json_401(
    api_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP headers are bytes: a client may send any. Still the token's JSON 401, never a 500."""
    monkeypatch.setenv("BIZOBS_API_TOKEN", "s3cret-token-for-the-test")

    async def scenario() -> None:
        async with served(api_settings, allow_remote=True) as (core, _, _http, before):
            for auth in (b"Bearer \xff\xfe", b"Bearer s3cret-token-for-the-test\xe9", b"\x80"):
                reader, writer = await asyncio.open_connection("127.0.0.1", api_settings.api_port)
                try:
                    writer.write(
                        b"POST /api/services/stop-all HTTP/1.1\r\n"
                        + f"Host: 127.0.0.1:{api_settings.api_port}\r\n".encode()
                        + b"Content-Type: application/json\r\nContent-Length: 0\r\n"
                        + b"Authorization: "
                        + auth
                        + b"\r\nConnection: close\r\n\r\n"
                    )
                    await writer.drain()
                    answer = await asyncio.wait_for(reader.read(), 10)
                finally:
                    writer.close()
                head, _, body = answer.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 401"), answer
                assert b"application/json" in head and b"WWW-Authenticate: Bearer" in head
                assert json.loads(body)["ok"] is False
            assert snapshot(core) == before

    run(scenario())


def test_serve_on_another_loopback_address_answers_requests_addressed_to_it(
    api_settings: Settings,
) -> None:
    """`serve --host 127.0.0.2`: that is the name its clients use, so its Host is accepted."""
    server = ServeProcess(api_settings)
    server.url = f"http://127.0.0.2:{api_settings.api_port}"
    server.start("--host", "127.0.0.2")
    try:
        answer = server.call("GET", "/api/health")
        assert answer.get("ok") is True, answer
        assert server.call("POST", "/api/ports/cleanup")["ok"] is True
        spec = server.call("GET", "/api/openapi.json")
        assert spec["servers"] == [{"url": server.url}]
    finally:
        server.stop()


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "POST"])
def test_a_wrong_method_is_405_with_allow_before_the_content_type_rule(
    api_settings: Settings, method: str
) -> None:
    """A method the path does not take is that, whatever the body's type: 405 and `Allow`;
    the Host, Origin (and token) rules still come first."""

    async def scenario() -> None:
        async with served(api_settings) as (core, _, http, before):
            for path, allowed in (
                ("/api/health", {"GET", "HEAD"}),
                ("/api/runs/run-x", {"GET", "HEAD"}),
                ("/api/services/stop-all", {"POST"}),
                (f"{SIM_COMPAT}/simulate-journey", {"POST"}),
            ):
                if method in allowed:
                    continue
                for headers in ({}, {"Content-Type": "text/plain"}):
                    status, answer, hdrs = await request(
                        http, method, path, data=b"x", headers=headers
                    )
                    assert status == 405, (method, path, headers, status, answer)
                    assert set(hdrs["Allow"].split(",")) == allowed, hdrs
                status, _, _ = await request(
                    http, method, path, headers={"Origin": EVIL, "Content-Type": "text/plain"}
                )
                assert status == 403, (method, path)
                status, _, _ = await request(http, method, path, headers={"Host": "evil.example"})
                assert status == 403, (method, path)
            assert snapshot(core) == before

    run(scenario())


def test_every_get_route_answers_head(api_settings: Settings) -> None:
    from app.api.app import ALL_ROUTES

    async def scenario() -> None:
        async with served(api_settings) as (_, _server, http, _before):
            for method, path, _ in ALL_ROUTES:
                if method != "GET":
                    continue
                path = path.replace("{run_id}", "run-nope")
                async with http.head(path) as resp:
                    assert resp.status in (200, 404), (path, resp.status)
                    assert await resp.read() == b""

    run(scenario())
