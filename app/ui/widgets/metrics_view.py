"""The Metrics tab: the cleanup dashboard the replaced system's roadmap asked for — cleanups per
minute, the pool's ports by state over time (stacked), stale cleaned and orphans reaped, the
cleanup duration, and the cleanup failures with an Acknowledge each.

A view of one registry (app/core/metrics.py): it is handed `MetricsSnapshot` and the ring of
`Sample`s that `/metrics` is read from, never counts anything itself. The ring has a sample
every 10 s; the snapshot's ports are drawn as the last point, so a fresh panel is not empty.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QGridLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.ui.widgets.palette import swatch_for
from app.ui.widgets.plotting import (
    fit_value_axis,
    follow_palette,
    live_plot,
    nice_ceiling,
)

# Bottom to top: the states a demo cares about at the foot of the stack, free on top.
STATES = ("allocated", "starting", "stopping", "stale", "foreign", "free")
WINDOW_S = 15 * 60  # the ring's length: the last 15 minutes
TITLE_SIZE = "11pt"
MIN_PLOTS_HEIGHT = 200  # two plots of ≥ 80 px; the tab scrolls below that
FAILURES_HEIGHT = 150  # about three alerts; more scroll
TILES = (
    ("cleanups", "Cleanups"),
    ("rate", "Cleanups / min"),
    ("pool", "Pool in use"),
    ("stale", "Stale cleaned"),
    ("orphans", "Orphans reaped"),
    ("duration", "Cleanup duration"),
)
FAILURE_COLUMNS = ("When", "Alert", "What failed · what the panel did · what to do", "")


class MetricsView(QWidget):
    ackRequested = Signal(str)  # alert id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("metricsView")
        self.tiles: dict[str, QLabel] = {}
        self._tops: dict[Any, float] = {}  # each plot's value axis top
        tiles = QGridLayout()
        tiles.setHorizontalSpacing(16)
        for index, (key, title) in enumerate(TILES):
            caption = QLabel(title)
            value = QLabel("—")
            value.setObjectName(f"metric_{key}")
            font = value.font()
            font.setPointSizeF(font.pointSizeF() * 1.25)
            font.setBold(True)
            value.setFont(font)
            for label in (caption, value):  # never wider than the tab: text may be cut, not the tab
                label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            row, column = divmod(index, 3)
            tiles.addWidget(caption, 2 * row, column)
            tiles.addWidget(value, 2 * row + 1, column)
            self.tiles[key] = value
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setObjectName("metricsPlots")
        self.plots.setMinimumHeight(MIN_PLOTS_HEIGHT)
        self.rate_plot = self._plot(0, "cleanups / min")
        self.ports_plot = self._plot(1, "ports by state")
        # The key above the plots, wrapping: a legend inside a short plot covers its bands,
        # and a long title would make the tab wider than its pane.
        self.key = QLabel(
            "Ports: "
            + " ".join(
                f"<span style='color:{swatch_for(state).border}'>■</span>&nbsp;{state}"
                for state in reversed(STATES)
            )
        )
        self.key.setObjectName("metricsKey")
        self.key.setWordWrap(True)
        self.key.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.rate_curve = self.rate_plot.plot([], [], pen=pg.mkPen("#3778c2", width=2))
        self.rate_plot.getAxis("bottom").setStyle(showValues=False)
        self.ports_plot.getAxis("bottom").setLabel("minutes ago")
        self._state_curves: dict[str, Any] = {}
        self._stack_areas()
        self.failures = QTableWidget(0, len(FAILURE_COLUMNS))
        self.failures.setObjectName("metricsFailures")
        self.failures.setHorizontalHeaderLabels(FAILURE_COLUMNS)
        self.failures.verticalHeader().setVisible(False)
        self.failures.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.failures.setWordWrap(True)
        self.failures.setMaximumHeight(FAILURES_HEIGHT)  # the plots keep the height
        header = self.failures.horizontalHeader()
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.failuresTitle = QLabel("Cleanup failures: none")
        self.failuresTitle.setObjectName("metricsFailuresTitle")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(tiles)
        layout.addWidget(self.key)
        layout.addWidget(self.plots, 4)
        layout.addWidget(self.failuresTitle)
        layout.addWidget(self.failures, 1)
        self._follow_palette()

    # -- building ------------------------------------------------------------------------------
    def _plot(self, row: int, title: str) -> Any:
        plot = self.plots.addPlot(row=row, col=0)
        plot.setTitle(title, size=TITLE_SIZE)
        plot.showGrid(x=True, y=True, alpha=0.25)
        live_plot(plot)
        plot.setXRange(-WINDOW_S / 60, 0, padding=0)
        plot.getAxis("left").setWidth(48)
        plot.enableAutoRange(axis="y", enable=False)
        # Its numbers follow its height, as the traffic charts' do.
        plot.getViewBox().sigResized.connect(lambda *_a: self._fit(plot))
        return plot

    def _stack_areas(self) -> None:
        """Each state's running total, filled down to 0 and laid from the top (free) down:
        each lower one covers the one above, so the bands read as a stack."""
        for state in reversed(STATES):
            swatch = swatch_for(state)
            curve = self.ports_plot.plot(
                [],
                [],
                pen=pg.mkPen(swatch.border, width=1),
                fillLevel=0,
                brush=pg.mkBrush(QColor(swatch.fill)),
            )
            self._state_curves[state] = curve

    def _fit(self, plot: Any) -> None:
        fit_value_axis(plot, self._tops.get(plot, 1.0), zero=True)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:  # light/dark switched
            self._follow_palette()
        super().changeEvent(event)

    def _follow_palette(self) -> None:
        follow_palette(self, self.plots, [self.rate_plot, self.ports_plot])

    # -- data ----------------------------------------------------------------------------------
    def show_metrics(self, snapshot: Any, samples: Sequence[Any]) -> None:
        """Draw one `MetricsSnapshot` and the ring of `Sample`s it was read with."""
        self._tiles(snapshot)
        now = snapshot.at
        xs = [(at - now) / 60 for at, _ in snapshot.cleanups_per_minute]
        ys = [rate for _, rate in snapshot.cleanups_per_minute]
        self.rate_curve.setData(xs, ys)
        self._tops[self.rate_plot] = nice_ceiling(max(ys, default=0) or 1)
        self._fit(self.rate_plot)
        self._ports(snapshot, samples)
        self._failures(snapshot.failures)

    def _tiles(self, s: Any) -> None:
        per_minute = s.cleanups_per_minute[-1][1] if s.cleanups_per_minute else None
        used = sum(n for state, n in s.ports_by_state if state != "free")
        duration = "no cleanup yet"
        if s.last_cleanup_s is not None:
            duration = f"p50 {_ms(s.cleanup_p50_s)} · p95 {_ms(s.cleanup_p95_s)}"
        self.tiles["duration"].setToolTip(f"the last cleanup took {_ms(s.last_cleanup_s)}")
        texts = {
            "cleanups": f"{s.cleanups_total:,.0f}",
            "rate": f"{per_minute:.1f}" if per_minute is not None else "—",
            "stale": f"{s.stale_cleaned_total:,.0f}",
            "orphans": f"{s.orphans_reaped_total:,.0f}",
            "duration": duration,
            "pool": f"{used} of {s.pool_size} ({100 * used / max(s.pool_size, 1):.0f} %)",
        }
        for key, text in texts.items():
            self.tiles[key].setText(text)

    def _ports(self, snapshot: Any, samples: Sequence[Any]) -> None:
        points = [(sample.at, dict(sample.ports)) for sample in samples]
        points.append((snapshot.at, dict(snapshot.ports_by_state)))
        xs = [(at - snapshot.at) / 60 for at, _ in points]
        running = [0.0] * len(points)
        for state in STATES:
            running = [r + by.get(state, 0) for r, (_, by) in zip(running, points, strict=True)]
            self._state_curves[state].setData(xs, running)
        self._tops[self.ports_plot] = float(max(snapshot.pool_size, 1))
        self._fit(self.ports_plot)

    def _failures(self, alerts: Sequence[Any]) -> None:
        waiting = sum(not a.acknowledged for a in alerts)
        self.failuresTitle.setText(
            f"Cleanup failures: {len(alerts)} ({waiting} not acknowledged)"
            if alerts else "Cleanup failures: none"
        )  # fmt: skip
        self.failures.setRowCount(len(alerts))
        for row, alert in enumerate(reversed(alerts)):  # the newest first
            when = time.strftime("%H:%M:%S", time.localtime(alert.at))
            texts = (when, alert.kind.value.replace("_", " "), alert.message)
            for column, text in enumerate(texts):
                item = QTableWidgetItem(text)
                item.setToolTip(alert.message)
                self.failures.setItem(row, column, item)
            self.failures.setCellWidget(row, 3, self._ack_button(alert))
        self.failures.resizeRowsToContents()

    def _ack_button(self, alert: Any) -> QWidget:
        if alert.acknowledged:
            done = QLabel("acknowledged")
            done.setAlignment(Qt.AlignmentFlag.AlignCenter)
            return done
        button = QPushButton("Acknowledge")
        button.setObjectName(f"ack_{alert.id}")
        button.clicked.connect(lambda: self.ackRequested.emit(alert.id))
        return button


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:,.0f} ms"
