"""The live port grid: one cell per port of the pool, coloured by state, with a legend.

A view: it is handed `PortInfo` snapshots (a pure value type) and asks for anything else
(memory of a pid) through an injected provider; it never scans, binds or signals anything.

Over 400 lines: the grid, its cells and their painting, tooltip and menu are one view.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Property, QEvent, QPoint, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QContextMenuEvent,
    QFont,
    QFontMetrics,
    QGuiApplication,
    QPainter,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMenu,
    QScrollArea,
    QSizePolicy,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from app.core.model import PortInfo, PortState
from app.ui.widgets.incident_dialog import add_incident_menu
from app.ui.widgets.palette import (
    INCIDENT_BADGE,
    LEGEND_ORDER,
    SWATCHES,
    Swatch,
    company_tag,
    swatch_for,
)
from app.ui.widgets.pixmaps import PixmapCache

COLUMNS = 8
CELL_SPACING = 4  # between cells, both ways
CELL_MIN_WIDTH = 56  # a port number fits; eight of them fit a 1000-pixel-wide window
CELL_MAX_HEIGHT = 84
CELL_MIN_HEIGHT = 48
MAX_VISIBLE_ROWS = 5
OUTER_SPACING = 6
DetailProvider = Callable[[int], dict[str, Any]]


def short_name(service_name: str | None) -> str:
    """'AddToCartService' -> 'AddToCart': the suffix every service has is noise in a cell."""
    if not service_name:
        return ""
    trimmed = service_name.removesuffix("Service")
    return trimmed or service_name


def camel_words(text: str) -> list[str]:
    """'OrderConfirmation' -> ['Order', 'Confirmation']: where a long name may wrap in a cell."""
    return re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+|[^A-Za-z0-9]+|[A-Z]", text) or [text]


def wrap_words(
    words: list[str],
    width: int,
    advance: Callable[[str], int],
    max_lines: int,
    elide: Callable[[str, int], str],
) -> list[str]:
    """Greedy wrap of word pieces (joined without spaces) into at most `max_lines` lines; the
    last line is elided if the rest does not fit."""
    lines: list[str] = []
    current = ""
    for i, word in enumerate(words):
        if not current or advance(current + word) <= width:
            current += word
            continue
        if len(lines) == max_lines - 1:
            current += "".join(words[i:])
            break
        lines.append(current)
        current = word
    lines.append(current)
    return [elide(line, width) for line in lines[:max_lines]]


def format_uptime(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def describe(info: PortInfo, extra: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """The facts about one port, as label/value rows (tooltip and "copy details")."""
    state = info.state.value + (" (essential)" if info.essential else "")
    rows = [("Port", str(info.port)), ("State", state)]
    if info.trouble:
        rows.append(("Problem", info.trouble))
    if info.service_name or info.key:
        rows.append(("Service", info.service_name or info.key or ""))
    if info.company:
        rows.append(("Company", info.company))
    if info.key:
        rows.append(("Key", info.key))
    if info.pid:
        rows.append(("PID", str(info.pid)))
    if info.process_name and not info.key:
        rows.append(("Process", info.process_name))
    if info.started_at and not info.gone:  # a dead process has no uptime
        rows.append(("Uptime", format_uptime(time.time() - info.started_at)))
    extra = extra or {}
    if extra.get("rss_mb") is not None:
        mem = f"{extra['rss_mb']:.1f} MiB RSS"
        if extra.get("uss_mb") is not None:
            mem += f", {extra['uss_mb']:.1f} MiB USS"
        rows.append(("Memory", mem))
    if info.reserved_for:
        rows.append(("Reserved for", info.reserved_for))
    if info.grown:
        rows.append(("Pool", "a block the pool grew into (given back once unused for a minute)"))
    if info.journey_id:
        rows.append(("Journey", info.journey_id))
    if info.state is PortState.FOREIGN:
        rows.append(("Note", "not ours: skipped by allocation, never stopped"))
    elif info.state is PortState.STALE:
        dead = "its process has exited; " if info.gone else ""
        rows.append(("Note", f"{dead}released by the next sweep (Sweep, in this cell's menu)"))
    return rows


@dataclass(frozen=True)
class CellLook:
    port: int
    swatch: Swatch
    state_text: str
    label: str
    width: int
    height: int
    dpr: float
    font: str  # QFont.toString(): family, size, weight…
    # The narrowest cell's width in the grid (cells differ by a pixel where the columns do not
    # divide the width): whether the state word fits is decided on it, so it shows in every
    # cell of a row or in none, never in every other one.
    fit_width: int = 0
    tag: str = ""  # the company's tag colour (its service, or its reserved port)
    reserved: bool = False  # a port reserved for that company, free now
    grown: bool = False  # a port of a block the pool grew into
    incident: bool = False  # an incident is in effect in its service


# A switch changes 40 cells at once, three times (stopping, free, starting): rendering each
# cell's text anew cost ≈0.5 ms, 20 ms a frame. ≈ 50 KB each at 1920×1080: ≤ 16 MB.
CELL_PIXMAPS: PixmapCache[CellLook] = PixmapCache(limit=8 * 40)


FRAME, TEXT_LEFT, TEXT_RIGHT = 1.5, 7, 6  # the box's inset, then the text's within it


def cell_fonts(look: CellLook) -> tuple[QFont, QFont, QFont]:
    """The cell's text fonts: the service name's (the widget's), the port number's (bold, a
    little larger) and the state word's (a little smaller)."""
    base = QFont()
    base.fromString(look.font)
    bold = QFont(base)
    bold.setBold(True)
    bold.setPointSizeF(base.pointSizeF() + 0.5)
    small = QFont(base)
    small.setPointSizeF(max(7.0, base.pointSizeF() - 1.0))
    return base, bold, small


def state_word_fits(look: CellLook) -> bool:
    """Whether the state word fits beside the port number without touching it; in a narrower
    cell the colour (and the tooltip) says it. Decided on the grid's narrowest cell."""
    _base, bold, small = cell_fonts(look)
    width = min(look.width, look.fit_width or look.width) - 2 * FRAME - TEXT_LEFT - TEXT_RIGHT
    port_w = QFontMetrics(bold).horizontalAdvance(str(look.port))
    return port_w + 6 + QFontMetrics(small).horizontalAdvance(look.state_text) <= width


def render_cell(look: CellLook) -> QPixmap:
    """The cell's box, port number, state word and wrapped service name."""
    pixmap = QPixmap(round(look.width * look.dpr), round(look.height * look.dpr))
    pixmap.setDevicePixelRatio(look.dpr)
    pixmap.fill(Qt.GlobalColor.transparent)
    base, bold, small = cell_fonts(look)
    p = QPainter(pixmap)
    sw = look.swatch
    rect = QRectF(0, 0, look.width, look.height).adjusted(FRAME, FRAME, -FRAME, -FRAME)
    paint_swatch(p, rect, sw, radius=6, pen=1.5, hatch_alpha=40)
    text_rect = rect.adjusted(TEXT_LEFT, 4, -TEXT_RIGHT, -4)
    p.setPen(QColor(sw.text))
    top_left = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop
    p.setFont(bold)
    line_h = p.fontMetrics().height()
    p.drawText(text_rect, top_left, str(look.port))
    p.setFont(small)
    if state_word_fits(look) and not look.incident:  # an incident's badge takes its corner
        p.drawText(
            text_rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop, look.state_text
        )
    if look.label:
        p.setFont(base)
        below = text_rect.adjusted(0, line_h + 1, 0, 0)
        metrics = p.fontMetrics()
        max_lines = max(1, int(below.height()) // metrics.height())
        lines = wrap_words(
            camel_words(look.label),
            int(below.width()),
            metrics.horizontalAdvance,
            max_lines,
            lambda t, w: metrics.elidedText(t, Qt.TextElideMode.ElideRight, w),
        )
        p.drawText(below, top_left, "\n".join(lines))
    _paint_marks(p, rect, look)
    p.end()
    return pixmap


def _paint_marks(p: QPainter, rect: QRectF, look: CellLook) -> None:
    """The company's band along the bottom (a reserved free port: a dashed frame in its
    colour too) and a small "+" in the corner of a grown port: marks besides the state's
    colour, never over the text."""
    if look.tag:
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(look.tag))
        band = QRectF(rect.left() + 3, rect.bottom() - 6, rect.width() - 6, 4)
        p.drawRoundedRect(band, 2, 2)
    if look.tag and look.reserved:
        pen = QPen(QColor(look.tag), 2.0, Qt.PenStyle.DashLine)
        p.setPen(pen)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRoundedRect(rect.adjusted(2, 2, -2, -2), 5, 5)
    if look.grown:
        p.setPen(QColor(look.swatch.text))
        corner = QRectF(rect.right() - 14, rect.bottom() - 18, 12, 12)
        p.drawText(corner, Qt.AlignmentFlag.AlignCenter, "+")
    if look.incident:  # a bolt on an amber disc, top right, clear of the text: seen across a room
        disc = QRectF(rect.right() - 20, rect.top() + 3, 17, 17)
        p.setPen(QPen(QColor("#7a4a00"), 1.0))
        p.setBrush(QColor(INCIDENT_BADGE))
        p.drawEllipse(disc)
        p.setPen(QColor("#1a1a1a"))
        p.drawText(disc, Qt.AlignmentFlag.AlignCenter, "⚡")


class PortCell(QWidget):
    """One port. Exposes `state`, `port`, `serviceKey` and `essential` as Qt properties."""

    stateChanged = Signal(str)
    stopRequested = Signal(str)  # service key
    restartRequested = Signal(str)  # service key
    healthRequested = Signal(int)  # port
    incidentRequested = Signal(str, str)  # service key, incident kind
    sweepRequested = Signal()  # a stale cell: sweep the pool (stopping it is not the remedy)

    def __init__(self, info: PortInfo, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._info = info
        self.incident = ""  # the incidents in effect in its service, in words
        self.tag = ""  # the company's tag colour, set by the grid
        self._detail_provider: DetailProvider | None = None
        self.menu: QMenu | None = None
        self.setObjectName(f"portCell{info.port}")
        self.setMinimumSize(QSize(CELL_MIN_WIDTH, CELL_MIN_HEIGHT))
        self.setMaximumHeight(CELL_MAX_HEIGHT)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, False)

    # -- Qt properties for tests and automation -----------------------------------------------
    def _get_state(self) -> str:
        return self._info.state.value

    def _get_port(self) -> int:
        return self._info.port

    def _get_key(self) -> str:
        return self._info.key or ""

    def _get_essential(self) -> bool:
        return self._info.essential

    state = Property(str, _get_state, notify=stateChanged)
    port = Property(int, _get_port, constant=True)
    serviceKey = Property(str, _get_key, notify=stateChanged)
    essential = Property(bool, _get_essential, notify=stateChanged)

    @property
    def info(self) -> PortInfo:
        return self._info

    def set_info(self, info: PortInfo, tag: str = "") -> None:
        if info == self._info and tag == self.tag:
            return
        self.tag = tag
        changed = (info.state, info.key, info.essential, info.trouble) != (
            self._info.state,
            self._info.key,
            self._info.essential,
            self._info.trouble,
        )
        self._info = info
        self.setAccessibleName(f"port {info.port}: {info.state.value} {info.key or ''}".strip())
        self.update()
        if changed:
            self.stateChanged.emit(info.state.value)

    def set_detail_provider(self, provider: DetailProvider | None) -> None:
        self._detail_provider = provider

    def set_incident(self, text: str) -> None:
        if text != self.incident:
            self.incident = text
            self.update()

    def details(self) -> list[tuple[str, str]]:
        extra = None
        if self._detail_provider is not None and self._info.pid:
            try:
                extra = self._detail_provider(self._info.pid)
            except Exception:  # a tooltip must never raise
                extra = None
        rows = describe(self._info, extra)
        return [*rows, ("Incident", self.incident)] if self.incident else rows

    def details_text(self) -> str:
        return "\n".join(f"{k}: {v}" for k, v in self.details())

    # -- painting -----------------------------------------------------------------------------
    def paintEvent(self, _event: object) -> None:
        look = self._look()
        pixmap = CELL_PIXMAPS.get(look)
        if pixmap is None:
            pixmap = render_cell(look)
            CELL_PIXMAPS.put(look, pixmap)
        p = QPainter(self)
        p.drawPixmap(0, 0, pixmap)
        if self.hasFocus():
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            p.setPen(QPen(QColor("#228be6"), 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(QRectF(self.rect()).adjusted(1.5, 1.5, -1.5, -1.5), 6, 6)
        p.end()

    def _narrowest_width(self) -> int:
        """The narrowest cell of the grid's row: the box's width shared out by its columns."""
        box = self.parentWidget()
        grid = box.layout() if box is not None else None
        if box is None or not isinstance(grid, QGridLayout):
            return self.width()
        columns = max(1, grid.columnCount())  # fewer than COLUMNS in a small pool
        return (box.width() - (columns - 1) * CELL_SPACING) // columns

    def _look(self) -> CellLook:
        """Everything the cell's pixels depend on."""
        info = self._info
        state_text = "essential" if info.essential and info.state is PortState.ALLOCATED else ""
        if info.trouble:  # the cell says what went wrong, in its first word
            state_text = info.trouble.split(" (")[0]
        label = short_name(info.service_name) or (info.key or "")
        if not label and info.state is PortState.FOREIGN:
            label = info.process_name or "foreign"
        return CellLook(
            port=info.port,
            swatch=swatch_for(info.state.value, info.essential),
            state_text=state_text or info.state.value,
            label=label,
            width=self.width(),
            fit_width=self._narrowest_width(),
            height=self.height(),
            dpr=self.devicePixelRatioF(),
            font=self.font().toString(),
            tag=self.tag,
            reserved=bool(info.reserved_for) and not info.key,
            grown=info.grown,
            incident=bool(self.incident),
        )

    # -- tooltip and context menu ---------------------------------------------------------------
    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            rows = "".join(
                f"<tr><td><b>{k}</b>&nbsp;</td><td>{_html(v)}</td></tr>" for k, v in self.details()
            )
            QToolTip.showText(event.globalPos(), f"<table>{rows}</table>", self)  # type: ignore[attr-defined]
            return True
        return super().event(event)

    def build_menu(self) -> QMenu:
        """The context menu (built fresh each time; also used by tests)."""
        info = self._info
        menu = QMenu(self)
        ours = bool(info.key) and info.state in (
            PortState.ALLOCATED,
            PortState.STARTING,
            PortState.STALE,
        )
        if info.state is PortState.STALE:
            # Nothing serves here: a sweep releases the port (and stops a process of an
            # earlier panel that still holds it), so the cell offers that, not a stop.
            sweep = menu.addAction("Sweep")
            sweep.setObjectName("sweepAction")
            sweep.setToolTip("Release every stale port of the pool (Services ▸ Sweep stale now)")
            sweep.triggered.connect(self.sweepRequested.emit)
        stop = menu.addAction("Stop this service")
        stop.setObjectName("stopServiceAction")
        stop.setVisible(info.state is not PortState.STALE)
        stop.setEnabled(ours and info.service_name is not None)
        restart = menu.addAction("Restart this service")
        restart.setObjectName("restartServiceAction")
        restart.setEnabled(info.state in (PortState.ALLOCATED, PortState.STALE) and ours)
        if info.key:
            key = info.key
            stop.triggered.connect(lambda: self.stopRequested.emit(key))
            restart.triggered.connect(lambda: self.restartRequested.emit(key))
        add_incident_menu(
            menu, info.key, info.state is PortState.ALLOCATED and ours, self.incidentRequested.emit
        )
        health = menu.addAction("Open its /health")
        health.setObjectName("openHealthAction")
        health.setEnabled(info.state is PortState.ALLOCATED)
        health.triggered.connect(lambda: self.healthRequested.emit(info.port))
        copy = menu.addAction("Copy details")
        copy.setObjectName("copyDetailsAction")
        copy.triggered.connect(self.copy_details)
        return menu

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        self.show_menu(event.globalPos())

    def show_menu(self, global_pos: QPoint) -> None:
        # popup(), not exec(): no nested event loop while the asyncio loop runs on Qt's.
        if self.menu is not None:
            self.menu.deleteLater()
        self.menu = self.build_menu()
        self.menu.popup(global_pos)

    def copy_details(self) -> None:
        QGuiApplication.clipboard().setText(self.details_text())


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Legend(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("portLegend")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(12)
        for key in LEGEND_ORDER:
            sw = SWATCHES[key]
            chip = _Chip(key)
            chip.setToolTip(f"{sw.label}: {sw.meaning}")
            text = QLabel(sw.label)
            text.setToolTip(chip.toolTip())
            pair = QHBoxLayout()
            pair.setSpacing(4)
            pair.addWidget(chip)
            pair.addWidget(text)
            row.addLayout(pair)
        row.addStretch(1)


def paint_swatch(
    p: QPainter, rect: QRectF, sw: Any, radius: float, pen: float, hatch_alpha: int
) -> None:
    """A state's rounded box: fill, border, and the hatch that tells stale/foreign apart
    without colour."""
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(QPen(QColor(sw.border), pen))
    p.setBrush(QColor(sw.fill))
    p.drawRoundedRect(rect, radius, radius)
    if sw.pattern is not None:
        hatch = QColor(sw.text)
        hatch.setAlpha(hatch_alpha)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QBrush(hatch, sw.pattern))
        p.drawRoundedRect(rect, radius, radius)


class _Chip(QWidget):
    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self.setFixedSize(16, 16)

    def paintEvent(self, _event: object) -> None:
        p = QPainter(self)
        rect = QRectF(self.rect()).adjusted(1, 1, -1, -1)
        paint_swatch(p, rect, SWATCHES[self.key], radius=3, pen=1.2, hatch_alpha=60)
        p.end()


def count_states(ports: Sequence[PortInfo]) -> dict[str, int]:
    """Ports per state, plus the allocated ones that are essential."""
    out = {state.value: 0 for state in PortState}
    out["essential"] = 0
    for info in ports:
        out[info.state.value] += 1
        if info.essential and info.state is PortState.ALLOCATED:
            out["essential"] += 1
    return out


class PortCounts(QLabel):
    """The status bar's count per state present, each after its legend colour. States with
    no port are left out (the legend names them all): a small window's status bar keeps room
    for its messages."""

    ALWAYS = frozenset({"free", "allocated"})

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("countsLabel")
        self.setTextFormat(Qt.TextFormat.RichText)

    def bind(self, source: Any) -> None:
        source.portsChanged.connect(self.set_ports)

    def set_ports(self, ports: Sequence[PortInfo]) -> None:
        counts = count_states(ports)
        parts = []
        for key in LEGEND_ORDER:
            n = counts.get(key, 0)
            if key == "essential" or not (n or key in self.ALWAYS):
                continue
            extra = (
                f" ({counts['essential']} essential)"
                if key == "allocated" and counts["essential"]
                else ""
            )
            sw = SWATCHES[key]
            # A hollow square in the state's border colour on its fill: the light "free" fill
            # alone vanished on the status bar.
            square = f"<span style='background-color:{sw.fill}; color:{sw.border}'>□</span>"
            parts.append(f"{square} {key} {n}{extra}")
        self.setText("&nbsp;&nbsp;".join(parts))
        self.setToolTip("Ports by state; the grid's legend says what each state means")


class CompanyLegend(QWidget):
    """The companies on the grid, each with its tag colour (reserved ports say so); hidden
    while no company has services, its line kept free: showing and hiding it at every switch
    resized the 40 cells above it twice (each then rendered anew) and, in presentation mode
    entered with an empty pool, left the last row of cells behind a scroll bar."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("companyLegend")
        self.label = QLabel()
        self.label.setObjectName("companyLegendLabel")
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setWordWrap(True)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.label, 1)
        self.companies: list[str] = []
        self.label.setText("Companies:")  # one line's height, kept while hidden
        policy = self.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.setSizePolicy(policy)
        self.hide()

    def set_companies(self, companies: list[tuple[str, str, bool]]) -> None:
        names = [c for c, _, _ in companies]
        if names == self.companies and self.isVisible() == bool(companies):
            return
        self.companies = names
        parts = [
            f"<span style='color:{colour}'>■</span> {_html(name)}"
            + (" (reserved ports)" if reserved else "")
            for name, colour, reserved in companies
        ]
        self.label.setText("Companies: " + "&nbsp;&nbsp;".join(parts))
        self.setVisible(bool(companies))


class PortGrid(QWidget):
    """The pool, `COLUMNS` cells a row (8×5 for 40 ports; more rows for larger pools)."""

    stopServiceRequested = Signal(str)
    restartServiceRequested = Signal(str)
    openHealthRequested = Signal(int)
    incidentRequested = Signal(str, str)  # service key, incident kind
    sweepRequested = Signal()  # a stale cell: sweep the pool (stopping it is not the remedy)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("portGrid")
        self._cells: dict[int, PortCell] = {}
        self._detail_provider: DetailProvider | None = None
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(OUTER_SPACING)
        self.title = QLabel("Port pool")
        self.title.setObjectName("portGridTitle")
        title_font = self.title.font()
        title_font.setBold(True)
        self.title.setFont(title_font)
        outer.addWidget(self.title)
        self._cells_box = QWidget()
        self._layout = QGridLayout(self._cells_box)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(CELL_SPACING)
        self._layout.setAlignment(Qt.AlignmentFlag.AlignTop)
        scroll = QScrollArea()  # a pool of hundreds of ports scrolls; 40 fit without
        scroll.setObjectName("portGridScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self._cells_box)
        # Never narrower than a row of cells: without a horizontal scroll bar, the last column
        # would be cut off instead.
        scroll.setMinimumWidth(COLUMNS * (CELL_MIN_WIDTH + self._layout.spacing()))
        outer.addWidget(scroll, 1)
        self.legend = Legend()
        outer.addWidget(self.legend)
        self.companyLegend = CompanyLegend()
        outer.addWidget(self.companyLegend)
        self._companies: dict[str, str] = {}  # company -> its tag colour, in order of arrival
        self._incidents: dict[str, str] = {}  # service key -> its incidents, in words

    def preferred_height(self, ports: int) -> int:
        """Title, rows of full-height cells (at most MAX_VISIBLE_ROWS; more scroll) and legend."""
        rows = min(-(-ports // COLUMNS), MAX_VISIBLE_ROWS)
        spacing = self._layout.spacing()
        cells = rows * (CELL_MAX_HEIGHT + spacing)
        extra = self.title.sizeHint().height() + self.legend.sizeHint().height()
        return cells + extra + 3 * OUTER_SPACING + 40  # the group box's frame, title

    def compact_height(self, ports: int) -> int:
        """Every row of cells at their smallest (no scrolling for up to MAX_VISIBLE_ROWS
        rows): presentation mode's grid on a 1280×720 screen."""
        rows = min(-(-ports // COLUMNS), MAX_VISIBLE_ROWS)
        cells = rows * (CELL_MIN_HEIGHT + self._layout.spacing())
        extra = self.title.sizeHint().height() + self.legend.sizeHint().height()
        extra += self.companyLegend.sizeHint().height()  # its line stays, shown or not
        return cells + extra + 3 * OUTER_SPACING + 40  # the group box's frame, title

    def bind(self, source: Any) -> None:
        """Show `source.portsChanged` (the window's stage: the cell model's cells, in step with
        the phases)."""
        source.portsChanged.connect(self.set_ports)

    # -- data ----------------------------------------------------------------------------------
    def set_ports(self, ports: Sequence[PortInfo]) -> None:
        if [p.port for p in ports] != list(self._cells):
            self._rebuild([p.port for p in ports], ports)
        present = self._tag_companies(ports)
        for info in ports:
            company = info.company if info.key and not info.essential else info.reserved_for
            tag = self._companies.get(company or "", "") if company in present else ""
            self._cells[info.port].set_info(info, tag)
            self._cells[info.port].set_incident(self._incidents.get(info.key or "", ""))
        reserved = {p.reserved_for for p in ports if p.reserved_for}
        self.companyLegend.set_companies(
            [(c, self._companies[c], c in reserved) for c in self._companies if c in present]
        )

    def _tag_companies(self, ports: Sequence[PortInfo]) -> set[str]:
        """The companies on the grid now (customer services and reservations); each keeps
        its colour for the session."""
        present: set[str] = set()
        for info in ports:
            for company in (
                info.company if info.key and not info.essential else None,
                info.reserved_for,
            ):
                if company:
                    present.add(company)
                    if company not in self._companies:
                        self._companies[company] = company_tag(len(self._companies))
        return present

    def set_incidents(self, by_key: dict[str, str]) -> None:
        """The incidents in effect, by service key: a badge on the cell, a line in its tip."""
        self._incidents = dict(by_key)
        for cell in self._cells.values():
            cell.set_incident(by_key.get(cell.info.key or "", ""))

    def company_tags(self) -> dict[str, str]:
        return dict(self._companies)

    def _rebuild(self, port_numbers: list[int], ports: Sequence[PortInfo]) -> None:
        for cell in self._cells.values():
            self._layout.removeWidget(cell)
            cell.deleteLater()
        self._cells = {}
        for index, info in enumerate(ports):
            cell = PortCell(info, self._cells_box)
            cell.set_detail_provider(self._detail_provider)
            cell.stopRequested.connect(self.stopServiceRequested)
            cell.restartRequested.connect(self.restartServiceRequested)
            cell.healthRequested.connect(self.openHealthRequested)
            cell.incidentRequested.connect(self.incidentRequested)
            cell.sweepRequested.connect(self.sweepRequested)
            cell.set_incident(self._incidents.get(info.key or "", ""))
            self._layout.addWidget(cell, index // COLUMNS, index % COLUMNS)
            self._cells[info.port] = cell
        if port_numbers:
            lo, hi = port_numbers[0], port_numbers[-1]
            self.title.setText(f"Port pool {lo}–{hi} · {len(port_numbers)} ports")

    def set_detail_provider(self, provider: DetailProvider | None) -> None:
        self._detail_provider = provider
        for cell in self._cells.values():
            cell.set_detail_provider(provider)

    # -- queries (tests, status bar) -----------------------------------------------------------
    def cell(self, port: int) -> PortCell:
        return self._cells[port]

    def cells(self) -> list[PortCell]:
        return list(self._cells.values())

    def states(self) -> dict[int, str]:
        return {port: cell.info.state.value for port, cell in self._cells.items()}

    def counts(self) -> dict[str, int]:
        return count_states(self.ports())

    def ports(self) -> list[PortInfo]:
        return [cell.info for cell in self._cells.values()]
