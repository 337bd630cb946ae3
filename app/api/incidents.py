"""Control API routes for incidents and scenarios (docs/architecture.md, "Incidents and
scenarios"), with their part of the OpenAPI document.

Listed in the API's own route table (app/api/app.py), so the guard in front of every
route applies to them as to every other: no cross-origin request, no foreign Host, JSON only.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.api.common import CORE, Handler, json_response, read_body
from app.api.schemas import NO_BODY
from app.core.incident_model import EVERY_SERVICE
from app.core.scenario_runner import RunState, StepState
from app.core.scenarios import MAX_AT_S, MAX_SCENARIO_STEPS, packaged_names
from app.service.errors import ErrorType
from app.service.incident_kinds import DURATION, PARAMS, IncidentKind


def incident_answer(incidents: list[Any]) -> dict[str, Any]:
    """The first incident's fields, and every incident started (several for "*")."""
    listed = [i.to_json() for i in incidents]
    return {"ok": True, **listed[0], "incidents": listed}


async def incidents_start(request: web.Request) -> web.Response:
    started = await request.app[CORE].incidents.start(await read_body(request))
    return json_response(incident_answer(started), status=201)


async def incidents_list(request: web.Request) -> web.Response:
    active = request.app[CORE].incidents.active()
    return json_response({"count": len(active), "incidents": [i.to_json() for i in active]})


async def incidents_clear(request: web.Request) -> web.Response:
    cleared = await request.app[CORE].incidents.clear()
    return json_response({"ok": True, "cleared": [i.to_json() for i in cleared]})


async def incidents_end(request: web.Request) -> web.Response:
    ended = await request.app[CORE].incidents.end(request.match_info["incident_id"])
    return json_response({"ok": True, "incident": ended.to_json()})


async def scenarios_status(request: web.Request) -> web.Response:
    return json_response(request.app[CORE].scenarios.status())


async def scenarios_run(request: web.Request) -> web.Response:
    run = await request.app[CORE].scenarios.run(await read_body(request))
    return json_response({"ok": True, **run.to_json()}, status=201)


async def scenarios_stop(request: web.Request) -> web.Response:
    stopped = await request.app[CORE].scenarios.stop()
    return json_response({"ok": True, "stopped": stopped.to_json() if stopped else None})


INCIDENT_ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/api/incidents", incidents_start),
    ("GET", "/api/incidents", incidents_list),
    ("DELETE", "/api/incidents", incidents_clear),
    ("DELETE", "/api/incidents/{incident_id}", incidents_end),
    ("GET", "/api/scenarios", scenarios_status),
    ("POST", "/api/scenarios/run", scenarios_run),
    ("POST", "/api/scenarios/stop", scenarios_stop),
]


# -- OpenAPI ------------------------------------------------------------------------------------
def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERR = {"$ref": "#/components/schemas/Error"}
OBJ: dict[str, Any] = {"type": "object"}


def _param_schema(kind: IncidentKind) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for param in (DURATION, *PARAMS[kind]):
        bound = "exclusiveMinimum" if param.lo_open else "minimum"
        props[param.name] = {
            "type": "integer" if param.whole else "number",
            bound: param.lo,
            "maximum": param.hi,
            "default": param.default,
            "description": param.label,
        }
    if kind is IncidentKind.ERRORS:
        props["errorType"] = {
            "type": "string",
            "enum": [e.value for e in ErrorType],
            "description": "default: the one the status says (503 unavailable, 402 payment, "
            "...), else internal",
        }
    return props


def _incident_body(kind: IncidentKind) -> dict[str, Any]:
    return {
        "type": "object",
        "title": f"{kind.value.capitalize()}Incident",
        "required": ["service", "kind"],
        "additionalProperties": False,
        "properties": {
            "service": {
                "type": "string",
                "pattern": "\\S",
                "description": "a service name one company runs, its key (Name-Company), "
                f'or "{EVERY_SERVICE}" (every customer service of the journey)',
            },
            "journey": {
                "type": "string",
                "pattern": "\\S",
                "description": "a resident journey's id: the journey whose service it is",
            },
            "kind": {"const": kind.value},
            **_param_schema(kind),
        },
    }


