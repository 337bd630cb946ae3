"""The window's commands as data (docs/architecture.md, "The window").

One table, `COMMANDS`: each command's id (its QAction's objectName), text, shortcut, tip, the
method of the window that runs it and, for the commands that can be unavailable, a predicate
over one `UiState` snapshot that says whether it is enabled and why not. Menus, toolbar and the
big buttons under the editor are built from the table, and enablement is derived from one
snapshot only, so a command is enabled exactly when it can do something, wherever it is shown.
The shape follows app-model's `Action` (without the dependency).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QMenuBar, QPushButton, QToolBar, QWidget

from app.ui.activity import Activity
from app.ui.bridge import Problem
from app.ui.widgets.palette import button_colours

Shortcut = str | QKeySequence.StandardKey | None
Enablement = tuple[bool, str]  # enabled, and the tooltip that says what it does or why not


@dataclass(frozen=True)
class UiState:
    """One snapshot of everything enablement depends on."""

    activity: Activity
    core_open: bool
    core_busy: bool
    services: int
    stale: int
    problems: tuple[Problem, ...] = ()

    @property
    def quitting(self) -> bool:
        return self.activity in (Activity.SHUTTING_DOWN, Activity.SHUT_DOWN)

    @property
    def open(self) -> bool:
        return self.core_open and not self.quitting

    @property
    def busy(self) -> bool:
        return self.core_busy or self.activity is Activity.RUN_REQUESTED


RUN_TIP = "Stop the previous journey, wait, sweep, launch these services, drive customers"
STOP_ALL_TIP = "Stop every service of this panel, essential ones included (asks first)"
SWEEP_TIP = "Release stale allocations and stop orphans of an earlier panel run"
PRESENTATION_TIP = (
    "Full screen for a projector: phases, grid, map and charts large; F11 or Esc leaves"
)


def problem_lines(problems: tuple[Problem, ...] | list[Problem], limit: int = 8) -> str:
    lines = [f"• {p.message}" for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"… and {len(problems) - limit} more")
    return "\n".join(lines)


def can_run(s: UiState) -> Enablement:
    if not s.open:
        return False, "The panel is not open"
    if s.busy:
        return False, "A journey run is in progress"
    if s.problems:
        return False, "Cannot run this journey yet:\n" + problem_lines(s.problems)
    return True, RUN_TIP + " (Ctrl+R)"


def can_stop_all(s: UiState) -> Enablement:
    # While a run starts, its services are not counted yet: Stop All cancels the run then.
    something = s.services > 0 or s.busy
    return s.open and something, STOP_ALL_TIP if something else "Nothing is running"


def can_sweep(s: UiState) -> Enablement:
    tip = SWEEP_TIP if s.stale else "Nothing is stale: the grid shows no stale port"
    return s.open and not s.busy and s.stale > 0, tip


@dataclass(frozen=True)
class BigButton:
    """A command's large button under the editor: white on a strong colour."""

    text: str
    name: str  # objectName
    colours: str  # its key in palette.BUTTON_COLOURS


@dataclass(frozen=True)
class Command:
    id: str  # the QAction's objectName
    text: str
    handler: str  # the window's attribute that runs it ("files.open_dialog": a part's method)
    shortcut: Shortcut = None
    tip: str = ""
    enablement: Callable[[UiState], Enablement] | None = None  # None: always enabled
    checkable: bool = False  # `handler` is then given the new checked state
    window_wide: bool = False  # its shortcut works with the menus hidden (presentation mode)
    button: BigButton | None = None


Std = QKeySequence.StandardKey
COMMANDS: tuple[Command, ...] = (
    Command("runJourneyAction", "&Run Journey", "run_journey", "Ctrl+R", RUN_TIP, can_run,
            window_wide=True, button=BigButton("▶  Run Journey", "runJourneyButton", "run")),
    Command("stopAllAction", "&Stop All", "confirm_stop_all", "Ctrl+Shift+X", STOP_ALL_TIP,
            can_stop_all, window_wide=True,
            button=BigButton("■  Stop All", "stopAllButton", "stop")),
    Command("sweepAction", "S&weep stale now", "requests.sweep", None, SWEEP_TIP, can_sweep),
    Command("newJourneyAction", "&New Journey", "new_journey", Std.New),
    Command("openJourneyAction", "&Open Journey…", "files.open_dialog", Std.Open),
    Command("saveJourneyAction", "&Save Journey As…", "files.save_dialog", Std.SaveAs),
    Command("exportSettingsAction", "&Export settings…", "open_export_dialog"),
    Command("quitAction", "&Quit", "close", Std.Quit),
    Command("showResultsAction", "Show &Results", "central.show_results", "Ctrl+1"),
    Command("showLogAction", "Show &Log", "central.show_log", "Ctrl+2"),
    Command("clearLogAction", "&Clear Log", "logView.clear"),
    Command("refreshPortsAction", "Refresh &ports now", "bridge.refresh_ports", "F5"),
    Command("presentationAction", "&Presentation", "presenting.set", "F11", PRESENTATION_TIP,
            checkable=True, window_wide=True),
    Command("aboutAction", "&About", "show_about"),
)  # fmt: skip

