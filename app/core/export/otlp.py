"""A finished customer journey as OTLP spans and log records (the official protobuf messages).

The step services return the facts of their spans in their hop results (app/service/app.py,
"span"); here they become one SERVER span per reached hop, one CLIENT span per call to a next
hop, and the panel's root span (its call to step 1, whose id went over the wire as step 1's
parent). Spans and log records are grouped by resource: one per service process. Attribute names
and span status follow the OpenTelemetry semantic conventions of SCHEMA_URL (HTTP spans: a 4xx
leaves a SERVER span's status unset and makes a CLIENT span an error; the step's business
outcome is `bizobs.outcome`).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, SeverityNumber
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from app.core.export.agent import NAME, VERSION
from app.core.simulation import CustomerResult, StepResult

# The semantic conventions release whose names and rules the attributes below follow.
SCHEMA_URL = "https://opentelemetry.io/schemas/1.44.0"
SCOPE = InstrumentationScope(name=NAME, version=VERSION)
SERVER_PATH = "/process"  # the step service's one route: also its `http.route`
SAMPLED = 0x01
MAX_CACHED = 4096  # resources and templates per service process: a long session is bounded
EVENT_NAME = "bizobs.journey.step"
T = TypeVar("T", Span, LogRecord)


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
    """Builds export requests; keeps the Resource of each service process and, per hop, a
    template span holding the attributes every customer of that process shares. Copying a
    template is one C call; building each attribute as a Python message costs far more
    (docs/performance.md). A template is keyed by everything it holds: the process, its step,
    company and port, and the step's business fields, which belong to the journey — an
    essential service lives on through journey switches, and its next journey's description
    is a new template, never the first journey's."""

    def __init__(self, service_name: str, extra: Sequence[tuple[str, str]]) -> None:
        self._extra = [_kv(k, v) for k, v in extra]
        self._resources: dict[ResourceKey, Resource] = {}
        self._templates: dict[tuple[Any, ...], Span | LogRecord] = {}
        self._panel = (service_name, "", uuid.uuid4().hex, os.getpid())

    def traces(self, batch: Iterable[Finished]) -> bytes:
        request = ExportTraceServiceRequest()
        # Spans are built in place in the request: appending finished messages would copy them.
        spans: dict[ResourceKey, Any] = {}

        def into(key: ResourceKey) -> Any:
            return self._group(spans, key, request.resource_spans, "scope_spans", "spans")

        for item in batch:
            self._spans(item, into)
        return bytes(request.SerializeToString())

    def logs(self, batch: Iterable[Finished]) -> bytes:
        request = ExportLogsServiceRequest()
        records: dict[ResourceKey, Any] = {}
        observed = time.time_ns()
        for item in batch:
            for step in item.result.steps:
                if not (step.span and step.event):
                    continue
                key = resource_key(item, step)
                into = self._group(records, key, request.resource_logs, "scope_logs", "log_records")
                self._log(into, item, step, observed)
        return bytes(request.SerializeToString())

    def _group(
        self,
        groups: dict[ResourceKey, Any],
        key: ResourceKey,
        resources: Any,
        scopes: str,
        items: str,
    ) -> Any:
        """The list to fill for one service process: its resource group and our scope, made on
        first use (traces and logs nest the same way, under different field names)."""
        if key not in groups:
            group = resources.add()
            group.resource.CopyFrom(self._resource(key))
            group.schema_url = SCHEMA_URL
            scope = getattr(group, scopes).add()
            scope.scope.CopyFrom(SCOPE)
            scope.schema_url = SCHEMA_URL
            groups[key] = getattr(scope, items)
        return groups[key]

    @property
    def panel_key(self) -> ResourceKey:
        """The panel's own resource, with no company (its metrics are the whole panel's)."""
        return self._panel

    def resource(self, key: ResourceKey) -> Resource:
        """The Resource of `key` (cached; the same message the spans and records carry)."""
        return self._resource(key)

    def _resource(self, key: ResourceKey) -> Resource:
        found = self._resources.get(key)
        if found is None:
            if len(self._resources) >= MAX_CACHED:
                self._resources.clear()
            name, namespace, instance, pid = key
            attrs = [_kv("service.name", name), _kv("service.instance.id", instance)]
            attrs += [_kv("service.namespace", namespace)] if namespace else []
            attrs += [_kv("process.pid", pid), *self._extra]
            found = self._resources[key] = Resource(attributes=attrs)
        return found

    def _copy(self, into: Any, key: tuple[Any, ...], make: Callable[[], T]) -> T:
        """A new element of the repeated field `into`, filled from the template under `key`."""
        template = self._templates.get(key)
        if template is None:
            if len(self._templates) >= MAX_CACHED:
                self._templates.clear()
            template = self._templates[key] = make()
        out = into.add()
        out.CopyFrom(template)
        return out  # type: ignore[no-any-return]

    def _spans(self, item: Finished, into: Callable[[ResourceKey], Any]) -> None:
        result = item.result
        trace_id = bytes.fromhex(result.trace_id)
        panel = (self._panel[0], item.company, self._panel[2], self._panel[3])
        self._root(into(panel), item, trace_id)
        for step in result.steps:
            facts = step.span
            if not facts or not step.span_id:
                continue  # an unreached step has no span
            spans = into(resource_key(item, step))
            self._server(spans, item, step, facts, trace_id)
            if call := facts.get("client"):
                self._client(spans, step, call, trace_id)

    def _root(self, into: Any, item: Finished, trace_id: bytes) -> Span:
        """The panel's call to step 1: the one root of the customer's trace."""
        result = item.result
        span = self._copy(into, ("root", item.first_url), lambda: _root_template(item.first_url))
        span.trace_id = trace_id
        span.span_id = bytes.fromhex(result.root_span_id)
        latency_ns = int(result.latency_ms * 1_000_000)
        if result.started_ns:
            # The moment the request left, taken before the POST: derived from the hand-over
            # time instead, the root started after its own children when the loop was busy.
            span.start_time_unix_nano = result.started_ns
            span.end_time_unix_nano = result.started_ns + latency_ns
        else:
            span.start_time_unix_nano = item.end_ns - latency_ns
            span.end_time_unix_nano = item.end_ns
        first = result.steps[0] if result.steps else None
        if first and first.http_status is not None:
            _add(span.attributes, "http.response.status_code", int(first.http_status))
        if not result.ok:
            _add(span.attributes, "error.type", "journey_failed")
            _error(span.status, "a step of the journey failed")
        _customer(span.attributes, result)
        return span

    def _server(
        self, into: Any, item: Finished, step: StepResult, facts: dict[str, Any], trace_id: bytes
    ) -> Span:
        fields = _fields(step)
        instance = str(facts.get("instanceId"))
        key = (
            "server",
            instance,
            step.step_name,
            item.company,
            _port(facts),
            self._fields_key(fields),
        )
        span = self._copy(into, key, lambda: _server_template(item, step, facts, fields))
        span.trace_id = trace_id
        span.span_id = bytes.fromhex(step.span_id or "")
        if step.parent_span_id:
            span.parent_span_id = bytes.fromhex(step.parent_span_id)
        span.start_time_unix_nano = int(facts.get("startNs", 0))
        span.end_time_unix_nano = int(facts.get("endNs", 0))
        code = step.http_status
        if code is not None:
            _add(span.attributes, "http.response.status_code", int(code))
        _outcome(span.attributes, step)
        _incident(span.attributes, facts)
        if (error_type := server_error_type(step)) is not None:
            _add(span.attributes, "error.type", error_type)
            _error(span.status, step.error or "step failed")
        _customer(span.attributes, item.result)
        return span

    def _client(self, into: Any, step: StepResult, call: dict[str, Any], trace_id: bytes) -> Span:
        url = str(call.get("url", ""))
        span = self._copy(into, ("client", url), lambda: _client_template(url))
        span.trace_id = trace_id
        span.span_id = bytes.fromhex(call["spanId"])
        span.parent_span_id = bytes.fromhex(step.span_id or "")
        span.start_time_unix_nano = int(call.get("startNs", 0))
        span.end_time_unix_nano = int(call.get("endNs", call.get("startNs", 0)))
        status = call.get("httpStatus")
        if status is not None:
            _add(span.attributes, "http.response.status_code", int(status))
        error = call.get("error") or (str(status) if status and status >= 400 else None)
        if error is not None:
            _add(span.attributes, "error.type", error)
            _error(span.status, f"next hop: {error}")
        return span

    def _log(self, into: Any, item: Finished, step: StepResult, observed: int) -> LogRecord:
        event = step.event or {}
        facts = step.span or {}
        fields = _fields(step)
        instance = str(facts.get("instanceId"))
        key = ("log", instance, step.step_name, item.company, self._fields_key(fields))
        record = self._copy(into, key, lambda: _log_template(item, step, fields))
        failed = step.status != "ok"
        stamp = event.get("timestamp")
        record.time_unix_nano = int(stamp * 1e9) if isinstance(stamp, int | float) else item.end_ns
        record.observed_time_unix_nano = observed
        if failed:
            record.severity_number = SeverityNumber.SEVERITY_NUMBER_ERROR
            record.severity_text = "ERROR"
        outcome, error_type = _outcome(record.attributes, step)
        why = f" ({error_type})" if error_type else ""
        record.body.string_value = f"{step.step_name}: {outcome}{why}"
        record.trace_id = bytes.fromhex(item.result.trace_id)
        record.span_id = bytes.fromhex(step.span_id or "")
        _add(record.attributes, "bizobs.duration_ms", float(event.get("durationMs") or 0.0))
        _incident(record.attributes, facts)
        _customer(record.attributes, item.result)
        return record

    def _fields_key(self, fields: dict[str, Any]) -> Any:
        """The business fields as part of a template's key, exactly: equal keys, equal
        attributes (bench/export.py overrides this to measure the per-hop key it replaced)."""
        items = tuple(fields.items())
        if all(type(value) is str for _, value in items):
            return items  # the usual case: text compares exactly, and cheaply
        return json.dumps(fields, sort_keys=True, default=str)  # 1, 1.0 and true stay apart


