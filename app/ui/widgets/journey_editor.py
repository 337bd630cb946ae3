"""The journey editor: company, domain, industry, steps, customers, mode, templates.

Validation is the core's own (`app.core.journeys.parse_journey`, pure), shown inline before any
run. Templates are data (`resources/journeys`), read through `app.core.journeys` as well.

A step's error rate is typed and shown in percent, kept as a fraction in the journey. Edits
can be undone (journey_history.py keeps the snapshots); a template picked over an edited
journey asks first.

Over 400 lines: the form, its steps table, its validation display and its undo are one view.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemDelegate,
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import Problem, ValidationError
from app.core.journeys import load_template, parse_journey, template_names
from app.core.limits import MAX_CUSTOMERS, MAX_STEPS, MAX_THINK_TIME_MS
from app.core.model import Mode
from app.ui.widgets.journey_history import History
from app.ui.widgets.palette import notice_colours

INDUSTRIES = (
    "Retail",
    "E-commerce",
    "Banking",
    "Insurance",
    "Healthcare",
    "Telecommunications",
    "Travel",
    "SaaS",
    "Media",
    "Logistics",
    "Energy",
    "Public Sector",
)
MODE_TEXT = {
    Mode.SINGLE: "Single customer",
    Mode.MULTIPLE: "Multiple customers",
    Mode.BATCH_CHAINED: "Batch, chained (LoadRunner)",
}
COL_STEP, COL_SERVICE, COL_LATENCY, COL_ERROR = range(4)
AUTO_ROLE = Qt.ItemDataRole.UserRole + 1  # on the service item: name was suggested, not typed
EXTRA_ROLE = Qt.ItemDataRole.UserRole + 2  # on the step item: fields the table does not show
VALIDATE_DELAY_MS = 250
HISTORY_DELAY_MS = 400  # edits this close together (typing a name) are one undo step
VALIDATION_LINES = 3  # the validation box's fixed height, in lines: it never moves the buttons
TEMPLATE_PROMPT = "Choose a template…"
STEP_FIELDS = {"stepName": COL_STEP, "serviceName": COL_SERVICE, "latencyMs": COL_LATENCY}
STEP_FIELDS["errorRate"] = COL_ERROR
STEP_PATH = re.compile(r"steps\[(\d+)\](?:\.(\w+))?")
Snapshot = tuple[str, str | None, bool]  # the journey (JSON), its template, modified since


def suggest_service_name(step_name: str) -> str:
    """'Add To Cart' -> 'AddToCartService'; always a valid service identifier (or '')."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", step_name) if w]
    name = "".join(w[0].upper() + w[1:] for w in words)
    name = name.lstrip("0123456789")
    if not name:
        return ""
    if not name.endswith("Service"):
        name += "Service"
    return name[:64]


