"""W3C Trace Context Level 2 (https://www.w3.org/TR/trace-context-2/); the rules Level 1 set
and Level 2 keeps are quoted with their Level 1 section numbers.

Each test quotes the sentence of the specification (or of RFC 7230, which it cites) that it
checks; where the specification leaves a choice, the choice is the official test suite's
(tests/standards/test_w3c_suite.py has one test per suite case). The unit tests drive the
parser; the last test sends raw header fields through a real two-step chain and reads what the
second service put on the wire.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web
from multidict import CIMultiDict

from app.core.chain import Chain
from app.core.journeys import parse_journey
from app.core.orchestrator import open_core
from app.core.settings import LauncherKind, Settings
from app.service.protocol import Hop, hop_url
from app.service.trace import (
    OUR_KEY,
    SpanContext,
    TraceState,
    hop_context,
    new_span_id,
    new_trace_id,
    parse_traceparent,
    parse_tracestate,
)
from tests.conftest import make_settings, run
from tests.helpers import journey

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
VALID = f"00-{TRACE}-{PARENT}-01"


def members(n: int, start: int = 1) -> str:
    return ",".join(f"bar{i:02d}={i:02d}" for i in range(start, start + n))


# -- traceparent ---------------------------------------------------------------------------


def test_valid_version_00_is_continued() -> None:
    """'Value = 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' (a valid traceparent
    when the caller sampled this request)."""
    parent = parse_traceparent([VALID])
    assert parent is not None
    assert (parent.trace_id, parent.parent_id, parent.sampled) == (TRACE, PARENT, True)
    assert parse_traceparent([f"00-{TRACE}-{PARENT}-00"]).sampled is False  # type: ignore[union-attr]


@pytest.mark.parametrize("ows", [" ", "\t", " \t "])
def test_optional_whitespace_around_the_field_value_is_not_part_of_it(ows: str) -> None:
    """RFC 7230 §3.2.4: 'The field value does not include any leading or trailing whitespace:
    OWS occurring before the first non-whitespace octet of the field value or after the last
    non-whitespace octet of the field value ought to be excluded by parsers'."""
    assert parse_traceparent([ows + VALID + ows]) is not None


def test_absent_traceparent_starts_a_new_trace() -> None:
    """4.2: 'Because the traceparent header is not received, the vendor creates a new trace-id
    and parent-id that represents the current request.'"""
    ctx = hop_context([], [])
    assert not ctx.continued and ctx.parent_span_id is None
    assert len(ctx.trace_id) == 32 and len(ctx.span_id) == 16


def test_duplicated_traceparent_starts_a_new_trace() -> None:
    """3.3.1.1 makes tracestate, and only tracestate, a field that 'MAY be sent or received as
    multiple header fields'; RFC 7230 §3.2.2: 'A sender MUST NOT generate multiple header fields
    with the same field name in a message unless either the entire field value for that header
    field is defined as a comma-separated list'. Two traceparent fields combine to 'a,b',
    which is no valid value."""
    assert parse_traceparent([VALID, VALID]) is None
    other = f"00-{'1' * 32}-{'2' * 16}-01"
    ctx = hop_context([VALID, other], ["congo=t61rcWkgMzE"])
    assert not ctx.continued and ctx.trace_id not in (TRACE, "1" * 32)


@pytest.mark.parametrize(
    "value",
    [
        f"00-{TRACE[:-1]}g-{PARENT}-01",  # trace-id
        f"00-{TRACE}-{PARENT[:-1]}.-01",  # parent-id
        f"00-{TRACE}-{PARENT}-0.",  # trace-flags
        f"00-{TRACE}-{PARENT}-.0",
        f"0g-{TRACE}-{PARENT}-01",  # version
        f"00-{TRACE[:-1]}é-{PARENT}-01",  # not even ASCII
        f"00_{TRACE}_{PARENT}_01",  # delimiters
        f"00-{TRACE}-{PARENT}-01\x00",
    ],
)
def test_illegal_characters_start_a_new_trace(value: str) -> None:
    """3.2.2.3: 'If the trace-id value is invalid (for example if it contains non-allowed
    characters or all zeros), vendors MUST ignore the traceparent.' The grammar allows only
    HEXDIGLC = DIGIT / "a" / "b" / "c" / "d" / "e" / "f", and "-" as the delimiter."""
    assert parse_traceparent([value]) is None
    assert not hop_context([value], ["congo=t61rcWkgMzE"]).continued


