"""The window's Metrics tab and alerts, with real services and a real foreign listener: the
tab shows the cleanups the runs did (read from the registry `/metrics` exposes), the ports by
state; a foreign process in a launch's way raises an alert shown at once in the banner, the
status bar and the tab's failures, and one click acknowledges it everywhere (the core too)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt

from app.core.settings import Settings
from tests.helpers import listen_on
from tests.ui.test_window import run_journey, stop_all_confirmed


def test_the_metrics_tab_and_an_alert_acknowledged_by_a_click(
    qtbot: Any, make_panel: Any, settings: Settings
) -> None:
    panel = make_panel(settings)
    w = panel.window
    run_journey(qtbot, panel, "Metric Co", ["Login", "Pay"], customers=1)
    [login] = [s for s in panel.bridge.services() if s.service_name == "LoginService"]
    stop_all_confirmed(qtbot, w)
    assert not w.alerts.banner.isVisibleTo(w)
    sock = listen_on(login.port)  # not ours: the next launch must go round it and say so
    try:
        run_journey(qtbot, panel, "Metric Co", ["Login", "Pay"], customers=1)
        banner = w.alerts.banner
        qtbot.waitUntil(lambda: banner.isVisibleTo(w), timeout=5000)
        assert str(login.port) in banner.label.text() and "not by the panel. The panel started" in (
            banner.label.text()
        )
        status = w.alerts.statusLabel
        assert status.isVisibleTo(w) and status.text() == "⚠ 1 alert waiting"

        view = w.alerts.view
        w.tabs.setCurrentWidget(w.alerts.page)
        w.alerts.refresh()
        snapshot, _ring = panel.bridge.metrics()
        assert view.tiles["cleanups"].text() == f"{snapshot.cleanups_total:,.0f}"
        assert snapshot.cleanups_total >= 3  # two runs' cleanups and the Stop All
        by_state = dict(snapshot.ports_by_state)
        assert by_state["allocated"] == 2 and by_state["foreign"] == 1  # the foreign one is used
        assert view.tiles["pool"].text().startswith(f"3 of {len(settings.ports)}")
        assert view.failures.rowCount() == 1
        assert view.failures.item(0, 1).text() == "foreign listener"
        assert str(login.port) in view.failures.item(0, 2).text()
        stacked = view._state_curves["free"].getData()[1]
        assert stacked is not None and stacked[-1] == len(settings.ports)  # the stack's top

        qtbot.mouseClick(banner.ackButton, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not banner.isVisibleTo(w), timeout=2000)
        assert panel.bridge.core.alerts.unacknowledged() == () and not status.isVisibleTo(w)
        assert view.failures.cellWidget(0, 3).text() == "acknowledged"
        assert "0 not acknowledged" in view.failuresTitle.text()
    finally:
        sock.close()
    stop_all_confirmed(qtbot, w)
