"""One colour per port state, shared by the grid, its legend and the status bar; the colours of
results, of a failing step, of messages and invalid input, and of the two big buttons; each per
colour scheme (light, dark).

See docs/architecture.md, "Port states". `SWATCHES`, `RESULT_COLOURS`, `NOTICE_COLOURS` and
`BUTTON_COLOURS` hold the *current* scheme's colours (`apply_scheme` swaps them in place, so
every view reads the scheme in force at its next paint, and a style sheet of them is set again
on `QEvent.PaletteChange`); `swatches(scheme)` and friends give any scheme's.
Every text colour is chosen for a WCAG contrast ratio of at least 4.5 on its fill
(tests/ui/test_views.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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


Scheme = Literal["light", "dark"]

# Keys are PortState values plus "essential" (an allocated essential service).
LIGHT_SWATCHES: dict[str, Swatch] = {
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
        "#237032",  # white on #2b8a3e was 4.4:1, under WCAG's 4.5
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


def _dark(light: Swatch, fill: str, text: str, border: str) -> Swatch:
    return Swatch(fill, text, border, light.pattern, light.label, light.meaning)


_L = LIGHT_SWATCHES
DARK_SWATCHES: dict[str, Swatch] = {
    "free": _dark(_L["free"], "#2b3035", "#ced4da", "#495057"),
    "starting": _dark(_L["starting"], "#fab005", "#212529", "#ffd43b"),
    "allocated": _dark(_L["allocated"], "#237032", "#ffffff", "#40c057"),
    "essential": _dark(_L["essential"], "#1971c2", "#ffffff", "#4dabf7"),
    "stopping": _dark(_L["stopping"], "#f76707", "#000000", "#ffa94d"),
    "stale": _dark(_L["stale"], "#c92a2a", "#ffffff", "#ff8787"),
    "foreign": _dark(_L["foreign"], "#868e96", "#000000", "#ced4da"),
}
SWATCHES: dict[str, Swatch] = dict(LIGHT_SWATCHES)  # the current scheme's (apply_scheme)

LEGEND_ORDER = ("free", "starting", "allocated", "essential", "stopping", "stale", "foreign")


def swatches(scheme: Scheme) -> dict[str, Swatch]:
    return DARK_SWATCHES if scheme == "dark" else LIGHT_SWATCHES


def swatch_for(state: str, essential: bool = False) -> Swatch:
    if essential and state == "allocated":
        return SWATCHES["essential"]
    return SWATCHES.get(state, SWATCHES["free"])


# A company's tag on the grid: a band along the bottom of its cells, and its chip in the company
# legend. Hues apart from every state's fill (no green, blue, orange, red or grey), in the
# order companies appear; the same in both schemes (each is a band, never a text's ground).
# An incident in effect: an amber badge on the cell, the map's node and a chart marker (one
# colour in both schemes: it sits on a cell's own fill, with dark text and a dark rim).
INCIDENT_BADGE = "#fcc419"
INCIDENT_END = "#2f9e44"  # the chart's marker where an incident ended
SWITCH_MARK = "#1c7ed6"  # a Run Journey that finished: the journey switched
STOP_MARK = "#c92a2a"  # Stop All
COMPANY_TAGS = ("#9c36b5", "#0c8599", "#e64980", "#f08c00", "#5f3dc4", "#66a80f", "#ae3ec9")


def company_tag(index: int) -> str:
    return COMPANY_TAGS[index % len(COMPANY_TAGS)]


def plural(n: int, noun: str) -> str:
    """'1 stale allocation', '2 stale allocations'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def failing_colours() -> tuple[str, str, str]:
    """Fill, text and border of a failing step (journey map): red with a bright border, so it
    stands out from a `stale` cell too. The same in both schemes (5.5:1)."""
    return ("#c92a2a", "#ffffff", "#ffd43b")


LIGHT_RESULTS = {  # a step's, a hop's or a phase's outcome: fill, text
    "ok": ("#d3f9d8", "#1e6b2f"),
    "failed": ("#ffe3e3", "#8f1d1d"),
    "skipped": ("#f1f3f5", "#495057"),
    "running": ("#ffe066", "#212529"),
}
DARK_RESULTS = {
    "ok": ("#1f3d24", "#b2f2bb"),
    "failed": ("#4a1c1c", "#ffc9c9"),
    "skipped": ("#343a40", "#ced4da"),
    "running": ("#5c4813", "#ffec99"),
}
RESULT_COLOURS: dict[str, tuple[str, str]] = dict(LIGHT_RESULTS)  # the current scheme's


