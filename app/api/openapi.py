"""OpenAPI description of the control API; a test keeps it in sync with the routes.

`SPEC` is the template; `spec_for` fills in what depends on the server answering: its address,
whether a bearer token is required, and the limits of its settings."""

from __future__ import annotations

import copy
from typing import Any

from app.api.compat import add_compat_spec
from app.api.incidents import add_incident_spec
from app.api.security import Guard
from app.core.journeys import DOMAIN, ERROR_TYPES
from app.core.limits import (
    MAX_CONCURRENCY,
    MAX_CUSTOMERS,
    MAX_CUSTOMERS_SHOWN,
    MAX_LATENCY_MS,
    MAX_TEXT,
    MAX_THINK_TIME_MS,
    MAX_TRAFFIC_RATE,
    MIN_TRAFFIC_RATE,
)
from app.core.model import Phase, PortState
from app.core.settings import Settings


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


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
    "409": _json(
        {"oneOf": [_ref("RunResponse"), _ref("Error")]},
        "a journey run is in progress (Error), or this run was cancelled by Stop All and rolled "
        "back (RunResponse with cancelled: true)",
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
    "500": _json(
        {"oneOf": [_ref("RunResponse"), _ref("Error")]},
        "the run failed after validation (e.g. launch failure), or an unexpected error",
    ),
}


def _run_op(summary: str, body: str, extra: dict[str, Any]) -> dict[str, Any]:
    props = {
        "journey": _ref("Journey"),
        "seed": {"type": "integer", "minimum": 0, "maximum": 2**63},
        "concurrency": {"type": "integer", "minimum": 1, "maximum": MAX_CONCURRENCY},
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
                "200": _json(_ref("RunResponse"), "the run's phases and results"),
                **EVERY,
                **POSTED,
                **RUN_ERRORS,
            },
        }
    }


def _get(
    summary: str, schema: dict[str, Any], errors: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    responses = {"200": _json(schema, summary), **EVERY, **(errors or {})}
    return {"get": {"summary": summary, "responses": responses, **extra}}


def _post(summary: str, schema: dict[str, Any], errors: dict[str, Any]) -> dict[str, Any]:
    responses = {"200": _json(schema, summary), **EVERY, **POSTED, **errors}
    return {"post": {"summary": summary, "responses": responses}}


OBJ: dict[str, Any] = {"type": "object"}


def _text(why: str) -> dict[str, Any]:
    """A name: leading and trailing blanks are dropped, what remains must not be empty."""
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_TEXT,
        "allOf": [
            # Python's str.strip() also drops \x1c-\x1f and \x85, which ECMA's \s does not.
            {"pattern": r"[^\s\x1c-\x1f\x85]"},
            # Control characters (NUL above all) would end or garble a process argument.
            {"pattern": r"^[^\u0000-\u001f\u007f-\u009f]*$"},
        ],
        "description": f"{why}; at most {MAX_TEXT} characters",
    }


STEP = {
    "type": "object",
    "required": ["stepName", "serviceName"],
    "properties": {
        "stepName": _text("not only blanks"),
        "serviceName": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]{0,63}$"},
        "latencyMs": {"type": "number", "minimum": 0, "maximum": MAX_LATENCY_MS},
        "errorRate": {"type": "number", "minimum": 0, "maximum": 1},
        "errorType": {"type": "string", "enum": list(ERROR_TYPES)},
        "description": {"type": "string"},
        "category": {"type": "string"},
    },
}
JOURNEY = {
    "type": "object",
    "required": ["companyName", "domain", "industryType", "steps"],
    "properties": {
        "companyName": {
            **_text("needs at least one ASCII letter or digit (it names the services)"),
            "pattern": "[A-Za-z0-9]",
        },
        "domain": {
            **_text("a domain name like acme.com"),
            "pattern": DOMAIN.pattern,
        },
        "industryType": _text("not only blanks"),
        "steps": {
            "type": "array",
            "minItems": 1,
            "maxItems": 40,
            "items": _ref("Step"),
            "description": "at most one step per port of the pool (maxItems is this pool's size)",
        },
        "errorRate": {"type": "number", "minimum": 0, "maximum": 1},
        "errorType": {"type": "string", "enum": list(ERROR_TYPES)},
    },
}
RUN_RESPONSE = {
    "type": "object",
    "required": ["ok", "runId", "phases", "cleanup", "services", "customers", "summary"],
    "properties": {
        "ok": {"type": "boolean"},
        "runId": {"type": "string"},
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
        "journey": {"type": "string", "description": "the company traffic goes through"},
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
                            "seed": {"type": "integer", "minimum": 0, "maximum": 2**63},
                        },
                    }
                }
            },
        },
        "responses": {
            "200": _json(_ref("TrafficStatus"), "traffic runs"),
            "400": _error("bad rate or seed (not a number, out of range); nothing changed"),
            "409": _error("no journey is running, or a journey run is in progress"),
        },
    }
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
        "/api/ports/status": _get("every port of the pool with its state", _ref("PortsStatus")),
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
        "/api/traffic/stop": _post(
            "stop traffic: no new journeys, in-flight ones finish (bounded); the final counts",
            _ref("TrafficStatus"),
            {},
        ),
        "/api/traffic/status": _get(
            "traffic counts since start; ?series=1 adds the per-second series",
            _ref("TrafficStatus"),
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


def _gated(spec: dict[str, Any]) -> dict[str, Any]:
    """Every operation can get what the gate in front of every route answers (the aliases
    added by compat.py too): documented once here rather than by each."""
    for item in spec["paths"].values():
        for method, op in item.items():
            gate = {**EVERY, **(POSTED if method == "post" else {})}
            op["responses"] = {**gate, **op["responses"]}
    return spec


add_compat_spec(SPEC)
add_incident_spec(SPEC)
_gated(SPEC)


def spec_for(guard: Guard, settings: Settings) -> dict[str, Any]:
    """The document as this server answers: its address, token and pool-dependent limits."""
    spec = copy.deepcopy(SPEC)
    host = "127.0.0.1" if guard.wildcard else guard.host
    host = f"[{host}]" if ":" in host else host
    spec["servers"] = [{"url": f"http://{host}:{guard.port}"}]
    spec["security"] = [{"bearer": []}] if guard.allow_remote else [{}]
    spec["components"]["schemas"]["Journey"]["properties"]["steps"]["maxItems"] = len(
        settings.ports
    )
    for path in ("/api/journey/simulate-multiple", "/api/journey/simulate-batch-chained"):
        body = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        body["schema"]["properties"]["customers"]["maximum"] = settings.max_customers
    return spec
