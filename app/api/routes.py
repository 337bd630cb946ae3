"""Control API routes over the orchestrator facade (docs/architecture.md, "Control API")."""

from __future__ import annotations

import time

from aiohttp import web

from app.api.common import (
    CORE,
    Handler,
    error,
    json_response,
    known_fields,
    read_body,
    run_status,
    whole,
)
from app.common.numbers import ascii_int
from app.core.errors import Problem, ValidationError
from app.core.model import Mode, PortState, StopReport
from app.core.runs import service_json

RUN_FIELDS = (
    "journey",
    "customers",
    "thinkTimeMs",
    "concurrency",
    "seed",
    "cleanup",
    "preserve",
    "reuse",
)
TRAFFIC_FIELDS = ("rate", "seed", "journey")
TRAFFIC_STOP_FIELDS = ("journey",)


def _run_handler(mode: Mode) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        core = request.app[CORE]
        body = await read_body(request)
        known_fields(body, RUN_FIELDS)
        if "journey" not in body:
            raise ValidationError("body needs a 'journey' object")
        # 5 by default (simulate: 1), within this server's limit.
        default_customers = 1 if mode is Mode.SINGLE else min(5, core.settings.max_customers)
        params = {
            "customers": whole(body.get("customers", default_customers)),
            "mode": mode,
            "think_time_ms": body.get("thinkTimeMs", 0),
            "concurrency": whole(body.get("concurrency", 10)),
            "seed": whole(body.get("seed")),
            "cleanup": body.get("cleanup"),
            "preserve": body.get("preserve"),
            "reuse": body.get("reuse"),
        }
        if mode is Mode.SINGLE and params["customers"] != 1:
            raise ValidationError("simulate runs one customer; use simulate-multiple")
        result = await core.run_journey(core.make_request(body["journey"], **params))
        return json_response(result.as_json(), status=run_status(result))

    return handler


async def ports_status(request: web.Request) -> web.Response:
    core = request.app[CORE]
    ports = core.ports()
    counts = {s.value: 0 for s in PortState}
    for p in ports:
        counts[p.state.value] += 1
    return json_response(
        {
            "range": [core.settings.port_lo, core.settings.port_hi],
            "counts": counts,
            "ports": [
                {
                    "port": p.port,
                    "state": p.state.value,
                    "service": p.key,
                    "company": p.company,
                    "pid": p.pid,
                    "essential": p.essential,
                    "process": p.process_name,
                    "trouble": p.trouble,
                }
                for p in ports
            ],
        }
    )


async def ports_cleanup(request: web.Request) -> web.Response:
    return json_response({"ok": True, **await request.app[CORE].cleanup()})


async def services_status(request: web.Request) -> web.Response:
    now = time.time()
    services = [
        {
            "name": s.service_name,
            "key": s.key,
            "company": s.company,
            "port": s.port,
            "pid": s.pid,
            "state": s.state.value,
            "essential": s.essential,
            "runId": s.run_id,
            "uptimeS": round(now - (s.started_at or now), 1),
        }
        for s in request.app[CORE].services()
    ]
    return json_response({"count": len(services), "services": services})


def _stopped(report: StopReport) -> web.Response:
    return json_response(
        {
            "ok": True,
            "stopped": report.count,
            "services": report.stopped,
            "killed": list(report.killed),
        }
    )


async def services_stop_all(request: web.Request) -> web.Response:
    return _stopped(await request.app[CORE].stop_all())


async def services_restart(request: web.Request) -> web.Response:
    record = await request.app[CORE].restart_service(request.match_info["service"])
    return json_response({"ok": True, "service": service_json(record)})


async def health(request: web.Request) -> web.Response:
    core = request.app[CORE]
    return json_response(
        {
            "ok": True,
            "busy": core.busy,
            "services": len(core.services()),
            "range": [core.settings.port_lo, core.settings.port_hi],
            "stateDir": str(core.settings.state_dir),
            # How long Stop All may take whatever the services do: clients wait this long.
            "stopBoundS": core.stop_bound_s,
        }
    )


