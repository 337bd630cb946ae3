"""Small defects a new operator hit in the window, one test each, on the real widgets.
Offscreen, pytest-qt + one qasync loop (tests/ui/conftest.py)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFontMetrics, QImage, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QGroupBox,
    QLineEdit,
    QMessageBox,
    QPushButton,
)

from app.core.model import PortState
from app.core.settings import LauncherKind, Settings
from app.core.traffic_model import StepSecond, TrafficStatus
from app.ui.export_dialog import SecretField
from app.ui.widgets.journey_editor import COL_ERROR, COL_STEP, JourneyEditor
from app.ui.widgets.journey_map import JourneyMap, node_lines
from app.ui.widgets.palette import result_colours
from app.ui.widgets.results import ResultsView
from app.ui.widgets.traffic_chart import TrafficControl
from tests.conftest import make_settings
from tests.helpers import journey
from tests.ui.test_defects import core_run
from tests.ui.test_views import run_result
from tests.ui.test_window import run_journey


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


def test_stop_all_confirmation_says_traffic_stops_too(
    qtbot: Any, make_panel: Any, fork: Settings
) -> None:
    panel = make_panel(fork)
    w = panel.window
    core_run(qtbot, panel, "Stop Co", "StopOneService", customers=1)
    w.trafficControl.startButton.click()
    qtbot.waitUntil(lambda: panel.bridge.core.traffic.running, timeout=10_000)
    qtbot.waitUntil(w.stopAllButton.isEnabled, timeout=5_000)
    w.stopAllButton.click()
    dialog = w.stop_all_dialog
    assert dialog is not None
    assert "traffic stops too" in dialog.informativeText()
    dialog.findChild(QPushButton, "confirmStopAllButton").click()
    qtbot.waitUntil(lambda: not panel.bridge.core.traffic.running, timeout=10_000)


def test_timeline_rows_are_named_by_company_and_time(
    qtbot: Any, make_panel: Any, fork: Settings
) -> None:
    panel = make_panel(fork)
    w = panel.window
    long_name = "Northwind Traders International"
    result = core_run(qtbot, panel, long_name, "TimeOneService", customers=1)
    chart = w.timelineChart
    w.timelineTabs.setCurrentWidget(chart)
    qtbot.waitUntil(lambda: bool(chart._ticks) and chart._ticks[-1][1].endswith("✓"))
    label = chart._ticks[-1][1]
    assert result.run_id.rsplit("-", 1)[-1] not in label  # no hash
    assert label.startswith("Northwind") and "…" in label  # elided to fit the axis
    started = time.strftime("%H:%M:%S", time.localtime(chart.runs[-1].t0))
    assert label.endswith(f" {started} ✓")
    axis = chart.plot.getAxis("left")
    fm = QFontMetrics(axis.style["tickFont"])
    assert fm.horizontalAdvance(label) + axis.style["tickTextOffset"][0] < axis.width()


def test_a_blank_latency_is_blank_not_zero_ms(qtbot: Any) -> None:
    """Traffic fails at Cart: Pay is never reached and nothing has ended yet elsewhere. A
    status says 0.0 for a latency nobody measured; the views show none."""
    view = JourneyMap()
    qtbot.addWidget(view)
    view.resize(900, 320)
    view.show()
    steps = (
        StepSecond("Cart", ok=0, failed=4, p50_ms=35.0),
        StepSecond("Pay", not_reached=4),  # p50_ms 0.0: never called
    )
    view.set_traffic(TrafficStatus(running=True, sent=4, failed=4, steps=steps))
    cart, pay = view.nodes
    assert "p50 35 ms" in node_lines(cart)[4]
    assert "0 ms" not in node_lines(pay)[4] and "p50 —" in node_lines(pay)[4]

    control = TrafficControl()
    qtbot.addWidget(control)
    control.set_status(TrafficStatus(running=True, rate=2.0, sent=3, in_flight=3))
    counts = control.countsLabel.text().replace("\xa0", " ")  # facts are kept whole on a wrap
    assert "p95 0 ms" not in counts and "p95 —" in counts
    control.set_status(TrafficStatus(running=True, rate=2.0, sent=3, completed=3, p95_ms=41.0))
    assert "p95 41 ms" in control.countsLabel.text().replace("\xa0", " ")


def type_into_cell(qtbot: Any, ed: JourneyEditor, row: int, col: int, text: str) -> None:
    """Double-click-like editing: open the cell's editor, type, Return (as the operator)."""
    table = ed.stepsTable
    item = table.item(row, col)
    table.setCurrentItem(item)
    table.editItem(item)
    editor = table.indexWidget(table.model().index(row, col))
    assert editor is not None
    editor.selectAll()
    qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: table.state() != QAbstractItemView.State.EditingState, timeout=2_000)


