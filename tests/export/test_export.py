"""Export end to end: real step services, a real OTLP/HTTP receiver, the official protobuf."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from aiohttp import ClientSession
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from app.api.server import ApiServer
from app.core.export import ExportSettings, ExportSettingsError, saved
from app.core.export.otlp import Encoder, Finished
from app.core.export.settings import Endpoint
from app.core.orchestrator import open_core
from app.core.settings import EssentialService, LauncherKind, Settings
from tests.conftest import make_settings, run
from tests.export.crafted import COMPANY, customer_result
from tests.export.receiver import Received, Receiver, value
from tests.helpers import ROOT, journey

SECRET = "Api-Token dt0c01.SECRET-never-shown"
STEPS = ("LoginService", "BrowseService", "PayService")
N = 6
K = len(STEPS)
SPANS = N * (1 + K + (K - 1))  # root + SERVER per hop + CLIENT per call to a next hop


@pytest.fixture
def settings(tmp_path: Path, port_range: range) -> Settings:
    return make_settings(LauncherKind.FORK, tmp_path, port_range)


def export_to(base: str, **overrides: object) -> ExportSettings:
    auth = (("Authorization", SECRET),)
    values: dict[str, object] = {
        "traces": Endpoint(f"{base}/v1/traces", auth),
        "logs": Endpoint(f"{base}/v1/logs", auth),
        "bizevents": Endpoint(f"{base}/bizevents", auth),
        "schedule_delay_s": 0.05,
        "retry_initial_s": 0.05,
        "retry_budget_s": 10.0,
        "resource_attributes": (("deployment.environment.name", "test"),),
    }
    return ExportSettings(**(values | overrides))  # type: ignore[arg-type]


def complete(got: Received) -> bool:
    return len(got.spans) >= SPANS and len(got.logs) >= N * K and len(got.events) >= N * K


def check_traces(got: Received, trace_ids: set[str], company: str) -> None:
    by_trace: dict[bytes, list[tuple[dict[str, object], Span]]] = defaultdict(list)
    for resource, span in got.spans:
        by_trace[span.trace_id].append((resource, span))
    assert {t.hex() for t in by_trace} == trace_ids  # exactly N traces
    for spans in by_trace.values():
        servers = [(r, s) for r, s in spans if s.kind == Span.SpanKind.SPAN_KIND_SERVER]
        assert len(servers) == K
        assert {r["service.name"] for r, _ in servers} == set(STEPS)
        assert all(r["service.namespace"] == company for r, _ in servers)
        assert all(isinstance(r["process.pid"], int) for r, _ in servers)
        ids = {s.span_id for _, s in spans}
        roots = [s for _, s in spans if not s.parent_span_id]
        assert len(roots) == 1
        assert all(s.parent_span_id in ids for _, s in spans if s.parent_span_id)
        for _, s in servers:
            attrs = {kv.key for kv in s.attributes}
            assert {"http.request.method", "url.path", "server.port"} <= attrs
            assert {"http.response.status_code", "bizobs.customer.id"} <= attrs
    instances = {r["service.instance.id"] for r, s in got.spans if r["service.name"] in STEPS}
    assert len(instances) == K  # one per service process
    server_ids = {s.span_id for _, s in got.spans if s.kind == Span.SpanKind.SPAN_KIND_SERVER}
    assert len(got.logs) == N * K
    assert all(r.trace_id.hex() in trace_ids and r.span_id in server_ids for _, r in got.logs)
    assert {e["traceparent"].split("-")[1] for e in got.events} == trace_ids


def test_n_customers_k_steps_arrive_as_n_linked_traces(settings: Settings) -> None:
    async def scenario() -> None:
        async with Receiver() as receiver:
            async with open_core(settings, export=export_to(receiver.base)) as core:
                api = ApiServer(core, "127.0.0.1", 0)  # the kernel chooses the port
                try:
                    result = await core.run_journey(
                        journey("Export Co", *STEPS), customers=N, mode="multiple"
                    )
                    assert result.ok and result.simulation
                    await receiver.wait_for(complete)
                    await api.start()
                    async with (
                        ClientSession() as http,
                        http.get(f"{api.url}/api/export/status") as resp,
                    ):
                        raw = await resp.text()
                finally:
                    await api.stop()
            got = receiver.got
            trace_ids = {c.trace_id for c in result.simulation.customers}
            check_traces(got, trace_ids, "Export Co")
            assert all(h["Authorization"] == SECRET for h in got.headers)
            assert SECRET not in raw and "SECRET" not in raw
            assert set(json.loads(raw)) == {"traces", "logs", "metrics", "bizevents"}
            status = core.exporter.status()  # after close: every answer has been read
            assert status["traces"]["sent"] == SPANS and status["traces"]["dropped"] == 0
            assert status["logs"]["sent"] == N * K and status["bizevents"]["sent"] == N * K
            assert status["traces"]["endpoint"] == f"{receiver.base}/v1/traces"
            assert all(s["failedBatches"] == 0 for s in status.values())
            assert len(got.spans) == SPANS  # nothing twice

    run(scenario(), timeout=90)


def test_backend_answering_503_then_200_loses_nothing(settings: Settings) -> None:
    async def scenario() -> None:
        async with Receiver(fail_first=2) as receiver:
            async with open_core(settings, export=export_to(receiver.base)) as core:
                result = await core.run_journey(
                    journey("Retry Co", *STEPS), customers=N, mode="multiple"
                )
                assert result.ok and result.simulation
                await receiver.wait_for(complete)
            status = core.exporter.status()  # after close: every answer has been read
            check_traces(
                receiver.got, {c.trace_id for c in result.simulation.customers}, "Retry Co"
            )
            for path in ("/v1/traces", "/v1/logs", "/bizevents"):
                assert receiver.got.answers[(path, 503)] == 2
            assert all(s["dropped"] == 0 and s["failedBatches"] == 0 for s in status.values())
            assert status["traces"]["sent"] == SPANS

    run(scenario(), timeout=90)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_no_backend_leaves_journeys_alone_and_counts_the_losses(settings: Settings) -> None:
    customers = 40
    total = customers * (1 + K + (K - 1))

    async def scenario() -> None:
        base = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        export = export_to(base, max_queue=50, max_batch=20, retry_budget_s=0.3)
        async with open_core(settings, export=export) as core:
            result = await core.run_journey(
                journey("Dark Co", *STEPS), customers=customers, mode="multiple"
            )
        assert result.ok and result.simulation
        assert result.simulation.summary.completed == customers
        status = core.exporter.status()
        traces = status["traces"]
        assert traces["sent"] == 0 and traces["dropped"] == total  # every span accounted for
        assert traces["failedBatches"] >= 1
        assert traces["lastError"] == f"connection refused at {base}/v1/traces"
        assert traces["state"] == "failing"
        assert status["logs"]["dropped"] == customers * K

    run(scenario(), timeout=90)


def test_export_is_off_without_an_endpoint() -> None:
    assert not ExportSettings.from_env({}).enabled
    assert not ExportSettings.from_env({"OTEL_EXPORTER_OTLP_HEADERS": "a=b"}).enabled


def test_environment_conventions() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "https://abc.live.example.com/api/v2/otlp/",
        "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Api-Token%20xyz, x-team = demo ",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://collector:4318/custom/logs",
        "OTEL_EXPORTER_OTLP_LOGS_HEADERS": "x-logs=1",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=demo,team=a%2Cb",
        "BIZOBS_BIZEVENTS_URL": "https://abc.live.example.com/api/v2/bizevents/ingest",
        "BIZOBS_BIZEVENTS_HEADERS": "Authorization=Api-Token%20biz",
    }
    s = ExportSettings.from_env(env)
    assert s.traces == Endpoint(
        "https://abc.live.example.com/api/v2/otlp/v1/traces",
        (("Authorization", "Api-Token xyz"), ("x-team", "demo")),
    )
    assert s.logs == Endpoint("http://collector:4318/custom/logs", (("x-logs", "1"),))
    assert s.bizevents and s.bizevents.headers == (("Authorization", "Api-Token biz"),)
    assert s.resource_attributes == (("deployment.environment.name", "demo"), ("team", "a,b"))
    assert "xyz" not in repr(s) and "biz)" not in repr(s)
    off = ExportSettings.from_env(env | {"OTEL_TRACES_EXPORTER": "none"})
    assert off.traces is None and off.logs is not None
    assert not ExportSettings.from_env(env | {"OTEL_SDK_DISABLED": "true"}).enabled


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4318"}, "is not an http(s) URL"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://"}, "is not an http(s) URL"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:99999"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://h/v1"}, "TRACES_ENDPOINT"),
        ({"BIZOBS_BIZEVENTS_URL": "not a url"}, "BIZOBS_BIZEVENTS_URL"),
        ({"OTEL_EXPORTER_OTLP_HEADERS": "Api-Token abc"}, "entry 1 is not key=value"),
        ({"OTEL_EXPORTER_OTLP_HEADERS": "a=1,=2"}, "entry 2 is not key=value"),
        ({"OTEL_EXPORTER_OTLP_HEADERS": "bad name=1"}, "not a valid HTTP header name"),
        ({"OTEL_EXPORTER_OTLP_HEADERS": "a=x%0Ay"}, "control characters"),
        ({"OTEL_EXPORTER_OTLP_HEADERS": "a=x%7Fy"}, "OTEL_EXPORTER_OTLP_HEADERS: the value"),
        ({"OTEL_EXPORTER_OTLP_HEADERS": "a=x%C2%85y"}, "OTEL_EXPORTER_OTLP_HEADERS: the value"),
        ({"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "a=%C2%80"}, "TRACES_HEADERS: the value"),
        ({"BIZOBS_BIZEVENTS_HEADERS": "a=%C2%9F"}, "BIZOBS_BIZEVENTS_HEADERS: the value"),
        ({"BIZOBS_BIZEVENTS_HEADERS": "token"}, "BIZOBS_BIZEVENTS_HEADERS"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "novalue"}, "OTEL_RESOURCE_ATTRIBUTES"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "only 'http/protobuf'"),
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "-1"}, "OTEL_BSP_MAX_QUEUE_SIZE"),
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "²"}, "OTEL_BSP_MAX_QUEUE_SIZE='²' must be a whole number"),
        ({"OTEL_BSP_SCHEDULE_DELAY": "٣"}, "OTEL_BSP_SCHEDULE_DELAY='٣' must be a whole number"),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "0"}, "OTEL_EXPORTER_OTLP_TIMEOUT='0' must be"),
    ],
)
def test_bad_environment_is_a_clear_error(env: dict[str, str], message: str) -> None:
    base = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318"}
    with pytest.raises(ExportSettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ExportSettings.from_env(base | env)


def test_tabs_and_printable_text_are_fine_in_header_values() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318",
        "OTEL_EXPORTER_OTLP_HEADERS": "a=x%09y,b=Grüße%C2%A0€",
    }
    traces = ExportSettings.from_env(env).traces
    assert traces is not None and traces.headers == (("a", "x\ty"), ("b", "Grüße\u00a0€"))


def test_a_saved_header_with_a_c1_control_character_is_refused_naming_the_variable(
    tmp_path: Path,
) -> None:
    saved.save(tmp_path, {saved.ENDPOINT: "http://localhost:4318", saved.HEADERS: "a=x\u0085y"})
    form = saved.ExportForm(saved.load(tmp_path), {})
    with pytest.raises(ExportSettingsError, match="OTEL_EXPORTER_OTLP_HEADERS: the value of 'a'"):
        form.settings()


@pytest.mark.parametrize(
    ("variable", "text"),
    [
        ("OTEL_EXPORTER_OTLP_HEADERS", "Api-Token dt0c01.SECRET"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "²"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "٣"),
    ],
)
def test_bad_environment_stops_the_panel_at_start_with_one_line(
    tmp_path: Path, variable: str, text: str
) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "BIZOBS_STATE_DIR": str(tmp_path),
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318",
        variable: text,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "app", "ports"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert proc.stderr.startswith(f"error: {variable}") and "SECRET" not in proc.stderr


def test_replacing_the_exporter_flushes_the_old_queue_and_sends_the_next_run_to_the_new(
    settings: Settings,
) -> None:
    """The window's Save (Core.replace_exporter): what the old exporter had queued reaches the
    old endpoint (none dropped here), the next run's spans go to the new one only."""

    async def scenario() -> None:
        async with Receiver() as old_rx, Receiver() as new_rx:
            # A long batch delay keeps the first run's spans queued until the replacement.
            queued = export_to(old_rx.base, schedule_delay_s=60.0)
            async with open_core(settings, export=queued) as core:
                first = await core.run_journey(journey("Swap Co", *STEPS), customers=N)
                assert first.ok and not old_rx.got.spans  # still queued
                old = await core.replace_exporter(export_to(new_rx.base))
                assert old["traces"]["sent"] == SPANS and old["traces"]["dropped"] == 0
                assert len(old_rx.got.spans) == SPANS
                second = await core.run_journey(journey("Swap Co", *STEPS), customers=N)
                assert second.ok
                await new_rx.wait_for(complete)
            assert len(old_rx.got.spans) == SPANS and len(new_rx.got.spans) == SPANS
            assert core.exporter.status()["traces"]["endpoint"] == f"{new_rx.base}/v1/traces"

    run(scenario(), timeout=90)


