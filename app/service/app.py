"""The step service's HTTP app: /health (identity) and /process (one step, then the next hop)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from app.service.errors import HTTP_STATUS, MESSAGES, ErrorType
from app.service.trace import HopContext, hop_context, new_span_id

MAX_BODY = 1 << 20
CLIENT = web.AppKey("client", ClientSession)


@dataclass(frozen=True)
class Identity:
    service: str
    company: str
    port: int
    token: str
    pid: int
    started: float
    # Unique per process (a pid is reused): the resource's service.instance.id in exports.
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "service": self.service,
            "company": self.company,
            "pid": self.pid,
            "port": self.port,
            "token": self.token,
            "uptime": round(time.monotonic() - self.started, 3),
        }


IDENTITY = web.AppKey("identity", Identity)


async def health(request: web.Request) -> web.Response:
    return web.json_response(request.app[IDENTITY].as_json())


def _bad(message: str) -> web.Response:
    return web.json_response(
        {"status": "failed", "error": {"type": "bad_request", "message": message}}, status=400
    )


async def process(request: web.Request) -> web.Response:
    ident: Identity = request.app[IDENTITY]
    try:
        body = await request.json()
    except ValueError:
        return _bad("body is not JSON")
    hops = body.get("hops") if isinstance(body, dict) else None
    if not isinstance(hops, list) or not hops or not isinstance(hops[0], dict):
        return _bad("body needs a non-empty 'hops' list; hops[0] is this service's step")
    step = hops[0]
    if step.get("serviceName") != ident.service:
        return _bad(f"hop is for {step.get('serviceName')!r}, this is {ident.service!r}")
    span = hop_context(
        request.headers.getall("traceparent", []), request.headers.getall("tracestate", [])
    )
    correlation_id = request.headers.get("x-correlation-id") or str(uuid.uuid4())
    started = time.perf_counter()
    # The facts of this hop's spans travel up the chain in its result; the panel exports them
    # (docs/performance.md, "Export": why spans are not produced here).
    facts: dict[str, Any] = {
        "instanceId": ident.instance_id,
        "pid": ident.pid,
        "port": ident.port,
        "startNs": time.time_ns(),
    }
    result = await _run_step(request, body, step, span, correlation_id)
    downstream = b"null"
    if result["status"] == "ok" and len(hops) > 1:
        downstream, facts["client"] = await _call_next(request, body, span, correlation_id)
    result["totalMs"] = round((time.perf_counter() - started) * 1000, 3)
    facts["endNs"] = time.time_ns()
    result["span"] = facts
    headers = {"traceparent": span.span.traceparent(), "x-correlation-id": correlation_id}
    return web.Response(
        body=_nest(result, downstream),
        status=result["httpStatus"],
        headers=headers,
        content_type="application/json",
    )


def _nest(result: dict[str, Any], downstream: bytes) -> bytes:
    """This hop's result with the downstream answer spliced in as it came: re-parsing and
    re-encoding every nested level at every hop would make a chain quadratic in JSON work."""
    return json.dumps(result).encode()[:-1] + b', "downstream": ' + downstream + b"}"


async def _run_step(
    request: web.Request,
    body: dict[str, Any],
    step: dict[str, Any],
    span: HopContext,
    correlation_id: str,
) -> dict[str, Any]:
    ident: Identity = request.app[IDENTITY]
    step_started = time.perf_counter()
    latency_ms = _number(step.get("latencyMs"), 0.0, 0.0, 60_000.0)
    if latency_ms:
        await asyncio.sleep(latency_ms / 1000)  # the simulated work of this step
    error = _injected_error(step)
    own_ms = round((time.perf_counter() - step_started) * 1000, 3)
    raw_customer = body.get("customer")
    customer: dict[str, Any] = raw_customer if isinstance(raw_customer, dict) else {}
    result: dict[str, Any] = {
        "stepName": step.get("stepName"),
        "serviceName": ident.service,
        "company": ident.company,
        "pid": ident.pid,
        "port": ident.port,
        "status": "failed" if error else "ok",
        "latencyMs": own_ms,
        "httpStatus": HTTP_STATUS[error] if error else 200,
        "error": {"type": error.value, "message": MESSAGES[error]} if error else None,
        "traceId": span.trace_id,
        "spanId": span.span_id,
        "parentSpanId": span.parent_span_id,
        "correlationId": correlation_id,
        "event": {
            "company": ident.company,
            "step": step.get("stepName"),
            "service": ident.service,
            "customer": customer.get("id"),
            "correlationId": correlation_id,
            "traceId": span.trace_id,
            "outcome": "failed" if error else "success",
            "errorType": error.value if error else None,
            "durationMs": own_ms,
            "fields": step.get("fields") if isinstance(step.get("fields"), dict) else {},
            "timestamp": time.time(),
        },
    }
    return result


def _number(value: Any, default: float, lo: float, hi: float) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return default
    return min(max(float(value), lo), hi)


def _injected_error(step: dict[str, Any]) -> ErrorType | None:
    rate = _number(step.get("errorRate"), 0.0, 0.0, 1.0)
    if rate <= 0 or random.random() >= rate:
        return None
    try:
        return ErrorType(step.get("errorType") or ErrorType.INTERNAL)
    except ValueError:
        return ErrorType.INTERNAL


async def _call_next(
    request: web.Request, body: dict[str, Any], span: HopContext, correlation_id: str
) -> tuple[bytes, dict[str, Any]]:
    """Call the next hop the orchestrator put in the request: its JSON answer, unparsed, and
    the facts of the CLIENT span of that call, whose id is the parent-id the next hop got."""
    nxt = body["hops"][1]
    think_ms = _number(body.get("thinkTimeMs"), 0.0, 0.0, 60_000.0)
    if think_ms:
        await asyncio.sleep(think_ms / 1000)  # the customer's think time between steps
    url = str(nxt.get("url"))
    call: dict[str, Any] = {"spanId": new_span_id(), "url": url, "startNs": time.time_ns()}
    headers = span.outgoing(call["spanId"]) | {"x-correlation-id": correlation_id}
    payload = dict(body, hops=body["hops"][1:])
    client: ClientSession = request.app[CLIENT]
    try:
        async with client.post(url, json=payload, headers=headers) as resp:
            raw = await resp.read()
            call |= {"endNs": time.time_ns(), "httpStatus": resp.status, "error": None}
            if resp.content_type == "application/json" and raw[:1] == b"{" and raw[-1:] == b"}":
                return raw, call
            problem = f"HTTP {resp.status} answered with {resp.content_type}, not a step result"
            call["error"] = "invalid_response"
    except (ClientError, TimeoutError, ValueError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
        call |= {"endNs": time.time_ns(), "httpStatus": None, "error": type(exc).__name__}
    failed = json.dumps(
        {
            "stepName": nxt.get("stepName"),
            "serviceName": nxt.get("serviceName"),
            "status": "failed",
            "httpStatus": 502,
            "error": {"type": "unreachable", "message": problem},
            "downstream": None,
        }
    ).encode()
    return failed, call


def make_app(identity: Identity) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[IDENTITY] = identity

    async def client_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        async with ClientSession(timeout=ClientTimeout(total=60)) as session:
            app[CLIENT] = session
            yield

    app.cleanup_ctx.append(client_ctx)
    app.router.add_get("/health", health)
    app.router.add_post("/process", process)
    return app


def current_identity(service: str, company: str, port: int, token: str) -> Identity:
    return Identity(service, company, port, token, os.getpid(), time.monotonic())
