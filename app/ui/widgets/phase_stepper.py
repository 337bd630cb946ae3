"""The presenter's phase stepper: stop → wait → sweep → launch → simulate in large type, the
current phase lit (with "paced" while its demo-pacing pause is on), each done one with its
counts ("3 stopped", "5 launched"). Read from the
back of a room on a 1280×720 projector (docs/architecture.md, "The presenter's window").

Each step keeps one size whatever it says: a step that grew when lit, bold or given a line of
counts resized the column under it, and with it the grid's 40 cells and the map, about 8 times
a switch (each cell then rendered anew: a 20–40 ms stall, bench/ui.py). Its width is its
name's or its usual counts' ("40 stopped"), its height two lines; counts too long for it end
in "…" (the tooltip has them all)."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics, QResizeEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QWidget

from app.core.model import Phase
from app.ui.widgets.palette import notice_colours, plural

STEP_POINT_SIZE = 15
COUNTS_POINT_SIZE = 12  # the second line: a step's counts or progress
STEP_CHROME = 6 + 2  # padding and border on each side (the style below)
MARKS = {"current": "▶ ", "done": "✓ ", "failed": "✗ "}  # by step state; pending has none
# The counts a phase reports (app/core/runs.py's phase JSON), in the words a presenter says.
COUNT_WORDS = {
    "stopped": "stopped",
    "kept": "kept",
    "exited": "exited",
    "killed": "killed",
    "staleCleaned": "stale cleaned",
    "orphansReaped": "orphans reaped",
    "launched": "launched",
    "failed": "failed",
}


# The counts line each step keeps room for: what a switch of up to 40 services says there
# (longer ones, a stale sweep or a batch's progress, end in "…"; the tooltip has them whole).
ROOM_FOR = {"stop": {"stopped": 40}, "wait": {"exited": 40}, "launch": {"launched": 40}}


def count_text(counts: dict[str, int]) -> str:
    """The first two non-zero counts in words: "3 stopped", "1 customer"."""
    shown = [
        plural(n, "customer") if k == "customers" else f"{n} {COUNT_WORDS[k]}"
        for k, n in counts.items()
        if k in COUNT_WORDS and n
    ]
    return ", ".join(shown[:2])


class PhaseStepper(QWidget):
    """Five steps in a row; `set_phase` lights one, `reset` starts a new run."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("phaseStepper")
        self.states: dict[str, str] = {}
        self.labels: dict[str, StepLabel] = {}
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        for index, phase in enumerate(Phase):
            if index:
                arrow = QLabel("→")
                arrow.setStyleSheet(f"font-size: {STEP_POINT_SIZE}pt;")
                layout.addWidget(arrow)
            label = StepLabel(phase.value, count_text(ROOM_FOR.get(phase.value, {})))
            label.setObjectName(f"phaseStep_{phase.value}")
            layout.addWidget(label, 1)
            self.labels[phase.value] = label
        self.reset()

    def reset(self) -> None:
        self.states = {p.value: "pending" for p in Phase}
        for name in self.labels:
            self._paint(name, "")

    def set_phase(
        self, name: str, status: str, counts: dict[str, int], paced_ms: float = 0.0
    ) -> None:
        """`status`: started, finished or failed (a PhaseEvent's); `paced_ms` on started: the
        pause the phase will take (docs/architecture.md, "A Run Journey, phase by phase")."""
        if name not in self.labels:
            return
        self.states[name] = {"started": "current", "finished": "done"}.get(status, "failed")
        if status == "started":
            self._paint(name, f"paced {paced_ms / 1000:.1f} s" if paced_ms else "")
        else:
            self._paint(name, count_text(counts))

    def set_progress(self, text: str) -> None:
        """The simulate step's customers done so far, while it is the current one."""
        if self.states.get("simulate") == "current":
            self._paint("simulate", text)

    def _paint(self, name: str, counts: str) -> None:
        state = self.states[name]
        kind = {"current": "warning", "done": "ok", "failed": "error"}.get(state)
        mark = MARKS.get(state, "")
        label = self.labels[name]
        label.show_text(f"{mark}{name}", counts)
        weight = "bold" if state == "current" else "normal"
        if kind is None:
            style = f"font-size: {STEP_POINT_SIZE}pt; padding: 6px; color: palette(mid);"
        else:
            fill, text, border = notice_colours(kind)
            style = (
                f"font-size: {STEP_POINT_SIZE}pt; font-weight: {weight}; padding: 6px;"
                f" background: {fill}; color: {text}; border: 2px solid {border};"
                " border-radius: 6px;"
            )
        label.setStyleSheet(f"QLabel {{ {style} }}")

    def text(self, name: str) -> str:
        """What a step says in full: its name and counts, one per line."""
        return self.labels[name].full_text


class StepLabel(QLabel):
    """One step: its name in large type over its counts, in a size fixed from the start."""

    def __init__(self, name: str, room_for: str = "") -> None:
        super().__init__()
        self.head, self.counts = name, ""
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        big, small = _fonts(self.font())
        widest = max(QFontMetrics(big).horizontalAdvance(m + name) for m in MARKS.values())
        widest = max(widest, QFontMetrics(small).horizontalAdvance(room_for))
        self.setMinimumWidth(widest + 2 * STEP_CHROME + 2)  # +2: rounding of the elision
        lines = QFontMetrics(big).lineSpacing() + QFontMetrics(small).lineSpacing()
        self.setFixedHeight(lines + 2 * STEP_CHROME)

    @property
    def full_text(self) -> str:
        return self.head + (f"\n{self.counts}" if self.counts else "")

    def show_text(self, head: str, counts: str) -> None:
        self.head, self.counts = head, counts
        self.setToolTip(self.full_text if counts else "")
        self._render()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._render()  # the counts' "…" follows the width the row gives

    def _render(self) -> None:
        _big, small = _fonts(self.font())
        room = max(0, self.width() - 2 * STEP_CHROME)
        counts = QFontMetrics(small).elidedText(self.counts, Qt.TextElideMode.ElideRight, room)
        second = (
            f"<br><span style='font-size:{COUNTS_POINT_SIZE}pt; font-weight:normal'>"
            f"{escape(counts)}</span>"
        )
        self.setText(escape(self.head) + (second if self.counts else ""))


def _fonts(font: QFont) -> tuple[QFont, QFont]:
    """The name's font (bold, as when lit) and the counts' font."""
    big, small = QFont(font), QFont(font)
    big.setPointSize(STEP_POINT_SIZE)
    big.setBold(True)
    small.setPointSize(COUNTS_POINT_SIZE)
    return big, small