# Where the commands appear: command ids, "|" a separator, "@name" a place the window fills
# with what is not a command (the template and scenario submenus, the view toggles).
MENUS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("&File", ("newJourneyAction", "openJourneyAction", "saveJourneyAction", "@templates",
               "|", "@scenarios", "|", "exportSettingsAction", "|", "quitAction")),
    ("&Services", ("runJourneyAction", "stopAllAction", "sweepAction")),
    ("&View", ("@toolbar", "@editor", "|", "showResultsAction", "showLogAction",
               "clearLogAction", "refreshPortsAction", "|", "presentationAction")),
    ("&Help", ("aboutAction",)),
)  # fmt: skip
TOOLBAR: tuple[str, ...] = ("runJourneyAction", "stopAllAction", "sweepAction")


def resolve(owner: object, handler: str) -> Callable[..., Any]:
    """`owner`'s attribute named by a dotted path: a missing handler fails at construction."""
    target: Any = owner
    for part in handler.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"command handler {handler!r} is not callable")
    return target  # type: ignore[no-any-return]


def make_actions(owner: QWidget, table: tuple[Command, ...] = COMMANDS) -> dict[str, QAction]:
    actions: dict[str, QAction] = {}
    for command in table:
        action = QAction(command.text, owner)
        action.setObjectName(command.id)
        if command.shortcut:
            action.setShortcut(QKeySequence(command.shortcut))
        if command.tip:
            action.setToolTip(command.tip)
            action.setStatusTip(command.tip)
        action.setCheckable(command.checkable)
        action.triggered.connect(resolve(owner, command.handler))
        if command.window_wide:
            owner.addAction(action)
        actions[command.id] = action
    return actions


def fill_menus(
    bar: QMenuBar,
    actions: Mapping[str, QAction],
    places: Mapping[str, Callable[[QMenu], None]],
) -> dict[str, QMenu]:
    menus: dict[str, QMenu] = {}
    for title, entries in MENUS:
        menu = menus[title] = bar.addMenu(title)
        for entry in entries:
            if entry == "|":
                menu.addSeparator()
            elif entry.startswith("@"):
                places[entry[1:]](menu)
            else:
                menu.addAction(actions[entry])
    return menus


def fill_toolbar(toolbar: QToolBar, actions: Mapping[str, QAction]) -> None:
    for command_id in TOOLBAR:
        toolbar.addAction(actions[command_id])


def make_buttons(
    actions: Mapping[str, QAction], table: tuple[Command, ...] = COMMANDS
) -> dict[str, QPushButton]:
    """The big buttons, keyed by command id; a click triggers the command's action."""
    buttons: dict[str, QPushButton] = {}
    for command in table:
        if command.button is None:
            continue
        button = QPushButton(command.button.text)
        button.setObjectName(command.button.name)
        button.setMinimumHeight(36)
        button.setProperty("colours", command.button.colours)  # styled again on a scheme switch
        style_big_button(button)
        button.clicked.connect(actions[command.id].trigger)
        buttons[command.id] = button
    return buttons


def style_big_button(button: QPushButton) -> None:
    fill, text = button_colours(str(button.property("colours")))
    off_fill, off_text = button_colours("disabled")
    button.setStyleSheet(
        f"QPushButton {{ background: {fill}; color: {text}; font-weight: bold;"
        " border-radius: 4px; padding: 6px 14px; }"
        f"QPushButton:disabled {{ background: {off_fill}; color: {off_text}; }}"
    )


def enablement(state: UiState, table: tuple[Command, ...] = COMMANDS) -> dict[str, Enablement]:
    """Every conditional command's enablement, keyed by command id."""
    return {c.id: c.enablement(state) for c in table if c.enablement is not None}


def apply_enablement(
    state: UiState,
    actions: Mapping[str, QAction],
    buttons: Mapping[str, QPushButton],
) -> None:
    for command_id, (enabled, tip) in enablement(state).items():
        widgets: list[QAction | QPushButton] = [actions[command_id]]
        if command_id in buttons:
            widgets.append(buttons[command_id])
        for widget in widgets:
            widget.setEnabled(enabled)
            widget.setToolTip(tip)
