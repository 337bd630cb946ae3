"""The window's structure (issue 22, "Easy to change"): the commands as one table over one
`UiState`, New/Open over an edited journey asking like a template does, and any main pane
maximised and back. A window over a bridge that is not opened: no services are needed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMessageBox, QPushButton, QToolButton

from app.core.journeys import load_template, write_journey_file
from app.core.settings import Settings
from app.ui import commands
from app.ui.activity import Activity
from app.ui.bridge import CoreBridge, Problem
from app.ui.commands import COMMANDS, UiState
from app.ui.main_window import MainWindow
from tests.ui.conftest import ui_settings


@pytest.fixture
def window(qtbot: Any, settings: Settings, tmp_path: Path) -> Iterator[MainWindow]:
    bridge = CoreBridge(settings)
    w = MainWindow(bridge, ui_settings(tmp_path))
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    yield w
    bridge.deleteLater()


def action(w: MainWindow, text: str) -> QAction:
    return next(a for a in w.findChildren(QAction) if a.text() == text)


def edit_company(qtbot: Any, w: MainWindow, name: str) -> None:
    w.editor.companyNameEdit.clear()
    qtbot.keyClicks(w.editor.companyNameEdit, name)
    assert w.editor.is_edited()


def answer(qtbot: Any, w: MainWindow, discard: bool) -> None:
    """The Discard changes? question is open (non-blocking): answer it as the operator does."""
    dialog = w.editor.discard_dialog
    assert dialog is not None, "no Discard changes? question"
    qtbot.waitUntil(dialog.isVisible, timeout=2_000)
    assert dialog.text() == "Discard changes?"
    if discard:
        dialog.findChild(QPushButton, "discardChangesButton").click()
    else:
        dialog.button(QMessageBox.StandardButton.Cancel).click()
    qtbot.waitUntil(lambda: w.editor.discard_dialog is None, timeout=2_000)


def test_new_journey_over_an_edited_journey_asks_to_discard_it(
    qtbot: Any, window: MainWindow
) -> None:
    w, new = window, action(window, "&New Journey")
    edit_company(qtbot, w, "My Own Co")
    new.trigger()
    answer(qtbot, w, discard=False)  # No: the journey is kept
    assert w.editor.companyNameEdit.text() == "My Own Co"
    new.trigger()
    answer(qtbot, w, discard=True)  # Yes: a new, empty journey replaces it
    assert w.editor.companyNameEdit.text() == "" and not w.editor.is_edited()
    new.trigger()  # an empty form is no work to lose: no question
    assert w.editor.discard_dialog is None


def test_open_journey_over_an_edited_journey_asks_to_discard_it(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    w = window
    data = load_template("banking").to_json() | {"companyName": "From A File"}
    path = tmp_path / "trip.json"
    write_journey_file(str(path), data)

    def open_file() -> None:
        action(w, "&Open Journey…").trigger()
        dialog = w.findChildren(QFileDialog)[-1]
        dialog.fileSelected.emit(str(path))  # as if picked (its view needs no real screen)
        dialog.reject()

    edit_company(qtbot, w, "My Own Co")
    open_file()
    answer(qtbot, w, discard=False)
    assert w.editor.companyNameEdit.text() == "My Own Co"
    open_file()
    answer(qtbot, w, discard=True)
    assert w.editor.companyNameEdit.text() == "From A File" and not w.editor.is_edited()


def sizes(w: MainWindow) -> list[list[int]]:
    return [s.sizes() for s in (w.mainSplitter, w.rightSplitter, w.bottomSplitter)]


def test_a_pane_maximised_hides_the_others_and_esc_restores_the_exact_sizes(
    qtbot: Any, window: MainWindow
) -> None:
    w = window
    w.mainSplitter.setSizes([450, 950])  # not the defaults: the operator's own layout
    w.bottomSplitter.setSizes([300, 640])
    before = sizes(w)
    grid_box = w.grid.parentWidget()
    assert grid_box is not None
    title = QPoint(40, grid_box.contentsRect().top() // 2)
    qtbot.mouseDClick(grid_box, Qt.MouseButton.LeftButton, pos=title)
    assert w.maximiser.maximised is grid_box
    assert grid_box.isVisible()
    assert not w.central.left.isVisible() and not w.bottomSplitter.isVisible()

    w.activateWindow()
    qtbot.waitUntil(lambda: w.isActiveWindow(), timeout=2_000)
    qtbot.keyClick(w, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: w.maximiser.maximised is None, timeout=2_000)
    assert w.central.left.isVisible() and w.bottomSplitter.isVisible()
    assert sizes(w) == before

    # The bottom tabs by their small button, and back by it; the others by theirs.
    button = w.findChild(QToolButton, "tabsMaximiseButton")
    button.click()
    hidden = (w.central.left, w.central.grid_box, w.central.timeline_box)
    assert w.tabs.isVisible() and not any(p.isVisible() for p in hidden)
    button.click()
    assert all(p.isVisible() for p in hidden) and sizes(w) == before
    for name in ("editor", "grid", "phases"):
        assert w.findChild(QToolButton, f"{name}MaximiseButton") is not None


def test_presentation_mode_first_restores_a_maximised_pane(qtbot: Any, window: MainWindow) -> None:
    w = window
    before = sizes(w)
    w.maximiser.toggle(w.tabs)
    w.set_presentation(True)
    assert w.maximiser.maximised is None
    w.set_presentation(False)
    qtbot.waitUntil(lambda: w.central.left.isVisible(), timeout=2_000)
    assert sizes(w) == before


def test_every_command_is_one_action_its_menus_and_buttons_follow_one_state(
    window: MainWindow,
) -> None:
    w = window
    menu_actions = {a.objectName() for m in w.menus.values() for a in m.actions()}
    for command in COMMANDS:
        found = w.findChild(QAction, command.id)
        assert found is w.commands[command.id] and command.id in menu_actions
    closed = UiState(Activity.IDLE, core_open=False, core_busy=False, services=0, stale=0)
    assert not any(enabled for enabled, _tip in commands.enablement(closed).values())
    idle = UiState(Activity.IDLE, core_open=True, core_busy=False, services=2, stale=1)
    assert all(enabled for enabled, _tip in commands.enablement(idle).values())
    running = UiState(Activity.RUN_REQUESTED, True, False, services=2, stale=1)
    rules = commands.enablement(running)
    assert rules["runJourneyAction"] == (False, "A journey run is in progress")
    assert rules["stopAllAction"][0] and not rules["sweepAction"][0]
    invalid = UiState(Activity.IDLE, True, False, 0, 0, (Problem("companyName", "empty"),))
    assert commands.can_run(invalid)[1] == "Cannot run this journey yet:\n• empty"
    quitting = UiState(Activity.SHUTTING_DOWN, True, False, services=2, stale=1)
    assert not any(enabled for enabled, _tip in commands.enablement(quitting).values())
    # The window's big buttons are the same commands: the same enablement and tip.
    commands.apply_enablement(running, w.commands, w.buttons)
    assert not w.runJourneyButton.isEnabled()
    assert w.runJourneyButton.toolTip() == w.runAction.toolTip()