@pytest.mark.parametrize(
    "value",
    [
        f"00-{TRACE.upper()}-{PARENT}-01",
        f"00-{TRACE}-{PARENT.upper()}-01",
        f"00-{TRACE}-{PARENT}-0A",
        f"0A-{TRACE}-{PARENT}-01",
        VALID.upper(),
    ],
)
def test_uppercase_hex_starts_a_new_trace(value: str) -> None:
    """3.2.2.4: 'Vendors MUST ignore the traceparent when the parent-id is invalid (for
    example, if it contains non-lowercase hex characters).' Every field is HEXDIGLC, the
    'lowercase hex character'."""
    assert parse_traceparent([value]) is None


@pytest.mark.parametrize(
    "value",
    [
        f"00-{TRACE[:-1]}-{PARENT}-01",
        f"00-{TRACE}0-{PARENT}-01",
        f"00-{TRACE}-{PARENT[:-1]}-01",
        f"00-{TRACE}-{PARENT}0-01",
        f"00-{TRACE}-{PARENT}-1",
        f"00-{TRACE}-{PARENT}-011",
        f"0-{TRACE}-{PARENT}-01",
        f"000-{TRACE}-{PARENT}-01",
        f"00-{TRACE}-{PARENT}-01-",
        f"00-{TRACE}-{PARENT}-01-what-the-future-will-be-like",
        "",
        "00",
    ],
)
def test_wrong_lengths_start_a_new_trace(value: str) -> None:
    """3.2.2.2: 'version-format = trace-id "-" parent-id "-" trace-flags' with
    'trace-id = 32HEXDIGLC', 'parent-id = 16HEXDIGLC', 'trace-flags = 2HEXDIGLC' and
    'version = 2HEXDIGLC'; version 00 has exactly these four fields."""
    assert parse_traceparent([value]) is None


@pytest.mark.parametrize(
    "value",
    [f"00-{'0' * 32}-{PARENT}-01", f"00-{TRACE}-{'0' * 16}-01", f"00-{'0' * 32}-{'0' * 16}-01"],
)
def test_all_zero_ids_start_a_new_trace(value: str) -> None:
    """3.2.2.3: 'All bytes as zero (00000000000000000000000000000000) is considered an invalid
    value.' 3.2.2.4: 'All bytes as zero (0000000000000000) is considered an invalid value.'"""
    assert parse_traceparent([value]) is None


def test_version_ff_is_invalid() -> None:
    """3.2.2.1: 'Version ff is invalid.'"""
    assert parse_traceparent([f"ff-{TRACE}-{PARENT}-01"]) is None
    assert parse_traceparent([f"ff-{TRACE}-{PARENT}-01-future"]) is None


@pytest.mark.parametrize(
    "value",
    [
        f"01-{TRACE}-{PARENT}-01",
        f"cc-{TRACE}-{PARENT}-01-what-the-future-will-be-like",
        f"fe-{TRACE}-{PARENT}-01-",
        f"02-{TRACE}-{PARENT}-01-x-y-z",
    ],
)
def test_higher_version_is_parsed_by_its_first_four_fields(value: str) -> None:
    """3.2.4: 'If a higher version is detected, the implementation SHOULD try to parse it ...
    Parse the sampled bit of flags (2 characters from the third dash). Vendors MUST check that
    the 2 characters are either the end of the string or a dash.' and 'Vendors MUST use these
    fields to construct the new traceparent field according to the highest version of the
    specification known to the implementation (in this specification it is 00).'"""
    ctx = hop_context([value], [])
    assert ctx.continued and ctx.trace_id == TRACE and ctx.parent_span_id == PARENT
    assert ctx.outgoing("1" * 16)["traceparent"] == f"00-{TRACE}-{'1' * 16}-01"