async def runs(request: web.Request) -> web.Response:
    raw = request.query.get("limit", "50")
    # A query value is never padded: " 10" stays a 400, as it always was.
    limit = ascii_int(raw, 1, 500) if raw == raw.strip() else None
    if limit is None:
        raise ValidationError("limit must be a whole number from 1 to 500")
    return json_response({"runs": request.app[CORE].history.runs(limit)})


async def run_detail(request: web.Request) -> web.Response:
    found = request.app[CORE].history.get(request.match_info["run_id"])
    if found is None:
        return error(404, f"no run {request.match_info['run_id']!r}")
    if progress := request.app[CORE].progress_of(found["runId"]):  # a run in progress
        found["progress"] = progress.to_json()
    return json_response(found)


async def export_status(request: web.Request) -> web.Response:
    return json_response(request.app[CORE].exporter.status())


async def traffic_start(request: web.Request) -> web.Response:
    body = await read_body(request)
    known_fields(body, TRAFFIC_FIELDS)
    if "rate" not in body:
        raise ValidationError(Problem("rate", "body needs a 'rate' in journeys per second"))
    journey = _journey_field(body)
    status = await request.app[CORE].start_traffic(
        body["rate"], whole(body.get("seed")), journey=journey
    )
    return json_response({"ok": True, **status.to_json()})


def _journey_field(body: dict[str, object]) -> str | None:
    """The optional `journey` of a traffic command: a resident journey's id."""
    journey = body.get("journey")
    if journey is not None and not (isinstance(journey, str) and 0 < len(journey) <= 64):
        raise ValidationError(Problem("journey", "journey must be a running journey's id"))
    return journey


async def traffic_stop(request: web.Request) -> web.Response:
    body = await read_body(request) if request.can_read_body else {}
    known_fields(body, TRAFFIC_STOP_FIELDS)
    status = await request.app[CORE].stop_traffic(_journey_field(body))
    return json_response({"ok": True, **status.to_json()})


async def traffic_status(request: web.Request) -> web.Response:
    series = request.query.get("series", "0")
    if series not in ("0", "1"):
        raise ValidationError(Problem("series", "series must be 0 or 1"))
    status = request.app[CORE].traffic.status()
    return json_response(status.to_json(with_series=series == "1"))


async def journeys(request: web.Request) -> web.Response:
    found = [j.to_json() for j in request.app[CORE].journey_summaries()]
    return json_response({"count": len(found), "journeys": found})


async def journey_stop(request: web.Request) -> web.Response:
    core = request.app[CORE]
    return _stopped(
        await core.stop_journey(request.match_info["journey_id"], wait_s=core.stop_bound_s)
    )


ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/api/journey/simulate", _run_handler(Mode.SINGLE)),
    ("POST", "/api/journey/simulate-multiple", _run_handler(Mode.MULTIPLE)),
    ("POST", "/api/journey/simulate-batch-chained", _run_handler(Mode.BATCH_CHAINED)),
    ("GET", "/api/ports/status", ports_status),
    ("POST", "/api/ports/cleanup", ports_cleanup),
    ("GET", "/api/services/status", services_status),
    ("POST", "/api/services/stop-all", services_stop_all),
    ("POST", "/api/services/{service}/restart", services_restart),
    ("GET", "/api/journeys", journeys),
    ("POST", "/api/journeys/{journey_id}/stop", journey_stop),
    ("GET", "/api/health", health),
    ("GET", "/api/runs", runs),
    ("GET", "/api/runs/{run_id}", run_detail),
    ("GET", "/api/export/status", export_status),
    ("POST", "/api/traffic/start", traffic_start),
    ("POST", "/api/traffic/stop", traffic_stop),
    ("GET", "/api/traffic/status", traffic_status),
]
