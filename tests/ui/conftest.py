"""pytest-qt + qasync: one session-scoped qasync loop over pytest-qt's QApplication.

Coroutines are driven with `qtbot.waitUntil` (Qt runs the asyncio loop while it waits); no fixture
ever stops the loop or quits the app. The loop is made with `already_running=True`, which makes it
this thread's running loop; `aloop` makes it so only during a UI test, because `asyncio.run` (every
other test) refuses to start inside a running loop, and a parallel worker of `make test` may run a
file of either kind after a UI file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from app.core.settings import Settings
from app.ui.bridge import CoreBridge
from app.ui.main_window import MainWindow

T = TypeVar("T")


@pytest.fixture(scope="session")
def qloop(qapp: QApplication) -> Iterator[asyncio.AbstractEventLoop]:
    import qasync  # after PySide6 (imported above): qasync uses the binding already loaded

    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio._set_running_loop(None)  # running only while a UI test has it (see `aloop`)
    yield loop


@pytest.fixture
def aloop(qloop: asyncio.AbstractEventLoop) -> Iterator[asyncio.AbstractEventLoop]:
    """The qasync loop, current and running for this test; neither once it is over. (asyncio's
    `_set_running_loop` is the hook that loops driven from outside, as Qt drives this one, use.)"""
    asyncio.set_event_loop(qloop)
    asyncio._set_running_loop(qloop)
    try:
        yield qloop
    finally:
        asyncio._set_running_loop(None)
        asyncio.set_event_loop(None)


def drive(qtbot: Any, awaitable: Awaitable[T], timeout_ms: int = 60_000) -> T:
    """Run a coroutine on the qasync loop to completion by letting Qt process events."""
    task = asyncio.ensure_future(awaitable)
    qtbot.waitUntil(task.done, timeout=timeout_ms)
    return task.result()


def ui_settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat)


class Panel:
    """An open bridge and its window, closed (services stopped) by the fixture."""

    def __init__(self, qtbot: Any, bridge: CoreBridge, window: MainWindow) -> None:
        self.qtbot = qtbot
        self.bridge = bridge
        self.window = window

    def close(self) -> None:
        """Close the core (services stopped), then the window; nothing is left for later."""
        if self.bridge.is_open:
            drive(self.qtbot, self.bridge.close())
        self.window.close()
        self.window.deleteLater()
        self.bridge.deleteLater()


def open_panel(qtbot: Any, settings: Settings, tmp_path: Path, api_starter: Any = None) -> Panel:
    bridge = CoreBridge(settings, api_starter)
    window = MainWindow(bridge, ui_settings(tmp_path))
    drive(qtbot, bridge.open())
    window.show()
    return Panel(qtbot, bridge, window)


@pytest.fixture
def make_panel(qtbot: Any, aloop: asyncio.AbstractEventLoop, tmp_path: Path) -> Iterator[Any]:
    panels: list[Panel] = []

    def make(settings: Settings, api_starter: Any = None) -> Panel:
        panel = open_panel(qtbot, settings, tmp_path, api_starter)
        panels.append(panel)
        return panel

    yield make
    for panel in panels:
        panel.close()