def server_error_type(step: StepResult) -> str | None:
    """The SERVER span's `error.type` (and its metric's): a 4xx is the caller's error, so a
    SERVER span leaves its status unset (the CLIENT span calling it and the root are errors)
    and the step's failure is its outcome; a 5xx or no answer is the server's error."""
    code = step.http_status
    if step.status != "ok" and (code is None or code >= 500):
        return str(code or "_OTHER")
    return None


def resource_key(item: Finished, step: StepResult) -> ResourceKey:
    """The service process that served `step`: the resource of its spans, logs and metrics."""
    facts = step.span or {}
    return (step.service_name, item.company, str(facts.get("instanceId")), int(facts.get("pid", 0)))


def _port(facts: dict[str, Any]) -> int:
    return int(facts.get("port", 0))


def _outcome(attrs: Any, step: StepResult) -> tuple[str, str | None]:
    """`bizobs.outcome` ("success" or "failed") and, for a failure, `bizobs.error_type` (the
    injected error: payment, timeout, ...), as the step's business event says."""
    event = step.event or {}
    outcome = str(event.get("outcome") or ("success" if step.status == "ok" else "failed"))
    error_type = event.get("errorType")
    _add(attrs, "bizobs.outcome", outcome)
    if error_type:
        _add(attrs, "bizobs.error_type", str(error_type))
    return outcome, str(error_type) if error_type else None


