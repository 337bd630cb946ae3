"""Scenarios with real services: steps run at their times (±0.5 s) by a real timer, a step
replaces the scenario's earlier incident of its kind on that service, Stop ends the scenario
and its incidents, a scenario whose service is not running is refused whole, and Stop All
ends a running scenario (docs/architecture.md, "Incidents and scenarios")."""

from __future__ import annotations

import pytest

from app.core.errors import IncidentConflictError, ValidationError
from app.core.settings import Settings
from app.core.waiting import until
from tests.conftest import run
from tests.incidents.support import fleet, pids

TOLERANCE_S = 0.5


def latency(at_s: float, add_ms: float, duration_s: float = 30) -> dict[str, object]:
    incident = {"service": "BService", "kind": "latency", "addMs": add_ms, "durationS": duration_s}
    return {"atS": at_s, "incident": incident}


def test_steps_run_at_their_times_and_replace_the_earlier_one_of_their_kind(
    settings: Settings,
) -> None:
    scenario = {"name": "ramp", "steps": [latency(0, 50), latency(1.0, 100), latency(2.0, 150)]}

    async def body() -> None:
        async with fleet(settings, rate=None) as core:
            before = pids(core)
            started = await core.scenarios.run({"scenario": scenario})
            assert started.state.value == "running"
            assert await until(
                lambda: all(s.state.value == "started" for s in started.steps), 6.0
            ), started.to_json()
            steps = started.to_json()["steps"]
            for step in steps:
                assert abs(step["lateS"]) <= TOLERANCE_S, steps
            # One latency incident on BService at a time: the last step's.
            [active] = core.incidents.active()
            assert active.spec.add_ms == 150 and active.scenario == started.id
            assert pids(core) == before  # same processes throughout
            stopped = await core.scenarios.stop()
            assert stopped is not None and stopped.state.value == "stopped"
            assert core.incidents.active() == []

    run(body())


def test_a_scenario_is_checked_whole_and_one_runs_at_a_time(settings: Settings) -> None:
    async def body() -> None:
        async with fleet(settings, rate=None) as core:
            missing = {"name": "x", "steps": [latency(0, 10), {**latency(5, 10)}]}
            missing["steps"][1]["incident"]["service"] = "NoSuchService"  # type: ignore[index]
            with pytest.raises(IncidentConflictError, match="NoSuchService"):
                await core.scenarios.run({"scenario": missing})
            with pytest.raises(ValidationError):
                await core.scenarios.run({"scenario": {"name": "y", "steps": [{"atS": -1}]}})
            assert core.incidents.active() == [] and not core.scenarios.running
            later = {"name": "later", "steps": [latency(0, 10), latency(60, 20)]}
            await core.scenarios.run({"scenario": later})
            with pytest.raises(IncidentConflictError, match="runs already"):
                await core.scenarios.run({"name": "payment-outage"})
            assert await until(lambda: len(core.incidents.active()) == 1, 3.0)
            await core.stop_all()
            assert not core.scenarios.running and core.incidents.active() == []

    run(body())
