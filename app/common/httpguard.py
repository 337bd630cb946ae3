"""The checks every listening socket of ours makes before a request reaches a handler.

Any web page the operator opens can send requests to loopback, and a DNS-rebinding page sends
them with its own name. So the control API and every step service refuse, in this order: a
request without `Host` or with a `Host` that does not name the server (DNS rebinding); a CORS
pre-flight; an `Origin` they do not allow (a step service allows none, the API only its own);
a method the path does not take (405 with `Allow`: what the request is, whatever its body);
and a POST (PUT, PATCH) that is not `application/json`, which a browser cannot send
cross-origin without the pre-flight just refused. No `Access-Control-Allow-*` header is ever
sent. Each server shapes the refusal as its own JSON error (docs/architecture.md, "Control API"
and "The step service").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiohttp import hdrs, web

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # methods a handler may read a body for
JSON = "application/json"


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str
    headers: tuple[tuple[str, str], ...] = ()  # to send with the refusal (405: Allow)


def host_names(port: int, names: Iterable[str] = LOOPBACK_NAMES) -> frozenset[str]:
    """Every `Host` value naming a server on `port` by one of `names`, lower case."""
    return frozenset(f"{name.lower()}:{port}" for name in names)


@dataclass(frozen=True)
class Rules:
    """What a request must match. `hosts` empty: any Host (a bearer token guards the server);
    `origins`: the Origin values allowed (empty: a request with any Origin is refused)."""

    hosts: frozenset[str]
    origins: frozenset[str] = frozenset()

    def host_refusal(self, host: str | None) -> Refusal | None:
        if not host:
            return Refusal(400, "request has no Host header")
        if self.hosts and host.lower() not in self.hosts:
            expected = ", ".join(sorted(self.hosts))
            return Refusal(403, f"Host {host!r} is not this server (expected one of {expected})")
        return None

    def origin_refusal(self, request: web.Request) -> Refusal | None:
        if request.method == "OPTIONS" and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers:
            return Refusal(403, "cross-origin requests are not allowed (CORS pre-flight refused)")
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is not None and origin.lower() not in self.origins:
            who = "only the same origin may call" if self.origins else "no web page may call"
            return Refusal(403, f"Origin {origin!r} is not allowed: {who}")
        return None


def method_refusal(request: web.Request) -> Refusal | None:
    """The router found the path but not the method: that is the answer, before the body's
    type is looked at (a PUT to a GET route is a 405, not a 415)."""
    exc = request.match_info.http_exception
    if not isinstance(exc, web.HTTPMethodNotAllowed):
        return None
    allowed = ",".join(sorted(exc.allowed_methods))
    return Refusal(
        405,
        f"{request.method} is not allowed on {request.path} (allowed: {allowed})",
        ((hdrs.ALLOW, allowed),),
    )


def content_type_refusal(request: web.Request) -> Refusal | None:
    if request.method in BODY_METHODS and request.content_type != JSON:
        return Refusal(415, f"{request.method} needs Content-Type: {JSON}, even with no body")
    return None


Check = Callable[[web.Request], Refusal | None]


def first_refusal(request: web.Request, rules: Rules, *between: Check) -> Refusal | None:
    """Host, then pre-flight and Origin, then each of `between` (e.g. a bearer token), then the
    method, then the content type: the first that refuses `request`, or None when it may reach
    its handler."""
    checks: list[Check] = [
        lambda r: rules.host_refusal(r.headers.get(hdrs.HOST)),
        rules.origin_refusal,
        *between,
        method_refusal,
        content_type_refusal,
    ]
    for check in checks:
        if (refusal := check(request)) is not None:
            return refusal
    return None
