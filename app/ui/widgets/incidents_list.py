"""The Incidents tab: the incidents in effect with a countdown and Clear, and the running
scenario's timeline with what comes next (docs/architecture.md, "Incidents and scenarios")."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.incident_model import Incident

COLUMNS = ("Kind", "Service", "What", "Ends in", "")
TICK_MS = 500  # the countdown's refresh: a second shown never lags by more than half


def countdown(seconds: float) -> str:
    whole = max(0, round(seconds))
    return f"{whole // 60}:{whole % 60:02d}" if whole >= 60 else f"{whole} s"


class IncidentsList(QWidget):
    """Shows incidents and a scenario; asks (signals) to clear one, all, or stop the scenario."""

    clearRequested = Signal(str)  # an incident's id; "" for every one
    stopScenarioRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.incidents: list[Incident] = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("incidentsTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.empty = QLabel(
            "No incident in effect. Right-click a running service in the port grid or the "
            "journey map ▸ Inject incident, or File ▸ Run scenario."
        )
        self.empty.setWordWrap(True)
        self.empty.setObjectName("incidentsEmpty")
        self.clearAll = QPushButton("Clear all")
        self.clearAll.setObjectName("clearAllIncidents")
        self.clearAll.clicked.connect(lambda: self.clearRequested.emit(""))
        self.scenario = QLabel("")
        self.scenario.setObjectName("scenarioLine")
        self.scenario.setWordWrap(True)
        self.scenario.setTextFormat(Qt.TextFormat.PlainText)
        self.stopScenario = QPushButton("Stop scenario")
        self.stopScenario.setObjectName("stopScenario")
        self.stopScenario.clicked.connect(self.stopScenarioRequested.emit)
        scenario_row = QHBoxLayout()
        scenario_row.addWidget(self.scenario, 1)
        scenario_row.addWidget(self.stopScenario)
        top = QHBoxLayout()
        top.addWidget(self.empty, 1)
        top.addWidget(self.clearAll)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addLayout(scenario_row)
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.show_scenario(None)
        self.show_incidents([])

    def show_incidents(self, incidents: list[Incident]) -> None:
        self.incidents = sorted(incidents, key=lambda i: i.started_at)
        self.table.setRowCount(len(self.incidents))
        for row, incident in enumerate(self.incidents):
            values = (incident.kind.value, incident.key, incident.spec.summary(), "")
            for column, text in enumerate(values):
                self.table.setItem(row, column, QTableWidgetItem(text))
            clear = QPushButton("Clear")
            clear.setObjectName(f"clear_{incident.id}")
            clear.clicked.connect(lambda _=False, i=incident.id: self.clearRequested.emit(i))
            self.table.setCellWidget(row, len(COLUMNS) - 1, clear)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.empty.setText(
            f"{len(self.incidents)} incident{'s' * (len(self.incidents) != 1)} in effect"
            if self.incidents
            else "No incident in effect. Right-click a running service in the port grid or "
            "the journey map ▸ Inject incident, or File ▸ Run scenario."
        )
        self.clearAll.setEnabled(bool(self.incidents))
        self._tick()
        if self.incidents:
            self.timer.start()
        else:
            self.timer.stop()

    def _tick(self) -> None:
        now = time.monotonic()
        for row, incident in enumerate(self.incidents):
            item = self.table.item(row, 3)
            if item is not None:
                item.setText(countdown(incident.remaining_s(now)))

    def show_scenario(self, status: dict[str, Any] | None) -> None:
        """`status` is ScenarioRun.to_json() of the running (or last) scenario, or None."""
        self.scenario.setText(scenario_line(status))
        self.stopScenario.setVisible(bool(status and status.get("state") == "running"))


def scenario_line(status: dict[str, Any] | None) -> str:
    """The scenario's state, its timeline (each step's time and state) and what comes next:
    "Scenario payment-outage: running · next in 42 s: errors on PaymentService"."""
    if not status:
        return ""
    text = f"Scenario {status.get('name', '?')}: {status.get('state', '')}"
    if status.get("reason"):
        text += f" ({status['reason']})"
    upcoming = status.get("next")
    if status.get("state") == "running" and upcoming:
        spec = upcoming.get("incident") or {}
        text += (
            f" · next in {countdown(upcoming.get('inS', 0))}: "
            f"{spec.get('kind', '?')} on {spec.get('service', '?')}"
        )
    marks = {"pending": "·", "started": "✓", "failed": "✗", "cancelled": "–"}
    timeline = [
        f"{marks.get(step.get('state', ''), '?')} +{step.get('atS', 0):g} s "
        f"{(step.get('incident') or {}).get('kind', '?')}"
        for step in status.get("steps") or []
    ]
    return text + ("\n" + "   ".join(timeline) if timeline else "")
