"""Fault injection for the chaos suite, from the environment the panel passes down.

Off unless a BIZOBS_FAULT_* variable is set; nothing in the product sets one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from app.common.numbers import ascii_int

EXIT_FAULT = 3
MAX_START_DELAY_MS = 600_000


@dataclass(frozen=True)
class Faults:
    exit_at_start: frozenset[str] = frozenset()  # service names that exit before binding
    start_delay_ms: int = 0  # makes "mid-launch" a window a test can hit

    @classmethod
    def from_env(cls) -> Faults:
        names = os.environ.get("BIZOBS_FAULT_EXIT_AT_START", "")
        delay = os.environ.get("BIZOBS_FAULT_START_DELAY_MS", "0")
        return cls(
            exit_at_start=frozenset(n.strip() for n in names.split(",") if n.strip()),
            start_delay_ms=ascii_int(delay, 0, MAX_START_DELAY_MS) or 0,
        )
