"""Demo pacing: how long each phase of a run stays on screen, so an audience can follow.

One spin box in the toolbar; its value goes to the bridge (the core pauses each phase that has
work, where no cell is changing: docs/architecture.md, "A Run Journey, phase by phase") and is
remembered. A value in the settings (`--demo-pacing-ms`) wins over the remembered one. The
views hold nothing back: they show the truth at the pace the core runs.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QSpinBox

from app.ui.bridge import MAX_PACING_MS, CoreBridge

SETTING = "demo/pacingMs"


class PacingSpin(QSpinBox):
    def __init__(self, bridge: CoreBridge, qsettings: QSettings) -> None:
        super().__init__()
        self.bridge, self.qsettings = bridge, qsettings
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
        self.qsettings.setValue(SETTING, value)


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
