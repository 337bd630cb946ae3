"""Traffic tests run on the fork launcher only: how a service process starts is not what they
test, and each holds traffic for seconds (tests/core covers both launchers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import LauncherKind, Settings


@pytest.fixture
def settings(tmp_path: Path, port_range: range) -> Settings:
    return Settings(
        launcher=LauncherKind.FORK,
        port_lo=port_range.start,
        port_hi=port_range.stop - 1,
        state_dir=tmp_path / "state",
        stop_grace_ms=2000,
        start_timeout_ms=15000,
        api_port=port_range.start - 1,
        essential_services=(),
    )
