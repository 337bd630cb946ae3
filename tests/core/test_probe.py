"""The OS scan: the fast Linux path agrees with psutil's, and follows listeners as they change."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from app.core import probe
from app.core.waiting import until
from tests.conftest import run


def _listen(port: int, family: int = socket.AF_INET) -> socket.socket:
    sock = socket.socket(family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", port))
    sock.listen()
    return sock


def test_fast_scan_matches_psutil(port_range: range) -> None:
    lo = port_range.start
    v4, v6 = _listen(lo), _listen(lo + 1, socket.AF_INET6)
    child = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(lo + 2), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert run(until(lambda: lo + 2 in probe.scan_listeners(port_range), 10))
        fast = probe.scan_listeners(port_range)
        assert fast == probe._psutil_scan(set(port_range))
        assert set(fast) == {lo, lo + 1, lo + 2}
        assert fast[lo + 2].pid == child.pid and fast[lo].pid == fast[lo + 1].pid
        assert probe._netlink_listening_sockets(set(port_range)) == (
            probe._LinuxListeners._proc_listening_sockets(set(port_range))
        )
    finally:
        v4.close()
        v6.close()
        child.terminate()
        child.wait(10)


def test_scan_follows_a_port_changing_hands(port_range: range) -> None:
    port = port_range.start
    first = _listen(port)
    assert probe.scan_listeners([port])[port].pid is not None
    first.close()
    assert probe.scan_listeners([port]) == {}
    child = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert run(until(lambda: port in probe.scan_listeners([port]), 10))
        assert probe.scan_listeners([port])[port].pid == child.pid
    finally:
        child.terminate()
        child.wait(10)
    assert run(until(lambda: port not in probe.scan_listeners([port]), 10))


def test_can_bind_reads_a_listener_as_taken(port_range: range) -> None:
    port = port_range.start
    assert probe.can_bind(port)
    with _listen(port):
        assert not probe.can_bind(port)
    assert probe.can_bind(port)


def test_our_address_stands_for_the_port_and_the_others_are_kept(port_range: range) -> None:
    """A socket on 127.0.0.2:P beside one on 127.0.0.1:P: the 127.0.0.1 one stands for the port
    (our services listen there), whichever the kernel lists first; the other is kept as text."""
    port = port_range.start
    other = socket.socket()
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    other.bind(("127.0.0.2", port))
    other.listen()
    try:
        assert probe.scan_listeners([port])[port].address == "127.0.0.2"
        with _listen(port):
            found = probe.scan_listeners([port])[port]
            assert found.address == "127.0.0.1"
            assert len(found.others) == 1 and found.others[0].endswith("on 127.0.0.2")
            assert probe._psutil_scan({port}) == {port: found}
    finally:
        other.close()


def test_a_new_childs_listener_is_found_among_the_likely_owners_without_a_walk_of_proc(
    port_range: range,
) -> None:
    """A forked service listens before its fork reply names its pid: the scan looks among the
    fork server's children (`children`) first, and a walk of every process's descriptors
    (4–8 ms on the window's loop) is never needed for it."""
    port = port_range.start
    child = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert child.pid in probe.children(os.getpid())
        assert run(until(lambda: probe.can_bind(port) is False, 10))
        scanner = probe._LinuxListeners()  # no cached owners
        looked_in: list[list[str]] = []
        resolve = scanner._resolve

        def recorded(inodes: set[int], pid_dirs: list[str]) -> set[int]:
            looked_in.append(list(pid_dirs))
            return resolve(inodes, pid_dirs)

        scanner._resolve = recorded  # type: ignore[method-assign]
        found = scanner.scan({port}, probe.children(os.getpid()))
        assert found[port].pid == child.pid
        assert looked_in == [[str(child.pid)]]  # the likely owners only: no walk of /proc
    finally:
        child.terminate()
        child.wait(10)
    assert child.pid not in probe.children(os.getpid())  # reaped: no longer a child
    assert probe.children(2**22 + 7) == []  # no such process
