"""Light and dark: the window follows the system's colour scheme (Qt 6.5+ `QStyleHints`).

`BIZOBS_COLOR_SCHEME=light|dark` overrides the system (screenshots, a projector that needs the
other one). Dark uses the Fusion style with a dark `QPalette`, since not every platform theme
gives Qt widgets a dark palette of their own; the views' state colours come from
`widgets/palette.py`, swapped to the same scheme (docs/architecture.md, "Parts and their rooms":
widgets read the palette, never a scheme of their own).
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QApplication

from app.ui.widgets.palette import Scheme, apply_scheme

ENV = "BIZOBS_COLOR_SCHEME"
RESOURCES = Path(__file__).resolve().parents[1] / "resources"
ICON = RESOURCES / "bizobs-panel.svg"
DESKTOP_FILE = "bizobs-panel"  # resources/bizobs-panel.desktop

DARK = {
    QPalette.ColorRole.Window: "#1e2125",
    QPalette.ColorRole.WindowText: "#e9ecef",
    QPalette.ColorRole.Base: "#15171a",
    QPalette.ColorRole.AlternateBase: "#25292e",
    QPalette.ColorRole.Text: "#e9ecef",
    QPalette.ColorRole.PlaceholderText: "#adb5bd",
    QPalette.ColorRole.Button: "#2b3035",
    QPalette.ColorRole.ButtonText: "#e9ecef",
    QPalette.ColorRole.ToolTipBase: "#2b3035",
    QPalette.ColorRole.ToolTipText: "#e9ecef",
    QPalette.ColorRole.Highlight: "#1971c2",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#74c0fc",
    QPalette.ColorRole.BrightText: "#ff8787",
}


def scheme_of(system: Qt.ColorScheme, override: str | None = None) -> Scheme:
    if override in ("light", "dark"):
        return "dark" if override == "dark" else "light"
    return "dark" if system == Qt.ColorScheme.Dark else "light"


def dark_palette() -> QPalette:
    palette = QPalette()
    for role, colour in DARK.items():
        palette.setColor(role, QColor(colour))
    for role in (
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
        QPalette.ColorRole.WindowText,
    ):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#868e96"))
    return palette


def apply(app: QApplication, scheme: Scheme) -> None:
    """Make `scheme` the window's: the Qt palette and the views' state colours."""
    apply_scheme(scheme)
    if scheme == "dark":
        app.setStyle("Fusion")
        app.setPalette(dark_palette())
    else:
        app.setPalette(app.style().standardPalette())
    for widget in app.topLevelWidgets():
        widget.update()


def follow_system(app: QApplication) -> Scheme:
    """Apply the system's scheme (or the override) now and whenever the system changes it."""
    hints = QGuiApplication.styleHints()
    scheme = scheme_of(hints.colorScheme(), os.environ.get(ENV))
    apply(app, scheme)
    if os.environ.get(ENV) not in ("light", "dark"):
        hints.colorSchemeChanged.connect(lambda s: apply(app, scheme_of(s)))
    return scheme


def install_icon(app: QApplication) -> None:
    app.setWindowIcon(QIcon(str(ICON)))
    app.setDesktopFileName(DESKTOP_FILE)  # Wayland/X11 match the window to the .desktop entry
