"""Who listens where, and could a new service bind a port: one OS scan, one bind probe."""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import psutil

from app.core.model import Listener

LOOPBACK = "127.0.0.1"


def children(pid: int) -> list[int]:
    """The processes `pid`'s main thread forked and that still run (Linux's
    /proc/<pid>/task/<pid>/children: one read); [] elsewhere or once `pid` is gone."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(child) for child in f.read().split()]
    except (OSError, ValueError):
        return []


def scan_listeners(ports: Iterable[int], likely_owners: Iterable[int] = ()) -> dict[int, Listener]:
    """One scan of TCP listeners, restricted to `ports`.

    On Linux: the kernel's socket tables, with owners resolved from a cache of socket inodes
    (one readlink per listener to confirm), so a refresh costs well under a millisecond; a full
    walk of /proc happens only when a listener appears whose owner is not known yet and is not
    among `likely_owners` (the pids the caller expects, e.g. its own services). Elsewhere:
    one psutil.net_connections call (≈5–15 ms: it walks every process's descriptors).
    """
    wanted = set(ports)
    if _PROC_NET.exists():
        try:
            return _LINUX.scan(wanted, likely_owners)
        except OSError:
            pass
    return _psutil_scan(wanted)


def _psutil_scan(wanted: set[int]) -> dict[int, Listener]:
    found: dict[int, list[Listener]] = {}
    info_cache: dict[int, tuple[str, float | None]] = {}
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status != psutil.CONN_LISTEN or not conn.laddr or conn.laddr.port not in wanted:
            continue
        pid = conn.pid
        name, ctime = _process_info(pid, info_cache) if pid else ("?", None)
        port = conn.laddr.port
        found.setdefault(port, []).append(Listener(port, pid, name, ctime, conn.laddr.ip))
    return {port: _primary(listeners) for port, listeners in found.items()}


def _primary(listeners: list[Listener]) -> Listener:
    """One listener stands for the port: the one on our services' address if any (a socket on
    127.0.0.2 beside ours must not make ours look gone), else a wildcard one, else the first.
    The others are kept as text, for the grid to show."""

    def rank(lst: Listener) -> int:
        return 0 if lst.address == LOOPBACK else 1 if lst.address in ("0.0.0.0", "::") else 2

    ordered = sorted(listeners, key=rank)
    first, rest = ordered[0], ordered[1:]
    seen = {(first.address, first.pid)}
    others = []
    for lst in rest:
        if (lst.address, lst.pid) not in seen:  # one process may listen twice (v4 and v6)
            seen.add((lst.address, lst.pid))
            others.append(f"{lst.name} (pid {lst.pid or '?'}) on {lst.address}")
    return replace(first, others=tuple(others))


_PROC_NET = Path("/proc/net/tcp")
_TCP_LISTEN = "0A"


@dataclass(frozen=True)
class _Owner:
    pid: int
    fd: str
    name: str
    create_time: float | None


class _LinuxListeners:
    """Listening sockets from /proc/net/tcp{,6}; owners by socket inode, cached."""

    def __init__(self) -> None:
        self._owners: dict[int, _Owner] = {}
        self._unowned: set[int] = set()  # owners we cannot see (another user's): don't retry

    def scan(self, wanted: set[int], likely_owners: Iterable[int]) -> dict[int, Listener]:
        sockets = self._listening_sockets(wanted)
        listed = {inode for per_port in sockets.values() for _, inode in per_port}
        unknown = {i for i in listed - self._unowned if not self._confirmed(i)}
        if unknown:
            # A new socket is most likely a new process's: those owning no known socket yet
            # first, the newest first (each one looked at costs its descriptors' readlinks).
            known = {owner.pid for owner in self._owners.values()}
            first = sorted(set(likely_owners), key=lambda pid: (pid in known, -pid))
            unknown = self._resolve(unknown, [str(p) for p in first])
        if unknown:
            unknown = self._resolve(unknown, [d for d in os.listdir("/proc") if d.isdigit()])
        self._owners = {i: o for i, o in self._owners.items() if i in listed}
        self._unowned = (self._unowned & listed) | unknown
        return {
            port: _primary([self._listener(port, addr, inode) for addr, inode in per_port])
            for port, per_port in sockets.items()
        }

    def _listener(self, port: int, address: str, inode: int) -> Listener:
        owner = self._owners.get(inode)
        if owner is None:  # not readable (another user's process): like psutil, no pid
            return Listener(port, None, "?", None, address)
        return Listener(port, owner.pid, owner.name, owner.create_time, address)

    @staticmethod
    def _listening_sockets(wanted: set[int]) -> dict[int, list[tuple[str, int]]]:
        try:
            return _netlink_listening_sockets(wanted)
        except OSError:
            return _LinuxListeners._proc_listening_sockets(wanted)

    @staticmethod
    def _proc_listening_sockets(wanted: set[int]) -> dict[int, list[tuple[str, int]]]:
        found: dict[int, list[tuple[str, int]]] = {}
        for table, family in (
            ("/proc/net/tcp", socket.AF_INET),
            ("/proc/net/tcp6", socket.AF_INET6),
        ):
            try:
                with open(table) as f:
                    next(f, None)
                    for line in f:
                        fields = line.split()
                        if fields[3] != _TCP_LISTEN:
                            continue
                        hex_addr, _, hex_port = fields[1].rpartition(":")
                        port = int(hex_port, 16)
                        if port in wanted:
                            address = _proc_address(hex_addr, family)
                            found.setdefault(port, []).append((address, int(fields[9])))
            except FileNotFoundError:  # no IPv6
                continue
        return found

    def _confirmed(self, inode: int) -> bool:
        owner = self._owners.get(inode)
        if owner is None:
            return False
        try:
            return os.readlink(f"/proc/{owner.pid}/fd/{owner.fd}") == f"socket:[{inode}]"
        except OSError:
            return False

    def _resolve(self, inodes: set[int], pid_dirs: Iterable[str]) -> set[int]:
        """Find the owners of `inodes` among `pid_dirs`; returns the inodes still unknown."""
        targets = {f"socket:[{i}]": i for i in inodes}
        for pid_dir in pid_dirs:
            if not targets:
                break
            try:
                fds = os.listdir(f"/proc/{pid_dir}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    link = os.readlink(f"/proc/{pid_dir}/fd/{fd}")
                except OSError:
                    continue
                if link in targets:
                    pid = int(pid_dir)
                    name, ctime = _process_info(pid, {})
                    self._owners[targets.pop(link)] = _Owner(pid, fd, name, ctime)
        return set(targets.values())


_LINUX = _LinuxListeners()

# sock_diag (what `ss -lt` uses): the kernel dumps only listening sockets, not the thousands of
# TIME_WAIT entries that make reading /proc/net/tcp cost milliseconds.
_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST_DUMP = 0x1 | 0x300
_NLMSG_DONE = 3
_NLMSG_ERROR = 2
_TCP_LISTEN_STATE = 10
_NLMSGHDR = struct.Struct("=IHHII")
_DIAG_REQ = struct.Struct("=BBBxI8s32sI8s")  # family, protocol, ext, states, id (48 bytes)
_DIAG_MSG = struct.Struct("=BBBBHH16s16sI8sIIIII")


def _netlink_listening_sockets(wanted: set[int]) -> dict[int, list[tuple[str, int]]]:
    found: dict[int, list[tuple[str, int]]] = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(1.0)
        for seq, family in enumerate((socket.AF_INET, socket.AF_INET6), 1):
            req = _DIAG_REQ.pack(
                family, socket.IPPROTO_TCP, 0, 1 << _TCP_LISTEN_STATE, b"", b"", 0, b""
            )
            hdr = _NLMSGHDR.pack(
                _NLMSGHDR.size + len(req), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST_DUMP, seq, 0
            )
            nl.send(hdr + req)
            _read_dump(nl, wanted, found)
    return found


def _read_dump(
    nl: socket.socket, wanted: set[int], found: dict[int, list[tuple[str, int]]]
) -> None:
    while True:
        data = nl.recv(65536)
        offset = 0
        while offset + _NLMSGHDR.size <= len(data):
            length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
            if kind == _NLMSG_DONE:
                return
            if kind == _NLMSG_ERROR or length < _NLMSGHDR.size:
                raise OSError("sock_diag dump failed")
            msg = _DIAG_MSG.unpack_from(data, offset + _NLMSGHDR.size)
            family, port, raw_addr, inode = msg[0], socket.ntohs(msg[4]), msg[6], msg[14]
            if port in wanted:
                size = 4 if family == socket.AF_INET else 16
                address = socket.inet_ntop(family, raw_addr[:size])
                found.setdefault(port, []).append((address, inode))
            offset += (length + 3) & ~3


def _proc_address(hex_addr: str, family: int) -> str:
    """/proc/net/tcp{,6} print addresses as host-order 32-bit words in hex."""
    raw = bytes.fromhex(hex_addr)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(family, words)


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
