"""The trace waterfall of one customer: the journey's root span and each hop as nested bars on
one time axis, after Jaeger's trace view (docs/architecture.md, "The window").

A view: it reads a CustomerResult by attribute (docs/architecture.md, "Parts and their rooms").
Timings come from each hop's span facts (`span["startNs"]`/`["endNs"]`, the SERVER span the step
service measured, "The step service"); each hop calls the next, so a hop's span encloses the
next one's and the tree nests them. Without span facts (an older result) the hops are laid end
to end from their latencies and the header says so.

The bars take most of the width: beside them only the hop's name and its service, both capped
to a share of the width; a time ruler in ms heads the bars (widgets/time_ruler.py). A hop's
other facts (status, HTTP code, start, duration, span and parent span ids) are its tooltip and,
for the selected hop, the detail line under the tree (selectable text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QColor,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QPainter,
    QPalette,
)
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
from app.ui.widgets.sizing import fact_line, shrink_to_fit
from app.ui.widgets.time_ruler import RulerHeader, track, x_at

BAR_ROLE = Qt.ItemDataRole.UserRole + 1  # (start fraction, width fraction, status)
IDS_ROLE = Qt.ItemDataRole.UserRole + 2  # "trace <id> span <id>" of the row
HOP_ROLE = Qt.ItemDataRole.UserRole + 3  # the row's index in `TraceWaterfall.hops`
COLUMNS = ("Hop", "Service", "")  # the last one's title is the time ruler
SERVICE_COL = 1
TIMELINE_COL = 2  # last: the bars take whatever width the text columns leave
# The text columns' widths at most, as shares of the tree's width: the bars keep ≥ 60 % of it.
HOP_SHARE = 0.2
SERVICE_SHARE = 0.16
INDENT_PX = (4, 16)  # a deep chain indents less, so its last hop's name still shows
TEXT_MARGIN_PX = 6  # a text column's room beside its text (the item's margins)
ROW_PAD_PX = 6  # a row is the font's height and this: readable, not squashed
MIN_ROWS = 4  # the tree never gets shorter than this many rows (and the ruler)
MARKS = {"ok": "✓ ok", "failed": "✗ failed", "skipped": "– skipped"}


@dataclass(frozen=True)
class Hop:
    label: str
    service: str  # the hop's step service (the Service column)
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


def hop_facts(hop: Hop, trace_id: str) -> list[str]:
    """A hop's facts in words: its tooltip's lines and its detail line's parts."""
    code = f"HTTP {hop.http_status}" if hop.http_status else ""
    return [
        f"{hop.label} · {hop.service}",
        fact_line(MARKS[hop.status], code),
        fact_line(f"start {_ms(hop.start_ms)}", f"duration {_ms(hop.duration_ms)}"),
        fact_line(f"trace {trace_id}" if trace_id else "", f"span {hop.span_id or '—'}"),
        f"parent span {hop.parent_span_id}" if hop.parent_span_id else "no parent span (root)",
    ]


