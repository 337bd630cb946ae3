"""Traffic through the control API in-process, and the CLI against a real `python -m app serve`."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable
from typing import Any

from app.core.settings import Settings
from app.core.waiting import until
from tests.api.test_api import api, call
from tests.api.test_cli import cli
from tests.conftest import run
from tests.helpers import ServeProcess, journey

JSON = {"Content-Type": "application/json"}
BAD_BODIES: list[bytes] = [
    b'{"rate": 0}',
    b'{"rate": -1}',
    b'{"rate": 1000000}',
    b'{"rate": "20"}',
    b'{"rate": true}',
    b"{}",
    b'{"rate": 5, "seed": -1}',
]


def test_traffic_routes_refuse_bad_rates_and_no_journey_then_run(settings: Settings) -> None:
    async def scenario() -> None:
        async with api(settings) as (core, _, http):
            status, body = await call(http, "POST", "/api/traffic/start", json={"rate": 5})
            assert status == 409 and "no journey is running" in body["error"], body
            status, _ = await call(
                http, "POST", "/api/journey/simulate", json={"journey": journey("Api Co")}
            )
            assert status == 200
            for raw in BAD_BODIES:
                status, body = await call(
                    http, "POST", "/api/traffic/start", data=raw, headers=JSON
                )
                assert status == 400 and body["problems"][0]["field"] in ("rate", "seed"), raw
                assert not core.traffic.running, raw  # nothing changed
            for raw in (b'{"rate": NaN}', b'{"rate": Infinity}', b'{"rate": 1e999}'):
                # Not JSON (RFC 8259): refused before any field is read.
                status, body = await call(
                    http, "POST", "/api/traffic/start", data=raw, headers=JSON
                )
                assert status == 400 and "is not JSON" in body["error"], (raw, body)
                assert not core.traffic.running, raw
            status, body = await call(http, "POST", "/api/traffic/start", json={"rate": 10})
            assert status == 200 and body["running"] and body["rate"] == 10, body
            # Ten journeys and a closed second: the series gains its first point only at the
            # report after a wall-clock second ends, which ten journeys at 10/s can beat.
            held = await until(
                lambda: (now := core.traffic.status()).completed >= 10 and bool(now.series), 20
            )
            assert held
            status, body = await call(http, "POST", "/api/traffic/start", data=b'{"rate": 0}')
            assert status in (400, 415)  # no JSON content type: the gate; then the rate
            status, body = await call(http, "GET", "/api/traffic/status")
            assert status == 200 and body["rate"] == 10 and "series" not in body
            assert {"running", "sent", "completed", "failed", "inFlight", "p50Ms", "p95Ms"} <= set(
                body
            )
            assert [s["stepName"] for s in body["perStep"]] == ["Login", "Browse"]
            _, body = await call(http, "GET", "/api/traffic/status?series=1")
            assert body["series"] and set(body["series"][-1]) >= {"at", "completed", "perStep"}
            status, _ = await call(http, "GET", "/api/traffic/status?series=x")
            assert status == 400
            status, body = await call(http, "POST", "/api/traffic/stop")
            assert status == 200 and not body["running"] and body["inFlight"] == 0, body
            assert body["sent"] == body["completed"] + body["failed"] + body["cancelled"]

    run(scenario(), timeout=60)


def _counts(out: str) -> dict[str, int]:
    found = re.findall(r"(sent|completed|failed|cancelled|in flight) (\d+)", out)
    return {k: int(v) for k, v in found}


def test_cli_traffic_commands_against_a_running_server(settings: Settings) -> None:
    server = ServeProcess(settings, BIZOBS_ESSENTIAL_SERVICES="").start()
    try:
        out = cli(settings, "traffic", "start", "--rate", "10")
        assert out.returncode == 1 and "no journey is running" in out.stderr, out
        answer: Any = server.call("POST", "/api/journey/simulate", {"journey": journey("Cli Co")})
        assert answer["ok"], answer
        out = cli(settings, "traffic", "start", "--rate", "0")
        assert out.returncode == 1 and "rate must be from 0.1 to 2000" in out.stderr, out
        out = cli(settings, "traffic", "start", "--rate", "10")
        assert out.returncode == 0 and "traffic running at 10 journeys/s" in out.stdout, out
        status = cli(settings, "traffic", "status")
        assert status.returncode == 0 and "traffic running" in status.stdout, status
        out = cli(settings, "traffic", "stop")
        assert out.returncode == 0 and "traffic stopped" in out.stdout, out
        counts = _counts(out.stdout)
        ended = counts["completed"] + counts["failed"] + counts["cancelled"]
        assert counts["in flight"] == 0 and counts["sent"] == ended
        assert "Login" in out.stdout and "Browse" in out.stdout
    finally:
        server.stop()


def test_restart_a_broken_service_through_the_api_and_the_cli(settings: Settings) -> None:
    """A killed service's cell says why; `python -m app restart NAME` puts it back (the same
    port: it is free) and traffic goes on; an unknown name is a 404 / exit 1 saying so."""
    server = ServeProcess(settings, BIZOBS_ESSENTIAL_SERVICES="").start()
    try:
        answer: Any = server.call("POST", "/api/journey/simulate", {"journey": journey("Fix Co")})
        assert answer["ok"], answer
        [browse] = [s for s in answer["services"] if s["name"] == "BrowseService"]
        assert server.call("POST", "/api/traffic/start", {"rate": 10})["ok"]
        os.kill(browse["pid"], signal.SIGKILL)
        cell = _cell(server, browse["port"], lambda c: bool(c["trouble"]))
        assert cell["state"] == "stale" and cell["trouble"] == "exited (code -9)", cell
        status = server.call("GET", "/api/traffic/status")
        assert status["paused"] == f"BrowseService on {browse['port']} exited (code -9)", status
        out = cli(settings, "restart", "BrowseService")
        assert out.returncode == 0, out
        assert f"on port {browse['port']}" in out.stdout and "restarted" in out.stdout, out
        cell = _cell(server, browse["port"], lambda c: c["state"] == "allocated")
        assert cell["pid"] != browse["pid"] and not cell["trouble"], cell
        assert server.call("GET", "/api/traffic/status")["paused"] is False
        missing = server.call("POST", "/api/services/NoSuchService/restart")
        assert missing["httpStatus"] == 404 and "NoSuchService" in missing["error"], missing
        out = cli(settings, "restart", "NoSuchService")
        assert out.returncode == 1 and "no running service 'NoSuchService'" in out.stderr, out
        assert server.call("POST", "/api/traffic/stop")["ok"]
    finally:
        server.stop()


def _cell(server: ServeProcess, port: int, ready: Callable[[dict[str, Any]], bool]) -> Any:
    """The port's cell once `ready` says the panel has seen what happened to it (bounded: the
    panel is another process, and its answer is the only event there is)."""
    deadline = time.monotonic() + 5
    while True:
        ports = server.call("GET", "/api/ports/status")["ports"]
        cell = next(p for p in ports if p["port"] == port)
        if ready(cell) or time.monotonic() > deadline:
            return cell
        time.sleep(0.02)  # between polls of another process's API