INCIDENT_BODY = {"oneOf": [_incident_body(k) for k in IncidentKind]}
INCIDENT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "service", "kind", "startedAt", "endsAt"],
    "properties": {
        "id": {"type": "string"},
        "service": {"type": "string", "description": "the service's key"},
        "serviceName": {"type": "string"},
        "company": {"type": "string"},
        "journey": {"type": ["string", "null"]},
        "port": {"type": "integer"},
        "pid": {"type": "integer"},
        "kind": {"type": "string", "enum": [k.value for k in IncidentKind]},
        "durationS": {"type": "number"},
        "startedAt": {"type": "number", "description": "wall clock, seconds"},
        "endsAt": {"type": "number", "description": "wall clock, seconds"},
        "remainingS": {"type": "number"},
        "scenario": {"type": ["string", "null"], "description": "the scenario run that began it"},
    },
    "additionalProperties": True,
    "description": "and the kind's parameters (rate, status, errorType, addMs, jitterMs, "
    "cores, mbPerS, capMb)",
}
SCENARIO = {
    "type": "object",
    "required": ["name", "steps"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "steps": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_SCENARIO_STEPS,
            "items": {
                "type": "object",
                "required": ["atS", "incident"],
                "additionalProperties": False,
                "properties": {
                    "atS": {"type": "number", "minimum": 0, "maximum": MAX_AT_S},
                    "incident": INCIDENT_BODY,
                },
            },
        },
    },
}
SCENARIO_RUN = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "state": {"type": "string", "enum": [s.value for s in RunState]},
        "startedAt": {"type": "number"},
        "elapsedS": {"type": "number"},
        "durationS": {"type": "number"},
        "steps": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "atS": {"type": "number"},
                    "at": {"type": "number", "description": "wall clock: when it is due"},
                    "state": {"type": "string", "enum": [s.value for s in StepState]},
                    "incidents": {"type": "array", "items": {"type": "string"}},
                    "error": {"type": ["string", "null"]},
                    "ranAt": {"type": ["number", "null"]},
                    "lateS": {"type": ["number", "null"]},
                },
            },
        },
        "next": {"type": ["object", "null"], "description": "the next step and in how long"},
    },
}
CONFLICT = _json(ERR, "one of its kind is in effect there, or the service is broken")


def _op(summary: str, responses: dict[str, Any], body: dict[str, Any] | None = None) -> Any:
    op: dict[str, Any] = {"summary": summary, "tags": ["incidents"], "responses": responses}
    if body is NO_BODY:
        op["requestBody"] = NO_BODY
    elif body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


INCIDENT_PATHS: dict[str, dict[str, Any]] = {
    "/api/incidents": {
        "post": _op(
            "start an incident in a running service (same process, in effect within 1 s)",
            {
                "201": _json(
                    {**INCIDENT, "properties": {**INCIDENT["properties"], "incidents": OBJ}},
                    "the incident (and, for *, every one started)",
                ),
                "400": _json(ERR, "a bad or unknown field (named); nothing changed"),
                "404": _json(ERR, "no such running service or journey"),
                "409": CONFLICT,
                "502": _json(ERR, "the service did not take it (none was started)"),
            },
            INCIDENT_BODY,
        ),
        "get": _op(
            "the incidents in effect",
            {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["count", "incidents"],
                        "properties": {
                            "count": {"type": "integer"},
                            "incidents": {"type": "array", "items": OBJ},
                        },
                    },
                    "the list",
                )
            },
        ),
        "delete": _op("end every incident now", {"200": _json(OBJ, "the incidents ended")}),
    },
    "/api/incidents/{incident_id}": {
        "delete": {
            **_op(
                "end one incident now",
                {"200": _json(OBJ, "ended"), "404": _json(ERR, "no such incident")},
            ),
            "parameters": [
                {
                    "name": "incident_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                }
            ],
        }
    },
    "/api/scenarios": {
        "get": _op(
            "the packaged scenarios, and the running (or last) one with its timeline",
            {"200": _json(OBJ, "packaged, running, last")},
        )
    },
    "/api/scenarios/run": {
        "post": _op(
            "run a scenario (one at a time): each step's incident at its time",
            {
                "201": _json(SCENARIO_RUN, "the run, with its timeline"),
                "400": _json(ERR, "a bad scenario or step (named)"),
                "409": _json(ERR, "a scenario runs already, or a step's service is not running"),
            },
            {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["scenario"],
                        "additionalProperties": False,
                        "properties": {"scenario": SCENARIO},
                    },
                    {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {"name": {"enum": packaged_names()}},
                    },
                ]
            },
        )
    },
    "/api/scenarios/stop": {
        "post": _op(
            "stop the running scenario: no further step, its incidents end",
            {"200": _json(OBJ, "the run stopped (stopped: null when none ran)")},
            NO_BODY,
        )
    },
}


def add_incident_spec(spec: dict[str, Any]) -> None:
    """Merge these routes into the OpenAPI document under the `incidents` tag."""
    spec["paths"].update(INCIDENT_PATHS)
    spec.setdefault("tags", []).append(
        {"name": "incidents", "description": "incidents in running services, and scenarios"}
    )
