"""Journeys end to end: real services, real HTTP, the Run Journey phases."""

from __future__ import annotations

import aiohttp
import pytest

from app.core import probe
from app.core.errors import ValidationError
from app.core.model import Mode, Phase
from app.core.orchestrator import Core, open_core
from app.core.settings import EssentialService, Settings
from tests.conftest import run
from tests.helpers import alive as _alive
from tests.helpers import journey


@pytest.mark.both_launchers  # one full switch: group SIGTERM, pidfd exits, a launch, a simulation
def test_second_journey_replaces_first_and_keeps_essentials(settings: Settings) -> None:
    essentials = (EssentialService("DiscoveryService", "Dynatrace"),)

    async def scenario() -> None:
        async with open_core(settings.with_(essential_services=essentials)) as core:
            a = await core.run_journey(journey("Acme Corp", "LoginService", "BrowseService"))
            assert a.ok, a.error
            a_pids = {s.pid for s in a.services if not s.essential}
            assert len(a_pids) == 2
            b = await core.run_journey(journey("TechStart Inc", "SignupService", "OnboardService"))
            assert b.ok, b.error
            assert b.stopped == 2 and b.phase(Phase.STOP).counts["stopped"] == 2
            assert not any(_alive(p) for p in a_pids)
            listening = probe.scan_listeners(settings.ports)
            expected = {s.port: s.pid for s in core.services()}
            assert {p: lst.pid for p, lst in listening.items()} == expected
            assert sorted(s.key for s in core.services()) == [
                "DiscoveryService-Dynatrace",
                "OnboardService-TechStart_Inc",
                "SignupService-TechStart_Inc",
            ]
            assert [p.phase for p in b.phases] == list(Phase)
            assert all(p.duration_ms >= 0 for p in b.phases)

    run(scenario())


def test_four_step_chain_propagates_one_trace_with_chained_spans(settings: Settings) -> None:
    services = ("AService", "BService", "CService", "DService")

    async def scenario() -> None:
        async with open_core(settings) as core:
            result = await core.run_journey(
                journey("Trace Co", *services), customers=3, mode="multiple"
            )
            assert result.ok and result.simulation
            for cust in result.simulation.customers:
                assert [s.service_name for s in cust.steps] == list(services)
                assert all(s.status == "ok" for s in cust.steps)
                assert all(s.event and s.event["traceId"] == cust.trace_id for s in cust.steps)
                spans = [s.span_id for s in cust.steps]
                assert len(set(spans)) == 4 and cust.root_span_id not in spans
                parents = [s.parent_span_id for s in cust.steps]
                calls = [s.span["client"]["spanId"] for s in cust.steps[:3] if s.span]
                assert parents == [cust.root_span_id, *calls]  # each hop's CLIENT span
                assert {s.event["correlationId"] for s in cust.steps} == {cust.correlation_id}
            # The raw response nests the four results in order.
            chain = core.chain_for(result_journey(core))
            data, headers, _ = chain.request({"id": "c1"})
            tp = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
            async with (
                aiohttp.ClientSession() as http,
                http.post(
                    chain.first_url,
                    data=data,
                    headers=headers | {"traceparent": tp, "tracestate": "x=1"},
                ) as resp,
            ):
                body = await resp.json()
                assert resp.headers["traceparent"].startswith("00-" + "ab" * 16)
            names = []
            node = body
            while node:
                names.append(node["serviceName"])
                assert node["traceId"] == "ab" * 16
                node = node["downstream"]
            assert names == list(services)
            assert body["parentSpanId"] == "cd" * 8

    run(scenario())


def result_journey(core: Core):  # the journey of the last run, re-parsed from history
    from app.core.journeys import parse_journey

    return parse_journey(core.history.runs(1)[0]["journey"])


@pytest.mark.parametrize(
    ("error_type", "status"),
    [
        ("timeout", 504),
        ("unavailable", 503),
        ("validation", 400),
        ("payment", 402),
        ("auth", 401),
        ("rate_limit", 429),
        ("internal", 500),
    ],
)
def test_error_injection_marks_only_the_failing_step(
    settings: Settings, error_type: str, status: int
) -> None:
    async def scenario() -> None:
        async with open_core(settings) as core:
            j = journey(
                "Err Co",
                "OneService",
                "TwoService",
                "ThreeService",
                step2={"errorRate": 1.0, "errorType": error_type},
            )
            result = await core.run_journey(j, customers=4, mode="multiple")
            assert result.ok and result.simulation
            for cust in result.simulation.customers:
                one, two, three = cust.steps
                assert (one.status, one.http_status) == ("ok", 200)
                assert (two.status, two.http_status) == ("failed", status)
                assert three.status == "skipped"
            assert result.simulation.summary.failed == 4
            clean = await core.run_journey(
                journey(
                    "Err Co", "OneService", "TwoService", "ThreeService", step2={"errorRate": 0}
                ),
                customers=4,
                mode="multiple",
            )
            assert clean.simulation and clean.simulation.summary.completed == 4

    run(scenario())


