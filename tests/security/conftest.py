"""Settings for the control API's security tests: the gate does not depend on how services
start, so the fast launcher only."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.settings import LauncherKind, Settings
from tests.conftest import make_settings


@pytest.fixture
def api_settings(tmp_path: Path, port_range: range) -> Settings:
    return make_settings(LauncherKind.FORK, tmp_path, port_range)
