"""The OS scan: the fast Linux path agrees with psutil's, and follows listeners as they change."""

from __future__ import annotations

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
