"""Traces of continuous traffic (app/core/traces.py): the latest 200, the failed 50 and the
slowest 20 journeys of the running traffic, each bounded whatever the rate, kept as the
journeys' own results (trace id, steps) so the window can draw their waterfall."""

from __future__ import annotations

from app.core.orchestrator import open_core
from app.core.settings import Settings
from app.core.traces import FAILED, LATEST, SLOWEST, TraceKind
from app.core.waiting import until
from tests.conftest import run
from tests.helpers import journey


def test_latest_failed_and_slowest_are_bounded_and_true(settings: Settings) -> None:
    """A third of the payments fail; after more than 200 journeys each list is at its bound,
    the failed ones all failed at Pay, the slowest are slower than any other kept journey."""

    async def scenario() -> None:
        async with open_core(settings) as core:
            shop = journey(
                "Trace Co", "CartService", "PayService", step2={"errorRate": 0.34}
            )  # fmt: skip
            ran = await core.run_journey(shop)
            assert ran.ok
            await core.start_traffic(60)
            assert await until(
                lambda: (
                    core.traffic.status().completed + core.traffic.status().failed > LATEST + 20
                ),
                30,
            )
            final = await core.stop_traffic()
            latest = core.traffic.traces(TraceKind.LATEST)
            failed = core.traffic.traces(TraceKind.FAILED)
            slowest = core.traffic.traces(TraceKind.SLOWEST)
            assert len(latest) == LATEST and len(slowest) == SLOWEST, (len(latest), final)
            assert final.failed >= FAILED and len(failed) == FAILED
            assert [k.at for k in latest] == sorted((k.at for k in latest), reverse=True)
            assert len({k.result.trace_id for k in latest}) == LATEST  # each journey once
            assert all(k.company == "Trace Co" and k.journey_id == ran.journey_id for k in latest)
            assert all(not k.result.ok for k in failed)
            assert all(
                next(s for s in k.result.steps if s.status != "ok").step_name == "Pay"
                for k in failed
            )
            times = [k.result.latency_ms for k in slowest]
            assert times == sorted(times, reverse=True)
            slow_ids = {k.result.trace_id for k in slowest}
            others = [k for k in latest if k.result.trace_id not in slow_ids]
            assert all(k.result.latency_ms <= times[-1] for k in others)
            assert core.traffic.traces(TraceKind.LATEST, limit=5) == latest[:5]

    run(scenario(), timeout=90)
