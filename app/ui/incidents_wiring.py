"""The window's incidents: what connects the views that show them (port grid badge, journey
map badge, Incidents tab, chart markers, the incident strip) to the bridge that starts and
ends them, and the File ▸ Run scenario menu (docs/architecture.md, "Incidents and scenarios").

Kept out of MainWindow: the window only places the strip and the tab and hands over its views.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QFileDialog, QLabel, QMenu, QWidget

from app.ui.bridge import CoreBridge, Incident, IncidentChange, IncidentEvent
from app.ui.widgets.incident_dialog import IncidentDialog
from app.ui.widgets.incidents_list import IncidentsList, countdown
from app.ui.widgets.journey_map import JourneyMap
from app.ui.widgets.palette import INCIDENT_BADGE, INCIDENT_END, notice_colours
from app.ui.widgets.port_grid import PortGrid
from app.ui.widgets.traffic_chart import TrafficChart

Task = Callable[[Coroutine[Any, Any, Any]], Any]
SCENARIO_POLL_MS = 1000  # a running scenario's "next in" line, refreshed this often


def labels_by_key(incidents: list[Incident]) -> dict[str, str]:
    """Each service's incidents in words ("errors: 100% fail with 500 internal")."""
    by_key: dict[str, list[str]] = {}
    for i in incidents:
        by_key.setdefault(i.key, []).append(f"{i.kind.value}: {i.spec.summary()}")
    return {key: "; ".join(texts) for key, texts in by_key.items()}


class IncidentsWiring(QObject):
    def __init__(
        self,
        bridge: CoreBridge,
        task: Task,
        grid: PortGrid,
        journey_map: JourneyMap,
        chart: TrafficChart,
        parent: QWidget,
    ) -> None:
        super().__init__(parent)
        self.bridge, self.task, self.parent_widget = bridge, task, parent
        self.grid, self.map, self.chart = grid, journey_map, chart
        self.list = IncidentsList()
        self.strip = QLabel()
        self.strip.setObjectName("incidentStrip")
        self.strip.setWordWrap(True)
        self.strip.setTextFormat(Qt.TextFormat.PlainText)
        self.strip.hide()
        self.dialog: IncidentDialog | None = None
        grid.incidentRequested.connect(self.ask)
        journey_map.incidentRequested.connect(self.ask)
        self.list.clearRequested.connect(lambda i: self.task(bridge.clear_incidents(i)))
        self.list.stopScenarioRequested.connect(lambda: self.task(bridge.stop_scenario()))
        bridge.incidentsChanged.connect(self.on_event)
        self.poll = QTimer(self)
        self.poll.setInterval(SCENARIO_POLL_MS)
        self.poll.timeout.connect(self.refresh)

    # -- asking --------------------------------------------------------------------------------
    def ask(self, key: str, kind: str) -> IncidentDialog:
        """The dialog for an incident of `kind` on service `key`; Inject starts it."""
        if self.dialog is not None:
            self.dialog.deleteLater()
        self.dialog = IncidentDialog(key, kind, self.parent_widget)
        dialog = self.dialog
        dialog.accepted.connect(lambda: self.task(self.bridge.start_incident(dialog.body())))
        dialog.open()  # open(), not exec(): no nested event loop while asyncio runs on Qt's
        return dialog

    def scenario_menu(self, menu: QMenu) -> QMenu:
        """File ▸ Run scenario ▸ each packaged one, one from a file, and Stop scenario."""
        sub = menu.addMenu("Run &scenario")
        sub.setObjectName("runScenarioMenu")
        for name in self.bridge.scenario_names():
            action = sub.addAction(name)
            action.setObjectName(f"scenario_{name}")
            action.triggered.connect(lambda _=False, n=name: self.run_scenario(name=n))
        sub.addSeparator()
        sub.addAction("From a file…", self.choose_scenario_file)
        stop = sub.addAction("Stop scenario")
        stop.setObjectName("stopScenarioAction")
        stop.triggered.connect(lambda: self.task(self.bridge.stop_scenario()))
        return sub

    def run_scenario(self, name: str = "", path: str = "") -> None:
        self.task(self.bridge.run_scenario(name=name, path=path))
        self.poll.start()

    def choose_scenario_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.parent_widget, "Run scenario", "", "Scenario (*.json);;All files (*)"
        )
        if path:
            self.run_scenario(path=path)

    # -- showing -------------------------------------------------------------------------------
    def on_event(self, event: IncidentEvent) -> None:
        incident = event.incident
        if event.change is IncidentChange.STARTED:
            text = f"⚡ {incident.kind.value} {incident.service_name}"
            self.chart.mark(incident.started_at, text, INCIDENT_BADGE)
        else:
            text = f"✓ {incident.kind.value} {incident.service_name} ended"
            self.chart.mark(time.time(), text, INCIDENT_END)
        self.refresh()

    def refresh(self) -> None:
        incidents = self.bridge.incidents()
        by_key = labels_by_key(incidents)
        self.grid.set_incidents(by_key)
        self.map.set_incidents(by_key)
        self.list.show_incidents(incidents)
        scenario = self.bridge.scenario_status()
        self.list.show_scenario(scenario)
        running = bool(scenario and scenario.get("state") == "running")
        if not running and not incidents:
            self.poll.stop()
        self._show_strip(incidents)

    def _show_strip(self, incidents: list[Incident]) -> None:
        """One line across the window while incidents are in effect: seen from the back."""
        if not incidents:
            self.strip.hide()
            return
        now = time.monotonic()
        parts = [
            f"{i.kind.value} on {i.service_name} ({i.spec.summary()}, ends in "
            f"{countdown(i.remaining_s(now))})"
            for i in incidents[:3]
        ]
        more = f" and {len(incidents) - 3} more" if len(incidents) > 3 else ""
        self.strip.setText("⚡ Incident: " + " · ".join(parts) + more)
        fill, text, border = notice_colours("warning")
        self.strip.setStyleSheet(
            f"QLabel {{ background: {fill}; color: {text}; border: 1px solid {border};"
            " border-radius: 4px; padding: 6px; font-weight: bold; }"
        )
        self.strip.show()
        if not self.poll.isActive():  # the countdown in the strip moves too
            self.poll.start()
