"""The phase timeline of the current run: stop, wait, sweep, launch, simulate.

Each row shows the phase's status (pending, running with a ticking elapsed time, done, failed),
its duration and its counts, as the bridge relays the core's phase events. A demo-paced phase
says so: its work and its pause apart ("12.3 ms + 2.0 s paced"; docs/architecture.md, "A Run
Journey, phase by phase").
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.model import Phase
from app.ui.widgets.palette import result_colours
from app.ui.widgets.sizing import shrink_to_fit

PHASE_WHAT = {
    Phase.STOP: "stop the previous journey's services (SIGTERM; essentials kept)",
    Phase.WAIT: "wait until they exited and their ports are free",
    Phase.SWEEP: "sweep stale allocations and orphans",
    Phase.LAUNCH: "launch one service per step, verify /health",
    Phase.SIMULATE: "drive the customers through the chain",
}
# A phase's status in the palette's outcome colours (current scheme): background, foreground.
STATUS_KEY = {"pending": "skipped", "running": "running", "done": "ok", "failed": "failed"}
STATUS_TEXT = {"pending": "pending", "running": "running", "done": "✓ done", "failed": "✗ failed"}


def progress_text(progress: Any, short: bool = False) -> str:
    """A RunProgress in words: "120 / 500 customers done · 3 failed" ("120 / 500 · 3 failed")."""
    done = f"{progress.done:,} / {progress.total:,}" + ("" if short else " customers done")
    return f"{done} · {progress.failed:,} failed"


def humanize(key: str) -> str:
    """'staleCleaned' -> 'stale cleaned'."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", key).lower()


def format_counts(counts: dict[str, int]) -> str:
    return " · ".join(f"{humanize(k)} {v}" for k, v in counts.items())


def duration_text(duration_ms: float, paced_ms: float = 0.0) -> str:
    """A phase's duration; a paced one as its work plus its pause: "12.3 ms + 2.0 s paced"."""
    if paced_ms <= 0:
        return f"{duration_ms:,.1f} ms"
    return f"{max(0.0, duration_ms - paced_ms):,.1f} ms + {paced_ms / 1000:,.1f} s paced"


@dataclass
class PhaseRow:
    status: str = "pending"
    duration_ms: float | None = None
    counts: dict[str, int] = field(default_factory=dict)
    started: float | None = None  # perf_counter when it started (for the ticking elapsed time)
    paced_ms: float = 0.0  # its pause (running: the pause it will take)


