"""The step service's HTTP app: /health (identity), /process (one step, then the next hop) and
the panel's control route for incidents.

Every request first passes the checks every listening socket of ours makes (Host, pre-flight,
Origin, Content-Type: app/common/httpguard.py); `/process` then needs the chain credential the
panel issues, and forwards only to pool ports (app/service/protocol.py; docs/architecture.md,
"The step service"); the control route needs the control credential (app/service/control.py),
and the incidents it starts shape each step (app/service/incidents.py)."""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import hdrs, web

from app.common.httpguard import JSON, Rules, first_refusal, host_names
from app.service.control import ControlDesk
from app.service.errors import HTTP_STATUS, MESSAGES, ErrorType
from app.service.hop_client import HopClient, HopClientError
from app.service.incidents import Affect, Running, ServiceIncidents
from app.service.protocol import (
    CHAIN_HEADER,
    CONTROL_HEADER,
    CONTROL_PATH,
    HOP_HEADER,
    PROCESS_PATH,
    Hop,
    answer_by,
    credential,
    credential_ok,
    hop_port,
)
from app.service.trace import HopContext, hop_context, new_span_id

MAX_BODY = 1 << 20
MAX_HOP_DIGITS = 3  # a chain has at most a pool's worth of hops
CLIENT = web.AppKey("client", HopClient)
Handler = Any


@dataclass(frozen=True)
class Identity:
    service: str
    company: str
    port: int
    token: str
    pid: int
    started: float
    # The chain credential's key: from the panel at spawn, never on the command line.
    secret: bytes = field(default=b"", repr=False)
    hop_ports: range = range(0)  # where a hop may lead: the pool's ports, the API's excluded
    api_port: int = 0
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

    def may_call(self, port: int | None) -> bool:
        return port is not None and port in self.hop_ports and port != self.api_port


IDENTITY = web.AppKey("identity", Identity)
RULES = web.AppKey("rules", Rules)
CONTROL = web.AppKey("control", ControlDesk)


def failure(status: int, kind: str, message: str) -> web.Response:
    """Every error of a step service: JSON in the shape of a failed step."""
    error = {"type": kind, "message": message}
    return web.json_response({"status": "failed", "error": error}, status=status)


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """First for every request: the rules every listening socket of ours applies; any Origin
    is refused (no web page may call a step service). Unknown paths and methods answer JSON."""
    refusal = first_refusal(request, request.app[RULES])
    if refusal is not None:
        return failure(refusal.status, "refused", refusal.message)
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        answer = failure(exc.status, "refused", exc.reason)
        if hdrs.ALLOW in exc.headers:
            answer.headers[hdrs.ALLOW] = exc.headers[hdrs.ALLOW]
        return answer
    return response


async def health(request: web.Request) -> web.Response:
    return web.json_response(request.app[IDENTITY].as_json())


async def control(request: web.Request) -> web.Response:
    """The panel's control messages (app/service/control.py): start, end, list incidents."""
    raw = await request.read()
    status, answer = request.app[CONTROL].handle(raw, request.headers.get(CONTROL_HEADER, ""))
    return web.json_response(answer, status=status)


def _bad(message: str) -> web.Response:
    return failure(400, "bad_request", message)


@dataclass(frozen=True)
class _Call:
    """A request for one hop that passed every check: the body as it came and what it says."""

    raw: bytes
    body: dict[str, Any]
    hops: list[Hop]
    index: int

    @property
    def step(self) -> Hop:
        return self.hops[self.index]

    @property
    def next(self) -> Hop | None:
        return self.hops[self.index + 1] if self.index + 1 < len(self.hops) else None

    def deadline(self, index: int) -> float | None:
        deadline = self.body.get("deadline")
        if isinstance(deadline, bool) or not isinstance(deadline, int | float):
            return None
        return answer_by(float(deadline), index)


