"""OTLP metrics end to end: real step services and traffic, a real OTLP/HTTP receiver, the
official protobuf; and the parts on their own (settings, caps, the registry's translation)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client import Counter as PromCounter

from app.core.export import Exporter, ExportSettings, ExportSettingsError
from app.core.export.meters import DURATION, DURATION_BUCKETS, Kind, ServerDurations, read_panel
from app.core.export.otlp import Finished
from app.core.export.settings import Endpoint
from app.core.model import PortState
from app.core.orchestrator import open_core
from app.core.settings import LauncherKind, Settings
from tests.conftest import make_settings, run
from tests.export.crafted import COMPANY, customer_result, offer, until
from tests.export.receiver import Received, Receiver, value
from tests.export.test_export import SPANS, STEPS, N, complete, export_to
from tests.helpers import journey

CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
Series = tuple[tuple[tuple[str, Any], ...], tuple[tuple[str, Any], ...]]  # resource, attributes


@pytest.fixture
def settings(tmp_path: Path, port_range: range) -> Settings:
    return make_settings(LauncherKind.FORK, tmp_path, port_range)


def with_metrics(base: str, **overrides: object) -> ExportSettings:
    auth = (("Authorization", "metrics-secret"),)
    values: dict[str, object] = {"metrics": Endpoint(f"{base}/v1/metrics", auth)}
    values |= {"metric_interval_s": 0.2}
    return export_to(base, **(values | overrides))


def attrs(point: Any) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((kv.key, value(kv.value)) for kv in point.attributes))


def latest(got: Received, name: str) -> dict[Series, Any]:
    """Each series of metric `name` at its last collection (they are cumulative)."""
    out: dict[Series, Any] = {}
    for resource, metric in got.metrics:
        if metric.name != name:
            continue
        kind = metric.WhichOneof("data")
        for point in getattr(metric, kind).data_points:
            key = (tuple(sorted(resource.items())), attrs(point))
            if key not in out or point.time_unix_nano >= out[key].time_unix_nano:
                out[key] = point
    return out


def server_spans(got: Received) -> Counter[tuple[str, str, str, int]]:
    """SERVER spans per (service, instance, route, status code)."""
    counts: Counter[tuple[str, str, str, int]] = Counter()
    for resource, span in got.spans:
        if span.kind != Span.SpanKind.SPAN_KIND_SERVER:
            continue
        a = dict(attrs(span))
        key = (resource["service.name"], resource["service.instance.id"], a["http.route"])
        counts[(*key, a["http.response.status_code"])] += 1
    return counts


def metric_of(got: Received, name: str) -> Metric:
    return next(m for _, m in got.metrics if m.name == name)


def test_request_durations_count_the_server_spans_of_a_run_and_of_traffic(
    settings: Settings,
) -> None:
    """Per service process, route and status: the histogram's count is the number of SERVER
    spans the same customers made, over a Run Journey and continuous traffic after it."""
    trip = journey(
        "Metered Co",
        *STEPS,
        step2={"errorRate": 0.3, "errorType": "payment"},  # 402: the caller's error
        step3={"errorRate": 0.3, "errorType": "internal"},  # 500: the server's
    )

    async def scenario() -> None:
        async with Receiver() as receiver:
            async with open_core(settings, export=with_metrics(receiver.base)) as core:
                result = await core.run_journey(trip, customers=30, mode="multiple")
                assert result.simulation
                await core.start_traffic(30)
                await until(lambda: core.traffic.status().completed >= 30, 30)
                await core.stop_traffic()
            # Closed: every customer's spans were sent, and the last collection after them.
            got = receiver.got
            status = core.exporter.status()
            assert status["traces"]["dropped"] == 0 and status["metrics"]["dropped"] == 0
            spans = server_spans(got)
            durations = latest(got, DURATION)
            counted: Counter[tuple[str, str, str, int]] = Counter()
            for (resource, attributes), point in durations.items():
                r, a = dict(resource), dict(attributes)
                assert a["http.request.method"] == "POST" and a["url.scheme"] == "http"
                key = (r["service.name"], r["service.instance.id"], a["http.route"])
                counted[(*key, a["http.response.status_code"])] += point.count
                assert sum(point.bucket_counts) == point.count
                assert list(point.explicit_bounds) == list(DURATION_BUCKETS)
                assert point.start_time_unix_nano <= point.time_unix_nano
                assert ("error.type" in a) == (a["http.response.status_code"] >= 500)
            assert counted == spans
            assert sum(spans.values()) > 3 * 30  # the run's and traffic's
            codes = {code for *_, code in spans}
            assert {200, 402, 500} <= codes, codes
            metric = metric_of(got, DURATION)
            assert metric.unit == "s" and metric.histogram.aggregation_temporality == CUMULATIVE
            # Each service process is its own resource: the very attributes of its spans.
            span_resources = {tuple(sorted(r.items())) for r, _ in got.spans}
            assert {resource for resource, _ in durations} <= span_resources
            assert {dict(r)["service.name"] for r, _ in durations} == set(STEPS)

    run(scenario(), timeout=120)


def cleanups(got: Received, panel: str = "bizobs-panel") -> float | None:
    """bizobs_cleanups{trigger=run} on the panel's own resource, last collected."""
    for (resource, attributes), point in latest(got, "bizobs_cleanups").items():
        if dict(resource)["service.name"] == panel and dict(attributes) == {"trigger": "run"}:
            return float(point.as_double)
    return None


