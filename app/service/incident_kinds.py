"""The kinds of incident a running step service can be given, their parameters and bounds.

Both sides read them: the panel checks an operator's incident against them before anything
changes (app/core/incident_model.py), and the service checks the signed control message it is
handed against them again (app/service/incidents.py; docs/architecture.md, "Incidents and
scenarios"). Problems are (field, message) pairs: the service layer knows no core errors.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from app.service.errors import HTTP_STATUS, ErrorType

MIN_DURATION_S = 1.0
MAX_DURATION_S = 3600.0
DEFAULT_DURATION_S = 60.0
MAX_ADD_MS = 60_000.0  # a step's own simulated latency has the same bound
MAX_CAP_MB = 256.0
MAX_MB_PER_S = 256.0
CRASH_EXIT_CODE = 86  # what the watcher shows: "exited (code 86)"

FieldProblem = tuple[str, str]


class IncidentKind(StrEnum):
    ERRORS = "errors"  # a share of requests fail with an HTTP error status
    LATENCY = "latency"  # every request takes longer
    HANG = "hang"  # requests are held until the incident ends (or the chain's budget does)
    CRASH = "crash"  # the process exits once
    CPU = "cpu"  # the process burns a share of a core
    MEMORY = "memory"  # the process grows to a cap, holds it, and frees it at the end


# Which incident names a request's span when several are in effect: the one that shaped it.
TAG_ORDER = (
    IncidentKind.HANG,
    IncidentKind.LATENCY,
    IncidentKind.ERRORS,
    IncidentKind.CPU,
    IncidentKind.MEMORY,
    IncidentKind.CRASH,
)


@dataclass(frozen=True)
class Param:
    """One parameter of a kind: its JSON name, the attribute it fills, default and bounds, and
    what an operator calls it."""

    name: str
    attr: str
    default: float
    lo: float
    hi: float
    label: str
    unit: str = ""
    lo_open: bool = False  # the value must be above `lo`, not at it
    whole: bool = False

    def check(self, value: object) -> tuple[float | None, str]:
        """The value, or None and why not."""
        if self.lo_open:
            bounds = f"more than {self.lo:g} and at most {self.hi:g}{self.unit}"
        else:
            bounds = f"from {self.lo:g} to {self.hi:g}{self.unit}"
        whole = "a whole number" if self.whole else "a number"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, f"{self.label} must be {whole} {bounds}"
        number = float(value)
        low_ok = number > self.lo if self.lo_open else number >= self.lo
        if not math.isfinite(number) or not low_ok or number > self.hi:
            return None, f"{self.label} must be {bounds}"
        if self.whole and not number.is_integer():
            return None, f"{self.label} must be a whole number {bounds}"
        return number, ""


PARAMS: dict[IncidentKind, tuple[Param, ...]] = {
    IncidentKind.ERRORS: (
        Param("rate", "rate", 1.0, 0.0, 1.0, "the share of failing requests"),
        Param("status", "status", 500, 400, 599, "the HTTP status (4xx or 5xx)", whole=True),
    ),
    IncidentKind.LATENCY: (
        Param("addMs", "add_ms", 500.0, 0.0, MAX_ADD_MS, "the added latency", " ms", True),
        Param("jitterMs", "jitter_ms", 0.0, 0.0, MAX_ADD_MS, "the jitter", " ms"),
    ),
    IncidentKind.HANG: (),
    IncidentKind.CRASH: (),
    IncidentKind.CPU: (Param("cores", "cores", 0.5, 0.0, 1.0, "the share of a core", "", True),),
    IncidentKind.MEMORY: (
        Param("mbPerS", "mb_per_s", 16.0, 0.0, MAX_MB_PER_S, "the growth", " MiB/s", True),
        Param("capMb", "cap_mb", 128.0, 0.0, MAX_CAP_MB, "the memory cap", " MiB", True),
    ),
}
ERROR_TYPE = "errorType"  # errors only: a text, not a number
DURATION = Param(
    "durationS", "duration_s", DEFAULT_DURATION_S, MIN_DURATION_S, MAX_DURATION_S,
    "the duration", " s",
)  # fmt: skip
COMMON = ("kind", DURATION.name)
_STATUS_TYPES = {status: kind for kind, status in HTTP_STATUS.items()}


def kind_fields(kind: IncidentKind) -> tuple[str, ...]:
    """Every field an incident of `kind` takes (besides where it goes)."""
    extra = (ERROR_TYPE,) if kind is IncidentKind.ERRORS else ()
    return (*COMMON, *(p.name for p in PARAMS[kind]), *extra)


def default_error_type(status: int) -> ErrorType:
    """The error type a status says (503: unavailable, 402: payment, ...), else internal."""
    return _STATUS_TYPES.get(status, ErrorType.INTERNAL)


@dataclass(frozen=True)
class IncidentSpec:
    """What an incident does; only its kind's parameters mean anything."""

    kind: IncidentKind
    duration_s: float = DEFAULT_DURATION_S
    rate: float = 0.0
    status: int = 0
    error_type: str = ""
    add_ms: float = 0.0
    jitter_ms: float = 0.0
    cores: float = 0.0
    mb_per_s: float = 0.0
    cap_mb: float = 0.0

    def params_json(self) -> dict[str, Any]:
        """The kind's parameters under their JSON names, durationS included."""
        out: dict[str, Any] = {DURATION.name: self.duration_s}
        for param in PARAMS[self.kind]:
            value = getattr(self, param.attr)
            out[param.name] = int(value) if param.whole else value
        if self.kind is IncidentKind.ERRORS:
            out[ERROR_TYPE] = self.error_type
        return out

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, **self.params_json()}

    def summary(self) -> str:
        """In a few words, for the log, the list and the CLI."""
        if self.kind is IncidentKind.ERRORS:
            return f"{self.rate:.0%} fail with {self.status} {self.error_type}"
        if self.kind is IncidentKind.LATENCY:
            jitter = f" (+ up to {self.jitter_ms:g})" if self.jitter_ms else ""
            return f"+{self.add_ms:g} ms{jitter}"
        if self.kind is IncidentKind.CPU:
            return f"burns {self.cores:g} of a core"
        if self.kind is IncidentKind.MEMORY:
            return f"grows {self.mb_per_s:g} MiB/s up to {self.cap_mb:g} MiB"
        if self.kind is IncidentKind.HANG:
            return "requests held"
        return "the process exits"


