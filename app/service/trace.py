"""W3C Trace Context Level 2 (https://www.w3.org/TR/trace-context-2/) for one hop.

Parse the `traceparent` and `tracestate` header fields that came in (every copy of each, in
order), decide whether the caller's trace continues or a new one starts, and build the two
headers for the call to the next hop. Where the Recommendation leaves a choice (a tracestate
that does not parse MAY be discarded whole, or only its invalid entries), this module does
what the official test suite (w3c/trace-context, test/test.py at strict level 2) checks: the
whole header goes. tests/standards/ quotes the sentence or the suite case each rule comes from;
docs/trace-context.md lists the suite's cases and the tests that encode them.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

SUPPORTED_VERSION = "00"
INVALID_VERSION = "ff"
OUR_KEY = "bizobs"  # our tracestate member: bizobs=<the parent-id we sent>
MAX_MEMBERS = 32
MAX_TRACESTATE_CHARS = 512  # "Vendors SHOULD propagate at least 512 characters"
LARGE_MEMBER_CHARS = 128  # "Entries larger than 128 characters long SHOULD be removed first"
OWS = " \t"  # RFC 7230 optional whitespace: space and horizontal tab, nothing else
SAMPLED = 0x01
RANDOM = 0x02  # Level 2's random-trace-id flag: the right-most 7 bytes of the trace-id are random
KNOWN_FLAGS = SAMPLED | RANDOM  # the flags version 00 defines; the others go out as zero
# A trace we start: every hop records (sampled), and new_trace_id draws all 16 bytes from
# `secrets`, so the random-trace-id flag is true of it.
NEW_TRACE_FLAGS = f"{SAMPLED | RANDOM:02x}"
ZERO_TRACE_ID = "0" * 32
ZERO_SPAN_ID = "0" * 16

_HEX2 = re.compile(r"[0-9a-f]{2}")
# Version 00 is exactly four fields. A higher version is read by its first four fields; after
# the flags only the end or a dash may follow, and what follows the dash is not ours to read.
_V00 = re.compile(r"00-(?P<trace>[0-9a-f]{32})-(?P<parent>[0-9a-f]{16})-(?P<flags>[0-9a-f]{2})")
_HIGHER = re.compile(
    r"[0-9a-f]{2}-(?P<trace>[0-9a-f]{32})-(?P<parent>[0-9a-f]{16})-(?P<flags>[0-9a-f]{2})(?:-.*)?",
    re.DOTALL,
)
# list-member = key "=" value, one match: neither a key nor a value may hold "=".
#   key = ( lcalpha / DIGIT ) 0*255( keychar )
#   keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"
#   value = 0*255( chr ) nblk-chr; chr = %x20 / nblk-chr; nblk-chr = %x21-2B / %x2D-3C / %x3E-7E
_MEMBER = re.compile(
    r"([a-z0-9][a-z0-9_\-*/@]{0,255})=([\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e])"
)


def new_trace_id() -> str:
    return secrets.token_hex(16)


def new_span_id() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True)
class TraceParent:
    """A valid incoming traceparent, already downgraded to the fields of version 00."""

    trace_id: str
    parent_id: str
    flags: int  # the flags version 00 defines (sampled, random-trace-id); the others are zero

    @property
    def sampled(self) -> bool:
        return bool(self.flags & SAMPLED)

    @property
    def random(self) -> bool:
        return bool(self.flags & RANDOM)


def parse_traceparent(values: Sequence[str]) -> TraceParent | None:
    """The caller's trace, or None when a new trace must start (absent, duplicated, invalid)."""
    if len(values) != 1:
        # Two fields would combine (RFC 7230 §3.2.2) into "a,b", which is no valid value.
        return None
    value = values[0].strip(OWS)
    version = value[:2]
    if not _HEX2.fullmatch(version) or version == INVALID_VERSION or value[2:3] != "-":
        return None
    match = (_V00 if version == SUPPORTED_VERSION else _HIGHER).fullmatch(value)
    if match is None or match["trace"] == ZERO_TRACE_ID or match["parent"] == ZERO_SPAN_ID:
        return None
    return TraceParent(match["trace"], match["parent"], int(match["flags"], 16) & KNOWN_FLAGS)


