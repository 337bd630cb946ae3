"""Journey and Step models, parsing from the write-up's JSON shape, validation, templates."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.errors import ValidationError
from app.core.model import ServiceSpec, sanitize_company

MAX_STEPS = 40  # never more than the default pool; a smaller pool lowers it further
MAX_TEXT = 120
MAX_LATENCY_MS = 60_000
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
TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "resources" / "journeys"


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

    @property
    def company_key(self) -> str:
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
        self.items: list[str] = []

    def text(self, obj: dict[str, Any], key: str, where: str, required: bool = True) -> str:
        value = obj.get(key)
        if value is None:
            if required:
                self.items.append(f"{where}{key} is missing")
            return ""
        if not isinstance(value, str):
            self.items.append(f"{where}{key} must be text, got {type(value).__name__}")
            return ""
        value = value.strip()
        if required and not value:
            self.items.append(f"{where}{key} is empty")
        elif len(value) > MAX_TEXT:
            self.items.append(f"{where}{key} is longer than {MAX_TEXT} characters")
        return value

    def number(self, obj: dict[str, Any], key: str, where: str, hi: float) -> float:
        value = obj.get(key, 0)
        if value is None:
            return 0.0
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            self.items.append(f"{where}{key} must be a number")
            return 0.0
        if not 0 <= value <= hi:
            self.items.append(f"{where}{key} must be between 0 and {hi:g}, got {value:g}")
            return 0.0
        return float(value)

    def error_type(self, obj: dict[str, Any], where: str) -> str | None:
        value = obj.get("errorType")
        if value is None:
            return None
        if value not in ERROR_TYPES:
            self.items.append(f"{where}errorType must be one of {', '.join(ERROR_TYPES)}")
            return None
        return str(value)


def parse_journey(data: Any, max_steps: int = MAX_STEPS) -> Journey:
    """Validate and build a Journey; raises ValidationError listing every problem found."""
    if isinstance(data, dict) and "journey" in data and "steps" not in data:
        data = data["journey"]  # accept the API body shape too
    if not isinstance(data, dict):
        raise ValidationError(
            "a journey must be a JSON object with companyName, domain, industryType and steps"
        )
    p = _Problems()
    company = p.text(data, "companyName", "")
    if company and not sanitize_company(company).strip("_"):
        p.items.append("companyName needs at least one letter or digit")
    domain = p.text(data, "domain", "")
    if domain and not DOMAIN.match(domain):
        p.items.append(f"domain {domain!r} is not a domain name like acme.com")
    industry = p.text(data, "industryType", "")
    journey_rate = p.number(data, "errorRate", "", 1.0)
    journey_type = p.error_type(data, "")
    steps = _parse_steps(data.get("steps"), p, max_steps)
    if p.items:
        raise ValidationError(p.items)
    extra = {k: v for k, v in data.items() if k not in KNOWN_JOURNEY_KEYS}
    return Journey(company, domain, industry, tuple(steps), journey_rate, journey_type, extra)


def _parse_steps(raw: Any, p: _Problems, max_steps: int) -> list[Step]:
    if raw is None:
        p.items.append("steps is missing")
        return []
    if not isinstance(raw, list):
        p.items.append("steps must be a list")
        return []
    if not raw:
        p.items.append("steps is empty: a journey needs at least one step")
        return []
    if len(raw) > max_steps:
        p.items.append(f"{len(raw)} steps do not fit: at most {max_steps} (one port each)")
        return []
    steps: list[Step] = []
    for i, item in enumerate(raw, 1):
        where = f"step {i}: "
        if not isinstance(item, dict):
            p.items.append(f"{where}must be an object with stepName and serviceName")
            continue
        name = p.text(item, "stepName", where)
        service = p.text(item, "serviceName", where)
        if service and not SERVICE_NAME.match(service):
            p.items.append(
                f"{where}serviceName {service!r} must be an identifier "
                "(a letter, then letters, digits or _; at most 64)"
            )
        latency = p.number(item, "latencyMs", where, MAX_LATENCY_MS)
        rate = p.number(item, "errorRate", where, 1.0)
        etype = p.error_type(item, where)
        description = item.get("description") if isinstance(item.get("description"), str) else None
        category = item.get("category") if isinstance(item.get("category"), str) else None
        extra = {k: v for k, v in item.items() if k not in KNOWN_STEP_KEYS}
        steps.append(Step(name, service, latency, rate, etype, description, category, extra))
    return steps


def template_names() -> list[str]:
    return sorted(p.stem for p in TEMPLATES_DIR.glob("*.json"))


def load_template(name: str) -> Journey:
    if name not in template_names():
        raise ValidationError(f"no template {name!r}; templates: {', '.join(template_names())}")
    return parse_journey(json.loads((TEMPLATES_DIR / f"{name}.json").read_text()))


def journey_from_file(path: Path) -> Journey:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ValidationError(f"{path} is not valid JSON: {exc}") from exc
    return parse_journey(data)
