"""The window's picture views (issue 13, "Build"): journey map, trace waterfall, timeline chart.

Each is fed values (PortInfo, TrafficStatus, RunResult-like objects) and checked for what it
shows, and grabbed to prove it paints."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from PySide6.QtGui import QColor, QFontMetrics, QImage

from app.core.model import PortInfo, PortState
from app.core.traffic_model import StepSecond, TrafficStatus

CHAIN = (("Browse", "catalog"), ("Cart", "cart"), ("Pay", "payments"))


def step(name: str, service: str, status: str = "ok", latency: float = 20.0, **kw: Any) -> Any:
    return SimpleNamespace(
        step_name=name,
        service_name=service,
        status=status,
        http_status=200 if status == "ok" else 503,
        latency_ms=latency,
        error=None if status == "ok" else "injected",
        span_id=kw.get("span_id", f"{name.lower():0<16}"[:16]),
        parent_span_id=kw.get("parent_span_id"),
        span=kw.get("span"),
    )


def customer(i: int, fail_pay: bool = False) -> Any:
    steps = tuple(
        step(n, s, "failed" if fail_pay and n == "Pay" else "ok", 10.0 + k)
        for k, (n, s) in enumerate(CHAIN)
    )
    return SimpleNamespace(
        customer=SimpleNamespace(
            name=f"Cust {i}", email="c@x", segment="s", loyalty_tier="gold", id=f"c{i}"
        ),
        trace_id=f"{i:032x}",
        root_span_id="a" * 16,
        steps=steps,
        latency_ms=40.0,
        ok=not fail_pay,
    )


def run_result(n: int = 10, failing: int = 3) -> Any:
    customers = tuple(customer(i, fail_pay=i < failing) for i in range(n))
    summary = SimpleNamespace(
        customers=n,
        completed=n - failing,
        failed=failing,
        success_rate=(n - failing) / n,
        p50_ms=30.0,
        p95_ms=40.0,
        journeys_per_s=5.0,
    )
    sim = SimpleNamespace(mode="multiple", customers=customers, summary=summary)
    return SimpleNamespace(
        run_id="run-1", ok=True, simulation=sim, company="Acme", phases=(), error=None
    )


def ports() -> list[PortInfo]:
    return [
        PortInfo(8441 + i, PortState.ALLOCATED, f"{s}-Acme", s, "Acme", 1000 + i)
        for i, (_, s) in enumerate(CHAIN)
    ]


def painted(widget: Any) -> bool:
    """The grab has more than one colour: something was drawn."""
    image: QImage = widget.grab().toImage()
    colours = {
        image.pixelColor(x, y).rgb()
        for x in range(0, image.width(), 7)
        for y in range(0, image.height(), 7)
    }
    return len(colours) > 3


def test_journey_map_shows_the_chain_counts_and_flags_the_failing_step(qtbot: Any) -> None:
    from app.ui.widgets.journey_map import JourneyMap, node_lines

    view = JourneyMap()
    qtbot.addWidget(view)
    view.resize(900, 320)
    view.show()
    assert view.nodes == []
    view.set_ports(ports())
    view.set_run_result(run_result())
    assert [n.step_name for n in view.nodes] == ["Browse", "Cart", "Pay"]
    assert [n.port for n in view.nodes] == [8441, 8442, 8443]
    assert {n.state for n in view.nodes} == {"allocated"}
    pay = view.nodes[2]
    assert (pay.ok, pay.failed) == (7, 3) and view.failing_steps() == ["Pay"]
    assert "⚠ FAILING" in node_lines(pay)[2]  # a written marker, not colour alone
    assert "errors 30%" in node_lines(pay)[4] and "p50 12 ms" in node_lines(pay)[4]
    assert view.source == "last run"

    # traffic counts take over while traffic has any: Pay recovers, Cart fails. Traffic counts
    # the journeys Cart failed apart from Pay's own failures: Pay was never called for them.
    status = TrafficStatus(
        running=True,
        steps=(
            StepSecond("Browse", ok=100, failed=0, p50_ms=9),
            StepSecond("Cart", ok=80, failed=20, p50_ms=15),
            StepSecond("Pay", ok=79, failed=1, p50_ms=30, not_reached=20),
        ),
    )
    view.set_traffic(status)
    assert view.source == "traffic" and view.failing_steps() == ["Cart"]
    assert view.nodes[1].p50_ms == 15
    assert (view.nodes[2].failed, view.nodes[2].not_reached) == (1, 20)
    assert "– 20" in node_lines(view.nodes[2])[3]
    assert painted(view)
    # the failing node's fill is in the picture
    rect = view.layout_rects()[1]
    image = view.grab().toImage()
    dpr = image.devicePixelRatio()
    inside = image.pixelColor(int((rect.left() + 6) * dpr), int((rect.bottom() - 6) * dpr))
    from app.ui.widgets.palette import failing_colours

    assert inside == QColor(failing_colours()[0])


def test_a_hidden_journey_map_builds_its_nodes_only_when_shown_or_read(qtbot: Any) -> None:
    """Behind another tab the map keeps the data, not the work: a switch's port refreshes and
    service events built its nodes for nobody."""
    from app.ui.widgets.journey_map import JourneyMap

    view = JourneyMap()
    qtbot.addWidget(view)
    view.set_ports(ports())
    view.set_run_result(run_result())
    assert view._nodes == [] and view._stale  # hidden: nothing built yet
    view.show()
    qtbot.waitExposed(view)
    assert not view._stale and [n.step_name for n in view._nodes] == ["Browse", "Cart", "Pay"]
    view.hide()
    view.set_ports([])
    assert view._stale
    assert {n.state for n in view.nodes} != {"allocated"}  # reading builds them


def test_a_journey_map_repaint_renders_only_the_nodes_that_changed(qtbot: Any) -> None:
    """Each node is drawn from a pixmap of its look: a switch repaints the map with every
    cell change, and shaping every node's text anew took 6–9 ms for 40 nodes (bench/ui.py).
    A refresh that changes no node leaves the nodes as they are."""
    from dataclasses import replace

    from app.ui.widgets.journey_map import NODE_PIXMAPS, JourneyMap

    view = JourneyMap()
    qtbot.addWidget(view)
    view.resize(900, 400)
    view.show()
    qtbot.waitExposed(view)
    cells = ports()
    view.set_ports(cells)
    view.set_run_result(run_result())
    NODE_PIXMAPS.clear()
    view.grab()
    assert len(NODE_PIXMAPS) == 3  # Browse, Cart, Pay
    nodes = view.nodes
    view.set_ports(list(cells))  # the same cells again (a periodic refresh)
    assert view.nodes is nodes
    stopping = [
        replace(c, state=PortState.STOPPING) if c.service_name == "payments" else c for c in cells
    ]
    view.set_ports(stopping)
    view.grab()
    assert len(NODE_PIXMAPS) == 4  # one node drawn anew; the other two from their pixmaps
    assert [n.state for n in view.nodes] == ["allocated", "allocated", "stopping"]


def test_journey_map_wraps_rows_in_a_narrow_window(qtbot: Any) -> None:
    from app.ui.widgets.journey_map import JourneyMap

    view = JourneyMap()
    qtbot.addWidget(view)
    view.resize(420, 600)
    view.set_run_result(run_result())
    rects = view.layout_rects()
    assert len(rects) == 3 and all(r.right() <= view.width() for r in rects)
    assert rects[2].top() > rects[0].top()  # wrapped onto another row
    assert rects[-1].bottom() <= view.height()
    view.resize(420, 220)  # short: the nodes shrink until every row fits
    rects = view.layout_rects()
    assert rects[-1].bottom() <= view.height() and rects[0].width() < 230


def spanned(i: int) -> Any:
    """A customer whose hops carry span facts: each hop encloses the next (it calls it)."""
    t0 = 1_700_000_000_000_000_000
    bounds = ((0, 60), (10, 50), (20, 45))  # ms: Browse encloses Cart encloses Pay
    steps = tuple(
        step(
            n,
            s,
            "failed" if n == "Pay" else "ok",
            span_id=f"{k + 1:016x}",
            parent_span_id=f"{k:016x}",
            span={"startNs": t0 + a * 1_000_000, "endNs": t0 + b * 1_000_000},
        )
        for k, ((n, s), (a, b)) in enumerate(zip(CHAIN, bounds, strict=True))
    )
    base = customer(i)
    return SimpleNamespace(**{**vars(base), "steps": steps, "ok": False, "latency_ms": 61.0})


def test_the_selected_customer_stays_in_view_when_the_results_shrink(qtbot: Any) -> None:
    """The first failed customer is selected for the waterfall; when the window or a splitter
    makes the table shorter, its row stays on screen (the waterfall shows it)."""
    from app.ui.widgets.results import ResultsView

    view = ResultsView()
    qtbot.addWidget(view)
    view.resize(700, 900)
    view.show()
    qtbot.waitExposed(view)
    result = run_result(n=20, failing=0)
    customers = list(result.simulation.customers)
    customers[9] = customer(9, fail_pay=True)
    result.simulation.customers = tuple(customers)
    view.show_simulation(result.simulation, "run-1")
    table = view.table

    def in_view() -> bool:
        row = table.visualItemRect(table.item(9, 0))
        return table.viewport().rect().contains(row.center())

    assert table.currentRow() == 9 and view.waterfall.trace_id == f"{9:032x}"
    assert in_view()
    view.resize(700, 420)
    qtbot.waitUntil(lambda: table.viewport().height() < 200, timeout=2_000)
    qtbot.waitUntil(in_view, timeout=2_000)


def test_trace_waterfall_nests_hops_with_timings_and_copies_span_ids(qtbot: Any) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication

    from app.ui.widgets.results import ResultsView
    from app.ui.widgets.trace_waterfall import BAR_ROLE, TIMELINE_COL

    view = ResultsView()
    qtbot.addWidget(view)
    view.resize(900, 600)
    view.show()
    result = run_result(n=3, failing=0)
    result.simulation.customers = (customer(0), spanned(1), customer(2))
    view.show_simulation(result.simulation, "run-1")
    wf = view.waterfall
    assert wf.trace_id == f"{1:032x}"  # the first failed customer is selected at once
    view.select_customer(2)
    assert wf.trace_id == f"{2:032x}" and "estimated from latencies" in wf.header.text()
    assert [h.start_ms for h in wf.hops[1:]] == [0.0, 10.0, 21.0]  # end to end
    view.select_customer(1)
    assert "measured spans" in wf.header.text()
    root = wf.tree.topLevelItem(0)
    browse = root.child(0)
    cart, pay = browse.child(0), browse.child(0).child(0)  # nested: each hop calls the next
    tips = [i.toolTip(0).replace("\u00a0", " ") for i in (browse, cart, pay)]
    assert [t.split("duration ")[1][:7] for t in tips] == ["60.0 ms", "40.0 ms", "25.0 ms"]
    assert "start 20.0 ms" in tips[2] and "failed" in tips[2] and "503" in tips[2]
    assert f"span {3:016x}" in tips[2] and pay.text(1) == "payments"
    start, width, status = pay.data(TIMELINE_COL, BAR_ROLE)
    assert (round(start, 3), round(width, 3), status) == (
        round(20 / 61, 3),
        round(25 / 61, 3),
        "failed",
    )

    wf.tree.setCurrentItem(pay)
    wf.tree.setFocus()
    QGuiApplication.clipboard().clear()
    qtbot.keyClick(wf.tree, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    copied = QGuiApplication.clipboard().text()
    assert copied == f"trace {1:032x} span {3:016x} parent {2:016x}"
    assert wf.copyAction in wf.tree.actions()  # the context menu offers the same
    assert painted(wf)


def phase_event(run_id: str, phase: Any, status: str, at: float, ms: float = 0.0) -> Any:
    return SimpleNamespace(run_id=run_id, phase=phase, status=status, started_at=at, duration_ms=ms)


def test_timeline_chart_draws_phases_of_the_last_runs_and_service_marks(qtbot: Any) -> None:
    from app.core.model import Phase
    from app.ui.widgets.timeline_chart import MAX_RUNS, START_CHANGES, STOP_CHANGES, TimelineChart

    chart = TimelineChart()
    qtbot.addWidget(chart)
    chart.resize(700, 300)
    chart.show()
    t0 = 1_000.0
    chart.start_run("run-a", "Acme", at=t0)
    chart.phase_event(phase_event("run-a", Phase.STOP, "started", t0))
    chart.service_event(SimpleNamespace(key="cart-Acme", change="stopping"), at=t0 + 0.01)
    chart.phase_event(phase_event("run-a", Phase.STOP, "finished", t0, 50))
    chart.phase_event(phase_event("run-a", Phase.LAUNCH, "started", t0 + 0.2))
    chart.service_event(SimpleNamespace(key="pay-Acme", change="starting"), at=t0 + 0.25)
    chart.service_event(SimpleNamespace(key="pay-Acme", change="running"), at=t0 + 0.4)
    live = chart.bar_rows(now=t0 + 0.5)
    assert [(r[1], round(r[2], 3), round(r[3], 3)) for r in live] == [
        (Phase.STOP, 0.0, 0.05),
        (Phase.LAUNCH, 0.2, 0.3),  # still running: grows to now
    ]
    assert [round(x, 3) for x, _ in chart.mark_points(STOP_CHANGES)] == [0.01]
    assert [round(x, 3) for x, _ in chart.mark_points(START_CHANGES)] == [0.25, 0.4]

    phases = tuple(
        SimpleNamespace(phase=p, started_at=t0 + 0.1 * i, duration_ms=100.0)
        for i, p in enumerate(Phase)
    )
    chart.finish_run(SimpleNamespace(run_id="run-a", ok=True, phases=phases))
    assert [r[1] for r in chart.bar_rows()] == list(Phase)  # the measured phases, all five
    chart.service_event(SimpleNamespace(key="x", change="stopping"))  # no run: no mark
    assert len(chart.mark_points(STOP_CHANGES)) == 1

    # a run whose start the chart missed (an API run) still gets its row; old runs scroll off
    for i in range(MAX_RUNS):
        chart.finish_run(SimpleNamespace(run_id=f"run-{i}", ok=i % 2 == 0, phases=phases))
    assert len(chart.runs) == MAX_RUNS and chart.runs[0].run_id == "run-0"
    chart.redraw()
    ticks = chart.plot.getAxis("left")._tickLevels[0]
    stamp = time.strftime("%H:%M:%S", time.localtime(t0))  # no company known: the time alone
    assert [t[1] for t in ticks] == [f"{stamp} ✓", f"{stamp} ✗", f"{stamp} ✓", f"{stamp} ✗"]
    assert painted(chart)


def test_timeline_chart_redraws_only_what_changed_and_its_labels_fit(qtbot: Any) -> None:
    """While a run's bars grow, marks and run labels stay as drawn; each label fits the axis."""
    from PySide6.QtGui import QFontMetrics

    from app.core.model import Phase
    from app.ui.widgets.plotting import nice_ceiling, tick_step
    from app.ui.widgets.timeline_chart import TimelineChart

    assert [nice_ceiling(s) for s in (0, 0.3, 0.5, 0.51, 6.4, 13)] == [0.1, 0.3, 0.5, 0.6, 8, 15]
    # numbered ticks that fit and print exactly (pyqtgraph rounds 0.25 to "0.2")
    assert [tick_step(s, n) for s, n in ((1, 2), (1, 10), (8, 13), (8, 3))] == [0.5, 0.1, 1, 5]
    chart = TimelineChart()
    qtbot.addWidget(chart)
    chart.resize(700, 300)
    chart.show()
    t0 = time.time()  # the launch bar grows from now on
    chart.start_run("run-20261127-004926-9a107e", "Acme", at=t0)
    chart.phase_event(phase_event("run-20261127-004926-9a107e", Phase.LAUNCH, "started", t0))
    chart.service_event(SimpleNamespace(key="pay-Acme", change="starting"), at=t0 + 0.01)
    chart.redraw()
    axis, starts = chart.plot.getAxis("left"), chart.starts
    drawn_ticks, drawn_points = axis._tickLevels, starts.data
    drawn_range = chart.plot.getViewBox().viewRange()[0]
    chart.redraw()  # the launch bar grew; nothing else changed
    assert axis._tickLevels is drawn_ticks and starts.data is drawn_points
    assert chart.plot.getViewBox().viewRange()[0] == drawn_range  # the time axis steps
    chart.service_event(SimpleNamespace(key="cart-Acme", change="running"), at=t0 + 0.02)
    chart.redraw()
    assert len(starts.data) == 2 and axis._tickLevels is drawn_ticks
    phases = (SimpleNamespace(phase=Phase.LAUNCH, started_at=t0, duration_ms=300.0),)
    chart.finish_run(SimpleNamespace(run_id="run-20261127-004926-9a107e", ok=False, phases=phases))
    chart.redraw()
    label = f"Acme {time.strftime('%H:%M:%S', time.localtime(t0))} ✗"
    assert [t[1] for t in axis._tickLevels[0]] == [label]
    fm = QFontMetrics(axis.style["tickFont"])
    assert fm.horizontalAdvance(label) + axis.style["tickTextOffset"][0] < axis.width()


