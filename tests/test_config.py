"""Settings: environment overrides and the clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import EssentialService, LauncherKind, SettingsError, from_env


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
    ],
)
def test_bad_settings_are_refused_clearly(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        from_env(env)
