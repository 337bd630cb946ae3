"""The fork server: a small pre-warmed process that forks one step service per request.

Started by `app.core.forkserver.ForkServerLauncher` (never inside the panel/Qt process) as
`python -m app.service.forkserver --token=T --parent-pid P --fd N`. It imports the service code
once, freezes the heap (`gc.freeze`, so children share those pages copy-on-write), then serves
requests from the panel over an AF_UNIX SOCK_SEQPACKET socket (one message per datagram):

  panel -> server  {"id": 7, "service": .., "company": .., "port": .., "token": ..,
                    "secret": hex, "hopPorts": [lo, hi], "apiPort": ..}
  server -> panel  {"id": 7, "pid": 1234} + fds [stdout/stderr pipe read end, pidfd of the child]
                   {"id": 7, "error": ".."} when the fork itself failed
                   {"exit": 1234, "code": 0} when a child has been reaped (negative: signal)

The server reaps its children (SIGCHLD) and exits when the panel closes the socket or dies
(EOF, a pidfd on the panel, and PR_SET_PDEATHSIG). A child runs the very `serve()` the exec
launcher runs, in its own session, and dies with the server (PR_SET_PDEATHSIG) and with the
panel (a pidfd watch), so it behaves exactly like a service started by a fresh interpreter.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import secrets
import select
import selectors
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any

# The runner imports everything a service needs (aiohttp and the step app: ≈0.2 s of CPU in a
# fresh interpreter): imported once here, before gc.freeze(), never again in a child.
from aiohttp import ClientSession, web

from app.service.app import current_identity, make_app
from app.service.protocol import CHAIN_HEADER, HOP_HEADER, SECRET_BYTES, credential, hop_url
from app.service.runner import ServiceArgs, die_with_parent, serve

MODULE = "app.service.forkserver"  # what the launcher runs, and what leak checks look for
MAX_MESSAGE = 64 * 1024
EXIT_CHILD_CRASHED = 70  # a child that failed before or outside serve() (EX_SOFTWARE)
SETUP_TIMEOUT_S = 5.0  # a child's setup takes well under 1 ms; never hang the server on one
PREWARM_TIMEOUT_S = 5.0
WARM_TRACEPARENT = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"


@dataclass
class _Server:
    sock: socket.socket
    panel_fd: int
    wake_r: int
    wake_w: int
    selector: selectors.BaseSelector

    def close_in_child(self) -> None:
        """A forked child keeps only the pidfd on the panel (to die with it): not the socket
        (requests are the server's) nor the server's wake-up pipe and selector."""
        signal.set_wakeup_fd(-1)
        self.selector.close()
        self.sock.close()
        os.close(self.wake_r)
        os.close(self.wake_w)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=f"python -m {MODULE}")
    p.add_argument("--token", required=True, help="identity of this server's processes")
    p.add_argument("--parent-pid", type=int, required=True, help="the panel")
    p.add_argument("--fd", type=int, required=True, help="the panel's SOCK_SEQPACKET socket")
    return p.parse_args(argv)


def main(argv: list[str]) -> None:
    ns = parse_args(argv)
    die_with_parent(ns.parent_pid)
    prewarm()
    server = _setup(ns)
    gc.freeze()  # everything imported so far is shared with the children, never re-scanned
    code = 0
    try:
        _loop(server)
    except BaseException:
        traceback.print_exc()
        code = 1
    # Children get their PR_SET_PDEATHSIG; nothing else to tear down.
    os._exit(code)


def prewarm() -> None:
    """Serve one signed chain of two hops in this process, once, before any child is forked:
    what aiohttp, the JSON and trace code set up lazily on a first request (and the pages it
    touches) is then the children's from birth. A fresh service's first hop cost ≈6 ms instead
    of ≈2 (docs/performance.md, "Against the targets"); a switch no longer warms every new
    chain by hand."""
    with contextlib.suppress(Exception):  # an optimisation: a failure only costs the speed-up
        asyncio.run(asyncio.wait_for(_two_hops(), PREWARM_TIMEOUT_S))


async def _two_hops() -> None:
    secret = secrets.token_bytes(SECRET_BYTES)
    sockets = [socket.socket() for _ in range(2)]
    for sock in sockets:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    runners = []
    try:
        for name, sock, port in zip(("AService", "BService"), sockets, ports, strict=True):
            ident = current_identity(
                name, "warm", port, "t", secret, range(min(ports), max(ports) + 1)
            )
            runner = web.AppRunner(make_app(ident), access_log=None, handle_signals=False)
            await runner.setup()
            await web.SockSite(runner, sock).start()
            runners.append(runner)
        hops: list[dict[str, object]] = [
            {
                "url": hop_url(port),
                "stepName": name,
                "serviceName": name,
                "latencyMs": 0,
                "errorRate": 0,
                "errorType": "internal",
                "fields": {},
            }
            for name, port in zip(("AService", "BService"), ports, strict=True)
        ]
        body = json.dumps(
            {
                "v": 2,
                "customer": {"id": "warm"},
                "hops": hops,
                "thinkTimeMs": 0,
                "journey": {},
                "deadline": time.monotonic() + 5,
            }
        ).encode()
        headers = {
            "Content-Type": "application/json",
            HOP_HEADER: "0",
            CHAIN_HEADER: credential(secret, 0, body),
            "traceparent": WARM_TRACEPARENT,
        }
        async with ClientSession() as http:
            for _ in range(2):
                async with http.post(hop_url(ports[0]), data=body, headers=headers) as resp:
                    await resp.read()
            async with http.get(f"http://127.0.0.1:{ports[0]}/health") as resp:
                await resp.read()
    finally:
        for runner in runners:
            await runner.cleanup()
        for sock in sockets:
            sock.close()


def _setup(ns: argparse.Namespace) -> _Server:
    sock = socket.socket(fileno=ns.fd)
    sock.setblocking(True)
    try:
        panel_fd = os.pidfd_open(ns.parent_pid)
    except ProcessLookupError:
        os._exit(0)  # the panel is already gone
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    # SIGCHLD wakes the select loop through the wake-up pipe; the handler itself does nothing.
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    selector = selectors.DefaultSelector()
    for fd in (sock.fileno(), panel_fd, wake_r):
        selector.register(fd, selectors.EVENT_READ)
    return _Server(sock, panel_fd, wake_r, wake_w, selector)


def _loop(server: _Server) -> None:
    while True:
        for key, _ in server.selector.select():
            if key.fd == server.panel_fd:
                return  # the panel died
            if key.fd == server.wake_r:
                _drain(server.wake_r)
                _reap(server)
            elif not _handle_request(server):
                return  # the panel closed its end (aclose) or died


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 512):
            pass


def _reap(server: _Server) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(server.sock, {"exit": pid, "code": os.waitstatus_to_exitcode(status)})


def _send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        if fds:
            socket.send_fds(sock, [data], fds)
        else:
            sock.send(data)


def _handle_request(server: _Server) -> bool:
    try:
        data = server.sock.recv(MAX_MESSAGE)
    except OSError:
        return False
    if not data:
        return False
    try:
        request = json.loads(data)
        lo, hi = (int(p) for p in request["hopPorts"])
        args = ServiceArgs(
            service=str(request["service"]),
            company=str(request["company"]),
            port=int(request["port"]),
            token=str(request["token"]),
            parent_pid=os.getpid(),  # a forked child's parent is this server
            # Over the panel's private socket: the secret never reaches a command line.
            secret=bytes.fromhex(str(request["secret"])),
            hop_ports=range(lo, hi + 1),
            api_port=int(request["apiPort"]),
        )
        if len(args.secret) != SECRET_BYTES:  # as an exec'd service: no secret, no service
            raise ValueError("no chain secret: every /process request would be refused")
    except (ValueError, KeyError, TypeError) as exc:
        _send(server.sock, {"id": _request_id(data), "error": f"bad request: {exc!r}"})
        return True
    _fork(server, request.get("id"), args)
    return True


def _request_id(data: bytes) -> Any:
    with contextlib.suppress(ValueError, AttributeError):
        return json.loads(data).get("id")
    return None


def _fork(server: _Server, request_id: Any, args: ServiceArgs) -> None:
    out_r, out_w = os.pipe()
    setup_r, setup_w = os.pipe()
    try:
        pid = os.fork()
    except OSError as exc:
        for fd in (out_r, out_w, setup_r, setup_w):
            os.close(fd)
        _send(server.sock, {"id": request_id, "error": f"fork failed: {exc}"})
        return
    if pid == 0:
        os.close(out_r)
        os.close(setup_r)
        _child(server, args, out_w, setup_w)  # never returns
    os.close(out_w)
    os.close(setup_w)
    # Reply only once the child has its own session and its death signal: the panel may signal
    # its process group at once (as it may an exec'd service, set up before exec).
    select.select([setup_r], [], [], SETUP_TIMEOUT_S)
    os.close(setup_r)
    # Opened before this server can reap the child, so the panel's watch can never miss its
    # exit nor end up watching a recycled pid.
    pidfd = os.pidfd_open(pid)
    try:
        _send(server.sock, {"id": request_id, "pid": pid}, [out_r, pidfd])
    finally:
        os.close(out_r)
        os.close(pidfd)


def _child(server: _Server, args: ServiceArgs, out_w: int, setup_w: int) -> None:
    """In the forked child: become a service exactly like `python -m app.service` would."""
    code = EXIT_CHILD_CRASHED
    try:
        server.close_in_child()
        os.setsid()  # own session and process group: the panel signals the group
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        os.close(out_w)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        die_with_parent(args.parent_pid)  # PR_SET_PDEATHSIG: dies with this fork server
        os.close(setup_w)  # set up: the server may hand this process to the panel now
        code = asyncio.run(_serve_child(args, server.panel_fd))
    except BaseException:  # the child must never return into the server's loop
        with contextlib.suppress(BaseException):
            traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)  # skip interpreter finalisation, as the exec launcher's services do


async def _serve_child(args: ServiceArgs, panel_fd: int) -> int:
    """Run `serve()`, and stop it gracefully (SIGTERM to itself) when the panel dies: the
    server's pidfd on the panel, inherited, so it is the panel's death and no recycled pid's."""
    loop = asyncio.get_running_loop()

    def panel_died() -> None:
        loop.remove_reader(panel_fd)
        os.kill(os.getpid(), signal.SIGTERM)  # serve()'s own graceful stop

    loop.add_reader(panel_fd, panel_died)
    try:
        return await serve(args)
    finally:
        loop.remove_reader(panel_fd)


if __name__ == "__main__":
    main(sys.argv[1:])
