"""The export settings' connection test (app/core/export/connection.py) against real local
listeners: one that answers, one that answers 404, a closed port and one that never answers.
No network beyond loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from app.core.export.connection import ConnectionCheck, check_connection, check_values
from app.core.export.saved import ENDPOINT, HEADERS, ExportForm
from app.core.export.settings import Endpoint
from tests.conftest import run

SECRET = "Api-Token dt0c01.SECRET-never-shown"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def listener(handler: Handler) -> AsyncIterator[str]:
    """An aiohttp server on a free loopback port serving `handler` on /v1/traces."""
    app = web.Application()
    app.router.add_post("/v1/traces", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await runner.cleanup()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_answering_backend_is_ok_with_its_time() -> None:
    seen: list[str] = []

    async def accept(request: web.Request) -> web.Response:
        seen.append(request.headers["Authorization"])
        await request.read()
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def main() -> ConnectionCheck:
        async with listener(accept) as base:
            return await check_connection(
                Endpoint(f"{base}/v1/traces", (("Authorization", SECRET),))
            )

    check = run(main(), 20)
    assert check.ok and check.status == 200
    assert check.message.startswith("ok · ") and " ms from http://127.0.0.1:" in check.message
    assert seen == [SECRET] and SECRET not in check.message


def test_a_404_says_http_404_from_the_url() -> None:
    async def missing(_request: web.Request) -> web.Response:
        return web.Response(status=404)

    async def main() -> tuple[str, ConnectionCheck]:
        async with listener(missing) as base:
            return base, await check_connection(Endpoint(f"{base}/v1/traces"))

    base, check = run(main(), 20)
    assert check == ConnectionCheck(False, f"HTTP 404 from {base}/v1/traces", 404)


def test_a_closed_port_is_connection_refused_at_the_url() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1/traces"
    check = run(check_connection(Endpoint(url, (("Authorization", SECRET),))), 20)
    assert check == ConnectionCheck(False, f"connection refused at {url}")


def test_no_answer_within_the_bound_says_so() -> None:
    never = asyncio.Event()

    async def hang(_request: web.Request) -> web.Response:
        await asyncio.wait_for(never.wait(), 10)  # bounded, and set once the test has its answer
        return web.Response()

    async def main() -> tuple[str, ConnectionCheck]:
        async with listener(hang) as base:
            check = await check_connection(Endpoint(f"{base}/v1/traces"), timeout_s=0.3)
            never.set()  # the handler ends before the server is cleaned up
            return base, check

    base, check = run(main(), 20)
    assert check == ConnectionCheck(False, f"no answer from {base}/v1/traces within 0.3 s")


def test_values_are_read_as_on_save_and_a_bad_one_names_its_variable() -> None:
    form = ExportForm({}, {})
    check = run(check_values(form, {ENDPOINT: "", HEADERS: ""}), 20)
    assert check == ConnectionCheck(False, "no endpoint to test: enter one first")
    bad = run(check_values(form, {ENDPOINT: "http://127.0.0.1:1", HEADERS: SECRET}), 20)
    assert not bad.ok and "OTEL_EXPORTER_OTLP_HEADERS" in bad.message
    assert "SECRET" not in bad.message
    url = f"http://127.0.0.1:{closed_port()}"
    env = ExportForm({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": url})  # the environment wins
    refused = run(check_values(env, {ENDPOINT: "http://ignored.example:4318"}), 20)
    assert refused == ConnectionCheck(False, f"connection refused at {url}/v1/traces")
