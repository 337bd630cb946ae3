"""Journey and Step models, parsing from the journey JSON shape, validation, templates, files."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from app.core.errors import JourneyFileError, Problem, ValidationError
from app.core.limits import MAX_LATENCY_MS, MAX_STEPS, MAX_TEXT
from app.core.model import ServiceSpec, sanitize_company

SERVICE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
DOMAIN = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62}\.)*[A-Za-z0-9-]{1,63}$")
ERROR_TYPES = ("timeout", "unavailable", "validation", "payment", "auth", "rate_limit", "internal")
KNOWN_STEP_KEYS = {
    "stepName",
    "serviceName",
    "latencyMs",
    "errorRate",
    "errorType",
    "description",
    "category",
}
KNOWN_JOURNEY_KEYS = {"companyName", "domain", "industryType", "steps", "errorRate", "errorType"}
# What an operator calls each field (messages never speak JSON).
LABELS = {
    "companyName": "Company name",
    "domain": "Domain",
    "industryType": "Industry",
    "steps": "Steps",
    "errorRate": "Error rate",
    "errorType": "Error type",
    "stepName": "name",
    "serviceName": "service name",
    "latencyMs": "latency",
    "description": "description",
    "category": "category",
}


@dataclass(frozen=True)
class Step:
    step_name: str
    service_name: str
    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_type: str | None = None
    description: str | None = None
    category: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # passed along as business fields

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"stepName": self.step_name, "serviceName": self.service_name}
        if self.latency_ms:
            out["latencyMs"] = self.latency_ms
        if self.error_rate:
            out["errorRate"] = self.error_rate
        for key, value in (
            ("errorType", self.error_type),
            ("description", self.description),
            ("category", self.category),
        ):
            if value is not None:
                out[key] = value
        return {**out, **self.extra}


@dataclass(frozen=True)
class Journey:
    company_name: str
    domain: str
    industry_type: str
    steps: tuple[Step, ...]
    error_rate: float = 0.0  # for the whole journey; a step's own rate wins
    error_type: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def company_key(self) -> str:
        # Cached: every customer's tracestate names it (a regex each time cost 1 % of traffic).
        return sanitize_company(self.company_name)

    def service_specs(self) -> list[ServiceSpec]:
        """One service per distinct serviceName, in order of first use: steps may share one
        (Login and Logout both served by AuthService), and it is called once per step."""
        specs = (ServiceSpec(s.service_name, self.company_name) for s in self.steps)
        return list({spec.key: spec for spec in specs}.values())  # dicts keep first-use order

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "companyName": self.company_name,
            "domain": self.domain,
            "industryType": self.industry_type,
            "steps": [s.to_json() for s in self.steps],
        }
        if self.error_rate:
            out["errorRate"] = self.error_rate
        if self.error_type:
            out["errorType"] = self.error_type
        return {**out, **self.extra}


class _Problems:
    """Collects every problem so the operator sees them all at once."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(Problem(path, message))

    def text(self, obj: dict[str, Any], key: str, where: _Where, required: bool = True) -> str:
        value = obj.get(key)
        path, label = where.path(key), where.label(key)
        if value is None:
            if required:
                self.add(path, f"{label} is missing")
            return ""
        if not isinstance(value, str):
            self.add(path, f"{label} must be text, got {type(value).__name__}")
            return ""
        value = value.strip()
        if required and not value:
            self.add(path, f"{label} is empty")
        elif len(value) > MAX_TEXT:
            self.add(path, f"{label} is longer than {MAX_TEXT} characters")
        elif bad := unusable(value):
            # A lone surrogate cannot be encoded for a command line, a database or JSON, and
            # control characters (NUL above all) end or garble an argv item: refuse them here,
            # before anything is stopped, instead of failing half-way through a run.
            self.add(path, f"{label} contains a character that cannot be used ({bad})")
        return value

    def optional_text(self, obj: dict[str, Any], key: str, where: _Where) -> str | None:
        """A free text (a step's description or category): text when present, any length."""
        value = obj.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.add(
                where.path(key), f"{where.label(key)} must be text, got {type(value).__name__}"
            )
            return None
        if bad := unusable(value):
            self.add(
                where.path(key),
                f"{where.label(key)} contains a character that cannot be used ({bad})",
            )
        return value

    def number(self, obj: dict[str, Any], key: str, where: _Where, hi: float) -> float:
        value = obj.get(key, 0)
        path, label = where.path(key), where.label(key)
        if value is None:
            return 0.0
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            self.add(path, f"{label} must be a number")
            return 0.0
        if not 0 <= value <= hi:
            self.add(path, f"{label} must be between 0 and {hi:g}, got {value:g}")
            return 0.0
        return float(value)

    def error_type(self, obj: dict[str, Any], where: _Where) -> str | None:
        value = obj.get("errorType")
        if value is None:
            return None
        if value not in ERROR_TYPES:
            self.add(
                where.path("errorType"),
                f"{where.label('errorType')} must be one of {', '.join(ERROR_TYPES)}",
            )
            return None
        return str(value)


