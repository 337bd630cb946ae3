"""The official W3C Trace Context test suite's cases (w3c/trace-context, test/test.py, run at
STRICT_LEVEL 2), one test each, named after the case.

The suite sends header fields to a participant and reads the headers of the call the
participant makes next. Here the participant is `hop_context` fed through the header type the
step service reads (aiohttp's case-insensitive `CIMultiDict`), and the call is
`HopContext.outgoing` with a fresh CLIENT span id, exactly as `app/service/app.py` does it;
`Received` reads that call as the next hop (and the suite's harness) does. Each docstring
quotes the case's rule and lists the header fields it sends. The last test sends some of the
same inputs over HTTP through two real step services. docs/trace-context.md maps each case to
its test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from multidict import CIMultiDict

from app.core.journeys import parse_journey
from app.core.orchestrator import open_core
from app.core.settings import LauncherKind, Settings
from app.service.trace import OUR_KEY, hop_context, new_span_id
from tests.conftest import make_settings, run
from tests.helpers import journey

ID = "12345678901234567890123456789012"  # the suite's trace-id
PARENT = "1234567890123456"  # the suite's parent-id
SAMPLED = f"00-{ID}-{PARENT}-01"
UNSAMPLED = f"00-{ID}-{PARENT}-00"  # the suite's traceparent for its tracestate cases

# What a next hop accepts (Trace Context Level 2, 3.2.2 and 3.3.1.3), written out here from the
# ABNF rather than imported: the parser under test does not judge its own output.
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_KEY = re.compile(r"[a-z0-9][a-z0-9_\-*/@]{0,255}")
_VALUE = re.compile(r"[ -+\--<>-~]{0,255}[!-+\--<>-~]")

Headers = list[tuple[str, str]]


@dataclass(frozen=True)
class Received:
    """The trace context headers of one call, as the next hop reads them."""

    trace_id: str
    parent_id: str
    flags: int
    tracestate: dict[str, str]  # in order, leftmost first

    @classmethod
    def read(cls, headers: dict[str, str]) -> Received:
        match = _TRACEPARENT.fullmatch(headers["traceparent"])
        assert match, f"not a version-00 traceparent: {headers['traceparent']!r}"
        state: dict[str, str] = {}
        for member in headers["tracestate"].split(","):
            key, eq, value = member.strip(" \t").partition("=")
            assert eq and _KEY.fullmatch(key) and _VALUE.fullmatch(value), member
            assert key not in state, f"key {key!r} sent twice"
            state[key] = value
        assert len(state) <= 32
        trace_id, parent_id, flags = match.groups()
        assert trace_id != "0" * 32 and parent_id != "0" * 16
        return cls(trace_id, parent_id, int(flags, 16), state)

    def vendors(self) -> dict[str, str]:
        """The tracestate without our own member (which every call carries)."""
        return {k: v for k, v in self.tracestate.items() if k != OUR_KEY}


def calls(headers: Headers, count: int = 1) -> list[Received]:
    """The participant gets `headers` and makes `count` calls, each from a CLIENT span of its
    own, as the suite's callbacks ask for."""
    fields: CIMultiDict[str] = CIMultiDict(headers)
    ctx = hop_context(fields.getall("traceparent", []), fields.getall("tracestate", []))
    return [Received.read(ctx.outgoing(new_span_id())) for _ in range(count)]


def call(headers: Headers) -> Received:
    return calls(headers)[0]


def restarted(got: Received, *old: str) -> bool:
    return got.trace_id not in (ID, *old)


# -- TraceContextTest: traceparent -----------------------------------------------------------


def test_both_traceparent_and_tracestate_missing() -> None:
    """'harness sends a request without traceparent or tracestate / expects a valid
    traceparent from the output header'. Sends: nothing."""
    got = call([])
    assert len(got.trace_id) == 32 and got.vendors() == {}


def test_traceparent_included_tracestate_missing() -> None:
    """'expects a valid traceparent from the output header, with the same trace_id but
    different parent_id'. Sends: traceparent 00-1234…9012-1234567890123456-01."""
    got = call([("traceparent", SAMPLED)])
    assert got.trace_id == ID and got.parent_id != PARENT


