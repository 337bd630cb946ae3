"""Export settings from the OpenTelemetry SDK environment conventions, checked at start.

OTEL_EXPORTER_OTLP_ENDPOINT (a base URL: /v1/traces, /v1/logs and /v1/metrics are appended)
or the per-signal OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / ..._LOGS_ENDPOINT / ..._METRICS_ENDPOINT
(used as they are); OTEL_EXPORTER_OTLP_HEADERS or the per-signal ..._TRACES_HEADERS /
..._LOGS_HEADERS / ..._METRICS_HEADERS, which win (`k=v,k2=v2`, percent-decoded, so
`Authorization=Api-Token%20xyz` works); OTEL_RESOURCE_ATTRIBUTES; OTEL_SERVICE_NAME (the
panel's own resource); OTEL_TRACES_EXPORTER / OTEL_LOGS_EXPORTER / OTEL_METRICS_EXPORTER
(`otlp` or `none`); OTEL_METRIC_EXPORT_INTERVAL (ms, default 60000, at least
MIN_METRIC_INTERVAL_MS); OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE (only
`cumulative`); OTEL_SDK_DISABLED;
OTEL_EXPORTER_OTLP_PROTOCOL (only `http/protobuf`); OTEL_EXPORTER_OTLP_TIMEOUT and the batch
processor's OTEL_BSP_SCHEDULE_DELAY / _MAX_QUEUE_SIZE / _MAX_EXPORT_BATCH_SIZE (ms, items).
Business events as CloudEvents: BIZOBS_BIZEVENTS_URL with BIZOBS_BIZEVENTS_HEADERS, and
BIZOBS_BIZEVENTS_MODE (`batch`: one JSON array per request, the default; `structured`: one
event per request).
An unset endpoint means no export. Anything malformed is an ExportSettingsError naming the
variable, never a crash later.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import unquote, urlsplit

from app.common.numbers import ascii_int
from app.core.errors import SettingsError
from app.core.export.retry import RetryPolicy

PROTOCOL = "http/protobuf"
DEFAULT_SERVICE_NAME = "bizobs-panel"
# RFC 7230 token: what an HTTP header name may be.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Control characters: C0 but tab, DEL, and C1 (U+0080-U+009F, NEL U+0085 among them), which
# HTTP clients and proxies read as line ends or drop.
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
MAX_MS = 10_000_000
# Each metrics collection reads the panel's registry, which scans the OS for the ports' states
# (as a /metrics scrape does): more often than once a second would be a scan loop.
MIN_METRIC_INTERVAL_MS = 1000
DEFAULT_METRIC_INTERVAL_MS = 60_000  # the SDK's default
TEMPORALITY = "cumulative"


class ExportSettingsError(SettingsError):
    """An OTEL_* or BIZOBS_BIZEVENTS_* setting cannot be used."""


class Signal(StrEnum):
    TRACES = "traces"
    LOGS = "logs"
    METRICS = "metrics"
    BIZEVENTS = "bizevents"


class EventsMode(StrEnum):
    """How business events travel as CloudEvents over HTTP (the CloudEvents HTTP binding)."""

    BATCH = "batch"  # application/cloudevents-batch+json: a JSON array per request
    STRUCTURED = "structured"  # application/cloudevents+json: one event per request


@dataclass(frozen=True)
class Endpoint:
    url: str
    # Secrets live here (Authorization, Api-Token): never in repr, logs or status.
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def display_url(self) -> str:
        """The URL without user info, query or fragment: safe to show."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"


@dataclass(frozen=True)
class ExportSettings:
    traces: Endpoint | None = None
    logs: Endpoint | None = None
    metrics: Endpoint | None = None
    bizevents: Endpoint | None = None
    bizevents_mode: EventsMode = EventsMode.BATCH
    resource_attributes: tuple[tuple[str, str], ...] = ()
    service_name: str = DEFAULT_SERVICE_NAME
    timeout_s: float = 10.0
    # The SDK's batch delay is 5 s; a presenter wants the data on screen within a second.
    schedule_delay_s: float = 1.0
    max_queue: int = 2048
    max_batch: int = 512
    retry_initial_s: float = 0.5
    retry_max_s: float = 5.0
    retry_budget_s: float = 30.0  # a batch still failing after this long is given up
    metric_interval_s: float = DEFAULT_METRIC_INTERVAL_MS / 1000

    @property
    def enabled(self) -> bool:
        return any(self.endpoint(s) for s in Signal)

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(self.retry_initial_s, self.retry_max_s, self.retry_budget_s)

    def endpoint(self, signal: Signal) -> Endpoint | None:
        own = {Signal.TRACES: self.traces, Signal.LOGS: self.logs, Signal.METRICS: self.metrics}
        return own.get(signal, self.bizevents)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ExportSettings:
        env = os.environ if env is None else env
        if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return cls()
        protocol = env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip()
        if protocol and protocol != PROTOCOL:
            raise ExportSettingsError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: only {PROTOCOL!r} is supported"
            )
        _check_temporality(env)
        return cls(
            traces=_otlp_endpoint(env, "TRACES", "v1/traces"),
            logs=_otlp_endpoint(env, "LOGS", "v1/logs"),
            metrics=_otlp_endpoint(env, "METRICS", "v1/metrics"),
            bizevents=_bizevents_endpoint(env),
            bizevents_mode=_events_mode(env),
            resource_attributes=parse_pairs(env, "OTEL_RESOURCE_ATTRIBUTES"),
            service_name=env.get("OTEL_SERVICE_NAME", "").strip() or DEFAULT_SERVICE_NAME,
            timeout_s=_ms(env, "OTEL_EXPORTER_OTLP_TIMEOUT", 10_000) / 1000,
            schedule_delay_s=_ms(env, "OTEL_BSP_SCHEDULE_DELAY", 1000) / 1000,
            max_queue=_ms(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048),
            max_batch=_ms(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512),
            metric_interval_s=_metric_interval_ms(env) / 1000,
        )


