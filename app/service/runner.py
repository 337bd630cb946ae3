"""Run one step service until SIGTERM: bind, say ready, serve, stop fast, exit."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import errno
import os
import signal
import sys
from dataclasses import dataclass, field

from aiohttp import web

from app.service.app import current_identity, make_app
from app.service.faults import EXIT_FAULT, Faults
from app.service.protocol import SECRET_BYTES

READY_PREFIX = "BIZOBS-READY"  # the launcher waits for this line (app.core.launcher)
BIND_FAILED_PREFIX = "BIZOBS-BIND-FAILED"
EXIT_ADDR_IN_USE = 98
SHUTDOWN_TIMEOUT_S = 0.5  # aiohttp's default of 60 s would hold a journey switch hostage
PR_SET_PDEATHSIG = 1
WATCHDOG_S = 1.0
SERVICE_NICE = 5


@dataclass(frozen=True)
class ServiceArgs:
    service: str
    company: str
    port: int
    token: str
    parent_pid: int
    # The chain credential's key (app/service/protocol.py): never on the command line, which
    # every local user can read in /proc.
    secret: bytes = field(default=b"", repr=False)
    hop_ports: range = range(0)  # the pool's ports: where a hop may lead
    api_port: int = 0  # never a hop, even inside the pool's range


def parse_args(argv: list[str], stdin: int = 0) -> ServiceArgs:
    """The command line of `python -m app.service`; the secret comes as one line of hex on
    `stdin` (the exec launcher writes it into a pipe and closes it)."""
    p = argparse.ArgumentParser(prog="python -m app.service")
    p.add_argument("--service", required=True)
    p.add_argument("--company", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--parent-pid", type=int, required=True)
    p.add_argument("--hop-ports", required=True, help="LO-HI: the ports a hop may lead to")
    p.add_argument("--api-port", type=int, required=True)
    ns = p.parse_args(argv)
    lo, _, hi = ns.hop_ports.partition("-")
    return ServiceArgs(
        ns.service,
        ns.company,
        ns.port,
        ns.token,
        ns.parent_pid,
        read_secret(stdin),
        range(int(lo), int(hi) + 1),
        ns.api_port,
    )


def read_secret(fd: int) -> bytes:
    """The secret line from `fd` (a pipe the launcher closes after writing it)."""
    data = b""
    while len(data) < 2 * SECRET_BYTES + 1:
        chunk = os.read(fd, 2 * SECRET_BYTES + 1 - len(data))
        if not chunk:
            break
        data += chunk
    try:
        secret = bytes.fromhex(data.decode("ascii").strip())
    except ValueError:
        secret = b""
    if len(secret) != SECRET_BYTES:
        print("no chain secret on stdin: every /process request would be refused", flush=True)
        sys.exit(2)
    return secret


def die_with_parent(parent_pid: int) -> None:
    """Linux: the kernel sends SIGTERM when the parent dies. Checked once after setting it,
    because the parent may already have died before prctl ran."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:
        os._exit(0)


async def _watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    # Fallback where PR_SET_PDEATHSIG does not exist: re-parenting means the parent is gone.
    while not stop.is_set():
        if os.getppid() != parent_pid:
            stop.set()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), WATCHDOG_S)


async def serve(args: ServiceArgs) -> int:
    # Below the panel's priority: when 40 services start at once on 2 cores, the window and
    # the control API must still get the CPU first.
    os.nice(SERVICE_NICE)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    faults = Faults.from_env()
    if args.service in faults.exit_at_start:
        print(f"fault injected: {args.service} exits at start", flush=True)
        return EXIT_FAULT
    if faults.start_delay_ms:
        await asyncio.sleep(faults.start_delay_ms / 1000)
    identity = current_identity(
        args.service,
        args.company,
        args.port,
        args.token,
        args.secret,
        args.hop_ports,
        args.api_port,
    )
    runner = web.AppRunner(
        make_app(identity),
        access_log=None,
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        # A caller that goes away (a cancelled journey, Stop All) cancels this hop and, through
        # its own call, the rest of the chain: nothing is held for a customer no one awaits.
        handler_cancellation=True,
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        code = EXIT_ADDR_IN_USE if exc.errno == errno.EADDRINUSE else 1
        print(f"{BIND_FAILED_PREFIX} port={args.port} errno={exc.errno} {exc.strerror}", flush=True)
        await runner.cleanup()
        return code
    print(f"{READY_PREFIX} service={args.service} port={args.port} pid={os.getpid()}", flush=True)
    watchdog = asyncio.create_task(_watch_parent(args.parent_pid, stop))
    await stop.wait()
    watchdog.cancel()
    await runner.cleanup()
    print(f"stopped service={args.service} port={args.port}", flush=True)
    return 0


def run(args: ServiceArgs) -> None:
    """Entry point of a service process; never returns."""
    die_with_parent(args.parent_pid)
    code = asyncio.run(serve(args))
    sys.stdout.flush()
    # Skip interpreter finalisation: the socket is closed and nothing else needs tearing down,
    # and finalisation is most of the time a stop takes.
    os._exit(code)
