"""The window's clock (app/ui/cadence.py): one periodic job per tick, each in turn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import QObject

from app.core.settings import LauncherKind
from app.ui.cadence import Cadence
from tests.conftest import make_settings


def test_one_job_per_tick_each_in_turn_until_its_owner_goes(qtbot: Any) -> None:
    clock = Cadence(period_ms=90)
    owners = [QObject() for _ in range(3)]
    ran: list[int] = []
    for i, owner in enumerate(owners):
        clock.add(owner, lambda i=i: ran.append(i))
    assert clock.tick_ms == 30  # each job still once a period, the three spread over it
    qtbot.waitUntil(lambda: len(ran) >= 9, timeout=5_000)
    # One job a tick, in turn: any three ticks in a row ran each job once, never two at once.
    assert all(sorted(ran[k : k + 3]) == [0, 1, 2] for k in range(len(ran) - 2)), ran

    shiboken6.delete(owners[1])  # its owner destroyed: the job ends with it
    assert len(clock.jobs) == 2 and clock.tick_ms == 45
    before = len(ran)
    qtbot.waitUntil(lambda: len(ran) >= before + 4, timeout=5_000)
    assert 1 not in ran[before:] and sorted(set(ran[before:])) == [0, 2]

    clock.remove(owners[0])
    clock.remove(owners[2])
    assert clock.jobs == [] and not clock._timer.isActive()


def test_the_window_runs_its_periodic_work_on_one_clock(
    make_panel: Any, tmp_path: Path, port_range: range
) -> None:
    from app.ui import cadence

    panel = make_panel(make_settings(LauncherKind.FORK, tmp_path, port_range))
    window, bridge = panel.window, panel.bridge
    jobs = [job.run for job in cadence.shared().jobs]
    for job in (bridge.refresh_ports, window.trafficChart._tick, window.timelineChart._tick):
        assert jobs.count(job) == 1
