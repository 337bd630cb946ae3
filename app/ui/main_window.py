"""The main window: assembly and chrome (docs/architecture.md, "The window").

It builds the parts (central widget, commands, status bar, journey files, layout, maximiser,
presentation mode, the views' service requests, its own activity) and binds them; commands are
enabled from one `UiState`. It reaches the core only through `CoreBridge`. Dialogs never block:
a nested Qt loop inside a coroutine would break the asyncio loop that runs on Qt's.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from PySide6.QtCore import QEvent, QSettings, QTimer
from PySide6.QtGui import QAction, QCloseEvent
from PySide6.QtWidgets import QLabel, QMainWindow, QMenu, QMessageBox

from app.ui import commands, dialogs, layout
from app.ui.activity import Activity, WindowActivity
from app.ui.alerts_wiring import AlertsWiring
from app.ui.bridge import CoreBridge, Problem, TaskOwner
from app.ui.central import Central
from app.ui.commands import UiState
from app.ui.export_dialog import ExportDialog
from app.ui.incidents_wiring import IncidentsWiring
from app.ui.journey_files import JourneyFiles
from app.ui.maximise import PaneMaximiser
from app.ui.pacing import PacingSpin
from app.ui.presentation import SETTING as SETTING_PRESENTATION
from app.ui.presentation import Presentation
from app.ui.service_requests import ServiceRequests
from app.ui.stage import Stage
from app.ui.status import StatusReports

APP_TITLE = "BizObs Journey Control Panel"


def default_qsettings() -> QSettings:
    return QSettings("BizObs", "JourneyControlPanel")


class MainWindow(QMainWindow):
    def __init__(self, bridge: CoreBridge, qsettings: QSettings | None = None) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.bridge, self.qsettings = bridge, qsettings or default_qsettings()
        self.activity = WindowActivity(self)
        self._problems: tuple[Problem, ...] = ()  # the journey's validation problems
        self.stop_all_dialog: QMessageBox | None = None
        self.close_dialog: QMessageBox | None = None
        self.stage = Stage(self)
        s = bridge.settings
        self.setWindowTitle(f"{APP_TITLE} — ports {s.port_lo}–{s.port_hi}")
        self._assemble(Central(len(s.ports)))
        self.editor.set_max_steps(len(s.ports))
        self._restore()
        if bridge.last_ports:
            self.stage.on_ports(bridge.last_ports)
        self._update_actions()

    # -- assembly ------------------------------------------------------------------------------
    def _assemble(self, c: Central) -> None:
        self.central = c
        self.setCentralWidget(c)
        self._name_views(c)
        self.incidents = IncidentsWiring(
            self.bridge, self.activity.task, self.grid, self.journeyMap, self.trafficChart, self
        )
        c.tabs.addTab(self.incidents.list, "Incidents")
        c.add_over_views(self.incidents.strip)
        self.alerts = AlertsWiring(self.bridge, self)  # the Metrics tab and the alert banner
        c.tabs.addTab(self.alerts.page, "Metrics")
        c.add_over_views(self.alerts.banner)  # an alert comes first, over an incident
        self.status = StatusReports(self, c, self.bridge, self.ui_state)
        self.runStateLabel, self.countsLabel = self.status.runStateLabel, self.status.countsLabel
        self.exportIndicator = self.status.exportIndicator
        say = self.statusBar().showMessage
        self.files = JourneyFiles(
            self, self.editor, self.qsettings, lambda m: say(m, 4000), self._error_banner
        )
        self.requests = ServiceRequests(c, self.bridge, self.activity, lambda m: say(m, 5000))
        self.sweep, self.open_health = self.requests.sweep, self.requests.open_health
        self.pacingSpin = PacingSpin(self.bridge, self.qsettings)
        self.presentation = Presentation(
            self, self.pages, self.editor.template_names(), self.load_template,
            self.run_journey, self.confirm_stop_all,
        )  # fmt: skip
        self.maximiser = PaneMaximiser(self, c.splitters())
        self.maximiser.add_group_box(c.grid_box, "grid")
        self.maximiser.add_group_box(c.timeline_box, "phases")
        self.maximiser.add_tabs(c.tabs, "tabs")
        self.presenting = layout.PresentationLayout(
            self, c, self.presentation, self.maximiser,
            lambda on: self.presentationAction.setChecked(on),
        )  # fmt: skip
        self.set_presentation = self.presenting.set
        self._build_commands()
        c.buttons.addWidget(self.maximiser.add_pane(c.left, "editor"))
        self._connect()

    def _name_views(self, c: Central) -> None:
        """The views by name, as the window's users (tests, scripts) reach them."""
        self.banner, self._banner_row = c.banner.label, c.banner
        self.show_banner, self.hide_banner = c.banner.show_message, c.banner.dismiss
        self.editor, self.grid, self.runOptions = c.editor, c.grid, c.runOptions
        self.timeline, self.timelineChart = c.timeline, c.timelineChart
        self.timelineTabs, self.results, self.logView = c.timelineTabs, c.results, c.logView
        self.tabs, self.pages, self._map_page = c.tabs, c.pages, c.map_page
        self.trafficControl, self.trafficChart = c.trafficControl, c.trafficChart
        self.trafficTraces, self.journeyMap = c.trafficTraces, c.journeyMap
        self.journeysList = c.journeysList
        self.mainSplitter, self.rightSplitter, self.bottomSplitter = c.splitters()

    def _build_commands(self) -> None:
        a = self.commands = commands.make_actions(self)
        self.runAction, self.stopAllAction = a["runJourneyAction"], a["stopAllAction"]
        self.sweepAction, self.saveAction = a["sweepAction"], a["saveJourneyAction"]
        self.presentationAction = a["presentationAction"]
        b = self.buttons = commands.make_buttons(a)
        self.runJourneyButton, self.stopAllButton = b["runJourneyAction"], b["stopAllAction"]
        self.central.buttons.addWidget(self.runJourneyButton, 2)
        self.central.buttons.addWidget(self.stopAllButton, 1)
        toolbar = self.addToolBar("Toolbar")  # the View menu's toggle reads this title
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        commands.fill_toolbar(toolbar, a)
        toolbar.addSeparator()
        toolbar.addWidget(QLabel(" Demo pacing per phase: "))
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

    def _templates_menu(self, file_menu: QMenu) -> None:
        templates = file_menu.addMenu("&Templates")
        for name in self.editor.template_names():
            templates.addAction(name, partial(self.load_template, name))

    def _connect(self) -> None:
        b, st = self.bridge, self.stage
        # Run displays go through the stage: grid and timeline change together, paced
        # (app/ui/stage.py); the log shows events as they happen.
        st.bind(b)
        self.central.bind(b, st)
        self.runOptions.strategy.currentIndexChanged.connect(
            lambda _i: self.qsettings.setValue("run/cleanup", self.runOptions.cleanup())
        )
        # The window's own chrome: enablement, run state, status bar, banner.
        self.status.bind(b, st)
        st.phaseEvent.connect(self.presentation.on_phase)
        st.runStarted.connect(self.presentation.on_run_started)
        st.runProgress.connect(self.presentation.on_progress)
        self.editor.validated.connect(self._validated)
        self.activity.changed.connect(self._update_actions)
        self.activity.failed.connect(self._error_banner)
        self.activity.shutDown.connect(lambda: QTimer.singleShot(0, self.close))
        for signal in (st.portsChanged, st.runFinished, b.commandFailed, b.stopAllFinished,
                       b.busyChanged, b.closed, b.opened):  # fmt: skip
            signal.connect(self._update_actions)

    # -- state and enablement ------------------------------------------------------------------
    @property
    def _run_pending(self) -> bool:
        return self.activity.state is Activity.RUN_REQUESTED

    @property
    def _tasks(self) -> TaskOwner:
        return self.activity.tasks

    def ui_state(self) -> UiState:
        open_ = self.bridge.is_open
        return UiState(
            activity=self.activity.state,
            core_open=open_,
            core_busy=self.bridge.busy,
            services=len(self.bridge.services()) if open_ else 0,
            stale=self.grid.counts().get("stale", 0),
            problems=self._problems,
        )

    def _update_actions(self, *_args: object) -> None:
        state = self.ui_state()
        commands.apply_enablement(state, self.commands, self.buttons)
        self.status.show_run_state(state)

    def _validated(self, problems: list[Problem]) -> None:
        self._problems = tuple(problems)
        if not problems and self.central.banner.shows_refusal:
            self.hide_banner()
        self._update_actions()

    # -- commands (their table: app/ui/commands.py) --------------------------------------------
    def run_journey(self) -> None:
        state = self.ui_state()
        if not state.open or state.busy:
            return  # closed or busy: the disabled button says why
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
        self.activity.run(self.bridge.run_journey(data, **params))
        self.files.save_last()

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
        self.activity.task(self.bridge.stop_all())

    def new_journey(self) -> None:
        self.editor.replace_journey("a new, empty journey", self.editor.clear)

    def load_template(self, name: str) -> None:
        message = f"Loaded template {name}"
        self.editor.choose_template(name, lambda: self.statusBar().showMessage(message, 4000))

    def open_export_dialog(self) -> None:
        self.export_dialog = ExportDialog(self.bridge, self)
        self.export_dialog.open()

    def show_about(self) -> None:
        dialogs.about(self, APP_TITLE, self.bridge.settings)

    def _error_banner(self, text: str) -> None:
        self.show_banner(text, "error")

    def changeEvent(self, event: QEvent) -> None:
        # The banner's and the big buttons' style sheets name colours, not palette roles: on a
        # light/dark switch (app/ui/theme.py) they are set again from the scheme now current.
        # Qt tells the window (no sheet of its own), not a widget that has a sheet.
        if event.type() == QEvent.Type.PaletteChange:
            self.central.banner.restyle()
            for button in self.buttons.values():
                commands.style_big_button(button)
        super().changeEvent(event)

    # -- persistence (QSettings; the window's geometry: app/ui/layout.py) ----------------------
    def _restore(self) -> None:
        s = self.qsettings
        layout.restore_geometry(self, s, self.central)
        self.runOptions.set_strategy(str(s.value("run/cleanup", "all")))
        self.files.restore_last()
        if str(s.value(SETTING_PRESENTATION, "false")).lower() == "true":
            QTimer.singleShot(0, lambda: self.set_presentation(True))  # once the window shows
        self.pacingSpin.restore()

    def save_settings(self) -> None:
        s, presenting = self.qsettings, self.presentation.active
        s.setValue(SETTING_PRESENTATION, presenting)
        layout.save_geometry(self, s, self.central.splitters(), presenting)
        self.files.save_last()
        self.pacingSpin.save()
        s.sync()

    # -- closing -------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        if self.activity.state is Activity.SHUT_DOWN or not self.bridge.is_open:
            self.save_settings()
            event.accept()
            return
        event.ignore()
        if self.activity.quitting:
            return
        if self.bridge.services() or self.bridge.busy:
            self.close_dialog = dialogs.quit_with_services(
                self, len(self.bridge.services()), self.bridge.busy, self.shutdown
            )
        else:
            self.shutdown()

    def shutdown(self) -> asyncio.Future[Any] | None:
        """Stop every service, close the core, then close the window."""
        if self.activity.quitting:
            return None
        self.close_dialog = None
        self.statusBar().showMessage("Stopping services and closing…")
        self.save_settings()
        return self.activity.shut_down(self.bridge.close())
