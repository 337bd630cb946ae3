"""Compatibility routes: the replaced Node.js system's paths and shapes, over the same core.

Operators' scripts, its continuous journey generator and its LoadRunner integration call
`/health`, `/api/journey-simulation/*` and `/api/admin/*`. Each alias here only maps that
system's request onto our request, calls the same core method as our own route, and maps the
answer back into the shape its clients read. The aliases are registered on the same
application as our routes, so every app-wide middleware (error mapping, security checks)
applies to them unchanged. See docs/architecture.md for the run phases they drive.

Over 400 lines on purpose: one module holds the whole alias layer (routes, shapes, OpenAPI),
so nothing of the replaced system leaks into the rest of the API.
"""

from __future__ import annotations

import html
import json
import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import hdrs, web

from app.api.common import CORE, Handler, json_response, read_body, run_status, whole
from app.api.schemas import (
    FREE_TEXT,
    JOURNEY_FIELDS,
    NAMES,
    NO_BODY,
    SEED,
    STEP_FIELDS,
    json_content,
    ref,
)
from app.core.errors import Problem, ValidationError
from app.core.journeys import Journey, check_values, parse_journey, unusable
from app.core.limits import MAX_CUSTOMERS, MAX_THINK_TIME_MS
from app.core.model import Mode, PortState
from app.core.orchestrator import Core
from app.core.runs import RunRequest, RunResult
from app.core.simulation import CustomerResult

# That system's generator fires several journeys at once and knows nothing of 409: its calls
# queue for the run lock this long before they get our 409.
QUEUE_WAIT_S = 30.0
DEFAULTS = {"companyName": "DefaultCompany", "domain": "default.com", "industryType": "general"}
JOURNEY_KEYS = ("journey", "aiJourney")  # where that system's clients put the journey
ECHOED = ("additionalFields", "customerProfile")  # per-call fields answered back as sent
STEP_NAME_KEYS = ("stepName", "name", "step", "title")  # where that system found a step's name
STEP_STATUS = {"ok": "completed", "failed": "failed", "skipped": "skipped"}
SAMPLE_SIZE = 5  # batch-chained answers a few customers as a sample, as that system did
STARTED = web.AppKey("compat_started", float)  # set where the routes are registered
ShapeFn = Callable[[RunRequest, RunResult, dict[str, Any]], dict[str, Any]]


