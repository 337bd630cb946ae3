"""Who listens where, and could a new service bind a port: one OS scan, one bind probe."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable

import psutil

from app.core.model import Listener

LOOPBACK = "127.0.0.1"


def scan_listeners(ports: Iterable[int]) -> dict[int, Listener]:
    """One global scan of TCP listeners, restricted to `ports`.

    A single psutil.net_connections call (≈5 ms) instead of per-process calls (≈130 ms for 40).
    """
    wanted = set(ports)
    found: dict[int, Listener] = {}
    info_cache: dict[int, tuple[str, float | None]] = {}
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status != psutil.CONN_LISTEN or not conn.laddr:
            continue
        port = conn.laddr.port
        if port not in wanted or (port in found and found[port].pid is not None):
            continue
        pid = conn.pid
        name, ctime = _process_info(pid, info_cache) if pid else ("?", None)
        found[port] = Listener(port=port, pid=pid, name=name, create_time=ctime)
    return found


def _process_info(pid: int, cache: dict[int, tuple[str, float | None]]) -> tuple[str, float | None]:
    if pid not in cache:
        try:
            proc = psutil.Process(pid)
            cache[pid] = (proc.name(), proc.create_time())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            cache[pid] = ("?", None)
    return cache[pid]


def can_bind(port: int, host: str = LOOPBACK) -> bool:
    """Could a new service bind `port` right now?

    SO_REUSEADDR as aiohttp binds: without it a port reads busy for ~60 s after every restart
    because of TIME_WAIT connections, although a service could bind it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def process_create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def is_ours(pid: int, create_time: float, token: str) -> bool:
    """True only if `pid` is still the very process we spawned: create time and token match.

    A pid reused by an unrelated process has another create time; the token (on the service's
    command line) guards against clock-resolution collisions.
    """
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) > 0.01:
            return False
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return f"--token={token}" in proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def is_alive(pid: int, create_time: float) -> bool:
    """Is this exact process (pid + create time) still running (not a zombie)?"""
    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - create_time) <= 0.01 and (
            proc.status() != psutil.STATUS_ZOMBIE
        )
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
