"""Widgets without services, the PySide6 refcount canary, and the entry point's checks."""

from __future__ import annotations

import ast
import gc
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QApplication, QLabel

from app.core.journeys import read_journey_file, write_journey_file
from app.core.lock import StateLock
from app.core.model import PortInfo, PortState
from app.core.settings import Settings
from app.ui.entry import display_problem, run_window
from app.ui.widgets.journey_editor import (
    COL_ERROR,
    COL_SERVICE,
    COL_STEP,
    JourneyEditor,
    suggest_service_name,
)
from app.ui.widgets.log import LogView
from app.ui.widgets.port_grid import PortGrid, short_name
from tests.helpers import read_line


def test_refcount_canary_setText_keeps_None_alive(qapp: Any) -> None:
    """PySide6 6.12.0 on CPython 3.11 lowers the refcount of None on every label update and the
    process dies with `none_dealloc` after about a minute (docs/architecture.md, "Facts")."""
    label = QLabel()
    gc.collect()
    before = sys.getrefcount(None)
    for i in range(200):
        label.setText(f"update {i}")
    gc.collect()
    after = sys.getrefcount(None)
    assert after >= before - 20, f"refcount of None dropped from {before} to {after}"


@pytest.mark.parametrize(
    ("step", "service"),
    [
        ("Add To Cart", "AddToCartService"),
        ("checkout", "CheckoutService"),
        ("3-D secure check", "DSecureCheckService"),
        ("Fraud Check Service", "FraudCheckService"),
        ("  ", ""),
    ],
)
def test_service_name_suggestion(step: str, service: str) -> None:
    assert suggest_service_name(step) == service


def test_editor_suggests_reorders_and_validates(qtbot: Any) -> None:
    ed = JourneyEditor()
    qtbot.addWidget(ed)
    ed.set_journey(
        {"companyName": "Acme", "domain": "acme.com", "industryType": "Retail", "steps": []}
    )
    row = ed.add_step()
    ed.set_step_text(row, COL_STEP, "Add To Cart")
    assert ed.stepsTable.item(row, COL_SERVICE).text() == "AddToCartService"
    ed.set_step_text(row, COL_SERVICE, "CartService")  # typed by hand: no longer overwritten
    ed.set_step_text(row, COL_STEP, "Add Item")
    assert ed.stepsTable.item(row, COL_SERVICE).text() == "CartService"
    ed.add_step("Pay")
    ed.move_step(-1)
    data, problems = ed.journey_data()
    assert [s["serviceName"] for s in data["steps"]] == ["PayService", "CartService"]
    assert problems == []
    assert ed.refresh_validation() == []
    assert "Ready to run" in ed.validationLabel.text()

    ed.set_step_text(0, COL_ERROR, "lots")
    ed.set_step_text(1, COL_SERVICE, "Pay Service")
    ed.domainEdit.setText("not a domain")
    problems = ed.refresh_validation(emphasise=True)
    by_field = {p.field: p.message for p in problems}
    assert "must be an identifier" in by_field["steps[1].serviceName"]
    assert by_field["steps[0].errorRate"] == "Step 1: error rate 'lots' is not a number"
    assert by_field["domain"].startswith("Domain")
    assert "Cannot run this journey" in ed.validationLabel.text()
    assert "c92a2a" in ed.domainEdit.styleSheet()

    ed.remove_step()
    assert ed.stepsTable.rowCount() == 1


def test_editor_templates_and_files_round_trip(qtbot: Any, tmp_path: Path) -> None:
    ed = JourneyEditor()
    qtbot.addWidget(ed)
    assert "banking" in ed.template_names()
    ed.load_template("banking")
    data, _ = ed.journey_data()
    assert data["companyName"] == "First Digital Bank"
    assert data["steps"][0]["errorType"] == "auth"  # fields the table does not show survive
    assert ed.refresh_validation() == []
    path = tmp_path / "j.json"
    write_journey_file(str(path), data)
    assert read_journey_file(str(path)) == json.loads(path.read_text())
    ed.clear()
    assert ed.companyNameEdit.text() == "" and ed.stepsTable.rowCount() == 1
    ed.set_journey(read_journey_file(str(path)))
    assert ed.journey_data()[0] == data
    ed.set_mode("single")
    assert ed.run_params() == {"customers": 1, "mode": "single", "think_time_ms": 0}
    assert not ed.customersSpin.isEnabled() and not ed.thinkTimeSpin.isEnabled()
    ed.set_mode("batch-chained")
    ed.thinkTimeSpin.setValue(200)
    assert ed.run_params()["think_time_ms"] == 200


