"""The chain's HTTP/1.1 client: one POST of a chain body to a step service on loopback, over
kept-alive connections (docs/architecture.md, "The hop client").

Every call of a journey, the panel's to the first step and each step's to the next, is the
same: a POST to `127.0.0.1:<port>/process` (protocol.hop_port admits no other URL). A general
client's work (URLs, cookies, redirects, proxies, TLS, compression, streaming) is none of it,
and aiohttp's client spent about a sixth of a hop's CPU on that work (docs/performance.md,
"Where a hop spends its CPU"). This one writes the request with one write, reads the answer's
head and its Content-Length body, and keeps the connection for the next call unless the answer
says otherwise. What it cannot read it names and drops the connection: a head too long, a
body too big, framing it does not read (chunked), a connection closed before the whole
answer. A call's bound (`timeout`) covers waiting for a slot, connecting and the answer; a
call that runs out of it, or is cancelled, drops its connection, since the answer may still
come on it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass

from app.service.protocol import PROCESS_PATH

MAX_HEAD = 64 * 1024  # aiohttp's server writes a few hundred bytes
MAX_ANSWER = 16 * 1024 * 1024  # a 40-hop answer is ~50 KB; this bounds a stranger's
# Calls in flight at once per lane (below), and idle connections kept, at most: aiohttp's
# default bound too. A service under traffic has as many calls in flight as it has callers,
# and without a bound it would take two descriptors per journey in flight (the call in, the
# call out) until it ran out.
MAX_CONNECTIONS = 100
# An idle connection older than this is closed, not used: well inside a service's own
# keep-alive (aiohttp's runner keeps one an hour), so the client never sends on a connection
# the service is closing at that moment. aiohttp's client uses 15 s too.
IDLE_EXPIRY_S = 15.0
MAX_LENGTH_DIGITS = 9  # MAX_ANSWER has 8: int() of a longer string is not worth its time
_NO_BODY = frozenset({204, 304})


class HopClientError(Exception):
    """An answer the client cannot read, or a connection lost before the whole answer."""


class Closed(HopClientError):
    """The client was closed before the call could go out."""


class Disconnected(HopClientError):
    """The connection closed before the whole answer came."""


class BadAnswer(HopClientError):
    """Bytes that are not an HTTP/1.x answer this client reads."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content_type: str  # the media type, lower case, without parameters ("" when absent)
    body: bytes


@dataclass(frozen=True, slots=True)
class _Head:
    status: int
    content_type: str
    length: int | None  # None: the body runs to the connection's close
    keep_alive: bool


class _Connection(asyncio.Protocol):
    """One TCP connection: at most one call at a time, its answer read as the bytes come."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.reusable = False
        self.idle_since = 0.0
        self._buf = bytearray()
        self._head: _Head | None = None
        self._answer: asyncio.Future[Answer] | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.open = True

    def send(self, request: bytes) -> asyncio.Future[Answer]:
        assert self.transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self._head = None
        self.reusable = False
        self._buf.clear()
        self.transport.write(request)
        return self._answer

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._answer is None or self._answer.done():
            self.abort()  # bytes no call asked for: nothing more on this connection is trusted
            return
        try:
            self._advance(self._answer)
        except Exception as exc:  # BadAnswer; anything else is a bug, still never the loop's
            bad = exc if isinstance(exc, BadAnswer) else BadAnswer(f"unreadable answer: {exc!r}")
            self._answer.set_exception(bad)
            self.abort()

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if not self.lost.done():
            self.lost.set_result(None)
        answer = self._answer
        if answer is None or answer.done():
            return
        head = self._head
        if head is not None and head.length is None:  # its body was the rest of the stream
            answer.set_result(Answer(head.status, head.content_type, bytes(self._buf)))
        else:
            got = "no answer" if head is None and not self._buf else "part of an answer"
            answer.set_exception(Disconnected(f"the connection closed after {got}"))

    def close(self) -> None:
        """Close once the request is sent (the end of a call that is done with it)."""
        self.open = False
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Close now, dropping what is unsent: a transport's close() would wait to send a
        request body the peer may never read, and hold the socket until then."""
        self.open = False
        if self.transport is not None:
            self.transport.abort()

    def _advance(self, answer: asyncio.Future[Answer]) -> None:
        while self._head is None:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > MAX_HEAD:
                    raise BadAnswer(f"an answer's head longer than {MAX_HEAD} bytes")
                return
            head = parse_head(bytes(self._buf[:end]))
            del self._buf[: end + 4]
            if 100 <= head.status < 200:
                continue  # an interim answer (100 Continue): the real one follows
            self._head = head
        length = self._head.length
        if length is None:
            if len(self._buf) > MAX_ANSWER:
                raise BadAnswer(f"an answer longer than {MAX_ANSWER} bytes")
            return
        if len(self._buf) < length:
            return
        # Bytes beyond the body belong to no call: the answer stands, the connection does not.
        self.reusable = self._head.keep_alive and len(self._buf) == length
        body = bytes(self._buf[:length]) if len(self._buf) > length else bytes(self._buf)
        self._buf.clear()
        answer.set_result(Answer(self._head.status, self._head.content_type, body))


