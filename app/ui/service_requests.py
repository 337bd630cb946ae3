"""The views' requests about running services and their traffic — stop or restart one, stop a
journey, sweep, open a service's health page, start or stop continuous traffic or change its
rate — turned into the bridge's commands.

The views only emit requests (widgets never reach the bridge); what each request does, and
what the log says about it, is decided here.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QUrl
from PySide6.QtGui import QDesktopServices

from app.ui.activity import WindowActivity
from app.ui.bridge import CoreBridge
from app.ui.central import Central


class ServiceRequests(QObject):
    def __init__(
        self,
        central: Central,
        bridge: CoreBridge,
        activity: WindowActivity,
        report: Callable[[str], None],
    ) -> None:
        """`report` says in the status bar that a health page opened."""
        super().__init__(central)
        self.central, self.bridge, self.activity, self.report = central, bridge, activity, report
        grid = central.grid
        grid.stopServiceRequested.connect(self.stop_service)
        grid.restartServiceRequested.connect(self.restart_service)
        grid.openHealthRequested.connect(self.open_health)
        grid.sweepRequested.connect(self.sweep)
        central.journeyMap.restartRequested.connect(self.restart_service)
        central.journeysList.stopRequested.connect(self.stop_journey)
        traffic = central.trafficControl
        traffic.startRequested.connect(self.start_traffic)
        traffic.rateRequested.connect(self.start_traffic)  # a running stream takes a new rate
        traffic.stopRequested.connect(self.stop_traffic)
        traffic.set_available(True)

    def sweep(self) -> None:
        if self.bridge.is_open:
            self.activity.task(self.bridge.sweep())

    def stop_service(self, key: str) -> None:
        if self.bridge.is_open:
            self.central.logView.add("panel", f"stopping {key} (from the port grid)")
            self.activity.task(self.bridge.stop_service(key))

    def stop_journey(self, journey_id: str) -> None:
        if self.bridge.is_open:
            where = "(from the Journeys list)"
            self.central.logView.add("panel", f"stopping journey {journey_id} {where}")
            self.activity.task(self.bridge.stop_journey(journey_id))

    def start_traffic(self, rate: float) -> None:
        """Start traffic at `rate`, or give a running stream its new rate; a refusal (no
        journey running, a bad rate) comes back as the bridge's commandFailed."""
        self.activity.task(self.bridge.start_traffic(rate))

    def stop_traffic(self) -> None:
        self.activity.task(self.bridge.stop_traffic())

    def restart_service(self, key: str) -> None:
        self.activity.task(self.bridge.restart_service(key))

    def open_health(self, port: int) -> None:
        url = f"http://127.0.0.1:{port}/health"
        if QDesktopServices.openUrl(QUrl(url)):
            self.report(f"Opened {url} in the browser")
        else:  # no browser on this desktop: say so, and leave the address to copy
            msg = f"No browser could open {url} — copy the address to check it."
            self.central.banner.show_message(msg)
