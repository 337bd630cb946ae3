"""Live traffic: journeys/s, p50/p95 latency and errors/s over the last minutes, overall or
per step, plus the traffic control (rate, start, stop, live counts).

A view: it is handed `TrafficStatus` values (app/core/traffic_model.py, pure data) and emits
what the operator asks for; the window connects it to the bridge (docs/architecture.md,
"Parts and their rooms": widgets never import the running core or the bridge). Plots are
pyqtgraph's, redrawn on the window's clock (app/ui/cadence.py): at most four times a second,
however often statuses arrive.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.limits import MAX_TRAFFIC_RATE, MIN_TRAFFIC_RATE
from app.core.traffic_model import TrafficSecond, TrafficStatus
from app.ui import cadence
from app.ui.widgets.plotting import (
    fit_value_axis,
    follow_palette,
    live_plot,
    nice_ceiling,
)
from app.ui.widgets.sizing import fact_line

WINDOW_S = 180  # the charts show the last three minutes
ALL_STEPS = "All steps"
NAN = float("nan")
PEN_WIDTH = 3  # thick lines read from across a room
TITLE_SIZE = "12pt"
LEFT_AXIS_WIDTH = 52  # the same for the three plots: their time axes line up
MIN_PLOTS_HEIGHT = 210
SHORTEST_WINDOW_S = 60  # the time axis grows with the data, 30 s at a time, up to WINDOW_S
COLOURS = {"journeys": "#2b8a3e", "p50": "#1c7ed6", "p95": "#f08c00", "errors": "#e03131"}
LIVE_RATE_MS = 400  # a rate typed while traffic runs applies this long after the last key
COMPACT_AXIS_HEIGHT = 26  # tick numbers only, in presentation mode
MAX_MARKERS = 40  # events marked on the charts (incidents, switches, Stop All); older ones go


class Marker:
    """One event on the time axis: a dashed line through the three plots, its words on the
    top one, moved left as time passes."""

    def __init__(self, at: float, text: str, colour: str, plots: list[Any]) -> None:
        self.at, self.text = at, text
        pen = pg.mkPen(colour, width=2, style=Qt.PenStyle.DashLine)
        self.lines = []
        for index, plot in enumerate(plots):
            line = pg.InfiniteLine(
                pos=0.0,
                angle=90,
                pen=pen,
                movable=False,
                label=text if index == 0 else None,
                labelOpts={"position": 0.9, "color": colour, "anchors": [(0, 0), (0, 0)]},
            )
            plot.addItem(line, ignoreBounds=True)
            self.lines.append((plot, line))

    def move(self, now: float) -> None:
        for _, line in self.lines:
            line.setPos(self.at - now)

    def remove(self) -> None:
        for plot, line in self.lines:
            plot.removeItem(line)


class TrafficChart(QWidget):
    """Three stacked live plots sharing one time axis (seconds before now)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trafficChart")
        self._status: TrafficStatus | None = None
        self.window_s = SHORTEST_WINDOW_S  # seconds of history on the time axis
        self.value_tops: dict[str, float] = {}  # each plot's y-axis top, by plot
        self._dirty = False
        self.updates = 0
        self.last_update_ms = 0.0
        self.markers: list[Marker] = []
        self.stopped_at: float | None = None  # wall clock: traffic stopped; the axis froze there
        self._compact = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.topRow = QWidget()
        top = QHBoxLayout(self.topRow)
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(QLabel("Show:"))
        self.stepCombo = QComboBox()
        self.stepCombo.setObjectName("trafficStepCombo")
        self.stepCombo.addItem(ALL_STEPS)
        self.stepCombo.currentTextChanged.connect(self._mark_dirty)
        top.addWidget(self.stepCombo)
        top.addStretch(1)
        layout.addWidget(self.topRow)
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setObjectName("trafficPlots")
        # Three plots that can still be read: the splitters give this height before the charts
        # collapse to lines (200 % scaling on a 1280×720 logical screen).
        self.plots.setMinimumHeight(MIN_PLOTS_HEIGHT)
        layout.addWidget(self.plots, 1)
        self.journeys = self._plot(0, "journeys / s")
        # The key in the title: a legend inside the plot covers the lines of a short chart.
        self.latency = self._plot(
            1,
            f"latency ms <span style='color:{COLOURS['p50']}'>━ p50</span> "
            f"<span style='color:{COLOURS['p95']}'>━ p95</span>",
        )
        self.errors = self._plot(2, "errors / s")
        self._value_plots = {
            "journeys": self.journeys,
            "latency": self.latency,
            "errors": self.errors,
        }
        for name, plot in self._value_plots.items():
            plot.getViewBox().sigResized.connect(lambda *_a, n=name: self._value_ticks(n))
        self.curves = {
            "journeys": self._curve(self.journeys, "journeys"),
            "p50": self._curve(self.latency, "p50"),
            "p95": self._curve(self.latency, "p95"),
            "errors": self._curve(self.errors, "errors"),
        }
        self._follow_palette()
        cadence.shared().add(self, self._tick)  # four times a second, in a turn of its own

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:  # light/dark switched (app/ui/theme.py)
            self._follow_palette()
        super().changeEvent(event)

    def _follow_palette(self) -> None:
        plots = [self.journeys, self.latency, self.errors]
        follow_palette(self, self.plots, plots)
        text = self.palette().color(QPalette.ColorRole.Text)
        for plot in plots:
            plot.titleLabel.setText(plot.titleLabel.text, color=text, size=TITLE_SIZE)

    def _plot(self, row: int, title: str) -> Any:
        plot = self.plots.addPlot(row=row, col=0)
        plot.setTitle(title, size=TITLE_SIZE)
        plot.showGrid(x=True, y=True, alpha=0.25)
        live_plot(plot)
        plot.setXRange(-SHORTEST_WINDOW_S, 0, padding=0)
        plot.setClipToView(True)  # only the points on screen are drawn
        plot.getAxis("left").setWidth(LEFT_AXIS_WIDTH)
        bottom = plot.getAxis("bottom")
        if row == 2:
            bottom.setLabel("seconds ago")
        else:  # one time axis, under the last plot: the height goes to the curves
            bottom.setStyle(showValues=False)
            bottom.setHeight(6)
        plot.enableAutoRange(axis="y", enable=False)  # in steps: see _fit_value_axes
        return plot

    def _curve(self, plot: Any, key: str) -> Any:
        # connect="finite": a second without a journey has no latency (NaN), a gap, not a 0.
        return plot.plot([], [], pen=pg.mkPen(COLOURS[key], width=PEN_WIDTH), connect="finite")

    def _tick(self) -> None:
        if self.isVisible():  # a chart on a hidden tab catches up when it is shown
            self.redraw()

    def bind(self, source: Any) -> None:
        """Show `source.trafficChanged` (the bridge's TrafficStatus signal)."""
        source.trafficChanged.connect(self.set_status)

    # -- data ----------------------------------------------------------------------------------
    def set_status(self, status: TrafficStatus) -> None:
        """Keep the latest status; the clock's tick draws it. Once traffic stops, the time
        axis stops with it ("seconds before 13:21:04, stopped"), not a running "seconds ago"
        that slides the last minute off the chart."""
        was_running = self._status is not None and self._status.running
        before = self.stopped_at
        if status.running:
            self.stopped_at = None
        elif was_running and status.sent:
            self.stopped_at = time.time()
        if self.stopped_at != before:
            self._title_time_axis()
        self._status = status
        self._sync_steps(status)
        self._dirty = True

    def _mark_dirty(self, *_args: object) -> None:
        self._dirty = True

    def set_compact(self, compact: bool) -> None:
        """Presentation mode: the height to the plots (no step picker, the time axis's title
        in the last plot's title); off: as before."""
        self._compact = compact
        self.topRow.setVisible(not compact)
        bottom = self.errors.getAxis("bottom")
        bottom.setHeight(COMPACT_AXIS_HEIGHT if compact else None)  # None: as tall as it needs
        self._title_time_axis()
        # The last row holds the time axis too: a little more of the height, so its plot is
        # as tall as the others.
        rows = self.plots.ci.layout
        for row, stretch in enumerate((10, 10, 11) if compact else (1, 1, 1)):
            rows.setRowStretchFactor(row, stretch)

    def time_axis_text(self) -> str:
        if self.stopped_at is None:
            return "seconds ago"
        return (
            f"seconds before {time.strftime('%H:%M:%S', time.localtime(self.stopped_at))}, stopped"
        )

    def _title_time_axis(self) -> None:
        """The time axis's words: under the axis, or (compact) in the last plot's title."""
        bottom = self.errors.getAxis("bottom")
        words = self.time_axis_text()
        bottom.setLabel(None if self._compact else words)
        bottom.showLabel(not self._compact)
        title = f"errors / s · time: {words}" if self._compact else "errors / s"
        text = self.palette().color(QPalette.ColorRole.Text)
        self.errors.setTitle(title, color=text, size=TITLE_SIZE)

    def mark(self, at: float, text: str, colour: str) -> Marker:
        """Mark an event at wall-clock time `at` (an incident's start or end, a journey
        switch, Stop All) on the three plots."""
        marker = Marker(at, text, colour, [self.journeys, self.latency, self.errors])
        marker.move(time.time())
        self.markers.append(marker)
        while len(self.markers) > MAX_MARKERS:
            self.markers.pop(0).remove()
        self._dirty = True
        return marker

    def _sync_steps(self, status: TrafficStatus) -> None:
        names = [s.step_name for s in status.steps]
        have = [self.stepCombo.itemText(i) for i in range(1, self.stepCombo.count())]
        if names and names != have:
            current = self.stepCombo.currentText()
            self.stepCombo.blockSignals(True)
            self.stepCombo.clear()
            self.stepCombo.addItems([ALL_STEPS, *names])
            self.stepCombo.setCurrentText(current if current in names else ALL_STEPS)
            self.stepCombo.blockSignals(False)

    def redraw(self) -> None:
        if not self._dirty or self._status is None:
            return
        t0 = time.perf_counter()
        self._dirty = False
        now = self.stopped_at or time.time()
        xs, ys = series_points(self._status.series, self.stepCombo.currentText(), now)
        self._fit_time_axis(-xs[0] if xs else 0.0)
        self._fit_value_axes(ys)
        for key, curve in self.curves.items():
            curve.setData(xs, ys[key])
        for marker in self.markers:
            marker.move(now)
        self.updates += 1
        self.last_update_ms = (time.perf_counter() - t0) * 1000

    def _fit_value_axes(self, ys: dict[str, list[float]]) -> None:
        """Each plot from 0 to a step above its highest value (`nice_ceiling`): an auto-ranged
        axis followed every new second and was drawn again each time (a repaint 5.3 → 3.9 ms)."""
        for name, keys, floor in (
            ("journeys", ("journeys",), 1.0),
            ("latency", ("p50", "p95"), 10.0),
            ("errors", ("errors",), 1.0),
        ):
            top = nice_ceiling(max([floor, *(v for k in keys for v in ys[k] if v == v)]))  # NaN
            if top != self.value_tops.get(name):
                self.value_tops[name] = top
                self._value_ticks(name)

    def _value_ticks(self, name: str) -> None:
        """The plot's range and numbered ticks for its height (plotting.fit_value_axis)."""
        fit_value_axis(self._value_plots[name], self.value_tops.get(name, 1.0))

    def _fit_time_axis(self, span_s: float) -> None:
        """Forty seconds of traffic fill the plot, not a quarter of a three-minute axis; a new
        range re-renders the axes, so it changes in 30 s steps."""
        window = min(WINDOW_S, max(SHORTEST_WINDOW_S, 30 * math.ceil((span_s + 1) / 30)))
        if window != self.window_s:
            self.window_s = window
            for plot in (self.journeys, self.latency, self.errors):
                plot.setXRange(-window, 0, padding=0)


