"""The main window: journey editor left, port grid centre, timeline / results / log below.

Reaches the core only through `CoreBridge`. Every dialog is non-blocking (`open()` + signals):
the asyncio loop runs on Qt's, and a nested Qt loop inside a coroutine would break it.

Over 400 lines for now: the window issue splits it into widgets that bind their own signals.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Coroutine
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QEvent, QRect, QSettings, Qt, QTimer, QUrl
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QGuiApplication,
    QKeySequence,
    QShortcut,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.alerts_wiring import AlertsWiring
from app.ui.bridge import (
    MAX_PACING_MS,
    CoreBridge,
    JourneyFileError,
    Problem,
    read_journey_file,
    write_journey_file,
)
from app.ui.export_dialog import ExportDialog, ExportIndicator
from app.ui.incidents_wiring import IncidentsWiring
from app.ui.presentation import SETTING as SETTING_PRESENTATION
from app.ui.presentation import Presentation
from app.ui.stage import Stage
from app.ui.widgets.journey_editor import JourneyEditor
from app.ui.widgets.journey_map import JourneyMap
from app.ui.widgets.journeys_list import JourneysList, RunOptions
from app.ui.widgets.log import LogView
from app.ui.widgets.palette import (
    STOP_MARK,
    SWITCH_MARK,
    button_colours,
    notice_colours,
    plural,
)
from app.ui.widgets.phase_timeline import PhaseTimeline
from app.ui.widgets.port_grid import PortCounts, PortGrid
from app.ui.widgets.results import ResultsView
from app.ui.widgets.timeline_chart import TimelineChart
from app.ui.widgets.traffic_chart import TrafficChart, TrafficControl
from app.ui.widgets.traffic_traces import TrafficTraces

log = logging.getLogger(__name__)

APP_TITLE = "BizObs Journey Control Panel"
DEFAULT_TEMPLATE = "e-commerce"


# Platforms without a real screen: their geometry means nothing on the operator's display.
HEADLESS_PLATFORMS = ("offscreen", "minimal")
EDITOR_WIDTH = 400  # the journey editor's column: its four step buttons and columns fit
EDITOR_MIN_WIDTH = 400


def default_qsettings() -> QSettings:
    return QSettings("BizObs", "JourneyControlPanel")


class MainWindow(QMainWindow):
    def __init__(self, bridge: CoreBridge, qsettings: QSettings | None = None) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.bridge = bridge
        self.qsettings = qsettings or default_qsettings()
        self._tasks: set[asyncio.Future[Any]] = set()
        self._run_pending = False
        self._shutting_down = False
        self._shutdown_done = False
        self.stop_all_dialog: QMessageBox | None = None
        self.close_dialog: QMessageBox | None = None
        self._file_dialog: QFileDialog | None = None
        self._problems: list[Problem] = []  # the journey's validation problems (Run's tooltip)
        self._traffic: Any = None  # the latest TrafficStatus: the status bar says it runs
        self._refused_banner = False  # the banner shows a refusal: it clears once valid
        self.stage = Stage(self)
        settings = bridge.settings
        self.setWindowTitle(f"{APP_TITLE} — ports {settings.port_lo}–{settings.port_hi}")
        self._build_actions()
        self._build_central()
        self._build_menus()
        self._build_toolbar()
        self._build_statusbar()
        self._connect_bridge()
        self.editor.set_max_steps(len(settings.ports))
        self._restore()
        if bridge.last_ports:
            self.stage.on_ports(bridge.last_ports)
        self._update_actions()

    # -- construction --------------------------------------------------------------------------
    def _action(
        self,
        text: str,
        slot: Any,
        shortcut: str | QKeySequence | QKeySequence.StandardKey | None = None,
        name: str = "",
        tip: str = "",
    ) -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        if name:
            action.setObjectName(name)
        if tip:
            action.setToolTip(tip)
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        self.runAction = self._action(
            "&Run Journey",
            self.run_journey,
            "Ctrl+R",
            "runJourneyAction",
            "Stop the previous journey, wait, sweep, launch these services, drive customers",
        )
        self.stopAllAction = self._action(
            "&Stop All",
            self.confirm_stop_all,
            "Ctrl+Shift+X",
            "stopAllAction",
            "Stop every service of this panel, essential ones included (asks first)",
        )
        self.sweepAction = self._action(
            "S&weep stale now",
            self.sweep,
            None,
            "sweepAction",
            "Release stale allocations and stop orphans of an earlier panel run",
        )
        self.newAction = self._action(
            "&New Journey", self.new_journey, QKeySequence.StandardKey.New
        )
        self.openAction = self._action(
            "&Open Journey…", self.open_journey_dialog, QKeySequence.StandardKey.Open
        )
        self.saveAction = self._action(
            "&Save Journey As…", self.save_journey_dialog, QKeySequence.StandardKey.SaveAs
        )
        self.quitAction = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.aboutAction = self._action("&About", self.show_about)

    def _build_central(self) -> None:
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(6, 6, 6, 6)

        banner_row = QWidget()
        banner_row.setObjectName("messageBannerRow")
        banner_layout = QHBoxLayout(banner_row)
        banner_layout.setContentsMargins(0, 0, 0, 0)
        self.banner = QLabel()
        self.banner.setObjectName("messageBanner")
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        banner_layout.addWidget(self.banner, 1)
        dismiss = QToolButton()
        dismiss.setText("✕")
        dismiss.setToolTip("Dismiss")
        dismiss.clicked.connect(self.hide_banner)
        banner_layout.addWidget(dismiss)
        self._banner_row = banner_row
        banner_row.hide()
        outer.addWidget(banner_row)

        # left: the editor and the two big buttons
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        self.editor = JourneyEditor()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        # The editor fits the column's width (never a sideways scroll that cuts buttons).
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.editor)
        left.setMinimumWidth(EDITOR_MIN_WIDTH)
        left_layout.addWidget(scroll, 1)
        self.runOptions = RunOptions()
        self.runOptions.set_strategy(str(self.qsettings.value("run/cleanup", "all")))
        self.runOptions.strategy.currentIndexChanged.connect(
            lambda _i: self.qsettings.setValue("run/cleanup", self.runOptions.cleanup())
        )
        left_layout.addWidget(self.runOptions)
        buttons = QHBoxLayout()
        self.runJourneyButton = _big_button(
            "▶  Run Journey", "runJourneyButton", "run", self.runAction.toolTip() + " (Ctrl+R)"
        )
        self.runJourneyButton.clicked.connect(self.run_journey)
        self.stopAllButton = _big_button(
            "■  Stop All", "stopAllButton", "stop", self.stopAllAction.toolTip()
        )
        self.stopAllButton.clicked.connect(self.confirm_stop_all)
        buttons.addWidget(self.runJourneyButton, 2)
        buttons.addWidget(self.stopAllButton, 1)
        left_layout.addLayout(buttons)

        # centre: the grid
        self.grid = PortGrid()
        self.grid.set_detail_provider(self.bridge.process_details)
        self.grid.stopServiceRequested.connect(self.stop_service)
        self.grid.restartServiceRequested.connect(self.restart_service)
        self.grid.openHealthRequested.connect(self.open_health)
        self.grid.sweepRequested.connect(self.sweep)
        grid_box = QGroupBox("Live port grid")
        self._grid_box = grid_box
        # The grid is as tall as its rows, no taller: extra height goes to the views below
        # (no empty band on a large screen).
        grid_box.setMaximumHeight(self.grid.preferred_height(len(self.bridge.settings.ports)))
        grid_layout = QVBoxLayout(grid_box)
        grid_layout.addWidget(self.grid)

        # below: timeline | results + log
        self.timeline = PhaseTimeline()
        self.timelineChart = TimelineChart()
        timeline_box = QGroupBox("Run Journey phases")
        timeline_layout = QVBoxLayout(timeline_box)
        self.timelineTabs = QTabWidget()  # the chart first; the table keeps the details
        self.timelineTabs.setObjectName("timelineTabs")
        self.timelineTabs.addTab(self.timelineChart, "Timeline")
        self.timelineTabs.addTab(self.timeline, "Details")
        timeline_layout.addWidget(self.timelineTabs)
        # All five phases stay readable at 1000×650: the box never gets shorter than them.
        timeline_box.setMinimumHeight(
            self.timeline.minimumSizeHint().height()
            + self.timelineTabs.tabBar().sizeHint().height()
            + 36
        )
        self.results = ResultsView()
        self.logView = LogView()
        self.tabs = QTabWidget()
        self.tabs.setObjectName("bottomTabs")
        # Names stay whole: a narrow pane scrolls its tabs with arrows ("Re…", "Tr…" and "Tr…"
        # could not be told apart).
        self.tabs.setUsesScrollButtons(True)
        self.tabs.addTab(self.results, "Results")
        self.tabs.addTab(self.logView, "Log")
        traffic = QWidget()
        traffic_layout = QVBoxLayout(traffic)
        traffic_layout.setContentsMargins(4, 4, 4, 4)
        self._traffic_layout = traffic_layout
        self.trafficControl = TrafficControl()
        self.trafficChart = TrafficChart()
        traffic_layout.addWidget(self.trafficControl)
        traffic_layout.addWidget(self.trafficChart, 1)
        self.tabs.addTab(traffic, "Traffic")
        self._traffic_page = traffic
        self.trafficTraces = TrafficTraces()  # continuous traffic's journeys, not only a run's
        self.trafficTraces.set_source(self.bridge.traffic_traces)
        self.tabs.addTab(self.trafficTraces, "Traces")
        self.journeyMap = JourneyMap()
        self.journeyMap.restartRequested.connect(self.restart_service)
        map_scroll = QScrollArea()  # a long chain in a small window scrolls, never cut
        map_scroll.setObjectName("journeyMapScroll")
        map_scroll.setWidgetResizable(True)
        map_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        map_scroll.setWidget(self.journeyMap)
        self.tabs.addTab(map_scroll, "Map")  # short: eight tabs fit 1280 px without arrows
        self._map_page = map_scroll
        self.journeysList = JourneysList()
        self.journeysList.stopRequested.connect(self.stop_journey)
        self.journeysList.selected.connect(self.journeyMap.show_journey)
        self.tabs.addTab(self.journeysList, "Journeys")
        self.incidents = IncidentsWiring(
            self.bridge, self._task, self.grid, self.journeyMap, self.trafficChart, self
        )
        self.tabs.addTab(self.incidents.list, "Incidents")
        outer.insertWidget(1, self.incidents.strip)  # under the banner, over everything else
        self.alerts = AlertsWiring(self.bridge, self)  # the Metrics tab and the alert banner
        self.tabs.addTab(self.alerts.page, "Metrics")
        outer.insertWidget(1, self.alerts.banner)  # an alert comes first, over an incident

        self.bottomSplitter = QSplitter(Qt.Orientation.Horizontal)
        self.bottomSplitter.setObjectName("bottomSplitter")
        self.bottomSplitter.addWidget(timeline_box)
        self.bottomSplitter.addWidget(self.tabs)
        self.bottomSplitter.setStretchFactor(0, 1)
        self.bottomSplitter.setStretchFactor(1, 1)
        self.rightSplitter = QSplitter(Qt.Orientation.Vertical)
        self.rightSplitter.setObjectName("rightSplitter")
        self.rightSplitter.addWidget(grid_box)
        self.rightSplitter.addWidget(self.bottomSplitter)
        self.rightSplitter.setStretchFactor(0, 1)  # both shrink; the grid stops at its rows
        self.rightSplitter.setStretchFactor(1, 1)
        self.rightSplitter.setChildrenCollapsible(False)
        self.mainSplitter = QSplitter(Qt.Orientation.Horizontal)
        self.mainSplitter.setObjectName("mainSplitter")
        self.mainSplitter.addWidget(left)
        self.mainSplitter.addWidget(self.rightSplitter)
        self.mainSplitter.setChildrenCollapsible(False)
        self.mainSplitter.setStretchFactor(0, 0)  # the editor keeps its width; the views grow
        self.mainSplitter.setStretchFactor(1, 1)
        self._left_panel = left
        self._grid_heights = (grid_box.minimumHeight(), grid_box.maximumHeight())
        self.pages = QStackedWidget()  # the window's layout, or presentation mode's
        self.pages.setObjectName("pages")
        self.pages.addWidget(self.mainSplitter)
        outer.addWidget(self.pages, 1)
        self.presentation = Presentation(
            self,
            self.pages,
            self.editor.template_names(),
            self.load_template,
            self.run_journey,
            self.confirm_stop_all,
        )
        self.setCentralWidget(central)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addActions([self.newAction, self.openAction, self.saveAction])
        templates = file_menu.addMenu("&Templates")
        for name in self.editor.template_names():
            templates.addAction(name, partial(self.load_template, name))
        file_menu.addSeparator()
        self.incidents.scenario_menu(file_menu)
        file_menu.addSeparator()
        file_menu.addAction(
            self._action("&Export settings…", self.open_export_dialog, name="exportSettingsAction")
        )
        file_menu.addSeparator()
        file_menu.addAction(self.quitAction)
        services = bar.addMenu("&Services")
        services.addActions([self.runAction, self.stopAllAction, self.sweepAction])
        view = bar.addMenu("&View")
        self.view_menu = view
        editor_toggle = QAction("Journey &editor", self, checkable=True, checked=True)
        editor_toggle.toggled.connect(self._left_panel.setVisible)
        view.addAction(editor_toggle)
        self._editor_toggle = editor_toggle
        view.addSeparator()
        view.addAction(
            self._action("Show &Results", lambda: self.tabs.setCurrentIndex(0), "Ctrl+1")
        )
        view.addAction(self._action("Show &Log", lambda: self.tabs.setCurrentIndex(1), "Ctrl+2"))
        view.addAction(self._action("&Clear Log", self.logView.clear))
        view.addAction(self._action("Refresh &ports now", self.bridge.refresh_ports, "F5"))
        view.addSeparator()
        self.presentationAction = self._action(
            "&Presentation", self.set_presentation, "F11", "presentationAction",
            "Full screen for a projector: phases, grid, map and charts large; F11 or Esc leaves",
        )  # fmt: skip
        self.presentationAction.setCheckable(True)
        view.addAction(self.presentationAction)
        # Their shortcuts work with the menus hidden (presentation mode) too.
        self.addActions([self.presentationAction, self.runAction, self.stopAllAction])
        # Esc leaves presentation mode; off otherwise, or it would take Esc from the editor.
        self._leave_presentation = QShortcut(QKeySequence("Esc"), self)
        self._leave_presentation.setEnabled(False)
        self._leave_presentation.activated.connect(lambda: self.set_presentation(False))
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.aboutAction)

    def _build_toolbar(self) -> None:
        toolbar = self.addToolBar("Toolbar")  # the View menu's toggle reads this title
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        toolbar.addAction(self.runAction)
        toolbar.addAction(self.stopAllAction)
        toolbar.addAction(self.sweepAction)
        toolbar.addSeparator()
        toolbar.addWidget(QLabel(" Demo pacing per phase: "))
        self.pacingSpin = QSpinBox()
        self.pacingSpin.setObjectName("pacingSpin")
        self.pacingSpin.setRange(0, MAX_PACING_MS)
        self.pacingSpin.setSingleStep(250)
        self.pacingSpin.setSuffix(" ms")
        self.pacingSpin.setSpecialValueText("off")
        self.pacingSpin.setToolTip("Slow each phase down (0–2 s) so an audience can follow")
        self.pacingSpin.valueChanged.connect(self._pacing_changed)
        toolbar.addWidget(self.pacingSpin)
        self.view_menu.insertAction(self.view_menu.actions()[0], toolbar.toggleViewAction())

    def _build_statusbar(self) -> None:
        bar = self.statusBar()
        self.runStateLabel = QLabel("Idle")
        self.runStateLabel.setObjectName("runStateLabel")
        self.countsLabel = PortCounts()
        bar.addPermanentWidget(self.runStateLabel)
        bar.addPermanentWidget(self.countsLabel)
        self.exportIndicator = ExportIndicator(self.bridge, self)  # app/ui/export_dialog.py
        bar.addPermanentWidget(self.exportIndicator)

    def open_export_dialog(self) -> None:
        self.export_dialog = ExportDialog(self.bridge, self)
        self.export_dialog.open()  # non-blocking: no nested event loop

    def _connect_bridge(self) -> None:
        b = self.bridge
        # Run displays go through the stage: grid and timeline change together, paced
        # (app/ui/stage.py); the log shows events as they happen.
        b.portsChanged.connect(self.stage.on_ports)
        b.phaseEvent.connect(self.stage.on_phase)
        b.runStarted.connect(self.stage.on_run_started)
        b.runFinished.connect(self.stage.on_run_finished)
        b.serviceEvent.connect(self.stage.on_service)
        # Each view binds the signals it shows (docs/architecture.md, "Parts and their rooms"):
        # the run views the stage's, the live views the bridge's.
        for view in (self.grid, self.countsLabel, self.timeline, self.results):
            view.bind(self.stage)
        self.logView.bind(b, self.stage)
        self.trafficChart.bind(b)
        self.trafficControl.bind(b)
        self.journeyMap.bind(b)
        self.journeysList.bind(b)
        b.journeysChanged.connect(self.runOptions.journeys_changed)
        self.timelineChart.bind(b)
        # The window's own chrome: enablement, run state, status bar, banner.
        self.stage.portsChanged.connect(self._update_actions)
        b.trafficChanged.connect(self._traffic_changed)
        self.stage.phaseEvent.connect(self._phase_event)
        self.stage.phaseEvent.connect(self.presentation.on_phase)
        self.stage.runStarted.connect(self.presentation.on_run_started)
        self.stage.runStarted.connect(self._run_started)
        self.stage.runFinished.connect(self._run_finished)
        self.editor.validated.connect(self._validated)
        b.runRefused.connect(self._run_refused)
        b.commandFailed.connect(self._command_failed)
        b.stopAllFinished.connect(self._stop_all_finished)
        b.sweepFinished.connect(self._sweep_finished)
        b.serviceStopped.connect(self._service_stopped)
        b.busyChanged.connect(self._update_actions)
        b.opened.connect(self._opened)
        b.closed.connect(self._update_actions)

    # -- persistence (QSettings) ---------------------------------------------------------------
    def _restore(self) -> None:
        s = self.qsettings
        geometry = s.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1440, 900)
        self._clamp_to_screen()  # also 1440×900 at 200 %: larger than a 2560×1440 screen
        state = s.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        for splitter in (self.mainSplitter, self.rightSplitter, self.bottomSplitter):
            value = s.value(f"window/{splitter.objectName()}")
            if isinstance(value, QByteArray):
                splitter.restoreState(value)
            else:
                splitter.setSizes(self._default_sizes(splitter.objectName()))
        restored = False
        raw = s.value("journey/last")
        if isinstance(raw, str) and raw:
            try:
                self.editor.restore_state(json.loads(raw))
                restored = True
            except (ValueError, TypeError):
                restored = False
        if not restored:
            names = self.editor.template_names()
            if names:
                self.editor.load_template(
                    DEFAULT_TEMPLATE if DEFAULT_TEMPLATE in names else names[0]
                )
        if str(s.value(SETTING_PRESENTATION, "false")).lower() == "true":
            QTimer.singleShot(0, lambda: self.set_presentation(True))  # once the window shows
        pacing = self.bridge.settings.demo_pacing_ms or _int(s.value("demo/pacingMs"), 0)
        self.pacingSpin.setValue(pacing)
        self.bridge.set_pacing_ms(pacing)
        self.stage.set_pacing_ms(pacing)

    def _clamp_to_screen(self) -> None:
        """A geometry saved on another screen (or a larger one) must not open off-screen or
        larger than the screen."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            return
        avail = screen.availableGeometry()
        frame = self.frameGeometry()
        extra_w, extra_h = frame.width() - self.width(), frame.height() - self.height()
        w = min(self.width(), avail.width() - extra_w)
        h = min(self.height(), avail.height() - extra_h)
        x = min(max(frame.x(), avail.x()), avail.right() + 1 - w - extra_w)
        y = min(max(frame.y(), avail.y()), avail.bottom() + 1 - h - extra_h)
        self.setGeometry(QRect(x + (self.x() - frame.x()), y + (self.y() - frame.y()), w, h))

    def _default_sizes(self, name: str) -> list[int]:
        rows = -(-len(self.bridge.settings.ports) // 8)
        grid = min(rows, 5) * 80 + 110  # a larger pool scrolls inside the grid
        return {
            "mainSplitter": [EDITOR_WIDTH, 960],
            "rightSplitter": [grid, 800 - grid],
            "bottomSplitter": [480, 480],
        }.get(name, [1, 1])

    def set_presentation(self, on: bool) -> None:
        """Presentation mode on or off (app/ui/presentation.py)."""
        if on and not self.presentation.active:
            # Every port without scrolling, the charts' height to their plots.
            compact = self.grid.compact_height(len(self.bridge.settings.ports))
            self._grid_heights = (self._grid_box.minimumHeight(), self._grid_box.maximumHeight())
            self._grid_box.setMinimumHeight(compact)
            self._grid_box.setMaximumHeight(compact)
            self.trafficChart.set_compact(True)
            self.journeyMap.set_dense(True)
            self._traffic_layout.setContentsMargins(0, 0, 0, 0)
            bars = (self.menuBar(), self.findChild(QToolBar, "mainToolbar"), self.statusBar())
            chrome: list[QWidget] = [w for w in bars if w is not None]
            self.presentation.enter(
                self._grid_box,
                self.rightSplitter,
                self.tabs,
                self._traffic_page,
                self._map_page,
                chrome,
            )
        elif not on and self.presentation.active:
            self.presentation.leave()
            self._grid_box.setMinimumHeight(self._grid_heights[0])
            self._grid_box.setMaximumHeight(self._grid_heights[1])
            self.trafficChart.set_compact(False)
            self.journeyMap.set_dense(False)
            self._traffic_layout.setContentsMargins(4, 4, 4, 4)
        self.presentationAction.setChecked(self.presentation.active)
        self._leave_presentation.setEnabled(self.presentation.active)

    def save_settings(self) -> None:
        s = self.qsettings
        s.setValue(SETTING_PRESENTATION, self.presentation.active)
        # An offscreen run (tests, screenshots) has no real screen: its geometry would open the
        # operator's window at a meaningless size, so only the journey is remembered. While
        # presenting, the window's own layout is not on screen: the one saved before stays.
        headless = QGuiApplication.platformName() in HEADLESS_PLATFORMS
        if not headless and not self.presentation.active:
            s.setValue("window/geometry", self.saveGeometry())
            s.setValue("window/state", self.saveState())
            for splitter in (self.mainSplitter, self.rightSplitter, self.bottomSplitter):
                s.setValue(f"window/{splitter.objectName()}", splitter.saveState())
        s.setValue("journey/last", json.dumps(self.editor.state()))
        s.setValue("demo/pacingMs", self.pacingSpin.value())
        s.sync()

    # -- async plumbing ------------------------------------------------------------------------
    def _task(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("UI task failed", exc_info=exc)
            self.show_banner(f"Internal error: {type(exc).__name__}: {exc}", "error")
        self._update_actions()

    def _enablement(self) -> dict[str, tuple[bool, str]]:
        """Every command's enablement and the reason shown on hover, decided here only: an
        action is enabled exactly when it can do something."""
        open_ = self.bridge.is_open and not self._shutting_down
        busy = self.bridge.busy or self._run_pending
        services = len(self.bridge.services()) if open_ else 0
        stale = self.grid.counts().get("stale", 0)
        if not open_:
            run = (False, "The panel is not open")
        elif busy:
            run = (False, "A journey run is in progress")
        elif self._problems:
            run = (False, "Cannot run this journey yet:\n" + problem_lines(self._problems))
        else:
            run = (True, self.runAction.statusTip() + " (Ctrl+R)")
        stop_tip = self.stopAllAction.statusTip() if services or busy else "Nothing is running"
        sweep_tip = (
            self.sweepAction.statusTip()
            if stale
            else "Nothing is stale: the grid shows no stale port"
        )
        return {
            "run": run,
            "stopAll": (open_ and (services > 0 or busy), stop_tip),
            "sweep": (open_ and not busy and stale > 0, sweep_tip),
        }

    def _update_actions(self, *_args: object) -> None:
        rules = self._enablement()
        for key, widgets in (
            ("run", (self.runAction, self.runJourneyButton)),
            ("stopAll", (self.stopAllAction, self.stopAllButton)),
            ("sweep", (self.sweepAction,)),
        ):
            enabled, tip = rules[key]
            for widget in widgets:
                widget.setEnabled(enabled)
                widget.setToolTip(tip)
        self._update_run_state()

    def _update_run_state(self) -> None:
        open_ = self.bridge.is_open and not self._shutting_down
        if not open_:
            self.runStateLabel.setText("Closed" if not self._shutting_down else "Stopping…")
        elif self.bridge.busy or self._run_pending:
            if not self.runStateLabel.text().startswith("Running"):
                self.runStateLabel.setText("Running…")
        elif not self.runStateLabel.text().startswith("Stopping"):
            traffic = self._traffic
            running = traffic is not None and traffic.running
            self.runStateLabel.setText(
                f"Traffic {traffic.achieved_rate:,.1f}/s" if running else "Idle"
            )

    def _validated(self, problems: list[Problem]) -> None:
        self._problems = list(problems)
        if not problems and self._refused_banner:
            self.hide_banner()
        self._update_actions()

    # -- commands ------------------------------------------------------------------------------
    def run_journey(self) -> None:
        if self._run_pending or self.bridge.busy or not self.bridge.is_open:
            return
        problems = self.editor.refresh_validation(emphasise=True)
        if problems:
            self._run_refused(problems)
            return
        data, _ = self.editor.journey_data()
        params = self.editor.run_params() | {
            "cleanup": self.runOptions.cleanup(),
            "preserve": self.runOptions.preserve(),
        }
        self.hide_banner()
        self._run_pending = True
        self._update_actions()
        task = self._task(self.bridge.run_journey(data, **params))
        task.add_done_callback(lambda _t: self._run_done())
        self.qsettings.setValue("journey/last", json.dumps(self.editor.state()))

    def _run_done(self) -> None:
        self._run_pending = False
        self._update_actions()

    def confirm_stop_all(self) -> None:
        if not self._enablement()["stopAll"][0]:
            return  # nothing to stop: no dialog asking about 0 services
        services = self.bridge.services()
        essential = sum(1 for s in services if s.essential)
        box = QMessageBox(self)
        box.setObjectName("stopAllDialog")
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Stop All")
        box.setText(
            f"Stop all {plural(len(services), 'service')} of this panel ({essential} essential)?"
        )
        info = (
            "Continuous traffic stops too (Start it again on the Traffic tab). Essential "
            "services are stopped too; the next Run Journey starts them again."
        )
        if self.bridge.busy:
            info = "The journey run in progress is cancelled first (it rolls back). " + info
        box.setInformativeText(info)
        confirm = box.addButton("Stop All", QMessageBox.ButtonRole.DestructiveRole)
        confirm.setObjectName("confirmStopAllButton")
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.setEscapeButton(cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.buttonClicked.connect(lambda b: self._stop_all_confirmed() if b is confirm else None)
        self.stop_all_dialog = box
        box.open()  # non-blocking: no nested event loop

    def _stop_all_confirmed(self) -> None:
        self.stop_all_dialog = None
        self.statusBar().showMessage("Stopping all services…")
        self.runStateLabel.setText("Stopping all…")
        self._task(self.bridge.stop_all())

    def sweep(self) -> None:
        if self.bridge.is_open:
            self._task(self.bridge.sweep())

    def stop_service(self, key: str) -> None:
        if self.bridge.is_open:
            self.logView.add("panel", f"stopping {key} (from the port grid)")
            self._task(self.bridge.stop_service(key))

    def stop_journey(self, journey_id: str) -> None:
        if self.bridge.is_open:
            self.logView.add("panel", f"stopping journey {journey_id} (from the Journeys list)")
            self._task(self.bridge.stop_journey(journey_id))

    def restart_service(self, key: str) -> None:
        self._task(self.bridge.restart_service(key))

    def open_health(self, port: int) -> None:
        url = f"http://127.0.0.1:{port}/health"
        if QDesktopServices.openUrl(QUrl(url)):
            self.statusBar().showMessage(f"Opened {url} in the browser", 5000)
        else:  # no browser on this desktop: say so, and leave the address to copy
            self.show_banner(f"No browser could open {url} — copy the address to check it.")

    def _pacing_changed(self, value: int) -> None:
        self.bridge.set_pacing_ms(value)
        self.stage.set_pacing_ms(value)
        self.qsettings.setValue("demo/pacingMs", value)

    # -- journeys (File menu) ------------------------------------------------------------------
    def new_journey(self) -> None:
        self.editor.clear()

    def load_template(self, name: str) -> None:
        message = f"Loaded template {name}"
        self.editor.choose_template(name, lambda: self.statusBar().showMessage(message, 4000))

    def _journeys_dir(self) -> str:
        last = self.qsettings.value("journey/dir")
        return str(last) if last else str(Path.home())

    def open_journey_dialog(self) -> None:
        dialog = QFileDialog(
            self, "Open journey", self._journeys_dir(), "Journey JSON (*.json);;All files (*)"
        )
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptOpen)
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.fileSelected.connect(self.open_journey_file)
        self._file_dialog = dialog
        dialog.open()

    def open_journey_file(self, path: str) -> bool:
        try:
            data = read_journey_file(path)
        except JourneyFileError as exc:
            self.show_banner(str(exc), "error")
            return False
        self.editor.set_journey(data)
        self.qsettings.setValue("journey/dir", str(Path(path).parent))
        self.statusBar().showMessage(f"Opened {path}", 4000)
        return True

    def save_journey_dialog(self) -> None:
        dialog = QFileDialog(self, "Save journey", self._journeys_dir(), "Journey JSON (*.json)")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("json")
        dialog.fileSelected.connect(self.save_journey_file)
        self._file_dialog = dialog
        dialog.open()

    def save_journey_file(self, path: str) -> bool:
        data, _ = self.editor.journey_data()
        try:
            write_journey_file(path, data)
        except OSError as exc:
            self.show_banner(f"cannot save {path}: {exc.strerror}", "error")
            return False
        self.qsettings.setValue("journey/dir", str(Path(path).parent))
        self.statusBar().showMessage(f"Saved {path}", 4000)
        return True

    def show_about(self) -> None:
        s = self.bridge.settings
        box = QMessageBox(self)
        box.setWindowTitle(f"About {APP_TITLE}")
        box.setText(f"<b>{APP_TITLE}</b>")
        box.setInformativeText(
            "Describe a customer journey, press Run Journey: the panel stops the previous "
            "journey's services, waits until they are gone, sweeps stale ports, launches one "
            "real HTTP service per step and drives simulated customers through the chain.<br><br>"
            f"Port pool {s.port_lo}–{s.port_hi} · state {s.state_dir}"
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    # -- banner --------------------------------------------------------------------------------
    def show_banner(self, text: str, kind: str = "info") -> None:
        """`kind`: error, info or ok (its colours: palette.NOTICE_COLOURS)."""
        self.banner.setText(text)
        self.banner.setProperty("kind", kind)
        self._style_banner()
        self._refused_banner = False
        self._banner_row.show()

    def hide_banner(self) -> None:
        self._refused_banner = False
        self._banner_row.hide()
        self.banner.clear()

    def _style_banner(self) -> None:
        kind = self.banner.property("kind")
        if not kind:
            return  # no banner shown yet
        fill, text, border = notice_colours(str(kind))
        self.banner.setStyleSheet(
            f"QLabel {{ background: {fill}; color: {text}; border: 1px solid {border};"
            " border-radius: 4px; padding: 6px; }"
        )

    def changeEvent(self, event: QEvent) -> None:
        # The banner's and the big buttons' style sheets name colours, not palette roles: on a
        # light/dark switch (app/ui/theme.py) they are set again from the scheme now current.
        # Qt tells the window (no sheet of its own), not a widget that has a sheet.
        if event.type() == QEvent.Type.PaletteChange:
            self._style_banner()
            _style_big_button(self.runJourneyButton)
            _style_big_button(self.stopAllButton)
        super().changeEvent(event)

    # -- bridge signals ------------------------------------------------------------------------
    def _opened(self) -> None:
        self._update_actions()
        if messages := self.bridge.startup_messages:
            self.show_banner("At start: " + "; ".join(messages), "info")

    def _service_stopped(self, key: str) -> None:
        self.statusBar().showMessage(f"Stopped {key}", 5000)

    def _traffic_changed(self, status: Any) -> None:
        self._traffic = status
        self._update_run_state()

    def _run_started(self, _run_id: str, _company: str) -> None:
        self.statusBar().clearMessage()
        self.runStateLabel.setText("Running: starting…")

    def _phase_event(self, event: Any) -> None:
        if event.status == "started":
            self.runStateLabel.setText(f"Running: {event.phase}…")

    def _run_finished(self, result: Any) -> None:
        self._update_actions()
        total = result.total_ms
        if result.ok:  # a journey switch, marked on the traffic charts
            self.trafficChart.mark(time.time(), f"▶ {result.company}", SWITCH_MARK)
            s = result.simulation.summary
            # Short enough for a small window's status bar; the results name the run in full.
            msg = (
                f"Run finished: {len(result.services)} services, "
                f"{s.completed}/{s.customers} customers, {total:,.0f} ms"
            )
            self.statusBar().showMessage(msg, 15000)
            if self.tabs.currentWidget() is self.logView:
                # From the log to what the run produced; a presenter's live view (traffic,
                # journey map) stays on screen.
                self.tabs.setCurrentWidget(self.results)
        else:
            self.show_banner(f"Run Journey failed: {result.error}", "error")

    def _run_refused(self, problems: list[Problem]) -> None:
        self.editor.show_problems(problems, emphasise=True)
        first = problems[0].message if problems else "invalid input"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        self.show_banner(f"Run Journey refused, nothing was stopped: {first}{more}", "error")
        self._refused_banner = True
        self.statusBar().showMessage("Fix the journey first: nothing was stopped", 8000)
        self.logView.add(
            "panel", "Run Journey refused: " + "; ".join(p.message for p in problems), "warning"
        )

    def _command_failed(self, command: str, message: str) -> None:
        self.show_banner(f"{command}: {message}", "error")
        self.logView.add("panel", f"{command} failed: {message}", "error")
        self._update_actions()

    def _stop_all_finished(self, report: Any) -> None:
        self.trafficChart.mark(time.time(), "■ Stop All", STOP_MARK)
        killed = f", {len(report.killed)} needed SIGKILL" if report.killed else ""
        msg = f"Stop All: stopped {report.count} services{killed}"
        self.statusBar().showMessage(msg, 10000)
        self.logView.add("panel", msg)
        self._update_actions()

    def _sweep_finished(self, counts: dict[str, int]) -> None:
        stale, orphans = counts.get("staleCleaned", 0), counts.get("orphansReaped", 0)
        msg = (
            f"Sweep: {plural(stale, 'stale allocation')} released, "
            f"{plural(orphans, 'orphan')} stopped"
        )
        self.statusBar().showMessage(msg, 10000)
        self.logView.add("panel", msg)

    # -- closing -------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        if self._shutdown_done or not self.bridge.is_open:
            self.save_settings()
            event.accept()
            return
        event.ignore()
        if self._shutting_down:
            return
        if self.bridge.services() or self.bridge.busy:
            self.confirm_close()
        else:
            self.shutdown()

    def confirm_close(self) -> None:
        n = len(self.bridge.services())
        box = QMessageBox(self)
        box.setObjectName("closeDialog")
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Quit")
        running = f"{n} service{'s are' if n != 1 else ' is'} running"
        if self.bridge.busy:
            running += " and a journey run is in progress"
        box.setText(f"{running}. Stop them and quit?")
        box.setInformativeText(
            "Services never outlive the panel: they are tied to it and die with it, even if it "
            "crashes, and the next start cleans up whatever is left. Quitting stops them now, "
            "cleanly."
        )
        quit_button = box.addButton("Stop services and quit", QMessageBox.ButtonRole.AcceptRole)
        quit_button.setObjectName("stopAndQuitButton")
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(quit_button)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.buttonClicked.connect(lambda b: self.shutdown() if b is quit_button else None)
        self.close_dialog = box
        box.open()

    def shutdown(self) -> asyncio.Future[Any] | None:
        """Stop every service, close the core, then close the window."""
        if self._shutting_down:
            return None
        self._shutting_down = True
        self.close_dialog = None
        self.statusBar().showMessage("Stopping services and closing…")
        self._update_actions()
        self.save_settings()
        return self._task(self._shutdown())

    async def _shutdown(self) -> None:
        try:
            await self.bridge.close()
        finally:
            self._shutdown_done = True
            QTimer.singleShot(0, self.close)


def problem_lines(problems: list[Problem], limit: int = 8) -> str:
    lines = [f"• {p.message}" for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"… and {len(problems) - limit} more")
    return "\n".join(lines)


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _big_button(text: str, name: str, kind: str, tooltip: str) -> QPushButton:
    """One of the two main commands under the editor: white on a strong colour, `kind` (run,
    stop) its key in palette.BUTTON_COLOURS."""
    button = QPushButton(text)
    button.setObjectName(name)
    button.setToolTip(tooltip)
    button.setMinimumHeight(36)
    button.setProperty("colours", kind)  # the window styles it again on a scheme switch
    _style_big_button(button)
    return button


def _style_big_button(button: QPushButton) -> None:
    fill, text = button_colours(str(button.property("colours")))
    off_fill, off_text = button_colours("disabled")
    button.setStyleSheet(
        f"QPushButton {{ background: {fill}; color: {text}; font-weight: bold;"
        " border-radius: 4px; padding: 6px 14px; }"
        f"QPushButton:disabled {{ background: {off_fill}; color: {off_text}; }}"
    )
