"""A batch run's progress in the window while its customers go through (docs/architecture.md,
"The window"): the status bar, the simulate row of the phases and the presenter's stepper say
how many customers are done and how many failed, during the run, with real services; at the
end the simulate row has the phase's own counts."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from app.core.model import Phase
from app.core.settings import Settings
from tests.helpers import journey

CUSTOMERS = 300
CONCURRENCY = 5
STEP_MS = 20  # 300 customers, 5 at once, ≥ 20 ms each: the simulate phase lasts ≥ 1.2 s
RUN_TIMEOUT_MS = 60_000
DONE = re.compile(r"([\d,]+) / ([\d,]+) customers done · ([\d,]+) failed")


def test_the_window_counts_the_customers_done_during_a_run(
    qtbot: Any, make_panel: Any, settings: Settings
) -> None:
    panel = make_panel(settings)
    w = panel.window
    simulate_row = list(Phase).index(Phase.SIMULATE)
    seen: list[tuple[int, int]] = []  # (done, failed) of each count the status bar showed

    def read_status_bar(text: str) -> None:
        if m := DONE.search(text):
            done, total, failed = (int(g.replace(",", "")) for g in m.groups())
            assert total == CUSTOMERS
            seen.append((done, failed))

    trip = journey("Batch Co", "LoginService", "PayService", step1={"latencyMs": STEP_MS})
    trip["steps"][1]["errorRate"] = 0.2
    task = asyncio.ensure_future(
        panel.bridge.core.run_journey(
            trip, customers=CUSTOMERS, mode="batch-chained", concurrency=CONCURRENCY, seed=3
        )
    )

    def mid_run() -> bool:
        read_status_bar(w.runStateLabel.text())
        return any(0 < done < CUSTOMERS for done, _ in seen)

    qtbot.waitUntil(mid_run, timeout=RUN_TIMEOUT_MS)  # shown while the customers go through
    row = w.timeline.table.item(simulate_row, 3).text()
    assert DONE.search(row) and w.timeline.status(Phase.SIMULATE) == "running", row
    stepper = w.presentation.stepper.text("simulate")
    assert f"/ {CUSTOMERS} · " in stepper and "failed" in stepper, stepper

    qtbot.waitUntil(task.done, timeout=RUN_TIMEOUT_MS)
    result = task.result()
    assert result.ok, result.error
    qtbot.waitUntil(lambda: w.timeline.status(Phase.SIMULATE) == "done", timeout=5_000)
    summary = result.simulation.summary
    row = w.timeline.table.item(simulate_row, 3).text()
    assert f"customers {CUSTOMERS}" in row and f"failed {summary.failed}" in row
    dones = [done for done, _ in seen]
    assert dones == sorted(dones)  # never backwards
    assert all(failed <= summary.failed for _, failed in seen)
