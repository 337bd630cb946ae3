"""Inject an incident into a running service: the "Inject incident ▸" submenu of a port cell and
a journey-map node, and the small dialog with the kind's parameters and a duration
(docs/architecture.md, "Incidents and scenarios").

The dialog only builds the request body; the core checks it whole before anything changes,
and a refusal comes back as the command's error, naming the field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QMenu,
    QVBoxLayout,
    QWidget,
)

from app.service.incident_kinds import DURATION, PARAMS, IncidentKind, Param

# What each kind does, as the operator reads it in the menu and the dialog.
KIND_TEXT = {
    IncidentKind.ERRORS: "Errors — a share of requests fail",
    IncidentKind.LATENCY: "Latency — every request takes longer",
    IncidentKind.HANG: "Hang — requests are held until it ends",
    IncidentKind.CRASH: "Crash — the process exits once",
    IncidentKind.CPU: "CPU — the service burns a share of a core",
    IncidentKind.MEMORY: "Memory — the service grows to a cap, then frees it",
}
PERCENT = ("rate", "cores")  # shares: entered and shown as a percent


def add_incident_menu(
    menu: QMenu, key: str | None, enabled: bool, request: Callable[[str, str], None]
) -> QMenu:
    """An "Inject incident ▸" submenu on `menu`: one entry per kind; choosing one calls
    `request(key, kind)`. Disabled when the service is not running."""
    sub = menu.addMenu("Inject incident")
    sub.setObjectName("injectIncidentMenu")
    sub.setEnabled(enabled and key is not None)
    for kind in IncidentKind:
        action = sub.addAction(KIND_TEXT[kind] + "…")
        action.setObjectName(f"incident_{kind.value}")
        if key is not None:
            action.triggered.connect(lambda _=False, k=key, v=kind.value: request(k, v))
    return sub


class IncidentDialog(QDialog):
    """The parameters of one incident on one service; `body()` is POST /api/incidents's body."""

    def __init__(self, service: str, kind: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("incidentDialog")
        self.setWindowTitle(f"Inject incident — {service}")
        self.service = service
        self.kindBox = QComboBox()
        self.kindBox.setObjectName("incidentKind")
        for k in IncidentKind:
            self.kindBox.addItem(KIND_TEXT[k], k.value)
        self.kindBox.setCurrentIndex(max(0, self.kindBox.findData(kind)))
        self.form = QFormLayout()
        self.spins: dict[str, QDoubleSpinBox] = {}
        self.duration = _spin(DURATION)
        self.duration.setObjectName("incidentDuration")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText("Inject")
        ok.setObjectName("incidentInject")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Service: <b>{service}</b> (the running process, same pid)"))
        top = QFormLayout()
        top.addRow("Kind", self.kindBox)
        layout.addLayout(top)
        layout.addLayout(self.form)
        end = QFormLayout()
        end.addRow("Duration", self.duration)
        layout.addLayout(end)
        layout.addWidget(buttons)
        self.kindBox.currentIndexChanged.connect(self._build_params)
        self._build_params()

    @property
    def kind(self) -> IncidentKind:
        return IncidentKind(self.kindBox.currentData())

    def _build_params(self) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.spins = {}
        for param in PARAMS[self.kind]:
            spin = _spin(param)
            spin.setObjectName(f"incidentParam_{param.name}")
            self.spins[param.name] = spin
            self.form.addRow(param.label[0].upper() + param.label[1:], spin)

    def set_value(self, name: str, value: float) -> None:
        """Set a parameter as the API names it (a share as 0–1)."""
        spin = self.duration if name == DURATION.name else self.spins[name]
        spin.setValue(value * 100 if name in PERCENT else value)

    def body(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for param in PARAMS[self.kind]:
            value = self.spins[param.name].value()
            value = value / 100 if param.name in PERCENT else value
            params[param.name] = int(value) if param.whole and param.name == "status" else value
        return {
            "service": self.service,
            "kind": self.kind.value,
            **params,
            DURATION.name: self.duration.value(),
        }


def _spin(param: Param) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    share = param.name in PERCENT
    scale = 100.0 if share else 1.0
    spin.setDecimals(0 if param.whole and not share else 1)
    low = param.lo * scale + (spin.singleStep() if param.lo_open else 0.0)
    spin.setRange(low, param.hi * scale)
    spin.setSuffix(" %" if share else param.unit)
    spin.setValue(param.default * scale)
    return spin
