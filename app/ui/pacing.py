"""Demo pacing: how long each phase of a run stays on screen, so an audience can follow.

One spin box in the toolbar; its value goes to the bridge (the core paces the phases) and to
the stage (the views show each phase's own state that long), and is remembered. A value in
the settings (`--demo-pacing-ms`) wins over the remembered one.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QSpinBox

from app.ui.bridge import MAX_PACING_MS, CoreBridge
from app.ui.stage import Stage

SETTING = "demo/pacingMs"


class PacingSpin(QSpinBox):
    def __init__(self, bridge: CoreBridge, stage: Stage, qsettings: QSettings) -> None:
        super().__init__()
        self.bridge, self.stage, self.qsettings = bridge, stage, qsettings
        self.setObjectName("pacingSpin")
        self.setRange(0, MAX_PACING_MS)
        self.setSingleStep(250)
        self.setSuffix(" ms")
        self.setSpecialValueText("off")
        self.setToolTip("Slow each phase down (0–2 s) so an audience can follow")
        self.valueChanged.connect(self._apply)

    def restore(self) -> None:
        pacing = self.bridge.settings.demo_pacing_ms or _int(self.qsettings.value(SETTING), 0)
        self.setValue(pacing)
        self._apply(pacing)  # also when it is the spin's value already (no valueChanged)

    def save(self) -> None:
        self.qsettings.setValue(SETTING, self.value())

    def _apply(self, value: int) -> None:
        self.bridge.set_pacing_ms(value)
        self.stage.set_pacing_ms(value)
        self.qsettings.setValue(SETTING, value)


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
