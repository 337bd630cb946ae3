"""The gate in front of every route: a web page the operator opens must not drive the API.

Modelled on how Jupyter Server and Syncthing guard their local HTTP APIs; the rules themselves
(Host, pre-flight, Origin, Content-Type) are the ones every listening socket of ours applies
(app/common/httpguard.py). Here the API's own: its Origin may be its own (a page it serves),
and served beyond loopback (`--allow-remote`), a bearer token is required on every request
too. See docs/architecture.md, "Control API"."""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from dataclasses import dataclass, field

from aiohttp import hdrs, web

from app.api.common import Handler, error
from app.common.httpguard import LOOPBACK_NAMES, Refusal, Rules, first_refusal, host_names

TOKEN_ENV = "BIZOBS_API_TOKEN"


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
        """Every `Host` value that names this server, lower case, with its port: the loopback
        names, and the address it serves on (127.0.0.2 is a loopback address of its own)."""
        names = set(LOOPBACK_NAMES)
        if not self.wildcard:
            names.add(f"[{self.host}]" if ":" in self.host else self.host.lower())
        return host_names(self.port, names)

    def rules(self, host: str | None) -> Rules:
        """For a request naming `host`: our names (any, when bound to every interface with a
        token), and our own origin only (any of our names): never another site, nor `null`."""
        hosts = self.hosts()
        origins = {f"http://{h}" for h in hosts}
        if host:
            origins.add(f"http://{host.lower()}")
        # The token is what protects a server bound to every interface.
        any_host = self.allow_remote and self.wildcard
        return Rules(frozenset() if any_host else hosts, frozenset(origins))

    def token_ok(self, authorization: str) -> bool:
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return False
        # Bytes: compare_digest refuses non-ASCII str, and a header may carry any byte, which
        # the HTTP parser hands over as a surrogate escape: encoded back, never an error.
        given = presented.strip().encode("utf-8", "surrogateescape")
        return hmac.compare_digest(given, self.token.encode())


def api_token() -> tuple[str, bool]:
    """The bearer token from BIZOBS_API_TOKEN, or a new one; and whether it was generated."""
    configured = os.environ.get(TOKEN_ENV, "").strip()
    if configured:
        return configured, False
    return secrets.token_urlsafe(32), True


GUARD = web.AppKey("guard", Guard)

TOKEN_REFUSAL = "missing or wrong bearer token (Authorization: Bearer <token>)"


def _refusal(request: web.Request, guard: Guard) -> web.Response | None:
    """The answer refusing `request`, or None when it may reach its handler."""

    def token(r: web.Request) -> Refusal | None:
        ok = not guard.allow_remote or guard.token_ok(r.headers.get(hdrs.AUTHORIZATION, ""))
        return None if ok else Refusal(401, TOKEN_REFUSAL)

    refusal = first_refusal(request, guard.rules(request.headers.get(hdrs.HOST)), token)
    if refusal is None:
        return None
    answer = error(refusal.status, refusal.message)
    answer.headers.update(refusal.headers)  # 405: Allow
    if refusal.status == 401:
        answer.headers[hdrs.WWW_AUTHENTICATE] = 'Bearer realm="bizobs"'
    return answer


@web.middleware
async def guard_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """First in the chain, for every route of the app (present and future)."""
    refusal = _refusal(request, request.app[GUARD])
    return refusal if refusal is not None else await handler(request)
