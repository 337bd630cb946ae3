"""The CLI: ports, stop-all and run, alone and next to a running server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.settings import Settings
from tests.api.test_cleanup_check import ROOT, _serve
from tests.helpers import journey


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        BIZOBS_STATE_DIR=str(settings.state_dir),
        BIZOBS_API_PORT=str(settings.api_port),
        BIZOBS_ESSENTIAL_SERVICES="",
    )
    return subprocess.run(
        [sys.executable, "-m", "app", "--ports", f"{settings.port_lo}-{settings.port_hi}", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    yield from _serve(settings, cleanup=True)


def test_ports_and_stop_all_without_a_panel(settings: Settings) -> None:
    out = cli(settings, "ports")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["PORT", "STATE", "SERVICE", "PID"]
    assert f"{len(settings.ports)} free" in out.stdout
    out = cli(settings, "stop-all")
    assert out.returncode == 0 and "stopped 0 services" in out.stdout


def test_run_prints_phases_and_results_then_stops(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "j.json"
    path.write_text(
        json.dumps(
            {
                "journey": {
                    "companyName": "Cli Co",
                    "domain": "cli.io",
                    "industryType": "SaaS",
                    "steps": [
                        {"stepName": "Signup", "serviceName": "SignupService"},
                        {"stepName": "Pay", "serviceName": "PayService"},
                    ],
                }
            }
        )
    )
    out = cli(settings, "run", str(path), "--customers", "3")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 customers, mode multiple" in out.stdout
    for phase in ("stop", "wait", "sweep", "launch", "simulate"):
        assert f"  {phase}" in out.stdout
    assert "3/3 completed" in out.stdout and "stopped 2 services" in out.stdout
    assert "customers done" not in out.stdout  # done within its first second: no progress line


def test_a_long_run_prints_its_progress_while_it_lasts(settings: Settings, tmp_path: Path) -> None:
    """60 customers through a 300 ms step, ten at a time, last about 1.8 s: a line says how
    many are done while they go through; a short run prints none (the test above)."""
    path = tmp_path / "slow.json"
    step = {"stepName": "Wait", "serviceName": "WaitService", "latencyMs": 300}
    trip = {"companyName": "Slow Co", "domain": "slow.io", "industryType": "x", "steps": [step]}
    path.write_text(json.dumps({"journey": trip}))
    out = cli(settings, "run", str(path), "--customers", "60")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    progress = [line for line in lines if "customers done" in line]
    assert progress, out.stdout
    done = [int(line.split()[0]) for line in progress]
    assert all(0 < n < 60 for n in done) and done == sorted(done)
    assert all(line.endswith("failed") and "/ 60 customers done · " in line for line in progress)
    simulate = [i for i, line in enumerate(lines) if line.startswith("  simulate")]
    assert simulate[0] < lines.index(progress[0]) < simulate[-1]  # between started and finished


def test_run_rejects_bad_input_clearly(settings: Settings, tmp_path: Path) -> None:
    out = cli(settings, "run", "no-such-template")
    assert out.returncode == 2 and "no template 'no-such-template'" in out.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    out = cli(settings, "run", str(bad))
    assert out.returncode == 2 and "not valid JSON" in out.stderr
    out = cli(settings, "--ports", "9-1", "ports")
    assert out.returncode == 2 and "not valid" in out.stderr


def test_ports_and_stop_all_go_through_a_running_server(settings: Settings, server: str) -> None:
    body = json.dumps(
        {
            "journey": {
                "companyName": "Api Co",
                "domain": "api.io",
                "industryType": "x",
                "steps": [{"stepName": "A", "serviceName": "AService"}],
            }
        }
    )
    req = urllib.request.Request(
        f"{server}/api/journey/simulate",
        data=body.encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert json.loads(resp.read())["ok"]
    out = cli(settings, "ports")
    assert "AService-Api_Co" in out.stdout and "allocated" in out.stdout
    # Forgetting the state directory: the answer says which one the running panel uses.
    other = settings.with_(state_dir=settings.state_dir.parent / "elsewhere")
    out = cli(other, "ports")
    assert f"uses state directory {settings.state_dir}" in out.stderr
    out = cli(settings, "run", "retail")
    assert out.returncode == 2 and "use its window or its API" in out.stderr
    out = cli(settings, "stop-all")
    assert out.returncode == 0 and "through the running panel" in out.stdout
    # It says what it waits for, and waits as long as the panel's own bound (not a fixed 30 s).
    bound = Settings().stop_grace_ms / 1000 + 2.0 + 5.0  # the server runs with the default
    assert f"asking it to stop every service (it takes up to {bound:g} s)" in out.stderr, out
    # Essentials of the server: two; plus the journey's one service.
    assert "stopped 3 services" in out.stdout


def test_cli_refuses_a_panel_on_another_state_dir(settings: Settings, server: str) -> None:
    """`stop-all`/`ports --state-dir B` reaching panel A's API (B held by another panel whose
    API does not answer) must refuse, not stop or show A's services as B's."""
    from app.core.lock import StateLock
    from tests.helpers import alive

    req = urllib.request.Request(
        f"{server}/api/journey/simulate",
        data=json.dumps({"journey": journey("Panel A", "AService")}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        pids = [s["pid"] for s in json.loads(resp.read())["services"]]
    other = settings.with_(state_dir=settings.state_dir.parent / "panel-b")
    lock_b = StateLock(other.state_dir)  # panel B: holds B, its API is not on this port
    lock_b.acquire()
    try:
        for command in ("stop-all", "ports"):
            out = cli(other, command)
            assert out.returncode != 0, (command, out.stdout)
            assert f"uses state directory {settings.state_dir}" in out.stderr, out.stderr
            assert "AService" not in out.stdout
    finally:
        lock_b.release()
    assert all(alive(pid) for pid in pids), "panel A's services were stopped"
    assert len(pids) == 3  # the journey's one service and the two essentials


def test_journeys_listed_and_one_stopped_through_a_running_server(
    settings: Settings, server: str
) -> None:
    trip = {"companyName": "Api Co", "domain": "api.io", "industryType": "x"}
    trip["steps"] = [{"stepName": "A", "serviceName": "AService"}]  # type: ignore[assignment]
    req = urllib.request.Request(
        f"{server}/api/journey/simulate",
        data=json.dumps({"journey": trip}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        journey_id = json.loads(resp.read())["journeyId"]
    out = cli(settings, "journeys")
    assert out.returncode == 0 and journey_id in out.stdout and "Api Co" in out.stdout, out
    out = cli(settings, "journeys", "stop")
    assert out.returncode == 2 and "needs the journey's id" in out.stderr, out
    out = cli(settings, "journeys", "stop", "nope")
    assert out.returncode == 1 and "no running journey 'nope'" in out.stderr, out
    out = cli(settings, "journeys", "stop", journey_id)
    assert out.returncode == 0 and f"stopped journey {journey_id}: 1 service" in out.stdout, out
    assert cli(settings, "journeys").stdout.strip() == "no journey runs"


def test_ports_into_a_closed_pipe_ends_without_a_traceback(settings: Settings) -> None:
    """`python -m app ports | head -1`: the reader goes away after its first line. Here it is
    gone before the first write (closed at once), so the write fails every time, not only
    when the table outgrows the pipe's buffer."""
    env = dict(os.environ, BIZOBS_STATE_DIR=str(settings.state_dir))
    args = [sys.executable, "-m", "app", "--ports", f"{settings.port_lo}-{settings.port_hi}"]
    proc = subprocess.Popen(
        [*args, "ports"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    code = proc.wait(timeout=120)
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert code == 141  # as a command killed by SIGPIPE reports it (128 + 13)

    head = subprocess.run(
        f"{subprocess.list2cmdline([*args, 'ports'])} | head -1",
        shell=True,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert head.stdout.split() == ["PORT", "STATE", "SERVICE", "PID"]
    assert "Traceback" not in head.stderr, head.stderr


def test_a_run_into_a_closed_pipe_finishes_stops_its_services_and_prints_no_traceback(
    settings: Settings, tmp_path: Path
) -> None:
    """`python -m app run … | head -2`: the reader goes away mid-run, after two lines. The run
    still ends and stops its services; no later line raises a traceback (the phase lines are
    printed from event handlers, which logged each failure); it ends as 141."""
    path = tmp_path / "j.json"
    step = {"stepName": "Signup", "serviceName": "SignupService", "latencyMs": 500}
    trip = {"companyName": "Pipe Co", "domain": "pipe.io", "industryType": "x", "steps": [step]}
    path.write_text(json.dumps({"journey": trip}))
    env = dict(os.environ, BIZOBS_STATE_DIR=str(settings.state_dir), BIZOBS_ESSENTIAL_SERVICES="")
    args = [sys.executable, "-m", "app", "--ports", f"{settings.port_lo}-{settings.port_hi}"]
    proc = subprocess.Popen(
        [*args, "run", str(path)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = [proc.stdout.readline(), proc.stdout.readline()]  # the run, its stop phase
    proc.stdout.close()  # gone before the launch and the 0.5 s simulate phase have printed
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    code = proc.wait(timeout=120)
    assert first[0].startswith(b"run: Pipe Co") and b"stop" in first[1], first
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert code == 141
    out = cli(settings, "ports")
    assert out.returncode == 0 and f"{len(settings.ports)} free" in out.stdout  # all stopped
