"""A finished customer journey as OTLP spans and log records (the official protobuf messages).

The step services return the facts of their spans in their hop results (app/service/app.py,
"span"); here they become one SERVER span per reached hop, one CLIENT span per call to a next
hop, and the panel's root span (its call to step 1, whose id went over the wire as step 1's
parent). Spans and log records are grouped by resource: one per service process.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs, SeverityNumber
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from app.core.simulation import CustomerResult, StepResult

SCOPE = InstrumentationScope(name="bizobs-panel", version="0.1.0")
SERVER_PATH = "/process"
SAMPLED = 0x01
MAX_RESOURCES = 4096  # resources are cached per service process; a long session is bounded


@dataclass(frozen=True)
class Finished:
    """One customer's finished journey, as the simulator hands it over."""

    company: str
    first_url: str
    result: CustomerResult
    end_ns: int

    @property
    def span_count(self) -> int:
        steps = [s for s in self.result.steps if s.span]
        return 1 + len(steps) + sum(1 for s in steps if s.span and s.span.get("client"))

    @property
    def log_count(self) -> int:
        return sum(1 for s in self.result.steps if s.span and s.event)


ResourceKey = tuple[str, str, str, int]  # service.name, namespace, instance id, pid


class Encoder:
    """Builds export requests; keeps the Resource message of each service process."""

    def __init__(self, service_name: str, extra: Sequence[tuple[str, str]]) -> None:
        self._extra = [_kv(k, v) for k, v in extra]
        self._resources: dict[ResourceKey, Resource] = {}
        self._panel = (service_name, "", uuid.uuid4().hex, os.getpid())

    def traces(self, batch: Iterable[Finished]) -> bytes:
        groups: dict[ResourceKey, list[Span]] = defaultdict(list)
        for item in batch:
            for key, span in self._spans(item):
                groups[key].append(span)
        request = ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(
                    resource=self._resource(key), scope_spans=[ScopeSpans(scope=SCOPE, spans=s)]
                )
                for key, s in groups.items()
            ]
        )
        return request.SerializeToString()

    def logs(self, batch: Iterable[Finished]) -> bytes:
        groups: dict[ResourceKey, list[LogRecord]] = defaultdict(list)
        for item in batch:
            for step in item.result.steps:
                if step.span and step.event:
                    groups[_key(item, step)].append(_log(item, step))
        request = ExportLogsServiceRequest(
            resource_logs=[
                ResourceLogs(
                    resource=self._resource(key),
                    scope_logs=[ScopeLogs(scope=SCOPE, log_records=records)],
                )
                for key, records in groups.items()
            ]
        )
        return request.SerializeToString()

    def _resource(self, key: ResourceKey) -> Resource:
        found = self._resources.get(key)
        if found is None:
            if len(self._resources) >= MAX_RESOURCES:
                self._resources.clear()
            name, namespace, instance, pid = key
            attrs = [_kv("service.name", name), _kv("service.instance.id", instance)]
            attrs += [_kv("service.namespace", namespace)] if namespace else []
            attrs += [_kv("process.pid", pid), *self._extra]
            found = self._resources[key] = Resource(attributes=attrs)
        return found

    def _spans(self, item: Finished) -> Iterable[tuple[ResourceKey, Span]]:
        result = item.result
        trace_id = bytes.fromhex(result.trace_id)
        panel = (self._panel[0], item.company, self._panel[2], self._panel[3])
        yield panel, _root(item, trace_id)
        for step in result.steps:
            facts = step.span
            if not facts or not step.span_id:
                continue  # an unreached step has no span
            yield _key(item, step), _server(item, step, facts, trace_id)
            call = facts.get("client")
            if call:
                yield _key(item, step), _client(step, call, trace_id)


def _key(item: Finished, step: StepResult) -> ResourceKey:
    facts = step.span or {}
    return (step.service_name, item.company, str(facts.get("instanceId")), int(facts.get("pid", 0)))


def _root(item: Finished, trace_id: bytes) -> Span:
    """The panel's call to step 1: the one root of the customer's trace."""
    result = item.result
    first = result.steps[0] if result.steps else None
    status = first.http_status if first else None
    attrs = _http_client(item.first_url, status, None if result.ok else "journey_failed")
    attrs += _customer(result)
    return Span(
        trace_id=trace_id,
        span_id=bytes.fromhex(result.root_span_id),
        name="customer journey",
        kind=Span.SpanKind.SPAN_KIND_CLIENT,
        flags=SAMPLED,
        start_time_unix_nano=item.end_ns - int(result.latency_ms * 1_000_000),
        end_time_unix_nano=item.end_ns,
        attributes=attrs,
        status=_status(not result.ok, "a step of the journey failed"),
    )


