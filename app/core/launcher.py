"""How a service process is started, and a handle to watch and signal it.

`Launcher` is the interface; `ExecLauncher` starts a fresh interpreter per service and
`app.core.forkserver.ForkServerLauncher` forks each from a pre-warmed server process.
Every handle is watched the same way: a pidfd tells when the process exits (event-driven, no
polling) and the service's output pipe carries its log lines and its readiness line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from app.core import probe
from app.core.errors import PortInUseError, ServiceStartError
from app.service.runner import BIND_FAILED_PREFIX, EXIT_ADDR_IN_USE, READY_PREFIX

LineHandler = Callable[[str], None]


@dataclass(frozen=True)
class Helper:
    """A long-lived process a launcher runs besides the services (the fork server). It is as
    provably ours as a service: pid, create time and the `--token=` on its command line."""

    pid: int
    create_time: float
    cmdline_token: str


HelperHook = Callable[[Helper], None]


@dataclass(frozen=True)
class LaunchRequest:
    service_name: str
    company: str
    port: int
    token: str
    # The chain credential's key (app/service/protocol.py): handed over a pipe or the fork
    # server's private socket, never on a command line (any local user reads those in /proc).
    secret: bytes = field(default=b"", repr=False)
    hop_ports: range = range(0)  # where the service's hops may lead: the pool
    api_port: int = 0


class ProcessHandle:
    """One spawned service process: its output, readiness, exit, and signals to its group."""

    def __init__(
        self,
        pid: int,
        output_fd: int,
        cmdline_token: str,
        reap: Callable[[], int | None],
        on_line: LineHandler,
        pidfd: int | None = None,
    ) -> None:
        self.pid = pid
        self.cmdline_token = cmdline_token
        self.create_time = probe.process_create_time(pid) or 0.0
        self._reap = reap
        self._on_line = on_line
        self.on_exit: Callable[[int | None], None] | None = None
        self._loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[None] = self._loop.create_future()
        self._exited: asyncio.Future[int | None] = self._loop.create_future()
        self._buffer = b""
        self._tail: list[str] = []
        self._out_fd = output_fd
        os.set_blocking(output_fd, False)
        self._loop.add_reader(output_fd, self._read_output)
        # A launcher that is not the parent passes a pidfd it opened before the pid could be
        # reaped (and so recycled); otherwise open one here (a child stays until we reap it).
        self._pidfd = os.pidfd_open(pid) if pidfd is None else pidfd
        self._loop.add_reader(self._pidfd, self._on_exit)

    # -- events -------------------------------------------------------------------------------
    def _read_output(self) -> None:
        try:
            chunk = os.read(self._out_fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._close_output()
            return
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            self._handle_line(raw.decode(errors="replace").rstrip())

    def _handle_line(self, line: str) -> None:
        self._tail = [*self._tail[-19:], line]
        if line.startswith(READY_PREFIX) and not self._ready.done():
            self._ready.set_result(None)
        elif line.startswith(BIND_FAILED_PREFIX) and not self._ready.done():
            self._ready.set_exception(PortInUseError(line))
        self._on_line(line)

    def _close_output(self) -> None:
        if self._out_fd >= 0:
            self._loop.remove_reader(self._out_fd)
            os.close(self._out_fd)
            self._out_fd = -1

    def _on_exit(self) -> None:
        self._drop_pidfd()
        self._exit_with(self._reap())

    def _drop_pidfd(self) -> None:
        if self._pidfd >= 0:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1

    def _exit_with(self, code: int | None) -> None:
        """The process is gone: settle readiness and exit with its status."""
        if self._out_fd >= 0:
            self._read_output()  # pick up a last line (e.g. why it failed)
        if not self._ready.done():
            detail = " | ".join(self._tail[-5:]) or "no output"
            exc_type = PortInUseError if code == EXIT_ADDR_IN_USE else ServiceStartError
            self._ready.set_exception(exc_type(f"exited with status {code} before ready: {detail}"))
        if not self._exited.done():
            self._exited.set_result(code)
        if self.on_exit is not None:
            self.on_exit(code)

    # -- queries and commands -----------------------------------------------------------------
    @property
    def exited(self) -> bool:
        return self._exited.done()

    @property
    def gone(self) -> bool:
        """The process is gone (its pidfd said so), its exit status perhaps not yet known."""
        return self._pidfd < 0 or self.exited

    @property
    def returncode(self) -> int | None:
        return self._exited.result() if self._exited.done() else None

    def output_tail(self) -> list[str]:
        return list(self._tail)

    async def wait_ready(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except TimeoutError as exc:
            raise ServiceStartError(f"not ready within {timeout:.1f} s") from exc

    async def wait_exit(self, timeout: float | None) -> bool:
        """True if the process exited within `timeout` seconds."""
        try:
            await asyncio.wait_for(asyncio.shield(self._exited), timeout)
        except TimeoutError:
            return False
        return True

    def signal_group(self, sig: int) -> None:
        """Signal the service's own process group (it runs in its own session)."""
        if self.exited:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def close(self) -> None:
        """Drop the watches (only once the process is gone, or when giving it up on exit)."""
        self._drop_pidfd()
        self._close_output()
        if not self._ready.done():
            self._ready.cancel()
        elif not self._ready.cancelled():
            self._ready.exception()  # mark it seen: its waiter (if any) already got it
        if not self._exited.done():
            self._exited.cancel()


class Launcher(Protocol):
    """Starts service processes. Implementations differ only in how fast they do it."""

    async def spawn(self, request: LaunchRequest, on_line: LineHandler) -> ProcessHandle: ...

    async def aclose(self) -> None: ...

    async def settle(self) -> None:
        """Wait (bounded) until every process spawned for a caller that gave up (a cancelled
        launch) is gone, so its port is free again."""

    def watch_helpers(self, started: HelperHook, gone: HelperHook) -> None:
        """Report each helper process once it exists (`started` may raise: the launcher then
        stops the helper again) and once it is gone. The service manager records them in the
        ledger; a launcher never touches the ledger itself."""


def service_argv(request: LaunchRequest, parent_pid: int) -> list[str]:
    # Every value is a separate argv item: nothing reaches a shell.
    return [
        "--service",
        request.service_name,
        "--company",
        request.company,
        "--port",
        str(request.port),
        f"--token={request.token}",
        "--parent-pid",
        str(parent_pid),
        "--hop-ports",
        f"{request.hop_ports.start}-{request.hop_ports.stop - 1}",
        "--api-port",
        str(request.api_port),
    ]


class ExecLauncher:
    """A fresh interpreter per service: `python -m app.service ...` in its own session."""

    async def spawn(self, request: LaunchRequest, on_line: LineHandler) -> ProcessHandle:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.service", *service_argv(request, os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=env,
        )
        assert proc.stdin is not None and proc.stdout is not None
        # The secret goes through the pipe (a few bytes: the pipe's buffer takes them at once).
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(request.secret.hex().encode() + b"\n")
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        out_fd = os.dup(proc.stdout.fileno())
        proc.stdout.close()
        return ProcessHandle(proc.pid, out_fd, request.token, proc.poll, on_line)

    async def aclose(self) -> None:
        return None

    def watch_helpers(self, started: HelperHook, gone: HelperHook) -> None:
        return None  # a fresh interpreter per service: no helper process

    async def settle(self) -> None:
        return None  # spawning is synchronous here: no process outlives a cancelled spawn