INVALID = [
    ("not an object", ["a", "b"], "JSON object"),
    (
        "missing company",
        {
            "domain": "a.com",
            "industryType": "x",
            "steps": [{"stepName": "A", "serviceName": "AService"}],
        },
        "Company name is missing",
    ),
    ("empty company", journey("  ", "AService"), "Company name is empty"),
    ("company of symbols", journey("!!!", "AService"), "at least one letter"),
    (
        "missing steps",
        {"companyName": "X", "domain": "a.com", "industryType": "x"},
        "Steps are missing",
    ),
    ("empty steps", {**journey("X"), "steps": []}, "at least one step"),
    ("steps not a list", {**journey("X"), "steps": "Login"}, "Steps must be a list"),
    ("step not an object", {**journey("X"), "steps": ["Login"]}, "must be an object"),
    (
        "missing service name",
        {**journey("X"), "steps": [{"stepName": "A"}]},
        "Step 1: service name is missing",
    ),
    ("lone surrogate in company", journey("Acme \ud800", "AService"), "lone surrogate U\\+D800"),
    ("NUL in company", journey("Acme\x00Corp", "AService"), "control character U\\+0000"),
    ("newline in step name", journey("X", "AService", step1={"stepName": "a\nb"}), "Step 1: name"),
    ("service name with shell chars", journey("X", "A;rm -rf /"), "must be an identifier"),
    ("service name path", journey("X", "../etc/passwd"), "must be an identifier"),
    ("too many steps", journey("X", *[f"S{i}" for i in range(21)]), "do not fit"),
    ("absurd company length", journey("X" * 500, "AService"), "longer than"),
    ("error rate above 1", journey("X", "AService", step1={"errorRate": 2}), "between 0 and 1"),
    ("negative latency", journey("X", "AService", step1={"latencyMs": -5}), "between 0"),
    (
        "unknown error type",
        journey("X", "AService", step1={"errorRate": 0.5, "errorType": "boom"}),
        "error type must be one of",
    ),
    ("bad domain", {**journey("X", "AService"), "domain": "not a domain"}, "Domain"),
    ("company not text", {**journey("X", "AService"), "companyName": 42}, "must be text"),
]


def test_invalid_journeys_are_rejected_before_anything_is_stopped(settings: Settings) -> None:
    assert len(INVALID) >= 10

    async def scenario() -> None:
        async with open_core(settings) as core:
            first = await core.run_journey(journey("Keep Co", "KeepAService", "KeepBService"))
            assert first.ok
            before = {(s.key, s.pid) for s in core.services()}
            for label, bad, message in INVALID:
                with pytest.raises(ValidationError, match=message):
                    await core.run_journey(bad)
                assert {(s.key, s.pid) for s in core.services()} == before, label
            for params in (
                {"customers": 0},
                {"customers": "3"},
                {"mode": "turbo"},
                {"think_time_ms": -1},
            ):
                with pytest.raises(ValidationError):
                    await core.run_journey(journey("Ok Co", "OkService"), **params)
            assert {(s.key, s.pid) for s in core.services()} == before
            assert all(_alive(pid) for _, pid in before)

    run(scenario())


@pytest.mark.slow
def test_twenty_alternating_runs_leak_nothing_and_are_recorded(settings: Settings) -> None:
    async def scenario() -> None:
        async with open_core(settings) as core:
            seen_pids: set[int] = set()
            for i in range(20):
                company = ("Alpha Co", "Beta Co")[i % 2]
                mode = (Mode.SINGLE, Mode.MULTIPLE, Mode.BATCH_CHAINED)[i % 3]
                result = await core.run_journey(
                    journey(company, "FirstService", "SecondService"), customers=2, mode=mode.value
                )
                assert result.ok, result.error
                assert result.simulation and result.simulation.summary.completed == 2
                live = {s.pid for s in core.services()}
                assert len(live) == 2
                assert not any(_alive(p) for p in seen_pids - live)
                seen_pids |= live
                assert len(probe.scan_listeners(settings.ports)) == 2
            assert core.history.count() == 20
            stored = core.history.get(core.history.runs(1)[0]["runId"])
            assert stored and stored["status"] == "ok" and len(stored["stepResults"]) == 4
            assert stored["stepResults"][0]["event"]["company"] in ("Alpha Co", "Beta Co")

    run(scenario(), timeout=240)


def test_launch_failure_rolls_back_and_says_why(settings: Settings) -> None:
    async def scenario() -> None:
        async with open_core(settings.with_(start_timeout_ms=1)) as core:
            result = await core.run_journey(journey("Slow Co", "OneService", "TwoService"))
            assert not result.ok
            assert "not ready" in (result.error or "")
            assert core.services() == []
            assert core.history.runs(1)[0]["status"] == "failed"

    run(scenario())


def test_customers_are_deterministic_with_a_seed() -> None:
    from app.core.simulation import make_customers

    a = make_customers(5, "acme.com", seed=7)
    assert a == make_customers(5, "acme.com", seed=7)
    assert a != make_customers(5, "acme.com", seed=8)
    assert all(c.email.endswith("@acme.com") for c in a)
    assert len({c.id for c in make_customers(200, "x.com", seed=1)}) == 200


def test_big_runs_are_bounded_in_the_answer_and_the_history(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's answer lists the first customers only (the summary counts all); the history keeps
    per-step rows for the first customers and drops the oldest runs past its size bound."""
    from app.core import history, runs

    monkeypatch.setattr(runs, "MAX_CUSTOMERS_SHOWN", 3)
    monkeypatch.setattr(history, "KEEP_CUSTOMERS_PER_RUN", 2)

    async def scenario() -> None:
        async with open_core(settings) as core:
            result = await core.run_journey(
                journey("Big Co", "BigService"), customers=5, mode="multiple"
            )
            answer = result.as_json()
            assert len(answer["customers"]) == 3 and answer["customersOmitted"] == 2
            assert answer["summary"]["customers"] == 5
            detail = core.history.get(result.run_id)
            assert detail is not None and len(detail["stepResults"]) == 2  # 2 customers x 1 step
            monkeypatch.setattr(history, "KEEP_BYTES", core.history._used_bytes() - 1)
            await core.run_journey(journey("Big Co", "BigService"), customers=5, mode="multiple")
            assert core.history.count() == 1, "the oldest run went to stay under the bound"

    run(scenario())