def test_traceparent_duplicated() -> None:
    """'harness sends a request with two traceparent headers / expects a valid traceparent from
    the output header, with a newly generated trace_id'. Sends: traceparent
    00-…9011-1234567890123456-01 and traceparent 00-…9012-1234567890123456-01."""
    other = f"00-{ID[:-1]}1-{PARENT}-01"
    got = call([("traceparent", other), ("traceparent", SAMPLED)])
    assert restarted(got, ID[:-1] + "1")


@pytest.mark.parametrize("name", ["trace-parent", "trace.parent"])
def test_traceparent_header_name(name: str) -> None:
    """'harness sends an invalid traceparent using wrong names / expects ... a newly generated
    trace_id'. Sends: trace-parent / trace.parent 00-1234…9012-1234567890123456-01."""
    assert restarted(call([(name, SAMPLED)]))


@pytest.mark.parametrize("name", ["TraceParent", "TrAcEpArEnT", "TRACEPARENT"])
def test_traceparent_header_name_valid_casing(name: str) -> None:
    """'harness sends a valid traceparent using different combination of casing / expects a
    valid traceparent from the output header' (with the same trace_id). Sends: TraceParent,
    TrAcEpArEnT, TRACEPARENT 00-1234…9012-1234567890123456-01."""
    assert call([(name, SAMPLED)]).trace_id == ID


@pytest.mark.parametrize("suffix", [".", "-what-the-future-will-be-like"])
def test_traceparent_version_0x00(suffix: str) -> None:
    """'harness sends an invalid traceparent with extra trailing characters / expects ... a
    newly generated trace_id'. Sends: 00-…-01. and 00-…-01-what-the-future-will-be-like."""
    assert restarted(call([("traceparent", SAMPLED + suffix)]))


@pytest.mark.parametrize(
    ("value", "continued"),
    [
        (f"cc-{ID}-{PARENT}-01", True),
        (f"cc-{ID}-{PARENT}-01-what-the-future-will-be-like", True),
        (f"cc-{ID}-{PARENT}-01.what-the-future-will-be-like", False),
    ],
)
def test_traceparent_version_0xcc(value: str, continued: bool) -> None:
    """'harness sends an valid traceparent with future version 204 (0xcc) / expects a valid
    traceparent from the output header with the same trace_id' (and a new one when a dot, not
    a dash, follows the flags). Sends: cc-…-01, cc-…-01-what-the-future-will-be-like,
    cc-…-01.what-the-future-will-be-like."""
    got = call([("traceparent", value)])
    assert (got.trace_id == ID) is continued


def test_traceparent_version_0xff() -> None:
    """'harness sends an invalid traceparent with version 255 (0xff) / expects ... a newly
    generated trace_id'. Sends: ff-1234…9012-1234567890123456-01."""
    assert restarted(call([("traceparent", f"ff-{ID}-{PARENT}-01")]))


@pytest.mark.parametrize("version", [".0", "0."])
def test_traceparent_version_illegal_characters(version: str) -> None:
    """'harness sends an invalid traceparent with illegal characters in version / expects ... a
    newly generated trace_id'. Sends: .0-…-01 and 0.-…-01."""
    assert restarted(call([("traceparent", f"{version}-{ID}-{PARENT}-01")]))


@pytest.mark.parametrize("version", ["000", "0000"])
def test_traceparent_version_too_long(version: str) -> None:
    """'harness sends an invalid traceparent with version more than 2 HEXDIG / expects ... a
    newly generated trace_id'. Sends: 000-…-01 and 0000-…-01."""
    assert restarted(call([("traceparent", f"{version}-{ID}-{PARENT}-01")]))


def test_traceparent_version_too_short() -> None:
    """'harness sends an invalid traceparent with version less than 2 HEXDIG / expects ... a
    newly generated trace_id'. Sends: 0-1234…9012-1234567890123456-01."""
    assert restarted(call([("traceparent", f"0-{ID}-{PARENT}-01")]))


def test_traceparent_trace_id_all_zero() -> None:
    """'harness sends an invalid traceparent with trace_id = 00000000000000000000000000000000 /
    expects ... a newly generated trace_id'. Sends: 00-000…000-1234567890123456-01."""
    got = call([("traceparent", f"00-{'0' * 32}-{PARENT}-01")])
    assert got.trace_id != "0" * 32


