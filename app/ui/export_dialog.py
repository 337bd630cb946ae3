"""The export settings dialog and the status-bar export indicator.

Export settings are saved with the panel's settings (app/core/export/saved.py) and the
OpenTelemetry environment variables win field by field; a field the environment owns is shown
read-only with the variable's name (docs/architecture.md, "Export"). Header values may be
secrets: they are masked, also while typed, unless "Show" is pressed (their names stay readable
under them: `Authorization=Api-Token ••••`), and never reach the indicator, the log or a
message. The dialog is non-blocking (`open()`): a nested Qt loop inside a coroutine would break
the asyncio loop (docs/architecture.md, "Facts measured").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from PySide6.QtCore import QEvent, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.bridge import CoreBridge, ExportForm, ExportSettingsError, TaskOwner, parse_pairs
from app.ui.bridge import saved_export as keys
from app.ui.widgets.palette import notice_colours

log = logging.getLogger(__name__)

MASK = "••••"
INDICATOR_MS = 1000  # the exporter's status is read at most once a second
MAX_ERROR_CHARS = 60
BIZEVENTS_MODES = (  # BIZOBS_BIZEVENTS_MODE: shown text, value
    ("Batch: one request per batch of events", "batch"),
    ("Structured: one request per event", "structured"),
)


def text_style(kind: str) -> str:
    """A notice's text colour on the dialog's own background, in the scheme in force."""
    return f"color: {notice_colours(kind)[1]};"


W = TypeVar("W", bound=QWidget)


def _named(widget: W, name: str) -> W:
    widget.setObjectName(name)
    return widget


def mask_headers(text: str) -> str:
    """`k=v,...` with every value masked; an auth scheme stays readable (`Api-Token ••••`).
    Text that does not parse is masked whole: it may be a pasted token."""
    if not text.strip():
        return ""
    try:
        pairs = parse_pairs({"h": text}, "h")
    except ExportSettingsError:
        return MASK
    return ",".join(f"{k}={_mask_value(v)}" for k, v in pairs)


def _mask_value(value: str) -> str:
    scheme, space, _ = value.partition(" ")
    if space and scheme.replace("-", "").isalpha() and len(scheme) <= 20:
        return f"{scheme} {MASK}"
    return MASK


class SecretField(QWidget):
    """A header string, masked — also while it is typed — unless "Show" is on; the headers'
    names stay readable under it (`Authorization=Api-Token ••••`)."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.edit = QLineEdit(self)
        self.edit.setObjectName(name)
        self.edit.setEchoMode(QLineEdit.EchoMode.Password)  # an API key typed is never shown
        self.edit.setPlaceholderText("Authorization=Api-Token%20abc,x-team=demo")
        self.toggle = QToolButton(self)
        self.toggle.setObjectName(f"{name}Show")
        self.toggle.setText("Show")
        self.toggle.setCheckable(True)
        self.toggle.toggled.connect(self._toggled)
        self.summary = QLabel(self)
        self.summary.setObjectName(f"{name}Summary")
        self.summary.hide()
        self.edit.textChanged.connect(self._summarise)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(self.toggle)
        rows = QVBoxLayout(self)
        rows.setContentsMargins(0, 0, 0, 0)
        rows.addLayout(row)
        rows.addWidget(self.summary)

    def set_value(self, value: str, locked: bool = False) -> None:
        self.toggle.setChecked(False)
        self.toggle.setEnabled(not locked)  # an environment secret is not revealed here
        self.edit.setReadOnly(locked)
        self.edit.setText(value)

    def value(self) -> str:
        return self.edit.text()

    def _summarise(self, text: str) -> None:
        self.summary.setText(mask_headers(text))
        self.summary.setVisible(bool(text.strip()))

    def _toggled(self, shown: bool) -> None:
        mode = QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password
        self.edit.setEchoMode(mode)
        self.toggle.setText("Hide" if shown else "Show")


