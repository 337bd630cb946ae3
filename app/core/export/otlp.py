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
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, SeverityNumber
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from app.core.export.agent import NAME, VERSION
from app.core.export.wire import (
    I64,
    LEN,
    VARINT,
    any_value,
    attribute,
    enum,
    fixed64,
    joined,
    key_value,
    length_delimited,
    raw,
    tag,
    text,
)
from app.core.simulation import CustomerResult, StepResult

# The semantic conventions release whose names and rules the attributes below follow.
SCHEMA_URL = "https://opentelemetry.io/schemas/1.44.0"
SCOPE = InstrumentationScope(name=NAME, version=VERSION)
SERVER_PATH = "/process"  # the step service's one route: also its `http.route`
SAMPLED = 0x01
MAX_CACHED = 4096  # resources and templates per service process: a long session is bounded
EVENT_NAME = "bizobs.journey.step"

# Field tags of the messages written as bytes (trace/v1, logs/v1 and the collectors' requests).
_TRACE_ID, _SPAN_ID, _PARENT = tag(1, LEN), tag(2, LEN), tag(4, LEN)
_START, _END, _SPAN_ATTR, _SPAN_STATUS = tag(7, I64), tag(8, I64), tag(9, LEN), tag(15, LEN)
_STATUS_MESSAGE, _STATUS_CODE = tag(2, LEN), tag(3, VARINT)
_LOG_TIME, _LOG_OBSERVED = tag(1, I64), tag(11, I64)
_LOG_SEVERITY, _LOG_SEVERITY_TEXT, _LOG_BODY = tag(2, VARINT), tag(3, LEN), tag(5, LEN)
_LOG_ATTR, _LOG_TRACE_ID, _LOG_SPAN_ID = tag(6, LEN), tag(9, LEN), tag(10, LEN)
# Request → resource groups (resource, scope groups, schema) → scope (scope, items, schema):
# traces and logs use the same numbers.
_GROUP, _RESOURCE, _SCOPE_GROUP, _ITEM = tag(1, LEN), tag(1, LEN), tag(2, LEN), tag(2, LEN)
_SCHEMA_FIELD = text(tag(3, LEN), SCHEMA_URL)
_SCOPE_FIELD = length_delimited(tag(1, LEN), SCOPE.SerializeToString())
_STATUS_CODE_KEY, _ERROR_TYPE_KEY = b"http.response.status_code", b"error.type"


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
    """Builds export requests as protobuf bytes (app/core/export/wire.py). Keeps, serialised,
    the Resource of each service process and, per hop, a template holding the attributes every
    customer of that process shares; a customer's own fields are appended to a copy of those
    bytes (docs/performance.md, "Export"). A template is keyed by everything it holds: the
    process, its step, company and port, and the step's business fields, which belong to the
    journey — an essential service lives on through journey switches, and its next journey's
    description is a new template, never the first journey's."""

    def __init__(self, service_name: str, extra: Sequence[tuple[str, str]]) -> None:
        self._extra = [_kv(k, v) for k, v in extra]
        self._resources: dict[ResourceKey, Resource] = {}
        self._resource_bytes: dict[ResourceKey, bytes] = {}
        self._templates: dict[tuple[Any, ...], bytes] = {}
        self._attributes: dict[tuple[bytes, bytes, type, Any], bytes] = {}
        self._panel = (service_name, "", uuid.uuid4().hex, os.getpid())

    def traces(self, batch: Iterable[Finished]) -> bytes:
        groups: dict[ResourceKey, list[bytes]] = {}
        for item in batch:
            self._spans(item, groups)
        return self._request(groups)

    def logs(self, batch: Iterable[Finished]) -> bytes:
        groups: dict[ResourceKey, list[bytes]] = {}
        observed = time.time_ns()
        for item in batch:
            customer = b""
            for step in item.result.steps:
                if not (step.span and step.event):
                    continue
                customer = customer or joined(_LOG_ATTR, _customer(item.result))
                records = groups.setdefault(resource_key(item, step), [])
                records.append(self._log(item, step, observed, customer))
        return self._request(groups)

    def _request(self, groups: dict[ResourceKey, list[bytes]]) -> bytes:
        """ExportTraceServiceRequest or ExportLogsServiceRequest: one resource group per service
        process and in it our scope (traces and logs nest alike, with the same field numbers)."""
        out = []
        for key, items in groups.items():
            scope = _SCOPE_FIELD + joined(_ITEM, items) + _SCHEMA_FIELD
            group = length_delimited(_RESOURCE, self._resource_wire(key))
            group += length_delimited(_SCOPE_GROUP, scope) + _SCHEMA_FIELD
            out.append(length_delimited(_GROUP, group))
        return b"".join(out)

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

    def _resource_wire(self, key: ResourceKey) -> bytes:
        found = self._resource_bytes.get(key)
        if found is None:
            if len(self._resource_bytes) >= MAX_CACHED:
                self._resource_bytes.clear()
            found = self._resource_bytes[key] = self._resource(key).SerializeToString()
        return found

    def _template(self, key: tuple[Any, ...], make: Callable[[], Span | LogRecord]) -> bytes:
        """The serialised template under `key`, made (with the message API, once) on first use."""
        found = self._templates.get(key)
        if found is None:
            if len(self._templates) >= MAX_CACHED:
                self._templates.clear()
            found = self._templates[key] = make().SerializeToString()
        return found

    def _attribute(self, field_tag: bytes, key: bytes, value: Any) -> bytes:
        """One attribute of the few values a status code or an outcome takes, encoded once
        (its type is part of the key: 1 and True are different attributes)."""
        memo = (field_tag, key, type(value), value)
        found = self._attributes.get(memo)
        if found is None:
            if len(self._attributes) >= MAX_CACHED:
                self._attributes.clear()
            found = self._attributes[memo] = attribute(field_tag, key, value)
        return found

    def _spans(self, item: Finished, groups: dict[ResourceKey, list[bytes]]) -> None:
        result = item.result
        trace_id = raw(_TRACE_ID, bytes.fromhex(result.trace_id))
        customer = joined(_SPAN_ATTR, _customer(result))  # the same on every span of the trace
        panel = (self._panel[0], item.company, self._panel[2], self._panel[3])
        groups.setdefault(panel, []).append(self._root(item, trace_id, customer))
        for step in result.steps:
            facts = step.span
            if not facts or not step.span_id:
                continue  # an unreached step has no span
            spans = groups.setdefault(resource_key(item, step), [])
            spans.append(self._server(item, step, facts, trace_id, customer))
            if call := facts.get("client"):
                spans.append(self._client(step, call, trace_id))

    def _root(self, item: Finished, trace_id: bytes, customer: bytes) -> bytes:
        """The panel's call to step 1: the one root of the customer's trace."""
        result = item.result
        url = item.first_url
        parts = [self._template(("root", url), lambda: _root_template(url)), trace_id]
        parts.append(raw(_SPAN_ID, bytes.fromhex(result.root_span_id)))
        latency_ns = int(result.latency_ms * 1_000_000)
        # The moment the request left, taken before the POST: derived from the hand-over
        # time instead, the root started after its own children when the loop was busy.
        start = result.started_ns or item.end_ns - latency_ns
        parts += [fixed64(_START, start), fixed64(_END, start + latency_ns)]
        first = result.steps[0] if result.steps else None
        if first and first.http_status is not None:
            parts.append(self._attribute(_SPAN_ATTR, _STATUS_CODE_KEY, int(first.http_status)))
        if not result.ok:
            parts.append(attribute(_SPAN_ATTR, _ERROR_TYPE_KEY, "journey_failed"))
            parts.append(_error("a step of the journey failed"))
        parts.append(customer)
        return b"".join(parts)

    def _server(
        self,
        item: Finished,
        step: StepResult,
        facts: dict[str, Any],
        trace_id: bytes,
        customer: bytes,
    ) -> bytes:
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
        parts = [self._template(key, lambda: _server_template(item, step, facts, fields))]
        parts += [trace_id, raw(_SPAN_ID, bytes.fromhex(step.span_id or ""))]
        if step.parent_span_id:
            parts.append(raw(_PARENT, bytes.fromhex(step.parent_span_id)))
        parts.append(fixed64(_START, int(facts.get("startNs", 0))))
        parts.append(fixed64(_END, int(facts.get("endNs", 0))))
        attrs: list[tuple[bytes, Any]] = []
        if step.http_status is not None:
            attrs.append((_STATUS_CODE_KEY, int(step.http_status)))
        attrs += _outcome(step)[0] + _incident(facts)
        if (error_type := server_error_type(step)) is not None:
            attrs.append((_ERROR_TYPE_KEY, error_type))
            parts.append(_error(step.error or "step failed"))
        parts += [self._attribute(_SPAN_ATTR, k, v) for k, v in attrs]
        parts.append(customer)
        return b"".join(parts)

    def _client(self, step: StepResult, call: dict[str, Any], trace_id: bytes) -> bytes:
        url = str(call.get("url", ""))
        parts = [self._template(("client", url), lambda: _client_template(url)), trace_id]
        parts.append(raw(_SPAN_ID, bytes.fromhex(call["spanId"])))
        parts.append(raw(_PARENT, bytes.fromhex(step.span_id or "")))
        start = int(call.get("startNs", 0))
        parts += [fixed64(_START, start), fixed64(_END, int(call.get("endNs", start)))]
        status = call.get("httpStatus")
        if status is not None:
            parts.append(self._attribute(_SPAN_ATTR, _STATUS_CODE_KEY, int(status)))
        error = call.get("error") or (str(status) if status and status >= 400 else None)
        if error is not None:
            parts.append(attribute(_SPAN_ATTR, _ERROR_TYPE_KEY, error))
            parts.append(_error(f"next hop: {error}"))
        return b"".join(parts)

    def _log(self, item: Finished, step: StepResult, observed: int, customer: bytes) -> bytes:
        event = step.event or {}
        facts = step.span or {}
        fields = _fields(step)
        instance = str(facts.get("instanceId"))
        key = ("log", instance, step.step_name, item.company, self._fields_key(fields))
        parts = [self._template(key, lambda: _log_template(item, step, fields))]
        stamp = event.get("timestamp")
        when = int(stamp * 1e9) if isinstance(stamp, int | float) else item.end_ns
        parts += [fixed64(_LOG_TIME, when), fixed64(_LOG_OBSERVED, observed)]
        if step.status != "ok":  # after the template's INFO: the last value of a field wins
            parts.append(enum(_LOG_SEVERITY, SeverityNumber.SEVERITY_NUMBER_ERROR))
            parts.append(text(_LOG_SEVERITY_TEXT, "ERROR"))
        outcome_attrs, outcome, error_type = _outcome(step)
        why = f" ({error_type})" if error_type else ""
        parts.append(length_delimited(_LOG_BODY, any_value(f"{step.step_name}: {outcome}{why}")))
        parts.append(raw(_LOG_TRACE_ID, bytes.fromhex(item.result.trace_id)))
        parts.append(raw(_LOG_SPAN_ID, bytes.fromhex(step.span_id or "")))
        parts += [self._attribute(_LOG_ATTR, k, v) for k, v in outcome_attrs]
        duration = float(event.get("durationMs") or 0.0)  # many values: not memoised
        parts.append(attribute(_LOG_ATTR, b"bizobs.duration_ms", duration))
        parts += [self._attribute(_LOG_ATTR, k, v) for k, v in _incident(facts)]
        parts.append(customer)
        return b"".join(parts)

    def _fields_key(self, fields: dict[str, Any]) -> Any:
        """The business fields as part of a template's key, exactly: equal keys, equal
        attributes (bench/export.py overrides this to measure the per-hop key it replaced).
        Each value goes with its type, so 1, 1.0, True and "1" stay apart."""
        try:
            key = (tuple(fields.items()), tuple(map(type, fields.values())))
            hash(key)
            return key
        except TypeError:  # a list or an object: its JSON text
            return json.dumps(fields, sort_keys=True, default=str)


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