def now_iso(at: float | None = None) -> str:
    """A timestamp as that system wrote them (JavaScript's toISOString)."""
    moment = datetime.fromtimestamp(time.time() if at is None else at, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def derive_service_name(step_name: str) -> str:
    """'Add To Cart' -> 'AddToCartService': the journey editor's rule (suggest_service_name,
    which lives in the Qt-only UI package; a test keeps the two in step)."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", step_name) if w]
    name = "".join(w[0].upper() + w[1:] for w in words).lstrip("0123456789")
    if name and not name.endswith("Service"):
        name += "Service"
    return name[:64]


# -- request mapping ------------------------------------------------------------------------
def _text_or_none(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ValidationError(Problem(key, f"{key} must be text, got {type(value).__name__}"))
    if value is not None and (bad := unusable(value)):
        raise ValidationError(
            Problem(key, f"{key} contains a character that cannot be used ({bad})")
        )
    return value


def _given(*sources: dict[str, Any], key: str) -> Any:
    """The first value given for `key` (absent and null are not given), else None."""
    return next((src[key] for src in sources if src.get(key) is not None), None)


def _source(body: dict[str, Any]) -> dict[str, Any]:
    """The journey object: `journey`, else `aiJourney`, else the body itself (top level)."""
    for key in JOURNEY_KEYS:
        if key in body and not isinstance(body[key], dict):
            raise ValidationError(Problem(key, f"{key} must be an object with steps"))
    return next((dict(body[key]) for key in JOURNEY_KEYS if key in body), body)


def _step(raw: Any) -> Any:
    """A step in our shape: its name from wherever that system read it, and a serviceName
    derived from it when absent. Anything else is left for the core's validation."""
    if not isinstance(raw, dict):
        return raw
    step = dict(raw)
    if not isinstance(step.get("stepName"), str):
        names = (raw.get(k) for k in STEP_NAME_KEYS)
        name = next((n for n in names if isinstance(n, str) and n.strip()), None)
        if name is not None:
            step["stepName"] = name
    name = step.get("stepName")
    if (
        "serviceName" not in step
        and isinstance(name, str)
        and (derived := derive_service_name(name))
    ):
        step["serviceName"] = derived
    return step


def _journey_from(src: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The journey fields of `src` in our shape: each from `src`, else from the top level of
    the body, else that system's default (absent or null fields only: a wrongly typed or empty
    one is validated like ours, naming the field; `"companyName": 5` is no DefaultCompany)."""
    out: dict[str, Any] = {}
    for key, default in DEFAULTS.items():
        given = _given(src, body, key=key)
        out[key] = default if given is None else given
    for key in ("errorRate", "errorType"):
        if (given := _given(src, body, key=key)) is not None:
            out[key] = given
    steps = _given(src, body, key="steps")
    out["steps"] = [_step(s) for s in steps] if isinstance(steps, list) else steps
    return out


def map_journey(body: dict[str, Any]) -> dict[str, Any]:
    """That system's journey fields onto ours, with its defaults. Only journey fields go in:
    per-call fields (journeyId, customerProfile, ...) would make every call a new journey."""
    out = _journey_from(_source(body), body)
    enabled = _given(body, _source(body), key="errorSimulationEnabled")
    if not (enabled is None or enabled) and isinstance(out["steps"], list):
        out["errorRate"] = 0
        out["steps"] = [s | {"errorRate": 0} if isinstance(s, dict) else s for s in out["steps"]]
    return out


def _unused_problems(core: Core, body: dict[str, Any]) -> list[Problem]:
    """A journey given in more than one place (`journey`, `aiJourney`, the top level) runs the
    first; the others are validated all the same, and so is an error rate that
    `errorSimulationEnabled: false` zeroes: whatever a request holds is valid, or the request
    is refused, naming the field (`aiJourney.steps[0].stepName`)."""
    used = _source(body)
    used_key = next((key for key in JOURNEY_KEYS if key in body), None)
    places = [(f"{key}.", body[key]) for key in JOURNEY_KEYS if key in body]
    places.append(("", body))
    problems: list[Problem] = []
    zeroed = _given(body, used, key="errorSimulationEnabled") is False
    for prefix, src in places:
        if prefix == (f"{used_key}." if used_key else ""):
            if not zeroed:
                continue  # the one that runs: the core validates it
            prefix = ""  # its error rates are zeroed to run: still, what was sent is checked
        candidate = _journey_from(src, body)
        if candidate["steps"] is None:  # the top level without steps: its own fields only
            candidate["steps"] = _journey_from(used, body)["steps"]
        try:
            parse_journey(candidate, len(core.settings.ports))
        except ValidationError as exc:
            problems += [Problem(prefix + p.field, p.message) for p in exc.problems]
    for prefix, src in places:
        for key in ("errorSimulationEnabled", *ECHOED):
            value = src.get(key) if isinstance(src, dict) else None
            if key == "errorSimulationEnabled" and value is not None:
                if not isinstance(value, bool):
                    problems.append(Problem(prefix + key, f"{key} must be true or false"))
            elif key != "errorSimulationEnabled":
                problems += check_values(value, prefix + key)  # answered back verbatim
    return problems


def _make_request(core: Core, body: dict[str, Any], mode: Mode, customers: int) -> RunRequest:
    """Validated before anything runs: a bad body stops nothing. Numbers are read as on our
    routes (3.0 is 3); a default stands in for an absent (or null) field only."""
    for key in ("journeyId", "customerName"):
        _text_or_none(body, key)
    if problems := _unused_problems(core, body):
        raise ValidationError(problems)
    given = _given(body, key="customers")
    think = _given(body, key="thinkTimeMs")
    # That system's default (10 for batch-chained) within this server's limit.
    default = min(customers, core.settings.max_customers)
    params = {
        "customers": 1 if mode is Mode.SINGLE else whole(default if given is None else given),
        "mode": mode,
        "think_time_ms": (100 if mode is Mode.BATCH_CHAINED else 0) if think is None else think,
        "seed": whole(body.get("seed")),
    }
    return core.make_request(map_journey(body), **params)


# -- response mapping -----------------------------------------------------------------------
def _step_json(number: int, step: Any) -> dict[str, Any]:
    return {"stepNumber": number, **step.to_json(), "status": STEP_STATUS[step.status]}


def _customer_journey(
    journey: Journey, customer: CustomerResult, body: dict[str, Any]
) -> dict[str, Any]:
    src = _source(body)
    steps = [_step_json(i, s) for i, s in enumerate(customer.steps, 1)]
    return {
        "journeyId": body.get("journeyId") or src.get("journeyId") or f"journey_{time.time_ns()}",
        "companyName": journey.company_name,
        "domain": journey.domain,
        "industryType": journey.industry_type,
        "customerName": body.get("customerName") or customer.customer.name,
        "customerId": customer.customer.id,
        "customer": customer.customer.to_json(),
        "correlationId": customer.correlation_id,
        "traceId": customer.trace_id,
        "status": "completed" if customer.ok else "failed",
        "chained": True,  # ours always chains service to service
        "totalSteps": len(steps),
        "completedSteps": sum(s["status"] == "completed" for s in steps),
        "stepNames": [s.step_name for s in journey.steps],
        "steps": steps,
        "totalTime": round(customer.latency_ms, 3),
        "additionalFields": body.get("additionalFields", src.get("additionalFields")),
        "customerProfile": body.get("customerProfile", src.get("customerProfile")),
    }


def _ours(result: RunResult) -> dict[str, Any]:
    """Our run fields that ride along: run id, phases, cleanup counts, services, summary."""
    ours = result.as_json()
    keys = ("runId", "phases", "cleanup", "services", "summary", "error")
    return {k: ours[k] for k in keys if k in ours} | {"reused": result.reused}


def shape_single(req: RunRequest, result: RunResult, body: dict[str, Any]) -> dict[str, Any]:
    sim = result.simulation
    journey = _customer_journey(req.journey, sim.customers[0], body) if sim else None
    return {"success": result.ok, "journey": journey, **_ours(result)}


def shape_multiple(req: RunRequest, result: RunResult, body: dict[str, Any]) -> dict[str, Any]:
    sim = result.simulation
    customers = sim.customers if sim else ()
    journeys = [_customer_journey(req.journey, c, body) for c in customers]
    ok = sum(c.ok for c in customers)
    return {
        "success": result.ok,
        "journey": journeys[0] if journeys else None,
        "loadTestSummary": {
            "customersProcessed": len(customers),
            "successfulCustomers": ok,
            "failedCustomers": len(customers) - ok,
            "successRate": f"{100 * ok / len(customers):.1f}%" if customers else "0.0%",
        },
        "correlationIds": [j["correlationId"] for j in journeys],
        "detailedResults": [
            {
                "customerIndex": i,
                **{k: j[k] for k in ("correlationId", "status", "completedSteps", "totalSteps")},
                "totalTime": j["totalTime"],
            }
            for i, j in enumerate(journeys, 1)
        ],
        **_ours(result),
    }


def shape_batch(req: RunRequest, result: RunResult, body: dict[str, Any]) -> dict[str, Any]:
    sim = result.simulation
    sample = [
        {
            "index": i,
            "status": "completed" if c.ok else "failed",
            "service": req.journey.steps[0].service_name,
            "correlationId": c.correlation_id,
        }
        for i, c in enumerate(sim.customers[:SAMPLE_SIZE] if sim else (), 1)
    ]
    return {"ok": result.ok, "success": result.ok, "sample": sample, **_ours(result)}


# -- handlers -------------------------------------------------------------------------------
@web.middleware
async def compat_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """On the aliases' paths, every JSON error — our mapping's (same statuses, same messages)
    and the security gate's refusals alike — also says `"success": false`, the field that
    system's clients test. Outermost, so it sees the gate's answers too."""
    response = await handler(request)
    if request.path not in COMPAT_PATHS or response.status < 400:
        return response
    if not isinstance(response, web.Response) or response.content_type != "application/json":
        return response
    try:
        body = json.loads(response.body or b"{}")  # type: ignore[arg-type]
    except ValueError:
        return response
    if not isinstance(body, dict) or "success" in body:
        return response
    shaped = json_response({"success": False, **body}, status=response.status)
    for name in (hdrs.ALLOW, hdrs.WWW_AUTHENTICATE):  # the 405 and 401 headers stay
        if name in response.headers:
            shaped.headers[name] = response.headers[name]
    return shaped


def run_alias(mode: Mode, customers: int, shape: ShapeFn) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        core = request.app[CORE]
        body = await read_body(request)
        req = _make_request(core, body, mode, customers)
        result = await core.run_journey(
            req, wait_s=QUEUE_WAIT_S, reuse_running=True, still_wanted=lambda: _connected(request)
        )
        return json_response(shape(req, result, body), status=run_status(result))

    return handler


def _connected(request: web.Request) -> bool:
    """Is the client still there? Its generator gives up on slow calls: a run queued for
    it is dropped before it starts rather than run for no one."""
    transport = request.transport
    return transport is not None and not transport.is_closing()


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "healthy", "timestamp": now_iso(), "services": "running"})


async def admin_services(request: web.Request) -> web.Response:
    services = [{"service": s.key, "pid": s.pid} for s in request.app[CORE].services()]
    return json_response({"ok": True, "services": services})


async def admin_services_status(request: web.Request) -> web.Response:
    core = request.app[CORE]
    now = time.time()
    journeys: dict[str, dict[str, Any]] = {}  # run id -> the journey it ran (domain, industry)

    def context(run_id: str, company: str) -> dict[str, Any]:
        if run_id not in journeys:
            run = core.history.get(run_id)
            journeys[run_id] = (
                run["journey"] if run and isinstance(run.get("journey"), dict) else {}
            )
        journey = journeys[run_id]
        if journey.get("companyName") != company:  # an essential started by another's run
            journey = {}
        return {
            "companyName": company,
            "domain": journey.get("domain"),
            "industryType": journey.get("industryType"),
        }

    services = [
        {
            "service": s.key,
            "pid": s.pid,
            "status": s.state.value,
            "startTime": now_iso(s.started_at),
            "uptime": round(now - (s.started_at or now), 1),
            "port": s.port,
            "essential": s.essential,
            "companyContext": context(s.run_id, s.company),
        }
        for s in core.services()
    ]
    return json_response(
        {
            "ok": True,
            "timestamp": now_iso(now),
            "totalServices": len(services),
            "runningServices": sum(s["status"] == "running" for s in services),
            "services": services,
            "serverUptime": round(now - request.app[STARTED], 1),
            "serverPid": os.getpid(),
        }
    )


def port_status(core: Core) -> dict[str, Any]:
    ports = core.ports()
    busy = (PortState.STARTING, PortState.ALLOCATED, PortState.STOPPING)
    counts = {s.value: sum(p.state is s for p in ports) for s in PortState}
    return {
        "available": counts[PortState.FREE],
        "allocated": sum(p.state in busy for p in ports),
        "total": len(ports),
        "range": f"{core.settings.port_lo}-{core.settings.port_hi}",
        "counts": counts,
    }


async def admin_ports(request: web.Request) -> web.Response:
    core = request.app[CORE]
    services = [
        {"service": s.key, "port": s.port, "pid": s.pid, "status": s.state.value}
        for s in core.services()
    ]
    return json_response(
        {
            "ok": True,
            "timestamp": now_iso(),
            "portStatus": port_status(core),
            "services": services,
        }
    )


async def admin_ports_cleanup(request: web.Request) -> web.Response:
    core = request.app[CORE]
    counts = await core.cleanup(wait_s=QUEUE_WAIT_S, trigger="compat")
    cleaned = counts["staleCleaned"] + counts["orphansReaped"]
    return json_response(
        {
            "ok": True,
            "message": f"cleaned {cleaned} stale allocation(s) and orphan(s)",
            "cleaned": cleaned,
            **counts,
            "portStatus": port_status(core),
        }
    )


async def admin_reset_ports(request: web.Request) -> web.Response:
    report = await request.app[CORE].stop_all()  # what Stop All does, ours only
    message = f"stopped {report.count} service(s); every port of ours released"
    return json_response({"ok": True, "message": message, "stopped": report.count})


async def admin_new_customer_journey(request: web.Request) -> web.Response:
    report = await request.app[CORE].stop_customer_services(wait_s=QUEUE_WAIT_S)
    message = f"stopped {report.count} customer journey service(s); essential services kept"
    return json_response({"ok": True, "message": message, "stopped": report.count})


async def index(request: web.Request) -> web.Response:
    core = request.app[CORE]
    status = port_status(core)
    links = "".join(
        f'<li><code>{method}</code> <a href="{html.escape(path)}">{html.escape(path)}</a></li>'
        for method, path, _ in COMPAT_ROUTES
        if path != "/"
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<title>BizObs Journey Control Panel</title></head><body>"
        "<h1>BizObs Journey Control Panel</h1>"
        f"<p>Port pool {html.escape(status['range'])}: {status['allocated']} allocated, "
        f"{status['available']} free; {len(core.services())} service(s) running; "
        f"{'a run is in progress' if core.busy else 'idle'}.</p>"
        f"<p>State directory: <code>{html.escape(str(core.settings.state_dir))}</code></p>"
        '<p>API description: <a href="/api/openapi.json">/api/openapi.json</a></p>'
        f"<h2>Compatibility routes</h2><ul>{links}</ul></body></html>"
    )
    return web.Response(text=page, content_type="text/html")


COMPAT_ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/", index),
    ("GET", "/health", health),
    (
        "POST",
        "/api/journey-simulation/simulate-journey",
        run_alias(Mode.SINGLE, 1, shape_single),
    ),
    (
        "POST",
        "/api/journey-simulation/simulate-multiple-journeys",
        run_alias(Mode.MULTIPLE, 1, shape_multiple),
    ),
    (
        "POST",
        "/api/journey-simulation/simulate-batch-chained",
        run_alias(Mode.BATCH_CHAINED, 10, shape_batch),
    ),
    ("GET", "/api/admin/services", admin_services),
    ("GET", "/api/admin/services/status", admin_services_status),
    ("GET", "/api/admin/ports", admin_ports),
    ("POST", "/api/admin/ports/cleanup", admin_ports_cleanup),
    ("POST", "/api/admin/reset-ports", admin_reset_ports),
    ("POST", "/api/admin/new-customer-journey", admin_new_customer_journey),
]
COMPAT_PATHS = frozenset(path for _, path, _ in COMPAT_ROUTES)

# alias -> our route it maps onto (README's table; the OpenAPI summaries say the same)
OUR_ROUTE = {
    "/": "GET /api/health + /api/ports/status (HTML)",
    "/health": "GET /api/health",
    "/api/journey-simulation/simulate-journey": "POST /api/journey/simulate",
    "/api/journey-simulation/simulate-multiple-journeys": "POST /api/journey/simulate-multiple",
    "/api/journey-simulation/simulate-batch-chained": "POST /api/journey/simulate-batch-chained",
    "/api/admin/services": "GET /api/services/status",
    "/api/admin/services/status": "GET /api/services/status",
    "/api/admin/ports": "GET /api/ports/status",
    "/api/admin/ports/cleanup": "POST /api/ports/cleanup",
    "/api/admin/reset-ports": "POST /api/services/stop-all",
    "/api/admin/new-customer-journey": "stop the customer services (a run's stop phase alone)",
}


# -- OpenAPI --------------------------------------------------------------------------------
ERROR_SCHEMA = {
    "type": "object",
    "required": ["success", "error"],
    "properties": {"success": {"const": False}, "error": {"type": "string"}},
}
OBJECT = {"type": "object"}
ERRORS = {
    "400": json_content(ERROR_SCHEMA, "bad input; nothing was stopped"),
    "409": json_content(ERROR_SCHEMA, f"still busy after queueing {QUEUE_WAIT_S:g} s"),
    "413": json_content(ERROR_SCHEMA, "request body too large"),
    "503": json_content(ERROR_SCHEMA, "the port pool cannot fit the journey now"),
    "507": json_content(ERROR_SCHEMA, "the state database cannot be written (disk full?)"),
}
COMPAT_STEP = {
    "type": "object",
    "properties": STEP_FIELDS,
    "propertyNames": NAMES,
    "additionalProperties": ref("ExtraValue"),
    # Without a serviceName one is derived from the step name, which then needs a letter.
    "anyOf": [
        {"required": ["stepName", "serviceName"]},
        {"required": ["stepName"], "properties": {"stepName": {"pattern": "[A-Za-z]"}}},
    ],
    "description": "serviceName may be left out: derived from stepName as the editor does "
    "('Add To Cart' -> AddToCartService). A step without stepName is named by its name, step "
    "or title.",
}
COMPAT_STEPS = {
    "type": "array",
    "minItems": 1,
    "maxItems": 40,
    "items": ref("CompatStep"),
    "description": "at most one step per port of the pool (maxItems is this pool's size)",
}
COMPAT_JOURNEY = {
    "type": "object",
    "properties": {
        # null is absent here: that system's default (or the top level's value) stands in.
        **{key: {"anyOf": [schema, {"type": "null"}]} for key, schema in JOURNEY_FIELDS.items()},
        "steps": {"anyOf": [ref("CompatSteps"), {"type": "null"}]},
        "errorSimulationEnabled": {"type": ["boolean", "null"]},
        **{key: ref("ExtraValue") for key in ECHOED},
    },
    "description": f"defaults for absent fields: {', '.join(DEFAULTS.values())}",
}


_HAS_STEPS = {"required": ["steps"], "properties": {"steps": {"type": "array"}}}


def _run_body(mode: Mode) -> dict[str, Any]:
    """What an alias run reads: the journey as `journey`, `aiJourney` or at top level, and the
    call's own fields."""
    per_call: dict[str, Any] = {
        "journeyId": FREE_TEXT,
        "customerName": FREE_TEXT,
        "thinkTimeMs": {"type": ["number", "null"], "minimum": 0, "maximum": MAX_THINK_TIME_MS},
        "seed": SEED,
        "chained": {"description": "read and answered as true: ours always chains"},
    }
    if mode is not Mode.SINGLE:
        per_call["customers"] = {
            "type": ["integer", "null"],
            "minimum": 1,
            "maximum": MAX_CUSTOMERS,
        }
    return {
        "type": "object",
        "properties": {
            **COMPAT_JOURNEY["properties"],  # type: ignore[dict-item]
            "journey": ref("CompatJourney"),
            "aiJourney": ref("CompatJourney"),
            **per_call,
        },
        # Where the steps are: in the journey object used (`journey`, else `aiJourney`), or
        # at top level.
        "anyOf": [
            {"required": ["journey"], "properties": {"journey": _HAS_STEPS}},
            {
                "required": ["aiJourney"],
                "not": {"required": ["journey"]},
                "properties": {"aiJourney": _HAS_STEPS},
            },
            _HAS_STEPS,
        ],
        "description": "That system's body: the journey as `journey`, `aiJourney` or at top "
        "level; absent fields take that system's defaults, wrongly typed ones are refused.",
    }


def _operation(method: str, path: str, mode: Mode | None) -> dict[str, Any]:
    summary = f"compatibility alias of {OUR_ROUTE[path]}"
    if path == "/":
        responses = {"200": {"description": "a read-only HTML page", "content": {"text/html": {}}}}
    else:
        responses = {"200": json_content(OBJECT, summary), **ERRORS}
    op: dict[str, Any] = {"tags": ["compat"], "summary": summary, "responses": responses}
    if mode is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _run_body(mode)}},
        }
        op["responses"]["500"] = json_content(
            OBJECT, "the run failed after validation (success false)"
        )
    elif method == "POST":
        op["requestBody"] = NO_BODY
    return {method.lower(): op}


RUN_MODES = {
    "/api/journey-simulation/simulate-journey": Mode.SINGLE,
    "/api/journey-simulation/simulate-multiple-journeys": Mode.MULTIPLE,
    "/api/journey-simulation/simulate-batch-chained": Mode.BATCH_CHAINED,
}
COMPAT_SPEC: dict[str, Any] = {
    "paths": {
        path: _operation(method, path, RUN_MODES.get(path)) for method, path, _ in COMPAT_ROUTES
    },
    "schemas": {
        "CompatStep": COMPAT_STEP,
        "CompatSteps": COMPAT_STEPS,
        "CompatJourney": COMPAT_JOURNEY,
    },
    "tag": {"name": "compat", "description": "the replaced Node.js system's routes, as aliases"},
}
