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
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span


def value(v: AnyValue) -> Any:
    return getattr(v, v.WhichOneof("value")) if v.WhichOneof("value") else None


@dataclass
class Received:
    spans: list[tuple[dict[str, Any], Span]] = field(default_factory=list)  # (resource, span)
    logs: list[tuple[dict[str, Any], LogRecord]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)


class Receiver:
    """POST /v1/traces, /v1/logs (protobuf) and /bizevents (CloudEvents batch JSON).

    `fail_first` answers that many requests per path with 503 and Retry-After: 0 first."""

    def __init__(self, fail_first: int = 0) -> None:
        self.got = Received()
        self.fail_first = fail_first
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.base = ""

    async def __aenter__(self) -> Receiver:
        app = web.Application(client_max_size=64 << 20)
        app.router.add_post("/v1/traces", self._traces)
        app.router.add_post("/v1/logs", self._logs)
        app.router.add_post("/bizevents", self._events)
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

    def _refuse(self, request: web.Request) -> web.Response | None:
        served = sum(n for (path, _), n in self.got.answers.items() if path == request.path)
        status = 503 if served < self.fail_first else 200
        self.got.answers[(request.path, status)] += 1
        self.got.headers.append(dict(request.headers))
        if status == 503:
            return web.Response(status=503, headers={"Retry-After": "0"})
        return None

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        if refused := self._refuse(request):
            return refused
        req = ExportTraceServiceRequest.FromString(body)
        for rs in req.resource_spans:
            resource = {kv.key: value(kv.value) for kv in rs.resource.attributes}
            self.got.spans += [(resource, s) for ss in rs.scope_spans for s in ss.spans]
        await self._notify()
        return _protobuf(ExportTraceServiceResponse())

    async def _logs(self, request: web.Request) -> web.Response:
        body = await request.read()
        if refused := self._refuse(request):
            return refused
        req = ExportLogsServiceRequest.FromString(body)
        for rl in req.resource_logs:
            resource = {kv.key: value(kv.value) for kv in rl.resource.attributes}
            self.got.logs += [(resource, r) for sl in rl.scope_logs for r in sl.log_records]
        await self._notify()
        return _protobuf(ExportLogsServiceResponse())

    async def _events(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/cloudevents-batch+json"
        body = await request.read()
        if refused := self._refuse(request):
            return refused
        self.got.events += json.loads(body)
        await self._notify()
        return web.Response(status=202)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()


def _protobuf(message: Any) -> web.Response:
    return web.Response(body=message.SerializeToString(), content_type="application/x-protobuf")
