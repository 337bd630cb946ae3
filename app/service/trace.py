"""W3C trace context: parse an incoming traceparent, make the child span for the next hop."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True)
class SpanContext:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    flags: str = "01"

    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


def new_trace_id() -> str:
    return secrets.token_hex(16)


def new_span_id() -> str:
    return secrets.token_hex(8)


def child_of(traceparent: str | None) -> SpanContext:
    """The span of this hop: same trace as the caller's, a new span id, the caller's as parent."""
    m = _TRACEPARENT.match((traceparent or "").strip().lower())
    if not m or set(m.group(1)) == {"0"} or set(m.group(2)) == {"0"}:
        return SpanContext(new_trace_id(), new_span_id(), None)
    return SpanContext(m.group(1), new_span_id(), m.group(2), m.group(3))
