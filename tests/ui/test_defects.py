"""The defects a new operator hit (issue 13), one test each; real services where the defect
involves them. Offscreen, pytest-qt + one qasync loop (tests/ui/conftest.py)."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PySide6.QtCore import QPoint, QSettings, Qt
from PySide6.QtGui import QDesktopServices, QKeySequence
from PySide6.QtWidgets import QAbstractItemView, QApplication, QMainWindow, QToolBar

from app.core.model import Phase, PortInfo, PortState
from app.core.settings import LauncherKind, Settings
from app.ui.main_window import MainWindow
from app.ui.widgets.journey_editor import COL_SERVICE, COL_STEP
from app.ui.widgets.log import LogView
from app.ui.widgets.palette import SWATCHES
from app.ui.widgets.results import _step_item
from tests.conftest import make_settings
from tests.helpers import journey
from tests.ui.conftest import drive
from tests.ui.test_window import RUN_TIMEOUT_MS, allocated

STATES = ("free", "starting", "allocated", "stopping", "stale", "foreign")


@pytest.fixture
def fork(tmp_path: Path, port_range: range) -> Settings:
    """One launcher is enough where the defect is the window's, not the launcher's."""
    return make_settings(LauncherKind.FORK, tmp_path, port_range)


def core_run(qtbot: Any, panel: Any, company: str, *services: str, customers: int = 2) -> Any:
    """A run started through the core, as the API and the CLI start one: not by the window."""
    core = panel.bridge.core
    request = core.make_request(journey(company, *services), customers=customers, mode="multiple")
    return drive(qtbot, core.run_journey(request), RUN_TIMEOUT_MS)


# 1 ------------------------------------------------------------------------------------------
def test_1_a_run_started_elsewhere_shows_like_the_windows_own(
    qtbot: Any, make_panel: Any, fork: Settings
) -> None:
    panel = make_panel(fork)
    w = panel.window
    result = core_run(qtbot, panel, "Api Co", "ApiOneService", "ApiTwoService", customers=2)
    assert result.ok
    qtbot.waitUntil(w.timeline.all_done, timeout=5_000)
    qtbot.waitUntil(lambda: w.results.row_count() == 2, timeout=5_000)
    assert "finished" in w.timeline.header.text()
    assert "in progress" not in w.results.summary.text()
    assert "2\u00a0completed" in w.results.summary.text()  # kept whole on a wrap
    qtbot.waitUntil(lambda: len(allocated(w)) == 2, timeout=5_000)
    qtbot.waitUntil(lambda: any(f"{result.run_id} finished" in ln for ln in w.logView.lines()))
    qtbot.waitUntil(lambda: w.runStateLabel.text() == "Idle", timeout=2_000)
    assert w.runJourneyButton.isEnabled()


# 2 ------------------------------------------------------------------------------------------
def test_2_offscreen_never_writes_geometry_and_restored_is_clamped(
    qtbot: Any, make_panel: Any, fork: Settings, tmp_path: Path
) -> None:
    panel = make_panel(fork)
    panel.window.save_settings()
    assert panel.window.qsettings.value("window/geometry") is None
    assert panel.window.qsettings.value("journey/last")  # the journey is still remembered

    huge = QMainWindow()
    huge.setGeometry(-400, -300, 6000, 4000)
    qs = QSettings(str(tmp_path / "huge.ini"), QSettings.Format.IniFormat)
    qs.setValue("window/geometry", huge.saveGeometry())
    huge.deleteLater()
    again = MainWindow(panel.bridge, qs)
    try:
        avail = again.screen().availableGeometry()
        assert avail.contains(again.frameGeometry()) or avail.contains(again.geometry())
        assert again.width() <= avail.width() and again.height() <= avail.height()
    finally:
        again.deleteLater()


# 3 ------------------------------------------------------------------------------------------
def test_3_banner_stylesheet_parses(
    qtbot: Any, make_panel: Any, fork: Settings, qtlog: Any
) -> None:
    w = make_panel(fork).window
    for kind in ("error", "info", "ok"):
        w.show_banner("a message", kind)
        w.banner.grab()
    assert not [r for r in qtlog.records if "Could not parse stylesheet" in r.message]


# 4 ------------------------------------------------------------------------------------------
def test_4_actions_are_enabled_only_when_they_can_do_something(
    qtbot: Any, make_panel: Any, fork: Settings
) -> None:
    panel = make_panel(fork)
    w = panel.window
    qtbot.waitUntil(lambda: len(w.grid.cells()) == len(fork.ports))
    assert not w.stopAllButton.isEnabled() and not w.stopAllAction.isEnabled()
    assert not w.sweepAction.isEnabled()  # nothing stale
    assert w.runJourneyButton.isEnabled()
    core_run(qtbot, panel, "Enable Co", "OneService", customers=1)
    qtbot.waitUntil(w.stopAllButton.isEnabled, timeout=5_000)
    assert w.stopAllAction.isEnabled()
    w.confirm_stop_all()
    assert w.stop_all_dialog is not None and "Stop all 1 service " in w.stop_all_dialog.text()
    w.stop_all_dialog.reject()
    drive(qtbot, panel.bridge.stop_all())
    qtbot.waitUntil(lambda: not w.stopAllButton.isEnabled(), timeout=5_000)


# 5 ------------------------------------------------------------------------------------------
def test_5_validation_speaks_to_the_operator_and_clears(
    qtbot: Any, make_panel: Any, fork: Settings
) -> None:
    w = make_panel(fork).window
    ed = w.editor
    ed.load_template("e-commerce")
    qtbot.waitUntil(w.runJourneyButton.isEnabled, timeout=2_000)
    ed.companyNameEdit.clear()
    ed.set_step_text(0, COL_STEP, "")
    ed.set_step_text(0, COL_SERVICE, "")
    qtbot.waitUntil(lambda: not w.runJourneyButton.isEnabled(), timeout=2_000)
    tip = w.runJourneyButton.toolTip()
    assert "Company name is empty" in tip and "Step 1:" in tip
    assert "companyName" not in tip and "stepName" not in tip
    assert not w.runAction.isEnabled()
    assert ed.companyNameEdit.property("invalid") is True
    assert ed.domainEdit.property("invalid") is False
    assert ed.stepsTable.item(0, COL_STEP).toolTip().startswith("Step 1:")

    w.run_journey()  # forced (e.g. a shortcut): refused with the banner, nothing stopped
    assert w.banner.isVisible() and "nothing was stopped" in w.banner.text()
    qtbot.keyClicks(ed.companyNameEdit, "Back Again")
    ed.set_step_text(0, COL_STEP, "Browse")
    qtbot.waitUntil(lambda: not w._banner_row.isVisible(), timeout=2_000)
    qtbot.waitUntil(w.runJourneyButton.isEnabled, timeout=2_000)
    assert ed.companyNameEdit.property("invalid") is False
    assert "Company name" not in w.runJourneyButton.toolTip()


# 6 ------------------------------------------------------------------------------------------
def test_6_paced_phases_stay_on_screen_and_the_grid_tells_the_truth(
    qtbot: Any, make_panel: Any, fork: Settings
) -> None:
    """With pacing, each phase that has work is on screen (timeline row running) for the pacing
    time, while the grid shows the cells as they are: `stopping` and `starting` appear as they
    happen and go when they are over (docs/architecture.md, "A Run Journey, phase by phase");
    grid and timeline change together."""
    pacing = 400
    panel = make_panel(fork)
    w = panel.window
    core_run(qtbot, panel, "First Co", "AService", "BService", customers=1)
    qtbot.waitUntil(lambda: len(allocated(w)) == 2, timeout=5_000)
    w.pacingSpin.setValue(pacing)
    frames: list[tuple[float, dict[Phase, str], set[str]]] = []

    def record(*_a: object) -> None:
        states = set(w.grid.states().values())
        frames.append((time.perf_counter(), dict((p, w.timeline.status(p)) for p in Phase), states))

    w.stage.applied.connect(record)
    result = core_run(qtbot, panel, "Second Co", "CService", "DService", customers=1)
    assert result.ok
    qtbot.waitUntil(w.timeline.all_done, timeout=20_000)
    qtbot.waitUntil(lambda: w.stage.idle(), timeout=20_000)

    def shown_for(pred: Any) -> float:
        """Longest stretch (ms) during which `pred(frame)` held on screen."""
        best, since = 0.0, None
        for at, phases, states in [*frames, (time.perf_counter(), {}, set())]:
            if phases and pred(phases, states):
                since = at if since is None else since
            elif since is not None:
                best, since = max(best, (at - since) * 1000), None
        return best

    # Qt timers are coarse (5 %), and a phase event waits for the next cells (up to a refresh)
    slack = pacing * 0.8
    for phase in (Phase.STOP, Phase.WAIT, Phase.LAUNCH, Phase.SIMULATE):  # the sweep is empty
        assert shown_for(lambda ph, _s, p=phase: ph[p] == "running") >= slack, phase
    assert any("stopping" in s for _t, _p, s in frames)
    # the grid changes in the same frame as the timeline: launch running shows starting cells
    assert any(ph[Phase.LAUNCH] == "running" and "starting" in s for _t, ph, s in frames)
    # the launch is over once its cells run: no `starting` cell is left on screen by then
    assert all("starting" not in s for _t, ph, s in frames if ph[Phase.LAUNCH] == "done")


# 7 ------------------------------------------------------------------------------------------
def test_7_status_bar_squares_use_the_grid_palette(
    qtbot: Any, make_panel: Any, fork: Settings
) -> None:
    w = make_panel(fork).window
    qtbot.waitUntil(lambda: len(w.grid.cells()) == len(fork.ports))
    assert SWATCHES["free"].fill in w.countsLabel.text()
    # every state present gets the grid's colour (absent ones are left out)
    ports = [PortInfo(9000 + i, PortState(state)) for i, state in enumerate(STATES)]
    w.countsLabel.set_ports(ports)
    html = w.countsLabel.text()
    for state in STATES:
        assert SWATCHES[state].fill in html and f"{state} 1" in html, state
    w.countsLabel.set_ports(ports[:1])
    assert "stale" not in w.countsLabel.text() and "allocated 0" in w.countsLabel.text()


# 8 ------------------------------------------------------------------------------------------
def fully_visible(widget: Any) -> bool:
    return widget.isVisible() and widget.visibleRegion().boundingRect().size() == widget.size()


def test_8_layout_reads_at_1000x650(qtbot: Any, make_panel: Any, fork: Settings) -> None:
    w = make_panel(fork).window
    w.resize(1000, 650)
    qtbot.waitUntil(lambda: w.width() == 1000 and len(w.grid.cells()) == len(fork.ports))
    QApplication.processEvents()
    ed = w.editor
    for button in (ed.addStepButton, ed.removeStepButton, ed.moveUpButton, ed.moveDownButton):
        assert fully_visible(button), button.objectName()
    table = ed.stepsTable
    header = table.horizontalHeader()
    for col in range(table.columnCount()):
        label = table.horizontalHeaderItem(col).text()
        assert header.sectionSize(col) >= header.fontMetrics().horizontalAdvance(label), label
    assert table.horizontalScrollBar().maximum() == 0
    tl = w.timeline.table
    assert not tl.verticalScrollBar().isVisible()
    assert tl.rowViewportPosition(len(Phase) - 1) + tl.rowHeight(len(Phase) - 1) <= (
        tl.viewport().height()
    )
    cell = w.grid.cells()[0]
    assert cell.height() >= 2 * cell.fontMetrics().height() + 8  # port and a name line
    assert fully_visible(w.grid.cells()[7])  # the last column is not cut off

    w.resize(1600, 1000)
    qtbot.waitUntil(lambda: w.width() == 1600)
    QApplication.processEvents()
    last = w.grid.cells()[-1]
    bottom = last.mapTo(w.grid, QPoint(0, last.height())).y()
    assert w.grid.legend.mapTo(w.grid, QPoint(0, 0)).y() - bottom < 40  # no empty band


def test_8_after_a_run_the_window_still_fits_1000x650(
    qtbot: Any, make_panel: Any, fork: Settings
) -> None:
    """Run ids, trace ids, counts and the run's status message never widen the window."""
    panel = make_panel(fork)
    w = panel.window
    w.resize(1000, 650)
    qtbot.waitUntil(lambda: w.width() == 1000 and len(w.grid.cells()) == len(fork.ports))
    w.editor.load_template("e-commerce")
    w.editor.customersSpin.setValue(2)
    w.run_journey()
    qtbot.waitUntil(lambda: w.results.row_count() == 2, timeout=RUN_TIMEOUT_MS)
    w.results.select_customer(0)  # the waterfall's header names the trace id
    assert w.results.waterfall.header.text().startswith("Trace ")
    for tab in range(w.tabs.count()):
        w.tabs.setCurrentIndex(tab)
        w.resize(1000, 650)
        QApplication.processEvents()
        assert w.width() == 1000 and w.minimumSizeHint().width() <= 1000, w.tabs.tabText(tab)
        assert fully_visible(w.grid.cells()[7])
    bar = w.statusBar()
    message = bar.currentMessage()
    assert message.startswith("Run finished"), message
    permanent = sum(c.width() for c in (w.runStateLabel, w.countsLabel, w.exportIndicator))
    assert bar.fontMetrics().horizontalAdvance(message) <= bar.width() - permanent