async def _accept(request: web.Request) -> _Call | web.Response:
    """The request's hop, or the answer refusing it. The credential is checked first, on the
    raw bytes: nothing a caller without it sends is even parsed."""
    ident: Identity = request.app[IDENTITY]
    raw = await request.read()
    index_text = request.headers.get(HOP_HEADER, "")
    if not (index_text.isascii() and index_text.isdigit() and len(index_text) <= MAX_HOP_DIGITS):
        return failure(
            403,
            "refused",
            f"no chain credential ({HOP_HEADER}, {CHAIN_HEADER}): only the panel calls",
        )
    index = int(index_text)
    if not credential_ok(ident.secret, index, raw, request.headers.get(CHAIN_HEADER, "")):
        return failure(403, "refused", "missing or wrong chain credential: only the panel calls")
    try:
        body = orjson.loads(raw)
    except (ValueError, RecursionError):
        return _bad("body is not JSON")
    hops = body.get("hops") if isinstance(body, dict) else None
    if not isinstance(hops, list) or not index < len(hops):
        return _bad(f"body needs a 'hops' list with a hop {index}")
    if not all(isinstance(h, dict) and ident.may_call(hop_port(h.get("url"))) for h in hops):
        return failure(403, "refused", "every hop must be http://127.0.0.1:<pool port>/process")
    call = _Call(raw, body, hops, index)
    if call.step.get("serviceName") != ident.service or hop_port(call.step["url"]) != ident.port:
        return _bad(
            f"hop {index} is for {call.step.get('serviceName')!r}, this is {ident.service!r}"
        )
    return call


async def process(request: web.Request) -> web.Response:
    accepted = await _accept(request)
    if isinstance(accepted, web.Response):
        return accepted
    call = accepted
    ident: Identity = request.app[IDENTITY]
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
    result, tag = await _run_step(
        request, call.body, call.step, span, correlation_id, call.deadline(call.index)
    )
    if tag is not None:
        facts |= {"incidentId": tag.id, "incidentKind": tag.spec.kind.value}
    downstream = b"null"
    if result["status"] == "ok" and call.next is not None:
        downstream, facts["client"] = await _call_next(request, call, span, correlation_id)
    result["totalMs"] = round((time.perf_counter() - started) * 1000, 3)
    facts["endNs"] = time.time_ns()
    result["span"] = facts
    headers = {"traceparent": span.span.traceparent(), "x-correlation-id": correlation_id}
    return web.Response(
        body=_nest(result, downstream),
        status=result["httpStatus"],
        headers=headers,
        content_type=JSON,
    )


def _nest(result: dict[str, Any], downstream: bytes) -> bytes:
    """This hop's result with the downstream answer spliced in as it came: re-parsing and
    re-encoding every nested level at every hop would make a chain quadratic in JSON work."""
    return orjson.dumps(result)[:-1] + b',"downstream":' + downstream + b"}"


async def _run_step(
    request: web.Request,
    body: dict[str, Any],
    step: Hop,
    span: HopContext,
    correlation_id: str,
    answer_by: float | None = None,
) -> tuple[dict[str, Any], Running | None]:
    """The step's result, and the incident that shaped it (or None)."""
    ident: Identity = request.app[IDENTITY]
    step_started = time.perf_counter()
    latency_ms = _number(step.get("latencyMs"), 0.0, 0.0, 60_000.0)
    if latency_ms:
        await asyncio.sleep(latency_ms / 1000)  # the simulated work of this step
    # Incidents in effect hold, delay or fail the step, within the caller's patience.
    affect: Affect = await request.app[CONTROL].incidents.affect(answer_by)
    error = None if affect.error else _injected_error(step)
    status, kind, message = affect.error or (
        (HTTP_STATUS[error], error.value, MESSAGES[error]) if error else (200, "", "")
    )
    failed = status != 200
    own_ms = round((time.perf_counter() - step_started) * 1000, 3)
    raw_customer = body.get("customer")
    customer: dict[str, Any] = raw_customer if isinstance(raw_customer, dict) else {}
    fields = step.get("fields")
    result: dict[str, Any] = {
        "stepName": step.get("stepName"),
        "serviceName": ident.service,
        "company": ident.company,
        "pid": ident.pid,
        "port": ident.port,
        "status": "failed" if failed else "ok",
        "latencyMs": own_ms,
        "httpStatus": status,
        "error": {"type": kind, "message": message} if failed else None,
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
            "outcome": "failed" if failed else "success",
            "errorType": kind if failed else None,
            # The incident in effect on this hop: a backend finds the events of an incident.
            "incident": {"id": affect.tag.id, "kind": affect.tag.spec.kind.value}
            if affect.tag
            else None,
            "durationMs": own_ms,
            "fields": fields if isinstance(fields, dict) else {},
            "timestamp": time.time(),
        },
    }
    return result, affect.tag


