"""Scenarios: incidents on a timeline, `{"name", "steps": [{"atS": 0, "incident": {…}}, …]}`,
each incident as POST /api/incidents takes it and `atS` seconds from the start. Parsing and
checking them whole (every step, before the first runs), the packaged ones
(resources/scenarios) and scenario files. The run itself: app/core/scenario_runner.py
(docs/architecture.md, "Incidents and scenarios").
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from app.core.errors import Problem, ScenarioFileError, ValidationError
from app.core.incident_model import IncidentRequest, parse_request
from app.core.limits import MAX_TEXT

MAX_SCENARIO_STEPS = 100
MAX_AT_S = 3600.0  # a step starts within an hour of the start
SCENARIO_FIELDS = ("name", "description", "steps")
STEP_FIELDS = ("atS", "incident")


@dataclass(frozen=True)
class ScenarioStep:
    at_s: float
    incident: dict[str, Any]  # as it came: what the step asks the incidents table
    request: IncidentRequest  # what it says, checked

    def to_json(self) -> dict[str, Any]:
        return {"atS": self.at_s, "incident": self.incident}


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: tuple[ScenarioStep, ...]  # in the order they run (by atS)
    description: str = ""

    @property
    def duration_s(self) -> float:
        """From the start to the end of its last incident."""
        return max(s.at_s + s.request.spec.duration_s for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "durationS": self.duration_s,
            "steps": [s.to_json() for s in self.steps],
        }


def parse_scenario(data: object) -> Scenario:
    """The scenario `data` describes; ValidationError listing every problem otherwise."""
    if not isinstance(data, dict):
        raise ValidationError(Problem("scenario", "a scenario must be a JSON object"))
    problems = _unknown(data, SCENARIO_FIELDS, "")
    name, description = data.get("name"), data.get("description", "")
    if not isinstance(name, str) or not 0 < len(name.strip()) <= MAX_TEXT:
        problems.append(Problem("name", f"the name must be a text of 1 to {MAX_TEXT} characters"))
    if not isinstance(description, str):
        problems.append(Problem("description", "the description must be a text"))
    raw_steps = data.get("steps")
    steps: list[ScenarioStep] = []
    if not isinstance(raw_steps, list) or not 0 < len(raw_steps) <= MAX_SCENARIO_STEPS:
        problems.append(Problem("steps", f"steps must be a list of 1 to {MAX_SCENARIO_STEPS}"))
    else:
        for index, raw in enumerate(raw_steps):
            step, found = _step(raw, f"steps[{index}].")
            problems += found
            if step is not None:
                steps.append(step)
    if problems:
        raise ValidationError(problems)
    assert isinstance(name, str) and isinstance(description, str)
    ordered = tuple(sorted(steps, key=lambda s: s.at_s))  # stable: equal times keep their order
    return Scenario(name.strip(), ordered, description)


def _step(raw: object, at: str) -> tuple[ScenarioStep | None, list[Problem]]:
    if not isinstance(raw, dict):
        return None, [Problem(at.rstrip("."), "a step must be {atS, incident}")]
    problems = _unknown(raw, STEP_FIELDS, at)
    at_s = raw.get("atS")
    if (
        isinstance(at_s, bool)
        or not isinstance(at_s, int | float)
        or not math.isfinite(at_s)
        or not 0 <= at_s <= MAX_AT_S
    ):
        problems.append(Problem(f"{at}atS", f"the start must be from 0 to {MAX_AT_S:g} s"))
    incident = raw.get("incident")
    request = None
    try:
        request = parse_request(incident, f"{at}incident.")
    except ValidationError as exc:
        problems += exc.problems
    if problems or request is None or not isinstance(incident, dict):
        return None, problems
    return ScenarioStep(float(at_s), dict(incident), request), []  # type: ignore[arg-type]


def _unknown(data: dict[str, Any], known: tuple[str, ...], at: str) -> list[Problem]:
    out = []
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key, known, 1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            out.append(Problem(f"{at}{key}", f"unknown field {key!r}{hint}"))
    return out


# -- packaged scenarios and files -----------------------------------------------------------------
def _folder() -> Any:
    return resources.files("app") / "resources" / "scenarios"


def packaged_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".json") for p in _folder().iterdir() if p.name.endswith(".json")
    )


def load_packaged(name: str) -> Scenario:
    """A packaged scenario by name (payment-outage, slow-checkout, cart-memory-leak)."""
    if name not in packaged_names():
        names = ", ".join(packaged_names())
        raise ValidationError(Problem("name", f"no packaged scenario {name!r}: there are {names}"))
    return parse_scenario(json.loads((_folder() / f"{name}.json").read_text(encoding="utf-8")))


def read_scenario_file(path: Path) -> Any:
    """The JSON of a scenario file (checked when it runs); ScenarioFileError when it cannot be
    read as JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ScenarioFileError(f"cannot read scenario {path}: {exc}") from exc