@dataclass(frozen=True)
class _Where:
    """The journey itself, or one of its steps: how a field is named in paths and messages."""

    step: int | None = None  # 0-based

    def path(self, key: str) -> str:
        return key if self.step is None else f"steps[{self.step}].{key}"

    def label(self, key: str) -> str:
        name = LABELS.get(key, key)
        return name if self.step is None else f"Step {self.step + 1}: {name[:1].lower()}{name[1:]}"


# Characters that would change how a name reads without being seen: bidirectional embeddings,
# overrides and isolates (U+202A-U+202E, U+2066-U+2069), and zero-width characters.
HIDDEN = frozenset(
    [
        *map(chr, range(0x202A, 0x202F)),
        *map(chr, range(0x2066, 0x206A)),
        *("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"),
    ]
)
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def unusable(text: str) -> str | None:
    """The first character of `text` that must not reach a process, a file, the database or an
    export, described; None when every character can go anywhere a name goes."""
    for char in text:
        code = ord(char)
        if 0xD800 <= code <= 0xDFFF:
            return f"a lone surrogate U+{code:04X}"
        if unicodedata.category(char) == "Cc":
            return f"the control character U+{code:04X}"
        if char in HIDDEN:
            return f"the invisible formatting character U+{code:04X}"
    return None


def _has_letter_or_digit(text: str) -> bool:
    """In any script (what `[^\\W_]` matches in a Unicode pattern: the OpenAPI document's)."""
    return any(c.isalnum() for c in text)


