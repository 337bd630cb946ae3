"""The compatibility aliases do not depend on how services start: the fast launcher only."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.settings import LauncherKind, Settings
from tests.conftest import make_settings


@pytest.fixture
def settings(tmp_path: Path, port_range: range) -> Settings:
    return make_settings(LauncherKind.FORK, tmp_path, port_range)
