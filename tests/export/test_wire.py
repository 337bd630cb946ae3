"""The protobuf wire writer (app/core/export/wire.py) against the official messages: what it
writes parses to exactly what the message API would have built."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from app.core.export import wire

INT64 = st.integers(min_value=wire.INT64_MIN, max_value=wire.INT64_MAX)
SCALARS = st.one_of(st.text(), st.booleans(), INT64, st.floats(allow_nan=False))


def official(value: object) -> AnyValue:
    out = AnyValue()
    if isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int):
        out.int_value = value
    elif isinstance(value, float):
        out.double_value = value
    else:
        out.string_value = str(value)
    return out


@given(key=st.text(), value=SCALARS)
def test_a_key_value_parses_as_the_message_api_builds_it(key: str, value: object) -> None:
    parsed = KeyValue.FromString(wire.key_value(key, value))
    assert parsed == KeyValue(key=key, value=official(value))
    assert parsed.value.WhichOneof("value") == official(value).WhichOneof("value")


@given(n=st.integers(min_value=0, max_value=2**64 - 1))
def test_a_varint_is_protobufs(n: int) -> None:
    span = Span.FromString(wire.tag(10, wire.VARINT) + wire.varint(n))  # dropped_attributes_count
    assert span.dropped_attributes_count == n & 0xFFFFFFFF  # a uint32 keeps its low 32 bits


@pytest.mark.parametrize("n", [wire.INT64_MIN, -1, 0, 1, 127, 128, wire.INT64_MAX])
def test_an_int64_at_its_bounds_keeps_its_value(n: int) -> None:
    assert AnyValue.FromString(wire.any_value(n)).int_value == n


def test_an_int_past_int64_is_its_decimal_text_not_a_failed_batch() -> None:
    assert AnyValue.FromString(wire.any_value(2**70)).string_value == str(2**70)


def test_lists_and_objects_are_their_json_text() -> None:
    assert AnyValue.FromString(wire.any_value([1, "a"])).string_value == '[1, "a"]'
    assert AnyValue.FromString(wire.any_value({"n": None})).string_value == '{"n": null}'


def test_nan_stays_a_double() -> None:
    assert math.isnan(AnyValue.FromString(wire.any_value(math.nan)).double_value)


def test_a_lone_surrogate_is_refused_as_the_message_api_refuses_it() -> None:
    with pytest.raises(UnicodeEncodeError):
        wire.any_value("\ud800")


def test_fields_appended_after_a_template_parse_as_one_message() -> None:
    template = Span(name="POST", attributes=[KeyValue(key="a", value=AnyValue(int_value=1))])
    more = wire.attribute(wire.tag(9, wire.LEN), "b", "x") + wire.fixed64(wire.tag(7, wire.I64), 5)
    parsed = Span.FromString(template.SerializeToString() + more)
    assert [kv.key for kv in parsed.attributes] == ["a", "b"]
    assert (parsed.name, parsed.start_time_unix_nano) == ("POST", 5)
    assert wire.fixed64(wire.tag(7, wire.I64), 0) == b""  # proto3: a zero is not written
