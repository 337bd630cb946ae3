"""A bounded log: phase events, service output lines, warnings. Appends are batched."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtGui import QFontDatabase, QTextCursor
from PySide6.QtWidgets import QPlainTextEdit, QWidget

from app.ui.widgets.phase_timeline import duration_text, format_counts

MAX_LINES = 2000
FLUSH_MS = 80
LEVEL_TAG = {"warning": "WARN ", "error": "ERROR ", "info": ""}
WARNING_CHANGES = frozenset({"exited", "killed", "stale", "failed"})


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

    def bind(self, events: Any, runs: Any) -> None:
        """Log `events`' log lines and service changes as they happen (the bridge), and
        `runs`' starts, phases and outcomes in step with the other views (the window's stage)."""
        events.logEvent.connect(lambda e: self.add(e.source, e.message, e.level, e.at))
        events.serviceEvent.connect(self.add_service_event)
        runs.runStarted.connect(
            lambda run_id, company: self.add("run", f"{run_id} started for {company}")
        )
        runs.phaseEvent.connect(self.add_phase_event)
        runs.runFinished.connect(self.add_run_result)

    def add_service_event(self, event: Any) -> None:
        where = f" on port {event.port}" if event.port else ""
        pid = f" (pid {event.pid})" if event.pid else ""
        detail = f": {event.detail}" if event.detail else ""
        change = str(event.change)
        level = "warning" if change in WARNING_CHANGES else "info"
        self.add(event.key, f"{change}{where}{pid}{detail}", level)

    def add_phase_event(self, event: Any) -> None:
        status = str(event.status)
        if status == "started":
            return  # the phase tables show it; the log keeps outcomes
        counts = format_counts(event.counts)
        self.add(
            "run",
            f"phase {event.phase} {status} in "
            f"{duration_text(event.duration_ms, getattr(event, 'paced_ms', 0.0))}"
            f"{': ' + counts if counts else ''}",
            "info" if status == "finished" else "error",
        )

    def add_run_result(self, result: Any) -> None:
        self.add(
            "run",
            f"{result.run_id or 'run'} {'finished' if result.ok else 'failed'}"
            f"{': ' + result.error if result.error else ''}",
            "info" if result.ok else "error",
        )

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
            # The cursor goes to the start of the last line, not its end: Qt scrolls the cursor
            # into view again when the log is first shown (a hidden tab), and at the end of a
            # long last line that scrolled the view sideways, every line's start (time, level,
            # source) cut off.
            self.moveCursor(QTextCursor.MoveOperation.End)
            self.moveCursor(QTextCursor.MoveOperation.StartOfBlock)
            bar.setValue(bar.maximum())
            self.horizontalScrollBar().setValue(0)

    def lines(self) -> list[str]:
        self.flush()
        return self.toPlainText().splitlines()