@pytest.mark.parametrize("trace_id", ["." + ID[1:], ID[:-1] + "."])
def test_traceparent_trace_id_illegal_characters(trace_id: str) -> None:
    """'harness sends an invalid traceparent with illegal characters in trace_id / expects ... a
    newly generated trace_id'. Sends: 00-.234…9012-…-01 and 00-1234…901.-…-01."""
    assert restarted(call([("traceparent", f"00-{trace_id}-{PARENT}-01")]))


def test_traceparent_trace_id_too_long() -> None:
    """'harness sends an invalid traceparent with trace_id more than 32 HEXDIG / expects ... a
    newly generated trace_id' (neither the first nor the last 32 of the 33 digits). Sends:
    00-123456789012345678901234567890123-1234567890123456-01."""
    got = call([("traceparent", f"00-{ID}3-{PARENT}-01")])
    assert restarted(got, ID[1:] + "3")


def test_traceparent_trace_id_too_short() -> None:
    """'harness sends an invalid traceparent with trace_id less than 32 HEXDIG / expects ... a
    newly generated trace_id'. Sends: 00-1234567890123456789012345678901-…-01."""
    got = call([("traceparent", f"00-{ID[:-1]}-{PARENT}-01")])
    assert not got.trace_id.startswith(ID[:-1])


def test_traceparent_parent_id_all_zero() -> None:
    """'harness sends an invalid traceparent with parent_id = 0000000000000000 / expects ... a
    newly generated trace_id'. Sends: 00-1234…9012-0000000000000000-01."""
    assert restarted(call([("traceparent", f"00-{ID}-{'0' * 16}-01")]))


@pytest.mark.parametrize("parent_id", ["." + PARENT[1:], PARENT[:-1] + "."])
def test_traceparent_parent_id_illegal_characters(parent_id: str) -> None:
    """'harness sends an invalid traceparent with illegal characters in parent_id / expects ...
    a newly generated trace_id'. Sends: 00-…-.234567890123456-01 and 00-…-123456789012345.-01."""
    assert restarted(call([("traceparent", f"00-{ID}-{parent_id}-01")]))


def test_traceparent_parent_id_too_long() -> None:
    """'harness sends an invalid traceparent with parent_id more than 16 HEXDIG / expects ... a
    newly generated trace_id'. Sends: 00-1234…9012-12345678901234567-01."""
    assert restarted(call([("traceparent", f"00-{ID}-{PARENT}7-01")]))


def test_traceparent_parent_id_too_short() -> None:
    """'harness sends an invalid traceparent with parent_id less than 16 HEXDIG / expects ... a
    newly generated trace_id'. Sends: 00-1234…9012-123456789012345-01."""
    assert restarted(call([("traceparent", f"00-{ID}-{PARENT[:-1]}-01")]))


@pytest.mark.parametrize("flags", [".0", "0."])
def test_traceparent_trace_flags_illegal_characters(flags: str) -> None:
    """'harness sends an invalid traceparent with illegal characters in trace_flags / expects
    ... a newly generated trace_id'. Sends: 00-…-.0 and 00-…-0.."""
    assert restarted(call([("traceparent", f"00-{ID}-{PARENT}-{flags}")]))


def test_traceparent_trace_flags_too_long() -> None:
    """'harness sends an invalid traceparent with trace_flags more than 2 HEXDIG / expects ... a
    newly generated trace_id'. Sends: 00-1234…9012-1234567890123456-001."""
    assert restarted(call([("traceparent", f"00-{ID}-{PARENT}-001")]))


def test_traceparent_trace_flags_too_short() -> None:
    """'harness sends an invalid traceparent with trace_flags less than 2 HEXDIG / expects ... a
    newly generated trace_id'. Sends: 00-1234…9012-1234567890123456-1."""
    assert restarted(call([("traceparent", f"00-{ID}-{PARENT}-1")]))