# -- light and dark --------------------------------------------------------------------------
def test_every_state_and_outcome_text_is_readable_in_both_schemes() -> None:
    from PySide6.QtGui import QPalette

    from app.ui.theme import DARK
    from app.ui.widgets.palette import (
        buttons_for,
        contrast_ratio,
        failing_colours,
        notices_for,
        results_for,
        swatches,
    )

    base = {"light": "#ffffff", "dark": DARK[QPalette.ColorRole.Base]}  # a field's background
    for scheme in ("light", "dark"):
        for state, sw in swatches(scheme).items():
            assert contrast_ratio(sw.text, sw.fill) >= 4.5, (scheme, state)
        for outcome, (fill, text) in results_for(scheme).items():
            assert contrast_ratio(text, fill) >= 4.5, (scheme, outcome)
        # the window's banner, the editor's validation box and its invalid cells
        for kind, (fill, text, _border) in notices_for(scheme).items():
            assert contrast_ratio(text, fill) >= 4.5, (scheme, kind)
        for kind, (fill, text) in buttons_for(scheme).items():  # Run Journey, Stop All
            assert contrast_ratio(text, fill) >= 4.5, (scheme, kind)
        border = notices_for(scheme)["invalid"][2]  # a mark, not text: WCAG's 3 for non-text
        assert contrast_ratio(border, base[scheme]) >= 3, scheme
    fill, text, _border = failing_colours()
    assert contrast_ratio(text, fill) >= 4.5
    assert round(contrast_ratio("#000000", "#ffffff"), 1) == 21.0


