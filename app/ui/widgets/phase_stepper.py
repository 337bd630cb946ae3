"""The presenter's phase stepper: stop → wait → sweep → launch → simulate in large type, the
current phase lit (with "paced" while its demo-pacing pause is on), each done one with its
counts ("3 stopped", "5 launched"). Read from the
back of a room on a 1280×720 projector (docs/architecture.md, "The presenter's window")."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QWidget

from app.core.model import Phase
from app.ui.widgets.palette import notice_colours, plural

STEP_POINT_SIZE = 15
STEP_LINES = 2  # the phase, then its counts: room for both from the start
STEP_CHROME = 2 * 6 + 2 * 2  # padding and border, top and bottom (the style below)
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
        self.labels: dict[str, QLabel] = {}
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        for index, phase in enumerate(Phase):
            if index:
                arrow = QLabel("→")
                arrow.setStyleSheet(f"font-size: {STEP_POINT_SIZE}pt;")
                layout.addWidget(arrow)
            label = QLabel()
            label.setObjectName(f"phaseStep_{phase.value}")
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            # A size that never follows the text: a step lit, bold or given a second line
            # resized the steps, and through the column the grid's 40 cells and the map, 8
            # times a switch (each cell then rendered anew: a 20–40 ms stall).
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            label.setFixedHeight(_step_height(self.font()))
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
        mark = {"current": "▶ ", "done": "✓ ", "failed": "✗ "}.get(state, "")
        label = self.labels[name]
        label.setText(f"{mark}{name}" + (f"\n{counts}" if counts else ""))
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


def _step_height(font: QFont) -> int:
    bold = QFont(font)
    bold.setPointSize(STEP_POINT_SIZE)
    bold.setBold(True)
    return QFontMetrics(bold).lineSpacing() * STEP_LINES + STEP_CHROME
