"""The control API's application: both route tables, ours and the compatibility aliases, on
one app behind one chain of middlewares (docs/architecture.md, "Control API")."""

from __future__ import annotations

import time

from aiohttp import web

from app.api import openapi
from app.api.common import CORE, MAX_BODY, Handler, json_errors
from app.api.compat import COMPAT_ROUTES, STARTED, compat_errors
from app.api.incidents import INCIDENT_ROUTES
from app.api.metrics import METRICS_ROUTES
from app.api.routes import ROUTES
from app.api.security import GUARD, Guard, guard_requests
from app.core.orchestrator import Core

ALL_ROUTES: list[tuple[str, str, Handler]] = [
    *ROUTES,
    ("GET", "/api/openapi.json", openapi.document),
    *INCIDENT_ROUTES,
    *METRICS_ROUTES,
    *COMPAT_ROUTES,
]


def make_app(core: Core, guard: Guard | None = None) -> web.Application:
    """The API over `core`. The gate sees every request to every route (present and future)
    before any handler; `guard` says which address it must name (default: the settings'
    loopback address). Outside it, the error mapping (a failure anywhere is JSON) and, outermost,
    the aliases' error shape (it sees the gate's refusals too)."""
    app = web.Application(
        middlewares=[compat_errors, json_errors, guard_requests], client_max_size=MAX_BODY
    )
    app[CORE] = core
    app[GUARD] = guard or Guard(core.settings.api_host, core.settings.api_port)
    app[STARTED] = time.time()
    for method, path, handler in ALL_ROUTES:
        if method == "GET":
            app.router.add_get(path, handler)  # HEAD too
        else:
            app.router.add_route(method, path, handler)
    return app