@pytest.mark.parametrize("ows", [(" ", ""), ("\t", ""), ("", " "), ("", "\t"), ("\t ", " \t")])
def test_traceparent_ows_handling(ows: tuple[str, str]) -> None:
    """'harness sends an valid traceparent with heading and trailing OWS / expects a valid
    traceparent from the output header' (with the same trace_id). Sends: the traceparent with
    ' ', '\\t' before it, ' ', '\\t' after it, and '\\t ' before and ' \\t' after it."""
    before, after = ows
    assert call([("traceparent", before + SAMPLED + after)]).trace_id == ID


# -- TraceContextTest: tracestate ------------------------------------------------------------


def test_tracestate_included_traceparent_missing() -> None:
    """'harness sends a request with tracestate but without traceparent / expects a valid
    traceparent from the output header / expects the tracestate to be discarded' (the two
    answers have as many members). Sends: tracestate foo=1, then tracestate foo=1,bar=2."""
    one, two = call([("tracestate", "foo=1")]), call([("tracestate", "foo=1,bar=2")])
    assert len(one.tracestate) == len(two.tracestate)
    assert one.vendors() == two.vendors() == {}


def test_tracestate_included_traceparent_included() -> None:
    """'harness sends a request with both tracestate and traceparent / expects a valid
    traceparent from the output header with the same trace_id / expects the tracestate to be
    inherited'. Sends: traceparent 00-…-00, tracestate foo=1,bar=2."""
    got = call([("traceparent", UNSAMPLED), ("tracestate", "foo=1,bar=2")])
    assert got.trace_id == ID and got.vendors() == {"foo": "1", "bar": "2"}


@pytest.mark.parametrize("name", ["trace-state", "trace.state"])
def test_tracestate_header_name(name: str) -> None:
    """'harness sends an invalid tracestate using wrong names / expects the tracestate to be
    discarded'. Sends: traceparent 00-…-00 with trace-state / trace.state foo=1."""
    assert "foo" not in call([("traceparent", UNSAMPLED), (name, "foo=1")]).tracestate


@pytest.mark.parametrize("name", ["TraceState", "TrAcEsTaTe", "TRACESTATE"])
def test_tracestate_header_name_valid_casing(name: str) -> None:
    """'harness sends a valid tracestate using different combination of casing / expects the
    tracestate to be inherited'. Sends: traceparent 00-…-00 with TraceState / TrAcEsTaTe /
    TRACESTATE foo=1."""
    assert call([("traceparent", UNSAMPLED), (name, "foo=1")]).tracestate["foo"] == "1"


@pytest.mark.parametrize("fields", [[""], ["foo=1", ""], ["", "foo=1"]])
def test_tracestate_empty_header(fields: list[str]) -> None:
    """'harness sends a request with empty tracestate header / expects the empty tracestate to
    be discarded' (an empty field next to foo=1 keeps foo=1, and the trace_id is kept). Sends:
    traceparent 00-…-00 with tracestate ''; with foo=1 then ''; with '' then foo=1."""
    got = call([("traceparent", UNSAMPLED), *(("tracestate", f) for f in fields)])
    assert got.trace_id == ID
    assert got.vendors() == ({"foo": "1"} if "foo=1" in fields else {})


def test_tracestate_multiple_headers_different_keys() -> None:
    """'harness sends a request with multiple tracestate headers, each contains different set of
    keys / expects a combined tracestate' (foo=1, bar=2, rojo=1, congo=2, baz=3 in that order).
    Sends: traceparent 00-…-00, tracestate foo=1,bar=2 / rojo=1,congo=2 / baz=3."""
    got = call(
        [
            ("traceparent", UNSAMPLED),
            ("tracestate", "foo=1,bar=2"),
            ("tracestate", "rojo=1,congo=2"),
            ("tracestate", "baz=3"),
        ]
    )
    assert got.trace_id == ID
    assert list(got.vendors().items()) == [
        ("foo", "1"),
        ("bar", "2"),
        ("rojo", "1"),
        ("congo", "2"),
        ("baz", "3"),
    ]


