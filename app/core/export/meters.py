"""OTLP metrics: the step services' `http.server.request.duration` and the panel's cleanups.

The step services measure nothing themselves: each finished customer's SERVER span facts (the
same ones its spans are built from, app/core/export/otlp.py) are folded into one cumulative
histogram per service process and attribute set as the exporter is handed the customer
(`ServerDurations.record`: a dictionary look-up and a bisect per hop, no I/O). The panel's own
metrics are read from its Prometheus registry (app/core/metrics.py) at collection time, never
counted a second time. Every `metric_interval_s` a `Collected` — frozen values, nothing shared
with what goes on being fed — is offered to the metrics channel, which encodes, sends, retries
and counts it like every other signal (docs/architecture.md, "Export").

Bounded: at most MAX_SERIES attribute sets (service process x status), observations beyond
them dropped and counted; a series no customer has fed for IDLE_S is forgotten (its process
was most likely stopped by a journey switch), so a long session does not fill the cap.
"""

from __future__ import annotations

import bisect
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric
from prometheus_client import CollectorRegistry

from app.core.export.otlp import (
    SCHEMA_URL,
    SCOPE,
    SERVER_PATH,
    Encoder,
    Finished,
    ResourceKey,
    resource_key,
    server_error_type,
)

DURATION = "http.server.request.duration"
DURATION_HELP = "Duration of HTTP server requests."  # the semantic conventions' brief
# The semantic conventions' advice for this histogram, in seconds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
MAX_SERIES = 2000  # the SDK's default cardinality limit of a metric
IDLE_S = 600.0
CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
# The panel's metrics sent over OTLP: the cleanups and the pool they keep clean. Names are the
# Prometheus families' (a counter without `_total`, which OTLP-to-Prometheus adds back).
PANEL_FAMILIES = frozenset(
    {
        "bizobs_cleanups",
        "bizobs_cleanup_stopped",
        "bizobs_cleanup_stale_cleaned",
        "bizobs_cleanup_orphans_reaped",
        "bizobs_cleanup_failures",
        "bizobs_cleanup_duration_seconds",
        "bizobs_ports",
        "bizobs_pool_size",
        "bizobs_alerts",
    }
)

Attributes = tuple[tuple[str, str | int], ...]


class Kind(StrEnum):
    SUM = "sum"  # monotonic, cumulative (a Prometheus counter)
    GAUGE = "gauge"
    HISTOGRAM = "histogram"  # explicit buckets, cumulative


@dataclass(frozen=True)
class Point:
    """One data point: a sum's or gauge's `value`, or a histogram's buckets (`counts` has one
    more entry than `bounds`: the last is above every bound)."""

    attributes: Attributes
    start_ns: int
    value: float = 0.0
    bounds: tuple[float, ...] = ()
    counts: tuple[int, ...] = ()
    total: float = 0.0
    count: int = 0
    low: float | None = None  # the histogram's min and max, when it has them
    high: float | None = None


@dataclass(frozen=True)
class Instrument:
    name: str
    description: str
    unit: str
    kind: Kind
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Collected:
    """One collection: every resource's instruments at `at_ns` (wall clock)."""

    at_ns: int
    groups: tuple[tuple[ResourceKey, tuple[Instrument, ...]], ...]

    @property
    def points(self) -> int:
        return sum(len(i.points) for _, instruments in self.groups for i in instruments)


