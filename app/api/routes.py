"""Control API routes over the orchestrator facade (docs/architecture.md, "Control API")."""

from __future__ import annotations

import difflib
import json
import logging
import time
from typing import Any

from aiohttp import hdrs, web

from app.api.security import GUARD, Guard, Handler, guard_requests
from app.common.numbers import ascii_int
from app.core.errors import (
    BusyError,
    ClientGoneError,
    CoreError,
    NoJourneyError,
    PoolExhaustedError,
    Problem,
    StateDatabaseError,
    UnknownServiceError,
    ValidationError,
)
from app.core.model import Mode, PortState
from app.core.orchestrator import Core
from app.core.runs import RunResult, service_json

MAX_BODY = 256 * 1024  # a journey is a few KiB; anything near this is a mistake or an attack
CORE = web.AppKey("core", Core)
log = logging.getLogger(__name__)


def error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"ok": False, "error": message, **extra}, status=status)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure is JSON with a message; core errors map to their HTTP status."""
    try:
        return await handler(request)
    except ValidationError as exc:
        return error(400, str(exc), problems=[p.to_json() for p in exc.problems])
    except (BusyError, NoJourneyError) as exc:
        return error(409, str(exc))
    except PoolExhaustedError as exc:
        return error(503, str(exc))
    except UnknownServiceError as exc:
        return error(404, str(exc))
    except ClientGoneError as exc:  # nobody reads this answer; the log says it was dropped
        log.info("control API: %s %s dropped: %s", request.method, request.path, exc)
        return error(499, str(exc))
    except StateDatabaseError as exc:  # the disk: 507 Insufficient Storage
        return error(507, str(exc))
    except CoreError as exc:
        return error(500, str(exc))
    except web.HTTPRequestEntityTooLarge:
        return error(413, f"request body larger than {MAX_BODY} bytes")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        answer = error(exc.status, exc.reason)
        if hdrs.ALLOW in exc.headers:  # 405 says which methods the path takes
            answer.headers[hdrs.ALLOW] = exc.headers[hdrs.ALLOW]
        return answer
    except Exception as exc:
        # A bug, not bad input: still JSON for the client, and the traceback in the log.
        log.exception("control API: %s %s failed", request.method, request.path)
        return error(500, f"internal error: {type(exc).__name__}: {exc}")


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()  # bounded by client_max_size
    try:
        body = json.loads(raw) if raw.strip() else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"request body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise ValidationError("request body is nested too deeply to be a journey") from exc
    if not isinstance(body, dict):
        raise ValidationError("request body must be a JSON object")
    return body


def _whole(value: Any) -> Any:
    """3.0 is the integer 3, as JSON Schema (and so the OpenAPI document) has it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


RUN_FIELDS = ("journey", "customers", "thinkTimeMs", "concurrency", "seed")


def _known_fields(body: dict[str, Any], known: tuple[str, ...]) -> None:
    """A misspelt field would otherwise be ignored silently ("customer": 3 runs 5)."""
    unknown = [k for k in body if k not in known]
    if unknown:
        hints = [difflib.get_close_matches(k, known, 1) for k in unknown]
        raise ValidationError(
            [
                Problem(k, f"unknown field {k!r}" + (f" (did you mean {h[0]!r}?)" if h else ""))
                for k, h in zip(unknown, hints, strict=True)
            ]
        )


def run_status(result: RunResult) -> int:
    """200 for a run that finished; 409 for one Stop All cancelled (it rolled back); 500 for
    one that failed after validation (a launch failure: its answer says why)."""
    return 200 if result.ok else 409 if result.cancelled else 500


def _run_handler(mode: Mode) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        core = request.app[CORE]
        body = await _body(request)
        _known_fields(body, RUN_FIELDS)
        if "journey" not in body:
            raise ValidationError("body needs a 'journey' object")
        default_customers = 1 if mode is Mode.SINGLE else 5
        params = {
            "customers": _whole(body.get("customers", default_customers)),
            "mode": mode,
            "think_time_ms": body.get("thinkTimeMs", 0),
            "concurrency": _whole(body.get("concurrency", 10)),
            "seed": _whole(body.get("seed")),
        }
        if mode is Mode.SINGLE and params["customers"] != 1:
            raise ValidationError("simulate runs one customer; use simulate-multiple")
        result = await core.run_journey(core.make_request(body["journey"], **params))
        return web.json_response(result.as_json(), status=run_status(result))

    return handler


