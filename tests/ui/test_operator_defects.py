"""Small defects a new operator hit in the window, one test each, on the real widgets.
Offscreen, pytest-qt + one qasync loop (tests/ui/conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QGroupBox

from app.core.settings import LauncherKind, Settings
from tests.conftest import make_settings


@pytest.fixture
def fork(tmp_path: Path, port_range: range) -> Settings:
    return make_settings(LauncherKind.FORK, tmp_path, port_range)


def test_one_name_per_concept_traffic_is_the_tab_only(
    qtbot: Any, make_panel: Any, fork: Settings
) -> None:
    w = make_panel(fork).window
    tabs = [w.tabs.tabText(i) for i in range(w.tabs.count())]
    boxes = [b.title() for b in w.findChildren(QGroupBox)]
    assert "Traffic" in tabs
    assert "Traffic" not in boxes  # the run-mode box is a run's customers, not the traffic
    assert "Customers per run" in boxes
