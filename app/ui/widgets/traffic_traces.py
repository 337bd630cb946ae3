"""The Traces tab: the latest, the slowest and the failed journeys of continuous traffic
(bounded in the core: app/core/traces.py), and the waterfall of the one selected — not only the
last Run Journey's customers.

A view: it is handed a source, `kind -> list of kept traces` (at, company, result), and reads it
about once a second while it is on screen; the selection follows its trace through updates.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.ui.widgets.palette import result_colours
from app.ui.widgets.trace_waterfall import TraceWaterfall

KINDS = (("latest", "Latest"), ("slowest", "Slowest"), ("failed", "Failed"))
COLUMNS = ("Ended", "Company", "Customer", "Total", "Outcome")
REFRESH_MS = 1000
Source = Callable[[str], list[Any]]


class TrafficTraces(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trafficTraces")
        self._source: Source | None = None
        self.shown: list[Any] = []
        self.kindCombo = QComboBox()
        self.kindCombo.setObjectName("tracesKind")
        for value, text in KINDS:
            self.kindCombo.addItem(text, value)
        self.kindCombo.currentIndexChanged.connect(lambda _i: self._rekind())
        self.live = QCheckBox("Live")
        self.live.setObjectName("tracesLive")
        self.live.setChecked(True)
        self.live.setToolTip("Follow traffic as it flows; untick to hold the list still")
        self.countLabel = QLabel("")
        self.countLabel.setObjectName("tracesCount")
        self.countLabel.setWordWrap(True)  # a long line never widens the pane
        self.countLabel.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        top = QHBoxLayout()
        top.addWidget(QLabel("Show:"))
        top.addWidget(self.kindCombo)
        top.addWidget(self.live)
        top.addWidget(self.countLabel, 1)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("tracesTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._selected)
        self.waterfall = TraceWaterfall(hint="Select a journey above to see its trace.")
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.waterfall)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def set_source(self, source: Source) -> None:
        self._source = source
        self.refresh()

    @property
    def kind(self) -> str:
        return str(self.kindCombo.currentData())

    def _rekind(self) -> None:
        self.shown = []  # another list: its rows and its count line are drawn anew
        self.refresh()

    def _tick(self) -> None:
        if self.isVisible() and self.live.isChecked():
            self.refresh()

    def refresh(self) -> None:
        traces = self._source(self.kind) if self._source is not None else []
        if _ids(traces) == _ids(self.shown) and self.table.rowCount() == len(traces):
            return  # nothing new: a quiet second rebuilds no rows
        keep = self._selected_trace_id()
        self.shown = traces
        self.table.blockSignals(True)
        self.table.setRowCount(len(traces))
        reselect = -1
        for row, kept in enumerate(traces):
            result = kept.result
            ok = result.ok
            values = (
                time.strftime("%H:%M:%S", time.localtime(kept.at)),
                kept.company,
                result.customer.name,
                f"{result.latency_ms:,.0f} ms",
                "ok" if ok else _failed_step(result),
            )
            for column, text in enumerate(values):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, result.trace_id)
                self.table.setItem(row, column, item)
            fill, fg = result_colours("ok" if ok else "failed")
            outcome = self.table.item(row, 4)
            if outcome is not None:
                outcome.setBackground(QColor(fill))
                outcome.setForeground(QColor(fg))
            if result.trace_id == keep:
                reselect = row
        if reselect >= 0:
            self.table.selectRow(reselect)
        self.table.blockSignals(False)
        what = dict(KINDS)[self.kind].lower()
        self.countLabel.setText(
            f"{len(traces)} {what} journeys of the running traffic" if traces else
            "No traffic journeys yet: start traffic on the Traffic tab."
        )  # fmt: skip
        if reselect < 0 and keep:
            self.waterfall.clear()

    def _selected_trace_id(self) -> str:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return ""
        item = self.table.item(rows[0].row(), 0)
        return str(item.data(Qt.ItemDataRole.UserRole)) if item is not None else ""

    def _selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows and rows[0].row() < len(self.shown):
            self.waterfall.show_customer(self.shown[rows[0].row()].result)


def _failed_step(result: Any) -> str:
    failed = next((s for s in result.steps if s.status != "ok"), None)
    return f"failed at {failed.step_name}" if failed is not None else "failed"


def _ids(traces: list[Any]) -> list[str]:
    return [k.result.trace_id for k in traces]