def _outcome(step: StepResult) -> tuple[list[tuple[bytes, Any]], str, str | None]:
    """`bizobs.outcome` ("success" or "failed") and, for a failure, `bizobs.error_type` (the
    injected error: payment, timeout, ...), as the step's business event says."""
    event = step.event or {}
    outcome = str(event.get("outcome") or ("success" if step.status == "ok" else "failed"))
    error_type = event.get("errorType")
    attrs: list[tuple[bytes, Any]] = [(b"bizobs.outcome", outcome)]
    if error_type:
        attrs.append((b"bizobs.error_type", str(error_type)))
    return attrs, outcome, str(error_type) if error_type else None


def _incident(facts: dict[str, Any]) -> list[tuple[bytes, Any]]:
    """The incident the hop said it was under (app/service/incidents.py), if any: a backend
    groups the spans and events of an incident by these."""
    incident_id = facts.get("incidentId")
    if not incident_id:
        return []
    kind = str(facts.get("incidentKind", ""))
    return [(b"bizobs.incident.id", str(incident_id)), (b"bizobs.incident.kind", kind)]


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


def _customer(result: CustomerResult) -> list[bytes]:
    """The customer's attributes, as KeyValue payloads: every span and record of it has them."""
    c = result.customer
    return [
        key_value(b"bizobs.customer.id", c.id),
        key_value(b"bizobs.customer.segment", c.segment),
        key_value(b"bizobs.customer.loyalty_tier", c.loyalty_tier),
        key_value(b"bizobs.correlation_id", result.correlation_id),
    ]


def _fields(step: StepResult) -> dict[str, Any]:
    """The step's business fields (description, category, domain, ...), as its event says."""
    fields = (step.event or {}).get("fields")
    return fields if isinstance(fields, dict) else {}


def _step(item: Finished, fields: dict[str, Any], step: StepResult) -> list[KeyValue]:
    """The attributes every customer of this step shares (its template's)."""
    attrs = [_kv("bizobs.step.name", step.step_name), _kv("bizobs.company", item.company)]
    attrs += [_kv(f"bizobs.field.{k}", v) for k, v in fields.items() if v is not None]
    return attrs


def _error(message: str) -> bytes:
    # Success leaves the status unset, as the semantic conventions ask.
    status = text(_STATUS_MESSAGE, message)
    status += enum(_STATUS_CODE, Status.StatusCode.STATUS_CODE_ERROR)
    return length_delimited(_SPAN_STATUS, status)


def _kv(key: str, value: Any) -> KeyValue:
    """A KeyValue message, for templates and resources (made once each)."""
    out = KeyValue()
    out.ParseFromString(key_value(key, value))
    return out