@pytest.mark.parametrize(
    "fields", [["foo=1,foo=1"], ["foo=1,foo=2"], ["foo=1", "foo=1"], ["foo=1", "foo=2"]]
)
def test_tracestate_duplicated_keys(fields: list[str]) -> None:
    """'harness sends a request with an invalid tracestate header with duplicated keys / expects
    the tracestate to be inherited, and the duplicated keys to be either kept as-is or one of
    them to be discarded' (the trace_id kept). Sends: traceparent 00-…-00 with tracestate
    foo=1,foo=1; foo=1,foo=2; foo=1 and foo=1 as two fields; foo=1 and foo=2 as two fields.
    We keep the leftmost entry, the most recent position."""
    got = call([("traceparent", UNSAMPLED), *(("tracestate", f) for f in fields)])
    assert got.trace_id == ID and got.vendors() == {"foo": "1"}


KEY_WITHOUT_VENDOR = "abcdefghijklmnopqrstuvwxyz0123456789_-*/"
KEY_WITH_VENDOR = KEY_WITHOUT_VENDOR + "@a-z0-9_-*/"
ALL_VALUE_CHARS = "".join(map(chr, [*range(0x20, 0x2C), *range(0x2D, 0x3D), *range(0x3E, 0x7F)]))


@pytest.mark.parametrize("key", [KEY_WITHOUT_VENDOR, KEY_WITH_VENDOR])
def test_tracestate_all_allowed_characters(key: str) -> None:
    """'harness sends a request with a valid tracestate header with all legal characters /
    expects the tracestate to be inherited'. Sends: traceparent 00-…-00, tracestate
    <key>=<value> with the key a-z0-9_-*/ (then the same + '@a-z0-9_-*/') and the value every
    character of 0x20-0x2B, 0x2D-0x3C, 0x3E-0x7E (it starts with a space)."""
    got = call([("traceparent", UNSAMPLED), ("tracestate", f"{key}={ALL_VALUE_CHARS}")])
    assert got.tracestate[key] == ALL_VALUE_CHARS


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("foo=1 \t , \t bar=2, \t baz=3", {"foo": "1", "bar": "2", "baz": "3"}),
        ("foo=1\t \t,\t \tbar=2,\t \tbaz=3", {"foo": "1", "bar": "2", "baz": "3"}),
        (" foo=1", {"foo": "1"}),
        ("\tfoo=1", {"foo": "1"}),
        ("foo=1 ", {"foo": "1"}),
        ("foo=1\t", {"foo": "1"}),
        ("\t foo=1 \t", {"foo": "1"}),
    ],
)
def test_tracestate_ows_handling(field: str, expected: dict[str, str]) -> None:
    """'harness sends a request with a valid tracestate header with OWS / expects the
    tracestate to be inherited' (the trace_id kept). Sends: traceparent 00-…-00 with the
    tracestate values listed in the parameters."""
    got = call([("traceparent", UNSAMPLED), ("tracestate", field)])
    assert got.trace_id == ID and got.vendors() == expected


@pytest.mark.parametrize(
    ("field", "key"), [("foo =1", "foo "), ("FOO=1", "FOO"), ("foo.bar=1", "foo.bar")]
)
def test_tracestate_key_illegal_characters(field: str, key: str) -> None:
    """'harness sends a request with an invalid tracestate header with illegal key / expects
    the tracestate to be discarded'. Sends: traceparent 00-…-00 with tracestate foo =1, FOO=1,
    foo.bar=1."""
    got = call([("traceparent", UNSAMPLED), ("tracestate", field)])
    assert key not in got.tracestate and got.vendors() == {}


@pytest.mark.parametrize(
    ("field", "inherited"),
    [
        ("foo@=1,bar=2", {"foo@": "1", "bar": "2"}),
        ("@foo=1,bar=2", {}),
        ("foo@@bar=1,bar=2", {"foo@@bar": "1", "bar": "2"}),
        ("foo@bar@baz=1,bar=2", {"foo@bar@baz": "1", "bar": "2"}),
    ],
)
def test_tracestate_key_illegal_vendor_format(field: str, inherited: dict[str, str]) -> None:
    """Level 2 makes '@' a key character anywhere but first ('key = ( lcalpha / DIGIT ) 0*255
    ( keychar )', 'keychar = lcalpha / DIGIT / "_" / "-"/ "*" / "/" / "@"'), and the suite at
    level 2 reads it so: foo@ and foo@@bar are valid keys and inherited with bar; a key that
    starts with '@' is not a key, and the tracestate is discarded (bar with it). Sends:
    traceparent 00-…-00 with tracestate foo@=1,bar=2; @foo=1,bar=2; foo@@bar=1,bar=2;
    foo@bar@baz=1,bar=2."""
    got = call([("traceparent", UNSAMPLED), ("tracestate", field)])
    assert got.vendors() == inherited


