"""The window's central widget: the banner, the editor column, the port grid, the run phases
and the bottom tabs, laid out in three splitters (docs/architecture.md, "The window").

It builds and places the views and binds each to the signals it shows; the window connects
their requests to its commands, and the layout module sizes and remembers the splitters.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.ui.banner import Banner
from app.ui.bridge import CoreBridge
from app.ui.stage import Stage
from app.ui.widgets.journey_editor import JourneyEditor
from app.ui.widgets.journey_map import JourneyMap
from app.ui.widgets.journeys_list import JourneysList, RunOptions
from app.ui.widgets.log import LogView
from app.ui.widgets.phase_timeline import PhaseTimeline
from app.ui.widgets.port_grid import PortGrid
from app.ui.widgets.results import ResultsView
from app.ui.widgets.timeline_chart import TimelineChart
from app.ui.widgets.traffic_chart import TrafficChart, TrafficControl
from app.ui.widgets.traffic_traces import TrafficTraces

EDITOR_MIN_WIDTH = 400  # the journey editor's column: its four step buttons and columns fit
TRAFFIC_MARGIN = 4  # the Traffic tab's margins (presentation mode sets none)


class Central(QWidget):
    def __init__(self, port_count: int) -> None:
        super().__init__()
        self.port_count = port_count
        self.outer = QVBoxLayout(self)
        self.outer.setContentsMargins(6, 6, 6, 6)
        self.banner = Banner()
        self.outer.addWidget(self.banner)
        self._build_left()
        self._build_grid(port_count)
        self._build_timeline()
        self._build_tabs()
        self._build_splitters()

    def _build_left(self) -> None:
        """The editor over the run options and the big buttons (the window adds them)."""
        self.left = QWidget()
        layout = QVBoxLayout(self.left)
        layout.setContentsMargins(0, 0, 0, 0)
        self.editor = JourneyEditor()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        # The editor fits the column's width (never a sideways scroll that cuts buttons).
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.editor)
        self.left.setMinimumWidth(EDITOR_MIN_WIDTH)
        layout.addWidget(scroll, 1)
        self.runOptions = RunOptions()
        layout.addWidget(self.runOptions)
        self.buttons = QHBoxLayout()
        layout.addLayout(self.buttons)

    def _build_grid(self, port_count: int) -> None:
        self.grid = PortGrid()
        self.grid_box = QGroupBox("Live port grid")
        # The grid is as tall as its rows, no taller: extra height goes to the views below
        # (no empty band on a large screen).
        self.grid_box.setMaximumHeight(self.grid.preferred_height(port_count))
        QVBoxLayout(self.grid_box).addWidget(self.grid)

    def _build_timeline(self) -> None:
        self.timeline = PhaseTimeline()
        self.timelineChart = TimelineChart()
        self.timeline_box = QGroupBox("Run Journey phases")
        layout = QVBoxLayout(self.timeline_box)
        self.timelineTabs = QTabWidget()  # the chart first; the table keeps the details
        self.timelineTabs.setObjectName("timelineTabs")
        self.timelineTabs.addTab(self.timelineChart, "Timeline")
        self.timelineTabs.addTab(self.timeline, "Details")
        layout.addWidget(self.timelineTabs)
        # All five phases stay readable at 1000×650: the box never gets shorter than them.
        self.timeline_box.setMinimumHeight(
            self.timeline.minimumSizeHint().height()
            + self.timelineTabs.tabBar().sizeHint().height()
            + 36
        )

    def _build_tabs(self) -> None:
        self.results = ResultsView()
        self.logView = LogView()
        self.tabs = QTabWidget()
        self.tabs.setObjectName("bottomTabs")
        # Names stay whole: a narrow pane scrolls its tabs with arrows ("Re…", "Tr…" and "Tr…"
        # could not be told apart).
        self.tabs.setUsesScrollButtons(True)
        self.tabs.addTab(self.results, "Results")
        self.tabs.addTab(self.logView, "Log")
        self.traffic_page = QWidget()
        self.traffic_layout = QVBoxLayout(self.traffic_page)
        self.traffic_layout.setContentsMargins(*[TRAFFIC_MARGIN] * 4)
        self.trafficControl = TrafficControl()
        self.trafficChart = TrafficChart()
        self.traffic_layout.addWidget(self.trafficControl)
        self.traffic_layout.addWidget(self.trafficChart, 1)
        self.tabs.addTab(self.traffic_page, "Traffic")
        self.trafficTraces = TrafficTraces()  # continuous traffic's journeys, not only a run's
        self.tabs.addTab(self.trafficTraces, "Traces")
        self.journeyMap = JourneyMap()
        self.map_page = QScrollArea()  # a long chain in a small window scrolls, never cut
        self.map_page.setObjectName("journeyMapScroll")
        self.map_page.setWidgetResizable(True)
        self.map_page.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.map_page.setWidget(self.journeyMap)
        self.tabs.addTab(self.map_page, "Map")  # short: eight tabs fit 1280 px without arrows
        self.journeysList = JourneysList()
        self.journeysList.selected.connect(self.journeyMap.show_journey)
        self.tabs.addTab(self.journeysList, "Journeys")

    def _build_splitters(self) -> None:
        horizontal, vertical = Qt.Orientation.Horizontal, Qt.Orientation.Vertical
        self.bottomSplitter = _splitter("bottomSplitter", horizontal, self.timeline_box, self.tabs)
        # Both shrink; the grid stops at its rows.
        self.rightSplitter = _splitter(
            "rightSplitter", vertical, self.grid_box, self.bottomSplitter
        )
        self.rightSplitter.setChildrenCollapsible(False)
        self.mainSplitter = _splitter("mainSplitter", horizontal, self.left, self.rightSplitter)
        self.mainSplitter.setChildrenCollapsible(False)
        self.mainSplitter.setStretchFactor(0, 0)  # the editor keeps its width; the views grow
        self.pages = QStackedWidget()  # the window's layout, or presentation mode's
        self.pages.setObjectName("pages")
        self.pages.addWidget(self.mainSplitter)
        self.outer.addWidget(self.pages, 1)

    def bind(self, bridge: CoreBridge, stage: Stage) -> None:
        """Each view binds the signals it shows (docs/architecture.md, "Parts and their
        rooms"): the run views the stage's, the live views the bridge's."""
        for run_view in (self.grid, self.timeline, self.results):
            run_view.bind(stage)
        self.logView.bind(bridge, stage)
        for live in (self.trafficChart, self.trafficControl, self.journeyMap, self.journeysList):
            live.bind(bridge)
        self.timelineChart.bind(bridge)
        bridge.journeysChanged.connect(self.runOptions.journeys_changed)
        self.grid.set_detail_provider(bridge.process_details)
        self.trafficTraces.set_source(bridge.traffic_traces)

    def show_results(self) -> None:
        self.tabs.setCurrentWidget(self.results)

    def show_log(self) -> None:
        self.tabs.setCurrentWidget(self.logView)

    def splitters(self) -> tuple[QSplitter, ...]:
        return (self.mainSplitter, self.rightSplitter, self.bottomSplitter)

    def add_over_views(self, widget: QWidget) -> None:
        """A strip under the banner, over everything else (the latest added comes first)."""
        self.outer.insertWidget(1, widget)


def _splitter(name: str, orientation: Qt.Orientation, first: QWidget, second: QWidget) -> QSplitter:
    splitter = QSplitter(orientation)
    splitter.setObjectName(name)
    splitter.addWidget(first)
    splitter.addWidget(second)
    splitter.setStretchFactor(0, 1)
    splitter.setStretchFactor(1, 1)
    return splitter
