"""JSON Schema of what both OpenAPI documents share: a journey's text, steps and extra fields,
as exactly as the core validates them (app/core/journeys.py), so that what the document calls
valid is accepted and what it calls invalid is refused (a test holds it to that).

Patterns are read by JSON Schema tools in Python and Rust as Unicode patterns: `[^\\W_]` is a
letter or digit of any script there."""

from __future__ import annotations

from typing import Any

from app.core.journeys import DOMAIN, ERROR_TYPES, HIDDEN
from app.core.limits import MAX_LATENCY_MS, MAX_TEXT

# Control characters (NUL above all) end or garble a process argument; bidi controls and
# zero-width characters disguise a name. A lone surrogate cannot be in UTF-8 at all.
_HIDDEN = "".join(f"\\u{ord(c):04x}" for c in sorted(HIDDEN))
CLEAN = f"^[^\\u0000-\\u001f\\u007f-\\u009f{_HIDDEN}]*$"
SERVICE_NAME = "^[A-Za-z][A-Za-z0-9_]{0,63}$"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def text(why: str) -> dict[str, Any]:
    """A name: leading and trailing blanks are dropped, what remains must not be empty."""
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_TEXT,
        "allOf": [
            # Python's str.strip() also drops \x1c-\x1f and \x85, which ECMA's \s does not.
            {"pattern": r"[^\s\x1c-\x1f\x85]"},
            {"pattern": CLEAN},
        ],
        "description": f"{why}; at most {MAX_TEXT} characters; no control, bidirectional or "
        "zero-width characters",
    }


FREE_TEXT = {
    "type": ["string", "null"],
    "pattern": CLEAN,
    "description": "no control, bidirectional or zero-width characters; null: none",
}
# Any JSON whose strings (names too) are clean: extra fields travel to the services, the
# history and the export as they are.
EXTRA_VALUE: dict[str, Any] = {
    "anyOf": [
        {"type": ["null", "boolean", "number"]},
        FREE_TEXT,
        {"type": "array", "items": ref("ExtraValue")},
        {
            "type": "object",
            "propertyNames": {"pattern": CLEAN},  # NAMES, spelt out: defined below
            "additionalProperties": ref("ExtraValue"),
        },
    ],
    "description": "any JSON; its texts without control, bidirectional or zero-width characters",
}
# null stands for absent in the optional fields (0, none): the core reads it so.
RATE = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
ERROR_TYPE = {"enum": [*ERROR_TYPES, None]}
STEP_FIELDS: dict[str, Any] = {
    "stepName": text("not only blanks"),
    "serviceName": {"type": "string", "pattern": SERVICE_NAME},
    "latencyMs": {"type": ["number", "null"], "minimum": 0, "maximum": MAX_LATENCY_MS},
    "errorRate": RATE,
    "errorType": ERROR_TYPE,
    "description": FREE_TEXT,
    "category": FREE_TEXT,
}
NAMES = {"pattern": CLEAN}  # an extra field's name is text like any other
STEP = {
    "type": "object",
    "required": ["stepName", "serviceName"],
    "properties": STEP_FIELDS,
    "propertyNames": NAMES,
    "additionalProperties": ref("ExtraValue"),
}
COMPANY = {
    **text("needs at least one letter or digit, of any script"),
    "pattern": r"[^\W_]",
}
JOURNEY_FIELDS: dict[str, Any] = {
    "companyName": COMPANY,
    "domain": {**text("a domain name like acme.com"), "pattern": DOMAIN.pattern},
    "industryType": text("not only blanks"),
    "errorRate": RATE,
    "errorType": ERROR_TYPE,
}
JOURNEY = {
    "type": "object",
    "required": ["companyName", "domain", "industryType", "steps"],
    "properties": {
        **JOURNEY_FIELDS,
        "steps": {
            "type": "array",
            "minItems": 1,
            "maxItems": 40,
            "items": ref("Step"),
            "description": "at most one step per port of the pool (maxItems is this pool's size)",
        },
    },
    "propertyNames": NAMES,
    "additionalProperties": ref("ExtraValue"),
}
SEED = {
    "type": ["integer", "null"],
    "minimum": 0,
    "maximum": 2**63,
    "description": "the customers' seed; absent or null: a random one",
}

# What a POST that reads no body takes: nothing, or any JSON, but always as application/json
# (what a web page cannot send without a pre-flight).
NO_BODY = {
    "required": True,
    "description": "ignored (send `{}`, or none at all): what is required is the Content-Type "
    "application/json, body or not",
    "content": {"application/json": {"schema": {}}},
}