def _bars(first: int, last: int) -> str:
    return ",".join(f"bar{i:02d}={i:02d}" for i in range(first, last + 1))


@pytest.mark.parametrize(("last", "inherited"), [(32, True), (33, False)])
def test_tracestate_member_count_limit(last: int, inherited: bool) -> None:
    """'harness sends a request with a valid tracestate header with 32 list members / expects
    the tracestate to be inherited' (32 members, bar01=01 among them) / 'harness sends a
    request with an invalid tracestate header with 33 list members / expects the tracestate to
    be discarded'. Sends: traceparent 00-…-00 with tracestate bar01=01..bar10=10 /
    bar11..bar20 / bar21..bar30 / bar31,bar32 (then bar31,bar32,bar33)."""
    fields = [_bars(1, 10), _bars(11, 20), _bars(21, 30), _bars(31, last)]
    got = call([("traceparent", UNSAMPLED), *(("tracestate", f) for f in fields)])
    if inherited:
        # Ours goes first and the list stays at 32: the rightmost member makes room.
        assert got.tracestate["bar01"] == "01" and len(got.tracestate) == 32
    else:
        assert "bar01" not in got.tracestate and got.vendors() == {}


@pytest.mark.parametrize(
    ("key", "inherited"),
    [
        ("z" * 256, True),
        ("z" * 257, False),
        ("t" * 241 + "@" + "v" * 14, True),
        ("t" * 242 + "@v", True),
        ("t@" + "v" * 15, True),
    ],
)
def test_tracestate_key_length_limit(key: str, inherited: bool) -> None:
    """A key holds 'up to 256 characters' (Level 2: 'key = ( lcalpha / DIGIT ) 0*255
    ( keychar )', '@' one of them, no separate limits for the parts around it). The suite sends
    keys of 256 and 257 characters and keys with 14/15 characters after the '@' and 241/242
    before it: every key within 256 characters is kept, with the other field's foo=1; a
    257-character key makes the whole tracestate unparseable and foo=1 goes with it. Sends:
    traceparent 00-…-00, tracestate foo=1, tracestate <key>=1."""
    got = call([("traceparent", UNSAMPLED), ("tracestate", "foo=1"), ("tracestate", f"{key}=1")])
    if inherited:
        assert got.vendors() == {"foo": "1", key: "1"}
    else:
        assert "foo" not in got.tracestate and got.vendors() == {}


@pytest.mark.parametrize("field", ["foo=bar=baz", "foo=,bar=3"])
def test_tracestate_value_illegal_characters(field: str) -> None:
    """'harness sends a request with an invalid tracestate header with illegal value format /
    expects the tracestate to be discarded': an '=' in a value, or an empty value, and the
    whole list goes (bar=3 too). Sends: traceparent 00-…-00 with tracestate foo=bar=baz, then
    foo=,bar=3."""
    got = call([("traceparent", UNSAMPLED), ("tracestate", field)])
    assert "foo" not in got.tracestate and "bar" not in got.tracestate
    assert got.vendors() == {}


# -- AdvancedTest ----------------------------------------------------------------------------


def test_multiple_requests_with_valid_traceparent() -> None:
    """'harness sends a valid traceparent and asks vendor service to callback multiple times /
    expects the trace_id to be inherited by all the callbacks' (three callbacks, one trace_id,
    three parent_ids). Sends: traceparent 00-1234…9012-1234567890123456-01."""
    got = calls([("traceparent", SAMPLED)], 3)
    assert {g.trace_id for g in got} == {ID} and len({g.parent_id for g in got}) == 3


def test_multiple_requests_without_traceparent() -> None:
    """'harness asks vendor service to callback multiple times / expects a different parent_id
    each time'. Sends: nothing."""
    assert len({g.parent_id for g in calls([], 3)}) == 3