class PhaseTimeline(QWidget):
    COLUMNS = ("Phase", "Status", "Duration", "Counts")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("phaseTimeline")
        self.run_id: str | None = None
        self.rows: dict[Phase, PhaseRow] = {p: PhaseRow() for p in Phase}
        self.progress: Any = None  # the run's latest RunProgress: the simulate row's counts
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.header = QLabel("No run yet. Run Journey fills this in, phase by phase.")
        self.header.setObjectName("timelineHeader")
        self._outcome = ""  # the header's colour: "" (text), "ok" or "failed"
        self.header.setWordWrap(True)
        shrink_to_fit(self.header)
        layout.addWidget(self.header)
        self.table = QTableWidget(len(Phase), len(self.COLUMNS))
        self.table.setObjectName("timelineTable")
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().setVisible(False)
        row_h = self.fontMetrics().height() + 8
        self.table.verticalHeader().setMinimumSectionSize(row_h)
        self.table.verticalHeader().setDefaultSectionSize(row_h)
        # Counts are elided in a narrow column (the tooltip has them): no sideways scroll.
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setWordWrap(False)
        self.table.setMinimumHeight(
            self.table.horizontalHeader().sizeHint().height() + len(Phase) * row_h + 4
        )
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        header = self.table.horizontalHeader()
        for col, mode in enumerate(
            (
                QHeaderView.ResizeMode.ResizeToContents,
                QHeaderView.ResizeMode.ResizeToContents,
                QHeaderView.ResizeMode.ResizeToContents,
                QHeaderView.ResizeMode.Stretch,
            )
        ):
            header.setSectionResizeMode(col, mode)
        layout.addWidget(self.table, 1)
        self._ticker = QTimer(self)
        self._ticker.setInterval(100)
        self._ticker.timeout.connect(self._tick)
        self._render_all()

    def bind(self, source: Any) -> None:
        """Show `source`'s runs and phases (the window's stage: in step with the grid)."""
        source.runStarted.connect(self.start_run)
        source.phaseEvent.connect(self.show_phase)
        source.runFinished.connect(self.show_result)
        source.runProgress.connect(self.show_progress)

    def show_phase(self, event: Any) -> None:
        self.phase_event(
            event.run_id,
            event.phase,
            event.status,
            event.duration_ms,
            event.counts,
            getattr(event, "paced_ms", 0.0),
        )

    def show_progress(self, progress: Any) -> None:
        """Customers done so far, in the simulate row while it runs (its counts when done)."""
        if progress.run_id != self.run_id:
            return
        self.progress = progress
        self._render(Phase.SIMULATE)

    def show_result(self, result: Any) -> None:
        self.finish_run(result.ok, result.error or "", result.total_ms)

    # -- events from the bridge ----------------------------------------------------------------
    def start_run(self, run_id: str, company: str = "") -> None:
        self.run_id = run_id
        self.rows = {p: PhaseRow() for p in Phase}
        self.progress = None
        who = f" for {company}" if company else ""
        self._set_header(f"Run {run_id}{who}: in progress")
        self._render_all()
        self._ticker.start()

    def phase_event(
        self,
        run_id: str,
        phase: Phase,
        status: str,
        duration_ms: float,
        counts: dict[str, int],
        paced_ms: float = 0.0,
    ) -> None:
        if self.run_id != run_id:  # events of a run we have not seen start (e.g. API-driven)
            self.start_run(run_id)
        row = self.rows[phase]
        row.paced_ms = paced_ms
        if status == "started":
            row.status, row.started = "running", time.perf_counter()
        else:
            row.status = "done" if status == "finished" else "failed"
            row.duration_ms, row.counts = duration_ms, dict(counts)
        self._render(phase)

    def finish_run(self, ok: bool, detail: str = "", total_ms: float | None = None) -> None:
        self._ticker.stop()
        for phase, row in self.rows.items():
            if row.status == "running":
                row.status = "failed"
                self._render(phase)
        run = f"Run {self.run_id}" if self.run_id else "Run"
        if ok:
            total = f" in {total_ms:,.0f} ms" if total_ms is not None else ""
            self._set_header(f"{run}: finished{total}", "ok")
        else:
            self._set_header(f"{run}: failed — {detail}", "failed")

    # -- queries -------------------------------------------------------------------------------
    def status(self, phase: Phase) -> str:
        return self.rows[phase].status

    def duration_ms(self, phase: Phase) -> float | None:
        return self.rows[phase].duration_ms

    def paced_ms(self, phase: Phase) -> float:
        return self.rows[phase].paced_ms

    def duration_shown(self, phase: Phase) -> str:
        item = self.table.item(list(Phase).index(phase), 2)
        return item.text() if item is not None else ""

    def all_done(self) -> bool:
        return all(r.status == "done" and r.duration_ms is not None for r in self.rows.values())

    # -- rendering -----------------------------------------------------------------------------
    def _set_header(self, text: str, outcome: str = "") -> None:
        """`outcome` "" is the palette's text colour (readable in either scheme)."""
        self.header.setText(text)
        self._outcome = outcome
        color = result_colours(outcome)[1] if outcome else ""
        self.header.setStyleSheet(
            f"color: {color}; font-weight: bold;" if color else "font-weight: bold;"
        )

    def changeEvent(self, event: QEvent) -> None:
        # The header has a style sheet of its own, so it misses the palette change; the rows'
        # colours are the scheme's too.
        if event.type() == QEvent.Type.PaletteChange:
            self._set_header(self.header.text(), self._outcome)
            self._render_all()
        super().changeEvent(event)

    def _render_all(self) -> None:
        for phase in Phase:
            self._render(phase)

    def _render(self, phase: Phase) -> None:
        index = list(Phase).index(phase)
        row = self.rows[phase]
        bg, fg = result_colours(STATUS_KEY[row.status])
        if row.duration_ms is not None:
            duration = duration_text(row.duration_ms, row.paced_ms)
        elif row.status == "running" and row.started is not None:
            paced = " (paced)" if row.paced_ms else ""
            duration = f"{(time.perf_counter() - row.started) * 1000:,.0f} ms…{paced}"
        else:
            duration = "—"
        counts = format_counts(row.counts)
        if phase is Phase.SIMULATE and row.status == "running" and self.progress is not None:
            counts = progress_text(self.progress)
        texts = (f"{index + 1}. {phase.value}", STATUS_TEXT[row.status], duration, counts)
        for col, text in enumerate(texts):
            item = self.table.item(index, col)
            if item is None:
                item = QTableWidgetItem()
                self.table.setItem(index, col, item)
            item.setText(text)
            item.setToolTip(PHASE_WHAT[phase] if col == 0 else text)
            if col == 2:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if col == 1:
                item.setBackground(QBrush(QColor(bg)))
                item.setForeground(QBrush(QColor(fg)))

    def _tick(self) -> None:
        for phase, row in self.rows.items():
            if row.status == "running":
                self._render(phase)
