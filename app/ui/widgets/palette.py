"""One colour per port state, shared by the grid, its legend and the status bar.

See docs/architecture.md, "Port states"."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor


@dataclass(frozen=True)
class Swatch:
    fill: str
    text: str
    border: str
    pattern: Qt.BrushStyle | None = None  # a second cue besides colour
    label: str = ""
    meaning: str = ""

    @property
    def fill_color(self) -> QColor:
        return QColor(self.fill)


# Keys are PortState values plus "essential" (an allocated essential service).
SWATCHES: dict[str, Swatch] = {
    "free": Swatch(
        "#f1f3f5",
        "#495057",
        "#adb5bd",
        None,
        "free",
        "nothing allocated, nothing listens: a service could bind it now",
    ),
    "starting": Swatch(
        "#ffe066", "#212529", "#f59f00", None, "starting", "process spawned, not yet verified ready"
    ),
    "allocated": Swatch(
        "#2b8a3e",
        "#ffffff",
        "#1e6b2f",
        None,
        "allocated",
        "our live service answered /health with its own identity",
    ),
    "essential": Swatch(
        "#1864ab",
        "#ffffff",
        "#0f4c81",
        None,
        "essential",
        "allocated to an essential service, kept across journeys",
    ),
    "stopping": Swatch(
        "#ff922b",
        "#212529",
        "#d9480f",
        None,
        "stopping",
        "stop requested: process not yet gone or port not yet free",
    ),
    "stale": Swatch(
        "#c92a2a",
        "#ffffff",
        "#8f1d1d",
        Qt.BrushStyle.BDiagPattern,
        "stale",
        "ledger says ours but nothing of ours serves it (died or orphan)",
    ),
    "foreign": Swatch(
        "#495057",
        "#ffffff",
        "#212529",
        Qt.BrushStyle.DiagCrossPattern,
        "foreign",
        "something not ours listens: skipped, never killed",
    ),
}

LEGEND_ORDER = ("free", "starting", "allocated", "essential", "stopping", "stale", "foreign")


def swatch_for(state: str, essential: bool = False) -> Swatch:
    if essential and state == "allocated":
        return SWATCHES["essential"]
    return SWATCHES.get(state, SWATCHES["free"])


def plural(n: int, noun: str) -> str:
    """'1 stale allocation', '2 stale allocations'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def failing_colours() -> tuple[str, str, str]:
    """Fill, text and border of a failing step (journey map): red with a bright border, so it
    stands out from a `stale` cell too."""
    return ("#c92a2a", "#ffffff", "#ffd43b")


RESULT_COLOURS = {  # a step's or a hop's outcome: fill, text
    "ok": ("#d3f9d8", "#1e6b2f"),
    "failed": ("#ffe3e3", "#8f1d1d"),
    "skipped": ("#f1f3f5", "#495057"),
}


def result_colours(status: str) -> tuple[str, str]:
    return RESULT_COLOURS.get(status, RESULT_COLOURS["skipped"])
