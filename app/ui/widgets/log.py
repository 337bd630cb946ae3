"""A bounded log: phase events, service output lines, warnings. Appends are batched."""

from __future__ import annotations

import time
from collections import deque

from PySide6.QtCore import QTimer
from PySide6.QtGui import QFontDatabase, QTextCursor
from PySide6.QtWidgets import QPlainTextEdit, QWidget

MAX_LINES = 2000
FLUSH_MS = 80
LEVEL_TAG = {"warning": "WARN ", "error": "ERROR ", "info": ""}


class LogView(QPlainTextEdit):
    def __init__(self, parent: QWidget | None = None, max_lines: int = MAX_LINES) -> None:
        super().__init__(parent)
        self.setObjectName("logView")
        self.setReadOnly(True)
        self.setMaximumBlockCount(max_lines)
        # One event a line: wrapping would split a line mid-field; long lines scroll instead.
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self._pending: deque[str] = deque(maxlen=max_lines)
        self._flush = QTimer(self)
        self._flush.setSingleShot(True)
        self._flush.setInterval(FLUSH_MS)
        self._flush.timeout.connect(self.flush)

    def add(self, source: str, message: str, level: str = "info", at: float | None = None) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(at or time.time()))
        tag = LEVEL_TAG.get(level, f"{level.upper()} ")
        self._pending.append(f"{stamp}  {tag}[{source}] {message}")
        if not self._flush.isActive():
            self._flush.start()

    def flush(self) -> None:
        if not self._pending:
            return
        bar = self.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 4
        text = "\n".join(self._pending)
        self._pending.clear()
        self.appendPlainText(text)
        if at_bottom:
            self.moveCursor(QTextCursor.MoveOperation.End)
            bar.setValue(bar.maximum())

    def lines(self) -> list[str]:
        self.flush()
        return self.toPlainText().splitlines()