def test_a_long_lived_service_exports_each_journeys_own_business_fields(
    tmp_path: Path, port_range: range
) -> None:
    """An essential service lives through every journey switch; the second journey's spans
    and log records carry the second journey's description, not the first's."""
    discovery = EssentialService.parse("DiscoveryService-Dynatrace")
    settings = make_settings(LauncherKind.FORK, tmp_path, port_range).with_(
        essential_services=(discovery,)
    )
    descriptions = ("Finds the winter catalogue", "Finds the summer catalogue")
    per_run = N * (1 + 2 + 1)  # root, two SERVER spans, one CLIENT span

    async def scenario() -> None:
        async with Receiver() as rx:
            async with open_core(settings, export=export_to(rx.base)) as core:
                runs = []
                for index, (description, then) in enumerate(
                    zip(descriptions, ("LoginService", "PayService"), strict=True)
                ):
                    steps = ("DiscoveryService", then)
                    trip = journey("Dynatrace", *steps, step1={"description": description})
                    result = await core.run_journey(trip, customers=N, mode="multiple")
                    assert result.ok and result.simulation
                    runs.append({c.trace_id for c in result.simulation.customers})
                    await rx.wait_for(
                        lambda g, k=index + 1: (
                            len(g.spans) >= k * per_run and len(g.logs) >= k * 2 * N
                        )
                    )
            instances = set()
            for description, trace_ids in zip(descriptions, runs, strict=True):
                spans = [
                    (r, s)
                    for r, s in rx.got.spans
                    if r["service.name"] == "DiscoveryService"
                    and s.trace_id.hex() in trace_ids
                    and s.kind == Span.SpanKind.SPAN_KIND_SERVER
                ]
                logs = [
                    (r, rec)
                    for r, rec in rx.got.logs
                    if r["service.name"] == "DiscoveryService" and rec.trace_id.hex() in trace_ids
                ]
                assert len(spans) == N and len(logs) == N
                for _, item in [*spans, *logs]:
                    fields = {kv.key: kv.value.string_value for kv in item.attributes}
                    assert fields["bizobs.field.description"] == description
                instances |= {r["service.instance.id"] for r, _ in [*spans, *logs]}
            assert len(instances) == 1  # one process served both journeys

    run(scenario(), timeout=120)


