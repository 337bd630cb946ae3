"""The chain's HTTP client (app/service/hop_client.py) against a real TCP server on a test port
that answers exactly the bytes each test scripts: what it reuses, what it refuses, what it
names, and that it never reads an answer off a connection it cannot trust."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import psutil
import pytest

from app.core.waiting import until
from app.service import hop_client
from app.service.hop_client import (
    MAX_ANSWER,
    MAX_HEAD,
    BadAnswer,
    Closed,
    Disconnected,
    HopClient,
    request_bytes,
)
from app.service.protocol import PROCESS_PATH
from tests.conftest import run

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
Script = Callable[[int], bytes | None]  # the n-th request (from 0) -> bytes to send, or hang


@dataclass
class Scripted:
    """A server that reads each whole request and answers what `script` says; `close_after`
    ends the connection after the answer; with `hold`, a connection is counted at once and
    read only once that event is set."""

    script: Script
    close_after: bool = False
    hold: asyncio.Event | None = None
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    eofs: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            if self.hold is not None:
                await self.hold.wait()
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = _content_length(head)
                self.requests.append(head + await reader.readexactly(length))
                answer = self.script(len(self.requests) - 1)
                if answer is None:
                    await reader.read()  # hang until the client gives up and closes
                    self.eofs += 1
                    return
                writer.write(answer)
                await writer.drain()
                if self.close_after:
                    return
        except asyncio.IncompleteReadError:
            self.eofs += 1
        finally:
            self.open_now -= 1
            writer.close()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            return int(value)
    return 0


@asynccontextmanager
async def serving(port: int, scripted: Scripted) -> AsyncIterator[Scripted]:
    server = await asyncio.start_server(scripted.handle, "127.0.0.1", port)
    try:
        yield scripted
    finally:
        server.close()
        for writer in scripted.writers:  # as a service that exits closes its connections
            writer.close()
        await server.wait_closed()


def always(answer: bytes | None) -> Script:
    return lambda _n: answer


def test_a_kept_alive_connection_carries_every_call(port_range: range) -> None:
    port = port_range.start

    async def go() -> None:
        async with serving(port, Scripted(always(OK))) as server:
            client = HopClient()
            headers = {"Content-Type": "application/json", "traceparent": "00-ab-cd-01"}
            answers = [await client.post(port, b'{"n":%d}' % i, headers, 5) for i in range(5)]
            await client.aclose()
        assert [(a.status, a.content_type, a.body) for a in answers] == [
            (200, "application/json", b"{}")
        ] * 5
        assert server.connections == 1
        first = server.requests[0]
        assert first.startswith(f"POST {PROCESS_PATH} HTTP/1.1\r\n".encode())
        assert f"Host: 127.0.0.1:{port}\r\n".encode() in first
        assert b"Content-Length: 7\r\n" in first and first.endswith(b'\r\n\r\n{"n":0}')
        assert b"traceparent: 00-ab-cd-01\r\n" in first

    run(go(), 20)


@pytest.mark.parametrize(
    ("answer", "server_closes"),
    [
        (OK.replace(b"Content-Length: 2", b"Connection: close\r\nContent-Length: 2"), False),
        (OK.replace(b"HTTP/1.1", b"HTTP/1.0"), False),
        (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{}", True),  # body to close
    ],
    ids=["connection-close", "http-1.0", "no-length"],
)
def test_an_answer_that_ends_its_connection_is_read_and_the_connection_not_reused(
    port_range: range, answer: bytes, server_closes: bool
) -> None:
    """The server keeps the first two open: a client that reused them would show as one
    connection."""
    port = port_range.start

    async def go() -> None:
        async with serving(port, Scripted(always(answer), close_after=server_closes)) as server:
            client = HopClient()
            bodies = [(await client.post(port, b"{}", {}, 5)).body for _ in range(3)]
            await client.aclose()
        assert bodies == [b"{}"] * 3
        assert server.connections == 3

    run(go(), 20)


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", "chunked"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: two\r\n\r\n{}", "not a number"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: \xc2\xb2\r\n\r\n{}", "not a number"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", "two different"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_ANSWER + 1), "more than"),
        (b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * MAX_HEAD, "head longer"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n", "digits"),
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "not an HTTP/1.x answer"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 2\r\n\r\n{}", "without a colon"),
    ],
    ids=[
        "chunked",
        "length-word",
        "length-unicode-digit",
        "two-lengths",
        "huge",
        "long-head",
        "length-digits",
        "not-http",
        "no-colon",
    ],
)
def test_an_answer_it_cannot_read_is_named_and_its_connection_closed(
    port_range: range, answer: bytes, words: str
) -> None:
    port = port_range.start

    async def go() -> None:
        async with serving(port, Scripted(always(answer))) as server:
            client = HopClient()
            with pytest.raises(BadAnswer, match=words):
                await client.post(port, b"{}", {}, 5)
            assert await until(lambda: server.eofs == 1, 5), "the connection was kept"
            await client.aclose()

    run(go(), 20)


@pytest.mark.parametrize(
    ("answer", "words"),
    [(b"", "after no answer"), (OK[:-1], "after part of an answer")],
    ids=["nothing", "half-a-body"],
)
def test_a_connection_closed_before_the_whole_answer_says_so(
    port_range: range, answer: bytes, words: str
) -> None:
    port = port_range.start

    async def go() -> None:
        async with serving(port, Scripted(always(answer), close_after=True)):
            client = HopClient()
            with pytest.raises(Disconnected, match=words):
                await client.post(port, b"{}", {}, 5)
            await client.aclose()

    run(go(), 20)


def test_a_call_past_its_bound_times_out_and_closes_its_connection(port_range: range) -> None:
    port = port_range.start

    async def go() -> None:
        async with serving(port, Scripted(lambda n: None if n == 0 else OK)) as server:
            client = HopClient()
            with pytest.raises(TimeoutError):
                await client.post(port, b"{}", {}, 0.2)
            # The late answer might still come on that connection: it is closed, never reused.
            assert await until(lambda: server.eofs == 1, 5)
            assert (await client.post(port, b"{}", {}, 5)).body == b"{}"
            assert server.connections == 2
            await client.aclose()

    run(go(), 20)


def test_bytes_beyond_the_body_cost_the_connection_not_the_answer(port_range: range) -> None:
    port = port_range.start

    async def go() -> None:
        async with serving(port, Scripted(always(OK + b"HTTP/1.1 200 OK\r\n"))) as server:
            client = HopClient()
            bodies = [(await client.post(port, b"{}", {}, 5)).body for _ in range(2)]
            await client.aclose()
        assert bodies == [b"{}", b"{}"]
        assert server.connections == 2

    run(go(), 20)


def test_an_interim_answer_is_passed_over(port_range: range) -> None:
    port = port_range.start

    async def go() -> None:
        async with serving(port, Scripted(always(b"HTTP/1.1 100 Continue\r\n\r\n" + OK))):
            client = HopClient()
            answer = await client.post(port, b"{}", {}, 5)
            await client.aclose()
        assert (answer.status, answer.body) == (200, b"{}")

    run(go(), 20)


@pytest.mark.parametrize(
    "headers",
    [{"x-correlation-id": "a\r\nX-Evil: 1"}, {"tracestate": "k=v\n"}, {"X-Evil: 1\r\nx": "v"}],
)
def test_a_header_that_would_split_the_head_is_refused_before_anything_is_sent(
    port_range: range, headers: dict[str, str]
) -> None:
    port = port_range.start

    async def go() -> None:
        async with serving(port, Scripted(always(OK))) as server:
            client = HopClient()
            with pytest.raises(ValueError, match="would break the request's head"):
                await client.post(port, b"{}", headers, 5)
            await client.aclose()
        assert server.connections == 0

    run(go(), 20)
    with pytest.raises(ValueError):
        request_bytes(port, b"{}", headers)


def test_an_idle_connection_its_service_closed_is_never_used(port_range: range) -> None:
    """The service on a port exits (a switch) while the client holds an idle connection to it:
    the next call goes over a new connection and succeeds, rather than failing on the old."""
    port = port_range.start

    async def go() -> None:
        client = HopClient()
        first = Scripted(always(OK))
        async with serving(port, first):
            await client.post(port, b"{}", {}, 5)
        # The server is gone and its connection closed by now; the client learns it at once.
        assert await until(lambda: client.idle == 0, 5)
        second = Scripted(always(OK))
        async with serving(port, second):
            assert (await client.post(port, b"{}", {}, 5)).body == b"{}"
        assert second.connections == 1
        await client.aclose()

    run(go(), 20)


def test_calls_beyond_the_connection_bound_wait_for_a_free_one(port_range: range) -> None:
    """Six calls at once through a client bound to two connections: two connect, four wait
    and then reuse those two (six connections would mean the bound did not hold)."""
    port = port_range.start
    release = asyncio.Event()  # no answer until the first two calls are connected

    async def go() -> None:
        async with serving(port, Scripted(always(OK), hold=release)) as server:
            client = HopClient(max_connections=2)
            calls = [asyncio.create_task(client.post(port, b"{}", {}, 10)) for _ in range(6)]
            assert await until(lambda: server.connections == 2, 5)
            release.set()
            answers = await asyncio.gather(*calls)
            await client.aclose()
        assert [a.body for a in answers] == [b"{}"] * 6
        assert server.connections == 2 and server.most_open == 2

    run(go(), 20)


def test_a_port_no_one_listens_on_is_an_os_error(port_range: range) -> None:
    async def go() -> None:
        client = HopClient()
        with pytest.raises(ConnectionRefusedError):
            await client.post(port_range.start, b"{}", {}, 5)
        await client.aclose()

    run(go(), 20)


def test_closing_the_client_closes_its_idle_connections(port_range: range) -> None:
    port = port_range.start

    async def go() -> None:
        async with serving(port, Scripted(always(OK))) as server:
            client = HopClient()
            await asyncio.gather(*(client.post(port, b"{}", {}, 5) for _ in range(3)))
            await client.aclose()
            assert await until(lambda: server.eofs == server.connections, 5)
            with pytest.raises(Closed, match="closed"):
                await client.post(port, b"{}", {}, 5)

    run(go(), 20)


def _client_sockets_to(port: int) -> int:
    """This process's TCP sockets that lead to `port` (the client's side), from the OS."""
    return sum(
        1
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status != psutil.CONN_TIME_WAIT
    )


def test_a_call_that_times_out_frees_its_socket_even_with_its_body_unsent(
    port_range: range,
) -> None:
    """A peer that accepts and never reads: the request's body stays in the send buffer. The
    call's timeout must drop it and the socket at once, not wait to send it."""
    port = port_range.start
    body = b"x" * (32 << 20)

    async def go() -> None:
        held: list[asyncio.StreamWriter] = []

        async def never_reads(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)

        server = await asyncio.start_server(never_reads, "127.0.0.1", port)
        client = HopClient()
        try:
            for _ in range(3):
                with pytest.raises(TimeoutError):
                    await client.post(port, body, {}, 0.3)
            assert await until(lambda: _client_sockets_to(port) == 0, 5)
        finally:
            await client.aclose()
            for writer in held:
                writer.close()
            server.close()
            await server.wait_closed()

    run(go(), 30)