class BarDelegate(QStyledItemDelegate):
    """Paints the timeline column: the ruler's grid lines, then a bar from the hop's start to its
    end in its status colour, on the ruler's own time axis (`track`, `x_at`)."""

    def __init__(self, ruler: RulerHeader, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ruler = ruler

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        hint = super().sizeHint(option, index)
        return QSize(hint.width(), max(hint.height(), option.fontMetrics.height() + ROW_PAD_PX))

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        super().paint(painter, option, index)
        cell: QRect = option.rect
        painter.save()
        painter.setPen(option.palette.color(QPalette.ColorRole.Midlight))
        for tick in self.ruler.ticks():
            painter.drawLine(tick.x, cell.top(), tick.x, cell.bottom())
        if bar := index.data(BAR_ROLE):
            x, w = bar_extent(cell, bar[0], bar[1])
            # The outcome's text colour: strong on the view's base in either scheme (its fill
            # is a pale tint meant for text to sit on).
            _fill, strong = result_colours(bar[2])
            painter.fillRect(QRect(x, cell.top() + 4, w, cell.height() - 8), QColor(strong))
        painter.restore()


def bar_extent(cell: QRect, start: float, width: float) -> tuple[int, int]:
    """A bar's x and width in a timeline cell, from its start and width as fractions."""
    axis = track(cell)
    x = x_at(axis, start)
    return x, max(3, x_at(axis, start + width) - x)


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
        self.header = _fact_label("waterfallHeader", hint)
        layout.addWidget(self.header)
        self.tree = self._build_tree()
        layout.addWidget(self.tree, 1)
        self.detail = _fact_label("waterfallDetail", "")
        layout.addWidget(self.detail)
        self.copyAction = QAction("Copy trace and span ids", self)
        self.copyAction.setObjectName("copySpanIdsAction")
        self.copyAction.setShortcut(QKeySequence(QKeySequence.StandardKey.Copy))  # shown
        self.copyAction.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.copyAction.triggered.connect(self.copy_selected)
        self.tree.copyRequested.connect(self.copy_selected)
        self.tree.addAction(self.copyAction)
        # The tree's own actions are its context menu (a popup: no nested loop under qasync).
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)

    def _build_tree(self) -> HopTree:
        tree = HopTree()
        tree.setObjectName("waterfallTree")
        self.ruler = RulerHeader(TIMELINE_COL, tree)
        tree.setHeader(self.ruler)
        tree.setColumnCount(len(COLUMNS))
        tree.setHeaderLabels(COLUMNS)
        tree.setItemDelegateForColumn(TIMELINE_COL, BarDelegate(self.ruler, tree))
        tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        tree.setUniformRowHeights(True)
        tree.setRootIsDecorated(False)  # the root has no parent to fold into
        self.ruler.setStretchLastSection(False)
        self.ruler.setMinimumSectionSize(40)
        for col in (0, SERVICE_COL):
            self.ruler.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
        self.ruler.setSectionResizeMode(TIMELINE_COL, QHeaderView.ResizeMode.Stretch)
        tree.currentItemChanged.connect(self._show_detail)
        tree.viewport().installEventFilter(self)  # its width sets the text columns' widths
        row_h = tree.fontMetrics().height() + ROW_PAD_PX
        tree.setMinimumHeight(self.ruler.sizeHint().height() + MIN_ROWS * row_h + 2 * 2)
        return tree

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.tree.viewport() and event.type() == QEvent.Type.Resize:
            self._fit_columns()
        return super().eventFilter(watched, event)

    def clear(self) -> None:
        self.tree.clear()
        self.hops, self.trace_id = [], ""
        self.ruler.set_span(0.0)
        self.header.setText(self._hint)
        self.detail.setText("")

    def show_customer(self, result: Any) -> None:
        self.hops, measured = hops_of(result)
        self.trace_id = result.trace_id
        how = "measured spans" if measured else "estimated from latencies (no span facts)"
        self.header.setText(f"Trace {result.trace_id} · {result.customer.name} · {how}")
        self.tree.clear()
        scale = self.hops[0].duration_ms or 1.0
        self.ruler.set_span(scale)
        parent: QTreeWidget | QTreeWidgetItem = self.tree
        for index, hop in enumerate(self.hops):
            item = self._item(index, hop, scale)
            if isinstance(parent, QTreeWidget):
                parent.addTopLevelItem(item)
            else:
                parent.addChild(item)
            if hop.start_ms is not None:  # the next hop is called from this one: nest it
                parent = item
        self.tree.expandAll()
        self._fit_columns()
        if (top := self.tree.topLevelItem(0)) is not None:
            self.tree.setCurrentItem(top)

    def _item(self, index: int, hop: Hop, scale: float) -> QTreeWidgetItem:
        # The root is the panel's own span over the whole journey: no step service of its own.
        # A failed or skipped hop's name is marked (a colour would be lost on the selection).
        name = hop.label if hop.status == "ok" else f"{MARKS[hop.status][0]} {hop.label}"
        item = QTreeWidgetItem([name, hop.service if index else "", ""])
        if hop.start_ms is not None and hop.duration_ms is not None:
            item.setData(
                TIMELINE_COL, BAR_ROLE, (hop.start_ms / scale, hop.duration_ms / scale, hop.status)
            )
        ids = f"trace {self.trace_id} span {hop.span_id or '-'}"
        if hop.parent_span_id:
            ids += f" parent {hop.parent_span_id}"
        item.setData(0, IDS_ROLE, ids)
        item.setData(0, HOP_ROLE, index)
        tip = "\n".join(hop_facts(hop, self.trace_id))
        for col in range(len(COLUMNS)):
            item.setToolTip(col, tip)
        return item

    def _fit_columns(self) -> None:
        """The name and service columns as wide as their text, at most their share; a deep
        chain indents less rather than hide its hops' names."""
        width = self.tree.viewport().width()
        hop_cap, service_cap = int(width * HOP_SHARE), int(width * SERVICE_SHARE)
        depth = max(1, len(self.hops) - 1)
        names = max(
            (self.tree.fontMetrics().horizontalAdvance(h.label) for h in self.hops), default=0
        )
        lo, hi = INDENT_PX
        room = hop_cap - names - 2 * TEXT_MARGIN_PX
        self.tree.setIndentation(max(lo, min(hi, room // depth)))
        hop = self.tree.sizeHintForColumn(0) + TEXT_MARGIN_PX  # indentation included
        self.ruler.resizeSection(0, min(hop, hop_cap))
        service = self.tree.sizeHintForColumn(SERVICE_COL) + TEXT_MARGIN_PX
        self.ruler.resizeSection(SERVICE_COL, min(service, service_cap))

    def _show_detail(self, item: QTreeWidgetItem | None) -> None:
        """The selected hop's facts on one selectable line (a click, or the keys)."""
        index = item.data(0, HOP_ROLE) if item is not None else None
        if not isinstance(index, int) or not 0 <= index < len(self.hops):
            self.detail.setText("")
            return
        self.detail.setText(" · ".join(hop_facts(self.hops[index], "")))

    def selected_ids(self) -> str:
        item = self.tree.currentItem()
        return str(item.data(0, IDS_ROLE)) if item is not None else ""

    def copy_selected(self) -> None:
        if ids := self.selected_ids():
            QGuiApplication.clipboard().setText(ids)


def _fact_label(name: str, text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName(name)
    label.setWordWrap(True)
    shrink_to_fit(label)
    # Two lines at least: it wraps in a narrow pane, and a layout short of height would lay the
    # tree over its second line (a wrapped label's minimum is one line).
    label.setMinimumHeight(2 * label.fontMetrics().lineSpacing() + 2)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f} ms"
