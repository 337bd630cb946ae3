"""Control API routes for the metrics and the alerts (docs/architecture.md, "Metrics and
alerts"), with their part of the OpenAPI document.

`GET /metrics` is Prometheus's text exposition of the Core's own registry (prometheus_client
writes it, in the format the scraper's Accept asks for). Listed in the API's one route table
(app/api/app.py), so the guard in front of every route applies: Prometheus sends the Host it
scrapes, which is ours; a web page's foreign Origin is refused like anywhere else.
"""

from __future__ import annotations

from typing import Any

from aiohttp import hdrs, web
from prometheus_client.exposition import choose_encoder

from app.api.common import CORE, Handler, error, json_response
from app.api.schemas import NO_BODY
from app.core.alerts import LIMIT, AlertKind


async def metrics(request: web.Request) -> web.Response:
    encoder, content_type = choose_encoder(request.headers.get(hdrs.ACCEPT, ""))
    body = encoder(request.app[CORE].metrics.registry)
    return web.Response(body=body, headers={hdrs.CONTENT_TYPE: content_type})


async def alerts_list(request: web.Request) -> web.Response:
    listed = request.app[CORE].alerts.list()
    return json_response({"count": len(listed), "alerts": [a.to_json() for a in listed]})


async def alert_ack(request: web.Request) -> web.Response:
    alert_id = request.match_info["alert_id"]
    alert = request.app[CORE].alerts.ack(alert_id)
    if alert is None:
        return error(404, f"no alert {alert_id!r} (the list keeps the last {LIMIT})")
    return json_response({"ok": True, "alert": alert.to_json()})


METRICS_ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/metrics", metrics),
    ("GET", "/api/alerts", alerts_list),
    ("POST", "/api/alerts/{alert_id}/ack", alert_ack),
]


# -- OpenAPI ------------------------------------------------------------------------------------
ERR = {"$ref": "#/components/schemas/Error"}
ALERT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "at", "kind", "message", "port", "acknowledged"],
    "properties": {
        "id": {"type": "string"},
        "at": {"type": "number", "description": "wall clock, seconds"},
        "kind": {"type": "string", "enum": [k.value for k in AlertKind]},
        "message": {
            "type": "string",
            "description": "what failed, what the panel did, what the operator can do",
        },
        "port": {"type": ["integer", "null"]},
        "pid": {"type": ["integer", "null"]},
        "service": {"type": ["string", "null"]},
        "acknowledged": {"type": "boolean"},
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


METRICS_PATHS: dict[str, dict[str, Any]] = {
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics (text exposition format, or OpenMetrics when asked)",
            "tags": ["metrics"],
            "responses": {
                "200": {
                    "description": "the metrics",
                    "content": {
                        "text/plain": {"schema": {"type": "string"}},
                        "application/openmetrics-text": {"schema": {"type": "string"}},
                    },
                }
            },
        }
    },
    "/api/alerts": {
        "get": {
            "summary": f"the alerts on cleanup failures, oldest first (the last {LIMIT})",
            "tags": ["metrics"],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["count", "alerts"],
                        "properties": {
                            "count": {"type": "integer", "minimum": 0},
                            "alerts": {"type": "array", "items": ALERT},
                        },
                    },
                    "the list",
                )
            },
        }
    },
    "/api/alerts/{alert_id}/ack": {
        "post": {
            "summary": "acknowledge an alert",
            "tags": ["metrics"],
            "requestBody": NO_BODY,
            "parameters": [
                {"name": "alert_id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["ok", "alert"],
                        "properties": {"ok": {"const": True}, "alert": ALERT},
                    },
                    "acknowledged",
                ),
                "404": _json(ERR, "no such alert"),
            },
        }
    },
}


def add_metrics_spec(spec: dict[str, Any]) -> None:
    """Merge these routes into the OpenAPI document under the `metrics` tag."""
    spec["paths"].update(METRICS_PATHS)
    spec.setdefault("tags", []).append(
        {"name": "metrics", "description": "Prometheus metrics and alerts on cleanup failures"}
    )
