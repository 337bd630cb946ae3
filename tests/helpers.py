"""Small helpers shared by the test modules."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any

import psutil

from app.api.server import ApiServer
from app.core import probe
from app.core.launcher import LaunchRequest
from app.core.orchestrator import Core, open_core
from app.core.settings import Settings
from app.service.protocol import SECRET_BYTES


def journey(company: str = "Acme Corp", *services: str, **step_overrides: Any) -> dict[str, Any]:
    """A journey in the write-up's JSON shape; `step2={...}` overrides fields of step 2."""
    services = services or ("LoginService", "BrowseService")
    steps = [{"stepName": s.removesuffix("Service"), "serviceName": s} for s in services]
    for index, overrides in step_overrides.items():
        steps[int(index.removeprefix("step")) - 1].update(overrides)
    return {
        "companyName": company,
        "domain": "example.com",
        "industryType": "Retail",
        "steps": steps,
    }


def alive(pid: int) -> bool:
    """Is the process running (not gone, not a zombie)?"""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def sigstop(pid: int, timeout: float = 10.0) -> None:
    """SIGSTOP `pid` and return once the kernel reports it stopped. The signal takes effect only
    when the process next runs: a death signal (SIGTERM, a lower number) queued beside it before
    then would be taken first, on a loaded machine, and the process would die instead."""
    os.kill(pid, signal.SIGSTOP)
    process = psutil.Process(pid)
    deadline = time.monotonic() + timeout
    while process.status() != psutil.STATUS_STOPPED:  # no OS notification for a non-child
        assert time.monotonic() < deadline, f"pid {pid} did not stop within {timeout} s"
        time.sleep(0.001)  # polls the condition above, usually met in under a millisecond


def listen_on(port: int) -> socket.socket:
    """A foreign listener on 127.0.0.1:port: a plain socket of the test process."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as real servers bind
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


def still_listening(sock: socket.socket) -> bool:
    port = sock.getsockname()[1]
    return sock.fileno() >= 0 and port in probe.scan_listeners([port])


def listeners_are_exactly_ours(
    core: Core, settings: Settings, foreign: frozenset[int] | set[int] = frozenset()
) -> None:
    """Every listener in the pool but the `foreign` ports is one of the core's services."""
    listening = probe.scan_listeners(settings.ports)
    ours = {s.port: s.pid for s in core.services()}
    assert {p: lst.pid for p, lst in listening.items() if p not in foreign} == ours


ROOT = Path(__file__).resolve().parents[1]


def read_line(proc: subprocess.Popen[bytes], timeout: float, buffer: bytearray) -> str:
    """One line of a child's output, or '' if none came within `timeout`.

    Reads the raw pipe into `buffer` itself: a buffered reader would swallow the next lines
    and leave select() waiting on an empty pipe."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                return ""
            chunk = os.read(fd, 65536)
            if not chunk:
                return ""
            buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line.decode(errors="replace") + "\n"


class ServeProcess:
    """`python -m app serve` as a subprocess on the test's ports and state dir."""

    def __init__(self, settings: Settings, **env: str) -> None:
        self.settings = settings
        self.url = f"http://127.0.0.1:{settings.api_port}"
        self.env = dict(
            os.environ,
            BIZOBS_STATE_DIR=str(settings.state_dir),
            BIZOBS_LAUNCHER=settings.launcher.value,
            **env,
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.token: str | None = None  # sent as a bearer token once set (serve --allow-remote)
        self.output: list[str] = []
        self._buffer = bytearray()

    def start(self, *serve_args: str) -> ServeProcess:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app",
                "--ports",
                f"{self.settings.port_lo}-{self.settings.port_hi}",
                "serve",
                "--port",
                str(self.settings.api_port),
                *serve_args,
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(20):  # start-up notes come before the "serving" line
            line = read_line(self.proc, 30, self._buffer)
            self.output.append(line)
            if not line or "serving the control API" in line:
                break
        assert "serving the control API" in self.output[-1], f"no server: {self.output}"
        return self

    def call(self, method: str, path: str, body: Any = None, timeout: float = 120) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        # The API takes JSON only, body or not: a browser cannot send that without a pre-flight.
        headers = {"Content-Type": "application/json"}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read() or b"{}") | {"httpStatus": exc.code}

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> str:
        """SIGTERM, wait, and return the rest of the output; asserts a clean exit."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            return "".join(self.output)
        self.proc.send_signal(signal.SIGTERM)
        raw, _ = self.proc.communicate(timeout=30)
        out = (bytes(self._buffer) + raw).decode(errors="replace")
        assert self.proc.returncode == 0, out
        return "".join(self.output) + out


@contextmanager
def api_in_thread(settings: Settings) -> Iterator[tuple[str, Core, asyncio.AbstractEventLoop]]:
    """The real core and API on their own loop in a thread, so hypothesis can stay synchronous."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def on_loop(coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    stack = AsyncExitStack()
    core: Core = on_loop(stack.enter_async_context(open_core(settings)))
    server = ApiServer(core, "127.0.0.1", settings.api_port)
    try:
        on_loop(server.start())
        yield server.url, core, loop
    finally:
        on_loop(server.stop())
        on_loop(stack.aclose())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def launch_request(service: str, company: str, port: int, token: str = "t") -> LaunchRequest:
    """What the service manager hands a launcher: with a chain secret and the pool's ports."""
    return LaunchRequest(
        service, company, port, token, secrets.token_bytes(SECRET_BYTES), range(port, port + 1)
    )
