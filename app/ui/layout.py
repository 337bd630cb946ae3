"""The window's layout over time: its geometry and splitters remembered (QSettings), a window
fitted to the screen it opens on, the default splitter sizes, and the views' compact sizes in
presentation mode (docs/architecture.md, "The window").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QByteArray, QRect, QSettings
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import QMainWindow, QSplitter, QToolBar, QWidget

from app.ui.central import TRAFFIC_MARGIN, Central
from app.ui.maximise import PaneMaximiser
from app.ui.presentation import Presentation

# Platforms without a real screen: their geometry means nothing on the operator's display.
HEADLESS_PLATFORMS = ("offscreen", "minimal")
DEFAULT_SIZE = (1440, 900)
EDITOR_WIDTH = 400  # the editor column's default width: its four step buttons and columns fit


def restore_geometry(window: QMainWindow, s: QSettings, central: Central) -> None:
    geometry = s.value("window/geometry")
    if isinstance(geometry, QByteArray) and not geometry.isEmpty():
        window.restoreGeometry(geometry)
    else:
        window.resize(*DEFAULT_SIZE)
    clamp_to_screen(window)  # also 1440×900 at 200 %: larger than a 2560×1440 screen
    state = s.value("window/state")
    if isinstance(state, QByteArray):
        window.restoreState(state)
    for splitter in central.splitters():
        value = s.value(f"window/{splitter.objectName()}")
        if isinstance(value, QByteArray):
            splitter.restoreState(value)
        else:
            splitter.setSizes(default_sizes(splitter.objectName(), central.port_count))


def save_geometry(
    window: QMainWindow, s: QSettings, splitters: Sequence[QSplitter], presenting: bool
) -> None:
    # An offscreen run (tests, screenshots) has no real screen: its geometry would open the
    # operator's window at a meaningless size. While presenting, the window's own layout is
    # not on screen: the one saved before stays.
    if QGuiApplication.platformName() in HEADLESS_PLATFORMS or presenting:
        return
    s.setValue("window/geometry", window.saveGeometry())
    s.setValue("window/state", window.saveState())
    for splitter in splitters:
        s.setValue(f"window/{splitter.objectName()}", splitter.saveState())


def clamp_to_screen(window: QMainWindow) -> None:
    """A geometry saved on another screen (or a larger one) must not open off-screen or larger
    than the screen."""
    screen = window.screen() or QGuiApplication.primaryScreen()
    if screen is None:
        return
    avail = screen.availableGeometry()
    frame = window.frameGeometry()
    extra_w, extra_h = frame.width() - window.width(), frame.height() - window.height()
    w = min(window.width(), avail.width() - extra_w)
    h = min(window.height(), avail.height() - extra_h)
    x = min(max(frame.x(), avail.x()), avail.right() + 1 - w - extra_w)
    y = min(max(frame.y(), avail.y()), avail.bottom() + 1 - h - extra_h)
    dx, dy = window.x() - frame.x(), window.y() - frame.y()
    window.setGeometry(QRect(x + dx, y + dy, w, h))


def default_sizes(name: str, port_count: int) -> list[int]:
    rows = -(-port_count // 8)
    grid = min(rows, 5) * 80 + 110  # a larger pool scrolls inside the grid
    return {
        "mainSplitter": [EDITOR_WIDTH, 960],
        "rightSplitter": [grid, 800 - grid],
        "bottomSplitter": [480, 480],
    }.get(name, [1, 1])


class PresentationLayout:
    """Into presentation mode and back (app/ui/presentation.py moves the views): the views'
    compact sizes there — every port without scrolling, the charts and the map dense — a
    maximised pane restored first, the chrome hidden, Esc to leave."""

    def __init__(
        self,
        window: QMainWindow,
        central: Central,
        presentation: Presentation,
        maximiser: PaneMaximiser,
        shown: Callable[[bool], None],
    ) -> None:
        """`shown` is told whether presentation mode is on after every switch (its action's
        check mark)."""
        self.window, self.central, self.presentation = window, central, presentation
        self.maximiser, self.shown = maximiser, shown
        box = central.grid_box
        self._grid_heights = (box.minimumHeight(), box.maximumHeight())
        # Esc leaves presentation mode; off otherwise, or it would take Esc from the editor.
        self._escape = QShortcut(QKeySequence("Esc"), window)
        self._escape.setEnabled(False)
        self._escape.activated.connect(lambda: self.set(False))

    def set(self, on: bool) -> None:
        if on and not self.presentation.active:
            self.maximiser.set_available(False)  # the window's own layout first, as it was
            self._compact(True)
            w, c = self.window, self.central
            bars = (w.menuBar(), w.findChild(QToolBar, "mainToolbar"), w.statusBar())
            chrome: list[QWidget] = [bar for bar in bars if bar is not None]
            self.presentation.enter(
                c.grid_box, c.rightSplitter, c.tabs, c.traffic_page, c.map_page, chrome
            )
        elif not on and self.presentation.active:
            self.presentation.leave()
            self._compact(False)
            self.maximiser.set_available(True)
        self.shown(self.presentation.active)
        self._escape.setEnabled(self.presentation.active)

    def _compact(self, on: bool) -> None:
        c = self.central
        if on:
            self._grid_heights = (c.grid_box.minimumHeight(), c.grid_box.maximumHeight())
            low = high = c.grid.compact_height(c.port_count)
        else:
            low, high = self._grid_heights
        c.grid_box.setMinimumHeight(low)
        c.grid_box.setMaximumHeight(high)
        c.trafficChart.set_compact(on)
        c.journeyMap.set_dense(on)
        margin = 0 if on else TRAFFIC_MARGIN
        c.traffic_layout.setContentsMargins(margin, margin, margin, margin)
