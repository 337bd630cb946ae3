"""The port-cleanup acceptance check against `python -m app serve` — and proof it can fail."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Settings

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "scripts" / "port-cleanup-check"


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """One line of the server's output, or '' if none came within `timeout`."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if sel.select(left):
                return proc.stdout.readline()
    return ""


def _serve(settings: Settings, cleanup: bool) -> Iterator[str]:
    env = dict(
        os.environ,
        BIZOBS_STATE_DIR=str(settings.state_dir),
        BIZOBS_ESSENTIAL_SERVICES="DiscoveryService-Dynatrace,PurchaseService-Dynatrace",
    )
    if not cleanup:
        env["BIZOBS_CLEANUP"] = "0"
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "--ports", f"{settings.port_lo}-{settings.port_hi}",
         "serve", "--port", str(settings.api_port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        line = ""
        for _ in range(20):  # skip start-up notes until the "serving" line
            line = _read_line(proc, 30)
            if not line or "serving the control API" in line:
                break
        assert "serving the control API" in line, f"server did not start: {line!r}"
        yield f"http://127.0.0.1:{settings.api_port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    yield from _serve(settings, cleanup=True)


@pytest.fixture
def server_without_cleanup(settings: Settings) -> Iterator[str]:
    yield from _serve(settings, cleanup=False)


def _check(api: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CHECK), "--api", api], capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_cleanup_check_passes_against_serve(server: str) -> None:
    result = _check(server)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CLEANUP VERIFIED" in result.stdout
    assert result.stdout.count("PASS") >= 15 and "FAIL" not in result.stdout


def test_cleanup_check_fails_when_cleanup_is_disabled(server_without_cleanup: str) -> None:
    result = _check(server_without_cleanup)
    assert result.returncode == 1, result.stdout
    assert "FAIL" in result.stdout and "previous journey's pids gone" in result.stdout


def test_cleanup_check_fails_when_no_server(settings: Settings) -> None:
    result = _check(f"http://127.0.0.1:{settings.api_port}")
    assert result.returncode == 1 and "not reachable" in result.stdout