def child_path(path: str, key: str | int) -> str:
    """The JSON path of a member: `steps[1].note`, `meta.tags[0]`, `extra["a b"]`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if IDENTIFIER.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def check_values(value: Any, path: str) -> list[Problem]:
    """Every string (keys too) and number below `value`, however deep (a journey's extra fields
    travel to the services, the history and the export): no unusable character, no NaN or
    infinity (not JSON). Iterative: a deeply nested field is no recursion limit to hit."""
    p = _Problems()
    todo: list[tuple[str, Any]] = [(path, value)]
    while todo:
        where, item = todo.pop()
        if isinstance(item, str):
            if bad := unusable(item):
                p.add(where, f"The field {where} contains a character that cannot be used ({bad})")
        elif isinstance(item, float) and not math.isfinite(item):
            p.add(where, f"The field {where} must be a finite number, got {item}")
        elif isinstance(item, dict):
            for key, member in item.items():
                if bad := unusable(str(key)):
                    p.add(
                        where,
                        f"A field name in {where or 'the journey'} contains a character that "
                        f"cannot be used ({bad})",
                    )
                    continue
                todo.append((child_path(where, str(key)), member))
        elif isinstance(item, list):
            todo.extend((child_path(where, i), member) for i, member in enumerate(item))
    return p.items


def parse_journey(data: Any, max_steps: int = MAX_STEPS) -> Journey:
    """Validate and build a Journey; raises ValidationError listing every problem found."""
    if isinstance(data, dict) and "journey" in data and "steps" not in data:
        data = data["journey"]  # accept the API body shape too
    if not isinstance(data, dict):
        raise ValidationError(
            "a journey must be a JSON object with companyName, domain, industryType and steps"
        )
    p = _Problems()
    top = _Where()
    company = p.text(data, "companyName", top)
    if company and not _has_letter_or_digit(company):
        p.add("companyName", "Company name needs at least one letter or digit")
    domain = p.text(data, "domain", top)
    if domain and not DOMAIN.match(domain):
        p.add("domain", f"Domain {domain!r} is not a domain name like acme.com")
    industry = p.text(data, "industryType", top)
    journey_rate = p.number(data, "errorRate", top, 1.0)
    journey_type = p.error_type(data, top)
    steps = _parse_steps(data.get("steps"), p, max_steps)
    extra = {k: v for k, v in data.items() if k not in KNOWN_JOURNEY_KEYS}
    p.items += check_values(extra, "")
    if p.items:
        raise ValidationError(p.items)
    return Journey(company, domain, industry, tuple(steps), journey_rate, journey_type, extra)


def _parse_steps(raw: Any, p: _Problems, max_steps: int) -> list[Step]:
    if raw is None:
        p.add("steps", "Steps are missing")
        return []
    if not isinstance(raw, list):
        p.add("steps", "Steps must be a list")
        return []
    if not raw:
        p.add("steps", "A journey needs at least one step")
        return []
    if len(raw) > max_steps:
        p.add("steps", f"{len(raw)} steps do not fit: at most {max_steps} (one port each)")
        return []
    steps: list[Step] = []
    for i, item in enumerate(raw):
        where = _Where(i)
        if not isinstance(item, dict):
            p.add(f"steps[{i}]", f"Step {i + 1} must be an object with stepName and serviceName")
            continue
        name = p.text(item, "stepName", where)
        service = p.text(item, "serviceName", where)
        if service and not SERVICE_NAME.match(service):
            p.add(
                where.path("serviceName"),
                f"{where.label('serviceName')} {service!r} must be an identifier "
                "(a letter, then letters, digits or _; at most 64)",
            )
        # Steps may share a service (Login and Logout both served by AuthService): one process
        # serves both, called once per step.
        latency = p.number(item, "latencyMs", where, MAX_LATENCY_MS)
        rate = p.number(item, "errorRate", where, 1.0)
        etype = p.error_type(item, where)
        description = p.optional_text(item, "description", where)
        category = p.optional_text(item, "category", where)
        extra = {k: v for k, v in item.items() if k not in KNOWN_STEP_KEYS}
        p.items += check_values(extra, f"steps[{i}]")
        steps.append(Step(name, service, latency, rate, etype, description, category, extra))
    return steps


def _templates() -> dict[str, Any]:
    folder = resources.files("app") / "resources" / "journeys"
    return {e.name.removesuffix(".json"): e for e in folder.iterdir() if e.name.endswith(".json")}


def template_names() -> list[str]:
    return sorted(_templates())


def load_template(name: str) -> Journey:
    templates = _templates()
    if name not in templates:
        raise ValidationError(f"no template {name!r}; templates: {', '.join(sorted(templates))}")
    return parse_journey(json.loads(templates[name].read_text(encoding="utf-8")))


def read_journey_file(path: Path | str) -> dict[str, Any]:
    """The JSON object in a journey file, not yet validated (an editor shows what is wrong)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise JourneyFileError(f"cannot read {path}: {exc.strerror}") from exc
    except (ValueError, RecursionError) as exc:
        raise JourneyFileError(f"{path} is not valid JSON: {exc}") from exc
    if isinstance(data, dict) and "journey" in data and "steps" not in data:
        data = data["journey"]
    if not isinstance(data, dict):
        raise JourneyFileError(f"{path} does not hold a journey (a JSON object)")
    return data


def journey_from_file(path: Path | str) -> Journey:
    return parse_journey(read_journey_file(path))


def write_journey_file(path: Path | str, data: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