def _incident(attrs: Any, facts: dict[str, Any]) -> None:
    """The incident the hop said it was under (app/service/incidents.py), if any: a backend
    groups the spans and events of an incident by these."""
    incident_id = facts.get("incidentId")
    if incident_id:
        _add(attrs, "bizobs.incident.id", str(incident_id))
        _add(attrs, "bizobs.incident.kind", str(facts.get("incidentKind", "")))


def _root_template(first_url: str) -> Span:
    return Span(
        name="customer journey",
        kind=Span.SpanKind.SPAN_KIND_CLIENT,
        flags=SAMPLED,
        attributes=_http_client(first_url),
    )


def _server_template(
    item: Finished, step: StepResult, facts: dict[str, Any], fields: dict[str, Any]
) -> Span:
    attrs = [
        _kv("http.request.method", "POST"),
        _kv("http.route", SERVER_PATH),
        _kv("url.path", SERVER_PATH),
        _kv("url.scheme", "http"),
        _kv("server.address", "127.0.0.1"),
        _kv("server.port", _port(facts)),
        *_step(item, fields, step),
    ]
    return Span(
        name=f"POST {SERVER_PATH}",  # {method} {http.route}
        kind=Span.SpanKind.SPAN_KIND_SERVER,
        flags=SAMPLED,
        attributes=attrs,
    )


