"""The time ruler over a trace waterfall's bars: the header of the tree, whose timeline section
is painted as a ruler in ms (1, 2, 5 × 10ⁿ steps) instead of a title (docs/architecture.md,
"The window").

Being the tree's own header, the ruler sits exactly over the bars' column, follows its width
and scrolls with it. Bars and ticks map time to x through the same `track` and `x_at`, so a
bar that starts at 20 ms starts under the "20 ms" tick, to the pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import QHeaderView, QWidget

PAD_PX = 4  # the time axis starts and ends this far inside its column: bars and ticks alike
LABEL_GAP_PX = 14  # at least this much space between two tick labels
TICK_PX = 5  # the tick marks' length, at the ruler's bottom edge


@dataclass(frozen=True)
class Tick:
    ms: float
    label: str
    x: int  # in the header's (and the tree viewport's) coordinates


def track(cell: QRect) -> QRect:
    """The part of a timeline cell (or the ruler's section) that the time axis spans."""
    return cell.adjusted(PAD_PX, 0, -PAD_PX, 0)


def x_at(axis: QRect, fraction: float) -> int:
    """The x of `fraction` (0 … 1) of the time axis `axis` (a `track`)."""
    return axis.left() + int(fraction * axis.width())


def step_label(value_ms: float, step_ms: float) -> str:
    """ "20 ms", "0.5 ms", "1,000 ms": as many decimals as the step has."""
    decimals = max(0, -math.floor(math.log10(step_ms) + 1e-9))
    return f"{value_ms:,.{decimals}f} ms"


def nice_step(least: float) -> float:
    """The smallest 1, 2 or 5 × 10ⁿ that is at least `least` (> 0)."""
    scale = 10.0 ** math.floor(math.log10(least))
    return next(round(m * scale, 12) for m in (1, 2, 5, 10) if m * scale >= least * (1 - 1e-9))


def ruler_ticks(span_ms: float, axis: QRect, label_px: int) -> list[Tick]:
    """Ticks every 1, 2 or 5 × 10ⁿ ms over `span_ms`, as many as labels `label_px` wide fit."""
    if span_ms <= 0 or axis.width() <= 0:
        return []
    step = nice_step(span_ms * max(1, label_px) / axis.width())  # labels never overlap
    count = int(span_ms / step + 1e-9)
    values = [round(k * step, 12) for k in range(count + 1)]
    return [Tick(v, step_label(v, step), x_at(axis, v / span_ms)) for v in values]


class RulerHeader(QHeaderView):
    """The tree's horizontal header; section `column` is the ruler over `span_ms`."""

    def __init__(self, column: int, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.setObjectName("timeRuler")
        self.column = column
        self.span_ms = 0.0

    def set_span(self, span_ms: float) -> None:
        self.span_ms = max(0.0, span_ms)
        self.viewport().update()

    def axis(self) -> QRect:
        """The time axis in the header's coordinates (the tree viewport's x as well)."""
        left = self.sectionViewportPosition(self.column)
        return track(QRect(left, 0, self.sectionSize(self.column), self.height()))

    def ticks(self) -> list[Tick]:
        fm = QFontMetrics(self.font())
        widest = fm.horizontalAdvance(step_label(self.span_ms, 0.1 if self.span_ms < 10 else 1))
        return ruler_ticks(self.span_ms, self.axis(), widest + LABEL_GAP_PX)

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        # The labels over the tick marks, with room to breathe.
        return QSize(hint.width(), max(hint.height(), self.fontMetrics().height() + TICK_PX + 8))

    def paintSection(self, painter: QPainter, rect: QRect, logicalIndex: int) -> None:
        super().paintSection(painter, rect, logicalIndex)
        if logicalIndex != self.column or self.span_ms <= 0:
            return
        painter.save()
        painter.setClipRect(rect)
        painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        fm = QFontMetrics(self.font())
        bottom = rect.bottom()
        for tick in self.ticks():
            painter.drawLine(tick.x, bottom - TICK_PX, tick.x, bottom)
            width = fm.horizontalAdvance(tick.label)
            # Centred on its tick, kept inside the section (the first and last ones).
            left = min(max(tick.x - width // 2, rect.left() + 2), rect.right() - width - 2)
            text = QRect(left, rect.top(), width, rect.height() - TICK_PX - 1)
            painter.drawText(text, Qt.AlignmentFlag.AlignCenter, tick.label)
        painter.restore()