def test_the_window_follows_the_colour_scheme(qtbot: Any, qapp: Any) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QPalette

    from app.ui import theme
    from app.ui.widgets import palette
    from app.ui.widgets.journey_map import JourneyMap

    assert theme.scheme_of(Qt.ColorScheme.Dark) == "dark"
    assert theme.scheme_of(Qt.ColorScheme.Light) == "light"
    assert theme.scheme_of(Qt.ColorScheme.Unknown) == "light"
    assert theme.scheme_of(Qt.ColorScheme.Light, "dark") == "dark"  # BIZOBS_COLOR_SCHEME
    view = JourneyMap()
    qtbot.addWidget(view)
    view.resize(700, 200)
    view.set_run_result(run_result())
    style = qapp.style().name()
    try:
        theme.apply(qapp, "dark")
        assert palette.current_scheme() == "dark"
        assert palette.SWATCHES["free"] == palette.swatches("dark")["free"]
        window = qapp.palette().color(QPalette.ColorRole.Window)
        text = qapp.palette().color(QPalette.ColorRole.WindowText)
        assert palette.contrast_ratio(text.name(), window.name()) >= 4.5
        assert window.lightness() < 80
        base = QPalette.ColorRole.Base  # palette changes reach widgets as (posted) events
        qtbot.waitUntil(lambda: view.palette().color(base).lightness() < 80, timeout=2_000)
        image = view.grab().toImage()  # the map paints on the dark base, not a light one
        assert image.pixelColor(2, 2).lightness() < 80
    finally:
        theme.apply(qapp, "light")
        qapp.setStyle(style)
    assert palette.current_scheme() == "light"
    qtbot.waitUntil(lambda: view.palette().color(base).lightness() > 180, timeout=2_000)
    assert view.grab().toImage().pixelColor(2, 2).lightness() > 180


