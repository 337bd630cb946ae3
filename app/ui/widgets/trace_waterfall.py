"""The trace waterfall of one customer: the journey's root span and each hop as nested bars on
one time axis, with status, timings and span ids (copyable).

A view: it reads a CustomerResult by attribute (docs/architecture.md, "Parts and their rooms").
Timings come from each hop's span facts (`span["startNs"]`/`["endNs"]`, the SERVER span the step
service measured, "The step service"); each hop calls the next, so a hop's span encloses the
next one's and the tree nests them. Without span facts (an older result) the hops are laid end
to end from their latencies and the header says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, Qt, Signal
from PySide6.QtGui import QAction, QColor, QGuiApplication, QKeyEvent, QKeySequence, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.ui.widgets.palette import result_colours
from app.ui.widgets.sizing import shrink_to_fit

BAR_ROLE = Qt.ItemDataRole.UserRole + 1  # (start fraction, width fraction, status)
IDS_ROLE = Qt.ItemDataRole.UserRole + 2  # "trace <id> span <id>" of the row
COLUMNS = ("Hop", "Status", "Start", "Duration", "Span id", "Timeline")
TIMELINE_COL = 5  # last: the bars take whatever width the text columns leave


@dataclass(frozen=True)
class Hop:
    label: str
    service: str  # the hop's service (its tooltip: the Hop column stays narrow)
    status: str  # ok | failed | skipped (the root: the customer's outcome)
    http_status: int | None
    start_ms: float | None
    duration_ms: float | None
    span_id: str | None
    parent_span_id: str | None


def hops_of(result: Any) -> tuple[list[Hop], bool]:
    """The root and each step as hops, and whether the timings are measured (span facts)."""
    steps = list(result.steps)
    spans = [s.span for s in steps if s.status != "skipped"]
    measured = bool(spans) and all(
        isinstance(s, dict) and "startNs" in s and "endNs" in s for s in spans
    )
    timings = _measured(steps) if measured else _estimated(steps)
    total = max((a + d for a, d in timings if a is not None and d is not None), default=0.0)
    root = Hop(
        result.customer.name,
        "the whole journey",
        "ok" if result.ok else "failed",
        None,
        0.0,
        max(total, float(result.latency_ms or 0.0)),
        result.root_span_id,
        None,
    )
    hops = [
        Hop(
            s.step_name,
            s.service_name,
            s.status,
            s.http_status,
            start,
            dur,
            s.span_id,
            s.parent_span_id,
        )
        for s, (start, dur) in zip(steps, timings, strict=True)
    ]
    return [root, *hops], measured


def _measured(steps: list[Any]) -> list[tuple[float | None, float | None]]:
    t0 = min(s.span["startNs"] for s in steps if s.status != "skipped")
    return [
        (None, None)
        if s.status == "skipped"
        else ((s.span["startNs"] - t0) / 1e6, (s.span["endNs"] - s.span["startNs"]) / 1e6)
        for s in steps
    ]


def _estimated(steps: list[Any]) -> list[tuple[float | None, float | None]]:
    out: list[tuple[float | None, float | None]] = []
    at = 0.0
    for s in steps:
        if s.latency_ms is None:
            out.append((None, None))
            continue
        out.append((at, float(s.latency_ms)))
        at += float(s.latency_ms)
    return out


class BarDelegate(QStyledItemDelegate):
    """Paints the Timeline column: a bar from the hop's start to its end, in its status colour."""

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        super().paint(painter, option, index)
        bar = index.data(BAR_ROLE)
        if not bar:
            return
        start, width, status = bar
        rect: QRect = option.rect.adjusted(4, 4, -4, -4)
        x = rect.left() + int(start * rect.width())
        w = max(3, int(width * rect.width()))
        # The outcome's text colour: strong on the view's base in either scheme (its fill is
        # a pale tint meant for text to sit on).
        _fill, strong = result_colours(status)
        painter.save()
        painter.fillRect(QRect(x, rect.top(), w, rect.height()), QColor(strong))
        painter.restore()


