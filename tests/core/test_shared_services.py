"""Steps may share a service: one process per distinct service, called once per step."""

from __future__ import annotations

from app.core import probe
from app.core.journeys import parse_journey
from app.core.model import Phase, ServiceSpec
from app.core.orchestrator import open_core
from app.core.settings import Settings
from app.service.hop_client import MAX_CONNECTIONS
from tests.conftest import run
from tests.helpers import journey

BANKING = journey(
    "First Digital Bank",
    "AuthService",
    "AccountService",
    "AuthService",
    step1={"stepName": "Login"},
    step3={"stepName": "Logout"},
)


def test_service_specs_are_distinct_in_order_of_first_use() -> None:
    specs = parse_journey(journey("Co", "BService", "AService", "BService", "CService"))
    assert specs.service_specs() == [
        ServiceSpec("BService", "Co"),
        ServiceSpec("AService", "Co"),
        ServiceSpec("CService", "Co"),
    ]


def test_a_shared_service_runs_once_and_serves_each_of_its_steps(settings: Settings) -> None:
    async def scenario() -> None:
        async with open_core(settings) as core:
            result = await core.run_journey(BANKING, customers=3, mode="multiple")
            assert result.ok, result.error
            launch = result.phase(Phase.LAUNCH)
            assert launch is not None and launch.counts["launched"] == 2
            assert sorted(s.service_name for s in result.services) == [
                "AccountService",
                "AuthService",
            ]
            listeners = probe.scan_listeners(settings.ports)
            assert {lst.pid for lst in listeners.values()} == {s.pid for s in result.services}
            assert result.simulation is not None
            for customer in result.simulation.customers:
                assert [(s.step_name, s.service_name, s.status) for s in customer.steps] == [
                    ("Login", "AuthService", "ok"),
                    ("Account", "AccountService", "ok"),
                    ("Logout", "AuthService", "ok"),
                ]

    run(scenario())


def test_a_service_passed_twice_keeps_up_with_more_customers_than_its_call_bound(
    settings: Settings,
) -> None:
    """A, B, A, C with more customers in flight than a service makes calls at once
    (hop_client.MAX_CONNECTIONS): A's calls to B wait for A's calls to C, so those must
    never wait behind them for a slot. With one bound for all of A's calls, every journey
    hung until its budget ran out (11 % succeeded)."""
    shape = journey("Loop Co", "AService", "BService", "AService", "CService")
    customers = MAX_CONNECTIONS * 3

    async def scenario() -> None:
        async with open_core(settings) as core:
            result = await core.run_journey(
                shape, customers=customers, mode="multiple", concurrency=MAX_CONNECTIONS * 2
            )
            assert result.ok, result.error
            assert result.simulation is not None
            summary = result.simulation.summary
            failed = [
                s.error for c in result.simulation.customers for s in c.steps if s.status != "ok"
            ]
            assert summary.success_rate == 1.0, failed[:3]

    run(scenario())