def _number(value: Any, default: float, lo: float, hi: float) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return default
    return min(max(float(value), lo), hi)


def _injected_error(step: Hop) -> ErrorType | None:
    rate = _number(step.get("errorRate"), 0.0, 0.0, 1.0)
    if rate <= 0 or random.random() >= rate:
        return None
    try:
        return ErrorType(step.get("errorType") or ErrorType.INTERNAL)
    except ValueError:
        return ErrorType.INTERNAL


async def _call_next(
    request: web.Request, call: _Call, span: HopContext, correlation_id: str
) -> tuple[bytes, dict[str, Any]]:
    """Call the next hop the panel put in the request, with the same body: its JSON answer,
    unparsed, and the facts of the CLIENT span of that call, whose id is the parent-id the next
    hop got."""
    ident: Identity = request.app[IDENTITY]
    nxt = call.next
    assert nxt is not None
    think_ms = _number(call.body.get("thinkTimeMs"), 0.0, 0.0, 60_000.0)
    if think_ms:
        await asyncio.sleep(think_ms / 1000)  # the customer's think time between steps
    index = call.index + 1
    url = nxt["url"]
    call_facts: dict[str, Any] = {"spanId": new_span_id(), "url": url, "startNs": time.time_ns()}
    headers = span.outgoing(call_facts["spanId"]) | {
        "x-correlation-id": correlation_id,
        hdrs.CONTENT_TYPE: JSON,
        HOP_HEADER: str(index),
        CHAIN_HEADER: credential(ident.secret, index, call.raw),
    }
    deadline = call.deadline(index)
    budget = deadline - time.monotonic() if deadline is not None else None
    client: HopClient = request.app[CLIENT]
    port = hop_port(url)
    assert port is not None  # every hop's URL was checked on the way in (_accept)
    who = f"{nxt.get('serviceName')} on port {port}"
    kind, status = "unreachable", 502
    try:
        if budget is not None and budget <= 0:
            raise TimeoutError
        answer = await client.post(port, call.raw, headers, budget, lane=index)
        call_facts |= {"endNs": time.time_ns(), "httpStatus": answer.status, "error": None}
        raw = answer.body
        if answer.content_type == JSON and raw[:1] == b"{" and raw[-1:] == b"}":
            return raw, call_facts
        problem = f"{who} answered HTTP {answer.status} with {answer.content_type}, not a result"
        call_facts["error"] = "invalid_response"
    except TimeoutError:
        kind, status = "timeout", 504
        problem = (
            f"no answer from {who} within {max(budget or 0.0, 0.0):.1f} s (the chain's budget)"
        )
        call_facts |= {"endNs": time.time_ns(), "httpStatus": None, "error": "timeout"}
    except (OSError, HopClientError, ValueError) as exc:
        problem = f"{who} cannot be reached: {exc or type(exc).__name__}"
        call_facts |= {"endNs": time.time_ns(), "httpStatus": None, "error": type(exc).__name__}
    failed = orjson.dumps(
        {
            "stepName": nxt.get("stepName"),
            "serviceName": nxt.get("serviceName"),
            "status": "failed",
            "httpStatus": status,
            "error": {"type": kind, "message": problem},
            "downstream": None,
        }
    )
    return failed, call_facts


def make_app(identity: Identity) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[guard])
    app[IDENTITY] = identity
    app[RULES] = Rules(host_names(identity.port, ("127.0.0.1", "localhost")))
    app[CONTROL] = ControlDesk(identity.secret, ServiceIncidents())

    async def client_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        # Each call's own timeout comes from the chain's deadline (protocol.answer_by).
        app[CLIENT] = client = HopClient()
        try:
            yield
        finally:
            app[CONTROL].incidents.end_all()  # threads joined, mappings unmapped
            await client.aclose()

    app.cleanup_ctx.append(client_ctx)
    app.router.add_get("/health", health)
    app.router.add_post(PROCESS_PATH, process)
    app.router.add_post(CONTROL_PATH, control)
    return app


def current_identity(
    service: str,
    company: str,
    port: int,
    token: str,
    secret: bytes = b"",
    hop_ports: range = range(0),
    api_port: int = 0,
) -> Identity:
    return Identity(
        service,
        company,
        port,
        token,
        os.getpid(),
        time.monotonic(),
        secret=secret,
        hop_ports=hop_ports,
        api_port=api_port,
    )
