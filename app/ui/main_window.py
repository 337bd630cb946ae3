"""The main window: assembly and chrome (docs/architecture.md, "The window").

It builds the parts — the central widget (central.py), the commands (commands.py), the status
bar's reports (status.py), journey files (journey_files.py), the layout's memory (layout.py),
pane maximising (maximise.py), presentation mode (presentation.py) — binds them, and keeps the
window's own state: one `Activity` and the commands' enablement derived from one `UiState`.
Reaches the core only through `CoreBridge`. Every dialog is non-blocking (`open()` + signals):
the asyncio loop runs on Qt's, and a nested Qt loop inside a coroutine would break it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from functools import partial
from typing import Any

from PySide6.QtCore import QEvent, QSettings, QTimer, QUrl
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import QLabel, QMainWindow, QMenu, QMessageBox, QSpinBox, QWidget

from app.ui import commands, dialogs, layout
from app.ui.alerts_wiring import AlertsWiring
from app.ui.bridge import MAX_PACING_MS, CoreBridge, Problem
from app.ui.central import Central
from app.ui.commands import Activity, UiState
from app.ui.export_dialog import ExportDialog
from app.ui.incidents_wiring import IncidentsWiring
from app.ui.journey_files import JourneyFiles
from app.ui.maximise import PaneMaximiser
from app.ui.presentation import SETTING as SETTING_PRESENTATION
from app.ui.presentation import Presentation
from app.ui.stage import Stage
from app.ui.status import StatusReports

log = logging.getLogger(__name__)

APP_TITLE = "BizObs Journey Control Panel"
DEFAULT_TEMPLATE = "e-commerce"


def default_qsettings() -> QSettings:
    return QSettings("BizObs", "JourneyControlPanel")


class MainWindow(QMainWindow):
    def __init__(self, bridge: CoreBridge, qsettings: QSettings | None = None) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.bridge, self.qsettings = bridge, qsettings or default_qsettings()
        self._tasks: set[asyncio.Future[Any]] = set()
        self._activity = Activity.IDLE
        self._problems: tuple[Problem, ...] = ()  # the journey's validation problems
        self.stop_all_dialog: QMessageBox | None = None
        self.close_dialog: QMessageBox | None = None
        self.stage = Stage(self)
        s = bridge.settings
        self.setWindowTitle(f"{APP_TITLE} — ports {s.port_lo}–{s.port_hi}")
        self._assemble()
        self.editor.set_max_steps(len(s.ports))
        self._restore()
        if bridge.last_ports:
            self.stage.on_ports(bridge.last_ports)
        self._update_actions()

    # -- assembly ------------------------------------------------------------------------------
    def _assemble(self) -> None:
        c = self.central = Central(len(self.bridge.settings.ports))
        self.setCentralWidget(c)
        # The views by name, as the rest of the window (and its tests) reach them.
        self.banner, self._banner_row, self.editor, self.grid = (
            c.banner.label,
            c.banner,
            c.editor,
            c.grid,
        )
        self.timeline, self.timelineChart, self.timelineTabs = (
            c.timeline,
            c.timelineChart,
            c.timelineTabs,
        )
        self.results, self.logView, self.tabs, self.pages = c.results, c.logView, c.tabs, c.pages
        self.trafficControl, self.trafficChart, self.trafficTraces = (
            c.trafficControl,
            c.trafficChart,
            c.trafficTraces,
        )
        self.journeyMap, self.journeysList, self.runOptions = (
            c.journeyMap,
            c.journeysList,
            c.runOptions,
        )
        self.mainSplitter, self.rightSplitter, self.bottomSplitter = c.splitters()
        self._map_page = c.map_page
        self.incidents = IncidentsWiring(
            self.bridge, self._task, self.grid, self.journeyMap, self.trafficChart, self
        )
        c.tabs.addTab(self.incidents.list, "Incidents")
        c.add_over_views(self.incidents.strip)
        self.alerts = AlertsWiring(self.bridge, self)  # the Metrics tab and the alert banner
        c.tabs.addTab(self.alerts.page, "Metrics")
        c.add_over_views(self.alerts.banner)  # an alert comes first, over an incident
        self.status = StatusReports(self, c, self.bridge, self.ui_state)
        self.runStateLabel, self.countsLabel = self.status.runStateLabel, self.status.countsLabel
        self.exportIndicator = self.status.exportIndicator
        self.files = JourneyFiles(
            self, self.editor, self.qsettings, lambda m: self.statusBar().showMessage(m, 4000),
            lambda m: self.show_banner(m, "error"),
        )  # fmt: skip
        self.presentation = Presentation(
            self, self.pages, self.editor.template_names(), self.load_template,
            self.run_journey, self.confirm_stop_all,
        )  # fmt: skip
        self.compact = layout.CompactViews(c, len(self.bridge.settings.ports))
        self._build_commands()
        self._build_maximiser()
        self._connect()

    def _build_commands(self) -> None:
        self.commands = commands.make_actions(self)
        a = self.commands
        self.runAction, self.stopAllAction, self.sweepAction = (
            a["runJourneyAction"], a["stopAllAction"], a["sweepAction"]
        )  # fmt: skip
        self.saveAction, self.presentationAction = a["saveJourneyAction"], a["presentationAction"]
        self.buttons = commands.make_buttons(a)
        self.runJourneyButton = self.buttons["runJourneyAction"]
        self.stopAllButton = self.buttons["stopAllAction"]
        self.central.buttons.addWidget(self.runJourneyButton, 2)
        self.central.buttons.addWidget(self.stopAllButton, 1)
        toolbar = self.addToolBar("Toolbar")  # the View menu's toggle reads this title
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        commands.fill_toolbar(toolbar, a)
        toolbar.addSeparator()
        toolbar.addWidget(QLabel(" Demo pacing per phase: "))
        self.pacingSpin = _pacing_spin()
        self.pacingSpin.valueChanged.connect(self._pacing_changed)
        toolbar.addWidget(self.pacingSpin)
        editor_toggle = QAction("Journey &editor", self, checkable=True, checked=True)
        editor_toggle.toggled.connect(self.central.left.setVisible)
        places = {
            "templates": self._templates_menu,
            "scenarios": self.incidents.scenario_menu,
            "toolbar": lambda menu: menu.addAction(toolbar.toggleViewAction()),
            "editor": lambda menu: menu.addAction(editor_toggle),
        }
        self.menus = commands.fill_menus(self.menuBar(), a, places)
        # Esc leaves presentation mode; off otherwise, or it would take Esc from the editor.
        self._leave_presentation = QShortcut(QKeySequence("Esc"), self)
        self._leave_presentation.setEnabled(False)
        self._leave_presentation.activated.connect(lambda: self.set_presentation(False))

    def _templates_menu(self, file_menu: QMenu) -> None:
        templates = file_menu.addMenu("&Templates")
        for name in self.editor.template_names():
            templates.addAction(name, partial(self.load_template, name))

    def _build_maximiser(self) -> None:
        c = self.central
        self.maximiser = PaneMaximiser(self, c.splitters())
        self.maximiser.add_group_box(c.grid_box, "grid")
        self.maximiser.add_group_box(c.timeline_box, "phases")
        self.maximiser.add_tabs(c.tabs, "tabs")
        c.buttons.addWidget(self.maximiser.add_pane(c.left, "editor"))

    def _connect(self) -> None:
        b, st = self.bridge, self.stage
        # Run displays go through the stage: grid and timeline change together, paced
        # (app/ui/stage.py); the log shows events as they happen.
        b.portsChanged.connect(st.on_ports)
        b.phaseEvent.connect(st.on_phase)
        b.runStarted.connect(st.on_run_started)
        b.runFinished.connect(st.on_run_finished)
        b.serviceEvent.connect(st.on_service)
        # Each view binds the signals it shows (docs/architecture.md, "Parts and their rooms"):
        # the run views the stage's, the live views the bridge's.
        for view in (self.grid, self.timeline, self.results):
            view.bind(st)
        self.logView.bind(b, st)
        for live in (self.trafficChart, self.trafficControl, self.journeyMap):
            live.bind(b)
        self.journeysList.bind(b)
        self.timelineChart.bind(b)
        b.journeysChanged.connect(self.runOptions.journeys_changed)
        self.grid.set_detail_provider(b.process_details)
        self.trafficTraces.set_source(b.traffic_traces)
        self.grid.stopServiceRequested.connect(self.stop_service)
        self.grid.restartServiceRequested.connect(self.restart_service)
        self.grid.openHealthRequested.connect(self.open_health)
        self.grid.sweepRequested.connect(self.sweep)
        self.journeyMap.restartRequested.connect(self.restart_service)
        self.journeysList.stopRequested.connect(self.stop_journey)
        self.runOptions.strategy.currentIndexChanged.connect(
            lambda _i: self.qsettings.setValue("run/cleanup", self.runOptions.cleanup())
        )
        # The window's own chrome: enablement, run state, status bar, banner.
        self.status.bind(b, st)
        st.phaseEvent.connect(self.presentation.on_phase)
        st.runStarted.connect(self.presentation.on_run_started)
        self.editor.validated.connect(self._validated)
        for signal in (st.portsChanged, st.runFinished, b.commandFailed, b.stopAllFinished,
                       b.busyChanged, b.closed):  # fmt: skip
            signal.connect(self._update_actions)
        b.opened.connect(self._opened)

    # -- state and enablement ------------------------------------------------------------------
    @property
    def _run_pending(self) -> bool:
        return self._activity is Activity.RUN_REQUESTED

    def ui_state(self) -> UiState:
        open_ = self.bridge.is_open
        return UiState(
            activity=self._activity,
            core_open=open_,
            core_busy=self.bridge.busy,
            services=len(self.bridge.services()) if open_ else 0,
            stale=self.grid.counts().get("stale", 0),
            problems=self._problems,
        )

    def _enablement(self) -> dict[str, commands.Enablement]:
        return commands.enablement(self.ui_state())

    def _update_actions(self, *_args: object) -> None:
        state = self.ui_state()
        commands.apply_enablement(state, self.commands, self.buttons)
        self.status.show_run_state(state)

    def _validated(self, problems: list[Problem]) -> None:
        self._problems = tuple(problems)
        if not problems and self.central.banner.shows_refusal:
            self.hide_banner()
        self._update_actions()

    # -- commands ------------------------------------------------------------------------------
    def run_journey(self) -> None:
        if self._run_pending or self.bridge.busy or not self.bridge.is_open:
            return
        problems = self.editor.refresh_validation(emphasise=True)
        if problems:
            self.status.run_refused(problems)
            return
        data, _ = self.editor.journey_data()
        params = self.editor.run_params() | {
            "cleanup": self.runOptions.cleanup(),
            "preserve": self.runOptions.preserve(),
        }
        self.hide_banner()
        self._activity = Activity.RUN_REQUESTED
        self._update_actions()
        task = self._task(self.bridge.run_journey(data, **params))
        task.add_done_callback(lambda _t: self._run_done())
        self.qsettings.setValue("journey/last", json.dumps(self.editor.state()))

    def _run_done(self) -> None:
        if self._activity is Activity.RUN_REQUESTED:  # not when quitting meanwhile
            self._activity = Activity.IDLE
        self._update_actions()

    def confirm_stop_all(self) -> None:
        if not commands.can_stop_all(self.ui_state())[0]:
            return  # nothing to stop: no dialog asking about 0 services
        services = self.bridge.services()
        essential = sum(1 for s in services if s.essential)
        self.stop_all_dialog = dialogs.stop_all(
            self, len(services), essential, self.bridge.busy, self._stop_all_confirmed
        )

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

    def new_journey(self) -> None:
        self.editor.replace_journey("a new, empty journey", self.editor.clear)

    def load_template(self, name: str) -> None:
        message = f"Loaded template {name}"
        self.editor.choose_template(name, lambda: self.statusBar().showMessage(message, 4000))

    def open_export_dialog(self) -> None:
        self.export_dialog = ExportDialog(self.bridge, self)
        self.export_dialog.open()  # non-blocking: no nested event loop

    def show_results(self) -> None:
        self.tabs.setCurrentWidget(self.results)

    def show_log(self) -> None:
        self.tabs.setCurrentWidget(self.logView)

    def show_about(self) -> None:
        dialogs.about(self, APP_TITLE, self.bridge.settings)

    def show_banner(self, text: str, kind: str = "info") -> None:
        self.central.banner.show_message(text, kind)

    def hide_banner(self) -> None:
        self.central.banner.dismiss()

    def set_presentation(self, on: bool) -> None:
        """Presentation mode on or off (app/ui/presentation.py)."""
        if on and not self.presentation.active:
            self.maximiser.set_available(False)  # the window's layout first, as it was
            self.compact.set(True)
            bars = (self.menuBar(), self.findChild(QWidget, "mainToolbar"), self.statusBar())
            chrome: list[QWidget] = [w for w in bars if w is not None]
            c = self.central
            self.presentation.enter(
                c.grid_box, c.rightSplitter, c.tabs, c.traffic_page, c.map_page, chrome
            )
        elif not on and self.presentation.active:
            self.presentation.leave()
            self.compact.set(False)
            self.maximiser.set_available(True)
        self.presentationAction.setChecked(self.presentation.active)
        self._leave_presentation.setEnabled(self.presentation.active)

    def changeEvent(self, event: QEvent) -> None:
        # The banner's and the big buttons' style sheets name colours, not palette roles: on a
        # light/dark switch (app/ui/theme.py) they are set again from the scheme now current.
        # Qt tells the window (no sheet of its own), not a widget that has a sheet.
        if event.type() == QEvent.Type.PaletteChange and hasattr(self, "buttons"):
            self.central.banner.restyle()
            for button in self.buttons.values():
                commands.style_big_button(button)
        super().changeEvent(event)

    # -- persistence (QSettings; the geometry in app/ui/layout.py) -----------------------------
    def _restore(self) -> None:
        s = self.qsettings
        ports = len(self.bridge.settings.ports)
        layout.restore_geometry(self, s, self.central.splitters(), ports)
        self.runOptions.set_strategy(str(s.value("run/cleanup", "all")))
        if not self._restore_journey(s.value("journey/last")):
            names = self.editor.template_names()
            if names:
                default = DEFAULT_TEMPLATE if DEFAULT_TEMPLATE in names else names[0]
                self.editor.load_template(default)
        if str(s.value(SETTING_PRESENTATION, "false")).lower() == "true":
            QTimer.singleShot(0, lambda: self.set_presentation(True))  # once the window shows
        pacing = self.bridge.settings.demo_pacing_ms or _int(s.value("demo/pacingMs"), 0)
        self.pacingSpin.setValue(pacing)
        self.bridge.set_pacing_ms(pacing)
        self.stage.set_pacing_ms(pacing)

    def _restore_journey(self, raw: object) -> bool:
        if not isinstance(raw, str) or not raw:
            return False
        try:
            self.editor.restore_state(json.loads(raw))
        except (ValueError, TypeError):
            return False
        return True

    def save_settings(self) -> None:
        s = self.qsettings
        s.setValue(SETTING_PRESENTATION, self.presentation.active)
        presenting = self.presentation.active
        layout.save_geometry(self, s, self.central.splitters(), presenting)
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

    def _opened(self) -> None:
        self._update_actions()
        if messages := self.bridge.startup_messages:
            self.show_banner("At start: " + "; ".join(messages), "info")

    # -- closing -------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        if self._activity is Activity.SHUT_DOWN or not self.bridge.is_open:
            self.save_settings()
            event.accept()
            return
        event.ignore()
        if self._activity is Activity.SHUTTING_DOWN:
            return
        if self.bridge.services() or self.bridge.busy:
            self.close_dialog = dialogs.quit_with_services(
                self, len(self.bridge.services()), self.bridge.busy, self.shutdown
            )
        else:
            self.shutdown()

    def shutdown(self) -> asyncio.Future[Any] | None:
        """Stop every service, close the core, then close the window."""
        if self._activity in (Activity.SHUTTING_DOWN, Activity.SHUT_DOWN):
            return None
        self._activity = Activity.SHUTTING_DOWN
        self.close_dialog = None
        self.statusBar().showMessage("Stopping services and closing…")
        self._update_actions()
        self.save_settings()
        return self._task(self._shutdown())

    async def _shutdown(self) -> None:
        try:
            await self.bridge.close()
        finally:
            self._activity = Activity.SHUT_DOWN
            QTimer.singleShot(0, self.close)


def _pacing_spin() -> QSpinBox:
    spin = QSpinBox()
    spin.setObjectName("pacingSpin")
    spin.setRange(0, MAX_PACING_MS)
    spin.setSingleStep(250)
    spin.setSuffix(" ms")
    spin.setSpecialValueText("off")
    spin.setToolTip("Slow each phase down (0–2 s) so an audience can follow")
    return spin


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