@pytest.mark.parametrize(
    "value",
    [
        f"cc-{TRACE}-{PARENT}-01.what-the-future-will-not-be-like",
        f"cc-{TRACE}-{PARENT}-0",  # shorter than 55 characters
        f"cc-{TRACE}-{PARENT}",
        f"cc-{TRACE[:-1]}x-{PARENT}-01-future",
        f"cc-{TRACE}-{'0' * 16}-01-future",
        f"cc-{TRACE}-{PARENT.upper()}-01-future",
    ],
)
def test_higher_version_that_does_not_parse_starts_a_new_trace(value: str) -> None:
    """4.3 step 2.2: 'If parsing fails, the vendor creates a new traceparent header and deletes
    the tracestate.' 3.2.4: 'If the size of the header is shorter than 55 characters, the vendor
    should not parse the header and should restart the trace.'"""
    ctx = hop_context([value], ["congo=t61rcWkgMzE"])
    assert not ctx.continued and ctx.tracestate == TraceState()


def test_unknown_flags_are_sent_as_zero() -> None:
    """Other Flags: 'The behavior of other flags, such as (00000100) is not defined and is
    reserved for future use. Vendors MUST set those to zero.' Processing model: 'Vendors will
    set all unparsed / unknown trace-flags to 0 on outgoing requests.' Version 00 knows two
    flags at Level 2, sampled (0x01) and random-trace-id (0x02); a higher version is additive
    to it, so the same two are read from its flags."""
    for version, flags, out in (("00", "09", "01"), ("00", "fe", "02"), ("cc", "ff", "03")):
        ctx = hop_context([f"{version}-{TRACE}-{PARENT}-{flags}"], [])
        assert ctx.outgoing(PARENT)["traceparent"].endswith(f"-{out}")


@pytest.mark.parametrize("flags", ["00", "01", "02", "03"])
def test_a_continued_trace_keeps_the_random_trace_id_flag(flags: str) -> None:
    """Level 2, Random Trace ID Flag: 'The second least significant bit of the trace-flags field
    denotes the random-trace-id flag.' A participant that continues a trace started upstream,
    using the trace-id of the incoming traceparent in its own, 'MUST set the random-trace-id
    flag ... to the same value that was found in the incoming traceparent header'. The sampled
    flag goes on as it came too: every hop of ours records, and 'If a component needs to make
    a recording decision - it SHOULD respect the sampled flag value.'"""
    ctx = hop_context([f"00-{TRACE}-{PARENT}-{flags}"], [])
    assert ctx.span.flags == flags
    assert ctx.outgoing("1" * 16)["traceparent"] == f"00-{TRACE}-{'1' * 16}-{flags}"


@pytest.mark.parametrize("parents", [[], [f"00-{'0' * 32}-{PARENT}-00"], [VALID, VALID]])
def test_a_new_trace_is_sampled_and_marked_random(parents: list[str]) -> None:
    """Level 2: when a participant starts or restarts a trace, 'If that flag is set, at least
    the right-most 7 bytes of the trace-id MUST be selected randomly (or pseudo-randomly) with
    uniform distribution over the interval [0..2^56-1]', and when they are, the flag SHOULD be
    set. Our trace-ids are 16 bytes from `secrets`; every hop records, so sampled is set too.
    The panel's own root span (app/core/simulation.py) is made the same way."""
    ctx = hop_context(parents, [])
    assert not ctx.continued and ctx.span.flags == "03"
    assert ctx.outgoing("1" * 16)["traceparent"].endswith("-03")
    assert SpanContext(new_trace_id(), new_span_id(), None).traceparent().endswith("-03")


def test_the_parent_id_is_updated_and_nothing_else() -> None:
    """3.4: 'Update parent-id: The value of the parent-id field can be set to the new value
    representing the ID of the current operation.' ... 'Vendors MUST NOT make any other
    mutations to the traceparent header.'"""
    ctx = hop_context([VALID], [])
    assert ctx.parent_span_id == PARENT and ctx.span_id != PARENT
    assert ctx.outgoing(ctx.span_id)["traceparent"] == f"00-{TRACE}-{ctx.span_id}-01"


