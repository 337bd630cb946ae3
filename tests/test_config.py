"""Settings: environment overrides and the clear errors for bad values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.settings import EssentialService, LauncherKind, SettingsError, from_env


def test_environment_overrides() -> None:
    s = from_env(
        {
            "BIZOBS_PORTS": "9001-9010",
            "BIZOBS_API_PORT": "9000",
            "BIZOBS_STATE_DIR": "/tmp/x",
            "BIZOBS_STOP_GRACE_MS": "250",
            "BIZOBS_ESSENTIAL_SERVICES": "AService-Co,BService-Other Co",
            "BIZOBS_LAUNCHER": "exec",
            "BIZOBS_API": "0",
        }
    )
    assert (s.port_lo, s.port_hi, s.api_port, s.stop_grace_ms) == (9001, 9010, 9000, 250)
    assert s.state_dir == Path("/tmp/x") and s.launcher is LauncherKind.EXEC
    assert s.essential_services == (
        EssentialService("AService", "Co"),
        EssentialService("BService", "Other Co"),
    )
    assert not s.api_enabled
    assert from_env({"BIZOBS_ESSENTIAL_SERVICES": ""}).essential_services == ()
    assert len(from_env({}).essential_services) == 3


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BIZOBS_PORTS": "9010-9001"}, "1 <= LOW <= HIGH"),
        ({"BIZOBS_PORTS": "ports"}, "must look like 8081-8120"),
        ({"BIZOBS_PORTS": "8070-8100"}, "API port 8080 lies inside the service pool"),
        ({"BIZOBS_API_PORT": "eighty"}, "not a whole number"),
        ({"BIZOBS_LAUNCHER": "spawn"}, "fork, exec"),
        ({"BIZOBS_ESSENTIAL_SERVICES": "NoCompany"}, "ServiceName-Company"),
        ({"BIZOBS_STOP_GRACE_MS": "-1"}, "stop grace"),
        ({"BIZOBS_STOP_GRACE_MS": "1e400"}, "not a whole number"),
        ({"BIZOBS_STOP_GRACE_MS": "99999999999"}, "stop grace must be 0-600000"),
        ({"BIZOBS_API_PORT": "99999"}, "not a TCP port"),
        ({"BIZOBS_API_PORT": "70000"}, "not a TCP port"),
        ({"BIZOBS_DEMO_PACING_MS": "5000"}, "demo pacing"),
    ],
)
def test_bad_settings_are_refused_clearly(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        from_env(env)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--port", "99999"], "is not a TCP port"),
        (["serve", "--port", "70000"], "is not a TCP port"),
        (["serve", "--port", "8385"], "lies inside the service pool"),
        (["--state-dir", "{file}/state", "serve", "--port", "8380"], "cannot use state directory"),
        (["--state-dir", "{file}/state", "run", "e-commerce"], "cannot use state directory"),
        (["--state-dir", "{file}/state", "stop-all"], "cannot use state directory"),
        (["--state-dir", "{file}", "run", "e-commerce"], "is a file, not a directory"),
        (["--state-dir", "{file}", "ports"], "is a file, not a directory"),
    ],
)
def test_bad_settings_are_one_line_at_start(tmp_path: Path, args: list[str], message: str) -> None:
    """Caught when the command starts, as one line: no traceback, nothing started."""
    a_file = tmp_path / "a-file"
    a_file.write_text("")  # a state dir inside a file: no permission could make it usable
    argv = [a.format(file=a_file) for a in args]
    out = subprocess.run(
        [sys.executable, "-m", "app", "--ports", "8381-8390", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "BIZOBS_STATE_DIR": str(tmp_path / "state")},
    )
    assert out.returncode in (1, 2), out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], out.stderr


def test_the_readme_settings_table_is_the_option_table() -> None:
    """One declaration per option: the README's table is derived from it, never edited apart."""
    from app.core.settings import settings_table

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert settings_table() in readme


def test_every_option_reads_its_variable_and_flags_come_from_the_table() -> None:
    import argparse

    from app.core.settings import OPTIONS, add_flags, flag_overrides

    assert len({o.env for o in OPTIONS}) == len(OPTIONS)
    parser = argparse.ArgumentParser()
    add_flags(parser, in_subcommand=False)
    ns = parser.parse_args(["--ports", "9001-9010", "--launcher", "exec", "--state-dir", "/tmp/s"])
    got = from_env({}, **flag_overrides(ns))
    assert (got.port_lo, got.port_hi, got.launcher.value) == (9001, 9010, "exec")
    assert got.state_dir == Path("/tmp/s")
    with pytest.raises(SettingsError, match="must look like 8081-8120"):
        from_env({"BIZOBS_PORTS": "٣٠٠١-٣٠١٠"})  # Arabic-Indic digits are not a port range


def test_parallel_workers_get_ports_of_their_own() -> None:
    """`make test` runs pytest-xdist workers side by side: no two share a service port or an API
    port (the port below each range), and none reaches the panel's own pool."""
    from tests.conftest import worker_index, worker_ports

    assert [worker_index(n) for n in ("", "gw0", "gw3")] == [0, 0, 3]
    taken: set[int] = set()
    for worker in range(8):
        lo, hi = worker_ports((8141, 8160), worker)
        ports = {lo - 1, *range(lo, hi + 1)}
        assert hi - lo == 19 and not ports & taken and not ports & set(range(8081, 8121))
        taken |= ports
