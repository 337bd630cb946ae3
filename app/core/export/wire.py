"""Protobuf wire format, written directly: the few shapes an OTLP span or log record needs.

A finished customer is ten spans and five log records, and the message API costs the panel a
Python call per field (≈ 14 µs a span; docs/performance.md, "Export"). Here a template is the
serialised bytes of what every customer of a hop shares, and a customer's own fields are
appended to it as bytes: the wire format lets a message's repeated fields continue after
other fields, so `template + trace_id + … + more attributes` parses as one message with the
template's attributes first. Values follow proto3: a zero or empty scalar is not written.
Text is strict UTF-8, so a lone surrogate fails its batch as the message API did
(app/core/export/channel.py names it).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from typing import Any

# Wire types.
VARINT, I64, LEN = 0, 1, 2
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_fixed64 = struct.Struct("<Q").pack
_double = struct.Struct("<d").pack
_SMALL = [bytes([n]) for n in range(128)]  # most lengths: one byte, looked up


def varint(n: int) -> bytes:
    """An unsigned varint; a negative int64 is written as its 64-bit two's complement."""
    if 0 <= n < 128:
        return _SMALL[n]
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def tag(field: int, wire_type: int) -> bytes:
    return varint(field << 3 | wire_type)


def length_delimited(field_tag: bytes, payload: bytes) -> bytes:
    """A LEN field: its tag (from `tag`), the payload's length, the payload."""
    n = len(payload)
    return field_tag + (_SMALL[n] if n < 128 else varint(n)) + payload  # the hot path, inlined


def fixed64(field_tag: bytes, n: int) -> bytes:
    return field_tag + _fixed64(n) if n else b""


def text(field_tag: bytes, value: str) -> bytes:
    return length_delimited(field_tag, value.encode()) if value else b""


def raw(field_tag: bytes, value: bytes) -> bytes:
    return length_delimited(field_tag, value) if value else b""


def enum(field_tag: bytes, n: int) -> bytes:
    return field_tag + varint(n) if n else b""


# common.v1.AnyValue and KeyValue.
_STRING, _BOOL, _INT, _DOUBLE = tag(1, LEN), tag(2, VARINT), tag(3, VARINT), tag(4, I64)
_KEY, _VALUE = tag(1, LEN), tag(2, LEN)


def any_value(value: Any) -> bytes:
    """An AnyValue: bool, int64 and double keep their type; other values are their JSON text,
    as the exporter has always written them; an int past int64 is its decimal text."""
    if type(value) is str:  # the usual case first
        return length_delimited(_STRING, value.encode())
    if isinstance(value, bool):
        return _BOOL + _SMALL[1] if value else _BOOL + _SMALL[0]
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return _INT + varint(value)
        return length_delimited(_STRING, str(value).encode())
    if isinstance(value, float):
        return _DOUBLE + _double(value)
    if not isinstance(value, str):
        value = json.dumps(value, default=str)
    return length_delimited(_STRING, value.encode())


def key_value(key: str | bytes, value: Any) -> bytes:
    """One KeyValue's payload (the caller adds its field's tag and length)."""
    name = key if isinstance(key, bytes) else key.encode()
    return length_delimited(_KEY, name) + length_delimited(_VALUE, any_value(value))


def attribute(field_tag: bytes, key: str | bytes, value: Any) -> bytes:
    """One element of a repeated KeyValue field (`attributes` of a span, record, resource)."""
    return length_delimited(field_tag, key_value(key, value))


def joined(field_tag: bytes, parts: Iterable[bytes]) -> bytes:
    """A repeated LEN field: each part with its tag and length."""
    return b"".join(length_delimited(field_tag, p) for p in parts)