def _client_template(url: str) -> Span:
    return Span(
        name="POST",
        kind=Span.SpanKind.SPAN_KIND_CLIENT,
        flags=SAMPLED,
        attributes=_http_client(url),
    )


def _log_template(item: Finished, step: StepResult, fields: dict[str, Any]) -> LogRecord:
    return LogRecord(
        severity_number=SeverityNumber.SEVERITY_NUMBER_INFO,
        severity_text="INFO",
        event_name=EVENT_NAME,  # the field, not the `event.name` attribute it replaced
        attributes=_step(item, fields, step),
        flags=SAMPLED,
    )


def _http_client(url: str) -> list[KeyValue]:
    parts = urlsplit(url)
    return [
        _kv("http.request.method", "POST"),
        _kv("url.full", url),
        _kv("server.address", parts.hostname or ""),
        _kv("server.port", parts.port or 80),
    ]


def _customer(attrs: Any, result: CustomerResult) -> None:
    c = result.customer
    _add(attrs, "bizobs.customer.id", c.id)
    _add(attrs, "bizobs.customer.segment", c.segment)
    _add(attrs, "bizobs.customer.loyalty_tier", c.loyalty_tier)
    _add(attrs, "bizobs.correlation_id", result.correlation_id)


def _fields(step: StepResult) -> dict[str, Any]:
    """The step's business fields (description, category, domain, ...), as its event says."""
    fields = (step.event or {}).get("fields")
    return fields if isinstance(fields, dict) else {}


def _step(item: Finished, fields: dict[str, Any], step: StepResult) -> list[KeyValue]:
    """The attributes every customer of this step shares (its template's)."""
    attrs = [_kv("bizobs.step.name", step.step_name), _kv("bizobs.company", item.company)]
    attrs += [_kv(f"bizobs.field.{k}", v) for k, v in fields.items() if v is not None]
    return attrs


def _error(status: Status, message: str) -> None:
    # Success leaves the status unset, as the semantic conventions ask.
    status.code = Status.StatusCode.STATUS_CODE_ERROR
    status.message = message


def _add(attrs: Any, key: str, value: Any) -> None:
    """Append one attribute in place (no intermediate messages to copy)."""
    _set(attrs.add(key=key).value, value)


def _set(target: AnyValue, value: Any) -> None:
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, str):
        target.string_value = value
    else:
        target.string_value = json.dumps(value, default=str)


def _kv(key: str, value: Any) -> KeyValue:
    return KeyValue(key=key, value=_any(value))


def _any(value: Any) -> AnyValue:
    out = AnyValue()
    _set(out, value)
    return out