def test_a_template_is_never_shared_by_fields_that_differ_in_type() -> None:
    """1, 1.0, True and "1" compare or hash alike in places; each keeps its own type."""
    encoder = Encoder("bizobs-panel", ())
    now = time.time_ns()
    values: list[object] = [1, 1.0, True, "1", [1], {"n": 1}, 1]
    items = [
        Finished(COMPANY, "http://127.0.0.1:9/process", customer_result(fields={"n": v}), now)
        for v in values
    ]
    for encode, rows in ((encoder.traces, "resource_spans"), (encoder.logs, "resource_logs")):
        seen = []
        for item in items:
            request = (
                ExportTraceServiceRequest if rows == "resource_spans" else ExportLogsServiceRequest
            ).FromString(encode([item]))
            for group in getattr(request, rows):
                for scope in group.scope_spans if rows == "resource_spans" else group.scope_logs:
                    for record in scope.spans if rows == "resource_spans" else scope.log_records:
                        found = [kv.value for kv in record.attributes if kv.key == "bizobs.field.n"]
                        seen += [(kv.WhichOneof("value"), value(kv)) for kv in found]
        assert seen == [
            ("int_value", 1),
            ("double_value", 1.0),
            ("bool_value", True),
            ("string_value", "1"),
            ("string_value", "[1]"),
            ("string_value", '{"n": 1}'),
            ("int_value", 1),
        ]