# 9 ------------------------------------------------------------------------------------------
def test_9_health_without_a_browser_says_so(
    qtbot: Any, make_panel: Any, fork: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = make_panel(fork).window
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda _url: False))
    w.open_health(fork.port_lo)
    url = f"http://127.0.0.1:{fork.port_lo}/health"
    assert w.banner.isVisible() and url in w.banner.text() and "browser" in w.banner.text()


# 10 -----------------------------------------------------------------------------------------
def test_10_add_opens_the_new_name_and_validation_never_moves_buttons(
    qtbot: Any, make_panel: Any, fork: Settings
) -> None:
    w = make_panel(fork).window
    ed = w.editor
    ed.load_template("e-commerce")
    qtbot.waitUntil(w.runJourneyButton.isEnabled, timeout=2_000)
    y_before = ed.addStepButton.mapTo(w, QPoint(0, 0)).y()
    ed.addStepButton.click()
    row = ed.stepsTable.rowCount() - 1
    assert ed.stepsTable.state() == QAbstractItemView.State.EditingState
    assert (ed.stepsTable.currentRow(), ed.stepsTable.currentColumn()) == (row, COL_STEP)
    editor = ed.stepsTable.indexWidget(ed.stepsTable.model().index(row, COL_STEP))
    assert editor is not None
    qtbot.keyClicks(editor, "Typed Right Away")
    qtbot.keyClick(editor, Qt.Key.Key_Return)  # commits, as the operator would
    qtbot.waitUntil(lambda: ed.stepsTable.item(row, COL_STEP).text() == "Typed Right Away")
    ed.set_step_text(row, COL_SERVICE, "bad name!")
    ed.companyNameEdit.clear()
    qtbot.waitUntil(lambda: not w.runJourneyButton.isEnabled(), timeout=2_000)
    QApplication.processEvents()
    assert ed.addStepButton.mapTo(w, QPoint(0, 0)).y() == y_before


