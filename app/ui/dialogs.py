"""The window's questions and notes: Stop All, Quit, About.

Each is opened non-blocking (`open()` + signals): the asyncio loop runs on Qt's, and a nested
Qt loop inside a coroutine would break it. `on_yes` runs when the operator confirms.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from app.ui.bridge import Settings
from app.ui.widgets.palette import plural


def _box(parent: QWidget, name: str, icon: QMessageBox.Icon, title: str) -> QMessageBox:
    box = QMessageBox(parent)
    box.setObjectName(name)
    box.setIcon(icon)
    box.setWindowTitle(title)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    return box


def stop_all(
    parent: QWidget, services: int, essential: int, busy: bool, on_yes: Callable[[], object]
) -> QMessageBox:
    box = _box(parent, "stopAllDialog", QMessageBox.Icon.Warning, "Stop All")
    box.setText(f"Stop all {plural(services, 'service')} of this panel ({essential} essential)?")
    info = (
        "Continuous traffic stops too (Start it again on the Traffic tab). Essential "
        "services are stopped too; the next Run Journey starts them again."
    )
    if busy:
        info = "The journey run in progress is cancelled first (it rolls back). " + info
    box.setInformativeText(info)
    confirm = box.addButton("Stop All", QMessageBox.ButtonRole.DestructiveRole)
    confirm.setObjectName("confirmStopAllButton")
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(cancel)  # a destructive command: Enter does not confirm it
    box.setEscapeButton(cancel)
    box.buttonClicked.connect(lambda b: on_yes() if b is confirm else None)
    box.open()
    return box


def quit_with_services(
    parent: QWidget, services: int, busy: bool, on_yes: Callable[[], object]
) -> QMessageBox:
    box = _box(parent, "closeDialog", QMessageBox.Icon.Question, "Quit")
    running = f"{services} service{'s are' if services != 1 else ' is'} running"
    if busy:
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
    box.buttonClicked.connect(lambda b: on_yes() if b is quit_button else None)
    box.open()
    return box


def about(parent: QWidget, title: str, s: Settings) -> QMessageBox:
    box = _box(parent, "aboutDialog", QMessageBox.Icon.NoIcon, f"About {title}")
    box.setText(f"<b>{title}</b>")
    box.setInformativeText(
        "Describe a customer journey, press Run Journey: the panel stops the previous "
        "journey's services, waits until they are gone, sweeps stale ports, launches one "
        "real HTTP service per step and drives simulated customers through the chain.<br><br>"
        f"Port pool {s.port_lo}–{s.port_hi} · state {s.state_dir}"
    )
    box.open()
    return box