class HopTree(QTreeWidget):
    """An item view takes Ctrl+C for itself (it copies the cell's text): ours copies ids."""

    copyRequested = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.matches(QKeySequence.StandardKey.Copy):
            self.copyRequested.emit()
            event.accept()
            return
        super().keyPressEvent(event)


class TraceWaterfall(QWidget):
    def __init__(
        self,
        parent: QWidget | None = None,
        hint: str = "Select a customer in the results to see its trace.",
    ) -> None:
        super().__init__(parent)
        self.setObjectName("traceWaterfall")
        self._hint = hint
        self.trace_id = ""
        self.hops: list[Hop] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.header = QLabel(hint)
        self.header.setObjectName("waterfallHeader")
        self.header.setWordWrap(True)
        shrink_to_fit(self.header)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.header)
        self.tree = HopTree()
        self.tree.setObjectName("waterfallTree")
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setItemDelegateForColumn(TIMELINE_COL, BarDelegate(self.tree))
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setRootIsDecorated(True)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(60)
        for col in range(len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(TIMELINE_COL, QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.tree, 1)
        self.copyAction = QAction("Copy trace and span ids", self)
        self.copyAction.setObjectName("copySpanIdsAction")
        self.copyAction.setShortcut(QKeySequence(QKeySequence.StandardKey.Copy))  # shown
        self.copyAction.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.copyAction.triggered.connect(self.copy_selected)
        self.tree.copyRequested.connect(self.copy_selected)
        self.tree.addAction(self.copyAction)
        # The tree's own actions are its context menu (a popup: no nested loop under qasync).
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)

    def clear(self) -> None:
        self.tree.clear()
        self.hops, self.trace_id = [], ""
        self.header.setText(self._hint)

    def show_customer(self, result: Any) -> None:
        self.hops, measured = hops_of(result)
        self.trace_id = result.trace_id
        how = "measured spans" if measured else "estimated from latencies (no span facts)"
        self.header.setText(f"Trace {result.trace_id} · {result.customer.name} · {how}")
        self.tree.clear()
        scale = self.hops[0].duration_ms or 1.0
        parent: QTreeWidget | QTreeWidgetItem = self.tree
        for hop in self.hops:
            item = self._item(hop, scale)
            if isinstance(parent, QTreeWidget):
                parent.addTopLevelItem(item)
            else:
                parent.addChild(item)
            if hop.start_ms is not None:  # the next hop is called from this one: nest it
                parent = item
        self.tree.expandAll()
        if (top := self.tree.topLevelItem(0)) is not None:
            self.tree.setCurrentItem(top)

    def _item(self, hop: Hop, scale: float) -> QTreeWidgetItem:
        code = f" · HTTP {hop.http_status}" if hop.http_status else ""
        mark = {"ok": "✓ ok", "failed": "✗ failed", "skipped": "– skipped"}[hop.status]
        texts = (
            hop.label,
            mark + code,
            _ms(hop.start_ms),
            _ms(hop.duration_ms),
            hop.span_id or "—",
            "",
        )
        item = QTreeWidgetItem(list(texts))
        for col in (2, 3):
            item.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        fill, text = result_colours(hop.status)
        item.setBackground(1, QColor(fill))
        item.setForeground(1, QColor(text))
        if hop.start_ms is not None and hop.duration_ms is not None:
            item.setData(
                TIMELINE_COL, BAR_ROLE, (hop.start_ms / scale, hop.duration_ms / scale, hop.status)
            )
        ids = f"trace {self.trace_id} span {hop.span_id or '-'}"
        if hop.parent_span_id:
            ids += f" parent {hop.parent_span_id}"
        item.setData(0, IDS_ROLE, ids)
        item.setToolTip(0, f"{hop.label} · {hop.service}\n{ids}")
        return item

    def selected_ids(self) -> str:
        item = self.tree.currentItem()
        return str(item.data(0, IDS_ROLE)) if item is not None else ""

    def copy_selected(self) -> None:
        if ids := self.selected_ids():
            QGuiApplication.clipboard().setText(ids)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f} ms"
