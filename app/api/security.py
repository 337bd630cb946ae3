"""The gate in front of every route: a web page the operator opens must not drive the API.

Modelled on how Jupyter Server and Syncthing guard their local HTTP APIs: the `Host` header
must name the address served (a DNS-rebinding page sends its own name), any `Origin` other
than our own is refused (so is the CORS pre-flight, and no `Access-Control-Allow-*` header is
ever sent), and a POST must be `application/json`, which a browser cannot send cross-origin
without a pre-flight. Served beyond loopback (`--allow-remote`), a bearer token is required
on every request too. See docs/architecture.md, "Control API"."""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import hdrs, web

TOKEN_ENV = "BIZOBS_API_TOKEN"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # methods a handler may read a body for
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Guard:
    """What a request must match: the address served and, when remote, the token."""

    host: str
    port: int
    allow_remote: bool = False
    token: str = field(default="", repr=False)

    @property
    def wildcard(self) -> bool:
        """Bound to every interface: the names clients use cannot be known in advance."""
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_unspecified
        except ValueError:
            return False

    def hosts(self) -> frozenset[str]:
        """Every `Host` value that names this server, lower case, with its port."""
        names = set(LOOPBACK_NAMES)
        if self.allow_remote:
            names.add(f"[{self.host}]" if ":" in self.host else self.host.lower())
        return frozenset(f"{name}:{self.port}" for name in names)

    def host_ok(self, host: str) -> bool:
        if self.allow_remote and self.wildcard:
            return True  # the token is what protects a server bound to every interface
        return host.lower() in self.hosts()

    def origin_ok(self, origin: str, host: str) -> bool:
        """Our own origin only (any of our names): never another site, nor `null`."""
        origin = origin.lower()
        return origin == f"http://{host.lower()}" or origin in {f"http://{h}" for h in self.hosts()}

    def token_ok(self, authorization: str) -> bool:
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return False
        # Bytes: compare_digest refuses non-ASCII str, and a header may carry anything.
        return hmac.compare_digest(presented.strip().encode(), self.token.encode())


def api_token() -> tuple[str, bool]:
    """The bearer token from BIZOBS_API_TOKEN, or a new one; and whether it was generated."""
    configured = os.environ.get(TOKEN_ENV, "").strip()
    if configured:
        return configured, False
    return secrets.token_urlsafe(32), True


GUARD = web.AppKey("guard", Guard)


def error(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


def _refusal(request: web.Request, guard: Guard) -> web.Response | None:
    """The answer refusing `request`, or None when it may reach its handler."""
    host = request.headers.get(hdrs.HOST)
    if not host:
        return error(400, "request has no Host header")
    if not guard.host_ok(host):
        return error(403, f"Host {host!r} is not this server (expected one of {_hosts(guard)})")
    origin = request.headers.get(hdrs.ORIGIN)
    if request.method == "OPTIONS" and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers:
        return error(403, "cross-origin requests are not allowed (CORS pre-flight refused)")
    if origin is not None and not guard.origin_ok(origin, host):
        return error(403, f"Origin {origin!r} is not allowed: only the same origin may call")
    if guard.allow_remote and not guard.token_ok(request.headers.get(hdrs.AUTHORIZATION, "")):
        answer = error(401, "missing or wrong bearer token (Authorization: Bearer <token>)")
        answer.headers[hdrs.WWW_AUTHENTICATE] = 'Bearer realm="bizobs"'
        return answer
    if request.method in BODY_METHODS and request.content_type != "application/json":
        return error(
            415, f"{request.method} needs Content-Type: application/json, even with no body"
        )
    return None


def _hosts(guard: Guard) -> str:
    return ", ".join(sorted(guard.hosts()))


@web.middleware
async def guard_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """First in the chain, for every route of the app (present and future)."""
    refusal = _refusal(request, request.app[GUARD])
    return refusal if refusal is not None else await handler(request)