class ExportDialog(QDialog):
    """Edit, test and save the export settings; Save applies them to the running core."""

    def __init__(self, bridge: CoreBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("exportDialog")
        self.setWindowTitle("Export settings")
        self.bridge = bridge
        self.form: ExportForm = bridge.export_form()
        self._tasks = TaskOwner("export dialog", self._failed)
        self._testing: asyncio.Future[None] | None = None
        self.endpoint = _named(QLineEdit(), "exportEndpoint")
        self.endpoint.setPlaceholderText("http://localhost:4318  (/v1/traces, /v1/logs added)")
        self.headers = SecretField("exportHeaders", self)
        self.traces = _named(QCheckBox("Send traces (OTLP /v1/traces)"), "exportTraces")
        self.logs = QCheckBox("Send business events as OTLP logs (/v1/logs)")
        self.logs.setObjectName("exportLogs")
        self.resource = _named(QLineEdit(), "exportResource")
        self.resource.setPlaceholderText("deployment.environment.name=demo")
        self.bizUrl = _named(QLineEdit(), "exportBizeventsUrl")
        self.bizUrl.setPlaceholderText("CloudEvents batches to this URL (optional)")
        self.bizHeaders = SecretField("exportBizeventsHeaders", self)
        self.bizMode = _named(QComboBox(), "exportBizeventsMode")
        for text, mode in BIZEVENTS_MODES:
            self.bizMode.addItem(text, mode)
        self.envNote = _named(QLabel(), "exportEnvNote")
        self.envNote.setWordWrap(True)
        self.testButton = _named(QPushButton("Test connection"), "exportTestButton")
        self.testButton.clicked.connect(self.test_connection)
        self.testResult = _named(QLabel(), "exportTestResult")
        self.testResult.setWordWrap(True)
        self.error = _named(QLabel(), "exportError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(text_style("error"))
        self._test_kind = ""  # "ok" or "error" once a test answered
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.saveButton = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.saveButton.setObjectName("exportSaveButton")
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        self.finished.connect(self._cancel_tasks)
        self._layout()
        self._fill()

    def _layout(self) -> None:
        form = QFormLayout()
        self._rows: dict[str, QLabel] = {}
        for key, text, widget in (
            (keys.ENDPOINT, "OTLP endpoint", self.endpoint),
            (keys.HEADERS, "OTLP headers", self.headers),
            (keys.TRACES_EXPORTER, "", self.traces),
            (keys.LOGS_EXPORTER, "", self.logs),
            (keys.RESOURCE_ATTRIBUTES, "Resource attributes", self.resource),
            (keys.BIZEVENTS_URL, "Business events URL", self.bizUrl),
            (keys.BIZEVENTS_HEADERS, "Business events headers", self.bizHeaders),
            (keys.BIZEVENTS_MODE, "Business events mode", self.bizMode),
        ):
            label = QLabel(text)
            self._rows[key] = label
            form.addRow(label, widget)
        test = QHBoxLayout()
        test.addWidget(self.testButton)
        test.addWidget(self.testResult, 1)
        box = QVBoxLayout(self)
        box.addWidget(self.envNote)
        box.addLayout(form)
        box.addLayout(test)
        box.addWidget(self.error)
        box.addWidget(self.buttons)
        self.resize(560, self.sizeHint().height())

    def _fill(self) -> None:
        f = self.form
        owned = {k: f.owners(k) for k in keys.SAVED_KEYS}
        for key, edit in (
            (keys.ENDPOINT, self.endpoint),
            (keys.RESOURCE_ATTRIBUTES, self.resource),
            (keys.BIZEVENTS_URL, self.bizUrl),
        ):
            edit.setText(self._env_value(key) if owned[key] else f.value(key))
            edit.setReadOnly(bool(owned[key]))
        self.headers.set_value(
            self._env_value(keys.HEADERS) if owned[keys.HEADERS] else f.value(keys.HEADERS),
            bool(owned[keys.HEADERS]),
        )
        self.bizHeaders.set_value(
            f.value(keys.BIZEVENTS_HEADERS), bool(owned[keys.BIZEVENTS_HEADERS])
        )
        mode = self._env_value(keys.BIZEVENTS_MODE) if owned[keys.BIZEVENTS_MODE] else ""
        mode = (mode or f.value(keys.BIZEVENTS_MODE)).strip().lower()
        self.bizMode.setCurrentIndex(max(0, self.bizMode.findData(mode)))
        self.bizMode.setEnabled(not owned[keys.BIZEVENTS_MODE])
        for key, box in ((keys.TRACES_EXPORTER, self.traces), (keys.LOGS_EXPORTER, self.logs)):
            box.setChecked(f.value(key).strip().lower() != "none")
            box.setEnabled(not owned[key])
        names = sorted({n for names in owned.values() for n in names})
        for key, label in self._rows.items():
            if owned[key]:
                tip = f"set by the environment ({', '.join(owned[key])}): it wins over saved values"
                label.setToolTip(tip)
                label.setText(f"{label.text()} (environment)".strip())
        self.envNote.setText(
            "From the environment, read-only here (environment variables win): " + ", ".join(names)
            if names
            else "Saved with the panel's settings; OTEL_* environment variables would win."
        )

    def _env_value(self, key: str) -> str:
        """The value of the first environment variable that owns `key` (shown read-only)."""
        return next((self.form.env[n] for n in self.form.owners(key) if n in self.form.env), "")

    def values(self) -> dict[str, str]:
        """The dialog's values as the saved keys (the SDK's variable names)."""
        return {
            keys.ENDPOINT: self.endpoint.text().strip(),
            keys.HEADERS: self.headers.value().strip(),
            keys.TRACES_EXPORTER: "" if self.traces.isChecked() else "none",
            keys.LOGS_EXPORTER: "" if self.logs.isChecked() else "none",
            keys.RESOURCE_ATTRIBUTES: self.resource.text().strip(),
            keys.BIZEVENTS_URL: self.bizUrl.text().strip(),
            keys.BIZEVENTS_HEADERS: self.bizHeaders.value().strip(),
            # Batch is the default: saved only when structured is chosen.
            keys.BIZEVENTS_MODE: "" if self.bizMode.currentData() == "batch" else "structured",
        }

    def changeEvent(self, event: QEvent) -> None:
        # Labels with a style sheet of their own miss the palette change: restyle them here.
        if event.type() == QEvent.Type.PaletteChange:
            self.error.setStyleSheet(text_style("error"))
            self.testResult.setStyleSheet(text_style(self._test_kind) if self._test_kind else "")
        super().changeEvent(event)

    # -- actions -------------------------------------------------------------------------------
    def test_connection(self) -> None:
        self.testButton.setEnabled(False)
        self._test_kind = ""
        self.testResult.setStyleSheet("")
        self.testResult.setText("Testing…")
        self._testing = self._task(self._test(self.values()))

    async def _test(self, values: dict[str, str]) -> None:
        check = await self.bridge.test_export_connection(values)
        self._test_kind = "ok" if check.ok else "error"
        self.testResult.setStyleSheet(text_style(self._test_kind))
        self.testResult.setText(("✓ " if check.ok else "✗ ") + check.message)
        self.testButton.setEnabled(True)

    def save(self) -> None:
        values = self.values()
        try:
            self.bridge.check_export(values)  # the same parsing as at start
        except ExportSettingsError as exc:
            self.error.setText(str(exc))  # names the field; nothing is saved
            return
        self.error.clear()
        self.saveButton.setEnabled(False)
        self.saveButton.setText("Saving…")
        self._cancel(False)
        self._task(self._save(values))

    async def _save(self, values: dict[str, str]) -> None:
        try:
            await self.bridge.apply_export(values)
        except (ExportSettingsError, OSError) as exc:
            self.error.setText(f"Not saved: {exc}")
            self.saveButton.setEnabled(True)
            self.saveButton.setText("Save")
            self._cancel(True)
            return
        self._cancel(True)
        self.accept()

    def _cancel(self, enabled: bool) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setEnabled(enabled)

    def reject(self) -> None:
        if not self.buttons.button(QDialogButtonBox.StandardButton.Cancel).isEnabled():
            return  # Escape while the exporter is being swapped: wait for the save
        super().reject()

    def _task(self, coro: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
        return self._tasks.spawn(coro, getattr(coro, "__qualname__", "task"))

    def _failed(self, _name: str, exc: BaseException) -> None:
        self.error.setText(f"Internal error: {type(exc).__name__}")

    def _cancel_tasks(self) -> None:
        # Closed while testing: the test is abandoned. A save is never cancelled (it may be
        # swapping the core's exporter); Cancel is disabled while it runs.
        if self._testing is not None:
            self._testing.cancel()


class ExportIndicator(QLabel):
    """`Export: off | idle · N sent | sending · N sent | retrying · <error> | failing ·
    <error>`: the worst state of the signals (the exporter's own, app/core/export/channel.py),
    counts summed; per-signal counts and the last error, with its time, in the tooltip.

    Reads `bridge.export_status()` once a second (and when settings are saved). The status
    holds endpoints without user info and counts, never a header value."""

    def __init__(self, bridge: CoreBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("exportIndicator")
        self.bridge = bridge
        self.state = "off"
        self._timer = QTimer(self)
        self._timer.setInterval(INDICATOR_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        bridge.exportChanged.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        status = self.bridge.export_status() or {}
        on = {name: s for name, s in status.items() if s.get("endpoint")}
        if not on:
            self.state = "off"
            self.setText("Export: off")
            self.setToolTip("No export endpoint: File ▸ Export settings…, or OTEL_* variables")
            return
        worst = max(on.values(), key=_rank)
        self.state = str(worst.get("state", "idle"))
        sent = sum(int(s["sent"]) for s in on.values())
        error = worst.get("lastError")
        if self.state in ("retrying", "failing") and error:
            self.setText(f"Export: {self.state} · {_short(str(error))}")
        else:
            self.setText(f"Export: {self.state} · {sent:,} sent")
        self.setToolTip("\n".join(self._line(name, s) for name, s in on.items()))

    @staticmethod
    def when(stamp: float) -> str:
        """A status time (wall clock) as the window shows it: local time of day."""
        return time.strftime("%H:%M:%S", time.localtime(stamp))

    def _line(self, name: str, s: dict[str, Any]) -> str:
        line = (
            f"{name} → {s['endpoint']}: {s.get('state', 'idle')}, {s['sent']:,} sent, "
            f"{s['dropped']:,} dropped, {s['failedBatches']:,} failed batches, "
            f"{s.get('queued', 0):,} queued"
        )
        if not s.get("lastError"):
            return line
        at = f" at {self.when(s['lastErrorAt'])}" if s.get("lastErrorAt") else ""
        return f"{line}; last error{at}: {s['lastError']}"


# From best to worst: the indicator shows the worst of its signals.
STATES = ("idle", "sending", "retrying", "failing")


def _rank(status: dict[str, Any]) -> int:
    state = status.get("state")
    return STATES.index(state) if state in STATES else 0


def _short(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"