def _server(item: Finished, step: StepResult, facts: dict[str, Any], trace_id: bytes) -> Span:
    failed = step.status != "ok"
    attrs = [
        _kv("http.request.method", "POST"),
        _kv("url.path", SERVER_PATH),
        _kv("url.scheme", "http"),
        _kv("server.address", "127.0.0.1"),
        _kv("server.port", int(facts.get("port", 0))),
    ]
    if step.http_status is not None:
        attrs.append(_kv("http.response.status_code", int(step.http_status)))
    if failed:
        attrs.append(_kv("error.type", str(step.http_status or "_OTHER")))
    attrs += _business(item.result, step)
    return Span(
        trace_id=trace_id,
        span_id=bytes.fromhex(step.span_id or ""),
        parent_span_id=bytes.fromhex(step.parent_span_id) if step.parent_span_id else b"",
        name=f"POST {SERVER_PATH}",
        kind=Span.SpanKind.SPAN_KIND_SERVER,
        flags=SAMPLED,
        start_time_unix_nano=int(facts.get("startNs", 0)),
        end_time_unix_nano=int(facts.get("endNs", 0)),
        attributes=attrs,
        # An injected error is this step failing by design, 4xx included: shown as an error.
        status=_status(failed, step.error or "step failed"),
    )


def _client(step: StepResult, call: dict[str, Any], trace_id: bytes) -> Span:
    status = call.get("httpStatus")
    error = call.get("error") or (str(status) if status and status >= 400 else None)
    return Span(
        trace_id=trace_id,
        span_id=bytes.fromhex(call["spanId"]),
        parent_span_id=bytes.fromhex(step.span_id or ""),
        name="POST",
        kind=Span.SpanKind.SPAN_KIND_CLIENT,
        flags=SAMPLED,
        start_time_unix_nano=int(call.get("startNs", 0)),
        end_time_unix_nano=int(call.get("endNs", call.get("startNs", 0))),
        attributes=_http_client(str(call.get("url", "")), status, error),
        status=_status(error is not None, f"next hop: {error}"),
    )


def _http_client(url: str, status: int | None, error: str | None) -> list[KeyValue]:
    parts = urlsplit(url)
    attrs = [
        _kv("http.request.method", "POST"),
        _kv("url.full", url),
        _kv("server.address", parts.hostname or ""),
        _kv("server.port", parts.port or 80),
    ]
    if status is not None:
        attrs.append(_kv("http.response.status_code", int(status)))
    if error is not None:
        attrs.append(_kv("error.type", error))
    return attrs


def _customer(result: CustomerResult) -> list[KeyValue]:
    c = result.customer
    return [
        _kv("bizobs.customer.id", c.id),
        _kv("bizobs.customer.segment", c.segment),
        _kv("bizobs.customer.loyalty_tier", c.loyalty_tier),
        _kv("bizobs.correlation_id", result.correlation_id),
    ]


def _business(result: CustomerResult, step: StepResult) -> list[KeyValue]:
    event = step.event or {}
    attrs = [
        _kv("bizobs.step.name", step.step_name),
        _kv("bizobs.company", str(event.get("company", ""))),
        _kv("bizobs.outcome", str(event.get("outcome", step.status))),
        *_customer(result),
    ]
    fields = event.get("fields")
    if isinstance(fields, dict):
        attrs += [_kv(f"bizobs.field.{k}", v) for k, v in fields.items() if v is not None]
    return attrs


def _log(item: Finished, step: StepResult) -> LogRecord:
    event = step.event or {}
    failed = step.status != "ok"
    stamp = event.get("timestamp")
    when = int(stamp * 1e9) if isinstance(stamp, int | float) else item.end_ns
    return LogRecord(
        time_unix_nano=when,
        observed_time_unix_nano=time.time_ns(),
        severity_number=(
            SeverityNumber.SEVERITY_NUMBER_ERROR if failed else SeverityNumber.SEVERITY_NUMBER_INFO
        ),
        severity_text="ERROR" if failed else "INFO",
        event_name="bizobs.journey.step",
        body=AnyValue(string_value=f"{step.step_name}: {event.get('outcome', step.status)}"),
        attributes=[
            _kv("event.name", "bizobs.journey.step"),
            _kv("bizobs.duration_ms", float(event.get("durationMs") or 0.0)),
            *_business(item.result, step),
        ],
        flags=SAMPLED,
        trace_id=bytes.fromhex(item.result.trace_id),
        span_id=bytes.fromhex(step.span_id or ""),
    )


def _status(error: bool, message: str) -> Status:
    if not error:
        return Status()  # unset: success is the default (semantic conventions)
    return Status(code=Status.StatusCode.STATUS_CODE_ERROR, message=message)


def _kv(key: str, value: Any) -> KeyValue:
    return KeyValue(key=key, value=_any(value))


def _any(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    return AnyValue(string_value=json.dumps(value, default=str))