def test_banner_big_buttons_and_validation_follow_a_scheme_switch(
    qtbot: Any, qapp: Any, tmp_path: Any, port_range: range
) -> None:
    """Their colours live in style sheets and item brushes, not in the Qt palette: switched at
    run time, they are set again from the scheme now current (and back)."""
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QPalette

    from app.core.settings import LauncherKind
    from app.ui import theme
    from app.ui.bridge import CoreBridge
    from app.ui.main_window import MainWindow
    from app.ui.widgets.journey_editor import COL_STEP
    from app.ui.widgets.palette import Scheme, buttons_for, notices_for
    from tests.conftest import make_settings
    from tests.ui.conftest import ui_settings

    bridge = CoreBridge(make_settings(LauncherKind.FORK, tmp_path, port_range))
    window = MainWindow(bridge, ui_settings(tmp_path))  # never opened: both buttons disabled
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    window.show_banner("cannot save journey.json: disk full", "error")
    editor = window.editor
    editor.load_template("e-commerce")
    editor.domainEdit.setText("not a domain")
    editor.set_step_text(0, COL_STEP, "")
    assert editor.refresh_validation()  # not emphasised: the "warning" box
    button = window.runJourneyButton
    assert not button.isEnabled()
    table = editor.stepsTable
    field = editor.domainEdit

    def painted() -> dict[str, str]:
        """The colours on screen: the banner's, the box's and a disabled button's fill (inside
        their padding), an invalid cell's fill, an invalid field's border and its inside."""
        label = editor.validationLabel
        at = {
            "banner": (window.banner, QPoint(window.banner.width() // 2, 3)),
            "box": (label, QPoint(label.width() - 3, label.height() // 2)),
            "button": (button, QPoint(button.width() // 2, 3)),
            "cell": (table.viewport(), table.visualItemRect(table.item(0, COL_STEP)).center()),
            "border": (field, QPoint(field.width() // 2, 0)),
            "field": (field, QPoint(field.width() - 6, field.height() // 2)),
        }
        return {key: w.grab().toImage().pixelColor(xy).name() for key, (w, xy) in at.items()}

    def check(scheme: Scheme) -> None:
        notices, buttons = notices_for(scheme), buttons_for(scheme)
        assert painted() == {
            "banner": notices["error"][0],
            "box": notices["warning"][0],
            "button": buttons["disabled"][0],
            "cell": notices["invalid"][0],
            "border": notices["invalid"][2],
            "field": qapp.palette().color(QPalette.ColorRole.Base).name(),  # not frozen in light
        }
        # and the text on those fills
        assert f"color: {notices['error'][1]}" in window.banner.styleSheet()
        assert f"color: {notices['warning'][1]}" in editor.validationLabel.styleSheet()
        assert f"color: {buttons['disabled'][1]}" in button.styleSheet()
        assert table.item(0, COL_STEP).foreground().color().name() == notices["invalid"][1]

    def restyled(scheme: Scheme) -> bool:  # palette changes reach widgets as (posted) events
        return notices_for(scheme)["error"][0] in window.banner.styleSheet()

    check("light")
    style = qapp.style().name()
    try:
        theme.apply(qapp, "dark")
        qtbot.waitUntil(lambda: restyled("dark"), timeout=2_000)
        check("dark")
    finally:
        theme.apply(qapp, "light")
        qapp.setStyle(style)
    qtbot.waitUntil(lambda: restyled("light"), timeout=2_000)
    check("light")


def test_icon_and_desktop_file_ship_with_the_package() -> None:
    import tomllib
    from pathlib import Path

    from PySide6.QtGui import QIcon

    from app.ui import theme

    icon = QIcon(str(theme.ICON))
    assert not icon.isNull() and not icon.pixmap(64, 64).isNull()
    desktop = (theme.RESOURCES / f"{theme.DESKTOP_FILE}.desktop").read_text()
    assert "Icon=bizobs-panel" in desktop and "Exec=bizobs-panel" in desktop
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["app"]
    assert "resources/*.svg" in globs and "resources/*.desktop" in globs


def test_journey_map_in_a_short_window_scrolls_instead_of_cutting_nodes(qtbot: Any) -> None:
    from PySide6.QtWidgets import QScrollArea

    from app.ui.widgets.journey_map import JourneyMap

    view = JourneyMap()
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setWidget(view)
    qtbot.addWidget(scroll)
    scroll.resize(340, 180)
    scroll.show()
    view.set_run_result(run_result())
    qtbot.waitUntil(lambda: view.layout_rects()[-1].bottom() <= view.height(), timeout=2_000)
    assert scroll.verticalScrollBar().maximum() > 0  # the last row is reached by scrolling


def test_the_phase_table_header_follows_a_scheme_switch(qtbot: Any, qapp: Any) -> None:
    """A finished run's header keeps its outcome's colour in the scheme now current."""
    from app.ui import theme
    from app.ui.widgets.palette import results_for
    from app.ui.widgets.phase_timeline import PhaseTimeline

    table = PhaseTimeline()
    qtbot.addWidget(table)
    table.start_run("run-1", "Acme")
    table.finish_run(True, "", 12.0)
    assert results_for("light")["ok"][1] in table.header.styleSheet()
    try:
        theme.apply(qapp, "dark")  # the palette change is delivered by the event loop
        qtbot.waitUntil(lambda: results_for("dark")["ok"][1] in table.header.styleSheet())
        assert "finished in 12 ms" in table.header.text()
    finally:
        theme.apply(qapp, "light")
    qtbot.waitUntil(lambda: results_for("light")["ok"][1] in table.header.styleSheet())


def test_reserved_and_grown_cells_say_so_and_run_options_name_the_companies(qtbot: Any) -> None:
    from app.core.model import PortInfo, PortState
    from app.ui.widgets.journeys_list import RunOptions
    from app.ui.widgets.port_grid import PortGrid

    grid = PortGrid()
    qtbot.addWidget(grid)
    ports = [
        PortInfo(9001, PortState.FREE, reserved_for="Acme Corp"),
        PortInfo(9002, PortState.ALLOCATED, "AService-Acme_Corp", "AService", "Acme Corp", 7),
        PortInfo(9003, PortState.FREE, grown=True),
    ]
    grid.set_ports(ports)
    reserved, ours, grown = grid.cells()
    assert reserved.tag == ours.tag != "" and grown.tag == ""
    assert ("Reserved for", "Acme Corp") in reserved.details()
    assert any(k == "Pool" and "grew" in v for k, v in grown.details())
    assert reserved._look().reserved and grown._look().grown and not ours._look().reserved
    grid.show()
    assert grid.companyLegend.companies == ["Acme Corp"]
    assert "reserved ports" in grid.companyLegend.label.text()

    options = RunOptions()
    qtbot.addWidget(options)
    assert options.cleanup() == "all" and options.preserve() == [] and not options.keep.isEnabled()
    options.set_companies(["Acme Corp", "First Bank"])
    options.keep.menu().actions()[1].setChecked(True)
    options.set_strategy("journeyType")
    assert options.preserve() == ["First Bank"] and options.cleanup() == "journeyType"
    assert options.keep.text() == "Keep: First Bank"


def test_paced_phases_are_marked_in_every_view_of_the_phases(qtbot: Any) -> None:
    """A demo-paced phase says so (docs/architecture.md, "A Run Journey, phase by phase"): the
    phase table as work plus pause, the stepper while the pause lasts, the chart hatched; an
    unpaced phase reads as before."""
    from app.core.events import PhaseEvent, PhaseStatus
    from app.core.model import Phase
    from app.ui.widgets.phase_stepper import PhaseStepper
    from app.ui.widgets.phase_timeline import PhaseTimeline, duration_text
    from app.ui.widgets.timeline_chart import TimelineChart

    assert duration_text(52.25) == "52.2 ms"
    assert duration_text(2052.25, 2000.0) == "52.2 ms + 2.0 s paced"
    table, stepper, chart = PhaseTimeline(), PhaseStepper(), TimelineChart()
    for view in (table, stepper, chart):
        qtbot.addWidget(view)
    started = PhaseEvent("run-p", Phase.LAUNCH, PhaseStatus.STARTED, 1.0, paced_ms=2000)
    finished = PhaseEvent("run-p", Phase.LAUNCH, PhaseStatus.FINISHED, 1.0, 2300.0, {}, 2000.0)
    empty = PhaseEvent("run-p", Phase.SWEEP, PhaseStatus.FINISHED, 1.0, 3.5)
    table.show_phase(started)
    assert table.duration_shown(Phase.LAUNCH).endswith("(paced)")
    stepper.set_phase("launch", "started", {}, started.paced_ms)
    assert "paced 2.0 s" in stepper.text("launch")
    for event in (finished, empty):
        table.show_phase(event)
        chart.phase_event(event)
    assert table.duration_shown(Phase.LAUNCH) == "300.0 ms + 2.0 s paced"
    assert table.duration_shown(Phase.SWEEP) == "3.5 ms"
    assert chart.paced_bars() == [(0, Phase.LAUNCH)]
    assert "paced" in chart.key.text()


def test_the_phase_stepper_keeps_its_size_whatever_its_steps_say(qtbot: Any) -> None:
    """Lit, bold, given counts or a long progress line, no step changes size (a growing step
    resized the grid's 40 cells under it); every name reads in full, counts too long for their
    step end in "…" and the tooltip and `text` keep them whole."""
    from app.ui.widgets.phase_stepper import PhaseStepper

    stepper = PhaseStepper()
    qtbot.addWidget(stepper)
    stepper.resize(600, stepper.sizeHint().height())
    stepper.show()
    qtbot.waitExposed(stepper)
    sizes = {name: label.size() for name, label in stepper.labels.items()}
    for name, label in stepper.labels.items():  # the widest mark with the bold name fits
        bold = label.font()
        bold.setBold(True)
        assert QFontMetrics(bold).horizontalAdvance(f"✓ {name}") <= label.width()
    stepper.set_phase("stop", "finished", {"stopped": 40, "kept": 3})
    stepper.set_phase("sweep", "finished", {"staleCleaned": 12, "orphansReaped": 7})
    stepper.set_phase("simulate", "started", {})
    long = "12,000 / 50,000 · 1,234 failed"
    stepper.set_progress(long)
    assert {name: label.size() for name, label in stepper.labels.items()} == sizes
    simulate = stepper.labels["simulate"]
    assert stepper.text("simulate") == f"▶ simulate\n{long}" and simulate.toolTip().endswith(long)
    assert "…" in simulate.text() and long not in simulate.text()
    assert stepper.text("stop") == "✓ stop\n40 stopped, 3 kept"
    for name, counts in (("wait", {"exited": 40}), ("launch", {"launched": 40})):
        stepper.set_phase(name, "finished", counts)  # a switch's usual counts read in full
        assert "…" not in stepper.labels[name].text() and "40 " in stepper.labels[name].text()
    assert {name: label.size() for name, label in stepper.labels.items()} == sizes
