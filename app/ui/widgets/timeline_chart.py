"""The phases of the last runs as bars on a time axis, each service's stop and start as marks.

A view (docs/architecture.md, "Parts and their rooms"): it is handed phase events, service
events and run results, read by attribute. One row per run, newest on top, its x axis the
seconds since that run began, so runs compare at a glance (a slow wait, a long launch). The
phases are those of "A Run Journey, phase by phase"; a run's result replaces its live bars with
the phases it measured. Service events carry no time: they are marked when they arrive. A
demo-paced phase's bar is hatched (docs/architecture.md, "A Run Journey, phase by phase").
Drawn with pyqtgraph, on the window's clock (app/ui/cadence.py): at most four times a second.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QBrush, QColor, QFontMetrics
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.core.model import Phase
from app.ui import cadence
from app.ui.widgets.plotting import (
    fit_ticks,
    follow_palette,
    live_plot,
    nice_ceiling,
    padded_range,
)

MAX_RUNS = 4
BAR_HEIGHT = 0.5
LABEL_GAP = 24  # px between two numbers on the time axis
WIDEST_NUMBER = "0.00"  # a time axis number at its widest
# A run label: its company, elided to COMPANY_TEXT's width, and its start time (see _run_label).
COMPANY_TEXT = "Acme Retail Co"
WIDEST_TIME = " 00:00:00 ✗"
PHASE_COLOURS = {  # one hue per phase, legible on light and dark plot backgrounds
    Phase.STOP: "#e8590c",
    Phase.WAIT: "#f59f00",
    Phase.SWEEP: "#ae3ec9",
    Phase.LAUNCH: "#1c7ed6",
    Phase.SIMULATE: "#2f9e44",
}
STOP_CHANGES = frozenset({"stopping", "stopped", "killed", "exited", "stale", "failed"})
START_CHANGES = frozenset({"starting", "running"})


@dataclass
class PhaseBar:
    phase: Phase
    start: float  # wall clock
    end: float | None = None  # None while it runs
    status: str = "running"
    paced: bool = False  # part of it was a demo-pacing pause


@dataclass
class RunTrack:
    run_id: str
    t0: float
    company: str = ""  # the row's name, with t0: an operator knows runs by these, not by id
    bars: dict[Phase, PhaseBar] = field(default_factory=dict)
    marks: list[tuple[float, str, str]] = field(default_factory=list)  # (at, key, change)
    ok: bool | None = None


class TimelineChart(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("timelineChart")
        self.runs: deque[RunTrack] = deque(maxlen=MAX_RUNS)
        self._dirty = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        # The key is a wrapping label above the plot: a legend inside would cover the bars in a
        # small window.
        self.key = QLabel(legend_html())
        self.key.setObjectName("timelineKey")
        self.key.setWordWrap(True)
        layout.addWidget(self.key)
        self.plot = pg.PlotWidget()
        self.plot.setObjectName("timelinePlot")
        live_plot(self.plot.getPlotItem())
        self.plot.showGrid(x=True, alpha=0.25)
        self.plot.setLabel("bottom", "seconds")  # since each run began (the rows align at 0)
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)  # "(x0.001)" reads as noise
        self.bars = pg.BarGraphItem(x0=[], width=[], y=[], height=BAR_HEIGHT)
        self.plot.addItem(self.bars)
        self.starts = pg.ScatterPlotItem(symbol="t1", size=12, brush="#2f9e44", pen="w")
        self.stops = pg.ScatterPlotItem(symbol="t", size=12, brush="#c92a2a", pen="w")
        self.plot.addItem(self.starts)
        self.plot.addItem(self.stops)
        layout.addWidget(self.plot, 1)
        # Before the first run: no rows, so no numbers on the run axis (it read 0-1).
        self._ticks: list[tuple[int, str]] = []
        self._marks_drawn: tuple[tuple[str, int], ...] = ()
        left = self.plot.getAxis("left")
        left.setTicks([self._ticks])
        # A fixed width for the run labels: the ticks are set only when they change, and an axis
        # sized by its first labels would cut later, longer ones.
        metrics = QFontMetrics(left.style["tickFont"])
        self._company_px = metrics.horizontalAdvance(COMPANY_TEXT)
        left.setWidth(self._company_px + metrics.horizontalAdvance(WIDEST_TIME) + 14)
        self.plot.setYRange(-0.6, 0.8, padding=0)
        self.span_s = 0.0
        self._fit_time_axis(0.0)
        self.plot.getViewBox().sigResized.connect(self._fit_ticks)  # as many numbers as fit
        follow_palette(self, self.plot, [self.plot.getPlotItem()])
        cadence.shared().add(self, self._tick)  # four times a second, in a turn of its own

    def _tick(self) -> None:
        if self.isVisible():  # a chart on a hidden tab catches up when it is shown
            self.redraw()

    def bind(self, source: Any) -> None:
        """Show `source`'s runs, phases and service events (the bridge's signals)."""
        source.runStarted.connect(self.start_run)
        source.phaseEvent.connect(self.phase_event)
        source.serviceEvent.connect(self.service_event)
        source.runFinished.connect(self.finish_run)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:  # light/dark switched (app/ui/theme.py)
            follow_palette(self, self.plot, [self.plot.getPlotItem()])
        super().changeEvent(event)

    # -- data ----------------------------------------------------------------------------------
    def start_run(self, run_id: str, company: str = "", at: float | None = None) -> RunTrack:
        track = RunTrack(run_id, at if at is not None else time.time(), company)
        self.runs.append(track)
        self._dirty = True
        return track

    def _track(self, run_id: str, at: float) -> RunTrack:
        for track in self.runs:
            if track.run_id == run_id:
                return track
        return self.start_run(run_id, at=at)  # a run we did not see start

    def phase_event(self, event: Any) -> None:
        track = self._track(event.run_id, event.started_at)
        status = str(getattr(event.status, "value", event.status))
        bar = track.bars.setdefault(event.phase, PhaseBar(event.phase, event.started_at))
        bar.paced = bool(getattr(event, "paced_ms", 0.0))  # started: the pause it will take
        if status != "started":
            bar.end = event.started_at + event.duration_ms / 1000
            bar.status = "done" if status == "finished" else "failed"
        self._dirty = True

    def service_event(self, event: Any, at: float | None = None) -> None:
        if not self.runs or self.runs[-1].ok is not None:
            return  # only a run in progress gets marks (Stop All is not a run)
        change = str(getattr(event.change, "value", event.change))
        self.runs[-1].marks.append((at if at is not None else time.time(), event.key, change))
        self._dirty = True

    def finish_run(self, result: Any) -> None:
        """The run's measured phases replace what the live events drew."""
        phases = list(getattr(result, "phases", ()))
        at = phases[0].started_at if phases else time.time()
        track = self._track(result.run_id, at)
        track.company = track.company or str(getattr(result, "company", "") or "")
        measured = {
            p.phase: PhaseBar(
                p.phase,
                p.started_at,
                p.started_at + p.duration_ms / 1000,
                "done",
                bool(getattr(p, "paced_ms", 0.0)),
            )
            for p in phases
        }
        track.bars = measured | {k: v for k, v in track.bars.items() if k not in measured}
        for bar in track.bars.values():
            if bar.end is None:  # cut short: the run failed or was cancelled here
                bar.end, bar.status = time.time(), "failed"
        track.ok = bool(result.ok)
        self._dirty = True

    # -- drawing -------------------------------------------------------------------------------
    def bar_rows(self, now: float | None = None) -> list[tuple[int, Phase, float, float]]:
        """(row, phase, start s, width s) per bar; row 0 is the oldest run shown."""
        return [(row, phase, x0, width) for row, phase, x0, width, _p in self._rows(now)]

    def paced_bars(self) -> list[tuple[int, Phase]]:
        """(row, phase) of each bar that was paced."""
        return [(row, phase) for row, phase, _x, _w, paced in self._rows() if paced]

    def _rows(self, now: float | None = None) -> list[tuple[int, Phase, float, float, bool]]:
        now = now if now is not None else time.time()
        out = []
        for row, track in enumerate(self.runs):
            for bar in track.bars.values():
                end = bar.end if bar.end is not None else now
                width = max(end - bar.start, 0.002)
                out.append((row, bar.phase, bar.start - track.t0, width, bar.paced))
        return out

    def mark_points(self, kind: frozenset[str]) -> list[tuple[float, float]]:
        """Stops above their run's bar, starts below it."""
        offset = BAR_HEIGHT / 2 + 0.12
        offset = offset if kind is STOP_CHANGES else -offset
        return [
            (at - track.t0, row + offset)
            for row, track in enumerate(self.runs)
            for at, _key, change in track.marks
            if change in kind
        ]

    def redraw(self) -> None:
        running = any(b.end is None for t in self.runs for b in t.bars.values())
        if not (self._dirty or running):
            return
        self._dirty = False
        rows = self._rows()
        self._fit_time_axis(max((r[2] + r[3] for r in rows), default=0.0))
        self.bars.setOpts(
            x0=[r[2] for r in rows],
            width=[r[3] for r in rows],
            y=[r[0] for r in rows],
            height=BAR_HEIGHT,
            brushes=[_brush(r[1], r[4]) for r in rows],
            pens=[pg.mkPen(None)] * len(rows),
        )
        # Marks and labels only when they change: new data re-renders a scatter's points and
        # the axis's cached picture, ≈4 ms a tick while a run's bars grow.
        marks = tuple((t.run_id, len(t.marks)) for t in self.runs)
        if marks != self._marks_drawn:
            self._marks_drawn = marks
            for item, kind in ((self.starts, START_CHANGES), (self.stops, STOP_CHANGES)):
                points = self.mark_points(kind)
                item.setData([p[0] for p in points], [p[1] for p in points])
        metrics = QFontMetrics(self.plot.getAxis("left").style["tickFont"])
        ticks = [(row, _run_label(t, metrics, self._company_px)) for row, t in enumerate(self.runs)]
        if ticks != self._ticks:
            self._ticks = ticks
            self.plot.getAxis("left").setTicks([ticks])
            self.plot.setYRange(-0.6, max(len(self.runs), 1) - 0.2, padding=0)

    def _fit_time_axis(self, seconds: float) -> None:
        """The time axis in steps (`nice_ceiling`): a range that followed the growing bar
        rendered both axes and their grid again on every tick (≈6 ms of an 8 ms repaint)."""
        span = nice_ceiling(seconds)
        if span != self.span_s:
            self.span_s = span
            self._fit_ticks()

    def _fit_ticks(self) -> None:
        """As many numbered ticks as the plot's width holds (`fit_ticks`), and room at both
        ends for half a number: one past the axis's edge is not drawn."""
        axis, span = self.plot.getAxis("bottom"), self.span_s
        label = QFontMetrics(axis.style["tickFont"]).horizontalAdvance(WIDEST_NUMBER)
        width = max(self.plot.getViewBox().width(), 1.0)
        self.plot.setXRange(*padded_range(span, width, label / 2 + 2, label / 2 + 2), padding=0)
        fit_ticks(axis, span, width, label + LABEL_GAP, zero=True)


