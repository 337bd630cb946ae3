"""A served control API with one journey running, and what a request could change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from app.api.server import ApiServer
from app.core.orchestrator import Core, open_core
from app.core.settings import Settings
from tests.helpers import journey

JSON = {"Content-Type": "application/json"}
EVIL = "http://evil.example"

Snapshot = tuple[frozenset[tuple[str, int | None]], int, tuple[tuple[int, str], ...]]


def snapshot(core: Core) -> Snapshot:
    """What a request could change: our services and pids, the run history, the ports."""
    services = frozenset((s.key, s.pid) for s in core.services())
    ports = tuple((p.port, p.state.value) for p in core.ports())
    return services, core.history.count(), ports


@asynccontextmanager
async def served(
    settings: Settings, allow_remote: bool = False
) -> AsyncIterator[tuple[Core, ApiServer, aiohttp.ClientSession, Snapshot]]:
    """A server with one journey's services running, and the state to compare against."""
    async with open_core(settings) as core:
        server = ApiServer(core, "127.0.0.1", settings.api_port, allow_remote=allow_remote)
        try:
            await server.start()
            result = await core.run_journey(journey("Victim Co", "LoginService", "PayService"))
            assert result.ok, result.error
            async with aiohttp.ClientSession(base_url=server.url) as http:
                yield core, server, http, snapshot(core)
        finally:
            await server.stop()


async def request(
    http: aiohttp.ClientSession, method: str, path: str, **kw: Any
) -> tuple[int, Any, Any]:
    """Status, JSON body (whatever the Content-Type claims) and headers of one request."""
    async with http.request(method, path, **kw) as resp:
        body = await resp.json(content_type=None)
        return resp.status, body, resp.headers


def assert_no_cors(headers: Any) -> None:
    assert not [h for h in headers if h.lower().startswith("access-control-allow")], headers
