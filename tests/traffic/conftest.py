"""Traffic tests run on the fork launcher only: how a service process starts is not what they
test, and each holds traffic for seconds (tests/core/test_launchers.py covers both launchers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.settings import LauncherKind, Settings
from tests.conftest import make_settings


@pytest.fixture
def settings(tmp_path: Path, port_range: range) -> Settings:
    return make_settings(LauncherKind.FORK, tmp_path, port_range)