async def ports_status(request: web.Request) -> web.Response:
    core = request.app[CORE]
    ports = core.ports()
    counts = {s.value: 0 for s in PortState}
    for p in ports:
        counts[p.state.value] += 1
    return web.json_response(
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
    return web.json_response({"ok": True, **await request.app[CORE].cleanup()})


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
    return web.json_response({"count": len(services), "services": services})


async def services_stop_all(request: web.Request) -> web.Response:
    report = await request.app[CORE].stop_all()
    return web.json_response(
        {
            "ok": True,
            "stopped": report.count,
            "services": report.stopped,
            "killed": list(report.killed),
        }
    )


async def services_restart(request: web.Request) -> web.Response:
    record = await request.app[CORE].restart_service(request.match_info["service"])
    return web.json_response({"ok": True, "service": service_json(record)})


async def health(request: web.Request) -> web.Response:
    core = request.app[CORE]
    return web.json_response(
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
    return web.json_response({"runs": request.app[CORE].history.runs(limit)})


async def run_detail(request: web.Request) -> web.Response:
    found = request.app[CORE].history.get(request.match_info["run_id"])
    if found is None:
        return error(404, f"no run {request.match_info['run_id']!r}")
    return web.json_response(found)


async def export_status(request: web.Request) -> web.Response:
    return web.json_response(request.app[CORE].exporter.status())


async def traffic_start(request: web.Request) -> web.Response:
    body = await _body(request)
    if "rate" not in body:
        raise ValidationError(Problem("rate", "body needs a 'rate' in journeys per second"))
    status = await request.app[CORE].start_traffic(body["rate"], _whole(body.get("seed")))
    return web.json_response({"ok": True, **status.to_json()})


async def traffic_stop(request: web.Request) -> web.Response:
    status = await request.app[CORE].stop_traffic()
    return web.json_response({"ok": True, **status.to_json()})


async def traffic_status(request: web.Request) -> web.Response:
    series = request.query.get("series", "0")
    if series not in ("0", "1"):
        raise ValidationError(Problem("series", "series must be 0 or 1"))
    status = request.app[CORE].traffic.status()
    return web.json_response(status.to_json(with_series=series == "1"))


async def openapi(request: web.Request) -> web.Response:
    from app.api.openapi import spec_for

    return web.json_response(spec_for(request.app[GUARD], request.app[CORE].settings))


ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/api/journey/simulate", _run_handler(Mode.SINGLE)),
    ("POST", "/api/journey/simulate-multiple", _run_handler(Mode.MULTIPLE)),
    ("POST", "/api/journey/simulate-batch-chained", _run_handler(Mode.BATCH_CHAINED)),
    ("GET", "/api/ports/status", ports_status),
    ("POST", "/api/ports/cleanup", ports_cleanup),
    ("GET", "/api/services/status", services_status),
    ("POST", "/api/services/stop-all", services_stop_all),
    ("POST", "/api/services/{service}/restart", services_restart),
    ("GET", "/api/health", health),
    ("GET", "/api/runs", runs),
    ("GET", "/api/runs/{run_id}", run_detail),
    ("GET", "/api/openapi.json", openapi),
    ("GET", "/api/export/status", export_status),
    ("POST", "/api/traffic/start", traffic_start),
    ("POST", "/api/traffic/stop", traffic_stop),
    ("GET", "/api/traffic/status", traffic_status),
]


def make_app(core: Core, guard: Guard | None = None) -> web.Application:
    """The API over `core`. The guard is first: it sees every request to every route, and
    `guard` says which address it must name (default: the settings' loopback address)."""
    app = web.Application(middlewares=[guard_requests, json_errors], client_max_size=MAX_BODY)
    app[CORE] = core
    app[GUARD] = guard or Guard(core.settings.api_host, core.settings.api_port)
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    from app.api.compat import add_compat_routes  # here: compat builds on this module
    from app.api.incidents import add_incident_routes

    add_compat_routes(app)
    add_incident_routes(app)
    return app
