"""Continuous traffic: real services, real HTTP, the core's generator (docs/architecture.md,
"Traffic")."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.core import probe
from app.core.errors import NoJourneyError, ValidationError
from app.core.orchestrator import Core, open_core
from app.core.settings import Settings
from app.core.traffic_model import TrafficStatus
from app.core.waiting import until
from tests.conftest import run
from tests.helpers import journey

RATE = 20.0


class Reports:
    """Every traffic report with the monotonic time it came."""

    def __init__(self, core: Core) -> None:
        self.seen: list[tuple[float, TrafficStatus]] = []
        self.changed = asyncio.Event()
        core.events.traffic.connect(self._on)

    def _on(self, status: TrafficStatus) -> None:
        self.seen.append((time.monotonic(), status))
        self.changed.set()

    async def rate_over(self, seconds: float, timeout: float) -> float:
        """Journeys sent per second between the next report and the first one `seconds`
        later (the generator's own once-a-second reports)."""
        async with asyncio.timeout(timeout):
            start = len(self.seen)
            while len(self.seen) <= start:
                self.changed.clear()
                await self.changed.wait()
            t0, first = self.seen[start]
            while self.seen[-1][0] - t0 < seconds:
                self.changed.clear()
                await self.changed.wait()
        t1, last = self.seen[-1]
        return (last.sent - first.sent) / (t1 - t0)


async def _count(core: Core, completed: int, timeout: float = 20.0) -> None:
    held = await until(lambda: core.traffic.status().completed >= completed, timeout)
    assert held, core.traffic.status()


def test_rate_held_within_ten_percent_at_20_per_second_and_stop_drains(
    settings: Settings,
) -> None:
    async def scenario() -> None:
        async with open_core(settings) as core:
            result = await core.run_journey(journey("Rate Co", "LoginService", "BrowseService"))
            assert result.ok, result.error
            reports = Reports(core)
            await core.start_traffic(RATE)
            await _count(core, 5)
            rate = await reports.rate_over(10.0, timeout=20.0)
            assert abs(rate - RATE) <= RATE * 0.10, rate
            status = core.traffic.status()
            assert status.running and not status.behind
            assert abs(status.achieved_rate - RATE) <= RATE * 0.15, status.achieved_rate
            # The series: one point per second, ten of them carry about 200 journeys.
            last = status.series[-10:]
            assert [p.at for p in last] == [last[0].at + i for i in range(10)]
            ended = sum(p.completed + p.failed for p in last)
            assert abs(ended - RATE * 10) <= RATE, ended
            assert [s.step_name for s in last[-1].steps] == ["Login", "Browse"]
            final = await core.stop_traffic()
            assert not final.running and final.in_flight == 0
            assert final.sent == final.completed + final.failed and final.failed == 0
            assert reports.seen[-1][1] == final  # emitted once on stop
            assert [s.ok for s in final.steps] == [final.completed] * 2

    run(scenario(), timeout=90)


def test_run_journey_during_traffic_fails_no_journey_and_resumes(settings: Settings) -> None:
    async def scenario() -> None:
        async with open_core(settings) as core:
            first = await core.run_journey(journey("Old Co", "LoginService", "BrowseService"))
            assert first.ok, first.error
            reports = Reports(core)
            await core.start_traffic(RATE)
            await _count(core, 20)
            switched = await core.run_journey(
                journey("New Co", "SignupService", "OnboardService"), customers=3, mode="multiple"
            )
            assert switched.ok and switched.stopped == 2, switched.error
            assert switched.simulation and switched.simulation.summary.failed == 0
            status = core.traffic.status()
            assert status.failed == 0, status  # the switch failed no journey
            assert status.running and not status.paused and status.rate == RATE
            assert any(r[1].paused for r in reports.seen)  # it did pause
            rate = await reports.rate_over(5.0, timeout=15.0)
            assert abs(rate - RATE) <= RATE * 0.10, rate
            steps = {s.step_name: s for s in core.traffic.status().steps}
            assert steps["Signup"].ok > 0 and steps["Onboard"].ok > 0  # on the new services
            final = await core.stop_traffic()
            assert final.failed == 0 and final.sent == final.completed

    run(scenario(), timeout=90)


def test_stop_all_during_traffic_leaves_nothing_running(settings: Settings) -> None:
    async def scenario() -> None:
        async with open_core(settings) as core:
            result = await core.run_journey(journey("Stop Co", "LoginService", "BrowseService"))
            assert result.ok, result.error
            await core.start_traffic(50)
            await _count(core, 20)
            await core.stop_all()
            status = core.traffic.status()
            assert not status.running and status.in_flight == 0 and status.reason == "Stop All"
            assert status.sent == status.completed + status.failed + status.cancelled
            assert core.services() == []
            assert probe.scan_listeners(settings.ports) == {}
            with pytest.raises(NoJourneyError):
                await core.start_traffic(5)  # nothing runs any more

    run(scenario(), timeout=60)


BAD_RATES = [0, -1, float("nan"), float("inf"), 10**6, "20", True, None, 0.05, 2000.5]


def test_bad_rates_are_refused_and_change_nothing(settings: Settings) -> None:
    async def scenario() -> None:
        async with open_core(settings) as core:
            result = await core.run_journey(journey("Bad Co", "LoginService"))
            assert result.ok, result.error
            for rate in BAD_RATES:  # stopped: nothing starts
                with pytest.raises(ValidationError) as refused:
                    await core.start_traffic(rate)
                assert [p.field for p in refused.value.problems] == ["rate"], rate
                assert not core.traffic.running
            await core.start_traffic(5)
            for rate in BAD_RATES:  # running: the rate stays
                with pytest.raises(ValidationError):
                    await core.start_traffic(rate)
                assert core.traffic.status().rate == 5
            await core.stop_traffic()

    run(scenario())


def test_start_without_a_running_journey_is_refused(settings: Settings) -> None:
    async def scenario() -> None:
        async with open_core(settings) as core:
            with pytest.raises(NoJourneyError, match="no journey is running"):
                await core.start_traffic(5)
            assert not core.traffic.running

    run(scenario())
