"""The export settings dialog and the status-bar indicator against a real OTLP/HTTP receiver
(tests/export/receiver.py): save → a run's spans arrive; test connection; the environment wins;
secrets never shown; the saved file is 0600."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QAbstractButton, QLabel, QLineEdit, QWidget

from app.core.export import saved
from app.core.settings import LauncherKind, Settings
from app.ui.bridge import CoreBridge
from app.ui.export_dialog import ExportDialog, ExportIndicator, mask_headers
from app.ui.main_window import MainWindow
from tests.conftest import make_settings
from tests.export.receiver import STRUCTURED, Receiver
from tests.helpers import journey
from tests.ui.conftest import Panel, drive, ui_settings

SECRET = "dt0c01.SECRET-never-shown"
HEADERS = f"Authorization=Api-Token%20{SECRET}"
STEPS = ("LoginService", "PayService")
N = 2
SPANS = N * (1 + len(STEPS) + len(STEPS) - 1)  # root + SERVER per hop + CLIENT per call
WAIT_MS = 20_000


@pytest.fixture
def settings(tmp_path: Path, port_range: range) -> Settings:
    return make_settings(LauncherKind.FORK, tmp_path, port_range)


@pytest.fixture
def receiver(qtbot: Any, aloop: Any) -> Iterator[Receiver]:
    rx = drive(qtbot, Receiver().__aenter__())
    yield rx
    drive(qtbot, rx.__aexit__(None, None, None))


@pytest.fixture
def panels(qtbot: Any, aloop: Any, tmp_path: Path) -> Iterator[Any]:
    opened: list[Panel] = []

    def make(settings: Settings, env: dict[str, str] | None = None) -> Panel:
        bridge = CoreBridge(settings, None, env={} if env is None else env)
        window = MainWindow(bridge, ui_settings(tmp_path))
        drive(qtbot, bridge.open())
        window.show()
        opened.append(Panel(qtbot, bridge, window))
        return opened[-1]

    yield make
    for panel in opened:
        panel.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def open_dialog(qtbot: Any, window: MainWindow) -> ExportDialog:
    action = window.findChild(QAction, "exportSettingsAction")
    assert action is not None
    action.trigger()  # File ▸ Export settings…
    dialog = window.export_dialog
    qtbot.waitUntil(dialog.isVisible, timeout=WAIT_MS)
    return dialog


def texts(*roots: QWidget) -> list[str]:
    """Every text a screenshot of these widgets could show: labels, line edits, buttons,
    tooltips, window titles."""
    out: list[str] = []
    for root in roots:
        out += [root.windowTitle(), root.toolTip()]
        for w in root.findChildren(QWidget):
            out.append(w.toolTip())
            if isinstance(w, QLineEdit):
                out.append(w.displayText())  # what it shows (a password's dots)
            elif isinstance(w, QLabel | QAbstractButton):
                out.append(w.text())
    return out


def assert_no_secret(*roots: QWidget) -> None:
    for root in roots:
        assert not root.grab().isNull()  # the screenshot renders...
    shown = "\n".join(texts(*roots))
    assert SECRET not in shown  # ...and none of its texts holds the secret
    assert "SECRET" not in shown


def test_dialog_save_sends_a_runs_spans_to_the_receiver(
    qtbot: Any, panels: Any, settings: Settings, receiver: Receiver
) -> None:
    panel = panels(settings)
    w = panel.window
    assert w.exportIndicator.text() == "Export: off"
    dialog = open_dialog(qtbot, w)
    dialog.endpoint.setText(receiver.base)
    qtbot.keyClicks(dialog.headers.edit, HEADERS)
    assert dialog.headers.summary.text() == "Authorization=Api-Token ••••"
    dialog.logs.setChecked(False)
    qtbot.mouseClick(dialog.saveButton, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=WAIT_MS)

    path = saved.path_in(settings.state_dir)
    assert saved.mode_of(path) == 0o600
    assert saved.load(settings.state_dir) == {
        saved.ENDPOINT: receiver.base,
        saved.HEADERS: HEADERS,
        saved.LOGS_EXPORTER: "none",
    }
    result = drive(qtbot, panel.bridge.run_journey(journey("Acme Corp", *STEPS), customers=N))
    assert result is not None and result.ok
    drive(qtbot, receiver.wait_for(lambda g: len(g.spans) >= SPANS))
    assert len(receiver.got.spans) == SPANS and not receiver.got.logs  # logs switched off
    assert {h["Authorization"] for h in receiver.got.headers} == {f"Api-Token {SECRET}"}
    qtbot.waitUntil(lambda: w.exportIndicator.text() == f"Export: idle · {SPANS} sent")
    assert "traces → " + receiver.base + "/v1/traces: " in w.exportIndicator.toolTip()

    again = open_dialog(qtbot, w)  # the saved values come back, masked
    assert again.endpoint.text() == receiver.base
    assert again.headers.summary.text() == "Authorization=Api-Token ••••"
    assert again.headers.edit.echoMode() is QLineEdit.EchoMode.Password
    assert again.headers.value() == HEADERS  # kept as saved unless typed over
    w.logView.flush()
    log_text = w.logView.toPlainText()
    assert "export settings saved and applied (traces → " in log_text
    assert SECRET not in log_text
    assert_no_secret(w, again)
    again.reject()


def test_dialog_saves_the_business_events_mode(
    qtbot: Any, panels: Any, settings: Settings, receiver: Receiver
) -> None:
    panel = panels(settings)
    dialog = open_dialog(qtbot, panel.window)
    assert dialog.bizMode.currentData() == "batch"  # the default
    dialog.bizUrl.setText(f"{receiver.base}/bizevents")
    dialog.bizMode.setCurrentIndex(dialog.bizMode.findData("structured"))
    qtbot.mouseClick(dialog.saveButton, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=WAIT_MS)
    assert saved.load(settings.state_dir) == {
        saved.BIZEVENTS_URL: f"{receiver.base}/bizevents",
        saved.BIZEVENTS_MODE: "structured",
    }
    result = drive(qtbot, panel.bridge.run_journey(journey("Mode Co", *STEPS), customers=N))
    assert result is not None and result.ok
    events = N * len(STEPS)
    drive(qtbot, receiver.wait_for(lambda g: len(g.events) >= events))
    assert len(receiver.got.event_requests) == events  # one event per request
    assert {h["Content-Type"] for h, _ in receiver.got.event_requests} == {STRUCTURED}
    again = open_dialog(qtbot, panel.window)
    assert again.bizMode.currentData() == "structured"
    again.reject()


def test_test_connection_reports_success_and_a_closed_port(
    qtbot: Any, panels: Any, settings: Settings, receiver: Receiver
) -> None:
    panel = panels(settings)
    dialog = open_dialog(qtbot, panel.window)
    dialog.endpoint.setText(receiver.base)
    dialog.headers.edit.setText(HEADERS)
    qtbot.mouseClick(dialog.testButton, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dialog.testButton.isEnabled, timeout=WAIT_MS)
    assert dialog.testResult.text().startswith("✓ ok · ")
    assert dialog.testResult.text().endswith(f" ms from {receiver.base}/v1/traces")
    assert receiver.got.answers[("/v1/traces", 200)] == 1 and not receiver.got.spans  # empty
    assert receiver.got.headers[0]["Authorization"] == f"Api-Token {SECRET}"

    port = closed_port()
    dialog.endpoint.setText(f"http://127.0.0.1:{port}")
    qtbot.mouseClick(dialog.testButton, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dialog.testButton.isEnabled, timeout=WAIT_MS)
    failure = dialog.testResult.text()
    assert failure == f"✗ connection refused at http://127.0.0.1:{port}/v1/traces"
    assert SECRET not in failure
    assert not saved.path_in(settings.state_dir).exists()  # testing saves nothing
    dialog.reject()


def test_environment_wins_over_saved_values_field_by_field(
    qtbot: Any, panels: Any, settings: Settings, receiver: Receiver
) -> None:
    other = f"http://127.0.0.1:{closed_port()}"
    saved.save(settings.state_dir, {saved.ENDPOINT: other, saved.HEADERS: HEADERS})
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.base, "OTEL_LOGS_EXPORTER": "none"}
    panel = panels(settings, env)
    status = panel.bridge.export_status()
    assert status is not None
    assert status["traces"]["endpoint"] == f"{receiver.base}/v1/traces"  # env's endpoint
    assert status["logs"]["endpoint"] is None  # env's OTEL_LOGS_EXPORTER=none
    assert panel.bridge.core is not None
    traces = panel.bridge.core.exporter.settings.traces
    assert traces is not None and dict(traces.headers) == {"Authorization": f"Api-Token {SECRET}"}

    dialog = open_dialog(qtbot, panel.window)
    assert dialog.endpoint.text() == receiver.base and dialog.endpoint.isReadOnly()
    assert not dialog.logs.isEnabled() and not dialog.logs.isChecked()
    assert dialog.traces.isEnabled()
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in dialog.envNote.text()
    assert "OTEL_LOGS_EXPORTER" in dialog.envNote.text()
    assert dialog.headers.edit.echoMode() is QLineEdit.EchoMode.Password
    dialog.endpoint.setText("http://ignored.example:4318")  # read-only in the UI; ignored anyway
    dialog.resource.setText("deployment.environment.name=demo")
    qtbot.mouseClick(dialog.saveButton, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=WAIT_MS)
    assert saved.load(settings.state_dir) == {
        saved.ENDPOINT: other,  # the environment's field keeps its saved value
        saved.HEADERS: HEADERS,
        saved.RESOURCE_ATTRIBUTES: "deployment.environment.name=demo",
    }
    status = panel.bridge.export_status()
    assert status is not None and status["traces"]["endpoint"] == f"{receiver.base}/v1/traces"


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        ("endpoint", "localhost:4318", "OTEL_EXPORTER_OTLP_ENDPOINT='localhost:4318' is not"),
        ("headers", SECRET, "OTEL_EXPORTER_OTLP_HEADERS: entry 1 is not key=value"),
        ("bizUrl", "ftp://x", "BIZOBS_BIZEVENTS_URL='ftp://x' is not an http(s) URL"),
    ],
)
def test_a_bad_value_is_a_clear_message_and_nothing_is_saved(
    qtbot: Any, panels: Any, settings: Settings, field: str, text: str, message: str
) -> None:
    panel = panels(settings)
    dialog = open_dialog(qtbot, panel.window)
    dialog.endpoint.setText("http://127.0.0.1:4318")
    target = getattr(dialog, field)
    (target.edit if hasattr(target, "edit") else target).setText(text)
    qtbot.mouseClick(dialog.saveButton, Qt.MouseButton.LeftButton)
    assert message in dialog.error.text()
    assert SECRET not in dialog.error.text()
    assert dialog.isVisible() and not saved.path_in(settings.state_dir).exists()
    status = panel.bridge.export_status()
    assert status is not None and status["traces"]["endpoint"] is None  # nothing applied
    dialog.reject()


class FakeBridge(QObject):
    exportChanged = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.status: dict[str, Any] = {}

    def export_status(self) -> dict[str, Any]:
        return self.status


def signal(
    sent: int, dropped: int, failed: int, error: str | None, state: str = "idle"
) -> dict[str, Any]:
    return {
        "endpoint": "https://abc.live.dynatrace.com/api/v2/otlp/v1/traces",
        "state": state,
        "sent": sent,
        "dropped": dropped,
        "failedBatches": failed,
        "lastError": error,
        "lastErrorAt": 1_800_000_000.0 if error else None,
        "queued": 0,
    }


REFUSED = "connection refused at https://abc.live.dynatrace.com/api/v2/otlp/v1/traces"


def test_indicator_shows_the_exporters_state_in_plain_words(qtbot: Any) -> None:
    bridge = FakeBridge()
    label = ExportIndicator(bridge)  # type: ignore[arg-type]
    qtbot.addWidget(label)
    assert label.text() == "Export: off"
    bridge.status = {"traces": signal(0, 0, 0, None)}
    label.refresh()
    assert label.text() == "Export: idle · 0 sent"
    bridge.status = {"traces": signal(6138, 0, 0, None, "sending")}
    label.refresh()
    assert label.text() == "Export: sending · 6,138 sent"
    bridge.status = {"traces": signal(6138, 0, 0, REFUSED, "retrying")}
    label.refresh()
    assert label.text().startswith("Export: retrying · connection refused at https://abc.live")
    bridge.status = {"traces": signal(6138, 8, 1, REFUSED, "failing")}
    label.refresh()
    text = label.text()
    assert text.startswith("Export: failing · connection refused at https://abc.live")
    assert text.endswith("…") and len(text) == len("Export: failing · ") + 60
    tip = label.toolTip()
    assert tip.startswith(
        "traces → https://abc.live.dynatrace.com/api/v2/otlp/v1/traces: failing, 6,138 sent, "
        "8 dropped, 1 failed batches, 0 queued; last error at "
    )
    assert tip.endswith(f": {REFUSED}")


def test_indicator_clears_failing_once_a_send_succeeds(qtbot: Any) -> None:
    """The last error stays in the tooltip as history; the text follows the state."""
    bridge = FakeBridge()
    label = ExportIndicator(bridge)  # type: ignore[arg-type]
    qtbot.addWidget(label)
    bridge.status = {"traces": signal(40, 8, 1, REFUSED, "failing")}
    label.refresh()
    assert label.text().startswith("Export: failing · ")
    bridge.status = {"traces": signal(48, 8, 1, REFUSED, "idle")}  # recovered, all delivered
    label.refresh()
    assert label.text() == "Export: idle · 48 sent"
    assert label.toolTip().endswith(f"last error at {label.when(1_800_000_000.0)}: {REFUSED}")
    # Two signals: the worst state is shown, the counts are summed.
    logs = signal(10, 0, 0, None, "sending") | {"endpoint": "https://x.example/v1/logs"}
    bridge.status = {"traces": signal(48, 8, 1, REFUSED, "idle"), "logs": logs}
    label.refresh()
    assert label.text() == "Export: sending · 58 sent"
    bridge.status["logs"] = logs | {"state": "failing", "lastError": "HTTP 401 from x"}
    label.refresh()
    assert label.text() == "Export: failing · HTTP 401 from x"


def test_masking() -> None:
    assert mask_headers(HEADERS) == "Authorization=Api-Token ••••"
    assert mask_headers("x-team=demo,Api-Key=abc") == "x-team=••••,Api-Key=••••"
    assert mask_headers(SECRET) == "••••"  # a token pasted without its name
    assert mask_headers("") == ""