@dataclass(frozen=True)
class TraceState:
    """The members of a valid tracestate, leftmost (most recent position) first."""

    members: tuple[tuple[str, str], ...] = ()

    def header(self) -> str:
        return ",".join(f"{key}={value}" for key, value in self.members)

    def get(self, key: str) -> str | None:
        return next((v for k, v in self.members if k == key), None)

    def with_first(self, key: str, value: str) -> TraceState:
        """Our updated member at the left, our older one removed, then cut to the limits."""
        rest = [(k, v) for k, v in self.members if k != key]
        return TraceState(_fit([(key, value), *rest]))


def parse_tracestate(values: Sequence[str]) -> TraceState:
    """Every tracestate field combined in order, or nothing when the combined list does not
    parse: a member that is not `key=value` by the grammar, or more than 32 members.

    The Recommendation lets a participant discard such a header whole or only drop its invalid
    entries; the official suite, at strict level 2, expects the whole header gone. A repeated
    key keeps its leftmost entry (the suite accepts either that or passing both on)."""
    members: list[tuple[str, str]] = []
    seen: set[str] = set()
    count = 0
    for raw in ",".join(values).split(","):
        member = raw.strip(OWS)
        if not member:
            continue  # empty and whitespace-only members are allowed
        count += 1
        match = _MEMBER.fullmatch(member)
        if match is None or count > MAX_MEMBERS:
            return TraceState()
        key = match[1]
        if key not in seen:
            seen.add(key)  # one entry per key: the leftmost is the most recent position
            members.append((key, match[2]))
    return TraceState(tuple(members))


def _fit(members: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """At most 32 members and 512 characters, truncating whole entries: those over 128
    characters first, then from the end. The first member (ours) is never removed."""
    members = members[:MAX_MEMBERS]
    size = _size(members)
    for large_only in (True, False):
        for index in range(len(members) - 1, 0, -1):
            if size <= MAX_TRACESTATE_CHARS:
                return tuple(members)
            entry = len(members[index][0]) + 1 + len(members[index][1])
            if large_only and entry <= LARGE_MEMBER_CHARS:
                continue
            size -= entry + 1  # the entry and its comma
            del members[index]
    return tuple(members)


def _size(members: list[tuple[str, str]]) -> int:
    return sum(len(k) + 1 + len(v) for k, v in members) + max(0, len(members) - 1)


@dataclass(frozen=True)
class SpanContext:
    """A span of ours: its trace, its id, its parent's id (None for a trace's root)."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    flags: str = NEW_TRACE_FLAGS

    def traceparent(self) -> str:
        return f"{SUPPORTED_VERSION}-{self.trace_id}-{self.span_id}-{self.flags}"


@dataclass(frozen=True)
class HopContext:
    """This hop's SERVER span and the tracestate it carries on."""

    span: SpanContext
    tracestate: TraceState
    continued: bool  # False: the caller's traceparent was absent or invalid, a new trace began

    @property
    def trace_id(self) -> str:
        return self.span.trace_id

    @property
    def span_id(self) -> str:
        return self.span.span_id

    @property
    def parent_span_id(self) -> str | None:
        return self.span.parent_span_id

    def outgoing(self, parent_id: str) -> dict[str, str]:
        """Headers for a call made from the span `parent_id`: the parent-id updated, our
        tracestate member moved to the left with that position."""
        state = self.tracestate.with_first(OUR_KEY, parent_id)
        return {
            "traceparent": f"{SUPPORTED_VERSION}-{self.trace_id}-{parent_id}-{self.span.flags}",
            "tracestate": state.header(),
        }


def hop_context(traceparents: Sequence[str], tracestates: Sequence[str]) -> HopContext:
    """Process the incoming header fields as the processing model says."""
    parent = parse_traceparent(traceparents)
    if parent is None:
        # A tracestate without a valid traceparent is not parsed: it MUST be discarded.
        span = SpanContext(new_trace_id(), new_span_id(), None)
        return HopContext(span, TraceState(), continued=False)
    # Continuing the caller's trace keeps its sampled and random-trace-id flags as they came.
    span = SpanContext(parent.trace_id, new_span_id(), parent.parent_id, f"{parent.flags:02x}")
    return HopContext(span, parse_tracestate(tracestates), continued=True)


def child_of(traceparent: str | None) -> SpanContext:
    """The span of a hop whose caller sent at most this one traceparent."""
    return hop_context([traceparent] if traceparent is not None else [], []).span
