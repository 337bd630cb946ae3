"""Any main pane maximised (docs/architecture.md, "The window"): a double-click on its title or
its small button gives it the whole window; Esc, the button or a second double-click returns
to the layout before, splitter sizes exactly as they were.

Maximising hides the pane's siblings in every splitter above it rather than moving it (as
presentation mode moves views): nothing is re-parented, so nothing has to be put back but
visibility and sizes.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeySequence, QMouseEvent, QShortcut
from PySide6.QtWidgets import QGroupBox, QSplitter, QTabWidget, QToolButton, QWidget

MAXIMISE_TIP = "Maximise this pane (or double-click its title); Esc returns"
RESTORE_TIP = "Back to the whole window (Esc)"


class PaneMaximiser(QObject):
    def __init__(self, window: QWidget, splitters: Sequence[QSplitter]) -> None:
        super().__init__(window)
        self.splitters = tuple(splitters)
        self.maximised: QWidget | None = None
        self._sizes: list[tuple[QSplitter, list[int]]] = []
        self._hidden: list[QWidget] = []
        self._buttons: dict[QWidget, QToolButton] = {}
        self._titles: dict[QObject, QWidget] = {}  # a title's widget → its pane
        # Only while a pane is maximised, or it would take Esc from the editor and dialogs.
        self._escape = QShortcut(QKeySequence("Esc"), window)
        self._escape.setEnabled(False)
        self._escape.activated.connect(self.restore)

    # -- panes ---------------------------------------------------------------------------------
    def add_group_box(self, box: QGroupBox, name: str) -> None:
        """A titled pane: its button at the title's right end, its title double-clickable."""
        button = self._button(box, name)
        button.setParent(box)
        self._titles[box] = box
        box.installEventFilter(self)
        self._place(box)

    def add_tabs(self, tabs: QTabWidget, name: str) -> None:
        """The bottom tabs: the button in the tab bar's corner, a tab double-clickable."""
        tabs.setCornerWidget(self._button(tabs, name), Qt.Corner.TopRightCorner)
        tabs.tabBarDoubleClicked.connect(lambda _index: self.toggle(tabs))

    def add_pane(self, pane: QWidget, name: str) -> QToolButton:
        """A pane without a title: the caller places the button it returns."""
        return self._button(pane, name)

    def _button(self, pane: QWidget, name: str) -> QToolButton:
        button = QToolButton()
        button.setObjectName(f"{name}MaximiseButton")
        button.setText("⤢")
        button.setToolTip(MAXIMISE_TIP)
        button.setAutoRaise(True)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Esc and the keys stay with the form
        button.clicked.connect(lambda: self.toggle(pane))
        self._buttons[pane] = button
        return button

    def set_available(self, on: bool) -> None:
        """Presentation mode has a layout of its own: no pane of the window to maximise."""
        if not on:
            self.restore()
        for button in self._buttons.values():
            button.setVisible(on)

    # -- maximise and restore ------------------------------------------------------------------
    def toggle(self, pane: QWidget) -> None:
        previous = self.maximised
        self.restore()
        if previous is not pane:
            self.maximise(pane)

    def maximise(self, pane: QWidget) -> None:
        if self.maximised is not None:
            return
        sizes = [(s, s.sizes()) for s in self.splitters]
        hidden: list[QWidget] = []
        for splitter in self.splitters:
            children = [w for i in range(splitter.count()) if (w := splitter.widget(i))]
            if not any(c is pane or c.isAncestorOf(pane) for c in children):
                continue  # the pane is not under this splitter
            for child in children:
                if child is not pane and not child.isAncestorOf(pane) and child.isVisible():
                    child.hide()
                    hidden.append(child)
        if not hidden:
            return  # not one of the window's panes now (presentation mode holds it)
        self.maximised, self._sizes, self._hidden = pane, sizes, hidden
        self._escape.setEnabled(True)
        self._show_button_state(pane, maximised=True)

    def restore(self) -> None:
        pane = self.maximised
        if pane is None:
            return
        for child in self._hidden:
            child.show()
        for splitter, sizes in self._sizes:
            splitter.setSizes(sizes)
        self.maximised, self._sizes, self._hidden = None, [], []
        self._escape.setEnabled(False)
        self._show_button_state(pane, maximised=False)

    def _show_button_state(self, pane: QWidget, maximised: bool) -> None:
        if button := self._buttons.get(pane):
            button.setText("⤡" if maximised else "⤢")
            button.setToolTip(RESTORE_TIP if maximised else MAXIMISE_TIP)

    # -- titles --------------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        pane = self._titles.get(watched)
        if pane is None or not isinstance(watched, QGroupBox):
            return False
        if event.type() == QEvent.Type.Resize:
            self._place(watched)
            return False
        # Above the contents is the title's strip: a double-click in the views stays theirs.
        on_title = (
            event.type() == QEvent.Type.MouseButtonDblClick
            and isinstance(event, QMouseEvent)
            and event.position().y() < watched.contentsRect().top()
        )
        if on_title:
            self.toggle(pane)
        return on_title

    def _place(self, box: QGroupBox) -> None:
        """The button at the right end of the title's strip (a group box lays out below it)."""
        button = self._buttons[box]
        strip = max(box.contentsRect().top(), button.sizeHint().height())
        button.setFixedSize(strip, strip)
        button.move(box.width() - strip - 2, 0)
        button.raise_()
