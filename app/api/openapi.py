"""OpenAPI description of the control API, ours and the compatibility aliases'; tests keep it
in sync with the routes, and schemathesis finds it true of the server.

`SPEC` is the template; `spec_for` fills in what depends on the server answering: its address,
whether a bearer token is required, and the limits of its settings."""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from app.api.common import CORE, json_response
from app.api.compat import COMPAT_SPEC, RUN_MODES
from app.api.incidents import add_incident_spec
from app.api.metrics import add_metrics_spec
from app.api.schemas import EXTRA_VALUE, JOURNEY, NO_BODY, SEED, STEP, json_content, ref
from app.api.security import GUARD, Guard
from app.core.limits import (
    MAX_CONCURRENCY,
    MAX_CUSTOMERS,
    MAX_CUSTOMERS_SHOWN,
    MAX_THINK_TIME_MS,
    MAX_TRAFFIC_RATE,
    MIN_TRAFFIC_RATE,
)
from app.core.model import CleanupStrategy, Phase, PortState, Reuse
from app.core.runs import MAX_PRESERVED
from app.core.settings import Settings


def _error(description: str) -> dict[str, Any]:
    return json_content(ref("Error"), description)


# What the gate in front of every route answers, and what any operation may answer.
EVERY = {
    "400": _error("bad request (no Host header, or invalid parameters)"),
    "401": {
        **_error("bearer token missing or wrong (only when served with --allow-remote)"),
        "headers": {
            "WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"},
        },
    },
    "403": _error(
        "refused: Host is not this server's address (DNS rebinding), an Origin other than "
        "this server's, or a CORS pre-flight"
    ),
    "405": {
        **_error("method not allowed on this path"),
        "headers": {
            "Allow": {"schema": {"type": "string"}, "description": "the methods this path takes"}
        },
    },
    "500": _error("unexpected server error (logged)"),
}
POSTED = {"415": _error("Content-Type is not application/json (required even with no body)")}
BUSY = {"409": _error("a journey run is in progress")}
RUN_BUSY = {
    "409": json_content(
        {"oneOf": [ref("RunResponse"), ref("Error")]},
        "a journey run is in progress or the run's plan conflicts with the resident journeys "
        "(Error), or this run was cancelled by Stop All and rolled back (RunResponse with "
        "cancelled: true)",
    )
}
RUN_ERRORS = {
    "400": _error(
        "bad input (not JSON, nested too deeply, an unknown field, invalid journey or parameters)"
    ),
    **RUN_BUSY,
    "413": _error("request body too large"),
    "503": _error("the port pool cannot fit the journey now"),
    "507": _error("the state database cannot be written (disk full?); nothing was left running"),
    "500": json_content(
        {"oneOf": [ref("RunResponse"), ref("Error")]},
        "the run failed after validation (e.g. launch failure), or an unexpected error",
    ),
}


def _run_op(summary: str, body: str, extra: dict[str, Any]) -> dict[str, Any]:
    props = {
        "journey": ref("Journey"),
        "seed": SEED,
        "concurrency": {"type": "integer", "minimum": 1, "maximum": MAX_CONCURRENCY},
        "cleanup": {
            "enum": [*(c.value for c in CleanupStrategy), None],
            "description": "which resident journeys this run replaces (default: the server's)",
        },
        "preserve": {
            "type": ["array", "null"],
            "maxItems": MAX_PRESERVED,
            "items": {"type": "string", "maxLength": 120, "pattern": "\\S"},
            "description": "companies whose journeys stay, whatever the cleanup strategy",
        },
        "reuse": {
            "enum": [*(r.value for r in Reuse), None],
            "description": "unchanged: a service whose step is unchanged keeps running",
        },
        **extra,
    }
    return {
        "post": {
            "summary": summary,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["journey"],
                            "properties": props,
                            "additionalProperties": False,
                            "title": body,
                        }
                    }
                },
            },
            "responses": {
                "200": json_content(ref("RunResponse"), "the run's phases and results"),
                **EVERY,
                **POSTED,
                **RUN_ERRORS,
            },
        }
    }