# -- tracestate ----------------------------------------------------------------------------


def test_tracestate_is_dropped_without_a_valid_traceparent() -> None:
    """3.3: 'If the vendor failed to parse traceparent, it MUST NOT attempt to parse
    tracestate.' 4.2: 'If a tracestate header is received without an accompanying traceparent
    header, it is invalid and MUST be discarded.'"""
    for parents in ([], [f"00-{TRACE}-{PARENT}-0x"], [VALID, VALID]):
        ctx = hop_context(parents, ["congo=t61rcWkgMzE"])
        assert ctx.tracestate == TraceState()
        assert ctx.outgoing(ctx.span_id)["tracestate"] == f"{OUR_KEY}={ctx.span_id}"


def test_multiple_tracestate_fields_are_combined_in_order() -> None:
    """3.3.1.1: 'When receiving multiple tracestate header fields, they MUST be combined into a
    single header according to RFC7230.' RFC 7230 §3.2.2: 'the order in which header fields
    with the same field name are received is therefore significant'."""
    state = parse_tracestate(["rojo=00f067aa0ba902b7", "congo=t61rcWkgMzE,a=1", "b=2"])
    assert state.header() == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,a=1,b=2"


def test_empty_and_whitespace_members_are_accepted() -> None:
    """3.3.1.1: 'Empty and whitespace-only list members are allowed. Vendors MUST accept empty
    tracestate headers' ... 'Spaces and horizontal tabs surrounding list-members are ignored.'"""
    assert parse_tracestate([""]).members == ()
    state = parse_tracestate(["", " a=1 ,, \t,\tb=2\t", " "])
    assert state.members == (("a", "1"), ("b", "2"))


@pytest.mark.parametrize(
    "key",
    [
        "a",
        "foo",
        "foo_bar-baz*qux/1",
        "1foo",  # a key may begin with a DIGIT
        "a" + "b" * 255,  # 256 characters
        "fw529a3039@dt",  # the specification's multi-tenant example
        "1tenant@system",
        "t" * 241 + "@" + "s" * 14,
        "t" * 242 + "@s",  # no limits of their own for the parts around "@"
        "t@" + "s" * 15,
        "t@1system",
        "t@s-_*/9",
        "foo@",  # "@" anywhere but first, as often as it comes
        "foo@@bar",
        "a@b@c",
        "9" + "@" * 255,
    ],
)
def test_valid_keys_are_kept(key: str) -> None:
    """Level 2, Key: 'key = ( lcalpha / DIGIT ) 0*255 ( keychar ); keychar = lcalpha / DIGIT /
    "_" / "-"/ "*" / "/" / "@"' — 'A key MUST begin with a lowercase letter or a digit and
    contain up to 256 characters including lowercase letters (a-z), digits (0-9), underscores
    (_), dashes (-), asterisks (*), forward slashes (/), and at signs (@).'"""
    assert parse_tracestate([f"x=1,{key}=v,y=2"]).members == (("x", "1"), (key, "v"), ("y", "2"))


@pytest.mark.parametrize(
    "member",
    [
        "Foo=1",  # uppercase
        "_foo=1",  # a key begins with a lowercase letter or a digit
        "@s=1",
        "foo =1",  # no whitespace between a key and "="
        "k=a\x7fb",  # DEL is no printable ASCII
        "fo.o=1",
        "a" + "b" * 256 + "=1",  # 257 characters
        "nokey",  # no "="
        "=1",
        "k=",  # value: at least one non-blank character
        "k=a=b",  # "=" excluded from values
        "k=a\tb",  # tabs are not printable ASCII
        "k=caf\u00e9",
        "k=" + "v" * 257,  # value longer than 256
    ],
)
def test_an_invalid_member_discards_the_whole_tracestate(member: str) -> None:
    """Processing model step 3: 'If the tracestate header cannot be parsed the vendor MAY
    discard the entire header. Invalid tracestate entries MAY also be discarded.' The official
    suite, at strict level 2, expects the entire header gone (its key, vendor-format, key-length
    and value cases: the valid members next to the invalid one are not inherited). The value:
    'an opaque string containing up to 256 printable ASCII characters (i.e., the range 0x20 to
    0x7E) except comma (,) and (=)'; 'value = 0*255(chr) nblk-chr'."""
    assert parse_tracestate([f"x=1,{member},y=2"]) == TraceState()
    assert parse_tracestate(["x=1", member]) == TraceState()  # across header fields too
    ctx = hop_context([VALID], ["x=1", member])
    assert ctx.continued and ctx.outgoing("1" * 16)["tracestate"] == f"{OUR_KEY}={'1' * 16}"


