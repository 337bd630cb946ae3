"""The resident journeys: one row each (company, type, services, traffic) with a Stop button;
and the choice, next to Run Journey, of which journeys a run replaces and which companies it
keeps (docs/architecture.md, "Several companies in one pool").

Views: handed `JourneySummary` values (app/core/residents.py), they emit what the operator asks
for and never touch the core."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.model import CleanupStrategy, JourneySummary

COLUMNS = ("Company", "Type", "Services", "Traffic", "")
STRATEGY_TEXT = {
    CleanupStrategy.ALL: "every journey",
    CleanupStrategy.COMPANY: "the same company's journey",
    CleanupStrategy.JOURNEY_TYPE: "journeys of the same type",
}


def traffic_text(summary: JourneySummary) -> str:
    t = summary.traffic
    if t is None or not t.running:
        return "—"
    if t.paused:
        return f"paused: {t.paused}"
    return f"{t.rate:g}/s · {t.completed:,} done"


class JourneysList(QWidget):
    stopRequested = Signal(str)  # journey id
    selected = Signal(str)  # journey id (the journey map follows it)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("journeysList")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.empty = QLabel("No journey runs: Run Journey makes one resident here.")
        self.empty.setObjectName("journeysEmpty")
        layout.addWidget(self.empty)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("journeysTable")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._on_select)
        layout.addWidget(self.table, 1)
        self._rows: list[tuple[Any, ...]] = []
        self._ids: list[str] = []

    def bind(self, source: Any) -> None:
        source.journeysChanged.connect(self.set_journeys)

    def set_journeys(self, journeys: Sequence[JourneySummary]) -> None:
        rows = [self._row(j) for j in journeys]
        if rows == self._rows:
            return
        self._rows = rows
        self._ids = [j.id for j in journeys]
        self.table.setRowCount(len(rows))
        for r, (journey_id, *cells) in enumerate(rows):
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, journey_id)
                self.table.setItem(r, c, item)
            stop = QPushButton("Stop")
            stop.setObjectName(f"stopJourney_{journey_id}")
            stop.setToolTip(f"Stop this journey's services and traffic ({journey_id})")
            stop.clicked.connect(lambda _=False, j=journey_id: self.stopRequested.emit(j))
            self.table.setCellWidget(r, len(COLUMNS) - 1, stop)
        self.empty.setVisible(not rows)
        self.table.setVisible(bool(rows))

    @staticmethod
    def _row(j: JourneySummary) -> tuple[Any, ...]:
        services = f"{len(j.services)} · ports {', '.join(str(s.port) for s in j.services)}"
        return (j.id, j.company, j.industry, services, traffic_text(j))

    def journey_ids(self) -> list[str]:
        return list(self._ids)

    def _on_select(self) -> None:
        rows = {i.row() for i in self.table.selectedItems()}
        if len(rows) == 1:
            self.selected.emit(self._ids[rows.pop()])


class RunOptions(QWidget):
    """Next to Run Journey: which journeys the run replaces, and which companies it keeps."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("runOptions")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Replaces:"))
        self.strategy = QComboBox()
        self.strategy.setObjectName("cleanupStrategyCombo")
        for strategy, text in STRATEGY_TEXT.items():
            self.strategy.addItem(text, strategy.value)
        self.strategy.setToolTip(
            "Which running journeys a Run Journey stops: every one (as before), only the same "
            "company's, or only journeys of the same industry. Essential services always stay."
        )
        row.addWidget(self.strategy, 1)
        self.keep = QToolButton()
        self.keep.setObjectName("preserveButton")
        self.keep.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.keep.setToolTip("Companies whose journeys this run never replaces")
        self._menu = QMenu(self.keep)
        self.keep.setMenu(self._menu)
        row.addWidget(self.keep)
        self._companies: list[str] = []
        self._kept: set[str] = set()
        self._update_keep()

    def set_strategy(self, value: str) -> None:
        index = self.strategy.findData(value)
        if index >= 0:
            self.strategy.setCurrentIndex(index)

    def cleanup(self) -> str:
        return str(self.strategy.currentData())

    def preserve(self) -> list[str]:
        return [c for c in self._companies if c in self._kept]

    def set_companies(self, companies: Sequence[str]) -> None:
        """The companies of the resident journeys, the ones the run could keep."""
        names = list(dict.fromkeys(companies))
        if names == self._companies:
            return
        self._companies = names
        self._kept &= set(names)
        self._menu.clear()
        for name in names:
            action = self._menu.addAction(name)
            action.setCheckable(True)
            action.setChecked(name in self._kept)
            action.toggled.connect(lambda on, n=name: self._toggle(n, on))
        self._update_keep()

    def _toggle(self, name: str, on: bool) -> None:
        if on:
            self._kept.add(name)
        else:
            self._kept.discard(name)
        self._update_keep()

    def _update_keep(self) -> None:
        kept = self.preserve()
        self.keep.setText(f"Keep: {', '.join(kept)}" if kept else "Keep: none")
        self.keep.setEnabled(bool(self._companies))

    def journeys_changed(self, journeys: Sequence[JourneySummary]) -> None:
        self.set_companies([j.company for j in journeys])