def test_port_grid_cells_legend_and_wrapping(qtbot: Any) -> None:
    grid = PortGrid()
    qtbot.addWidget(grid)
    ports = [PortInfo(p, PortState.FREE) for p in range(9000, 9041)]
    ports[2] = PortInfo(
        9002,
        PortState.ALLOCATED,
        "CheckoutService-Acme",
        "CheckoutService",
        "Acme",
        1234,
        started_at=time.time() - 75,
    )
    ports[3] = PortInfo(
        9003,
        PortState.ALLOCATED,
        "DiscoveryService-Dynatrace",
        "DiscoveryService",
        "Dynatrace",
        1235,
        essential=True,
    )
    ports[4] = PortInfo(9004, PortState.STALE, "GoneService-Acme", "GoneService", "Acme", 99)
    ports[5] = PortInfo(9005, PortState.FOREIGN, pid=77, process_name="nginx")
    grid.set_ports(ports)
    assert len(grid.cells()) == 41
    layout = grid._layout
    assert layout.columnCount() == 8 and layout.rowCount() == 6  # 41 ports wrap to a 6th row
    cell = grid.cell(9002)
    assert cell.property("state") == "allocated" and cell.property("serviceKey")
    assert "Uptime: 1 min 15 s" in cell.details_text()
    assert grid.cell(9003).property("essential") is True
    assert grid.counts()["essential"] == 1 and grid.counts()["free"] == 37
    assert short_name("CheckoutService") == "Checkout"
    legend = [w.text() for w in grid.legend.findChildren(QLabel)]
    assert legend == ["free", "starting", "allocated", "essential", "stopping", "stale", "foreign"]
    stopping = PortInfo(
        9002, PortState.STOPPING, "CheckoutService-Acme", "CheckoutService", "Acme", 1234
    )
    with qtbot.waitSignal(cell.stateChanged):
        grid.set_ports([*ports[:2], stopping, *ports[3:]])
    assert cell.property("state") == "stopping"
    grid.grab()  # paints every cell without error


def test_log_is_bounded(qtbot: Any) -> None:
    view = LogView()
    qtbot.addWidget(view)
    for i in range(2500):
        view.add("svc", f"line {i}")
    lines = view.lines()
    assert len(lines) == 2000
    assert lines[-1].endswith("line 2499")


def test_no_display_gives_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    err = io.StringIO()
    assert run_window(settings, err=err) == 2
    assert "QT_QPA_PLATFORM=offscreen" in err.getvalue()
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}) is None
    assert display_problem({"DISPLAY": ":0"}) is None