def parse_head(head: bytes) -> _Head:
    """The status line and the headers this client reads of an HTTP/1.x answer."""
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if version not in ("HTTP/1.1", "HTTP/1.0") or not (code.isascii() and code.isdigit()):
        raise BadAnswer(f"not an HTTP/1.x answer: {lines[0][:60]!r}")
    status = int(code)
    length: int | None = None
    content_type = ""
    keep_alive = version == "HTTP/1.1"
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise BadAnswer(f"a header line without a colon: {line[:60]!r}")
        name, value = name.strip().lower(), value.strip()
        if name == "content-length":
            length = _length(value, length)
        elif name == "content-type":
            content_type = value.partition(";")[0].strip().lower()
        elif name == "connection":
            tokens = {t.strip().lower() for t in value.split(",")}
            keep_alive = "close" not in tokens and (keep_alive or "keep-alive" in tokens)
        elif name == "transfer-encoding" and value.lower() != "identity":
            raise BadAnswer(f"a {value[:30]!r} transfer-encoding, which no hop sends")
    if status in _NO_BODY:
        length = 0
    return _Head(status, content_type, length, keep_alive and length is not None)


def _length(value: str, before: int | None) -> int:
    if not (value.isascii() and value.isdigit()):
        raise BadAnswer(f"a Content-Length that is not a number: {value[:30]!r}")
    if len(value) > MAX_LENGTH_DIGITS:
        raise BadAnswer(f"a Content-Length of {len(value)} digits, more than {MAX_ANSWER}")
    length = int(value)
    if before is not None and before != length:
        raise BadAnswer("two different Content-Length headers")
    if length > MAX_ANSWER:
        raise BadAnswer(f"an answer of {length} bytes, more than {MAX_ANSWER}")
    return length


def request_bytes(port: int, body: bytes, headers: Mapping[str, str]) -> bytes:
    """The whole request, head and body, for one write. A header value with a line break
    would split the head (header injection): refused, as aiohttp refuses it."""
    parts = [
        f"POST {PROCESS_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n"
    ]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
            raise ValueError(f"header {name[:40]!r} would break the request's head")
        parts.append(f"{name}: {value}\r\n")
    parts.append("\r\n")
    return "".join(parts).encode() + body


