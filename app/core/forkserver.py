"""`ForkServerLauncher`: services forked from a pre-warmed server process.

(docs/architecture.md, "Facts measured on this machine kind".)

A fresh interpreter costs ≈0.24 s CPU per service, most of it `import aiohttp`. The fork server
(`app.service.forkserver`) is a small separate process, started on the first spawn, that has
imported the service code once; each service is a `fork()` of it. The panel (the Qt process)
itself is never forked.

Panel and server talk over a SOCK_SEQPACKET socket pair (the wire format is in the server's
module). A forked service is not the panel's child: it is watched through a pidfd the server
opened and passed over, its output pipe comes the same way, and its exit status arrives as a
message once the server has reaped it. Its command line is the server's, so the ledger records
the server's token as the service's `cmdline_token`: `probe.is_ours(pid, create_time, token)`
still proves ownership (pid + create time + a token on the command line).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from app.core import probe, waiting
from app.core.errors import ServiceStartError
from app.core.launcher import Helper, HelperHook, LaunchRequest, LineHandler, ProcessHandle
from app.service.forkserver import MAX_MESSAGE, MODULE

# One deadline per call to the server, covering the send and the reply. A healthy server forks
# and replies in milliseconds, even with 40 requests queued (it serves them one by one), so
# missing 5 s means it is stopped or hung, not slow; waiting longer only holds a launch hostage
# (the run lock) while the server can fork nothing. A server that misses it is killed: every
# later request would wait behind the same stuck server.
FORK_DEADLINE_S = 5.0
# Until a server first answers, its own start counts too: ≈0.3 s of imports alone, several
# seconds on 2 cores busy starting 40 services.
FIRST_ANSWER_DEADLINE_S = 10.0
# The pidfd fires as the service exits; the server's "reaped" message follows within a few ms.
EXIT_STATUS_WAIT_S = 1.0
SERVER_EXIT_WAIT_S = 5.0


def _retrieved(future: asyncio.Future[_Forked]) -> None:
    if not future.cancelled():
        future.exception()


@dataclass(frozen=True)
class _Forked:
    pid: int
    out_fd: int
    pidfd: int
    status: asyncio.Future[int | None]


class ForkServerLauncher:
    """Forks each service from a pre-warmed server; the server starts on the first spawn."""

    def __init__(self) -> None:
        self._server: _ForkServer | None = None
        # Concurrent spawns (a 10-step launch) that find no live server start exactly one.
        self._starting = asyncio.Lock()
        self._helper_started: HelperHook = _no_hook
        self._helper_gone: HelperHook = _no_hook

    @property
    def server_pid(self) -> int | None:
        return self._server.proc.pid if self._server is not None else None

    def watch_helpers(self, started: HelperHook, gone: HelperHook) -> None:
        self._helper_started, self._helper_gone = started, gone

    async def spawn(self, request: LaunchRequest, on_line: LineHandler) -> ProcessHandle:
        server = await self._running_server()
        forked = await server.fork(request)
        return _ForkedHandle(forked, server.token, on_line)

    async def settle(self) -> None:
        """Wait (bounded) until every service forked for a caller that gave up is gone."""
        if self._server is not None:
            await self._server.settle()

    async def aclose(self) -> None:
        """Stop the server and wait for it; any service still running dies with it."""
        async with self._starting:
            if self._server is not None:
                await self._server.aclose()
                self._server = None

    async def _running_server(self) -> _ForkServer:
        async with self._starting:
            if self._server is not None and not self._server.connected:
                await self._server.aclose()  # it died or was killed: reap it, then start anew
                self._server = None
            if self._server is None:
                self._server = await self._start_server()
            return self._server

    async def _start_server(self) -> _ForkServer:
        server = _ForkServer.start(self._helper_gone)
        try:
            # Tracked before it can fork anything (the ledger, docs/architecture.md "One record
            # per service"), or stopped again at once.
            self._helper_started(server.helper)
        except BaseException:
            await waiting.to_the_end(server.aclose())
            raise
        return server


def _no_hook(_: Helper) -> None:
    return None


class _ForkServer:
    """The panel's side of one fork server process."""

    def __init__(
        self, proc: subprocess.Popen[bytes], sock: socket.socket, token: str, on_gone: HelperHook
    ) -> None:
        self.proc = proc
        self.sock = sock
        self.token = token
        self.helper = Helper(proc.pid, probe.process_create_time(proc.pid) or 0.0, token)
        self.connected = True
        self._on_gone = on_gone
        self._answered = False  # until the first answer, the server's own start counts too
        self._writable: asyncio.Future[bool] | None = None
        self._loop = asyncio.get_running_loop()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[_Forked]] = {}
        self._statuses: dict[int, asyncio.Future[int | None]] = {}
        # Exit statuses of services killed because their caller gave up: until they come, such
        # a process may still hold its port (Stop All waits for them: `settle`).
        self._late: set[asyncio.Future[int | None]] = set()
        self._abandoned: set[int] = set()  # requests whose caller gave up before the answer
        self._quiet = asyncio.Event()  # neither of the two above is waiting for anything
        self._quiet.set()
        self._exited: asyncio.Future[None] = self._loop.create_future()
        sock.setblocking(False)
        self._loop.add_reader(sock.fileno(), self._on_readable)
        self._pidfd = os.pidfd_open(proc.pid)
        self._loop.add_reader(self._pidfd, self._on_server_exit)

    @classmethod
    def start(cls, on_gone: HelperHook) -> _ForkServer:
        token = secrets.token_hex(16)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        argv = [
            sys.executable,
            "-m",
            MODULE,
            f"--token={token}",
            "--parent-pid",
            str(os.getpid()),
            "--fd",
            str(theirs.fileno()),
        ]
        try:
            proc = subprocess.Popen(
                argv,
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # services get their own pipes; errors go to stderr
                start_new_session=True,
                close_fds=True,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return cls(proc, ours, token, on_gone)

    # -- requests -----------------------------------------------------------------------------
    async def fork(self, request: LaunchRequest) -> _Forked:
        if not self.connected:
            raise ServiceStartError("the fork server is not running")
        request_id = next(self._ids)
        reply: asyncio.Future[_Forked] = self._loop.create_future()
        # A sender still waiting for room, or one past its deadline, never awaits its reply:
        # the server's loss fails it all the same, and must not be logged as never retrieved.
        reply.add_done_callback(_retrieved)
        self._pending[request_id] = reply
        message = {
            "id": request_id,
            "service": request.service_name,
            "company": request.company,
            "port": request.port,
            "token": request.token,
            "secret": request.secret.hex(),
            "hopPorts": [request.hop_ports.start, request.hop_ports.stop - 1],
            "apiPort": request.api_port,
        }
        deadline = FORK_DEADLINE_S if self._answered else FIRST_ANSWER_DEADLINE_S
        try:
            async with asyncio.timeout(deadline):
                await self._send(json.dumps(message).encode())
                return await reply
        except TimeoutError as exc:
            self.kill(f"the fork server did not answer in {deadline} s")
            raise ServiceStartError(
                f"the fork server did not answer in {deadline} s; it was killed and will be "
                "replaced"
            ) from exc
        except OSError as exc:
            raise ServiceStartError(f"the fork server cannot be reached: {exc}") from exc
        finally:
            if self._pending.pop(request_id, None) is not None and self.connected:
                # No answer yet: one may still come, with a service no one will stop.
                self._abandoned.add(request_id)
                self._update_quiet()

    async def _send(self, data: bytes) -> None:
        """Send one request; when the socket's buffer is full (the server reads nothing), wait
        until it is writable. Not `sock_sendall`: its writer would stay registered on a socket
        that `_disconnect` closes, and its waiters would learn of the loss only at their
        deadline; here `_disconnect` wakes every waiting sender at once."""
        while True:
            if not self.connected:
                raise ServiceStartError("the fork server is not running")
            try:
                self.sock.send(data)  # SOCK_SEQPACKET: the whole message, or nothing
                return
            except BlockingIOError:
                await asyncio.shield(self._when_writable())

    def _when_writable(self) -> asyncio.Future[bool]:
        if self._writable is None:
            self._writable = self._loop.create_future()
            self._loop.add_writer(self.sock.fileno(), self._on_writable, True)
        return self._writable

    def _on_writable(self, still_connected: bool) -> None:
        if self._writable is None:
            return
        if still_connected:
            self._loop.remove_writer(self.sock.fileno())
        self._writable.set_result(still_connected)
        self._writable = None

    def kill(self, reason: str) -> None:
        """End a server that missed its deadline. It is provably ours: our child, signalled
        through the pidfd we hold (never a recycled pid); its exit is then reaped as usual."""
        if self._pidfd >= 0:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        self._disconnect(reason)

    # -- events -------------------------------------------------------------------------------
    def _on_readable(self) -> None:
        while self.connected:
            try:
                data, fds, _, _ = socket.recv_fds(
                    self.sock, MAX_MESSAGE, 2, socket.MSG_CMSG_CLOEXEC
                )
            except BlockingIOError:
                return
            except OSError:
                data, fds = b"", []
            if not data:
                _close_all(fds)
                self._disconnect("the fork server closed its connection")
                return
            self._answered = True
            self._dispatch(json.loads(data), fds)

    def _dispatch(self, message: dict[str, Any], fds: list[int]) -> None:
        if "exit" in message:
            status = self._statuses.pop(message["exit"], None)
            if status is not None and not status.done():
                status.set_result(message["code"])
            return
        reply = self._pending.pop(message.get("id", -1), None)
        self._abandoned.discard(message.get("id", -1))
        self._update_quiet()
        if "pid" not in message or len(fds) != 2:
            _close_all(fds)
            if reply is not None and not reply.done():
                error = message.get("error", "no reply")
                reply.set_exception(ServiceStartError(f"the fork server failed: {error}"))
            return
        pid = message["pid"]
        status = self._statuses[pid] = self._loop.create_future()
        if reply is None or reply.done():
            # The caller gave up (timeout, cancelled run): nobody would ever stop this service.
            # Through its pidfd: provably this process, never a recycled pid.
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(fds[1], signal.SIGKILL)
            _close_all(fds)
            self._late.add(status)
            status.add_done_callback(self._late_exited)
            self._update_quiet()
            return
        reply.set_result(_Forked(pid, fds[0], fds[1], status))

    def _on_server_exit(self) -> None:
        self._on_readable()  # statuses it sent just before exiting
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1
        self.proc.poll()  # our child: reap it
        self._exited.set_result(None)
        self._disconnect("the fork server exited")
        self._on_gone(self.helper)  # gone for sure: its ledger row may go

    def _disconnect(self, reason: str) -> None:
        if not self.connected:
            return
        self.connected = False
        if self._writable is not None:
            self._loop.remove_writer(self.sock.fileno())
            self._on_writable(False)  # senders waiting for room find the server gone
        self._loop.remove_reader(self.sock.fileno())
        self.sock.close()  # the server sees EOF and exits
        for reply in self._pending.values():
            if not reply.done():
                reply.set_exception(ServiceStartError(reason))
        for status in self._statuses.values():
            if not status.done():
                status.set_result(None)  # the exit status is lost with the server
        self._pending.clear()
        self._statuses.clear()
        self._abandoned.clear()  # no answer will come: its children die with the server
        self._update_quiet()

    def _late_exited(self, status: asyncio.Future[int | None]) -> None:
        self._late.discard(status)
        self._update_quiet()

    def _update_quiet(self) -> None:
        if self._abandoned or self._late:
            self._quiet.clear()
        else:
            self._quiet.set()

    async def settle(self) -> None:
        """Until no late answer is due and every service forked for a caller that gave up has
        been reported gone (SIGKILLed: within milliseconds), bounded."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._quiet.wait(), SERVER_EXIT_WAIT_S)

    async def aclose(self) -> None:
        self._disconnect("the launcher was closed")
        for sig in (None, signal.SIGKILL):
            if sig is not None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.send_signal(sig)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._exited), SERVER_EXIT_WAIT_S)
            if self._exited.done():
                return


class _ForkedHandle(ProcessHandle):
    """A forked service: not our child, so its exit status comes from the fork server."""

    def __init__(self, forked: _Forked, cmdline_token: str, on_line: LineHandler) -> None:
        self._status = forked.status
        self._late: asyncio.Task[None] | None = None
        super().__init__(
            forked.pid, forked.out_fd, cmdline_token, self._status_now, on_line, forked.pidfd
        )

    def _status_now(self) -> int | None:
        done = self._status.done() and not self._status.cancelled()
        return self._status.result() if done else None

    def _on_exit(self) -> None:
        self._drop_pidfd()
        if self._status.done():
            self._exit_with(self._status_now())
        else:
            self._late = self._loop.create_task(self._exit_when_reaped())

    async def _exit_when_reaped(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._status), EXIT_STATUS_WAIT_S)
        self._exit_with(self._status_now())

    def close(self) -> None:
        if self._late is not None:
            self._late.cancel()
        super().close()


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
