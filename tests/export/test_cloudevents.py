"""Business events as CloudEvents, every one validated with the official SDK
(`cloudevents.core`): batch mode (a JSON array; the SDK has no batch parser, so each element is
read on its own) and structured mode (one event per request, read with the SDK's `from_http`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from rfc3986_validator import validate_rfc3986

from app.core.export import ExportSettings, ExportSettingsError
from app.core.export import cloudevents as ce
from app.core.export.otlp import Finished
from app.core.orchestrator import open_core
from app.core.settings import LauncherKind, Settings
from tests.conftest import make_settings, run
from tests.export.crafted import customer_result
from tests.export.receiver import BATCH, STRUCTURED, Received, Receiver
from tests.export.test_export import export_to
from tests.helpers import journey

COMPANY = "Müller & Söhne/Ost 100%"
SOURCE = "bizobs-panel/M%C3%BCller%20%26%20S%C3%B6hne%2FOst%20100%25"
STEPS = ("LoginService", "PayService")
N = 3
FAILING = {"errorRate": 1.0, "errorType": "payment"}


@pytest.fixture
def settings(tmp_path: Path, port_range: range) -> Settings:
    return make_settings(LauncherKind.FORK, tmp_path, port_range)


def valid(event: CloudEvent) -> CloudEvent:
    """What the SDK does not check: `source` is a URI-reference (CloudEvents 1.0, RFC 3986)."""
    assert validate_rfc3986(event.get_source(), rule="URI_reference"), event.get_source()
    assert event.get_type() == ce.EVENT_TYPE and event.get_time() is not None
    return event


def batch_events(got: Received) -> list[CloudEvent]:
    events = []
    for headers, body in got.event_requests:
        assert headers["Content-Type"].split(";")[0] == BATCH
        elements = json.loads(body)
        assert isinstance(elements, list) and elements
        events += [valid(JSONFormat().read(CloudEvent, json.dumps(e))) for e in elements]
    return events


def structured_events(got: Received) -> list[CloudEvent]:
    events = []
    for headers, body in got.event_requests:
        assert headers["Content-Type"].split(";")[0] == STRUCTURED
        events.append(valid(from_http(HTTPMessage(headers, body), JSONFormat(), CloudEvent)))
    return events


def check_outcomes(events: list[CloudEvent], trace_ids: set[str]) -> None:
    assert len(events) == N * len(STEPS) and len({e.get_id() for e in events}) == len(events)
    data: list[dict[str, Any]] = [e.get_data() for e in events]  # type: ignore[misc]
    login = [d for d in data if d["step"] == "Login"]
    pay = [d for d in data if d["step"] == "Pay"]
    assert all(d["outcome"] == "success" and d["errorType"] is None for d in login)
    assert all(d["outcome"] == "failed" and d["errorType"] == "payment" for d in pay)
    assert {e.get_extension("traceparent").split("-")[1] for e in events} == trace_ids


@pytest.mark.parametrize(
    ("mode", "read"), [("batch", batch_events), ("structured", structured_events)]
)
def test_every_event_is_valid_and_says_how_its_step_went(
    settings: Settings, mode: str, read: Any
) -> None:
    async def scenario() -> None:
        async with Receiver() as rx:
            export = export_to(rx.base, traces=None, logs=None, bizevents_mode=mode)
            async with open_core(settings, export=export) as core:
                result = await core.run_journey(
                    journey(COMPANY, *STEPS, step2=FAILING), customers=N, mode="multiple"
                )
                assert result.simulation
                await rx.wait_for(lambda g: len(g.events) >= N * len(STEPS))
            status = core.exporter.status()["bizevents"]
            assert status["sent"] == N * len(STEPS) and status["failedBatches"] == 0
            events = read(rx.got)
            check_outcomes(events, {c.trace_id for c in result.simulation.customers})
            assert {e.get_source() for e in events} == {
                "bizobs-panel/M%C3%BCller%20%26%20S%C3%B6hne%2FOst%20100%25"
            }
            if mode == "structured":
                assert len(rx.got.event_requests) == N * len(STEPS)  # one event per request

    run(scenario(), timeout=90)


@pytest.mark.parametrize(
    "company", ["Acme Corp", "Ünïcødé GmbH", "a/b?c#d", "100% [beta] {x}", 'quote " back\\']
)
def test_the_source_is_a_uri_reference_for_any_company_name(company: str) -> None:
    item = Finished(company, "http://127.0.0.1:9/process", customer_result(), time.time_ns())
    for element in json.loads(ce.batch([item])):
        event = valid(JSONFormat().read(CloudEvent, json.dumps(element)))
        assert event.get_source().startswith("bizobs-panel/")
    for body, units in ce.structured([item]):
        assert units == 1
        valid(from_http(HTTPMessage({"Content-Type": STRUCTURED}, body), JSONFormat(), CloudEvent))


def test_the_mode_is_chosen_by_bizobs_bizevents_mode() -> None:
    base = {"BIZOBS_BIZEVENTS_URL": "http://localhost:4318/bizevents"}
    assert ExportSettings.from_env(base).bizevents_mode == "batch"
    env = base | {"BIZOBS_BIZEVENTS_MODE": " Structured "}
    assert ExportSettings.from_env(env).bizevents_mode == "structured"
    with pytest.raises(
        ExportSettingsError, match=r"BIZOBS_BIZEVENTS_MODE='single': use 'batch' or 'structured'"
    ):
        ExportSettings.from_env(base | {"BIZOBS_BIZEVENTS_MODE": "single"})
