"""Presentation mode (View ▸ Presentation, F11; remembered): the window a presenter shows on a
1280×720 projector (docs/architecture.md, "The presenter's window").

Full screen, no editor, toolbar or status bar: a bar with a journey picker, Run Journey, Stop
All and the large phase stepper; under it the port grid (all 40 ports, no scrolling) over the
journey map on the left, and the traffic charts on the right, as tall as the screen allows.
The views are the window's own, moved here and back (one grid, one chart, one map: no second
bookkeeping); leaving restores the window's layout exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.ui.widgets.phase_stepper import PhaseStepper
from app.ui.widgets.phase_timeline import progress_text

SETTING = "view/presentation"
PICKER_HINT = "Journey…"


class Presentation(QObject):
    """Builds the presentation page once; `enter`/`leave` move the views between the pages."""

    def __init__(
        self,
        window: QMainWindow,
        stack: QStackedWidget,
        templates: list[str],
        load_template: Callable[[str], None],
        run: Callable[[], None],
        stop_all: Callable[[], None],
    ) -> None:
        super().__init__(window)
        self.window, self.stack = window, stack
        self.active = False
        self.page = QWidget()
        self.page.setObjectName("presentationPage")
        self.picker = QComboBox()
        self.picker.setObjectName("presentationPicker")
        self.picker.addItem(PICKER_HINT)
        self.picker.addItems(templates)
        self.picker.activated.connect(
            lambda i: load_template(self.picker.itemText(i)) if i > 0 else None
        )
        self.runButton = _big("Run Journey", "presentationRun", run)
        self.stopButton = _big("Stop All", "presentationStopAll", stop_all)
        self.stepper = PhaseStepper()
        bar = QHBoxLayout()
        bar.addWidget(self.picker, 1)
        bar.addWidget(self.runButton)
        bar.addWidget(self.stopButton)
        # Left: the controls, the phases, the grid over the map. Right: the charts, the whole
        # height of the screen (three plots of ≥ 160 px fit 720 only that way).
        self.left = QSplitter(Qt.Orientation.Vertical)
        self.left.setObjectName("presentationLeft")
        self.left.setChildrenCollapsible(False)
        self.hint = QLabel("Presentation · F11 or Esc to leave")
        self.hint.setObjectName("presentationHint")
        column = QWidget()
        column_layout = QVBoxLayout(column)
        column_layout.setContentsMargins(0, 0, 0, 0)
        column_layout.addLayout(bar)
        column_layout.addWidget(self.stepper)
        column_layout.addWidget(self.left, 1)
        column_layout.addWidget(self.hint, 0, Qt.AlignmentFlag.AlignRight)
        self.charts = QWidget()
        self.charts_layout = QVBoxLayout(self.charts)
        self.charts_layout.setContentsMargins(0, 0, 0, 0)
        self.body = QSplitter(Qt.Orientation.Horizontal)
        self.body.setObjectName("presentationBody")
        self.body.addWidget(column)
        self.body.addWidget(self.charts)
        self.body.setStretchFactor(0, 1)
        self.body.setStretchFactor(1, 1)
        layout = QVBoxLayout(self.page)
        layout.setContentsMargins(2, 2, 2, 2)  # full screen: every pixel of height to the views
        layout.addWidget(self.body, 1)
        stack.addWidget(self.page)
        self._home: dict[str, Any] = {}

    def enter(
        self,
        grid_box: QWidget,
        grid_home: QSplitter,
        tabs: QTabWidget,
        traffic: QWidget,
        journey_map: QWidget,
        chrome: list[QWidget],
    ) -> None:
        """Move the grid, the traffic page and the map here; hide the chrome; full screen."""
        if self.active:
            return
        self._home = {
            "grid": (grid_box, grid_home, grid_home.indexOf(grid_box), grid_home.saveState()),
            "tabs": [
                (w, tabs.indexOf(w), tabs.tabText(tabs.indexOf(w))) for w in (traffic, journey_map)
            ],
            "tab_widget": tabs,
            "current": tabs.currentIndex(),
            "chrome": [(w, w.isVisible()) for w in chrome],
            "was_full": self.window.isFullScreen(),
        }
        for w, _index, _text in self._home["tabs"]:
            tabs.removeTab(tabs.indexOf(w))
        self.left.addWidget(grid_box)
        self.left.addWidget(journey_map)
        self.left.setStretchFactor(0, 0)
        self.left.setStretchFactor(1, 1)
        journey_map.show()
        self.charts_layout.addWidget(traffic)
        traffic.show()
        for widget in chrome:
            widget.hide()
        self.stack.setCurrentWidget(self.page)
        self.active = True
        self.window.showFullScreen()

    def leave(self) -> None:
        """Everything back where it was, as it was."""
        if not self.active:
            return
        grid_box, home, index, state = self._home["grid"]
        home.insertWidget(index, grid_box)
        home.restoreState(state)
        tabs: QTabWidget = self._home["tab_widget"]
        for w, tab_index, text in sorted(self._home["tabs"], key=lambda t: t[1]):
            tabs.insertTab(tab_index, w, text)
        tabs.setCurrentIndex(self._home["current"])
        for widget, visible in self._home["chrome"]:
            widget.setVisible(visible)
        self.stack.setCurrentIndex(0)
        self.active = False
        if not self._home["was_full"]:
            self.window.showNormal()

    # -- the run's phases ---------------------------------------------------------------------
    def on_run_started(self, *_args: object) -> None:
        self.stepper.reset()

    def on_phase(self, event: Any) -> None:
        """A PhaseEvent (read by attribute: this module knows the bridge's values only)."""
        paced = getattr(event, "paced_ms", 0.0)
        self.stepper.set_phase(event.phase.value, event.status.value, dict(event.counts), paced)

    def on_progress(self, progress: Any) -> None:
        """A RunProgress: the simulate step counts the customers done."""
        self.stepper.set_progress(progress_text(progress, short=True))


def _big(text: str, name: str, slot: Callable[[], None]) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName(name)
    button.setMinimumHeight(44)
    button.setStyleSheet("QPushButton { font-size: 14pt; font-weight: bold; padding: 4px 14px; }")
    button.clicked.connect(slot)
    return button
