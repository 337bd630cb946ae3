"""Start and stop the control API on the core's event loop."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web

from app.api.app import make_app
from app.api.security import Guard, api_token
from app.core.errors import ApiBindError
from app.core.orchestrator import Core


def check_host(host: str, allow_remote: bool) -> None:
    """Loopback only unless explicitly allowed: the API can start and stop processes."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not allow_remote:
        raise ApiBindError(
            f"refusing to serve the control API on {host}: it is loopback-only "
            "(pass --allow-remote to expose it, knowing anyone who reaches it can run processes)"
        )


class ApiServer:
    def __init__(self, core: Core, host: str, port: int, allow_remote: bool = False) -> None:
        check_host(host, allow_remote)
        self.core = core
        self.host = host
        self.port = port
        # A token only guards a server others can reach; loopback is guarded by Host/Origin.
        self.token, self.token_generated = api_token() if allow_remote else ("", False)
        self.guard = Guard(host, port, allow_remote, self.token)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        app = make_app(self.core, self.guard)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ApiBindError(
                f"cannot serve the control API on {self.host}:{self.port}: {exc.strerror} "
                "(set BIZOBS_API_PORT or --port to another port)"
            ) from exc
        self._runner = runner
        if self.port == 0:  # the kernel chose: the Host check needs the real one
            self.port = self.guard.port = runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def start_api(core: Core) -> Callable[[], Awaitable[None]]:
    """Serve the API for `core` where its settings say; returns the coroutine that stops it.
    The window calls this on its own loop, so the API and the window drive one core."""
    server = ApiServer(core, core.settings.api_host, core.settings.api_port)
    await server.start()
    core.events.say("api", f"control API on {server.url}")
    return server.stop
