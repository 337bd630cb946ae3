"""What the window's live plots share: fixed axes, legible ticks, the widget's palette, axes
cached as pixmaps, and ranges that change in steps.

pyqtgraph replays each axis, with the grid lines it draws across the plot, from a QPicture on
every repaint: ≈3 ms per axis, most of a chart's repaint (docs/performance.md, "Window").
Cached in device coordinates, an axis is drawn again only when its range, size or pens change.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtGui import QFont, QFontMetrics, QPalette
from PySide6.QtWidgets import QGraphicsItem, QWidget

TICK_POINT_SIZE = 11  # read from across a room
AXES = ("left", "bottom")
STEPS = (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8)  # the lengths an axis takes, × 10ⁿ


def live_plot(plot: Any) -> None:
    """A plot the operator looks at, never drags: no mouse, menu or auto-range button."""
    plot.setMouseEnabled(x=False, y=False)
    plot.setMenuEnabled(False)
    plot.hideButtons()
    font = QFont()
    font.setPointSize(TICK_POINT_SIZE)
    for name in AXES:
        axis = plot.getAxis(name)
        axis.setTickFont(font)
        axis.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


def follow_palette(widget: QWidget, view: Any, plots: list[Any]) -> None:
    """The plots in the widget's palette: its base behind, its text on the axes."""
    base = widget.palette().color(QPalette.ColorRole.Base)
    text = widget.palette().color(QPalette.ColorRole.Text)
    view.setBackground(base)
    for plot in plots:
        for name in AXES:
            plot.getAxis(name).setTextPen(text)
            plot.getAxis(name).setPen(text)


def nice_ceiling(value: float) -> float:
    """The smallest of STEPS × 10ⁿ (n ≥ -1) that holds `value`: 0.1, 0.12, … 0.8, 1, 1.2, …
    An axis set to it changes only when the data crosses a step, not with every new value
    (a changed range renders the axis and its grid again: ≈2 ms a plot)."""
    scale = 0.1
    while True:
        for step in STEPS:
            if value <= step * scale:
                return round(step * scale, 9)
        scale *= 10


def tick_step(span: float, most: int) -> float:
    """The smallest 1, 2, 5 × 10ⁿ step that cuts `span` into at most `most` parts (such steps
    print exactly: pyqtgraph rounds 0.25 to "0.2")."""
    scale = 10.0 ** (math.floor(math.log10(span)) - 2)
    while True:
        for step in (1, 2, 5):
            if span / (step * scale) <= most + 1e-9:
                return round(step * scale, 9)
        scale *= 10


def padded_range(
    span: float, length_px: float, start_px: float, end_px: float
) -> tuple[float, float]:
    """The range that shows 0 to `span` on an axis `length_px` long with `start_px` and
    `end_px` to spare at its ends: room for half a number there, since pyqtgraph draws none that
    reaches past its axis. The room takes at most half the axis."""
    per_px = span / max(length_px - start_px - end_px, length_px / 2, 1.0)
    return -start_px * per_px, span + end_px * per_px


def fit_ticks(axis: Any, span: float, length_px: float, label_px: float, zero: bool) -> None:
    """Numbered ticks on `axis` from 0 to `span`, as many as `length_px` holds at `label_px`
    each, and a grid line halfway between two. pyqtgraph's own choice crowded "0.20.40.60.8"
    into a 110 px wide plot and stacked "0.6" over "0.4" on one 30 px high; its labels also
    round a step's value ("0.2" for 0.25). Without `zero` the 0 is not numbered: on a short
    plot it would sit on the next number."""
    major = min(tick_step(span, max(1, int(length_px // label_px))), span)
    count = int(span / major + 1e-9)
    numbers = [round(k * major, 9) for k in range(0 if zero else 1, count + 1)]
    halves = [round((k + 0.5) * major, 9) for k in range(count)]
    axis.setTicks([[(v, f"{v:g}") for v in numbers], [(v, "") for v in halves]])


def fit_value_axis(plot: Any, top: float, zero: bool = False) -> None:
    """A live plot's value axis from 0 to `top`: the range with room for half a number at
    the top (and at the foot when 0 is numbered: one past the axis's edge is not drawn, and
    at 200 % a plot can be 25 px high) and as many numbered ticks as its height holds."""
    axis = plot.getAxis("left")
    line = QFontMetrics(axis.style["tickFont"]).height()
    height = max(plot.getViewBox().height(), 1.0)
    foot = line / 2 + 1 if zero else 0.04 * height
    plot.setYRange(*padded_range(top, height, foot, line / 2 + 1), padding=0)
    fit_ticks(axis, top, height, 2 * line, zero=zero)