def panel_process(tmp_path: Path, port_range: range) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "BIZOBS_ESSENTIAL_SERVICES": "",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "BIZOBS_API_PORT": str(port_range[0] - 1),
        "BIZOBS_PORTS": f"{port_range[0]}-{port_range[-1]}",
        "BIZOBS_STATE_DIR": str(tmp_path / "state"),
    }
    root = Path(__file__).resolve().parents[2]
    return subprocess.Popen(
        [sys.executable, "-m", "app"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_python_m_app_opens_and_quits_cleanly_on_sigterm(tmp_path: Path, port_range: range) -> None:
    proc = panel_process(tmp_path, port_range)
    try:
        # The start line comes once the window is up and the signal handlers are installed.
        buffer = bytearray()
        seen = [read_line(proc, 30, buffer)]
        while seen[-1] and not seen[-1].startswith("panel: pool") and len(seen) < 20:
            seen.append(read_line(proc, 30, buffer))
        assert seen[-1].startswith("panel: pool") and proc.poll() is None, "".join(seen)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out.decode()
    assert b"Traceback" not in out


def test_a_second_panel_on_the_same_state_dir_says_so(tmp_path: Path, port_range: range) -> None:
    lock = StateLock(tmp_path / "state")
    lock.acquire()  # as a running panel would
    try:
        proc = panel_process(tmp_path, port_range)
        out, _ = proc.communicate(timeout=30)
    finally:
        lock.release()
    assert proc.returncode == 2, out.decode()
    assert b"another panel" in out and b"Traceback" not in out


def test_only_the_bridge_touches_the_core() -> None:
    """Widgets are views (no psutil, sockets, processes); besides the bridge, UI modules import
    from the core only its pure value types, limits and the journey parser."""
    ui = Path(__file__).resolve().parents[2] / "app" / "ui"
    allowed_core = {
        "app.core.model",
        "app.core.journeys",
        "app.core.errors",
        "app.core.limits",
        "app.core.traffic_model",  # pure values of the traffic charts
        "app.core.incident_model",  # pure values of the incidents list
    }
    for path in sorted(ui.rglob("*.py")):
        modules = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules.add(node.module)
        if path.parent.name == "widgets":
            assert not modules & {"psutil", "socket", "subprocess", "os"}, path
        if path.name != "bridge.py":
            core = {m for m in modules if m.startswith("app.core")}
            assert core <= allowed_core, f"{path.name} imports {core - allowed_core}"
            if path.parent.name != "widgets":
                assert not core, f"{path.name} imports {core}: go through the bridge"


def traffic_status(seconds: int = 180, steps: tuple[str, ...] = ("Browse", "Buy")) -> Any:
    from app.core.traffic_model import StepSecond, TrafficSecond, TrafficStatus

    now = time.time()
    series = tuple(
        TrafficSecond(
            at=now - seconds + i,
            completed=5 + i % 3,
            failed=i % 2,
            p50_ms=20 + i % 5,
            p95_ms=60 + i % 7,
            steps=tuple(StepSecond(s, ok=5, failed=i % 2, p50_ms=10, p95_ms=30) for s in steps),
        )
        for i in range(seconds)
    )
    step_totals = tuple(StepSecond(s, ok=900, failed=90) for s in steps)
    return TrafficStatus(
        running=True,
        rate=6,
        achieved_rate=5.9,
        sent=1000,
        completed=900,
        failed=90,
        steps=step_totals,
        series=series,
    )


def test_traffic_chart_draws_at_most_four_times_a_second(qtbot: Any) -> None:
    from app.ui import cadence
    from app.ui.widgets.traffic_chart import TrafficChart

    chart = TrafficChart()
    qtbot.addWidget(chart)
    chart.resize(900, 600)
    chart.show()
    status = traffic_status()
    clock = cadence.shared()  # at most four draws a second, in a turn of the loop of its own
    assert clock.period_ms == 250 and chart._tick in [job.run for job in clock.jobs]
    for _ in range(50):  # a burst of statuses is drawn once, at the next tick
        chart.set_status(status)
    qtbot.waitUntil(lambda: chart.updates >= 1, timeout=2_000)
    chart._tick()  # nothing new since: no second draw
    assert chart.updates == 1
    assert len(chart.curves["journeys"].getData()[0]) >= 179  # the last three minutes
    assert chart.window_s == 180  # the time axis holds them all
    assert chart.stepCombo.count() == 3  # all steps + two
    chart.stepCombo.setCurrentText("Buy")
    qtbot.waitUntil(lambda: chart.updates >= 2, timeout=2_000)
    assert set(chart.curves["journeys"].getData()[1]) == {5}
    chart.set_status(traffic_status(seconds=40))
    qtbot.waitUntil(lambda: chart.updates >= 3, timeout=2_000)
    assert chart.window_s == 60  # forty seconds fill the plot, not a quarter of it


def test_traffic_chart_value_axes_move_in_steps(qtbot: Any) -> None:
    """Each plot's y axis ends one step above its data (1, 1.2, 1.5, 2, … × 10ⁿ), the same
    while new seconds stay within it: an axis that followed every value was drawn again on
    every update."""
    from PySide6.QtGui import QFontMetrics, QImage, QPainter

    from app.ui.widgets.traffic_chart import TrafficChart

    chart = TrafficChart()
    qtbot.addWidget(chart)
    chart.resize(900, 600)
    chart.show()
    chart.set_status(traffic_status())  # journeys 5-7/s, p95 60-66 ms, errors 0-1/s
    chart.redraw()
    assert chart.value_tops == {"journeys": 8, "latency": 80, "errors": 1}
    drawn = chart.journeys.getViewBox().viewRange()[1]
    chart.set_status(traffic_status(seconds=100))  # other values, the same steps
    chart.redraw()
    assert chart.journeys.getViewBox().viewRange()[1] == drawn
    assert chart.value_tops == {"journeys": 8, "latency": 80, "errors": 1}
    chart.resize(900, 300)  # short plots: no more numbers than their height holds
    qtbot.waitUntil(lambda: chart.errors.getViewBox().height() < 60, timeout=2_000)
    for name, plot in (("journeys", chart.journeys), ("errors", chart.errors)):
        axis = plot.getAxis("left")
        line = QFontMetrics(axis.style["tickFont"]).height()
        numbers = [label for _, label in axis._tickLevels[0]]
        assert 1 <= len(numbers) <= max(1, plot.getViewBox().height() // (2 * line)), name
        image = QImage(8, 8, QImage.Format.Format_ARGB32)
        painter = QPainter(image)
        drawn = [text for *_, text in axis.generateDrawSpecs(painter)[2]]
        painter.end()
        assert drawn == numbers, name  # within the axis: pyqtgraph drops a number past its edge
    assert [label for _, label in chart.errors.getAxis("left")._tickLevels[0]] == ["1"]


def test_traffic_control_only_asks_and_shows(qtbot: Any) -> None:
    """The control emits requests and shows statuses; the window's wiring makes it available
    (app/ui/service_requests.py)."""
    from PySide6.QtCore import QObject, Signal

    from app.ui.widgets.traffic_chart import TrafficControl

    class Source(QObject):
        trafficChanged = Signal(object)

    plain = TrafficControl()
    qtbot.addWidget(plain)
    plain.bind(Source())
    assert not plain.startButton.isEnabled() and "not connected" in plain.toolTip()

    source = Source()
    control = TrafficControl()
    qtbot.addWidget(control)
    control.bind(source)
    control.set_available(True)
    asked: list[Any] = []
    control.startRequested.connect(lambda rate: asked.append(("start", rate)))
    control.rateRequested.connect(lambda rate: asked.append(("rate", rate)))
    control.stopRequested.connect(lambda: asked.append(("stop",)))
    control.rateSpin.setValue(7)
    control.startButton.click()
    source.trafficChanged.emit(traffic_status(10))
    assert control.stopButton.isEnabled() and not control.startButton.isEnabled()
    assert "sent\u00a01,000" in control.countsLabel.text()  # kept whole on a wrap
    control.rateSpin.setValue(9)  # typed while it runs: applied once typing pauses
    qtbot.waitUntil(lambda: ("rate", 9.0) in asked, timeout=2_000)
    control.stopButton.click()
    assert asked == [("start", 7.0), ("rate", 9.0), ("stop",)]


def fill_at(widget: Any, x: int, y: int) -> str:
    return widget.grab().toImage().pixelColor(x, y).name()


def test_cells_are_drawn_from_their_look_and_follow_the_scheme(qtbot: Any, qapp: Any) -> None:
    """A cell is rendered once per look (state, name, size, font, colours) and drawn from the
    rendered pixmap after; a change of state or of colour scheme is a new look."""
    from app.ui import theme
    from app.ui.widgets.palette import swatches
    from app.ui.widgets.port_grid import CELL_PIXMAPS

    grid = PortGrid()
    qtbot.addWidget(grid)
    grid.resize(800, 300)
    grid.show()
    ports = [PortInfo(p, PortState.FREE) for p in range(9000, 9016)]
    grid.set_ports(ports)
    cell = grid.cell(9000)
    qtbot.waitUntil(lambda: cell.width() > 60, timeout=2_000)
    x, y = cell.width() // 2, cell.height() - 5  # the box's fill, below any text
    CELL_PIXMAPS.clear()
    assert fill_at(cell, x, y) == swatches("light")["free"].fill
    looks = len(CELL_PIXMAPS)
    assert looks == 1
    grid.cell(9001).grab()  # same state, other port: a look of its own
    assert len(CELL_PIXMAPS) == 2
    cell.grab()  # drawn again: from the cache
    assert len(CELL_PIXMAPS) == 2
    grid.set_ports([PortInfo(9000, PortState.STARTING, "AService-Co", "AService"), *ports[1:]])
    assert fill_at(cell, x, y) == swatches("light")["starting"].fill
    try:
        theme.apply(qapp, "dark")
        assert fill_at(cell, x, y) == swatches("dark")["starting"].fill
    finally:
        theme.apply(qapp, "light")


def test_views_bind_what_they_show(qtbot: Any) -> None:
    """Each view connects itself to the signals it shows: run views to the stage's, the log
    to the bridge's as well; nothing in between feeds them."""
    from PySide6.QtCore import QObject, Signal

    from app.core.events import LogEvent, PhaseEvent, PhaseStatus, ServiceChange, ServiceEvent
    from app.core.model import Phase
    from app.core.runs import PhaseResult, RunResult
    from app.ui.widgets.phase_timeline import PhaseTimeline
    from app.ui.widgets.port_grid import PortCounts
    from app.ui.widgets.results import ResultsView

    class Stage(QObject):
        runStarted = Signal(str, str)
        phaseEvent = Signal(object)
        portsChanged = Signal(list)
        runFinished = Signal(object)
        runProgress = Signal(object)

    class Bridge(QObject):
        logEvent = Signal(object)
        serviceEvent = Signal(object)

    stage, bridge = Stage(), Bridge()
    grid, counts, timeline, results, log = (
        PortGrid(),
        PortCounts(),
        PhaseTimeline(),
        ResultsView(),
        LogView(),
    )
    for view in (grid, counts, timeline, results, log):
        qtbot.addWidget(view)
    for view in (grid, counts, timeline, results):
        view.bind(stage)
    log.bind(bridge, stage)

    stage.runStarted.emit("run-1", "Acme")
    assert "run-1 in progress" in results.summary.text()
    stage.portsChanged.emit(
        [PortInfo(9000, PortState.ALLOCATED, "AService-Acme", "AService", "Acme", 1)]
    )
    assert grid.cell(9000).property("state") == "allocated"
    assert "allocated 1" in counts.text()
    stage.phaseEvent.emit(PhaseEvent("run-1", Phase.STOP, PhaseStatus.FINISHED, 1.0, 2.5))
    assert timeline.rows[Phase.STOP].status == "done"
    bridge.serviceEvent.emit(ServiceEvent("AService-Acme", ServiceChange.KILLED, 9000, 1))
    bridge.logEvent.emit(LogEvent("AService-Acme", "hello"))
    phases = (PhaseResult(Phase.STOP, 1.0, 2.5),)
    stage.runFinished.emit(RunResult("run-1", False, phases, error="launch failed"))
    assert "No results: launch failed" in results.summary.text()
    assert timeline.rows[Phase.STOP].status == "done" and timeline._ticker.isActive() is False
    lines = log.lines()
    assert any("run-1 started for Acme" in line for line in lines)
    assert any("phase stop finished in 2.5 ms" in line for line in lines)
    assert any("WARN [AService-Acme] killed on port 9000 (pid 1)" in line for line in lines)
    assert any("[AService-Acme] hello" in line for line in lines)
    assert any("ERROR [run] run-1 failed: launch failed" in line for line in lines)


def test_the_next_session_names_the_loaded_template(qtbot: Any) -> None:
    first = JourneyEditor()
    qtbot.addWidget(first)
    first.load_template("banking")
    first.companyNameEdit.setText("Edited Bank")
    assert first.templateCombo.currentText() == "banking (modified)"
    second = JourneyEditor()
    qtbot.addWidget(second)
    second.restore_state(json.loads(json.dumps(first.state())))  # as saved between sessions
    assert second.templateCombo.currentText() == "banking (modified)"
    assert second.companyNameEdit.text() == "Edited Bank"
    second.restore_state({"journey": first.state()["journey"], "template": "no-such-template"})
    assert second.templateCombo.currentIndex() == 0  # the prompt, never a template not loaded


def test_the_log_follows_new_lines_without_scrolling_sideways(qtbot: Any) -> None:
    view = LogView()
    qtbot.addWidget(view)
    view.resize(300, 120)
    view.show()
    for i in range(30):
        view.add("SomeService-Company", f"line {i} " + "x" * 200)
    view.flush()
    assert view.horizontalScrollBar().maximum() > 0  # the lines are wider than the view
    assert view.horizontalScrollBar().value() == 0  # each line's start stays on screen
    assert view.verticalScrollBar().value() == view.verticalScrollBar().maximum()


def test_the_stage_shows_the_cells_as_they_are(qtbot: Any) -> None:
    """The stage holds no cell back (docs/architecture.md, "A Run Journey, phase by phase"):
    cells that turn `stopping` and then `free` are shown so on the next turn of the loop; a
    burst of changes within one turn is one frame, its latest cells."""
    from app.ui.stage import Stage

    stage = Stage()
    shown: list[dict[int, str]] = []
    stage.portsChanged.connect(lambda ports: shown.append({p.port: str(p.state) for p in ports}))

    def cells(*states: PortState) -> list[PortInfo]:
        return [PortInfo(9000 + i, s, f"S{i}-Co", f"S{i}Service") for i, s in enumerate(states)]

    a, s, f = PortState.ALLOCATED, PortState.STOPPING, PortState.FREE
    stage.on_ports(cells(a, a))
    assert shown == [{9000: "allocated", 9001: "allocated"}]  # the first cells at once
    stage.on_ports(cells(s, a))
    qtbot.waitUntil(lambda: shown[-1] == {9000: "stopping", 9001: "allocated"}, timeout=1_000)
    stage.on_ports(cells(s, s))
    stage.on_ports(cells(f, s))  # the same turn: one frame
    qtbot.waitUntil(stage.idle, timeout=1_000)
    assert shown[-1] == {9000: "free", 9001: "stopping"} and len(shown) == 3


def test_a_runs_progress_never_overtakes_the_simulate_phase_on_screen(qtbot: Any) -> None:
    """Progress that arrives while the simulate phase's start still waits for its snapshot is
    shown after it, the latest only; once on screen, at once."""
    from app.core.events import PhaseEvent, PhaseStatus, RunProgress
    from app.core.model import Phase
    from app.ui.stage import Stage

    stage = Stage()
    shown: list[str] = []
    stage.phaseEvent.connect(lambda e: shown.append(f"{e.phase.value} {e.status.value}"))
    stage.runProgress.connect(lambda p: shown.append(f"{p.done}/{p.total}"))
    stage.on_ports([PortInfo(9000, PortState.ALLOCATED, "S-Co", "SService")])
    stage.on_phase(PhaseEvent("run-1", Phase.SIMULATE, PhaseStatus.STARTED, time.time()))
    stage.on_progress(RunProgress("run-1", 0, 50, 0))
    stage.on_progress(RunProgress("run-1", 10, 50, 1))
    assert shown == []  # the phase waits for its snapshot, the progress behind it
    qtbot.waitUntil(lambda: len(shown) == 2, timeout=2_000)
    assert shown == ["simulate started", "10/50"]  # in order, the latest progress only
    qtbot.waitUntil(stage.idle, timeout=2_000)
    stage.on_progress(RunProgress("run-1", 50, 50, 4))
    assert shown[-1] == "50/50"


def test_a_second_without_journeys_is_a_gap_in_latency_not_a_zero(qtbot: Any) -> None:
    import math

    from app.core.traffic_model import StepSecond, TrafficSecond
    from app.ui.widgets.traffic_chart import ALL_STEPS, TrafficControl, series_points

    now = time.time()
    series = (
        TrafficSecond(now - 3, completed=0, failed=2),  # only failures: no latency
        TrafficSecond(now - 2, completed=4, p50_ms=20, p95_ms=40, steps=(StepSecond("Buy", ok=4),)),
    )
    xs, ys = series_points(series, ALL_STEPS, now)
    assert len(xs) == 2 and ys["journeys"] == [0, 4] and ys["errors"] == [2, 0]
    assert math.isnan(ys["p50"][0]) and ys["p50"][1] == 20
    _, step = series_points(series, "Buy", now)
    assert math.isnan(step["p95"][0]) and step["journeys"] == [0, 4]

    control = TrafficControl()
    qtbot.addWidget(control)
    control.set_available(True)
    control.set_status(traffic_status())  # running at 6/s, started elsewhere
    assert control.rateSpin.value() == 6


def test_the_state_word_shows_in_every_cell_of_a_grid_or_in_none(qtbot: Any) -> None:
    """Where eight columns do not divide the grid's width, cells differ by a pixel, and at a
    width on the edge the state word showed in every other cell ("free", nothing, "free"…).
    It is decided on the narrowest cell, the same for all of them."""
    from app.ui.widgets.port_grid import state_word_fits

    grid = PortGrid()
    qtbot.addWidget(grid)
    grid.set_ports([PortInfo(p, PortState.FREE) for p in range(9000, 9016)])
    grid.show()
    qtbot.waitExposed(grid)
    seen: set[bool] = set()
    uneven = 0
    for width in range(520, 800, 3):  # the edge where the word starts to fit lies among them
        grid.resize(width, 300)
        QApplication.processEvents()
        looks = [c._look() for c in grid.cells()]
        uneven += len({look.width for look in looks}) > 1
        assert len({look.fit_width for look in looks}) == 1
        assert looks[0].fit_width <= min(look.width for look in looks)
        fits = {state_word_fits(look) for look in looks}
        assert len(fits) == 1, (width, sorted({look.width for look in looks}))
        seen |= fits
    assert seen == {True, False} and uneven  # the edge was crossed, with cells of two widths