def test_10_set_step_text_wins_over_an_open_editor(qtbot: Any) -> None:
    from app.ui.widgets.journey_editor import JourneyEditor

    ed = JourneyEditor()
    qtbot.addWidget(ed)
    ed.show()
    ed.addStepButton.click()
    ed.set_step_text(0, COL_STEP, "Browse")
    ed.addStepButton.click()  # a second Add commits nothing stale over row 0
    assert ed.stepsTable.item(0, COL_STEP).text() == "Browse"


# 11 -----------------------------------------------------------------------------------------
def test_11_template_combo_shows_what_is_loaded(
    qtbot: Any, make_panel: Any, fork: Settings
) -> None:
    ed = make_panel(fork).window.editor
    index = ed.templateCombo.findData("banking")
    assert index > 0
    ed.templateCombo.setCurrentIndex(index)
    ed.templateCombo.activated.emit(index)
    assert ed.templateCombo.currentText() == "banking"
    qtbot.keyClicks(ed.companyNameEdit, "x")
    assert ed.templateCombo.currentText() == "banking (modified)"
    ed.load_template("e-commerce")  # from the File menu too
    assert ed.templateCombo.currentText() == "e-commerce"


# 12 -----------------------------------------------------------------------------------------
def test_12_wording_and_formatting(qtbot: Any, make_panel: Any, fork: Settings) -> None:
    w = make_panel(fork).window
    w.status.sweep_finished({"staleCleaned": 1, "orphansReaped": 1})
    msg = w.statusBar().currentMessage()
    assert "1 stale allocation released" in msg and "1 orphan stopped" in msg
    toggle = w.findChild(QToolBar, "mainToolbar").toggleViewAction()
    assert toggle.text() != "Main" and "toolbar" in toggle.text().lower()
    assert w.saveAction.shortcut() != QKeySequence("Ctrl+S")
    assert w.saveAction.shortcut() == QKeySequence(QKeySequence.StandardKey.SaveAs)
    step = SimpleNamespace(
        status="failed", http_status=504, latency_ms=123.0, service_name="S", error="timeout"
    )
    text = _step_item(step).text()
    assert "504" in text and "123 ms" in text and "504 123" not in text
    assert LogView().lineWrapMode() == LogView.LineWrapMode.NoWrap


def test_12_status_bar_says_when_traffic_runs(qtbot: Any, make_panel: Any, fork: Settings) -> None:
    """Between runs the status bar said "Idle" while traffic flowed at 8 journeys/s."""
    from app.core.traffic_model import TrafficStatus

    w = make_panel(fork).window
    qtbot.waitUntil(lambda: w.runStateLabel.text() == "Idle", timeout=2_000)
    w.bridge.trafficChanged.emit(TrafficStatus(running=True, rate=8, achieved_rate=7.9))
    assert w.runStateLabel.text() == "Traffic 7.9/s"
    w.bridge.trafficChanged.emit(TrafficStatus(running=False, rate=8))
    assert w.runStateLabel.text() == "Idle"