def test_a_full_idle_pool_makes_room_for_the_port_in_use(port_range: range) -> None:
    """Four idle connections to one port fill a pool of four; calls to another port then
    still keep theirs, the oldest idle one closed to make room."""
    a, b = port_range.start, port_range.start + 1

    async def go() -> None:
        async with serving(a, Scripted(always(OK))), serving(b, Scripted(always(OK))) as to_b:
            client = HopClient(max_connections=4)
            await asyncio.gather(*(client.post(a, b"{}", {}, 5) for _ in range(4)))
            assert client.idle == 4
            for _ in range(10):
                await client.post(b, b"{}", {}, 5)
            assert to_b.connections == 1 and client.idle == 4
            await client.aclose()

    run(go(), 20)


def test_an_idle_connection_past_its_expiry_is_not_used(
    port_range: range, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection idle longer than IDLE_EXPIRY_S may be one its service is closing that
    moment: a new one is opened instead (expiry 0 here: every call finds its last one old)."""
    port = port_range.start
    monkeypatch.setattr(hop_client, "IDLE_EXPIRY_S", 0.0)

    async def go() -> None:
        async with serving(port, Scripted(always(OK))) as server:
            client = HopClient()
            for _ in range(3):
                await client.post(port, b"{}", {}, 5)
            await client.aclose()
        assert server.connections == 3

    run(go(), 20)


def test_calls_still_waiting_when_the_client_closes_never_go_out(port_range: range) -> None:
    port = port_range.start
    release = asyncio.Event()

    async def go() -> None:
        async with serving(port, Scripted(always(OK), hold=release)) as server:
            client = HopClient(max_connections=1)
            calls = [asyncio.create_task(client.post(port, b"{}", {}, 10)) for _ in range(3)]
            assert await until(lambda: server.connections == 1, 5)
            closing = asyncio.create_task(client.aclose(wait_s=5))
            release.set()
            results = await asyncio.gather(*calls, return_exceptions=True)
            await closing
        assert isinstance(results[0], hop_client.Answer) and results[0].body == b"{}"
        assert all(isinstance(r, Closed) for r in results[1:]), results
        assert server.connections == 1

    run(go(), 20)
