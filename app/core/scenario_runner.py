"""Running one scenario at a time: each step's incident at its time from the start.

The whole scenario is checked before its first step runs (every field of every step, and that
each step's service runs now). The scheduler waits for each step with a real timer — pacing,
not synchronisation — as a task of its own `TaskOwner`, cancelled by Stop, Stop All and
closing. A step whose incident cannot start (its service broke or was replaced meanwhile) is
recorded as failed with the reason, and the next steps still run. A step replaces the
scenario's own earlier incident of the same kind on the same service (a ramp: +200 ms, then
+500 ms). The scenario is over once its last step ran and its incidents ended; stopping it ends
them (docs/architecture.md, "Incidents and scenarios").
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from app.core.errors import CoreError, IncidentConflictError, Problem, ValidationError
from app.core.events import CoreEvents, LogLevel
from app.core.incident_model import EndReason, IncidentChange, IncidentEvent
from app.core.incidents import Incidents
from app.core.scenarios import Scenario, load_packaged, packaged_names, parse_scenario
from app.core.tasks import TaskOwner


class StepState(StrEnum):
    PENDING = "pending"
    STARTED = "started"
    FAILED = "failed"
    CANCELLED = "cancelled"  # the scenario was stopped before its time


class RunState(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"


@dataclass(frozen=True)
class StepRecord:
    at_s: float
    incident: dict[str, Any]
    state: StepState = StepState.PENDING
    incidents: tuple[str, ...] = ()  # the ids it started
    error: str = ""
    ran_at: float | None = None  # wall clock

    def to_json(self, started_at: float) -> dict[str, Any]:
        late = None if self.ran_at is None else round(self.ran_at - started_at - self.at_s, 3)
        return {
            "atS": self.at_s,
            "at": started_at + self.at_s,
            "incident": self.incident,
            "state": self.state.value,
            "incidents": list(self.incidents),
            "error": self.error or None,
            "ranAt": self.ran_at,
            "lateS": late,
        }


@dataclass
class ScenarioRun:
    """One run of a scenario: what ran, what comes next, when."""

    id: str
    scenario: Scenario
    started_at: float  # wall clock
    started_mono: float
    steps: list[StepRecord] = field(default_factory=list)
    state: RunState = RunState.RUNNING
    ended_at: float | None = None
    reason: str = ""  # why it stopped

    def to_json(self) -> dict[str, Any]:
        elapsed = (self.ended_at or time.time()) - self.started_at
        upcoming = next((s for s in self.steps if s.state is StepState.PENDING), None)
        return {
            "id": self.id,
            "name": self.scenario.name,
            "description": self.scenario.description,
            "state": self.state.value,
            "reason": self.reason or None,
            "startedAt": self.started_at,
            "endedAt": self.ended_at,
            "elapsedS": round(elapsed, 1),
            "durationS": self.scenario.duration_s,
            "steps": [s.to_json(self.started_at) for s in self.steps],
            "next": None
            if upcoming is None
            else {
                "atS": upcoming.at_s,
                "inS": round(max(0.0, upcoming.at_s - elapsed), 1),
                "incident": upcoming.incident,
            },
        }


class ScenarioRunner:
    """Owned by the Core; used from the event loop's thread only."""

    def __init__(self, incidents: Incidents, events: CoreEvents) -> None:
        self._incidents = incidents
        self._events = events
        self._owner = TaskOwner("scenarios", self._failed)
        self._run: ScenarioRun | None = None
        self._task: asyncio.Task[None] | None = None
        self._quiet = asyncio.Event()  # none of the running scenario's incidents is in effect
        events.incident.connect(self._on_incident)

    @property
    def current(self) -> ScenarioRun | None:
        """The running scenario, or the last one (finished or stopped)."""
        return self._run

    @property
    def running(self) -> bool:
        return self._run is not None and self._run.state is RunState.RUNNING

    def status(self) -> dict[str, Any]:
        run = self._run
        return {
            "packaged": [load_packaged(n).to_json() for n in packaged_names()],
            "running": run.to_json() if run is not None and self.running else None,
            "last": run.to_json() if run is not None and not self.running else None,
        }

    async def run(self, body: object) -> ScenarioRun:
        """Start `{"scenario": {…}}` or `{"name": "payment-outage"}`. ValidationError (a bad
        scenario) and IncidentConflictError (one runs already, or a step's service is not
        running) change nothing."""
        scenario = self._scenario(body)
        if self.running:
            assert self._run is not None
            raise IncidentConflictError(
                f"scenario {self._run.scenario.name!r} runs already: stop it first"
            )
        missing: list[str] = []
        for index, step in enumerate(scenario.steps):
            try:
                self._incidents.targets(step.incident, f"steps[{index}].incident.")
            except CoreError as exc:  # the fleet, not the scenario: it may run once it is up
                missing += [f"steps[{index}]: {exc}"] if str(exc) not in str(missing) else []
        if missing:
            raise IncidentConflictError(
                f"scenario {scenario.name!r} needs services that are not running: "
                + "; ".join(missing)
            )
        run = ScenarioRun(
            id=f"scn-{os.urandom(4).hex()}",
            scenario=scenario,
            started_at=time.time(),
            started_mono=time.monotonic(),
            steps=[StepRecord(s.at_s, s.incident) for s in scenario.steps],
        )
        self._run = run
        self._quiet.set()
        self._task = self._owner.spawn(self._drive(run), run.id)
        self._events.say("scenario", f"scenario {scenario.name} started ({run.id})")
        return run

    async def stop(self, reason: str = "stopped") -> ScenarioRun | None:
        """Stop the running scenario: no further step, its incidents end. None if none runs."""
        run = self._run
        if run is None or not self.running:
            return None
        self._finish(run, RunState.STOPPED, reason)
        if self._task is not None:
            self._task.cancel()
        await self._incidents.clear(EndReason.SCENARIO_STOPPED, lambda i: i.scenario == run.id)
        return run

    async def aclose(self) -> None:
        await self.stop("the panel closing")
        await self._owner.aclose()

    def _scenario(self, body: object) -> Scenario:
        if not isinstance(body, dict) or len(body) != 1 or not {"scenario", "name"} & set(body):
            raise ValidationError(
                Problem("", 'the body must be {"scenario": {…}} or {"name": "<packaged name>"}')
            )
        if "name" in body:
            name = body["name"]
            if not isinstance(name, str):
                raise ValidationError(Problem("name", "name must be a packaged scenario's name"))
            return load_packaged(name)
        return parse_scenario(body["scenario"])

    async def _drive(self, run: ScenarioRun) -> None:
        for index, step in enumerate(run.scenario.steps):
            wait = run.started_mono + step.at_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)  # pacing: the step's time from the start
            await self._step(run, index)
        await self._quiet.wait()  # its incidents end by their own timers (or are cleared)
        self._finish(run, RunState.FINISHED, "")

    async def _step(self, run: ScenarioRun, index: int) -> None:
        step = run.scenario.steps[index]
        ran_at = time.time()
        try:
            targets = set(self._incidents.targets(step.incident))
            kind = step.request.spec.kind
            await self._incidents.clear(
                EndReason.REPLACED,
                lambda i: i.scenario == run.id and i.kind is kind and i.key in targets,
            )
            started = await self._incidents.start(step.incident, scenario=run.id)
        except CoreError as exc:
            run.steps[index] = replace(
                run.steps[index], state=StepState.FAILED, error=str(exc), ran_at=ran_at
            )
            self._events.say(
                "scenario", f"{run.scenario.name} step {index + 1}: {exc}", LogLevel.WARNING
            )
            return
        self._quiet.clear()
        ids = tuple(i.id for i in started)
        run.steps[index] = replace(
            run.steps[index], state=StepState.STARTED, incidents=ids, ran_at=ran_at
        )

    def _finish(self, run: ScenarioRun, state: RunState, reason: str) -> None:
        if run.state is not RunState.RUNNING:
            return
        run.state, run.reason, run.ended_at = state, reason, time.time()
        run.steps = [
            replace(s, state=StepState.CANCELLED) if s.state is StepState.PENDING else s
            for s in run.steps
        ]
        why = f" ({reason})" if reason else ""
        self._events.say("scenario", f"scenario {run.scenario.name} {state.value}{why}")

    def _on_incident(self, event: IncidentEvent) -> None:
        run = self._run
        if run is None or event.change is not IncidentChange.ENDED:
            return
        if not any(i.scenario == run.id for i in self._incidents.active()):
            self._quiet.set()

    def _failed(self, name: str, exc: BaseException) -> None:
        self._events.say("scenario", f"{name} failed: {type(exc).__name__}: {exc}", LogLevel.ERROR)
