"""Traffic counts you can trust: every journey counted once, steps never reached are not
failures, the current journey's steps apart from the totals, `behind` over the last seconds
(also after a stop), and percentiles from a bucket histogram."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from app.core.orchestrator import open_core
from app.core.settings import Settings
from app.core.traffic_model import TrafficStatus
from app.core.traffic_stats import Histogram, Tally, bucket
from app.core.waiting import until
from tests.conftest import run
from tests.helpers import journey


def balanced(status: TrafficStatus) -> bool:
    return status.sent == status.completed + status.failed + status.cancelled + status.in_flight


def test_a_failing_step_counts_once_and_the_steps_after_it_are_not_reached(
    settings: Settings,
) -> None:
    """Every Pay step fails (402): the journey is failed once, Pay is failed, Ship was never
    called (notReached, not failed): today each payment failure was counted twice."""

    async def scenario() -> None:
        async with open_core(settings) as core:
            shop = journey(
                "Count Co",
                "CartService",
                "PayService",
                "ShipService",
                step2={"errorRate": 1.0, "errorType": "payment"},
            )
            assert (await core.run_journey(shop)).ok
            await core.start_traffic(30)
            assert await until(lambda: core.traffic.status().failed >= 30, 20)
            final = await core.stop_traffic()
            assert balanced(final) and final.completed == 0, final
            steps = {s.step_name: s for s in final.steps}
            assert steps["Cart"].ok == final.failed and steps["Cart"].failed == 0
            assert steps["Pay"].failed == final.failed and steps["Pay"].ok == 0
            assert steps["Ship"].not_reached == final.failed
            assert steps["Ship"].ok == steps["Ship"].failed == 0
            wire = final.to_json()
            assert wire["perStep"][2]["notReached"] == final.failed

    run(scenario(), timeout=60)


def test_a_switch_resets_the_steps_and_keeps_the_totals(settings: Settings) -> None:
    """After a Run Journey the per-step figures are the new journey's only (the old steps do not
    linger); the totals since start go on."""

    async def scenario() -> None:
        async with open_core(settings) as core:
            assert (await core.run_journey(journey("Old Co", "AService", "BService"))).ok
            await core.start_traffic(20)
            assert await until(lambda: core.traffic.status().completed >= 20, 20)
            before = core.traffic.status()
            switched = await core.run_journey(journey("New Co", "XService", "YService"))
            assert switched.ok
            assert await until(lambda: sum(s.ok for s in core.traffic.status().steps) >= 10, 20)
            after = core.traffic.status()
            assert [s.step_name for s in after.steps] == ["X", "Y"]
            assert after.steps_since > before.steps_since
            assert after.completed >= before.completed + after.steps[0].ok - after.in_flight
            assert after.company == "New Co" and after.journey_id == switched.journey_id
            final = await core.stop_traffic()
            assert balanced(final) and final.failed == 0

    run(scenario(), timeout=90)


def test_behind_and_skipped_describe_the_last_seconds_and_stay_in_the_final_status(
    settings: Settings,
) -> None:
    """A rate the in-flight bound cannot carry: journeys are skipped (counted, never sent) and
    `behind` says so, also in the status after stop."""

    async def scenario() -> None:
        async with open_core(settings) as core:
            slow = journey("Behind Co", "SlowService", step1={"latencyMs": 500})
            assert (await core.run_journey(slow)).ok
            core.traffic.max_in_flight = 3  # what 512 is to a real machine, small
            await core.start_traffic(50)
            assert await until(lambda: core.traffic.status().skipped >= 20, 10)
            assert core.traffic.status().behind
            final = await core.stop_traffic()
            assert final.behind and final.skipped >= 20 and balanced(final), final
            assert final.to_json()["skipped"] == final.skipped

    run(scenario(), timeout=60)


def test_new_customer_journey_holds_traffic_like_a_run_journey(settings: Settings) -> None:
    """The replaced system's admin/new-customer-journey stops the customer services: traffic
    is held first (no journey is failed by the stop), and goes on with the next journey."""

    async def scenario() -> None:
        async with open_core(settings) as core:
            assert (await core.run_journey(journey("Admin Co", "AService", "BService"))).ok
            await core.start_traffic(40)
            assert await until(lambda: core.traffic.status().completed >= 40, 20)
            await core.stop_customer_services()
            held = core.traffic.status()
            assert held.failed == 0 and held.paused and held.in_flight == 0, held
            assert "next journey" in held.paused
            assert (await core.run_journey(journey("Next Co", "CService"))).ok
            assert await until(lambda: not core.traffic.status().paused, 10)
            assert await until(lambda: core.traffic.status().completed >= held.completed + 10, 20)
            final = await core.stop_traffic()
            assert final.failed == 0 and balanced(final), final

    run(scenario(), timeout=90)


# -- the histogram, without sockets ----------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_histogram_percentiles_are_within_the_bucket_rounding(seed: int) -> None:
    """Nearest-rank p50/p95 of the histogram match the exact ones to the bucket's rounding
    (two significant digits, at least 0.1 ms)."""
    rng = random.Random(seed)
    values = [rng.lognormvariate(3, 1.2) for _ in range(20_000)]
    hist = Histogram()
    for v in values:
        hist.add(v)
    ordered = sorted(values)
    for pct in (50, 95, 99):
        exact = ordered[math.ceil(len(values) * pct / 100) - 1]
        got = hist.percentile(pct)
        assert got is not None
        assert abs(got - exact) <= max(0.05, abs(bucket(exact) - exact) + exact * 0.05), pct
    assert hist.count == len(values)


def test_histogram_edges() -> None:
    empty = Histogram()
    assert empty.percentile(50) is None
    one = Histogram()
    one.add(12.34)
    assert one.percentile(50) == one.percentile(99) == 12.0
    assert [bucket(x) for x in (0.04, 9.96, 12.34, 123.4, 1234.5, 35_000.0)] == [
        0.0,
        10.0,
        12.0,
        120.0,
        1200.0,
        35_000.0,
    ]
    merged = Tally()
    merged.journey(True, 5.0, [("A", "ok", 1.0), ("B", "failed", 2.0)])
    merged.journey(False, 7.0, [("A", "failed", 3.0), ("B", "skipped", None)])
    values = merged.step_values(["A", "B"])
    assert [(v.ok, v.failed, v.not_reached) for v in values] == [(1, 1, 0), (0, 1, 1)]
    assert statistics.mean([merged.p(50), merged.p(95)]) == 6.0