def test_multiple_requests_with_illegal_traceparent() -> None:
    """'harness sends an invalid traceparent and asks vendor service to callback multiple times
    / expects new trace_id(s) generated' (never the all-zero one; three parent_ids). Sends:
    traceparent 00-00000000000000000000000000000000-1234567890123456-01."""
    got = calls([("traceparent", f"00-{'0' * 32}-{PARENT}-01")], 3)
    assert "0" * 32 not in {g.trace_id for g in got} and len({g.parent_id for g in got}) == 3


# -- over the wire -----------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path, port_range: range) -> Settings:
    return make_settings(LauncherKind.FORK, tmp_path, port_range)


# (suite case, header fields sent to step 1, continued?, flags step 1 sends on)
WIRE_CASES: list[tuple[str, Headers, bool, str]] = [
    ("test_traceparent_header_name_valid_casing", [("TrAcEpArEnT", SAMPLED)], True, "01"),
    ("test_traceparent_ows_handling", [("traceparent", f"\t {SAMPLED} \t")], True, "01"),
    (
        "test_traceparent_version_0xcc",
        [("traceparent", f"cc-{ID}-{PARENT}-01-what-the-future-will-be-like")],
        True,
        "01",
    ),
    (
        "test_traceparent_duplicated",
        [("traceparent", SAMPLED), ("traceparent", SAMPLED)],
        False,
        "03",
    ),
    (
        "test_traceparent_trace_id_all_zero",
        [("traceparent", f"00-{'0' * 32}-{PARENT}-01")],
        False,
        "03",
    ),
    ("test_traceparent_header_name", [("trace-parent", SAMPLED)], False, "03"),
    # The three tracestate cases: the tracestate is discarded, the trace is not.
    (
        "test_tracestate_value_illegal_characters",
        [("traceparent", UNSAMPLED), ("tracestate", "foo=,bar=3")],
        True,
        "00",
    ),
    (
        "test_tracestate_key_length_limit",
        [("traceparent", UNSAMPLED), ("tracestate", "foo=1"), ("tracestate", "z" * 257 + "=1")],
        True,
        "00",
    ),
    (
        "test_tracestate_key_illegal_vendor_format",
        [("traceparent", UNSAMPLED), ("tracestate", "@foo=1,bar=2")],
        True,
        "00",
    ),
    # Level 2: a caller's random-trace-id flag is kept, unknown flags are not.
    ("random-trace-id flag", [("traceparent", f"00-{ID}-{PARENT}-03")], True, "03"),
    ("random-trace-id flag", [("traceparent", f"00-{ID}-{PARENT}-fe")], True, "02"),
]


def test_suite_inputs_over_the_wire(settings: Settings) -> None:
    """Some of the suite's inputs, sent as raw header fields over HTTP to the first of two real
    step services. What arrives at the second: its answer names the trace-id and parent-id of
    the traceparent it got (the first one's CLIENT span), and the first answers with its own
    traceparent, whose flags are the ones it sends on (both come from one SpanContext)."""

    async def scenario() -> None:
        async with open_core(settings) as core:
            chain = journey("Suite Co", "AService", "BService")
            result = await core.run_journey(chain)
            assert result.ok, result.error
            running = core.chain_for(parse_journey(chain))
            async with ClientSession() as http:
                for case, headers, continued, flags in WIRE_CASES:
                    fields: CIMultiDict[str] = CIMultiDict(headers)
                    body, signed, _ = running.request({"id": "suite"})
                    for name, value in signed.items():
                        fields.add(name, value)
                    async with http.post(running.first_url, data=body, headers=fields) as resp:
                        assert resp.status == 200, case
                        a: dict[str, Any] = await resp.json()
                        own = resp.headers.getall("traceparent")
                    b = a["downstream"]
                    assert b["status"] == "ok", case
                    # What step 2 received: the same trace, the parent-id of step 1's call.
                    assert b["traceId"] == a["traceId"], case
                    assert b["parentSpanId"] == a["span"]["client"]["spanId"] != a["spanId"], case
                    assert own == [f"00-{a['traceId']}-{a['spanId']}-{flags}"], case
                    if continued:
                        assert a["traceId"] == ID and a["parentSpanId"] == PARENT, case
                    else:
                        assert a["traceId"] not in (ID, "0" * 32), case
                        assert a["parentSpanId"] is None, case

    run(scenario())