def _get(
    summary: str, schema: dict[str, Any], errors: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    responses = {"200": json_content(schema, summary), **EVERY, **(errors or {})}
    return {"get": {"summary": summary, "responses": responses, **extra}}


def _post(summary: str, schema: dict[str, Any], errors: dict[str, Any]) -> dict[str, Any]:
    responses = {"200": json_content(schema, summary), **EVERY, **POSTED, **errors}
    return {"post": {"summary": summary, "requestBody": NO_BODY, "responses": responses}}


OBJ: dict[str, Any] = {"type": "object"}
JOURNEY_ID = {
    "type": ["string", "null"],
    "minLength": 1,
    "maxLength": 64,
    "description": "a resident journey's id (GET /api/journeys); default: the newest",
}
RUN_RESPONSE = {
    "type": "object",
    "required": ["ok", "runId", "phases", "cleanup", "services", "customers", "summary"],
    "properties": {
        "ok": {"type": "boolean"},
        "runId": {"type": "string"},
        "journeyId": {"type": "string", "description": "the resident journey this run started"},
        "phases": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "ms"],
                "properties": {
                    "name": {
                        "type": "string",
                        "enum": [p.value for p in Phase],
                    },
                    "ms": {"type": "number"},
                    "pacedMs": {
                        "type": "number",
                        "description": "of which the demo-pacing pause (only when paced)",
                    },
                },
            },
        },
        "cleanup": {
            "type": "object",
            "properties": {"stopped": {"type": "integer"}, "staleCleaned": {"type": "integer"}},
        },
        "services": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "port": {"type": "integer"},
                    "pid": {"type": "integer"},
                },
            },
        },
        "customers": {"type": "array", "items": OBJ},
        "summary": {"type": ["object", "null"]},
        "reused": {
            "type": "boolean",
            "description": "simulated on the running services (compat aliases): simulate only",
        },
        "cancelled": {"type": "boolean", "description": "Stop All cancelled it (HTTP 409)"},
        "customersOmitted": {
            "type": "integer",
            "description": f"customers beyond the first {MAX_CUSTOMERS_SHOWN} are counted in "
            "the summary only",
        },
        "error": {"type": "string"},
    },
}
_STEP_COUNTS = {
    "type": "object",
    "properties": {
        "stepName": {"type": "string"},
        "ok": {"type": "integer"},
        "failed": {"type": "integer"},
        "notReached": {
            "type": "integer",
            "description": "an earlier step failed: this one was never called",
        },
        "p50Ms": {"type": "number"},
        "p95Ms": {"type": "number"},
    },
}
# What a traffic status and each second of its series both count.
_JOURNEY_COUNTS: dict[str, Any] = {
    "completed": {"type": "integer"},
    "failed": {"type": "integer"},
    "cancelled": {
        "type": "integer",
        "description": "cut short: a stop's drain bound, or a service that broke under them",
    },
    "p50Ms": {"type": "number"},
    "p95Ms": {"type": "number"},
    "perStep": {"type": "array", "items": _STEP_COUNTS},
}
TRAFFIC_STATUS = {
    "type": "object",
    "required": [
        "running",
        "rate",
        "sent",
        "completed",
        "failed",
        "cancelled",
        "skipped",
        "inFlight",
        "perStep",
    ],
    "description": "sent = completed + failed + cancelled + inFlight, always",
    "properties": {
        "running": {"type": "boolean"},
        "paused": {
            "oneOf": [{"const": False}, {"type": "string", "minLength": 1}],
            "description": "why no journey is sent now (a switch, a service that exited or "
            "does not answer), or false",
        },
        "skipped": {
            "type": "integer",
            "description": "journeys not sent: the machine was behind or the in-flight bound hit",
        },
        "journey": {
            "type": ["string", "null"],
            "description": "the journey traffic goes through (null: none)",
        },
        "perStepSince": {
            "type": "number",
            "description": "when perStep began counting (the current journey's steps only)",
        },
        "rate": {"type": "number", "description": "journeys per second asked for"},
        "achievedRate": {"type": "number", "description": "journeys per second sent lately"},
        "behind": {
            "type": "boolean",
            "description": "the machine cannot carry the rate: sends are skipped, not queued",
        },
        "sent": {"type": "integer", "description": "counts are since start"},
        **_JOURNEY_COUNTS,
        "inFlight": {"type": "integer"},
        "reason": {"type": "string", "description": "why traffic stopped unasked, if it did"},
        "series": {
            "type": "array",
            "description": "with ?series=1: one point per second, oldest first",
            "items": {
                "type": "object",
                "properties": {"at": {"type": "number"}, **_JOURNEY_COUNTS},
            },
        },
    },
}
TRAFFIC_START = {
    "post": {
        "summary": "start continuous traffic through the running journey (running: a new rate)",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["rate"],
                        "properties": {
                            "rate": {
                                "type": "number",
                                "minimum": MIN_TRAFFIC_RATE,
                                "maximum": MAX_TRAFFIC_RATE,
                                "description": "journeys per second",
                            },
                            "seed": SEED,
                            "journey": JOURNEY_ID,
                        },
                        "additionalProperties": False,
                    }
                }
            },
        },
        "responses": {
            "200": json_content(ref("TrafficStatus"), "traffic runs"),
            "400": _error("bad rate or seed (not a number, out of range); nothing changed"),
            "409": _error(
                "no journey is running (or none with that id), or a journey run is in progress"
            ),
        },
    }
}
TRAFFIC_STOP = {
    "post": {
        "summary": "stop traffic (one journey's, or all): no new journeys, in-flight ones "
        "finish (bounded); the final counts",
        "requestBody": {
            "required": True,
            "description": '`{}` or `{"journey": ID}`; application/json, body or not',
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {"journey": JOURNEY_ID},
                        "additionalProperties": False,
                    }
                }
            },
        },
        "responses": {
            "200": json_content(ref("TrafficStatus"), "the final counts"),
            "400": _error("an unknown field or a journey that is not an id"),
            "409": _error("no traffic runs through that journey"),
        },
    }
}
JOURNEY_PATH = [
    {"name": "journey_id", "in": "path", "required": True, "schema": {"type": "string"}}
]
JOURNEYS = {
    "type": "object",
    "required": ["count", "journeys"],
    "properties": {
        "count": {"type": "integer"},
        "journeys": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "companyName", "steps", "services"],
                "properties": {
                    "id": {"type": "string"},
                    "companyName": {"type": "string"},
                    "domain": {"type": "string"},
                    "industryType": {"type": "string"},
                    "steps": {"type": "array", "items": OBJ},
                    "services": {"type": "array", "items": OBJ},
                    "startedAt": {"type": ["number", "null"]},
                    "traffic": {"oneOf": [ref("TrafficStatus"), {"type": "null"}]},
                },
            },
        },
    },
}
PORTS_STATUS = {
    "type": "object",
    "required": ["range", "counts", "ports"],
    "properties": {
        "range": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "ports": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "port": {"type": "integer"},
                    "state": {"type": "string", "enum": [s.value for s in PortState]},
                    "service": {"type": ["string", "null"]},
                    "company": {"type": ["string", "null"]},
                    "pid": {"type": ["integer", "null"]},
                    "essential": {"type": "boolean"},
                    "trouble": {
                        "type": "string",
                        "description": "what is wrong with our service here, in words "
                        '("exited (code -9)", "not answering for 3 s"); empty when nothing',
                    },
                },
            },
        },
    },
}

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "BizObs Journey Control Panel API", "version": "1"},
    "servers": [{"url": "http://127.0.0.1:8080"}],
    "paths": {
        "/api/journey/simulate": _run_op(
            "run a journey for one customer",
            "Simulate",
            {"customers": {"type": "integer", "const": 1, "description": "one customer only"}},
        ),
        "/api/journey/simulate-multiple": _run_op(
            "run a journey for N customers concurrently",
            "SimulateMultiple",
            {"customers": {"type": "integer", "minimum": 1, "maximum": MAX_CUSTOMERS}},
        ),
        "/api/journey/simulate-batch-chained": _run_op(
            "LoadRunner: customers chained service to service with think time",
            "BatchChained",
            {
                "customers": {"type": "integer", "minimum": 1, "maximum": MAX_CUSTOMERS},
                "thinkTimeMs": {"type": "number", "minimum": 0, "maximum": MAX_THINK_TIME_MS},
            },
        ),
        "/api/ports/status": _get("every port of the pool with its state", ref("PortsStatus")),
        "/api/ports/cleanup": _post("sweep stale allocations and our orphans now", OBJ, BUSY),
        "/api/services/status": _get("services the panel runs", OBJ),
        "/api/services/stop-all": _post(
            "stop every service of ours (a run in progress is cancelled first)", OBJ, {}
        ),
        "/api/services/{service}/restart": {
            "post": {
                **_post(
                    "restart one service in place (its port when free); traffic through it "
                    "holds meanwhile and goes on through the new process",
                    OBJ,
                    {"404": _error("no running service of that name"), **BUSY},
                )["post"],
                "parameters": [
                    {
                        "name": "service",
                        "in": "path",
                        "required": True,
                        "description": "a service name one company runs, or its key",
                        "schema": {"type": "string"},
                    }
                ],
            }
        },
        "/api/health": _get("the control API is up", OBJ),
        "/api/runs": _get(
            "recent runs",
            OBJ,
            parameters=[
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                }
            ],
        ),
        "/api/runs/{run_id}": _get(
            "one run with per-step results",
            OBJ,
            {"404": _error("no run with that id")},
            parameters=[
                {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
        ),
        "/api/openapi.json": _get("this description", OBJ),
        "/api/export/status": _get("export per signal: sent, dropped, failed batches", OBJ),
        "/api/traffic/start": TRAFFIC_START,
        "/api/traffic/stop": TRAFFIC_STOP,
        "/api/journeys": _get(
            "the resident journeys, oldest first, each with its traffic", JOURNEYS
        ),
        "/api/journeys/{journey_id}/stop": {
            "post": {
                **_post(
                    "stop one resident journey: its traffic, then its services (essential "
                    "ones stay)",
                    OBJ,
                    {"404": _error("no running journey with that id"), **BUSY},
                )["post"],
                "parameters": JOURNEY_PATH,
            }
        },
        "/api/traffic/status": _get(
            "traffic counts since start; ?series=1 adds the per-second series",
            ref("TrafficStatus"),
            parameters=[
                {"name": "series", "in": "query", "schema": {"type": "integer", "enum": [0, 1]}}
            ],
        ),
    },
    "components": {
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "required on every request only when served with --allow-remote "
                "(BIZOBS_API_TOKEN, or the token printed at start)",
            }
        },
        "schemas": {
            "Step": STEP,
            "Journey": JOURNEY,
            "ExtraValue": EXTRA_VALUE,
            "RunResponse": RUN_RESPONSE,
            "PortsStatus": PORTS_STATUS,
            "TrafficStatus": TRAFFIC_STATUS,
            "Error": {
                "type": "object",
                "required": ["ok", "error"],
                "properties": {
                    "ok": {"const": False},
                    "error": {"type": "string"},
                    "problems": {
                        "type": "array",
                        "description": "for 400: each problem, where (a JSON path) and what",
                        "items": {
                            "type": "object",
                            "required": ["field", "message"],
                            "properties": {
                                "field": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    },
}


def _with_compat(spec: dict[str, Any]) -> dict[str, Any]:
    """The aliases under the `compat` tag, their schemas beside ours."""
    spec["paths"].update(copy.deepcopy(COMPAT_SPEC["paths"]))
    spec["components"]["schemas"].update(copy.deepcopy(COMPAT_SPEC["schemas"]))
    spec.setdefault("tags", []).append(dict(COMPAT_SPEC["tag"]))
    return spec


def _gated(spec: dict[str, Any]) -> dict[str, Any]:
    """Every operation can get what the gate in front of every route answers (the aliases
    too): documented once here rather than by each."""
    for item in spec["paths"].values():
        for method, op in item.items():
            gate = {**EVERY, **(POSTED if method == "post" else {})}
            op["responses"] = {**gate, **op["responses"]}
    return spec


def _with_head(spec: dict[str, Any]) -> dict[str, Any]:
    """Every GET answers HEAD too: the same statuses and headers, no body."""
    for item in spec["paths"].values():
        if "get" in item:
            get = item["get"]
            responses = {
                code: {k: v for k, v in answer.items() if k != "content"}
                for code, answer in get["responses"].items()
            }
            item["head"] = {**get, "summary": f"{get['summary']} (headers only)"}
            item["head"]["responses"] = responses
    return spec


add_incident_spec(SPEC)
add_metrics_spec(SPEC)
SPEC = _with_head(_gated(_with_compat(SPEC)))


def spec_for(guard: Guard, settings: Settings) -> dict[str, Any]:
    """The document as this server answers: its address, token and pool-dependent limits."""
    spec = copy.deepcopy(SPEC)
    host = "127.0.0.1" if guard.wildcard else guard.host
    host = f"[{host}]" if ":" in host else host
    spec["servers"] = [{"url": f"http://{host}:{guard.port}"}]
    spec["security"] = [{"bearer": []}] if guard.allow_remote else [{}]
    schemas = spec["components"]["schemas"]
    schemas["Journey"]["properties"]["steps"]["maxItems"] = len(settings.ports)
    schemas["CompatSteps"]["maxItems"] = len(settings.ports)
    for path in ("/api/journey/simulate-multiple", "/api/journey/simulate-batch-chained"):
        body = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        body["schema"]["properties"]["customers"]["maximum"] = settings.max_customers
    for path in RUN_MODES:
        body = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        if "customers" in body["schema"]["properties"]:
            body["schema"]["properties"]["customers"]["maximum"] = settings.max_customers
    return spec


async def document(request: web.Request) -> web.Response:
    """GET /api/openapi.json: this server's document."""
    return json_response(spec_for(request.app[GUARD], request.app[CORE].settings))
