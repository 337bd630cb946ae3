"""Demo pacing never makes the window say what is not so (docs/architecture.md, "A Run Journey,
phase by phase"): a freed port's cell is free as soon as the port is, an empty phase is
not padded, a paced one says it was paced. Real services on real ports, the window offscreen."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from app.core import probe
from app.core.model import Phase
from app.core.settings import LauncherKind, Settings
from tests.conftest import make_settings
from tests.helpers import alive, journey
from tests.ui.conftest import drive
from tests.ui.test_defects import core_run
from tests.ui.test_window import RUN_TIMEOUT_MS, allocated

PACING_MS = 2000
# Well under the pacing: a cell the stage held for the pause would miss it by a second or more.
PROMPT_MS = PACING_MS // 2


@pytest.fixture
def fork(tmp_path: Path, port_range: range) -> Settings:
    return make_settings(LauncherKind.FORK, tmp_path, port_range)


def test_a_freed_port_leaves_stopping_as_soon_as_it_is_free(
    qtbot: Any, make_panel: Any, fork: Settings
) -> None:
    """Switching journeys with 2 s pacing: once an old service's process has gone and its port
    is bindable again (what a scan of the OS says), its cell leaves `stopping` promptly, well
    before a pause could have ended."""
    panel = make_panel(fork)
    w = panel.window
    core_run(qtbot, panel, "Old Co", "OldOneService", "OldTwoService", customers=1)
    qtbot.waitUntil(lambda: len(allocated(w)) == 2, timeout=5_000)
    old = {s.port: s.pid for s in panel.bridge.services()}
    w.pacingSpin.setValue(PACING_MS)
    core = panel.bridge.core
    request = core.make_request(journey("New Co", "NewOneService"), customers=1)
    signalled: set[int] = set()
    panel.bridge.serviceEvent.connect(
        lambda e: signalled.add(e.port) if str(e.change) == "stopping" else None
    )
    run = asyncio.ensure_future(core.run_journey(request))

    def freed(port: int) -> bool:
        return not alive(old[port]) and probe.can_bind(port)

    def stopping(port: int) -> bool:
        return w.grid.cell(port).property("state") == "stopping"

    qtbot.waitUntil(lambda: all(freed(p) for p in old), timeout=10_000)
    assert signalled == set(old)  # stopped by the run, which goes on (the wait's pause, ...)
    assert not run.done()
    qtbot.waitUntil(lambda: not any(stopping(p) for p in old), timeout=PROMPT_MS)
    qtbot.waitUntil(run.done, timeout=RUN_TIMEOUT_MS)
    assert run.result().ok


def test_traffic_never_flows_while_a_cell_says_starting(
    qtbot: Any, make_panel: Any, fork: Settings
) -> None:
    """Traffic through the old journey moves to the new one at the end of a paced launch; by
    then every cell of the new services reads `allocated` on the grid, never `starting`."""
    panel = make_panel(fork)
    w = panel.window
    core_run(qtbot, panel, "Old Co", "OldOneService", customers=1)
    drive(qtbot, panel.bridge.start_traffic(20.0))
    w.pacingSpin.setValue(PACING_MS // 2)
    core = panel.bridge.core
    request = core.make_request(journey("New Co", "NewOneService", "NewTwoService"), customers=1)
    run = asyncio.ensure_future(core.run_journey(request))
    seen: list[tuple[bool, bool]] = []  # (a cell says starting, traffic flows), as polled

    def flowing() -> bool:
        return any(t.running and not t.paused for t in core.traffic.live())

    def look() -> bool:
        starting = any(c.property("state") == "starting" for c in w.grid.cells())
        seen.append((starting, flowing()))
        return run.done()

    qtbot.waitUntil(look, timeout=RUN_TIMEOUT_MS)
    assert run.result().ok
    assert any(not flows for _starting, flows in seen)  # held during the switch
    assert (True, True) not in seen
    assert flowing()
    drive(qtbot, panel.bridge.stop_traffic())


def test_paced_phases_are_marked_and_empty_ones_not_padded(
    qtbot: Any, make_panel: Any, fork: Settings
) -> None:
    """A first run on an empty pool: nothing to stop, wait for or sweep. Those rows show their
    work alone (bounded: well under the pacing); the launch and the customers show their pause
    apart ("… ms + 2.0 s paced"), and so does the log."""
    panel = make_panel(fork)
    w = panel.window
    w.pacingSpin.setValue(PACING_MS)
    result = core_run(qtbot, panel, "Pace Co", "PaceOneService", customers=1)
    assert result.ok
    qtbot.waitUntil(w.timeline.all_done, timeout=5_000)
    for empty in (Phase.STOP, Phase.WAIT, Phase.SWEEP):
        assert w.timeline.duration_ms(empty) < PACING_MS / 2, empty
        assert "paced" not in w.timeline.duration_shown(empty), empty
    for paced in (Phase.LAUNCH, Phase.SIMULATE):
        assert re.fullmatch(r"[\d,.]+ ms \+ [\d.]+ s paced", w.timeline.duration_shown(paced))
    qtbot.waitUntil(
        lambda: any("phase launch finished" in ln and "paced" in ln for ln in w.logView.lines()),
        timeout=2_000,
    )