def results_for(scheme: Scheme) -> dict[str, tuple[str, str]]:
    return DARK_RESULTS if scheme == "dark" else LIGHT_RESULTS


# A message or a mark on input: fill, text, border. The window's banner shows error, info and
# ok; the editor's validation box error (a refused run), warning (not ready yet) and ok; an
# invalid step cell takes "invalid"'s fill and text, an invalid field its border.
LIGHT_NOTICES = {
    "error": ("#ffe3e3", "#8f1d1d", "#c92a2a"),
    "warning": ("#fff3bf", "#7a4b00", "#f59f00"),
    "info": ("#e7f5ff", "#0f4c81", "#74c0fc"),
    "ok": ("#d3f9d8", "#1e6b2f", "#2b8a3e"),
    "invalid": ("#ffc9c9", "#212529", "#c92a2a"),
}
DARK_NOTICES = {  # dark fills under light text, so a notice does not glare on the dark window
    "error": ("#4a1c1c", "#ffc9c9", "#ff8787"),
    "warning": ("#5c4813", "#ffec99", "#fab005"),
    "info": ("#1c3a57", "#a5d8ff", "#4dabf7"),
    "ok": ("#1f3d24", "#b2f2bb", "#40c057"),
    # A dark red cell with light text (a light cell kept the dark table's light text: 1.2:1);
    # the field border brighter than light's #c92a2a, which is 3.3:1 on the dark base.
    "invalid": ("#6b2020", "#ffe3e3", "#ff8787"),
}
NOTICE_COLOURS: dict[str, tuple[str, str, str]] = dict(LIGHT_NOTICES)  # the current scheme's


def notices_for(scheme: Scheme) -> dict[str, tuple[str, str, str]]:
    return DARK_NOTICES if scheme == "dark" else LIGHT_NOTICES


def notice_colours(kind: str) -> tuple[str, str, str]:
    return NOTICE_COLOURS[kind]


# Run Journey and Stop All: fill, text. Disabled is a quiet grey whose label still reads
# (#f1f3f5 on #adb5bd was 1.9:1), in dark a dark grey rather than a light patch.
LIGHT_BUTTONS = {
    "run": ("#237032", "#ffffff"),  # white on #2b8a3e was 4.4:1, as for "allocated"
    "stop": ("#c92a2a", "#ffffff"),
    "disabled": ("#dee2e6", "#495057"),
}
DARK_BUTTONS = {
    "run": ("#237032", "#ffffff"),
    "stop": ("#c92a2a", "#ffffff"),
    "disabled": ("#343a40", "#adb5bd"),
}
BUTTON_COLOURS: dict[str, tuple[str, str]] = dict(LIGHT_BUTTONS)  # the current scheme's


def buttons_for(scheme: Scheme) -> dict[str, tuple[str, str]]:
    return DARK_BUTTONS if scheme == "dark" else LIGHT_BUTTONS


def button_colours(kind: str) -> tuple[str, str]:
    return BUTTON_COLOURS[kind]


def apply_scheme(scheme: Scheme) -> None:
    """Make `scheme` current for every view (they read these tables when they paint)."""
    SWATCHES.clear()
    SWATCHES.update(swatches(scheme))
    RESULT_COLOURS.clear()
    RESULT_COLOURS.update(results_for(scheme))
    NOTICE_COLOURS.clear()
    NOTICE_COLOURS.update(notices_for(scheme))
    BUTTON_COLOURS.clear()
    BUTTON_COLOURS.update(buttons_for(scheme))


def current_scheme() -> Scheme:
    return "dark" if SWATCHES["free"].fill == DARK_SWATCHES["free"].fill else "light"


def contrast_ratio(a: str, b: str) -> float:
    """WCAG 2.x contrast ratio of two sRGB colours (1 to 21)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _luminance(colour: str) -> float:
    c = QColor(colour)

    def linear(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(c.redF()) + 0.7152 * linear(c.greenF()) + 0.0722 * linear(c.blueF())


def result_colours(status: str) -> tuple[str, str]:
    return RESULT_COLOURS.get(status, RESULT_COLOURS["skipped"])