def test_the_error_rate_is_entered_and_shown_in_percent(qtbot: Any) -> None:
    ed = JourneyEditor()
    qtbot.addWidget(ed)
    ed.show()
    ed.set_journey(journey("Rate Co", "CartService", "PayService", step2={"errorRate": 0.2}))
    assert ed.stepsTable.item(1, COL_ERROR).text() == "20 %"
    type_into_cell(qtbot, ed, 0, COL_ERROR, "5")
    assert ed.stepsTable.item(0, COL_ERROR).text() == "5 %"  # a percent once entered
    data, problems = ed.journey_data()
    assert not problems
    assert [s.get("errorRate") for s in data["steps"]] == [0.05, 0.2]  # stored as fractions
    type_into_cell(qtbot, ed, 1, COL_ERROR, "7.5%")
    assert ed.stepsTable.item(1, COL_ERROR).text() == "7.5 %"
    assert ed.journey_data()[0]["steps"][1]["errorRate"] == 0.075
    type_into_cell(qtbot, ed, 1, COL_ERROR, "150")
    messages = [p.message for p in ed.validate()]
    assert messages == ["Step 2: error rate must be between 0 % and 100 %, got 150 %"]


def pick_template(ed: JourneyEditor, name: str) -> None:
    """As the operator picks it from the combo (its popup would need a real screen)."""
    index = ed.templateCombo.findData(name)
    assert index > 0
    ed.templateCombo.setCurrentIndex(index)
    ed.templateCombo.activated.emit(index)


def test_a_template_over_an_edited_journey_asks_to_discard_it(qtbot: Any) -> None:
    ed = JourneyEditor()
    qtbot.addWidget(ed)
    ed.show()
    pick_template(ed, "banking")  # an unchanged template is no work to lose: no question
    assert ed.discard_dialog is None and ed.templateCombo.currentText() == "banking"
    pick_template(ed, "e-commerce")
    assert ed.discard_dialog is None and ed.templateCombo.currentText() == "e-commerce"

    ed.companyNameEdit.clear()
    qtbot.keyClicks(ed.companyNameEdit, "My Own Co")
    pick_template(ed, "banking")
    dialog = ed.discard_dialog
    assert dialog is not None
    qtbot.waitUntil(dialog.isVisible, timeout=2_000)
    assert dialog.text() == "Discard changes?"
    dialog.button(QMessageBox.StandardButton.Cancel).click()  # keeps the edit
    qtbot.waitUntil(lambda: ed.discard_dialog is None, timeout=2_000)
    assert ed.companyNameEdit.text() == "My Own Co"
    assert ed.templateCombo.currentText() == "e-commerce (modified)"  # not the one refused

    pick_template(ed, "banking")
    dialog = ed.discard_dialog
    assert dialog is not None
    dialog.findChild(QPushButton, "discardChangesButton").click()
    qtbot.waitUntil(lambda: ed.templateCombo.currentText() == "banking", timeout=2_000)
    assert ed.companyNameEdit.text() != "My Own Co" and not ed.is_edited()


