"""Whole numbers from text (app/common/numbers.py) and the settings that read them: only ASCII
digits count ('²' and '٣' are digits to `str.isdigit` and `int`, not to the panel)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.common.numbers import ascii_int
from app.core.settings import SettingsError, from_env
from app.service.faults import Faults
from tests.helpers import ROOT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("42", 42),
        (" 42\t", 42),
        ("\n7\r\n", 7),
        ("007", 7),
        ("500", 500),
        ("501", None),  # out of range
        ("", None),
        ("   ", None),
        ("-1", None),
        ("+1", None),
        ("1.0", None),
        ("1e3", None),
        ("1_000", None),
        ("²", None),
        ("٣", None),
        ("１２", None),  # fullwidth digits
        ("\u00a042", None),  # a no-break space is not ASCII whitespace
        ("4\u20602", None),
        ("9" * 5000, None),  # no 4300-digit conversion limit reached, just out of range
    ],
)
def test_ascii_int(text: str, expected: int | None) -> None:
    assert ascii_int(text, 0, 500) == expected


def test_ascii_int_bounds_are_inclusive() -> None:
    assert ascii_int("1", 1, 1) == 1
    assert ascii_int("0", 1, 1) is None and ascii_int("2", 1, 1) is None


@pytest.mark.parametrize("text", ["٣", "²", " 8080x", "8O80"])
def test_an_api_port_that_is_not_ascii_digits_is_refused(text: str) -> None:
    with pytest.raises(SettingsError, match=f"BIZOBS_API_PORT={text!r} is not a whole number"):
        from_env({"BIZOBS_API_PORT": text})


def test_surrounding_whitespace_is_fine_in_settings() -> None:
    assert from_env({"BIZOBS_API_PORT": " 9000 ", "BIZOBS_STOP_GRACE_MS": "250\n"}).api_port == 9000


@pytest.mark.parametrize(
    ("variable", "text"), [("BIZOBS_API_PORT", "٣"), ("BIZOBS_STOP_GRACE_MS", "²")]
)
def test_a_non_ascii_number_stops_the_start_with_one_line(
    tmp_path: Path, variable: str, text: str
) -> None:
    env = {"PATH": "/usr/bin:/bin", "BIZOBS_STATE_DIR": str(tmp_path), variable: text}
    proc = subprocess.run(
        [sys.executable, "-m", "app", "ports"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == f"error: {variable}={text!r} is not a whole number"


@pytest.mark.parametrize(("text", "delay"), [("250", 250), (" 250 ", 250), ("²", 0), ("-5", 0)])
def test_fault_start_delay_reads_ascii_digits_only(
    monkeypatch: pytest.MonkeyPatch, text: str, delay: int
) -> None:
    monkeypatch.setenv("BIZOBS_FAULT_START_DELAY_MS", text)
    assert Faults.from_env().start_delay_ms == delay


def test_no_fault_is_set_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BIZOBS_FAULT_START_DELAY_MS", raising=False)
    assert Faults.from_env() == Faults()
    assert "BIZOBS_FAULT_START_DELAY_MS" not in os.environ
