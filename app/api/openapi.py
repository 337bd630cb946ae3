"""OpenAPI description of the control API; a test keeps it in sync with the routes."""

from __future__ import annotations

from typing import Any

from app.core.model import PortState

ERROR_TYPES = ["timeout", "unavailable", "validation", "payment", "auth", "rate_limit", "internal"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "400": _json(_ref("Error"), "bad input (not JSON, invalid journey or parameters)"),
    "409": _json(_ref("Error"), "a run is already in progress"),
    "413": _json(_ref("Error"), "request body too large"),
    "503": _json(_ref("Error"), "the port pool cannot fit the journey now"),
    "500": _json(_ref("RunResponse"), "the run failed after validation (e.g. launch failure)"),
}


def _run_op(summary: str, body: str, extra: dict[str, Any]) -> dict[str, Any]:
    props = {
        "journey": _ref("Journey"),
        "seed": {"type": "integer", "minimum": 0},
        "concurrency": {"type": "integer", "minimum": 1, "maximum": 200},
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
                            "title": body,
                        }
                    }
                },
            },
            "responses": {
                "200": _json(_ref("RunResponse"), "the run's phases and results"),
                **ERRORS,
            },
        }
    }


def _get(summary: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"get": {"summary": summary, "responses": {"200": _json(schema, summary)}, **extra}}


def _post(summary: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "responses": {"200": _json(schema, summary), "409": _json(_ref("Error"), "busy")},
        }
    }


OBJ: dict[str, Any] = {"type": "object"}
STEP = {
    "type": "object",
    "required": ["stepName", "serviceName"],
    "properties": {
        "stepName": {"type": "string", "minLength": 1, "maxLength": 120},
        "serviceName": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]{0,63}$"},
        "latencyMs": {"type": "number", "minimum": 0, "maximum": 60000},
        "errorRate": {"type": "number", "minimum": 0, "maximum": 1},
        "errorType": {"type": "string", "enum": ERROR_TYPES},
        "description": {"type": "string"},
        "category": {"type": "string"},
    },
}
JOURNEY = {
    "type": "object",
    "required": ["companyName", "domain", "industryType", "steps"],
    "properties": {
        "companyName": {"type": "string", "minLength": 1, "maxLength": 120},
        "domain": {"type": "string", "minLength": 1, "maxLength": 120},
        "industryType": {"type": "string", "minLength": 1, "maxLength": 120},
        "steps": {"type": "array", "minItems": 1, "maxItems": 40, "items": _ref("Step")},
        "errorRate": {"type": "number", "minimum": 0, "maximum": 1},
        "errorType": {"type": "string", "enum": ERROR_TYPES},
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
                        "enum": ["stop", "wait", "sweep", "launch", "simulate"],
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
        "error": {"type": "string"},
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
        "/api/journey/simulate": _run_op("run a journey for one customer", "Simulate", {}),
        "/api/journey/simulate-multiple": _run_op(
            "run a journey for N customers concurrently",
            "SimulateMultiple",
            {"customers": {"type": "integer", "minimum": 1, "maximum": 10000}},
        ),
        "/api/journey/simulate-batch-chained": _run_op(
            "LoadRunner: customers chained service to service with think time",
            "BatchChained",
            {
                "customers": {"type": "integer", "minimum": 1, "maximum": 10000},
                "thinkTimeMs": {"type": "number", "minimum": 0, "maximum": 10000},
            },
        ),
        "/api/ports/status": _get("every port of the pool with its state", _ref("PortsStatus")),
        "/api/ports/cleanup": _post("sweep stale allocations and our orphans now", OBJ),
        "/api/services/status": _get("services the panel runs", OBJ),
        "/api/services/stop-all": _post("stop every service of ours", OBJ),
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
            parameters=[
                {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
        ),
        "/api/openapi.json": _get("this description", OBJ),
        "/api/export/status": _get("export per signal: sent, dropped, failed batches", OBJ),
    },
    "components": {
        "schemas": {
            "Step": STEP,
            "Journey": JOURNEY,
            "RunResponse": RUN_RESPONSE,
            "PortsStatus": PORTS_STATUS,
            "Error": {
                "type": "object",
                "required": ["ok", "error"],
                "properties": {"ok": {"const": False}, "error": {"type": "string"}},
            },
        }
    },
}