def test_leading_spaces_of_a_value_belong_to_it() -> None:
    """3.3.1.3.2: 'chr = %x20 / nblk-chr' (a space may start a value), 'nblk-chr = %x21-2B /
    %x2D-3C / %x3E-7E' (a value ends with a non-blank)."""
    assert parse_tracestate(["k= v v"]).members == (("k", " v v"),)


def test_a_repeated_key_keeps_its_leftmost_entry() -> None:
    """3.3.1.4: 'Only one entry per key is allowed because the entry represents that last
    position in the trace.' The leftmost entry is the most recent one (3.5)."""
    assert parse_tracestate(["a=1,b=2,a=3"]).members == (("a", "1"), ("b", "2"))


def test_thirty_two_members_are_accepted_and_thirty_three_discarded() -> None:
    """3.3.1.1: 'There can be a maximum of 32 list-members in a list.' A longer list does not
    match 'list = list-member 0*31( OWS "," OWS list-member )'; 4.3 step 3: 'If the tracestate
    header cannot be parsed the vendor MAY discard the entire header.'"""
    assert len(parse_tracestate([members(10), members(22, 11)]).members) == 32
    assert parse_tracestate([members(10), members(23, 11)]) == TraceState()


def test_our_member_goes_first_within_thirty_two() -> None:
    """4.3 step 4.2: 'Add a new key/value pair: The new key-value pair MUST be added to the
    beginning (left) of the list.' With 32 members already there, the rightmost goes (the
    list may hold no more than 32)."""
    ctx = hop_context([VALID], [members(32)])
    out = ctx.outgoing("1" * 16)["tracestate"].split(",")
    assert len(out) == 32 and out[0] == f"{OUR_KEY}={'1' * 16}"
    assert out[1:] == members(31).split(",")


def test_our_older_member_is_replaced_and_moved_left() -> None:
    """3.5: 'Update an existing value. The value for any given key can be updated. Modified
    keys SHOULD be moved to the beginning (left) of the list.' 3.3.1.4: 'vendors must
    overwrite their entry upon reentry to their tracing system.'"""
    ctx = hop_context([VALID], [f"rojo=00f067aa0ba902b7,{OUR_KEY}=old,congo=t61rcWkgMzE"])
    out = ctx.outgoing("1" * 16)["tracestate"]
    assert out == f"{OUR_KEY}={'1' * 16},rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"


def test_size_limit_removes_large_entries_first_then_from_the_end() -> None:
    """3.3.1.5: 'the vendor MUST truncate whole entries. Entries larger than 128 characters
    long SHOULD be removed first. Then entries SHOULD be removed starting from the end of
    tracestate.' We propagate 512 characters ('Vendors SHOULD propagate at least 512
    characters of a combined header. This length includes commas')."""
    big = "big=" + "x" * 130  # 134 characters
    small = [f"s{i:02d}=" + "y" * 36 for i in range(12)]  # 40 characters each
    state = TraceState((("big", "x" * 130), *(tuple(m.split("=")) for m in small)))  # type: ignore[misc]
    out = state.with_first(OUR_KEY, "1" * 16)
    header = out.header()
    assert len(header) <= 512
    assert big not in header  # the large entry went first ...
    kept = [k for k, _ in out.members]
    # ... then small ones from the end: ours (23) + 11 x 41 = 474; a 12th would make 515.
    assert kept == [OUR_KEY, *[f"s{i:02d}" for i in range(11)]]