def _brush(phase: Phase, paced: bool) -> QBrush:
    style = Qt.BrushStyle.Dense3Pattern if paced else Qt.BrushStyle.SolidPattern
    return QBrush(QColor(PHASE_COLOURS[phase]), style)


def legend_html() -> str:
    phases = "&nbsp; ".join(
        f"<span style='color:{colour}'>■</span>&nbsp;{phase.value}"
        for phase, colour in PHASE_COLOURS.items()
    )
    return (
        f"{phases} &nbsp; services: <span style='color:#c92a2a'>▼</span>&nbsp;stop"
        " <span style='color:#2f9e44'>▲</span>&nbsp;start &nbsp; ▒&nbsp;paced"
    )


def _run_label(track: RunTrack, metrics: QFontMetrics, company_px: int) -> str:
    """ "Acme Retail 14:02:31 ✓": the company (elided to fit the axis), the run's start in
    local time and its outcome; a run whose company is not known yet shows its time."""
    mark = "" if track.ok is None else (" ✓" if track.ok else " ✗")
    stamp = time.strftime("%H:%M:%S", time.localtime(track.t0))
    company = metrics.elidedText(track.company, Qt.TextElideMode.ElideRight, company_px)
    return f"{company} {stamp}{mark}" if company else f"{stamp}{mark}"
