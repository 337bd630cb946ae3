"""The window's message banner: one line over the views for errors and notices, dismissable.

Its style sheet names colours (palette.NOTICE_COLOURS), not palette roles, so the window calls
`restyle` again on a light/dark switch.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget

from app.ui.widgets.palette import notice_colours


class Banner(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBannerRow")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel()
        self.label.setObjectName("messageBanner")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.label, 1)
        dismiss = QToolButton()
        dismiss.setText("✕")
        dismiss.setToolTip("Dismiss")
        dismiss.clicked.connect(self.dismiss)
        layout.addWidget(dismiss)
        # A refusal's banner goes once the journey is valid; any other banner stays until read.
        self.shows_refusal = False
        self.hide()

    def show_message(self, text: str, kind: str = "info") -> None:
        """`kind`: error, info or ok (its colours: palette.NOTICE_COLOURS)."""
        self.label.setText(text)
        self.label.setProperty("kind", kind)
        self.restyle()
        self.shows_refusal = False
        self.show()

    def dismiss(self) -> None:
        self.shows_refusal = False
        self.hide()
        self.label.clear()

    def restyle(self) -> None:
        kind = self.label.property("kind")
        if not kind:
            return  # no banner shown yet
        fill, text, border = notice_colours(str(kind))
        self.label.setStyleSheet(
            f"QLabel {{ background: {fill}; color: {text}; border: 1px solid {border};"
            " border-radius: 4px; padding: 6px; }"
        )