class JourneyEditor(QWidget):
    changed = Signal()
    validated = Signal(list)  # the current problems (empty: ready to run)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("journeyEditor")
        self._updating = False
        self._max_steps = MAX_STEPS
        self._extra_journey: dict[str, Any] = {}
        self._template: str | None = None  # the template loaded, until another journey replaces it
        self._template_modified = False
        self._loading = False
        # The journey as loaded (a template, a file); None: the blank form is the baseline.
        self._baseline: dict[str, Any] | None = None
        self.discard_dialog: QMessageBox | None = None
        self._validation_kind = ""  # the validation box's colours (palette.NOTICE_COLOURS)
        self._build()
        self._validate_timer = QTimer(self)
        self._validate_timer.setSingleShot(True)
        self._validate_timer.setInterval(VALIDATE_DELAY_MS)
        self._validate_timer.timeout.connect(self.refresh_validation)
        self.changed.connect(self._validate_timer.start)
        self.changed.connect(self._mark_modified)
        self._history: History[Snapshot] = History()
        self._history_timer = QTimer(self)
        self._history_timer.setSingleShot(True)
        self._history_timer.setInterval(HISTORY_DELAY_MS)
        self._history_timer.timeout.connect(self._record)
        self.changed.connect(self._history_timer.start)
        # In a text field Ctrl+Z is the field's own undo (Qt gives it the key first).
        for keys, slot in (("Ctrl+Z", self.undo), ("Ctrl+Shift+Z", self.redo)):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)

    # -- layout --------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)

        top = QHBoxLayout()
        top.addWidget(QLabel("Template:"))
        self.templateCombo = QComboBox()
        self.templateCombo.setObjectName("templateCombo")
        self.templateCombo.addItem(TEMPLATE_PROMPT, None)
        for name in template_names():
            self.templateCombo.addItem(name, name)
        self.templateCombo.setToolTip("Load a ready-made journey into the form")
        self.templateCombo.activated.connect(self._template_chosen)
        top.addWidget(self.templateCombo, 1)
        layout.addLayout(top)

        company = QGroupBox("Company")
        form = QFormLayout(company)
        self.companyNameEdit = QLineEdit()
        self.companyNameEdit.setObjectName("companyNameEdit")
        self.companyNameEdit.setPlaceholderText("e.g. Acme Retail")
        self.domainEdit = QLineEdit()
        self.domainEdit.setObjectName("domainEdit")
        self.domainEdit.setPlaceholderText("e.g. acme.com")
        self.industryCombo = QComboBox()
        self.industryCombo.setObjectName("industryCombo")
        self.industryCombo.setEditable(True)
        self.industryCombo.addItems(INDUSTRIES)
        self.industryCombo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        form.addRow("Company name", self.companyNameEdit)
        form.addRow("Domain", self.domainEdit)
        form.addRow("Industry", self.industryCombo)
        layout.addWidget(company)

        steps = QGroupBox("Steps (one service each, in order)")
        steps_layout = QVBoxLayout(steps)
        self.stepsTable = QTableWidget(0, 4)
        self.stepsTable.setObjectName("stepsTable")
        self.stepsTable.setHorizontalHeaderLabels(
            ["Step name", "Service name", "Latency", "Errors"]
        )
        self.stepsTable.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.stepsTable.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.stepsTable.horizontalHeader()
        header.setSectionResizeMode(COL_STEP, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(COL_SERVICE, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(COL_LATENCY, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COL_ERROR, QHeaderView.ResizeMode.ResizeToContents)
        self.stepsTable.verticalHeader().setDefaultSectionSize(24)
        self.stepsTable.setToolTip(
            "Service name is suggested from the step name until you type your own.\n"
            "Latency: simulated ms per call (0–60000).\n"
            "Errors: the share of calls that fail, in percent (5 = 5 % of calls fail)."
        )
        self.stepsTable.itemChanged.connect(self._item_changed)
        steps_layout.addWidget(self.stepsTable, 1)
        buttons = QHBoxLayout()
        self.addStepButton = self._button("Add", "addStepButton", self.add_and_edit)
        self.removeStepButton = self._button("Remove", "removeStepButton", self.remove_step)
        self.moveUpButton = self._button("Up", "moveUpButton", lambda: self.move_step(-1))
        self.moveDownButton = self._button("Down", "moveDownButton", lambda: self.move_step(1))
        for b in (
            self.addStepButton,
            self.removeStepButton,
            self.moveUpButton,
            self.moveDownButton,
        ):
            buttons.addWidget(b)
        buttons.addStretch(1)
        steps_layout.addLayout(buttons)
        layout.addWidget(steps, 1)

        # Not "Traffic": that is the continuous traffic tab; this box is one run's customers.
        per_run = QGroupBox("Customers per run")
        per_run.setObjectName("customersPerRunBox")
        tform = QFormLayout(per_run)
        self.modeCombo = QComboBox()
        self.modeCombo.setObjectName("modeCombo")
        for mode in Mode:
            self.modeCombo.addItem(MODE_TEXT[mode], mode.value)
        self.customersSpin = QSpinBox()
        self.customersSpin.setObjectName("customersSpin")
        self.customersSpin.setRange(1, MAX_CUSTOMERS)
        self.customersSpin.setValue(3)
        self.thinkTimeSpin = QSpinBox()
        self.thinkTimeSpin.setObjectName("thinkTimeSpin")
        self.thinkTimeSpin.setRange(0, MAX_THINK_TIME_MS)
        self.thinkTimeSpin.setSingleStep(50)
        self.thinkTimeSpin.setSuffix(" ms")
        tform.addRow("Mode", self.modeCombo)
        tform.addRow("Customers", self.customersSpin)
        tform.addRow("Think time", self.thinkTimeSpin)
        layout.addWidget(per_run)
        self.modeCombo.setCurrentIndex(1)

        self.validationLabel = QLabel()
        self.validationLabel.setObjectName("validationLabel")
        self.validationLabel.setWordWrap(True)
        self.validationLabel.setTextFormat(Qt.TextFormat.RichText)
        self.validationLabel.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        # A fixed height: problems coming and going never move the buttons above (long lists
        # scroll inside it).
        box = QScrollArea()
        box.setObjectName("validationBox")
        box.setWidgetResizable(True)
        box.setFrameShape(QFrame.Shape.NoFrame)
        box.setWidget(self.validationLabel)
        box.setFixedHeight(self.fontMetrics().lineSpacing() * VALIDATION_LINES + 16)
        layout.addWidget(box)

        for edit in (self.companyNameEdit, self.domainEdit):
            edit.textChanged.connect(self.changed)
        self.industryCombo.currentTextChanged.connect(self.changed)
        self.customersSpin.valueChanged.connect(self.changed)
        self.thinkTimeSpin.valueChanged.connect(self.changed)
        self.modeCombo.currentIndexChanged.connect(self._mode_changed)
        self._mode_changed()

    def _button(self, text: str, name: str, slot: Any) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.clicked.connect(slot)
        return button

    # -- steps table ---------------------------------------------------------------------------
    def add_step(
        self,
        step_name: str = "",
        service_name: str = "",
        latency_ms: Any = "",
        error_rate: Any = "",
        extra: dict[str, Any] | None = None,
    ) -> int:
        """Append a row (selected afterwards); returns its index."""
        self._updating = True
        try:
            row = self.stepsTable.rowCount()
            self.stepsTable.insertRow(row)
            step_item = QTableWidgetItem(step_name)
            step_item.setData(EXTRA_ROLE, dict(extra or {}))
            service = service_name or suggest_service_name(step_name)
            service_item = QTableWidgetItem(service)
            service_item.setData(AUTO_ROLE, not service_name)
            self.stepsTable.setItem(row, COL_STEP, step_item)
            self.stepsTable.setItem(row, COL_SERVICE, service_item)
            self.stepsTable.setItem(row, COL_LATENCY, _number_item(latency_ms))
            self.stepsTable.setItem(row, COL_ERROR, _percent_item(error_rate))
        finally:
            self._updating = False
        self.stepsTable.selectRow(row)
        self.changed.emit()
        return row

    def add_and_edit(self, *_checked: object) -> None:
        """The Add button: a new row whose name is open for typing at once."""
        row = self.add_step()
        item = self.stepsTable.item(row, COL_STEP)
        if item is None:
            return
        self.stepsTable.setCurrentItem(item)
        self.stepsTable.setFocus()
        self.stepsTable.editItem(item)

    def remove_step(self, *_checked: object) -> None:
        row = self.stepsTable.currentRow()
        if row < 0:
            row = self.stepsTable.rowCount() - 1
        if row < 0:
            return
        self.stepsTable.removeRow(row)
        if self.stepsTable.rowCount():
            self.stepsTable.selectRow(min(row, self.stepsTable.rowCount() - 1))
        self.changed.emit()

    def move_step(self, delta: int) -> None:
        row = self.stepsTable.currentRow()
        target = row + delta
        if row < 0 or not 0 <= target < self.stepsTable.rowCount():
            return
        self._updating = True
        try:
            for col in range(self.stepsTable.columnCount()):
                a = self.stepsTable.takeItem(row, col)
                b = self.stepsTable.takeItem(target, col)
                self.stepsTable.setItem(row, col, b)
                self.stepsTable.setItem(target, col, a)
        finally:
            self._updating = False
        self.stepsTable.selectRow(target)
        self.changed.emit()

    def set_step_text(self, row: int, col: int, text: str) -> None:
        """Edit one cell as a user would (suggestions and validation follow)."""
        editor = self.stepsTable.indexWidget(self.stepsTable.model().index(row, col))
        if editor is not None:  # an open editor would later commit its stale text over ours
            self.stepsTable.closeEditor(editor, QAbstractItemDelegate.EndEditHint.NoHint)
        item = self.stepsTable.item(row, col)
        if item is None:
            item = QTableWidgetItem()
            self.stepsTable.setItem(row, col, item)
        item.setText(text)

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if self._updating:
            return
        row, col = item.row(), item.column()
        if col == COL_STEP:
            service = self.stepsTable.item(row, COL_SERVICE)
            if service is None or service.data(AUTO_ROLE) or not service.text().strip():
                self._updating = True
                try:
                    if service is None:
                        service = QTableWidgetItem()
                        self.stepsTable.setItem(row, COL_SERVICE, service)
                    service.setText(suggest_service_name(item.text()))
                    service.setData(AUTO_ROLE, True)
                finally:
                    self._updating = False
        elif col == COL_SERVICE:
            item.setData(AUTO_ROLE, not item.text().strip())
        elif col == COL_ERROR:
            self._show_percent(item)
        self.changed.emit()

    def _show_percent(self, item: QTableWidgetItem) -> None:
        """A rate typed as "20" reads "20 %" once entered; text that is no number stays, for
        validation to name."""
        fraction = _parse_percent(item.text())
        if fraction is None:
            return
        self._updating = True
        try:
            item.setText(_percent_text(fraction))
        finally:
            self._updating = False

    def _mode_changed(self) -> None:
        mode = self.mode()
        self.thinkTimeSpin.setEnabled(mode == "batch-chained")
        self.customersSpin.setEnabled(mode != "single")
        self.changed.emit()

    def _template_chosen(self, index: int) -> None:
        name = self.templateCombo.itemData(index)
        if name:
            self.choose_template(name)
        else:
            self._show_template()

    def choose_template(self, name: str, loaded: Callable[[], None] | None = None) -> None:
        """Load template `name` as the operator picked it (see `replace_journey`); `loaded`
        runs once it is in."""

        def load() -> None:
            self.load_template(name)
            if loaded is not None:
                loaded()

        self.replace_journey(name, load)

    def replace_journey(self, replacement: str, load: Callable[[], None]) -> None:
        """Run `load`, which puts another journey (`replacement` names it) in the form: over an
        edited journey only once the operator agrees to discard the edits (Cancel keeps them).
        Templates, New Journey and Open Journey all ask here, the same question."""
        if not self.is_edited():
            load()
            return
        box = QMessageBox(self)
        box.setObjectName("discardChangesDialog")
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Discard changes?")
        box.setText("Discard changes?")
        box.setInformativeText(f"The journey in the form was edited; {replacement} replaces it.")
        discard = box.addButton("Discard changes", QMessageBox.ButtonRole.DestructiveRole)
        discard.setObjectName("discardChangesButton")
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.setEscapeButton(cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.buttonClicked.connect(lambda b: load() if b is discard else None)
        box.finished.connect(self._discard_closed)
        self.discard_dialog = box
        box.open()  # non-blocking: no nested event loop

    def _discard_closed(self) -> None:
        self.discard_dialog = None
        self._show_template()  # a cancelled pick: the combo names what the form holds again

    def is_edited(self) -> bool:
        """Has the form changed since its journey was loaded (a template, a file; a journey
        restored from the last session counts as edited unless it is an unchanged template)?"""
        data, _ = self.journey_data()
        if self._baseline is None:
            return not _blank(data)
        return data != self._baseline

    # -- undo and redo -------------------------------------------------------------------------
    def undo(self) -> None:
        """Back to the journey before the last edit (a template or file loaded is one too)."""
        self._record()  # edits not yet settled are the step undone
        self._put_back(self._history.undo())

    def redo(self) -> None:
        self._record()
        self._put_back(self._history.redo())

    def can_undo(self) -> bool:
        """An edit recorded to undo (edits settle into the history after HISTORY_DELAY_MS)."""
        return self._history.can_undo()

    def can_redo(self) -> bool:
        return self._history.can_redo()

    def _snapshot(self) -> Snapshot:
        data, _ = self.journey_data()
        return (json.dumps(data, sort_keys=True), self._template, self._template_modified)

    def _record(self) -> None:
        self._history_timer.stop()
        self._history.record(self._snapshot())

    def _put_back(self, snapshot: Snapshot | None) -> None:
        if snapshot is None:
            return
        baseline = self._baseline  # what "edited" compares with stays the loaded journey
        self._load(json.loads(snapshot[0]))
        self._template, self._template_modified = snapshot[1], snapshot[2]
        self._baseline = baseline
        self._show_template()
        self._history_timer.stop()  # the form holds the history's state: nothing to record

    # -- data in and out -----------------------------------------------------------------------
    @staticmethod
    def template_names() -> list[str]:
        return template_names()

    def load_template(self, name: str) -> None:
        self._load(load_template(name).to_json())
        self._template, self._template_modified = name, False
        self._show_template()
        self._record()

    def loaded_template(self) -> tuple[str | None, bool]:
        """The template the form came from, and whether it was edited since."""
        return self._template, self._template_modified

    def _mark_modified(self) -> None:
        if self._template is not None and not self._loading and not self._template_modified:
            self._template_modified = True
            self._show_template()

    def _show_template(self) -> None:
        """The combo names the loaded template ("modified" once edited), else the prompt."""
        combo = self.templateCombo
        for i in range(1, combo.count()):
            combo.setItemText(i, str(combo.itemData(i)))
        index = combo.findData(self._template) if self._template else 0
        if index > 0 and self._template_modified:
            combo.setItemText(index, f"{self._template} (modified)")
        combo.setCurrentIndex(max(index, 0))

    def clear(self) -> None:
        self._load({"companyName": "", "domain": "", "industryType": "Retail", "steps": []})
        self.add_step()
        self._baseline = None
        self._record()

    def set_journey(self, data: dict[str, Any]) -> None:
        """Put `data` in the form: one undo step of its own, never merged with typing."""
        self._load(data)
        self._record()

    def _load(self, data: dict[str, Any]) -> None:
        self._template, self._template_modified = None, False  # load_template names its own
        self._loading = True
        try:
            self._set_journey(data)
        finally:
            self._loading = False
        self._baseline = self.journey_data()[0]
        self._show_template()

    def _set_journey(self, data: dict[str, Any]) -> None:
        self._updating = True
        try:
            self.companyNameEdit.setText(str(data.get("companyName", "")))
            self.domainEdit.setText(str(data.get("domain", "")))
            self.industryCombo.setCurrentText(str(data.get("industryType", "")))
            self.stepsTable.setRowCount(0)
            known = {"companyName", "domain", "industryType", "steps"}
            self._extra_journey = {k: v for k, v in data.items() if k not in known}
        finally:
            self._updating = False
        for step in data.get("steps") or []:
            if not isinstance(step, dict):
                continue
            extra = {
                k: v
                for k, v in step.items()
                if k not in ("stepName", "serviceName", "latencyMs", "errorRate")
            }
            self.add_step(
                str(step.get("stepName", "")),
                str(step.get("serviceName", "")),
                step.get("latencyMs", ""),
                step.get("errorRate", ""),
                extra,
            )
        self.changed.emit()
        self.refresh_validation()

    def journey_data(self) -> tuple[dict[str, Any], list[Problem]]:
        """The form as the journey JSON shape, plus problems the JSON cannot carry (a latency
        typed as text)."""
        problems: list[Problem] = []
        steps = []
        for row in range(self.stepsTable.rowCount()):
            step_item = self.stepsTable.item(row, COL_STEP)
            step: dict[str, Any] = {
                "stepName": _text(step_item),
                "serviceName": _text(self.stepsTable.item(row, COL_SERVICE)),
            }
            problems += self._step_numbers(row, step)
            if step_item is not None and isinstance(step_item.data(EXTRA_ROLE), dict):
                step = {**step_item.data(EXTRA_ROLE), **step}
            steps.append(step)
        data = {
            **self._extra_journey,
            "companyName": self.companyNameEdit.text(),
            "domain": self.domainEdit.text(),
            "industryType": self.industryCombo.currentText(),
            "steps": steps,
        }
        return data, problems

    def _step_numbers(self, row: int, step: dict[str, Any]) -> list[Problem]:
        """The row's latency (ms) and error rate (typed in percent, kept as a fraction) into
        `step`; what does not parse is a problem the JSON cannot carry."""
        problems = []
        latency = _text(self.stepsTable.item(row, COL_LATENCY))
        if latency:
            try:
                step["latencyMs"] = float(latency)
            except ValueError:
                problems.append(_not_a_number(row, "latencyMs", "latency", latency))
        rate = _text(self.stepsTable.item(row, COL_ERROR))
        fraction = _parse_percent(rate) if rate else None
        if rate and fraction is None:
            problems.append(_not_a_number(row, "errorRate", "error rate", rate))
        elif fraction is not None and not 0 <= fraction <= 1:
            # Said here in percent: the core would say "between 0 and 1" of a fraction.
            message = f"Step {row + 1}: error rate must be between 0 % and 100 %, got {rate}"
            problems.append(Problem(f"steps[{row}].errorRate", message))
        elif fraction is not None:
            step["errorRate"] = fraction
        return problems

    def mode(self) -> str:
        return str(self.modeCombo.currentData())

    def set_mode(self, mode: str) -> None:
        index = self.modeCombo.findData(mode)
        if index >= 0:
            self.modeCombo.setCurrentIndex(index)

    def run_params(self) -> dict[str, Any]:
        mode = self.mode()
        customers = 1 if mode == "single" else self.customersSpin.value()
        think = self.thinkTimeSpin.value() if mode == "batch-chained" else 0
        return {"customers": customers, "mode": mode, "think_time_ms": think}

    def state(self) -> dict[str, Any]:
        """Everything worth remembering between sessions."""
        data, _ = self.journey_data()
        return {
            "journey": data,
            **self.run_params(),
            "customersSpin": self.customersSpin.value(),
            "template": self._template,
            "templateModified": self._template_modified,
        }

    def restore_state(self, state: dict[str, Any]) -> None:
        journey = state.get("journey")
        if isinstance(journey, dict):
            self._load(journey)
            # The next session names the template the journey came from, as this one did.
            if state.get("template") in template_names():
                self._template = state["template"]
                self._template_modified = state.get("templateModified") is True
                self._show_template()
            if self._template is None or self._template_modified:
                self._baseline = None  # the last session's work: a template over it asks
            self._record()
        if isinstance(state.get("customersSpin"), int):
            self.customersSpin.setValue(state["customersSpin"])
        if isinstance(state.get("mode"), str):
            self.set_mode(state["mode"])
        if isinstance(state.get("think_time_ms"), int | float):
            self.thinkTimeSpin.setValue(int(state["think_time_ms"]))

    def set_max_steps(self, n: int) -> None:
        """The pool size caps the steps (one port each)."""
        self._max_steps = max(1, n)

    # -- validation ----------------------------------------------------------------------------
    def validate(self) -> list[Problem]:
        data, problems = self.journey_data()
        try:
            parse_journey(data, self._max_steps)
        except ValidationError as exc:
            problems = exc.problems + problems
        return problems

    def refresh_validation(self, emphasise: bool = False) -> list[Problem]:
        """Validate now and show the result under the form; `emphasise` after a refused run."""
        self._validate_timer.stop()
        problems = self.validate()
        self.show_problems(problems, emphasise)
        return problems

    def show_problems(self, problems: list[Problem], emphasise: bool = False) -> None:
        if problems:
            self._validation_kind = "error" if emphasise else "warning"
            title = "Cannot run this journey:" if emphasise else "Not ready to run yet:"
            items = "".join(f"<li>{_html(p.message)}</li>" for p in problems[:12])
            if len(problems) > 12:
                items += f"<li>… and {len(problems) - 12} more</li>"
            self.validationLabel.setText(f"<b>{title}</b><ul style='margin:0'>{items}</ul>")
        else:
            self._validation_kind = "ok"
            n = self.stepsTable.rowCount()
            self.validationLabel.setText(
                f"✓ Ready to run: {n} step{'s' if n != 1 else ''}, one service each."
            )
        self._style_validation()
        self._mark_fields(problems)
        self.validated.emit(list(problems))

    def changeEvent(self, event: QEvent) -> None:
        # The validation box's and invalid fields' style sheets and the invalid cells' brushes
        # name colours, not palette roles: on a light/dark switch (app/ui/theme.py) they are set
        # again from the scheme now current. Qt tells the editor (no sheet of its own), not a
        # widget that has a sheet. Only colours change: what is marked stays as validated.
        if event.type() == QEvent.Type.PaletteChange and self._validation_kind:
            self._style_validation()
            for widget, _name in self._fields():
                _style_field(widget, bool(widget.property("invalid")))
            self._updating = True  # colours are not edits
            try:
                for item in self._items():
                    _tint(item, item.background().style() != Qt.BrushStyle.NoBrush)
            finally:
                self._updating = False
        super().changeEvent(event)

    def _style_validation(self) -> None:
        fill, text, _border = notice_colours(self._validation_kind)
        self.validationLabel.setStyleSheet(
            f"QLabel {{ color: {text}; background: {fill}; border-radius: 4px; padding: 6px; }}"
        )

    def _fields(self) -> tuple[tuple[QWidget, str], ...]:
        """The form's fields and their names in a journey (a problem's `field`)."""
        return (
            (self.companyNameEdit, "companyName"),
            (self.domainEdit, "domain"),
            (self.industryCombo, "industryType"),
        )

    def _items(self) -> list[QTableWidgetItem]:
        table = self.stepsTable
        items = (
            table.item(r, c) for r in range(table.rowCount()) for c in range(table.columnCount())
        )
        return [item for item in items if item is not None]

    def _mark_fields(self, problems: list[Problem]) -> None:
        """Each problem's `field` marks its widget (property `invalid`, a border) or its step cell
        (tinted, the message on hover); their colours are palette.NOTICE_COLOURS["invalid"]."""
        fields = {p.field.split("[")[0].split(".")[0] for p in problems}
        for widget, name in self._fields():
            invalid = name in fields
            widget.setProperty("invalid", invalid)
            _style_field(widget, invalid)
            widget.setToolTip(
                "\n".join(p.message for p in problems if p.field.startswith(name)) or ""
            )
        self._mark_cells(problems)

    def _mark_cells(self, problems: list[Problem]) -> None:
        by_cell: dict[tuple[int, int], list[str]] = {}
        for p in problems:
            match = STEP_PATH.match(p.field)
            if match:
                cell = (int(match.group(1)), STEP_FIELDS.get(match.group(2) or "", COL_STEP))
                by_cell.setdefault(cell, []).append(p.message)
        self._updating = True  # marks are not edits
        try:
            for row in range(self.stepsTable.rowCount()):
                for col in range(self.stepsTable.columnCount()):
                    item = self.stepsTable.item(row, col)
                    if item is None:
                        continue
                    messages = by_cell.get((row, col))
                    item.setToolTip("\n".join(messages) if messages else "")
                    _tint(item, bool(messages))
        finally:
            self._updating = False


def _style_field(widget: QWidget, invalid: bool) -> None:
    border = notice_colours("invalid")[2]
    widget.setStyleSheet(f"border: 2px solid {border}; border-radius: 3px;" if invalid else "")


def _tint(item: QTableWidgetItem, invalid: bool) -> None:
    """An invalid cell's fill and text (both: the table's own text colour is the scheme's, and
    light text on a light tint would not read); a valid cell has the table's."""
    if invalid:
        fill, text, _border = notice_colours("invalid")
        item.setBackground(QBrush(QColor(fill)))
        item.setForeground(QBrush(QColor(text)))
    else:
        item.setBackground(QBrush())
        item.setForeground(QBrush())


def _blank(data: dict[str, Any]) -> bool:
    """Nothing typed: no company, no domain, no step with a name."""
    steps = data.get("steps") or []
    named = any(s.get("stepName") or s.get("serviceName") for s in steps if isinstance(s, dict))
    return not (data.get("companyName") or data.get("domain") or named)


def _text(item: QTableWidgetItem | None) -> str:
    return item.text().strip() if item is not None else ""


def _number_item(value: Any) -> QTableWidgetItem:
    if value in ("", None, 0, 0.0):
        text = ""
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = str(value)
    item = QTableWidgetItem(text)
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


def _percent_item(fraction: Any) -> QTableWidgetItem:
    """An error rate (a fraction, as journeys store it) shown in percent: 0.2 -> "20 %"."""
    text = ""
    if isinstance(fraction, int | float) and not isinstance(fraction, bool) and fraction:
        text = _percent_text(float(fraction))
    elif fraction not in ("", None, 0, 0.0):
        text = str(fraction)  # not a number: shown as it came, for validation to name
    item = QTableWidgetItem(text)
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


def _percent_text(fraction: float) -> str:
    return f"{round(fraction * 100, 4):g} %"  # 0.07 * 100 is 7.000000000000001


def _parse_percent(text: str) -> float | None:
    """ "20 %", "20%" or "20" -> 0.2; None when it is no number."""
    try:
        value = float(text.strip().removesuffix("%").strip())
    except ValueError:
        return None
    return round(value / 100, 8) if value == value else None  # NaN is no rate


def _not_a_number(row: int, key: str, label: str, raw: str) -> Problem:
    return Problem(f"steps[{row}].{key}", f"Step {row + 1}: {label} {raw!r} is not a number")


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