def parse_spec(
    data: Mapping[str, Any], also: Collection[str] = (), at: str = ""
) -> tuple[IncidentSpec | None, list[FieldProblem]]:
    """The spec `data` describes, or None and every problem found. `also`: the other fields
    the caller takes (where the incident goes); any other field is refused by name. `at`
    prefixes each field (a JSON path, e.g. "steps[1].incident.")."""
    raw_kind = data.get("kind")
    try:
        kind = IncidentKind(raw_kind) if isinstance(raw_kind, str) else None
    except ValueError:
        kind = None
    if kind is None:
        kinds = ", ".join(k.value for k in IncidentKind)
        return None, [(f"{at}kind", f"the kind must be one of {kinds}")]
    taken = (*kind_fields(kind), *also)
    problems = [(f"{at}{name}", _unknown(name, kind, taken)) for name in data if name not in taken]
    values: dict[str, Any] = {"kind": kind}
    for param in (DURATION, *PARAMS[kind]):
        value, why = param.check(data.get(param.name, param.default))
        if value is None:
            problems.append((f"{at}{param.name}", why))
        else:
            values[param.attr] = int(value) if param.whole else value
    if kind is IncidentKind.ERRORS:
        problems += _error_type(data, values, at)
    if problems:
        return None, problems
    return IncidentSpec(**values), []


def _unknown(name: str, kind: IncidentKind, taken: Sequence[str]) -> str:
    """As the run routes say it ("did you mean"), and what this kind takes."""
    close = difflib.get_close_matches(name, taken, 1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown field {name!r}{hint}: {kind.value} incidents take {', '.join(taken)}"


def _error_type(data: Mapping[str, Any], values: dict[str, Any], at: str) -> list[FieldProblem]:
    raw = data.get(ERROR_TYPE)
    if raw is None:
        values["error_type"] = default_error_type(int(values.get("status", 500))).value
        return []
    if not isinstance(raw, str) or raw not in {e.value for e in ErrorType}:
        names = ", ".join(e.value for e in ErrorType)
        return [(f"{at}{ERROR_TYPE}", f"the error type must be one of {names}")]
    values["error_type"] = raw
    return []
