"""The form's journey in and out: File ▸ Open Journey… and Save Journey As… (non-blocking
dialogs), and the journey of the last session, remembered.

Opening over an edited journey asks "Discard changes?" first, the editor's one question for
every journey that replaces the form's (`JourneyEditor.replace_journey`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QSettings
from PySide6.QtWidgets import QFileDialog, QWidget

from app.ui.bridge import JourneyFileError, read_journey_file, write_journey_file
from app.ui.widgets.journey_editor import JourneyEditor

SETTING_DIR = "journey/dir"  # the folder of the last journey opened or saved
SETTING_LAST = "journey/last"  # the form as it was when the window closed or last ran
DEFAULT_TEMPLATE = "e-commerce"  # the journey of a first start


class JourneyFiles(QObject):
    def __init__(
        self,
        parent: QWidget,
        editor: JourneyEditor,
        qsettings: QSettings,
        report: Callable[[str], None],
        fail: Callable[[str], None],
    ) -> None:
        """`report` says what was done (the status bar), `fail` what could not be (the banner)."""
        super().__init__(parent)
        self.parent_widget, self.editor, self.qsettings = parent, editor, qsettings
        self.report, self.fail = report, fail
        self.dialog: QFileDialog | None = None

    def restore_last(self) -> None:
        """The last session's journey, else (none saved, or unreadable) the default template."""
        try:
            self.editor.restore_state(json.loads(str(self.qsettings.value(SETTING_LAST))))
        except (ValueError, TypeError):
            if names := self.editor.template_names():
                default = DEFAULT_TEMPLATE if DEFAULT_TEMPLATE in names else names[0]
                self.editor.load_template(default)

    def save_last(self) -> None:
        self.qsettings.setValue(SETTING_LAST, json.dumps(self.editor.state()))

    def _folder(self) -> str:
        last = self.qsettings.value(SETTING_DIR)
        return str(last) if last else str(Path.home())

    def open_dialog(self) -> None:
        dialog = QFileDialog(
            self.parent_widget,
            "Open journey",
            self._folder(),
            "Journey JSON (*.json);;All files (*)",
        )
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptOpen)
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.fileSelected.connect(self.open_file)
        self.dialog = dialog
        dialog.open()  # non-blocking: no nested event loop

    def open_file(self, path: str) -> bool:
        """Read `path`; it replaces the form's journey once the operator agrees. False: the
        file could not be read (the banner says why), the form is unchanged."""
        try:
            data = read_journey_file(path)
        except JourneyFileError as exc:
            self.fail(str(exc))
            return False

        def put() -> None:
            self.editor.set_journey(data)
            self.qsettings.setValue(SETTING_DIR, str(Path(path).parent))
            self.report(f"Opened {path}")

        self.editor.replace_journey(Path(path).name, put)
        return True

    def save_dialog(self) -> None:
        dialog = QFileDialog(
            self.parent_widget, "Save journey", self._folder(), "Journey JSON (*.json)"
        )
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("json")
        dialog.fileSelected.connect(self.save_file)
        self.dialog = dialog
        dialog.open()

    def save_file(self, path: str) -> bool:
        data, _ = self.editor.journey_data()
        try:
            write_journey_file(path, data)
        except OSError as exc:
            self.fail(f"cannot save {path}: {exc.strerror}")
            return False
        self.qsettings.setValue(SETTING_DIR, str(Path(path).parent))
        self.report(f"Saved {path}")
        return True
