"""The port-cleanup acceptance check against `python -m app serve` — and proof it can fail."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from app.core.settings import Settings
from tests.helpers import ROOT, ServeProcess

CHECK = ROOT / "scripts" / "port-cleanup-check"


def _serve(settings: Settings, cleanup: bool) -> Iterator[str]:
    env = {"BIZOBS_ESSENTIAL_SERVICES": "DiscoveryService-Dynatrace,PurchaseService-Dynatrace"}
    if not cleanup:
        env["BIZOBS_CLEANUP"] = "0"
    server = ServeProcess(settings, **env).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    yield from _serve(settings, cleanup=True)


@pytest.fixture
def server_without_cleanup(settings: Settings) -> Iterator[str]:
    yield from _serve(settings, cleanup=False)


def _check(api: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK), "--api", api], capture_output=True, text=True, timeout=300
    )


def test_cleanup_check_passes_against_serve(server: str) -> None:
    result = _check(server)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CLEANUP VERIFIED" in result.stdout
    assert result.stdout.count("PASS") >= 15 and "FAIL" not in result.stdout


def test_cleanup_check_ignores_a_foreign_listener_in_the_pool(
    settings: Settings, server: str
) -> None:
    """Not ours, so the panel skips that port and never touches it: the check must too."""
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed test's port
        squatter.bind(("127.0.0.1", settings.port_lo + 1))
        squatter.listen()
        result = _check(server)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CLEANUP VERIFIED" in result.stdout and "FAIL" not in result.stdout
    assert f"foreign listener on {settings.port_lo + 1}" in result.stdout


def test_cleanup_check_fails_when_cleanup_is_disabled(server_without_cleanup: str) -> None:
    result = _check(server_without_cleanup)
    assert result.returncode == 1, result.stdout
    assert "FAIL" in result.stdout and "previous journey's pids gone" in result.stdout


def test_cleanup_check_fails_when_no_server(settings: Settings) -> None:
    result = _check(f"http://127.0.0.1:{settings.api_port}")
    assert result.returncode == 1 and "not reachable" in result.stdout