class HopClient:
    """Calls to step services, each over an idle connection to its port or a new one. At most
    `max_connections` calls run at once in each lane, and at most as many connections wait
    idle (the oldest is closed to make room; none is used after IDLE_EXPIRY_S).

    A lane is the index of the hop called. A journey may pass one service twice (A, B, A, C):
    with one bound for all its calls, A's calls to B could hold every slot while each waits
    for B, which waits for A's call to C, which waits for a slot: every journey then hangs
    until its budget runs out. A call to hop i waits only for calls to later hops, and those
    take their slots in lanes of their own, so no wait goes round in a circle."""

    def __init__(self, max_connections: int = MAX_CONNECTIONS) -> None:
        self._idle: dict[int, list[_Connection]] = {}  # per port, the newest last
        self._age: dict[_Connection, None] = {}  # every idle connection, the oldest first
        self._max = max_connections
        self._lanes: dict[int, asyncio.Semaphore] = {}
        self._lost: set[asyncio.Future[None]] = set()
        self.closed = False

    @property
    def idle(self) -> int:
        """Connections waiting idle for a call."""
        return len(self._age)

    async def post(
        self,
        port: int,
        body: bytes,
        headers: Mapping[str, str],
        timeout: float | None,
        lane: int = 0,
    ) -> Answer:
        """POST `body` to the step service on `port` as a call to hop `lane`; TimeoutError
        past `timeout` seconds, OSError when it cannot be reached, HopClientError for an answer
        it cannot read or a client closed meanwhile."""
        if self.closed:
            raise Closed("the hop client is closed")
        request = request_bytes(port, body, headers)
        slots = self._lanes.get(lane)
        if slots is None:
            slots = self._lanes[lane] = asyncio.Semaphore(self._max)
        if timeout is None:
            return await self._call(port, request, slots)
        async with asyncio.timeout(timeout):
            return await self._call(port, request, slots)

    async def _call(self, port: int, request: bytes, slots: asyncio.Semaphore) -> Answer:
        async with slots:
            if self.closed:  # while this call waited for its slot
                raise Closed("the hop client was closed before the call went out")
            conn = await self._connection(port)
            try:
                answer = await conn.send(request)
            except BaseException:
                conn.abort()  # a timeout or a cancel: its answer may still come on it
                raise
            if conn.reusable and conn.open and not self.closed:
                self._keep(conn)
            else:
                conn.close()
            return answer

    def _keep(self, conn: _Connection) -> None:
        if len(self._age) >= self._max:
            self._drop(next(iter(self._age))).close()  # the oldest makes room
        conn.idle_since = time.monotonic()
        self._idle.setdefault(conn.port, []).append(conn)
        self._age[conn] = None

    def _drop(self, conn: _Connection) -> _Connection:
        del self._age[conn]
        stack = self._idle[conn.port]
        if stack[-1] is conn:
            stack.pop()  # a call taking the newest: no scan of the panel's hundreds
        else:
            stack.remove(conn)
        return conn

    async def _connection(self, port: int) -> _Connection:
        idle = self._idle.get(port)
        expired = time.monotonic() - IDLE_EXPIRY_S
        while idle:
            conn = self._drop(idle[-1])  # the most recently used: the likeliest to be warm
            if conn.open and conn.idle_since > expired:
                return conn
            conn.close()  # too old to trust, or closed a moment ago
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: _Connection(port), "127.0.0.1", port)
        self._lost.add(conn.lost)
        conn.lost.add_done_callback(lambda lost: self._forget(conn, lost))
        return conn

    def _forget(self, conn: _Connection, lost: asyncio.Future[None]) -> None:
        """A connection the service closed while it waited idle (a service that exited)
        leaves the pool as soon as the close arrives, not when a call next finds it dead."""
        self._lost.discard(lost)
        if conn in self._age:
            self._drop(conn)

    async def aclose(self, wait_s: float = 1.0) -> None:
        """Close every idle connection and wait (at most `wait_s`) until every connection is
        closed; a call in flight closes its own when it ends."""
        self.closed = True
        for conn in list(self._age):
            self._drop(conn).close()
        if self._lost:
            await asyncio.wait(set(self._lost), timeout=wait_s)
