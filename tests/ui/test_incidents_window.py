"""Incidents in the window, with real services: a port cell's "Inject incident ▸" opens the
dialog, Inject starts it in the running process (same pid), the cell, the journey-map node,
the Incidents tab, the strip and the traffic chart all show it, Clear ends it everywhere; the
scenario menu runs a packaged scenario; the traffic rate changes live; the charts mark a
journey switch and Stop All, and say when traffic stopped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMenu, QPushButton

from app.core.settings import Settings
from app.ui.widgets.incident_dialog import IncidentDialog
from tests.ui.conftest import drive
from tests.ui.test_window import run_journey, stop_all_confirmed


def _inject_from_cell(qtbot: Any, window: Any, port: int, kind: str) -> IncidentDialog:
    menu = window.grid.cell(port).build_menu()
    [sub] = [a.menu() for a in menu.actions() if a.menu() is not None]
    assert sub.isEnabled() and sub.title() == "Inject incident"
    action = next(a for a in sub.actions() if a.objectName() == f"incident_{kind}")
    action.trigger()
    dialog = window.incidents.dialog
    assert isinstance(dialog, IncidentDialog)
    qtbot.waitUntil(dialog.isVisible, timeout=2000)
    return dialog


def test_inject_from_a_cell_is_shown_everywhere_and_clear_ends_it(
    qtbot: Any, make_panel: Any, settings: Settings
) -> None:
    panel = make_panel(settings)
    w = panel.window
    run_journey(qtbot, panel, "Bolt Co", ["Login", "Pay"], customers=1)
    [pay] = [s for s in panel.bridge.services() if s.service_name == "PayService"]
    dialog = _inject_from_cell(qtbot, w, pay.port, "errors")
    assert dialog.kind.value == "errors" and set(dialog.spins) == {"rate", "status"}
    assert dialog.spins["rate"].suffix() == " %"  # a share, entered as a percent
    dialog.spins["rate"].setValue(100)
    dialog.set_value("durationS", 30)
    assert dialog.body() == {
        "service": pay.key,
        "kind": "errors",
        "rate": 1.0,
        "status": 500,
        "durationS": 30.0,
    }
    dialog.findChild(QPushButton, "incidentInject").click()
    qtbot.waitUntil(lambda: len(panel.bridge.incidents()) == 1, timeout=5000)
    [incident] = panel.bridge.incidents()
    assert incident.pid == pay.pid and incident.kind.value == "errors"
    assert [s.pid for s in panel.bridge.services() if s.key == pay.key] == [pay.pid]

    cell = w.grid.cell(pay.port)
    assert cell._look().incident and ("Incident", "errors: 100% fail with 500 internal") in (
        cell.details()
    )
    node = next(n for n in w.journeyMap.nodes if n.service_name == "PayService")
    assert node.incident.startswith("errors")
    table = w.incidents.list.table
    assert table.rowCount() == 1 and table.item(0, 1).text() == pay.key
    assert w.incidents.strip.isVisibleTo(w) and "errors on PayService" in w.incidents.strip.text()
    assert [m.text for m in w.trafficChart.markers] == ["▶ Bolt Co", "⚡ errors PayService"]

    table.cellWidget(0, 4).click()  # Clear
    qtbot.waitUntil(lambda: not panel.bridge.incidents(), timeout=5000)
    qtbot.waitUntil(lambda: not w.incidents.strip.isVisibleTo(w), timeout=2000)
    assert not cell._look().incident and table.rowCount() == 0
    assert [m.text for m in w.trafficChart.markers][-1] == "✓ errors PayService ended"


def test_a_refused_incident_says_which_field_and_starts_nothing(
    qtbot: Any, make_panel: Any, settings: Settings
) -> None:
    panel = make_panel(settings)
    run_journey(qtbot, panel, "Bolt Co", ["Pay"], customers=1)
    [pay] = [s for s in panel.bridge.services() if s.service_name == "PayService"]
    failures: list[tuple[str, str]] = []
    panel.bridge.commandFailed.connect(lambda name, msg: failures.append((name, msg)))
    body = {"service": pay.key, "kind": "memory", "capMb": 9999, "durationS": 5}
    drive(qtbot, panel.bridge.start_incident(body))
    assert len(failures) == 1 and "memory cap must be" in failures[0][1], failures
    assert panel.bridge.incidents() == []


def test_the_scenario_menu_runs_a_packaged_scenario_and_stop_ends_it(
    qtbot: Any, make_panel: Any, settings: Settings, tmp_path: Path
) -> None:
    panel = make_panel(settings)
    w = panel.window
    run_journey(qtbot, panel, "Shop Co", ["Checkout", "Payment"], customers=1)
    menu = w.findChild(QMenu, "runScenarioMenu")
    entries = {a.objectName(): a for a in menu.actions()}
    assert {"scenario_payment-outage", "scenario_slow-checkout"} <= set(entries)
    entries["scenario_payment-outage"].trigger()
    qtbot.waitUntil(lambda: len(panel.bridge.incidents()) == 1, timeout=5000)
    [incident] = panel.bridge.incidents()
    assert incident.service_name == "PaymentService" and incident.scenario
    assert "Scenario payment-outage: running" in w.incidents.list.scenario.text()
    assert not w.incidents.list.stopScenario.isHidden()
    qtbot.mouseClick(w.incidents.list.stopScenario, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.bridge.incidents(), timeout=5000)
    qtbot.waitUntil(lambda: "stopped" in w.incidents.list.scenario.text(), timeout=3000)

    # A scenario file whose service is not running: refused whole, nothing started.
    path = tmp_path / "bad.json"
    step = {"atS": 0, "incident": {"service": "NoSuchService", "kind": "hang"}}
    path.write_text(json.dumps({"name": "bad", "steps": [step]}))
    failures: list[str] = []
    panel.bridge.commandFailed.connect(lambda _name, msg: failures.append(msg))
    w.incidents.run_scenario(path=str(path))
    qtbot.waitUntil(lambda: bool(failures), timeout=5000)
    assert "NoSuchService" in failures[0] and panel.bridge.incidents() == []


def test_the_rate_changes_live_without_clearing_the_chart(
    qtbot: Any, make_panel: Any, settings: Settings
) -> None:
    panel = make_panel(settings)
    w = panel.window
    run_journey(qtbot, panel, "Rate Co", ["Login"], customers=1)
    control, core = w.trafficControl, panel.bridge.core
    control.rateSpin.setValue(4.0)
    qtbot.mouseClick(control.startButton, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: core.traffic.status().completed >= 8, timeout=10_000)
    seconds = len(core.traffic.status().series)
    assert not control.startButton.isEnabled() and control.rateSpin.isEnabled()
    control.rateSpin.setValue(9.0)  # typed while it runs: no Stop, no Start
    qtbot.waitUntil(lambda: core.traffic.status().rate == 9.0, timeout=3000)
    status = core.traffic.status()
    assert status.running and len(status.series) >= seconds  # the history is kept
    chart = w.trafficChart
    assert [m.text for m in chart.markers] == ["▶ Rate Co"]  # the run's switch, marked
    assert chart.time_axis_text() == "seconds ago"
    drive(qtbot, panel.bridge.stop_traffic())
    qtbot.waitUntil(lambda: chart.stopped_at is not None, timeout=3000)
    assert chart.time_axis_text().startswith("seconds before ") and "stopped" in (
        chart.errors.getAxis("bottom").labelText
    )
    stop_all_confirmed(qtbot, w)
    assert [m.text for m in chart.markers][-1] == "■ Stop All"
