"""A real OTLP/HTTP receiver in the test process: decodes with the official protobuf messages."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric, ResourceMetrics
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span

BATCH = "application/cloudevents-batch+json"
STRUCTURED = "application/cloudevents+json"
# (request, how many requests to its path came before it) -> an answer of its own, or None for
# the receiver's usual one.
Answer = Callable[[web.Request, int], web.Response | None]


def value(v: AnyValue) -> Any:
    return getattr(v, v.WhichOneof("value")) if v.WhichOneof("value") else None


@dataclass
class Received:
    spans: list[tuple[dict[str, Any], Span]] = field(default_factory=list)  # (resource, span)
    logs: list[tuple[dict[str, Any], LogRecord]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    # Every CloudEvents request as it came: (headers, body), to validate with the SDK.
    event_requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    # The resource and scope groups of every OTLP request, as decoded.
    span_groups: list[ResourceSpans] = field(default_factory=list)
    log_groups: list[ResourceLogs] = field(default_factory=list)
    metric_groups: list[ResourceMetrics] = field(default_factory=list)
    metrics: list[tuple[dict[str, Any], Metric]] = field(default_factory=list)  # (resource, m)
    headers: list[dict[str, str]] = field(default_factory=list)
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)
    # Every request to any path, the unknown ones included: (method, path, headers).
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


class Receiver:
    """POST /v1/traces, /v1/logs, /v1/metrics (protobuf) and /bizevents (CloudEvents, batch
    or structured); any other method or path is recorded and answered 200 (a redirect's
    target).

    `fail_first` answers that many requests per path with 503 and Retry-After: 0 first;
    `answer` may answer any request itself (a redirect, a status, a header of its choice)."""

    def __init__(self, fail_first: int = 0, answer: Answer | None = None) -> None:
        self.got = Received()
        self.fail_first = fail_first
        self.answer = answer
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.base = ""

    async def __aenter__(self) -> Receiver:
        app = web.Application(client_max_size=64 << 20)
        app.router.add_post("/v1/traces", self._traces)
        app.router.add_post("/v1/logs", self._logs)
        app.router.add_post("/v1/metrics", self._metrics)
        app.router.add_post("/bizevents", self._events)
        app.router.add_route("*", "/{tail:.*}", self._other)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def wait_for(self, done: Callable[[Received], bool], timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: done(self.got))

    def posts(self, path: str) -> int:
        return sum(1 for method, p, _ in self.got.requests if method == "POST" and p == path)

    async def _refuse(self, request: web.Request) -> web.Response | None:
        served = sum(n for (path, _), n in self.got.answers.items() if path == request.path)
        self.got.requests.append((request.method, request.path, dict(request.headers)))
        self.got.headers.append(dict(request.headers))
        own = self.answer(request, served) if self.answer else None
        if own is None and served < self.fail_first:
            own = web.Response(status=503, headers={"Retry-After": "0"})
        self.got.answers[(request.path, own.status if own else 200)] += 1
        if own is not None:
            await self._notify()
        return own

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        if refused := await self._refuse(request):
            return refused
        req = ExportTraceServiceRequest.FromString(body)
        for rs in req.resource_spans:
            resource = {kv.key: value(kv.value) for kv in rs.resource.attributes}
            self.got.spans += [(resource, s) for ss in rs.scope_spans for s in ss.spans]
            self.got.span_groups.append(rs)
        await self._notify()
        return _protobuf(ExportTraceServiceResponse())

    async def _logs(self, request: web.Request) -> web.Response:
        body = await request.read()
        if refused := await self._refuse(request):
            return refused
        req = ExportLogsServiceRequest.FromString(body)
        for rl in req.resource_logs:
            resource = {kv.key: value(kv.value) for kv in rl.resource.attributes}
            self.got.logs += [(resource, r) for sl in rl.scope_logs for r in sl.log_records]
            self.got.log_groups.append(rl)
        await self._notify()
        return _protobuf(ExportLogsServiceResponse())

    async def _metrics(self, request: web.Request) -> web.Response:
        body = await request.read()
        if refused := await self._refuse(request):
            return refused
        req = ExportMetricsServiceRequest.FromString(body)
        for rm in req.resource_metrics:
            resource = {kv.key: value(kv.value) for kv in rm.resource.attributes}
            self.got.metrics += [(resource, m) for sm in rm.scope_metrics for m in sm.metrics]
            self.got.metric_groups.append(rm)
        await self._notify()
        return _protobuf(ExportMetricsServiceResponse())

    async def _events(self, request: web.Request) -> web.Response:
        assert request.content_type in (BATCH, STRUCTURED), request.content_type
        body = await request.read()
        if refused := await self._refuse(request):
            return refused
        self.got.event_requests.append((dict(request.headers), body))
        parsed = json.loads(body)
        self.got.events += parsed if request.content_type == BATCH else [parsed]
        await self._notify()
        return web.Response(status=202)

    async def _other(self, request: web.Request) -> web.Response:
        await request.read()
        self.got.requests.append((request.method, request.path, dict(request.headers)))
        await self._notify()
        return web.Response(status=200)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()


def _protobuf(message: Any) -> web.Response:
    return web.Response(body=message.SerializeToString(), content_type="application/x-protobuf")
