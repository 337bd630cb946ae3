"""The window's metrics and alerts (docs/architecture.md, "Metrics and alerts"): the Metrics
tab fed from the core's registry, and each alert shown at once — a banner across the window
with Acknowledge, the status bar, and a desktop notification where a system tray exists.

Kept out of MainWindow: the window only places the banner and the tab.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QScrollArea,
    QSystemTrayIcon,
    QWidget,
)

from app.ui.bridge import Alert, AlertChange, AlertEvent, CoreBridge
from app.ui.widgets.metrics_view import MetricsView
from app.ui.widgets.palette import notice_colours

REFRESH_MS = 2000  # the Metrics tab, while it is on screen


class AlertBanner(QWidget):
    """The oldest alert not yet acknowledged, in words, with Acknowledge; hidden when none."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("alertBanner")
        self.alert_id = ""
        self.label = QLabel()
        self.label.setObjectName("alertBannerText")
        self.label.setWordWrap(True)
        self.ackButton = QPushButton("Acknowledge")
        self.ackButton.setObjectName("alertBannerAck")
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 8, 4)
        row.addWidget(self.label, 1)
        row.addWidget(self.ackButton)
        self.setAutoFillBackground(True)
        self.hide()

    def show_alerts(self, waiting: tuple[Alert, ...]) -> None:
        if not waiting:
            self.alert_id = ""
            self.hide()
            return
        first = waiting[0]
        self.alert_id = first.id
        more = f"  (+{len(waiting) - 1} more on the Metrics tab)" if len(waiting) > 1 else ""
        self.label.setText(f"⚠ {first.message}{more}")
        fill, text, border = notice_colours("error")  # the scheme's now (it may have switched)
        self.setStyleSheet(
            f"#alertBanner {{ background: {fill}; border: 1px solid {border}; }}"
            f"#alertBannerText {{ color: {text}; font-weight: bold; }}"
        )
        self.show()


class AlertsWiring(QObject):
    def __init__(self, bridge: CoreBridge, window: QMainWindow) -> None:
        super().__init__(window)
        self.bridge, self.window = bridge, window
        self.view = MetricsView()
        # The tab scrolls rather than raise the window's minimum height (a 720 px screen).
        self.page = QScrollArea()
        self.page.setObjectName("metricsScroll")
        self.page.setWidgetResizable(True)
        self.page.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.page.setFrameShape(QFrame.Shape.NoFrame)
        self.page.setWidget(self.view)
        self.banner = AlertBanner()
        # In the status bar for as long as an alert waits: a run's own messages pass over it.
        self.statusLabel = QLabel()
        self.statusLabel.setObjectName("alertStatus")
        self.statusLabel.hide()
        window.statusBar().addPermanentWidget(self.statusLabel)
        self.tray: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():  # a desktop notification where one exists
            self.tray = QSystemTrayIcon(window.windowIcon(), self)
            self.tray.show()
        self.banner.ackButton.clicked.connect(lambda: self.ack(self.banner.alert_id))
        self.view.ackRequested.connect(self.ack)
        bridge.alertChanged.connect(self.on_alert)
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def ack(self, alert_id: str) -> None:
        if alert_id:
            self.bridge.ack_alert(alert_id)  # its AlertEvent redraws the banner and the tab

    def on_alert(self, event: AlertEvent) -> None:
        waiting = tuple(a for a in self.bridge.alerts() if not a.acknowledged)
        self.banner.show_alerts(waiting)
        self.statusLabel.setText(f"⚠ {len(waiting)} alert{'s' * (len(waiting) != 1)} waiting")
        self.statusLabel.setToolTip("\n".join(a.message for a in waiting))
        self.statusLabel.setVisible(bool(waiting))
        if event.change is AlertChange.RAISED and self.tray is not None:
            title = f"BizObs panel: {event.alert.kind.value.replace('_', ' ')}"
            message = event.alert.message
            self.tray.showMessage(title, message, QSystemTrayIcon.MessageIcon.Warning)
        self.refresh()

    def _tick(self) -> None:
        if self.view.isVisible():
            self.refresh()

    def refresh(self) -> None:
        found = self.bridge.metrics()
        if found is not None:
            self.view.show_metrics(*found)
