"""The journey map: the chain of steps as connected nodes, each with its service, port, state
and live counts (ok, failed, error rate, p50), the funnel of the journey at a glance.

A view (docs/architecture.md, "Parts and their rooms"): it is handed port cells, traffic
statuses and run results (read by attribute, never imported from the running core) and paints
them with QPainter. Counts come from continuous traffic while it has any, else from the last
run's customers. A failing step is drawn red with a thick border *and* a "⚠ FAILING" marker:
never colour alone.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QContextMenuEvent,
    QFont,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
    QPixmap,
    QPolygonF,
    QResizeEvent,
    QShowEvent,
)
from PySide6.QtWidgets import QMenu, QSizePolicy, QWidget

from app.core.model import JourneySummary
from app.core.traffic_model import TrafficStatus
from app.ui.widgets.incident_dialog import add_incident_menu
from app.ui.widgets.palette import INCIDENT_BADGE, Swatch, failing_colours, swatch_for
from app.ui.widgets.pixmaps import PixmapCache

FAILING_ERROR_RATE = 0.05  # a step with ≥ 5 % failed hops is flagged
NODE_W, NODE_H, GAP = 230.0, 150.0, 44.0  # room for 14 pt text; the arrow lives in the gap
MARGIN = 12.0
MIN_SCALE = 0.75  # 11 pt lines at ≥ 8 pt; below this the map scrolls instead of shrinking
# Presentation mode: a 14-step chain in the quarter of a 1280×720 screen. Below DENSE_SCALE a
# node keeps two lines (step, counts) at DENSE_POINT_SIZE: every node on screen, none cut.
DENSE_MIN_SCALE = 0.34
DENSE_SCALE = 0.55
DENSE_POINT_SIZE = 9.0
PAD = 3  # a failing node's 5 px border reaches this far beyond its rectangle


@dataclass(frozen=True)
class MapNode:
    """What one node shows."""

    step_name: str
    service_name: str
    port: int | None = None
    state: str = "free"  # the port's state (palette key); "free" while no service runs
    essential: bool = False
    ok: int = 0
    failed: int = 0  # failed *here*
    not_reached: int = 0  # journeys that failed upstream: this step was never called
    p50_ms: float | None = None
    trouble: str = ""  # what is wrong with its service ("exited (code -9)"), from the cell
    key: str | None = None  # its service's key: what a restart asks for
    incident: str = ""  # the incidents in effect in its service, in words

    @property
    def error_rate(self) -> float:
        total = self.ok + self.failed
        return self.failed / total if total else 0.0

    @property
    def failing(self) -> bool:
        if self.state == "stale" or self.trouble:
            return True
        return self.failed > 0 and self.error_rate >= FAILING_ERROR_RATE


@dataclass(frozen=True)
class NodeLook:
    """Everything a node's pixels depend on."""

    node: MapNode
    width: float
    height: float
    dpr: float
    font: str  # QFont.toString()
    swatch: Swatch  # the scheme's colours for its state (light or dark)


# A switch repaints the map with every cell change; each node shaped its five lines anew
# (≈0.15 ms a node, 6–9 ms for 40), though most nodes look as they did a frame before.
NODE_PIXMAPS: PixmapCache[NodeLook] = PixmapCache(limit=4 * 40)


