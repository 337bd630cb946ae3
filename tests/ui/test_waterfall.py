"""The trace waterfall as a trace view (docs/architecture.md, "The window"): a time ruler in ms
over the bars and aligned with them, the bars across most of the width, a hop's facts on hover
and on click, and readable rows at 1280×720 for a 5- and a 14-step journey run for real."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import QTreeWidgetItem

from app.core.settings import Settings
from app.ui.widgets.time_ruler import ruler_ticks, step_label, track
from app.ui.widgets.trace_waterfall import (
    BAR_ROLE,
    MIN_ROWS,
    TIMELINE_COL,
    TraceWaterfall,
    bar_extent,
)
from tests.ui.conftest import drive
from tests.ui.test_views import painted, spanned

BAR_SHARE = 0.6  # the bars' column takes at least this share of the waterfall's width


def items_of(waterfall: TraceWaterfall) -> list[QTreeWidgetItem]:
    """Every row, top to bottom (each hop is the previous one's child)."""
    rows: list[QTreeWidgetItem] = []
    item = waterfall.tree.topLevelItem(0)
    while item is not None:
        rows.append(item)
        item = item.child(0) if item.childCount() else None
    return rows


def test_ruler_ticks_step_1_2_5_in_ms_across_the_axis() -> None:
    axis = QRect(100, 0, 600, 20)
    ticks = ruler_ticks(61.0, axis, 60)  # ten labels fit: a 10 ms step
    assert [t.label for t in ticks] == [
        "0 ms",
        "10 ms",
        "20 ms",
        "30 ms",
        "40 ms",
        "50 ms",
        "60 ms",
    ]
    assert ticks[0].x == axis.left() and ticks[-1].x <= axis.right()
    assert [t.ms for t in ruler_ticks(61.0, axis, 190)] == [0, 20, 40, 60]  # four fit
    assert [t.ms for t in ruler_ticks(0.9, axis, 120)] == [0, 0.2, 0.4, 0.6, 0.8]
    assert step_label(0.5, 0.5) == "0.5 ms" and step_label(2000, 500) == "2,000 ms"
    assert ruler_ticks(0.0, axis, 60) == [] and ruler_ticks(10.0, QRect(), 60) == []


def test_the_ruler_lines_up_with_the_bars_and_a_hop_shows_its_facts(qtbot: Any) -> None:
    wf = TraceWaterfall()
    qtbot.addWidget(wf)
    wf.resize(900, 400)
    wf.show()
    qtbot.waitExposed(wf)
    wf.show_customer(spanned(1))  # Browse 0-60 ms encloses Cart 10-50 encloses Pay 20-45
    root, browse, cart, pay = items_of(wf)
    assert [browse.text(1), cart.text(1), pay.text(1)] == ["catalog", "cart", "payments"]
    ruler, tree = wf.ruler, wf.tree
    assert ruler.span_ms == 61.0
    qtbot.waitUntil(lambda: ruler.sectionSize(TIMELINE_COL) >= BAR_SHARE * wf.width(), timeout=2000)

    ticks = {t.ms: t.x for t in ruler.ticks()}
    assert 0 in ticks and 20 in ticks
    for item, start_ms in ((root, 0.0), (pay, 20.0)):
        cell = tree.visualRect(tree.indexFromItem(item, TIMELINE_COL))
        start, width, _status = item.data(TIMELINE_COL, BAR_ROLE)
        x, _w = bar_extent(cell, start, width)
        assert x == ticks[start_ms]  # the bar starts under its tick, to the pixel
        assert track(cell).left() == ruler.axis().left()

    tip = pay.toolTip(TIMELINE_COL)  # hovering a bar (or any cell of its row)
    for fact in ("payments", "failed", "HTTP 503", "start 20.0", "duration 25.0", "span 0000"):
        assert fact in tip.replace("\u00a0", " "), tip
    assert f"parent span {2:016x}" in tip and pay.toolTip(0) == tip

    rect = tree.visualItemRect(pay)
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert tree.currentItem() is pay
    detail = wf.detail.text().replace("\u00a0", " ")
    assert "Pay · payments" in detail and "HTTP 503" in detail and "duration 25.0 ms" in detail
    assert f"span {3:016x}" in detail and f"parent span {2:016x}" in detail
    assert wf.detail.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse
    assert painted(wf)
    wf.clear()
    assert wf.detail.text() == "" and ruler.span_ms == 0.0 and ruler.ticks() == []


def unreadable(wf: TraceWaterfall, rows: int) -> list[str]:
    """What keeps the waterfall from being read: squashed or hidden rows, narrow bars."""
    tree, problems = wf.tree, []
    items = items_of(wf)
    if len(items) != rows:
        return [f"{len(items)} rows, not {rows}"]
    least = tree.fontMetrics().height() + 4
    if squashed := [i.text(0) for i in items if tree.visualItemRect(i).height() < least]:
        problems.append(f"rows lower than {least} px: {squashed}")
    view = tree.viewport().rect()
    whole = [i for i in items if view.contains(tree.visualItemRect(i))]
    if len(whole) < min(rows, MIN_ROWS):
        problems.append(f"only {len(whole)} whole rows in a {view.height()} px viewport")
    if len(whole) < rows and tree.verticalScrollBar().maximum() == 0:
        problems.append("rows cut off and no scroll bar")
    if wf.detail.geometry().top() < tree.geometry().bottom():
        problems.append("the detail line overlaps the tree")
    bars = wf.ruler.sectionSize(TIMELINE_COL)
    if bars < BAR_SHARE * wf.width():
        problems.append(f"bars {bars} px of {wf.width()} px")
    return problems


def test_at_1280x720_a_5_and_a_14_step_trace_are_readable(
    qtbot: Any, make_panel: Any, settings: Settings
) -> None:
    panel = make_panel(settings)
    w = panel.window
    w.setGeometry(0, 0, 1280, 720)
    qtbot.waitUntil(lambda: w.size().toTuple() == (1280, 720), timeout=3000)
    w.tabs.setCurrentWidget(w.results)
    wf = w.results.waterfall
    for n in (5, 14):
        steps = [{"stepName": f"Step {i}", "serviceName": f"Step{i}Service"} for i in range(n)]
        trip = {"companyName": "Big Co", "domain": "big.io", "industryType": "x", "steps": steps}
        result = drive(qtbot, panel.bridge.core.run_journey(trip))
        assert result.ok, result.error
        shown = result.simulation.customers[0].trace_id
        qtbot.waitUntil(lambda shown=shown: wf.trace_id == shown, timeout=5000)
        qtbot.waitUntil(lambda n=n: not unreadable(wf, n + 1), timeout=3000)
        assert not unreadable(wf, n + 1)
        last = items_of(wf)[-1]
        wf.tree.scrollToItem(last)  # a long chain scrolls: its last hop comes into view
        assert wf.tree.viewport().rect().contains(wf.tree.visualItemRect(last))
