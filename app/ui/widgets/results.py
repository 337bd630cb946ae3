"""Results of a run: one row per customer, one column per step (status + latency), a summary,
and under the table the trace waterfall of the selected customer."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QModelIndex, QObject, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QPainter, QPalette, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QSplitter,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.ui.widgets.palette import result_colours
from app.ui.widgets.sizing import fact_line
from app.ui.widgets.trace_waterfall import TraceWaterfall

MAX_ROWS = 500  # a 10 000-customer batch is summarised, not rendered row by row
SELECTION_FRAME_PX = 2


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


class ResultsView(QWidget):
    """Fed a SimulationResult (customers, summary); knows nothing else of the core."""

    customerSelected = Signal(object)  # the CustomerResult of the selected row

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("resultsView")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.summary = QLabel("No results yet.")
        self.summary.setObjectName("resultsSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.summary)
        self.table = QTableWidget(0, 0)
        self.table.setObjectName("resultsTable")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(False)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.currentCellChanged.connect(self._row_selected)
        self.table.setItemDelegate(OutcomeDelegate(self.table))
        self.waterfall = TraceWaterfall()
        self.customerSelected.connect(self.waterfall.show_customer)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("resultsSplitter")
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.waterfall)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setStretchFactor(0, 3)  # the table keeps more of a small window
        self.splitter.setStretchFactor(1, 2)
        layout.addWidget(self.splitter, 1)
        self._customers: list[Any] = []
        # The selected customer is the one in the waterfall: a shorter table (a smaller window,
        # a splitter, a tab shown again) keeps its row on screen.
        self.table.viewport().installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in (QEvent.Type.Resize, QEvent.Type.Show):
            QTimer.singleShot(0, self, self._current_in_view)  # once the scroll bars are sized
        return super().eventFilter(watched, event)

    def _current_in_view(self) -> None:
        if (item := self.table.currentItem()) is not None:
            self.table.scrollToItem(item)  # only scrolls when the row is not in view

    def bind(self, source: Any) -> None:
        """Show `source`'s runs (the window's stage): in progress, then their customers."""
        source.runStarted.connect(lambda run_id, _company: self.show_running(run_id))
        source.runFinished.connect(self.show_result)

    def show_result(self, result: Any) -> None:
        if result.simulation is not None:
            self.show_simulation(result.simulation, result.run_id)
        else:
            self.show_error(result.error or "the run did not reach the simulate phase")

    def clear(self, text: str = "No results yet.") -> None:
        self._customers = []
        self.waterfall.clear()
        self.table.clearContents()
        self.table.setRowCount(0)
        self.table.setColumnCount(0)
        self.summary.setText(text)

    def show_running(self, run_id: str) -> None:
        self.clear(f"Run {run_id} in progress: results appear when the customers are through.")

    def show_error(self, message: str) -> None:
        self.clear(f"No results: {message}")

    def show_simulation(self, sim: Any, run_id: str = "") -> None:
        customers = list(sim.customers)
        step_names = [s.step_name for s in customers[0].steps] if customers else []
        headers = ["Customer", "Total", *step_names]
        self.table.clearContents()
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        shown = customers[:MAX_ROWS]
        self._customers = []  # no selection signal while the rows are rebuilt
        self.table.setRowCount(len(shown))
        for row, result in enumerate(shown):
            c = result.customer
            name = QTableWidgetItem(c.name)
            name.setToolTip(
                f"{c.name} <{c.email}>\n{c.segment} · {c.loyalty_tier}\n{c.id}\n"
                f"trace {result.trace_id}"
            )
            self.table.setItem(row, 0, name)
            total = QTableWidgetItem(_ms(result.latency_ms))
            total.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            total.setToolTip("the whole chain, as the customer saw it")
            self.table.setItem(row, 1, total)
            for col, step in enumerate(result.steps, start=2):
                self.table.setItem(row, col, _step_item(step))
        self.table.resizeColumnsToContents()
        self._customers = shown
        if shown:  # the waterfall starts on the first failed customer: the one worth a look
            self.select_customer(next((i for i, r in enumerate(shown) if not r.ok), 0))
        s = sim.summary
        mode = getattr(sim.mode, "value", sim.mode)
        more = f" (first {MAX_ROWS} shown)" if len(customers) > MAX_ROWS else ""
        prefix = f"Run {run_id} · " if run_id else ""
        self.summary.setText(
            prefix
            + fact_line(
                f"{mode}: {s.customers} customers{more}",
                f"{s.completed} completed",
                f"{s.failed} failed",
                f"success {s.success_rate:.0%}",
                f"p50 {s.p50_ms:,.0f} ms",
                f"p95 {s.p95_ms:,.0f} ms",
                f"{s.journeys_per_s:,.1f} journeys/s",
            )
        )

    def row_count(self) -> int:
        return self.table.rowCount()

    def select_customer(self, row: int) -> None:
        if self.table.currentRow() == row:  # no change, no signal: show it anyway
            self._row_selected(row)
        self.table.setCurrentCell(row, 0)

    def _row_selected(self, row: int, *_args: int) -> None:
        if 0 <= row < len(self._customers):
            self.customerSelected.emit(self._customers[row])


class OutcomeDelegate(QStyledItemDelegate):
    """A selected step cell keeps its outcome's fill and text: the style paints the selection
    over a cell's own background, and the selected failed customer (the one the waterfall
    starts on) lost its red. The selection shows as a frame in the highlight colour instead."""

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if not selected or index.data(Qt.ItemDataRole.BackgroundRole) is None:
            super().paint(painter, option, index)
            return
        plain = QStyleOptionViewItem(option)
        plain.state = option.state & ~QStyle.StateFlag.State_Selected
        super().paint(painter, plain, index)
        painter.save()
        colour = option.palette.color(QPalette.ColorRole.Highlight)
        painter.setPen(QPen(colour, SELECTION_FRAME_PX))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        half = SELECTION_FRAME_PX // 2
        rect = option.rect.adjusted(half, half, -half, -half)
        painter.drawRect(rect)
        painter.restore()


def _step_item(step: Any) -> QTableWidgetItem:
    if step.status == "ok":
        text = f"✓ {_ms(step.latency_ms)}"
    elif step.status == "skipped":
        text = "– skipped"
    else:
        # "HTTP 504 · 123 ms": a status code next to a latency must not read as one number
        code = f"HTTP {step.http_status} · " if step.http_status else ""
        text = f"✗ {code}{_ms(step.latency_ms)}"
    bg, fg = result_colours(step.status)
    item = QTableWidgetItem(text)
    item.setBackground(QBrush(QColor(bg)))
    item.setForeground(QBrush(QColor(fg)))
    tip = f"{step.service_name}: {step.status}"
    if step.http_status:
        tip += f" (HTTP {step.http_status})"
    if step.error:
        tip += f"\n{step.error}"
    item.setToolTip(tip)
    return item