def test_the_panels_resource_carries_the_cleanups_from_its_registry(settings: Settings) -> None:
    async def scenario() -> None:
        async with Receiver() as receiver:
            async with open_core(settings, export=with_metrics(receiver.base)) as core:
                await receiver.wait_for(lambda g: cleanups(g) is not None)
                before = cleanups(receiver.got)
                assert (await core.run_journey(journey("Clean Co", *STEPS))).ok
                await receiver.wait_for(lambda g: (cleanups(g) or 0) > (before or 0))
                registry = core.metrics.registry.get_sample_value(
                    "bizobs_cleanups_total", {"trigger": "run"}
                )
            got = receiver.got
            assert before == 0 and cleanups(got) == registry == 1
            metric = metric_of(got, "bizobs_cleanups")
            assert metric.sum.is_monotonic and metric.sum.aggregation_temporality == CUMULATIVE
            panel = [r for r, m in got.metrics if m.name == "bizobs_cleanups"]
            assert all("service.namespace" not in r for r in panel)  # the whole panel's
            assert all(r["deployment.environment.name"] == "test" for r in panel)
            ports = latest(got, "bizobs_ports")
            last = max(p.time_unix_nano for p in ports.values())
            by_state = {dict(a)["state"]: p.as_double for (_, a), p in ports.items()}
            assert set(by_state) == {state.value for state in PortState}
            (size,) = latest(got, "bizobs_pool_size").values()
            now = sum(p.as_double for p in ports.values() if p.time_unix_nano == last)
            assert now == size.as_double  # the states of one collection sum to the pool
            (duration,) = latest(got, "bizobs_cleanup_duration_seconds").values()
            assert duration.count == 1
            assert metric_of(got, "bizobs_cleanup_duration_seconds").unit == "s"

    run(scenario(), timeout=90)


def test_a_metrics_endpoint_that_refuses_does_not_disturb_traces(settings: Settings) -> None:
    def refuse_metrics(request: web.Request, served: int) -> web.Response | None:
        if request.path == "/v1/metrics":
            return web.Response(status=503, headers={"Retry-After": "0"})
        return None

    async def scenario() -> None:
        async with Receiver(answer=refuse_metrics) as receiver:
            export = with_metrics(receiver.base, retry_budget_s=0.5)
            async with open_core(settings, export=export) as core:
                result = await core.run_journey(
                    journey("Refused Co", *STEPS), customers=N, mode="multiple"
                )
                assert result.ok
                await receiver.wait_for(complete)
                await until(lambda: core.exporter.status()["metrics"]["failedBatches"] >= 1)
                metrics = core.exporter.status()["metrics"]
            status = core.exporter.status()
            assert status["traces"]["sent"] == SPANS and status["traces"]["failedBatches"] == 0
            assert status["logs"]["dropped"] == 0 and status["traces"]["state"] == "idle"
            assert metrics["state"] == "failing" and metrics["sent"] == 0
            assert metrics["lastError"] == f"HTTP 503 from {receiver.base}/v1/metrics"
            assert metrics["dropped"] > 0
            assert receiver.got.answers[("/v1/metrics", 503)] >= 2  # retried before given up
            assert not receiver.got.metrics
            assert "metrics-secret" not in str(status)

    run(scenario(), timeout=90)