def test_undo_and_redo_of_journey_edits_with_the_keys(qtbot: Any) -> None:
    ed = JourneyEditor()
    qtbot.addWidget(ed)
    ed.show()
    qtbot.waitExposed(ed)
    ed.activateWindow()
    qtbot.waitUntil(ed.isActiveWindow, timeout=2_000)
    ed.load_template("banking")
    loaded = ed.journey_data()[0]
    steps = ed.stepsTable.rowCount()
    ed.addStepButton.click()
    type_into_cell(qtbot, ed, steps, COL_STEP, "Sign Here")
    qtbot.waitUntil(ed.can_undo, timeout=2_000)  # the edits settled into one step
    edited = ed.journey_data()[0]
    assert edited["steps"][-1]["stepName"] == "Sign Here"

    ed.stepsTable.setFocus()
    qtbot.keyClick(ed.stepsTable, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert ed.journey_data()[0] == loaded and ed.stepsTable.rowCount() == steps
    assert ed.templateCombo.currentText() == "banking"  # unmodified again
    shift_ctrl = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(ed.stepsTable, Qt.Key.Key_Z, shift_ctrl)
    assert ed.journey_data()[0] == edited
    assert ed.templateCombo.currentText() == "banking (modified)"

    ed.load_template("e-commerce")  # a template loaded is undone as one step too
    qtbot.keyClick(ed.stepsTable, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert ed.journey_data()[0] == edited
    assert ed.can_redo() and ed.can_undo()  # back to banking, and on to e-commerce again


def kill_one(qtbot: Any, panel: Any, service: str) -> Any:
    """SIGKILL `service` of the panel's journey; wait until its cell shows it stale."""
    [victim] = [s for s in panel.bridge.services() if s.service_name == service]
    os.kill(victim.pid or 0, signal.SIGKILL)
    cell = panel.window.grid.cell(victim.port)
    qtbot.waitUntil(
        lambda: cell.info.trouble.startswith("exited") and cell.info.state is PortState.STALE,
        timeout=5_000,
    )
    return cell


def test_a_dead_stale_cell_has_no_uptime_and_offers_sweep(
    qtbot: Any, make_panel: Any, fork: Settings
) -> None:
    panel = make_panel(fork)
    run_journey(qtbot, panel, "Dead Co", ["Login", "Pay"], customers=1)
    cell = kill_one(qtbot, panel, "PayService")
    details = dict(cell.details())
    assert "Uptime" not in details  # no clock ticking on for a process that is gone
    assert "exited" in details["Note"] and "Sweep" in details["Note"]
    menu = cell.build_menu()
    actions = {a.objectName(): a for a in menu.actions()}
    assert not actions["stopServiceAction"].isVisible()
    sweep = actions["sweepAction"]
    assert sweep.isVisible() and sweep.isEnabled() and sweep.text() == "Sweep"
    sweep.trigger()
    qtbot.waitUntil(lambda: cell.info.state is PortState.FREE, timeout=10_000)


def share_of(image: QImage, rect: QRect, colour: QColor) -> float:
    """How much of `rect` in `image` is painted `colour` (exactly)."""
    points = [
        (x, y) for x in range(rect.left(), rect.right()) for y in range(rect.top(), rect.bottom())
    ]
    same = sum(1 for x, y in points if image.pixelColor(x, y).rgb() == colour.rgb())
    return same / max(len(points), 1)


def test_the_selected_results_row_keeps_its_failure_cell_readable(qtbot: Any) -> None:
    view = ResultsView()
    qtbot.addWidget(view)
    view.resize(900, 500)
    view.show()
    qtbot.waitExposed(view)
    view.show_simulation(run_result(n=3, failing=1).simulation, "run-1")
    table = view.table
    assert table.currentRow() == 0  # the failed customer, selected for the waterfall
    table.setFocus()
    pay = table.item(0, table.columnCount() - 1)
    assert pay.text().startswith("✗")
    fill, _text = result_colours("failed")
    image = table.viewport().grab().toImage()
    cell = table.visualItemRect(pay)
    assert share_of(image, cell, QColor(fill)) > 0.5  # the failure's fill, not the selection's
    highlight = table.palette().color(QPalette.ColorRole.Highlight)
    assert share_of(image, cell, highlight) > 0.02  # the selection still shows, around it
    name = table.visualItemRect(table.item(0, 0))  # a cell of no outcome: selected as usual
    assert share_of(image, name, highlight) > 0.5


def test_the_log_opens_at_the_start_of_its_lines_and_at_its_latest(
    qtbot: Any, make_panel: Any, fork: Settings
) -> None:
    """Lines logged while another tab is shown (the Results tab opens first); a long last line
    must not scroll the log sideways when the operator opens it."""
    w = make_panel(fork).window
    log = w.logView
    w.tabs.setCurrentIndex(0)
    assert w.tabs.currentWidget() is not log
    for i in range(120):
        log.add("panel", f"line {i}")
    log.add("panel", "a long detail " + "x" * 600)
    log.flush()
    w.tabs.setCurrentWidget(log)
    qtbot.waitExposed(log)
    qtbot.waitUntil(lambda: log.horizontalScrollBar().maximum() > 0, timeout=2_000)
    QApplication.processEvents()
    assert log.horizontalScrollBar().value() == 0  # each line's time and source in view
    vertical = log.verticalScrollBar()
    assert vertical.value() == vertical.maximum() > 0  # the latest lines


def test_an_api_key_is_masked_while_it_is_typed(qtbot: Any) -> None:
    """An export header (an API key) typed into the export settings never shows on screen
    unless Show is pressed; its names stay readable under it."""
    secret = "dt0c01.TYPED-never-shown"
    field = SecretField("exportHeaders")
    qtbot.addWidget(field)
    field.show()
    field.set_value("")  # nothing saved yet
    qtbot.keyClicks(field.edit, f"Authorization=Api-Token%20{secret}")
    assert secret not in field.edit.displayText() and "Api-Token" not in field.edit.displayText()
    assert field.summary.text() == "Authorization=Api-Token ••••"
    assert field.value() == f"Authorization=Api-Token%20{secret}"
    field.toggle.click()  # Show: the operator asked to see it
    assert field.edit.displayText() == f"Authorization=Api-Token%20{secret}"
    field.toggle.click()

    field.set_value("x-team=demo")  # a saved value is typed over, masked too
    field.edit.selectAll()
    qtbot.keyClicks(field.edit, f"Api-Key={secret}")
    assert secret not in field.edit.displayText()
    assert field.edit.echoMode() is QLineEdit.EchoMode.Password
    assert field.value() == f"Api-Key={secret}"


def test_start_traffic_after_a_swept_dead_service_says_what_to_do(
    qtbot: Any, make_panel: Any, fork: Settings
) -> None:
    """The journey lost a service (killed, then swept): Start names the service and the way
    back, not "no journey is running"."""
    panel = make_panel(fork)
    w = panel.window
    run_journey(qtbot, panel, "Swept Co", ["Login", "Pay"], customers=1)
    cell = kill_one(qtbot, panel, "PayService")
    w.sweep()
    qtbot.waitUntil(lambda: cell.info.state is PortState.FREE, timeout=10_000)
    failures: list[str] = []
    panel.bridge.commandFailed.connect(lambda _name, message: failures.append(message))
    w.trafficControl.startButton.click()
    qtbot.waitUntil(lambda: bool(failures), timeout=5_000)
    assert failures == [
        "PayService of Swept Co is not running any more: run the journey again, then start traffic"
    ]
    assert "no journey is running" not in w.banner.text()
    assert w.banner.text().startswith("Start traffic: PayService of Swept Co is not running")
    assert not panel.bridge.core.traffic.running


def test_a_restored_unchanged_template_is_not_called_modified(qtbot: Any) -> None:
    """The window reopens at the remembered journey: a template nobody edited is named as it
    is, and picking another one asks nothing."""
    first = JourneyEditor()
    qtbot.addWidget(first)
    first.load_template("banking")
    remembered = json.loads(json.dumps(first.state()))  # as saved between sessions
    again = JourneyEditor()
    qtbot.addWidget(again)
    again.restore_state(remembered)
    assert again.templateCombo.currentText() == "banking"
    assert not again.is_edited()
    pick_template(again, "e-commerce")
    assert again.discard_dialog is None and again.templateCombo.currentText() == "e-commerce"
