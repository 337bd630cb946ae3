"""What the window's live plots share: fixed axes, legible ticks, the widget's palette, and
axes cached as pixmaps.

pyqtgraph replays each axis, with the grid lines it draws across the plot, from a QPicture on
every repaint: ≈3 ms per axis, most of a chart's repaint (docs/performance.md, "Window").
Cached in device coordinates, an axis is drawn again only when its range, size or pens change.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import QGraphicsItem, QWidget

TICK_POINT_SIZE = 11  # read from across a room
AXES = ("left", "bottom")


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