def test_metrics_settings_follow_the_sdk_variables() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
        "OTEL_EXPORTER_OTLP_HEADERS": "a=1",
    }
    s = ExportSettings.from_env(env)
    assert s.metrics == Endpoint("http://collector:4318/v1/metrics", (("a", "1"),))
    assert s.metric_interval_s == 60.0
    own = ExportSettings.from_env(
        env
        | {
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://m:9/custom",
            "OTEL_EXPORTER_OTLP_METRICS_HEADERS": "b=2",
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "Cumulative",
        }
    )
    assert own.metrics == Endpoint("http://m:9/custom", (("b", "2"),))
    assert own.metric_interval_s == 1.0
    assert own.traces and own.traces.headers == (("a", "1"),)
    off = ExportSettings.from_env(env | {"OTEL_METRICS_EXPORTER": "none"})
    assert off.metrics is None and off.traces is not None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_METRIC_EXPORT_INTERVAL": "999"}, "from 1000 to"),
        ({"OTEL_METRIC_EXPORT_INTERVAL": "1e4"}, "OTEL_METRIC_EXPORT_INTERVAL='1e4'"),
        ({"OTEL_METRICS_EXPORTER": "prometheus"}, "OTEL_METRICS_EXPORTER"),
        ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "ftp://h"}, "METRICS_ENDPOINT"),
        ({"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta"}, "only 'cumulative'"),
    ],
)
def test_bad_metrics_settings_are_clear_errors(env: dict[str, str], message: str) -> None:
    base = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318"}
    with pytest.raises(ExportSettingsError, match=message):
        ExportSettings.from_env(base | env)


def test_attribute_sets_beyond_the_cap_are_dropped_and_counted() -> None:
    durations = ServerDurations(cap=1)
    for code in (200, 200, 402, 500):
        result = customer_result()
        step = replace(result.steps[0], http_status=code)
        item = replace(result, steps=(step,))
        durations.record(Finished(COMPANY, "http://127.0.0.1:9/process", item, time.time_ns()))
    ((_, (histogram,)),) = list(durations.collect())
    (point,) = histogram.points
    assert point.count == 2 and dict(point.attributes)["http.response.status_code"] == 200
    assert durations.dropped == 2


def test_idle_series_are_forgotten() -> None:
    now = [1000.0]
    durations = ServerDurations(idle_s=60.0, clock=lambda: now[0])
    durations.record(Finished(COMPANY, "", customer_result(), time.time_ns()))
    now[0] += 59.0
    assert list(durations.collect()) != []  # idle less than idle_s: kept
    now[0] += 2.0
    assert list(durations.collect()) == []


def test_observations_dropped_show_in_the_status() -> None:
    async def scenario() -> None:
        async with Receiver() as receiver:
            exporter = await Exporter.open(with_metrics(receiver.base, metric_interval_s=60.0))
            try:
                exporter.meter.durations.cap = 0
                offer(exporter, customer_result())
                assert exporter.status()["metrics"]["observationsDropped"] == 1
            finally:
                await exporter.aclose()
            assert receiver.posts("/v1/metrics") == 0  # an empty last collection is not sent

    run(scenario())


def test_the_registry_reads_as_otlp_points() -> None:
    registry = CollectorRegistry()
    counter = PromCounter("bizobs_cleanups", "Cleanups", ["trigger"], registry=registry)
    counter.labels("run").inc(3)
    histogram = Histogram(
        "bizobs_cleanup_duration_seconds", "How long", buckets=(0.1, 1.0), registry=registry
    )
    for seconds in (0.05, 0.5, 0.7, 5.0):
        histogram.observe(seconds)
    PromCounter("unrelated", "not sent", registry=registry).inc()
    found = {i.name: i for i in read_panel(registry, start_ns=1)}
    assert set(found) == {"bizobs_cleanups", "bizobs_cleanup_duration_seconds"}
    (sums,) = found["bizobs_cleanups"].points
    assert found["bizobs_cleanups"].kind is Kind.SUM
    assert sums.attributes == (("trigger", "run"),) and sums.value == 3
    assert sums.start_ns > 1  # from the counter's _created sample
    durations = found["bizobs_cleanup_duration_seconds"]
    (point,) = durations.points
    assert durations.unit == "s" and durations.kind is Kind.HISTOGRAM
    assert point.bounds == (0.1, 1.0) and point.counts == (1, 2, 1)
    assert point.count == 4 and point.total == pytest.approx(6.25)


def test_each_interval_sends_the_durations_of_the_customers_offered() -> None:
    async def scenario() -> None:
        async with Receiver() as receiver:
            exporter = await Exporter.open(with_metrics(receiver.base, metric_interval_s=0.05))
            try:
                for n in range(50):
                    offer(exporter, customer_result(number=n))
                await receiver.wait_for(lambda g: bool(latest(g, DURATION)))
                (point,) = latest(receiver.got, DURATION).values()
                assert point.count == 50
            finally:
                await exporter.aclose()

    run(scenario())