class _Series:
    """One cumulative histogram, fed on the event loop's thread."""

    __slots__ = ("count", "counts", "high", "low", "start_ns", "total", "touched")

    def __init__(self, now: float) -> None:
        self.counts = [0] * (len(DURATION_BUCKETS) + 1)
        self.total = 0.0
        self.count = 0
        self.low = math.inf
        self.high = -math.inf
        self.start_ns = time.time_ns()
        self.touched = now

    def add(self, seconds: float, now: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bound's bucket (le).
        self.counts[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.total += seconds
        self.count += 1
        self.low = min(self.low, seconds)
        self.high = max(self.high, seconds)
        self.touched = now

    def point(self, attributes: Attributes) -> Point:
        return Point(
            attributes,
            self.start_ns,
            bounds=DURATION_BUCKETS,
            counts=tuple(self.counts),
            total=self.total,
            count=self.count,
            low=self.low,
            high=self.high,
        )


SeriesKey = tuple[ResourceKey, int | None, str | None]  # process, status code, error.type


class ServerDurations:
    """`http.server.request.duration` of every step service process, from the SERVER span
    facts of the customers handed over."""

    def __init__(
        self,
        cap: int = MAX_SERIES,
        idle_s: float = IDLE_S,
        clock: Callable[[], float] = time.monotonic,  # a test's own clock, to pass idle time
    ) -> None:
        self.cap = cap
        self.idle_s = idle_s
        self._clock = clock
        self.dropped = 0  # observations of attribute sets beyond the cap
        self._series: dict[SeriesKey, _Series] = {}

    def record(self, item: Finished) -> None:
        now = self._clock()
        for step in item.result.steps:
            facts = step.span
            if not facts or not step.span_id:
                continue  # an unreached step has no SERVER span, so no request measured
            key = (resource_key(item, step), step.http_status, server_error_type(step))
            series = self._series.get(key)
            if series is None:
                if len(self._series) >= self.cap:
                    self.dropped += 1
                    continue
                series = self._series[key] = _Series(now)
            ns = int(facts.get("endNs", 0)) - int(facts.get("startNs", 0))
            series.add(max(ns, 0) / 1e9, now)

    def collect(self) -> Iterator[tuple[ResourceKey, tuple[Instrument, ...]]]:
        """Each process's instrument now; series idle for `idle_s` are forgotten first."""
        now = self._clock()
        for key in [k for k, s in self._series.items() if now - s.touched > self.idle_s]:
            del self._series[key]
        by_process: dict[ResourceKey, list[Point]] = defaultdict(list)
        for (process, code, error_type), series in self._series.items():
            by_process[process].append(series.point(_attributes(code, error_type)))
        for process, points in by_process.items():
            histogram = Instrument(DURATION, DURATION_HELP, "s", Kind.HISTOGRAM, tuple(points))
            yield process, (histogram,)


def _attributes(code: int | None, error_type: str | None) -> Attributes:
    attrs: list[tuple[str, str | int]] = [
        ("http.request.method", "POST"),
        ("http.route", SERVER_PATH),
        ("url.scheme", "http"),
    ]
    if code is not None:
        attrs.append(("http.response.status_code", code))
    if error_type is not None:
        attrs.append(("error.type", error_type))
    return tuple(attrs)


def read_panel(registry: CollectorRegistry, start_ns: int) -> tuple[Instrument, ...]:
    """PANEL_FAMILIES as they are in `registry` now. A point starts at its `_created` sample
    when the registry has one, else at `start_ns`."""
    out = []
    for family in registry.collect():
        if family.name not in PANEL_FAMILIES:
            continue
        kind = {"counter": Kind.SUM, "gauge": Kind.GAUGE, "histogram": Kind.HISTOGRAM}.get(
            family.type
        )
        if kind is None:
            continue
        samples = [(s.name, s.labels, s.value) for s in family.samples]
        points = _points(family.name, kind, samples, start_ns)
        unit = "s" if family.name.endswith("_seconds") else ""
        out.append(Instrument(family.name, family.documentation, unit, kind, points))
    return tuple(out)


def _points(
    name: str, kind: Kind, samples: list[tuple[str, dict[str, str], float]], start_ns: int
) -> tuple[Point, ...]:
    """The family's samples grouped by label set (a histogram's `le` aside) into points."""
    by_labels: dict[Attributes, dict[str, Any]] = defaultdict(lambda: {"buckets": []})
    for sample, labels, value in samples:
        le = labels.get("le")
        attrs = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        found = by_labels[attrs]
        suffix = sample.removeprefix(name)
        if suffix == "_bucket" and le is not None:
            found["buckets"].append((float(le), value))
        elif suffix in ("", "_total"):
            found["value"] = value
        else:
            found[suffix] = value  # _count, _sum, _created
    return tuple(_point(kind, attrs, found, start_ns) for attrs, found in by_labels.items())


def _point(kind: Kind, attrs: Attributes, found: dict[str, Any], start_ns: int) -> Point:
    created = found.get("_created")
    start = int(created * 1e9) if isinstance(created, float) else start_ns
    if kind is not Kind.HISTOGRAM:
        return Point(attrs, start, value=float(found.get("value", 0.0)))
    cumulative = sorted(found["buckets"])
    bounds = tuple(b for b, _ in cumulative if math.isfinite(b))
    counts, below = [], 0.0
    for _, seen in cumulative:
        counts.append(int(seen - below))  # per bucket, from Prometheus' cumulative `le`
        below = seen
    count = int(found.get("_count", below))
    total = float(found.get("_sum", 0.0))
    return Point(attrs, start, bounds=bounds, counts=tuple(counts), total=total, count=count)


class Meter:
    """What the exporter measures and collects: the services' request durations (fed by
    `record`) and the panel's registry (read when a collection is made)."""

    def __init__(self, encoder: Encoder, durations: ServerDurations | None = None) -> None:
        self.durations = durations or ServerDurations()
        self.registry: CollectorRegistry | None = None  # the Core's, once it has one
        self._encoder = encoder
        self._start_ns = time.time_ns()

    def record(self, item: Finished) -> None:
        self.durations.record(item)

    def collect(self) -> Collected:
        groups = list(self.durations.collect())
        if self.registry is not None:
            panel = read_panel(self.registry, self._start_ns)
            groups.append((self._encoder.panel_key, panel))
        return Collected(time.time_ns(), tuple(groups))

    def encode(self, batch: Iterable[Collected]) -> bytes:
        request = ExportMetricsServiceRequest()
        for collected in batch:
            for key, instruments in collected.groups:
                group = request.resource_metrics.add()
                group.resource.CopyFrom(self._encoder.resource(key))
                group.schema_url = SCHEMA_URL
                scope = group.scope_metrics.add()
                scope.scope.CopyFrom(SCOPE)
                scope.schema_url = SCHEMA_URL
                for instrument in instruments:
                    _metric(scope.metrics.add(), instrument, collected.at_ns)
        return bytes(request.SerializeToString())


def _metric(out: Metric, instrument: Instrument, at_ns: int) -> None:
    out.name = instrument.name
    out.description = instrument.description
    out.unit = instrument.unit
    if instrument.kind is Kind.SUM:
        out.sum.aggregation_temporality = CUMULATIVE
        out.sum.is_monotonic = True
        rows: Any = out.sum.data_points
    elif instrument.kind is Kind.GAUGE:
        rows = out.gauge.data_points
    else:
        out.histogram.aggregation_temporality = CUMULATIVE
        rows = out.histogram.data_points
    for point in instrument.points:
        _point_into(rows.add(), instrument.kind, point, at_ns)


def _point_into(row: Any, kind: Kind, point: Point, at_ns: int) -> None:
    for key, value in point.attributes:
        attr = row.attributes.add(key=key)
        if isinstance(value, int):
            attr.value.int_value = value
        else:
            attr.value.string_value = value
    row.time_unix_nano = at_ns
    if kind is Kind.GAUGE:
        row.as_double = point.value
        return  # a gauge's value has no start
    row.start_time_unix_nano = point.start_ns
    if kind is Kind.SUM:
        row.as_double = point.value
        return
    row.count = point.count
    row.sum = point.total
    row.explicit_bounds.extend(point.bounds)
    row.bucket_counts.extend(point.counts)
    if point.count and point.low is not None and point.high is not None:
        row.min = point.low
        row.max = point.high


def units(collected: Collected) -> int:
    return collected.points


def rejected(payload: bytes) -> int:
    try:
        response = ExportMetricsServiceResponse.FromString(payload)
        return int(response.partial_success.rejected_data_points)
    except DecodeError:
        return 0