def series_points(
    series: tuple[TrafficSecond, ...], step: str, now: float
) -> tuple[list[float], dict[str, list[float]]]:
    """x (seconds before `now`) and one y list per curve, overall or for one step."""
    xs: list[float] = []
    ys: dict[str, list[float]] = {k: [] for k in COLOURS}
    for second in series:
        if now - second.at > WINDOW_S:
            continue
        values = _values(second, step)
        if values is None:
            continue
        xs.append(second.at - now)
        for key, value in zip(("journeys", "p50", "p95", "errors"), values, strict=True):
            ys[key].append(value)
    return xs, ys


def _values(second: TrafficSecond, step: str) -> tuple[float, float, float, float] | None:
    if step == ALL_STEPS:
        ok, p50, p95, failed = second.completed, second.p50_ms, second.p95_ms, second.failed
    else:
        found = next((s for s in second.steps if s.step_name == step), None)
        if found is None:
            return (0.0, NAN, NAN, 0.0)
        ok, p50, p95, failed = found.ok, found.p50_ms, found.p95_ms, found.failed
    if not ok:  # nothing completed that second: no latency to draw
        p50 = p95 = NAN
    return (ok, p50, p95, failed)


class TrafficControl(QWidget):
    """Rate, Start/Stop and the live counts. A view: it only emits what the operator asks
    for and shows the statuses it is handed; the window's wiring turns the requests into the
    bridge's commands and makes it available (docs/architecture.md, "The window")."""

    startRequested = Signal(float)  # Start at this rate, journeys per second
    rateRequested = Signal(float)  # a new rate typed while traffic runs (no Stop+Start)
    stopRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trafficControl")
        # Controls on one row, the live counts under them: the tab stays narrow enough for a
        # 1000-pixel-wide window.
        rows = QVBoxLayout(self)
        rows.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        rows.addLayout(row)
        rate = QLabel("Rate:")
        row.addWidget(rate)
        self.rateSpin = QDoubleSpinBox()
        self.rateSpin.setObjectName("trafficRateSpin")
        self.rateSpin.setRange(MIN_TRAFFIC_RATE, MAX_TRAFFIC_RATE)  # the core's own bounds
        self.rateSpin.setValue(2.0)
        self.rateSpin.setSuffix(" journeys/s")
        rate.setBuddy(self.rateSpin)
        row.addWidget(self.rateSpin)
        # Live rate: while traffic runs, a new rate applies itself once typing pauses (no
        # Stop+Start, the charts keep their history).
        self._running = False
        self._rate_in_force = 0.0
        self._live = QTimer(self)
        self._live.setSingleShot(True)
        self._live.setInterval(LIVE_RATE_MS)
        self._live.timeout.connect(self._apply_rate)
        self.rateSpin.valueChanged.connect(self._rate_edited)
        self.startButton = QPushButton("Start")  # on the Traffic tab: "traffic" goes without saying
        self.startButton.setToolTip(
            "Start continuous traffic at this rate (while it runs, a new rate applies by itself)"
        )
        self.startButton.setObjectName("startTrafficButton")
        self.startButton.clicked.connect(lambda: self.startRequested.emit(self.rateSpin.value()))
        self.stopButton = QPushButton("Stop")
        self.stopButton.setToolTip("Stop continuous traffic (journeys in flight finish)")
        self.stopButton.setObjectName("stopTrafficButton")
        self.stopButton.clicked.connect(self.stopRequested.emit)
        row.addWidget(self.startButton)
        row.addWidget(self.stopButton)
        row.addStretch(1)
        self.countsLabel = QLabel("No traffic yet.")
        self.countsLabel.setObjectName("trafficCountsLabel")
        self.countsLabel.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.countsLabel.setWordWrap(True)  # never widens the window
        rows.addWidget(self.countsLabel)
        self.set_available(False, "Continuous traffic is not connected to a panel")
        self.set_status(TrafficStatus())

    def bind(self, source: Any) -> None:
        """Show `source.trafficChanged`'s statuses."""
        source.trafficChanged.connect(self.set_status)

    def set_available(self, available: bool, why: str = "") -> None:
        self._available = available
        self.setToolTip("" if available else why)
        self._update_buttons(False)

    def _rate_edited(self, value: float) -> None:
        if self._running and value != self._rate_in_force:
            self._live.start()

    def _apply_rate(self) -> None:
        value = self.rateSpin.value()
        if self._running and value != self._rate_in_force:
            self._rate_in_force = value
            self.rateRequested.emit(value)

    def set_status(self, status: TrafficStatus) -> None:
        self._update_buttons(status.running)
        self._running = status.running
        if status.running:
            self._rate_in_force = status.rate
        if status.running and not self.rateSpin.hasFocus() and not self._live.isActive():
            # Started elsewhere (the API, the CLI) or changed: the box shows the rate in force.
            self.rateSpin.blockSignals(True)
            self.rateSpin.setValue(status.rate)
            self.rateSpin.blockSignals(False)
        if status.running or status.sent:
            state = f"paused: {status.paused}" if status.paused else ""
            state = state or ("running" if status.running else "stopped")
            behind = " · behind: the machine cannot carry this rate" if status.behind else ""
            self.countsLabel.setText(
                fact_line(
                    state,
                    f"{status.achieved_rate:,.1f}/{status.rate:,.1f} per s",
                    f"sent {status.sent:,}",
                    f"completed {status.completed:,}",
                    f"failed {status.failed:,}",
                    f"cancelled {status.cancelled:,}",
                    f"in flight {status.in_flight:,}",
                    _p95(status),
                )
                + behind
            )

    def _update_buttons(self, running: bool) -> None:
        self.startButton.setEnabled(self._available and not running)
        self.stopButton.setEnabled(self._available and running)
        self.rateSpin.setEnabled(self._available)


def _p95(status: TrafficStatus) -> str:
    """No journey ended yet: no latency (the status says 0.0, which is not a measurement)."""
    return f"p95 {status.p95_ms:,.0f} ms" if status.completed or status.failed else "p95 —"
