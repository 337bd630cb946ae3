"""What every route of the control API shares, ours and the compatibility aliases alike: the
core's key on the app, the one JSON body reader, the one JSON answer, the error mapping and the
run's status (docs/architecture.md, "Control API").

JSON here is RFC 8259 JSON both ways: Python's json module reads and writes NaN, Infinity and
-Infinity, which no other JSON parser takes (JavaScript's JSON.parse refuses the whole text). A
body holding one is refused; an answer that would hold one is an error instead."""

from __future__ import annotations

import difflib
import functools
import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import hdrs, web

from app.core.errors import (
    BusyError,
    ClientGoneError,
    CoreError,
    IncidentConflictError,
    IncidentControlError,
    NoJourneyError,
    PoolExhaustedError,
    Problem,
    RunConflictError,
    StateDatabaseError,
    UnknownServiceError,
    ValidationError,
)
from app.core.orchestrator import Core
from app.core.runs import RunResult

MAX_BODY = 256 * 1024  # a journey is a few KiB; anything near this is a mistake or an attack
CORE = web.AppKey("core", Core)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = logging.getLogger(__name__)
_dumps = functools.partial(json.dumps, allow_nan=False)


def json_response(data: Any, status: int = 200) -> web.Response:
    """The one way an answer is written: a value without a JSON form (NaN) raises ValueError,
    which the error mapping turns into a 500 that is JSON itself."""
    return web.json_response(data, status=status, dumps=_dumps)


def error(status: int, message: str, **extra: Any) -> web.Response:
    return json_response({"ok": False, "error": message, **extra}, status=status)


def problems_answer(exc: ValidationError) -> web.Response:
    return error(400, str(exc), problems=[p.to_json() for p in exc.problems])


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure is JSON with a message; core errors map to their HTTP status."""
    try:
        return await handler(request)
    except ValidationError as exc:
        return problems_answer(exc)
    except (BusyError, NoJourneyError, RunConflictError, IncidentConflictError) as exc:
        return error(409, str(exc))
    except PoolExhaustedError as exc:
        return error(503, str(exc))
    except UnknownServiceError as exc:
        return error(404, str(exc))
    except IncidentControlError as exc:  # the service did not take it: a bad gateway
        return error(502, str(exc))
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


class _NotJson(Exception):
    """A token Python's json module takes and JSON does not."""


def _constant(token: str) -> Any:
    raise _NotJson(token)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400: JSON syntax, but no double holds it
        raise _NotJson(text)
    return value


async def read_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object: UTF-8 (RFC 8259), no NaN or Infinity, a bounded size (the
    app's client_max_size) and depth. Anything else is a ValidationError (400)."""
    raw = await request.read()
    try:
        text = raw.decode("utf-8")
        body = (
            json.loads(text, parse_constant=_constant, parse_float=_finite)
            if text.strip()
            else None
        )
    except _NotJson as exc:
        raise ValidationError(
            f"request body is not valid JSON: {exc} is not JSON (no NaN or Infinity, and every "
            "number must fit a double)"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"request body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise ValidationError("request body is nested too deeply to be a journey") from exc
    if not isinstance(body, dict):
        raise ValidationError("request body must be a JSON object")
    return body


def whole(value: Any) -> Any:
    """3.0 is the integer 3, as JSON Schema (and so the OpenAPI document) has it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def known_fields(body: dict[str, Any], known: tuple[str, ...]) -> None:
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
