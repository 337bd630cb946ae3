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

from app.core.errors import ServiceStartError
from app.core.launcher import LaunchRequest, LineHandler, ProcessHandle
from app.service.forkserver import MAX_MESSAGE, MODULE

# The first spawn includes the server's own start (≈0.3 s of imports); more under heavy load.
SPAWN_TIMEOUT_S = 15.0
# The pidfd fires as the service exits; the server's "reaped" message follows within a few ms.
EXIT_STATUS_WAIT_S = 1.0
SERVER_EXIT_WAIT_S = 5.0


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

    @property
    def server_pid(self) -> int | None:
        return self._server.proc.pid if self._server is not None else None

    async def spawn(self, request: LaunchRequest, on_line: LineHandler) -> ProcessHandle:
        server = await self._running_server()
        forked = await server.fork(request)
        return _ForkedHandle(forked, server.token, on_line)

    async def aclose(self) -> None:
        """Stop the server and wait for it; any service still running dies with it."""
        if self._server is not None:
            await self._server.aclose()
            self._server = None

    async def _running_server(self) -> _ForkServer:
        if self._server is not None and not self._server.connected:
            await self._server.aclose()  # it died: reap it, then start a new one
            self._server = None
        if self._server is None:
            self._server = _ForkServer.start()
        return self._server


class _ForkServer:
    """The panel's side of one fork server process."""

    def __init__(self, proc: subprocess.Popen[bytes], sock: socket.socket, token: str) -> None:
        self.proc = proc
        self.sock = sock
        self.token = token
        self.connected = True
        self._loop = asyncio.get_running_loop()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[_Forked]] = {}
        self._statuses: dict[int, asyncio.Future[int | None]] = {}
        self._exited: asyncio.Future[None] = self._loop.create_future()
        sock.setblocking(False)
        self._loop.add_reader(sock.fileno(), self._on_readable)
        self._pidfd = os.pidfd_open(proc.pid)
        self._loop.add_reader(self._pidfd, self._on_server_exit)

    @classmethod
    def start(cls) -> _ForkServer:
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
        return cls(proc, ours, token)

    # -- requests -----------------------------------------------------------------------------
    async def fork(self, request: LaunchRequest) -> _Forked:
        if not self.connected:
            raise ServiceStartError("the fork server is not running")
        request_id = next(self._ids)
        reply: asyncio.Future[_Forked] = self._loop.create_future()
        self._pending[request_id] = reply
        message = {
            "id": request_id,
            "service": request.service_name,
            "company": request.company,
            "port": request.port,
            "token": request.token,
        }
        try:
            await self._loop.sock_sendall(self.sock, json.dumps(message).encode())
            return await asyncio.wait_for(reply, SPAWN_TIMEOUT_S)
        except TimeoutError as exc:
            raise ServiceStartError(
                f"the fork server did not answer in {SPAWN_TIMEOUT_S} s"
            ) from exc
        except OSError as exc:
            raise ServiceStartError(f"the fork server cannot be reached: {exc}") from exc
        finally:
            self._pending.pop(request_id, None)

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
            self._dispatch(json.loads(data), fds)

    def _dispatch(self, message: dict[str, Any], fds: list[int]) -> None:
        if "exit" in message:
            status = self._statuses.pop(message["exit"], None)
            if status is not None and not status.done():
                status.set_result(message["code"])
            return
        reply = self._pending.pop(message.get("id", -1), None)
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
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _close_all(fds)
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

    def _disconnect(self, reason: str) -> None:
        if not self.connected:
            return
        self.connected = False
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
