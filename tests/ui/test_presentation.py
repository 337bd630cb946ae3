"""Presentation mode on a 1280×720 screen, with real services: every port cell without
scrolling, three traffic plots each at least 160 px high, every node of a 14-step journey on
screen, the phase stepper lit by a real run; leaving restores the window's own layout, and the
mode is remembered (docs/architecture.md, "The presenter's window")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QScrollArea, QToolBar, QWidget

from app.core.settings import Settings
from app.ui.bridge import CoreBridge
from app.ui.main_window import MainWindow
from tests.ui.conftest import drive, ui_settings

MIN_PLOT_PX = 160


def _present(qtbot: Any, window: MainWindow) -> None:
    window.set_presentation(True)
    window.setGeometry(0, 0, 1280, 720)  # the projector (offscreen's screen is another size)
    qtbot.waitUntil(lambda: window.size().toTuple() == (1280, 720), timeout=3000)


def test_at_1280x720_the_grid_the_charts_and_a_14_step_map_all_fit(
    qtbot: Any, make_panel: Any, settings: Settings
) -> None:
    wide = settings.with_(port_hi=settings.port_lo + 39)  # the 40-port pool of a real panel
    panel = make_panel(wide)
    w = panel.window
    steps = [{"stepName": f"Step{i}", "serviceName": f"S{i}Service"} for i in range(14)]
    trip = {"companyName": "Big Co", "domain": "big.io", "industryType": "x", "steps": steps}
    result = drive(qtbot, panel.bridge.core.run_journey(trip))
    assert result.ok, result.error
    _present(qtbot, w)
    assert w.presentation.active and w.presentationAction.isChecked()
    assert w.pages.currentWidget() is w.presentation.page
    assert not w.menuBar().isVisible() and not w.findChild(QToolBar, "mainToolbar").isVisible()

    chart = w.trafficChart

    def heights() -> list[int]:
        plots = (chart.journeys, chart.latency, chart.errors)
        return [round(p.getViewBox().height()) for p in plots]

    cells = w.grid.cells()
    # The layout settles over a few turns of the loop after the resize (later on a busy machine).
    qtbot.waitUntil(
        lambda: (
            min(heights()) >= MIN_PLOT_PX and all(not c.visibleRegion().isEmpty() for c in cells)
        ),
        timeout=3000,
    )
    assert min(heights()) >= MIN_PLOT_PX, heights()
    assert len(cells) == 40
    assert all(not c.visibleRegion().isEmpty() for c in cells)  # no cell scrolled away
    assert w.grid.findChild(type(w._map_page), "portGridScroll").verticalScrollBar().maximum() == 0
    qtbot.waitUntil(lambda: len(w.journeyMap.nodes) == 14, timeout=5000)
    qtbot.waitUntil(lambda: w._map_page.verticalScrollBar().maximum() == 0, timeout=3000)
    rects = w.journeyMap.layout_rects()
    assert (
        rects[-1].bottom() <= w.journeyMap.height()
        and w._map_page.verticalScrollBar().maximum() == 0
    )
    assert w.journeyMap.isVisible() and chart.isVisible()

    w.set_presentation(False)
    assert not w.presentation.active and w.pages.currentIndex() == 0
    tabs = [w.tabs.tabText(i) for i in range(w.tabs.count())]
    assert tabs[:5] == ["Results", "Log", "Traffic", "Traces", "Map"]
    assert w.menuBar().isVisible() and not chart.topRow.isHidden()


def test_a_run_lights_the_phase_stepper_and_the_mode_is_remembered(
    qtbot: Any, make_panel: Any, settings: Settings, tmp_path: Path
) -> None:
    panel = make_panel(settings)
    w = panel.window
    _present(qtbot, w)
    stepper = w.presentation.stepper
    assert set(stepper.states.values()) == {"pending"}
    w.presentation.picker.setCurrentIndex(1)
    w.presentation.picker.activated.emit(1)  # a template picked: the editor has it
    qtbot.mouseClick(w.presentation.runButton, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: stepper.states["simulate"] == "done", timeout=60_000)
    assert set(stepper.states.values()) == {"done"}
    assert "launched" in stepper.text("launch")
    w.save_settings()
    again = MainWindow(CoreBridge(settings), ui_settings(tmp_path))
    qtbot.waitUntil(lambda: again.presentation.active, timeout=3000)
    again.set_presentation(False)
    again.close()
    again.deleteLater()


class _Resizes(QObject):
    """Counts how often the widgets it watches change size."""

    def __init__(self, widgets: list[QWidget]) -> None:
        super().__init__()
        self.counts = dict.fromkeys(widgets, 0)
        for widget in widgets:
            widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize and watched in self.counts:
            resized = event.size() != event.oldSize()  # type: ignore[attr-defined]
            self.counts[watched] += resized  # type: ignore[index]
        return False

    def moved(self) -> list[str]:
        return [w.objectName() for w, n in self.counts.items() if n]


def test_a_switch_in_presentation_mode_resizes_no_cell_and_scrolls_none_away(
    qtbot: Any, make_panel: Any, settings: Settings
) -> None:
    """Entered with an empty pool, then a switch between two companies: the phase steps keep
    their size when lit and given counts, the company legend keeps its line, so the 40 cells
    are never resized (each resize rendered every cell anew: a 20–40 ms stall, bench/ui.py)
    and the last row never goes behind a scroll bar."""
    wide = settings.with_(port_hi=settings.port_lo + 39)
    panel = make_panel(wide)
    w, core = panel.window, panel.bridge.core
    _present(qtbot, w)
    cells = w.grid.cells()
    qtbot.waitUntil(lambda: all(not c.visibleRegion().isEmpty() for c in cells), timeout=3000)

    def trip(company: str) -> dict[str, Any]:
        steps = [{"stepName": f"Step{i}", "serviceName": f"S{i}Service"} for i in range(3)]
        return {"companyName": company, "domain": "x.io", "industryType": "x", "steps": steps}

    stepper = w.presentation.stepper
    assert drive(qtbot, core.run_journey(trip("First Co"))).ok
    qtbot.waitUntil(lambda: stepper.states["simulate"] == "done", timeout=10_000)
    qtbot.waitUntil(lambda: w.grid.companyLegend.isVisible(), timeout=5000)
    watched = _Resizes([*cells, *stepper.labels.values()])
    assert drive(qtbot, core.run_journey(trip("Second Co"))).ok
    qtbot.waitUntil(lambda: stepper.states["simulate"] == "done", timeout=10_000)
    qtbot.waitUntil(lambda: "Second Co" in w.grid.companyLegend.label.text(), timeout=5000)
    assert watched.moved() == []
    assert w.grid.findChild(QScrollArea, "portGridScroll").verticalScrollBar().maximum() == 0
    assert all(not c.visibleRegion().isEmpty() for c in cells)
