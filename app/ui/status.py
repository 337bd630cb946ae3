"""What the window says about the core's outcomes: the status bar (run state, port counts,
export), its messages, the banner for failures and refusals, and the log's panel lines.

The run views show a run's progress themselves (they bind the stage); this is the chrome's
account of it: one line, short enough for a small window's status bar.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel, QMainWindow

from app.ui.bridge import CoreBridge, Problem
from app.ui.central import Central
from app.ui.commands import UiState
from app.ui.export_dialog import ExportIndicator
from app.ui.stage import Stage
from app.ui.widgets.palette import STOP_MARK, SWITCH_MARK, plural
from app.ui.widgets.phase_timeline import progress_text
from app.ui.widgets.port_grid import PortCounts


class StatusReports(QObject):
    def __init__(
        self,
        window: QMainWindow,
        central: Central,
        bridge: CoreBridge,
        state: Callable[[], UiState],
    ) -> None:
        super().__init__(window)
        self.bar = window.statusBar()
        self.central, self.state = central, state
        self._traffic: Any = None  # the latest TrafficStatus: the status bar says it runs
        self.runStateLabel = QLabel("Idle")
        self.runStateLabel.setObjectName("runStateLabel")
        self.countsLabel = PortCounts()
        self.exportIndicator = ExportIndicator(bridge, window)  # app/ui/export_dialog.py
        for widget in (self.runStateLabel, self.countsLabel, self.exportIndicator):
            self.bar.addPermanentWidget(widget)

    def bind(self, bridge: CoreBridge, stage: Stage) -> None:
        self.countsLabel.bind(stage)
        stage.runStarted.connect(self.run_started)
        stage.phaseEvent.connect(self.phase_event)
        stage.runFinished.connect(self.run_finished)
        stage.runProgress.connect(self.run_progress)
        bridge.trafficChanged.connect(self.traffic_changed)
        bridge.runRefused.connect(self.run_refused)
        bridge.commandFailed.connect(self.command_failed)
        bridge.stopAllFinished.connect(self.stop_all_finished)
        bridge.sweepFinished.connect(self.sweep_finished)
        bridge.serviceStopped.connect(lambda key: self.bar.showMessage(f"Stopped {key}", 5000))
        bridge.opened.connect(lambda: self.opened(bridge.startup_messages))

    def opened(self, messages: list[str]) -> None:
        if messages:  # what the core reported while opening
            self.central.banner.show_message("At start: " + "; ".join(messages), "info")

    def show_run_state(self, s: UiState) -> None:
        label = self.runStateLabel
        if not s.open:
            label.setText("Stopping…" if s.quitting else "Closed")
        elif s.busy:
            if not label.text().startswith("Running"):  # a phase's name stays until the next
                label.setText("Running…")
        elif not label.text().startswith("Stopping"):
            traffic = self._traffic
            running = traffic is not None and traffic.running
            label.setText(f"Traffic {traffic.achieved_rate:,.1f}/s" if running else "Idle")

    def traffic_changed(self, status: Any) -> None:
        self._traffic = status
        self.show_run_state(self.state())

    def run_started(self, _run_id: str, _company: str) -> None:
        self.bar.clearMessage()
        self.runStateLabel.setText("Running: starting…")

    def phase_event(self, event: Any) -> None:
        if event.status == "started":
            self.runStateLabel.setText(f"Running: {event.phase}…")

    def run_progress(self, progress: Any) -> None:
        """While the customers go through: "Running: simulate · 120 / 500 customers done · …"."""
        if self.runStateLabel.text().startswith("Running"):
            self.runStateLabel.setText(f"Running: simulate · {progress_text(progress)}")

    def run_finished(self, result: Any) -> None:
        c = self.central
        if not result.ok:
            c.banner.show_message(f"Run Journey failed: {result.error}", "error")
            return
        c.trafficChart.mark(time.time(), f"▶ {result.company}", SWITCH_MARK)  # a switch
        s = result.simulation.summary
        # Short enough for a small window's status bar; the results name the run in full.
        msg = (
            f"Run finished: {len(result.services)} services, "
            f"{s.completed}/{s.customers} customers, {result.total_ms:,.0f} ms"
        )
        self.bar.showMessage(msg, 15000)
        if c.tabs.currentWidget() is c.logView:
            # From the log to what the run produced; a presenter's live view (traffic,
            # journey map) stays on screen.
            c.tabs.setCurrentWidget(c.results)

    def run_refused(self, problems: list[Problem]) -> None:
        c = self.central
        c.editor.show_problems(problems, emphasise=True)
        first = problems[0].message if problems else "invalid input"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        c.banner.show_message(f"Run Journey refused, nothing was stopped: {first}{more}", "error")
        c.banner.shows_refusal = True
        self.bar.showMessage("Fix the journey first: nothing was stopped", 8000)
        c.logView.add(
            "panel", "Run Journey refused: " + "; ".join(p.message for p in problems), "warning"
        )

    def command_failed(self, command: str, message: str) -> None:
        self.central.banner.show_message(f"{command}: {message}", "error")
        self.central.logView.add("panel", f"{command} failed: {message}", "error")

    def stop_all_finished(self, report: Any) -> None:
        self.central.trafficChart.mark(time.time(), "■ Stop All", STOP_MARK)
        killed = f", {len(report.killed)} needed SIGKILL" if report.killed else ""
        self._tell(f"Stop All: stopped {report.count} services{killed}")

    def sweep_finished(self, counts: dict[str, int]) -> None:
        stale, orphans = counts.get("staleCleaned", 0), counts.get("orphansReaped", 0)
        self._tell(
            f"Sweep: {plural(stale, 'stale allocation')} released, "
            f"{plural(orphans, 'orphan')} stopped"
        )

    def _tell(self, msg: str) -> None:
        """A finished command: the status bar for now, the log for later."""
        self.bar.showMessage(msg, 10000)
        self.central.logView.add("panel", msg)