def test_a_list_within_the_limits_is_not_truncated() -> None:
    """3.3.1.5: truncation happens only 'In a situation where tracestate needs to be truncated
    due to size limitations'."""
    state = parse_tracestate([",".join(f"k{i}=" + "v" * 200 for i in range(2))])
    assert [k for k, _ in state.with_first(OUR_KEY, "1" * 16).members] == [OUR_KEY, "k0", "k1"]


# -- real services, raw header fields --------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path, port_range: range) -> Settings:
    return make_settings(LauncherKind.FORK, tmp_path, port_range)


def test_two_step_chain_follows_the_processing_model(settings: Settings) -> None:
    """4.3 end to end: a continued trace keeps its trace-id through both services, each hop
    updates the parent-id and drops the unknown flag (0x08), the tracestate fields are
    combined, their repeated key dropped and carried on with our member first; an invalid
    traceparent restarts the trace and drops the tracestate."""
    seen: list[CIMultiDict[str]] = []

    async def capture(request: web.Request) -> web.Response:
        seen.append(CIMultiDict(request.headers))
        return web.json_response({"serviceName": "capture", "status": "ok", "downstream": None})

    async def send(http: ClientSession, chain: Chain, headers: Any) -> Any:
        body, signed, _ = chain.request({"id": "trace-test"})
        for name, value in signed.items():
            headers.add(name, value)
        async with http.post(chain.first_url, data=body, headers=headers) as resp:
            return await resp.json()

    async def scenario() -> None:
        async with open_core(settings) as core:
            app = web.Application()
            app.router.add_post("/process", capture)
            runner = web.AppRunner(app)
            await runner.setup()
            # A hop may only lead to a pool port: the capture stands on the pool's last one.
            port = settings.port_hi
            site = web.TCPSite(runner, "127.0.0.1", port)
            await site.start()
            try:
                raw_journey = journey("Trace Co", "AService", "BService")
                result = await core.run_journey(raw_journey)
                assert result.ok, result.error
                running = core.chain_for(parse_journey(raw_journey))
                capture_hop = Hop(
                    url=hop_url(port),
                    stepName="capture",
                    serviceName="capture",
                    latencyMs=0.0,
                    errorRate=0.0,
                    errorType="internal",
                    fields={},
                )
                chain = replace(running, hops=(*running.hops, capture_hop))
                async with ClientSession() as http:
                    raw = CIMultiDict(
                        [
                            ("TraceParent", f" 00-{TRACE}-{PARENT}-09 "),
                            # Same spelling twice: aiohttp's client replaces a repeated header
                            # whose name differs only in case.
                            ("TraceState", f"rojo=00f067aa0ba902b7,{OUR_KEY}=old"),
                            ("TraceState", " congo=t61rcWkgMzE,,rojo=dup"),
                        ]
                    )
                    body = await send(http, chain, raw)
                    dup = CIMultiDict([("traceparent", VALID), ("traceparent", VALID)])
                    dup.add("tracestate", "congo=t61rcWkgMzE")
                    restarted = await send(http, chain, dup)
            finally:
                await runner.cleanup()

            a, b = body, body["downstream"]
            assert a["traceId"] == b["traceId"] == TRACE and a["parentSpanId"] == PARENT
            wire = seen[0]
            assert wire.getall("traceparent") == [f"00-{TRACE}-{b['span']['client']['spanId']}-01"]
            assert wire["tracestate"] == (
                f"{OUR_KEY}={b['span']['client']['spanId']},rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
            )
            assert b["parentSpanId"] == a["span"]["client"]["spanId"]

            c, d = restarted, restarted["downstream"]
            assert c["traceId"] not in (TRACE,) and c["parentSpanId"] is None
            assert d["traceId"] == c["traceId"]
            assert seen[1]["tracestate"] == f"{OUR_KEY}={d['span']['client']['spanId']}"

    run(scenario())