class JourneyMap(QWidget):
    restartRequested = Signal(str)  # the service key of a node (its menu)
    incidentRequested = Signal(str, str)  # service key, incident kind (its menu)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.menu: QMenu | None = None
        self.setObjectName("journeyMap")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(int(NODE_H * MIN_SCALE + 2 * MARGIN))
        self._ports: list[Any] = []
        self._run: Any = None  # the last RunResult with a simulation
        self._traffic: TrafficStatus | None = None
        self._journeys: list[JourneySummary] = []  # the resident journeys
        self.shown_journey: str | None = None  # the one to draw (None: the newest)
        self._nodes: list[MapNode] = []
        self._stale = False  # data arrived while hidden: nodes are built when next needed
        self._layout: tuple[tuple[int, int, int, float], list[QRectF]] | None = None
        self.source = ""  # "traffic" or "last run": where the counts come from
        self._incidents: dict[str, str] = {}  # service key -> its incidents, in words
        self.min_scale = MIN_SCALE

    def bind(self, source: Any) -> None:
        """Show `source`'s port cells (its cell model's, as the grid's), run results and traffic
        (the bridge's signals)."""
        source.portsChanged.connect(self.set_ports)
        source.runFinished.connect(self.set_run_result)
        source.trafficChanged.connect(self.set_traffic)
        source.journeysChanged.connect(self.set_journeys)

    # -- data ----------------------------------------------------------------------------------
    def set_ports(self, ports: list[Any]) -> None:
        self._ports = list(ports)
        self._rebuild()

    def ports(self) -> list[Any]:
        """The cells it was last given."""
        return list(self._ports)

    def set_run_result(self, result: Any) -> None:
        if getattr(result, "simulation", None) is not None:  # a failed run keeps the last chain
            self._run = result
            self._rebuild()

    def set_traffic(self, status: TrafficStatus) -> None:
        self._traffic = status
        self._rebuild()

    def set_journeys(self, journeys: list[JourneySummary]) -> None:
        self._journeys = list(journeys)
        if self.shown_journey not in {j.id for j in journeys}:
            self.shown_journey = None
        self._rebuild()

    def set_dense(self, dense: bool) -> None:
        """Presentation mode: shrink nodes (down to two lines) rather than scroll."""
        self.min_scale = DENSE_MIN_SCALE if dense else MIN_SCALE
        self._fit_height()
        self.update()

    def set_incidents(self, by_key: dict[str, str]) -> None:
        """The incidents in effect by service key: a badge and a line on their nodes."""
        self._incidents = dict(by_key)
        self._rebuild()

    def show_journey(self, journey_id: str | None) -> None:
        """Draw this resident journey (its chain, its traffic stream's counts)."""
        self.shown_journey = journey_id
        self._rebuild()

    def _selected(self) -> JourneySummary | None:
        found = [j for j in self._journeys if j.id == self.shown_journey]
        return found[0] if found else (self._journeys[-1] if self._journeys else None)

    def failing_steps(self) -> list[str]:
        return [n.step_name for n in self.nodes if n.failing]

    @property
    def nodes(self) -> list[MapNode]:
        if self._stale:
            self._build()
        return self._nodes

    def _rebuild(self) -> None:
        """Nodes now if the map is on screen; else once it is shown or read. Hidden behind
        another tab it was rebuilt on every port refresh and service event of a switch."""
        self._stale = True
        if self.isVisible():
            self._build()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._stale:
            self._build()

    def _build(self) -> None:
        self._stale = False
        chosen = self._selected()
        run, traffic = self._run, self._traffic
        if chosen is not None and len(self._journeys) > 1:
            # Several companies: this journey's chain, its own stream's counts, and the last
            # run's only if it was this journey's.
            traffic = chosen.traffic
            run = run if getattr(run, "journey_id", None) == chosen.id else None
        nodes = [
            replace(n, incident=self._incidents.get(n.key or "", ""))
            for n in build_nodes(run, traffic, self._ports, chosen)
        ]
        use_traffic = traffic is not None and bool(traffic.steps)
        self.source = "traffic" if use_traffic else ("last run" if run else "")
        who = f"{chosen.company} ({chosen.id}) · " if chosen is not None else ""
        self.setToolTip(f"{who}counts from {self.source}" if self.source else who.rstrip(" ·"))
        if nodes == self._nodes:
            return  # most port refreshes of a switch change no node: no repaint
        old, self._nodes = self._nodes, nodes
        self._fit_height()
        if len(old) != len(nodes):
            self.update()
            return
        # Only the nodes that changed (a switch changes a few at a time, starts being gated):
        # a whole repaint drew every node and arrow, 1–6 ms for 40 (bench/ui.py).
        rects = self.layout_rects()
        for rect, before, now in zip(rects, old, nodes, strict=True):
            if before != now:
                self.update(_painted(rect).toAlignedRect())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_height()

    def _fit_height(self) -> None:
        """Never shorter than the rows at the smallest readable scale: in a small window the
        map scrolls (its scroll area) rather than cutting a row of nodes off."""
        rects = self._rects(self.min_scale)
        needed = rects[-1].bottom() + MARGIN if rects else NODE_H * self.min_scale + 2 * MARGIN
        if int(needed) != self.minimumHeight():
            self.setMinimumHeight(int(needed))

    # -- a node's menu -------------------------------------------------------------------------
    def node_at(self, pos: QPoint) -> MapNode | None:
        for node, rect in zip(self.nodes, self.layout_rects(), strict=True):
            if rect.contains(QPointF(pos)):
                return node
        return None

    def build_menu(self, node: MapNode) -> QMenu:
        """A node's menu (built fresh each time; also used by tests)."""
        menu = QMenu(self)
        restart = menu.addAction(f"Restart {node.service_name}")
        restart.setObjectName("restartNodeAction")
        restart.setEnabled(node.key is not None and node.state in ("allocated", "stale"))
        if node.key is not None:
            key = node.key
            restart.triggered.connect(lambda: self.restartRequested.emit(key))
        add_incident_menu(menu, node.key, node.state == "allocated", self.incidentRequested.emit)
        return menu

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        node = self.node_at(event.pos())
        if node is None:
            return
        if self.menu is not None:
            self.menu.deleteLater()
        self.menu = self.build_menu(node)
        self.menu.popup(event.globalPos())  # popup(), not exec(): no nested event loop

    # -- painting ------------------------------------------------------------------------------
    def layout_rects(self) -> list[QRectF]:
        """One rectangle per node, left to right, wrapping onto further rows (a snake would
        read backwards); as large as fits the widget, down to MIN_SCALE. Kept until the size,
        the number of nodes or the smallest scale changes (the search tries up to 50 scales)."""
        key = (self.width(), self.height(), len(self.nodes), self.min_scale)
        if self._layout is None or self._layout[0] != key:
            self._layout = (key, self._fit_rects())
        return list(self._layout[1])

    def _fit_rects(self) -> list[QRectF]:
        scale = self.min_scale
        for step in range(50, int(self.min_scale * 50) - 1, -1):  # 1.0, 0.98, ... min_scale
            if self._fits(step / 50):
                scale = step / 50
                break
        return self._rects(scale)

    def _fits(self, scale: float) -> bool:
        rects = self._rects(scale)
        return not rects or rects[-1].bottom() + MARGIN <= self.height()

    def _rects(self, scale: float) -> list[QRectF]:
        w, h, gap = NODE_W * scale, NODE_H * scale, GAP * scale
        per_row = max(1, int((self.width() - 2 * MARGIN + gap) // (w + gap)))
        return [
            QRectF(MARGIN + (i % per_row) * (w + gap), MARGIN + (i // per_row) * (h + gap), w, h)
            for i in range(len(self.nodes))
        ]

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        exposed = QRectF(event.rect())
        p.fillRect(exposed, self.palette().color(QPalette.ColorRole.Base))
        if not self.nodes:
            self._paint_empty(p)
            return
        rects = self.layout_rects()
        for a, b in pairwise(rects):  # an arrow lies between its two nodes' rectangles
            if _painted(a).united(_painted(b)).intersects(exposed):
                self._paint_arrow(p, a, b)
        for node, rect in zip(self.nodes, rects, strict=True):
            if _painted(rect).intersects(exposed):
                self._paint_node(p, node, rect)

    def _paint_empty(self, p: QPainter) -> None:
        p.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
        p.drawText(
            self.rect(),
            Qt.AlignmentFlag.AlignCenter,
            "No journey yet: Run Journey draws its chain of services here.",
        )

    def _paint_arrow(self, p: QPainter, a: QRectF, b: QRectF) -> None:
        colour = self.palette().color(QPalette.ColorRole.Text)
        p.setPen(QPen(colour, 3))
        p.setBrush(colour)
        if abs(a.top() - b.top()) < 1:  # same row: straight arrow
            start, end = (
                QPointF(a.right() + 4, a.center().y()),
                QPointF(b.left() - 4, b.center().y()),
            )
        else:  # next row: down from the end of this row to the start of the next
            start, end = (
                QPointF(a.center().x(), a.bottom() + 4),
                QPointF(b.center().x(), b.top() - 4),
            )
        p.drawLine(start, end)
        direction = end - start
        length = max((direction.x() ** 2 + direction.y() ** 2) ** 0.5, 1.0)
        ux, uy = direction.x() / length, direction.y() / length
        head = QPolygonF(
            [
                end,
                end - QPointF(ux * 12 - uy * 7, uy * 12 + ux * 7),
                end - QPointF(ux * 12 + uy * 7, uy * 12 - ux * 7),
            ]
        )
        p.drawPolygon(head)

    def _paint_node(self, p: QPainter, node: MapNode, rect: QRectF) -> None:
        look = NodeLook(
            node=node,
            width=rect.width(),
            height=rect.height(),
            dpr=self.devicePixelRatioF(),
            font=self.font().toString(),
            swatch=swatch_for(node.state, node.essential),
        )
        pixmap = NODE_PIXMAPS.get(look)
        if pixmap is None:
            pixmap = render_node(look)
            NODE_PIXMAPS.put(look, pixmap)
        p.drawPixmap(QPointF(rect.x() - PAD, rect.y() - PAD), pixmap)


def _painted(rect: QRectF) -> QRectF:
    """What a node's drawing covers: its rectangle and the PAD its thick border reaches."""
    return rect.adjusted(-PAD - 1, -PAD - 1, PAD + 1, PAD + 1)


def render_node(look: NodeLook) -> QPixmap:
    """The node's box, its lines of text (fewer when dense) and its incident badge, on a
    transparent pixmap PAD larger than the node on every side."""
    node, dpr = look.node, look.dpr
    pixmap = QPixmap(round((look.width + 2 * PAD) * dpr), round((look.height + 2 * PAD) * dpr))
    pixmap.setDevicePixelRatio(dpr)
    pixmap.fill(Qt.GlobalColor.transparent)
    base = QFont()
    base.fromString(look.font)
    p = QPainter(pixmap)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    rect = QRectF(PAD, PAD, look.width, look.height)
    sw = look.swatch
    fill, text, border = QColor(sw.fill), QColor(sw.text), QColor(sw.border)
    width = 2.0
    if node.failing:  # colour *and* a thick border and a written marker
        fill, text, border = (QColor(c) for c in failing_colours())
        width = 5.0
    p.setPen(QPen(border, width))
    p.setBrush(fill)
    p.drawRoundedRect(rect, 10, 10)
    p.setPen(text)
    ratio = min(1.0, rect.width() / NODE_W)
    dense = ratio < DENSE_SCALE
    inner = rect.adjusted(6, 4, -6, -4) if dense else rect.adjusted(10, 6, -10, -6)
    if node.incident:  # the badge's corner stays clear of the text
        inner.setRight(inner.right() - 22 * ratio - 4)
    lines = node_lines(node)
    if dense:
        lines = [lines[0], f"✓{node.ok:,} ✗{node.failed:,}"]
    sizes = (14, 11, 11, 12, 12)
    y = inner.top()
    for i, line in enumerate(lines):
        font = QFont(base)
        size = sizes[min(i, len(sizes) - 1)] * ratio
        font.setPointSizeF(DENSE_POINT_SIZE if dense else size)
        font.setBold(i in (0, 3))
        p.setFont(font)
        line_h = p.fontMetrics().height()
        elided = p.fontMetrics().elidedText(line, Qt.TextElideMode.ElideRight, int(inner.width()))
        p.drawText(QRectF(inner.left(), y, inner.width(), line_h), elided)
        y += line_h + 2
    if node.incident:  # an amber badge at the top right, as on the port cell
        size = 22 * ratio
        disc = QRectF(rect.right() - size - 6, rect.top() + 6, size, size)
        p.setPen(QPen(QColor("#7a4a00"), 1.0))
        p.setBrush(QColor(INCIDENT_BADGE))
        p.drawEllipse(disc)
        p.setPen(QColor("#1a1a1a"))
        p.drawText(disc, Qt.AlignmentFlag.AlignCenter, "⚡")
    p.end()
    return pixmap


def node_lines(node: MapNode) -> list[str]:
    """The node's text, top to bottom: step, service, port and state, counts, rate and p50."""
    port = f":{node.port}" if node.port else "no port"
    state = f"⚠ {node.trouble}" if node.trouble else "⚠ FAILING" if node.failing else node.state
    if node.incident and not node.trouble:
        state = f"⚡ {node.incident}"
    p50 = f"p50 {node.p50_ms:,.0f} ms" if node.p50_ms is not None else "p50 —"
    skipped = f"   – {node.not_reached:,}" if node.not_reached else ""
    return [
        node.step_name,
        node.service_name,
        f"{port} · {state}",
        f"✓ {node.ok:,}   ✗ {node.failed:,}{skipped}",
        f"errors {node.error_rate:.0%} · {p50}",
    ]


def build_nodes(
    run: Any, traffic: TrafficStatus | None, ports: list[Any], journey: Any = None
) -> list[MapNode]:
    """The chain of `journey` (else of the last run, or of traffic), with counts from traffic
    when it has any."""
    chain = list(journey.steps) if journey is not None else _chain(run, traffic)
    company = journey.company if journey is not None else getattr(run, "company", "") or ""
    cells = {(c.service_name, c.company): c for c in ports if getattr(c, "service_name", None)}
    by_service = {c.service_name: c for c in ports if getattr(c, "service_name", None)}
    counts = _traffic_counts(traffic) or _run_counts(run)
    nodes = []
    for step, service in chain:
        cell = cells.get((service, company)) or by_service.get(service)
        ok, failed, not_reached, p50 = counts.get(step, (0, 0, 0, None))
        nodes.append(
            MapNode(
                step_name=step,
                service_name=service,
                port=cell.port if cell is not None else None,
                state=str(getattr(cell.state, "value", cell.state)) if cell is not None else "free",
                essential=bool(cell.essential) if cell is not None else False,
                ok=ok,
                failed=failed,
                not_reached=not_reached,
                p50_ms=p50,
                trouble=getattr(cell, "trouble", "") if cell is not None else "",
                key=getattr(cell, "key", None) if cell is not None else None,
            )
        )
    return nodes


def _chain(run: Any, traffic: TrafficStatus | None) -> list[tuple[str, str]]:
    sim = getattr(run, "simulation", None)
    if sim is not None and sim.customers:
        return [(s.step_name, s.service_name) for s in sim.customers[0].steps]
    if traffic is not None:
        return [(s.step_name, s.step_name) for s in traffic.steps]
    return []


Counts = dict[str, tuple[int, int, int, float | None]]  # ok, failed here, not reached, p50


def _traffic_counts(traffic: TrafficStatus | None) -> Counts:
    """Traffic counts each step's own failures, and apart from them the journeys that never
    reached it (an earlier step failed: each hop calls the next, docs/architecture.md)."""
    if traffic is None:
        return {}
    # A step no journey reached has no latency: its status says 0.0, the node shows none.
    return {
        s.step_name: (s.ok, s.failed, s.not_reached, s.p50_ms if s.ok or s.failed else None)
        for s in traffic.steps
    }


def _run_counts(run: Any) -> Counts:
    sim = getattr(run, "simulation", None)
    if sim is None:
        return {}
    per_step: dict[str, list[Any]] = {}
    for customer in sim.customers:
        for step in customer.steps:
            per_step.setdefault(step.step_name, []).append(step)
    out: Counts = {}
    for name, steps in per_step.items():
        latencies = [s.latency_ms for s in steps if s.latency_ms is not None]
        ok = sum(1 for s in steps if s.status == "ok")
        failed = sum(1 for s in steps if s.status == "failed")
        skipped = sum(1 for s in steps if s.status == "skipped")
        out[name] = (ok, failed, skipped, statistics.median(latencies) if latencies else None)
    return out
