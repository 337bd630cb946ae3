"""Settings for the control API's security tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import LauncherKind, Settings


@pytest.fixture
def api_settings(tmp_path: Path, port_range: range) -> Settings:
    """One launcher is enough: the API's gate does not depend on how services start."""
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