def _otlp_endpoint(env: Mapping[str, str], signal: str, path: str) -> Endpoint | None:
    exporter = env.get(f"OTEL_{signal}_EXPORTER", "otlp").strip().lower() or "otlp"
    if exporter not in ("otlp", "none"):
        raise ExportSettingsError(
            f"OTEL_{signal}_EXPORTER={exporter!r}: use 'otlp' or 'none' (only OTLP is built in)"
        )
    own = f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"
    if env.get(own, "").strip():
        url = check_url(own, env[own].strip())  # a per-signal endpoint is used as it is
    elif env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
        base = check_url("OTEL_EXPORTER_OTLP_ENDPOINT", env["OTEL_EXPORTER_OTLP_ENDPOINT"].strip())
        url = base.rstrip("/") + "/" + path
    else:
        return None
    own_headers = f"OTEL_EXPORTER_OTLP_{signal}_HEADERS"
    name = own_headers if own_headers in env else "OTEL_EXPORTER_OTLP_HEADERS"
    headers = check_headers(name, parse_pairs(env, name))
    return None if exporter == "none" else Endpoint(url, headers)


def _check_temporality(env: Mapping[str, str]) -> None:
    """Only cumulative sums and histograms are sent: a preference for another temporality is
    refused at start rather than silently not honoured."""
    name = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"
    raw = env.get(name, "").strip()
    if raw and raw.lower() != TEMPORALITY:
        raise ExportSettingsError(
            f"{name}={raw!r}: only {TEMPORALITY!r} is supported (a collector's "
            "cumulativetodelta processor converts for a backend that wants delta)"
        )


def _metric_interval_ms(env: Mapping[str, str]) -> int:
    name = "OTEL_METRIC_EXPORT_INTERVAL"
    raw = env.get(name, "").strip()
    if not raw:
        return DEFAULT_METRIC_INTERVAL_MS
    value = ascii_int(raw, MIN_METRIC_INTERVAL_MS, MAX_MS)
    if value is None:
        raise ExportSettingsError(
            f"{name}={raw!r} must be a whole number of ms from {MIN_METRIC_INTERVAL_MS} to {MAX_MS}"
        )
    return value


def _bizevents_endpoint(env: Mapping[str, str]) -> Endpoint | None:
    raw = env.get("BIZOBS_BIZEVENTS_URL", "").strip()
    headers = check_headers(
        "BIZOBS_BIZEVENTS_HEADERS", parse_pairs(env, "BIZOBS_BIZEVENTS_HEADERS")
    )
    return Endpoint(check_url("BIZOBS_BIZEVENTS_URL", raw), headers) if raw else None


def _events_mode(env: Mapping[str, str]) -> EventsMode:
    raw = env.get("BIZOBS_BIZEVENTS_MODE", "").strip()
    try:
        return EventsMode(raw.lower() or EventsMode.BATCH)
    except ValueError:
        choices = " or ".join(repr(m.value) for m in EventsMode)
        raise ExportSettingsError(f"BIZOBS_BIZEVENTS_MODE={raw!r}: use {choices}") from None


def check_url(name: str, url: str) -> str:
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError as exc:  # e.g. a port that is no number or out of range
        raise ExportSettingsError(f"{name}: {exc}; expected e.g. http://localhost:4318") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ExportSettingsError(
            f"{name}={_shown(url)!r} is not an http(s) URL with a host, e.g. http://localhost:4318"
        )
    return url


def _shown(url: str) -> str:
    # A URL with user info may carry a password; show only what precedes it.
    return url.split("@")[-1] if "@" in url else url


def parse_pairs(env: Mapping[str, str], name: str) -> tuple[tuple[str, str], ...]:
    """`k=v,k2=v2` as the SDK reads OTEL_*_HEADERS and OTEL_RESOURCE_ATTRIBUTES: entries
    split at commas, each at its first '=', keys and values trimmed and percent-decoded."""
    raw = env.get(name, "")
    pairs = []
    for index, entry in enumerate(raw.split(",")):
        if not entry.strip():
            continue
        key, eq, value = entry.partition("=")
        key, value = unquote(key.strip()), unquote(value.strip())
        if not eq or not key:
            # The entry itself may be a secret (a token pasted without its name): not shown.
            raise ExportSettingsError(
                f"{name}: entry {index + 1} is not key=value (expected e.g. "
                "'Authorization=Api-Token%20abc,x-team=demo')"
            )
        pairs.append((key, value))
    return tuple(pairs)


def check_headers(name: str, pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    for key, value in pairs:
        if not _TOKEN.fullmatch(key):
            raise ExportSettingsError(f"{name}: {key!r} is not a valid HTTP header name")
        if _BAD_VALUE.search(value):
            raise ExportSettingsError(f"{name}: the value of {key!r} has control characters")
    return pairs


def _ms(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    value = ascii_int(raw, 1, MAX_MS)
    if value is None:
        raise ExportSettingsError(f"{name}={raw!r} must be a whole number from 1 to {MAX_MS}")
    return value
