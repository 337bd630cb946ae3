"""What the exported spans say, checked against the OpenTelemetry HTTP semantic conventions:
the server route, span status for 4xx and 5xx, the schema URL, the User-Agent of every export
POST, and a root span that starts before everything under it."""

from __future__ import annotations

import importlib.metadata
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from app.core.export import Exporter, ExportSettings
from app.core.journeys import Journey
from app.core.orchestrator import open_core
from app.core.settings import LauncherKind, Settings
from app.core.simulation import CustomerResult
from tests.conftest import make_settings, run
from tests.export.receiver import Received, Receiver, value
from tests.export.test_export import export_to
from tests.helpers import journey

# The semantic conventions release whose attribute names the export uses.
SCHEMA_URL = "https://opentelemetry.io/schemas/1.44.0"
UNSET = Status.StatusCode.STATUS_CODE_UNSET
ERROR = Status.StatusCode.STATUS_CODE_ERROR
N = 3


@pytest.fixture
def settings(tmp_path: Path, port_range: range) -> Settings:
    return make_settings(LauncherKind.FORK, tmp_path, port_range)


def attrs(span: Any) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in span.attributes}


def by_step(got: Received) -> dict[str, list[Span]]:
    out: dict[str, list[Span]] = defaultdict(list)
    for _, span in got.spans:
        if span.kind == Span.SpanKind.SPAN_KIND_SERVER:
            out[attrs(span)["bizobs.step.name"]].append(span)
    return out


@pytest.mark.parametrize(
    ("error_type", "code", "server_error"),
    [("payment", 402, False), ("internal", 500, True)],
    ids=["4xx", "5xx"],
)
def test_spans_follow_the_http_conventions_for_a_failing_step(
    settings: Settings, error_type: str, code: int, server_error: bool
) -> None:
    """Pay fails with `code`: its SERVER span is ERROR only for a 5xx (a 4xx is the client's
    error, status unset); Login's CLIENT span calling it and the root are ERROR either way;
    the business outcome is in `bizobs.outcome` and the log record."""
    steps = ("LoginService", "PayService", "ShipService")
    bad = {"errorRate": 1.0, "errorType": error_type}
    spans = N * 4  # root, Login SERVER + CLIENT, Pay SERVER (Ship is never reached)

    async def scenario() -> None:
        async with Receiver() as rx:
            async with open_core(settings, export=export_to(rx.base)) as core:
                result = await core.run_journey(
                    journey("Semconv Co", *steps, step2=bad), customers=N, mode="multiple"
                )
                assert result.simulation and result.simulation.summary.failed == N
                await rx.wait_for(
                    lambda g: (
                        len(g.spans) >= spans and len(g.logs) >= 2 * N and len(g.events) >= 2 * N
                    )
                )
            got = rx.got
            assert len(got.spans) == spans
            servers = by_step(got)
            assert all(attrs(s)["http.route"] == "/process" for s in servers["Login"])
            assert all(attrs(s)["http.route"] == "/process" for s in servers["Pay"])
            assert all(s.name == "POST /process" for s in servers["Login"] + servers["Pay"])
            for span in servers["Login"]:
                assert span.status.code == UNSET and attrs(span)["bizobs.outcome"] == "success"
            for span in servers["Pay"]:
                a = attrs(span)
                assert a["http.response.status_code"] == code
                assert a["bizobs.outcome"] == "failed" and a["bizobs.error_type"] == error_type
                if server_error:
                    assert span.status.code == ERROR and a["error.type"] == str(code)
                else:
                    assert span.status.code == UNSET and "error.type" not in a
            clients = [s for _, s in got.spans if s.kind == Span.SpanKind.SPAN_KIND_CLIENT]
            calls = [s for s in clients if s.parent_span_id]  # Login's call to Pay
            roots = [s for s in clients if not s.parent_span_id]
            assert len(calls) == N and len(roots) == N
            for span in calls:
                assert span.status.code == ERROR and attrs(span)["error.type"] == str(code)
            assert all(s.status.code == ERROR for s in roots)
            pay_logs = [r for _, r in got.logs if attrs(r)["bizobs.step.name"] == "Pay"]
            assert len(pay_logs) == N
            for record in pay_logs:
                assert record.severity_text == "ERROR"
                assert record.body.string_value == f"Pay: failed ({error_type})"
                assert attrs(record)["bizobs.outcome"] == "failed"
                assert attrs(record)["bizobs.error_type"] == error_type
            groups = [*got.span_groups, *got.log_groups]
            assert groups and all(g.schema_url == SCHEMA_URL for g in groups)
            scopes = [s for g in got.span_groups for s in g.scope_spans]
            scopes += [s for g in got.log_groups for s in g.scope_logs]
            assert all(s.schema_url == SCHEMA_URL for s in scopes)
            version = importlib.metadata.version("bizobs-panel")
            agents = {h.get("User-Agent") for h in got.headers}
            assert agents == {f"bizobs-panel/{version}"}

    run(scenario(), timeout=90)


class LateHandover(Exporter):
    """Takes each customer 20 ms after it finished: the event loop was busy elsewhere (a
    redraw, another batch) when the customer's answer came in."""

    def offer(self, journey: Journey, hops: list[dict[str, Any]], result: CustomerResult) -> None:
        busy_until = time.perf_counter() + 0.02
        while time.perf_counter() < busy_until:
            pass
        super().offer(journey, hops, result)


def test_no_span_starts_before_its_parent(settings: Settings) -> None:
    steps = ("LoginService", "BrowseService", "PayService")
    customers = 10
    spans = customers * (1 + 3 + 2)

    async def scenario() -> None:
        async with Receiver() as rx:
            async with open_core(settings, export=ExportSettings()) as core:
                core.exporter = await LateHandover.open(export_to(rx.base))  # closed by the core
                result = await core.run_journey(
                    journey("Order Co", *steps), customers=customers, mode="multiple"
                )
                assert result.ok
                await rx.wait_for(lambda g: len(g.spans) >= spans)
            traces: dict[bytes, dict[bytes, Span]] = defaultdict(dict)
            for _, span in rx.got.spans:
                traces[span.trace_id][span.span_id] = span
            assert len(traces) == customers
            for trace in traces.values():
                for span in trace.values():
                    if span.parent_span_id:
                        parent = trace[span.parent_span_id]
                        assert parent.start_time_unix_nano <= span.start_time_unix_nano, (
                            parent.name,
                            span.name,
                            (span.start_time_unix_nano - parent.start_time_unix_nano) / 1e6,
                        )

    run(scenario(), timeout=90)
