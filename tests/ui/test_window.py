"""The window against real services: Run Journey, a second journey, Stop All, foreign ports,
refused input, closing. Offscreen, pytest-qt + one qasync loop (tests/ui/conftest.py)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from app.core import probe
from app.core.model import Phase, PortState
from app.core.settings import EssentialService, Settings
from app.ui.main_window import MainWindow
from app.ui.widgets.journey_editor import COL_LATENCY, COL_SERVICE, COL_STEP
from tests.conftest import our_service_processes
from tests.helpers import alive
from tests.ui.conftest import Panel, drive, open_panel

RUN_TIMEOUT_MS = 45_000


def service_processes(panel: Panel) -> list[psutil.Process]:
    """Live step-service processes of this test, not counting a fork server (not a service)."""
    launcher = panel.bridge.core.manager.launcher if panel.bridge.core else None
    server = getattr(launcher, "server_pid", None)
    server_pid = server() if callable(server) else server
    return [p for p in our_service_processes() if p.pid != server_pid]


def still_running(before: set[asyncio.Task[Any]]) -> list[asyncio.Task[Any]]:
    """Tasks begun since `before` that have not ended: work a command left behind it."""
    return [t for t in asyncio.all_tasks() - before if not t.done()]


def fill_form(
    qtbot: Any,
    window: MainWindow,
    company: str,
    steps: list[str],
    customers: int = 3,
    mode: str = "multiple",
) -> None:
    """Type into the form as an operator would; service names come from the suggestion."""
    ed = window.editor
    ed.companyNameEdit.clear()
    qtbot.keyClicks(ed.companyNameEdit, company)
    ed.domainEdit.clear()
    qtbot.keyClicks(ed.domainEdit, "example.com")
    ed.industryCombo.setCurrentText("Retail")
    ed.stepsTable.setRowCount(0)
    for name in steps:
        qtbot.mouseClick(ed.addStepButton, Qt.MouseButton.LeftButton)
        ed.set_step_text(ed.stepsTable.rowCount() - 1, COL_STEP, name)
    ed.set_mode(mode)
    ed.customersSpin.setValue(customers)


def allocated(window: MainWindow) -> dict[int, str]:
    """port -> service key of every cell whose state property reads 'allocated'."""
    return {
        c.property("port"): c.property("serviceKey")
        for c in window.grid.cells()
        if c.property("state") == "allocated"
    }


def click_run(qtbot: Any, window: MainWindow) -> None:
    qtbot.mouseClick(window.runJourneyButton, Qt.MouseButton.LeftButton)


def wait_run_done(qtbot: Any, panel: Panel) -> None:
    """The run is over and the grid shows every service of ours as allocated."""
    qtbot.waitUntil(
        lambda: not panel.bridge.busy and not panel.window._run_pending, timeout=RUN_TIMEOUT_MS
    )
    keys = {s.key for s in panel.bridge.services()}
    # with demo pacing the window's stage plays the run back at the pacing: wait for it too
    qtbot.waitUntil(panel.window.stage.idle, timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: set(allocated(panel.window).values()) == keys, timeout=5_000)


def run_journey(qtbot: Any, panel: Panel, company: str, steps: list[str], **kw: Any) -> None:
    fill_form(qtbot, panel.window, company, steps, **kw)
    click_run(qtbot, panel.window)
    wait_run_done(qtbot, panel)
    assert panel.window.timeline.all_done(), panel.window.timeline.header.text()


def stop_all_confirmed(qtbot: Any, window: MainWindow, wait: bool = True) -> None:
    """Click Stop All, confirm, and (unless `wait` is False) wait until it has finished."""
    qtbot.mouseClick(window.stopAllButton, Qt.MouseButton.LeftButton)
    dialog = window.stop_all_dialog
    assert dialog is not None and dialog.isVisible()
    with qtbot.waitSignal(window.bridge.stopAllFinished, timeout=30_000, raising=wait):
        dialog.findChild(QPushButton, "confirmStopAllButton").click()
        if not wait:
            return


def test_run_journey_from_the_form(qtbot: Any, make_panel: Any, settings: Settings) -> None:
    panel = make_panel(settings)
    w = panel.window
    qtbot.waitUntil(lambda: len(w.grid.cells()) == len(settings.ports))
    assert allocated(w) == {}
    fill_form(qtbot, w, "Acme Retail", ["Browse Catalog", "Add To Cart", "Checkout"], customers=3)
    services = [w.editor.stepsTable.item(r, COL_SERVICE).text() for r in range(3)]
    assert services == ["BrowseCatalogService", "AddToCartService", "CheckoutService"]

    click_run(qtbot, w)
    assert not w.runJourneyButton.isEnabled()  # disabled at once, for the whole run
    qtbot.waitUntil(lambda: len(allocated(w)) == 3, timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(w.timeline.all_done, timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: w.results.row_count() == 3, timeout=RUN_TIMEOUT_MS)
    wait_run_done(qtbot, panel)
    assert w.runJourneyButton.isEnabled()

    keys = set(allocated(w).values())
    assert keys == {f"{s}-Acme_Retail" for s in services}
    for phase in Phase:  # all five phases, each with its duration
        assert w.timeline.status(phase) == "done"
        assert w.timeline.duration_ms(phase) is not None
        assert w.timeline.table.item(list(Phase).index(phase), 2).text().endswith("ms")
    assert "3\u00a0customers" in w.results.summary.text()
    assert "3\u00a0completed" in w.results.summary.text()
    assert w.results.table.horizontalHeaderItem(3).text() == "Add To Cart"
    assert w.results.table.item(0, 3).text().startswith("✓")
    assert w.results.table.item(0, 1).text().endswith("ms")  # total latency
    assert "allocated 3" in w.countsLabel.text()
    pids = {s.pid for s in panel.bridge.services()}
    assert len(pids) == 3 and all(alive(p) for p in pids)

    # The cell's context menu stops just that service.
    port, key = next(iter(allocated(w).items()))
    cell = w.grid.cell(port)
    assert "Uptime" in cell.details_text() and "Memory" in cell.details_text()
    menu = cell.build_menu()
    stop = next(a for a in menu.actions() if a.objectName() == "stopServiceAction")
    assert stop.isEnabled()
    stop.trigger()
    qtbot.waitUntil(lambda: cell.property("state") == "free", timeout=15_000)
    assert key not in {s.key for s in panel.bridge.services()}
    assert len(allocated(w)) == 2


def test_second_journey_replaces_the_first(qtbot: Any, make_panel: Any, settings: Settings) -> None:
    panel = make_panel(settings)
    w = panel.window
    run_journey(qtbot, panel, "Acme Retail", ["Login", "Browse", "Buy"], customers=2)
    first = dict(allocated(w))
    first_pids = {s.pid for s in panel.bridge.services()}
    assert len(first) == 3

    seen: list[dict[str, str]] = []  # key -> state, one entry per grid refresh
    panel.bridge.portsChanged.connect(
        lambda ports: seen.append({p.key: p.state.value for p in ports if p.key})
    )
    w.pacingSpin.setValue(300)  # slow the phases so the stop is visible on the grid
    assert panel.bridge.core.settings.demo_pacing_ms == 300
    run_journey(qtbot, panel, "TechStart Inc", ["Signup", "Onboard"], customers=2)

    second = allocated(w)
    assert set(second.values()) == {"SignupService-TechStart_Inc", "OnboardService-TechStart_Inc"}
    assert not set(first.values()) & set(second.values())
    assert all(w.grid.cell(p).property("serviceKey") not in first.values() for p in first)
    # the first journey's cells were seen stopping, then left `allocated` for good
    assert any(snap.get(k) == "stopping" for snap in seen for k in first.values())
    assert not any(alive(p) for p in first_pids)
    # paced: each phase with work lasts its pacing at least (less 5 %: qasync sleeps on Qt
    # coarse timers); the sweep had nothing to do and is not padded
    busy = (Phase.STOP, Phase.WAIT, Phase.LAUNCH, Phase.SIMULATE)
    assert all(w.timeline.duration_ms(p) >= 280 for p in busy), w.timeline.rows
    assert w.timeline.paced_ms(Phase.SWEEP) == 0
    assert "paced" in w.timeline.duration_shown(Phase.STOP)
    assert len(service_processes(panel)) == 2
    listening = probe.scan_listeners(settings.ports)
    assert {p: lst.pid for p, lst in listening.items()} == {
        s.port: s.pid for s in panel.bridge.services()
    }


def test_stop_all_stops_everything_after_confirmation(
    qtbot: Any, make_panel: Any, settings: Settings
) -> None:
    essential = (EssentialService("DiscoveryService", "Dynatrace"),)
    panel = make_panel(settings.with_(essential_services=essential))
    w = panel.window
    run_journey(qtbot, panel, "Acme Retail", ["Browse", "Checkout"], customers=1)
    cells = {c.property("serviceKey"): c for c in w.grid.cells()}
    assert cells["DiscoveryService-Dynatrace"].property("essential") is True
    assert cells["DiscoveryService-Dynatrace"].property("state") == "allocated"
    assert len(allocated(w)) == 3 and "1 essential" in w.countsLabel.text()

    # Cancel first: nothing is stopped.
    qtbot.mouseClick(w.stopAllButton, Qt.MouseButton.LeftButton)
    dialog = w.stop_all_dialog
    assert dialog is not None and dialog.isVisible()
    assert "1 essential" in dialog.text()
    # The dialog's `finished` ends the Cancel: the click was handled and the dialog closed. A
    # Stop All started by it would be a command task of the window from that moment on.
    tasks_before = asyncio.all_tasks()
    with qtbot.waitSignal(dialog.finished, timeout=5_000):
        dialog.button(dialog.StandardButton.Cancel).click()
    assert not w._tasks, "Cancel started a command"
    assert w.stop_all_dialog is dialog  # the confirmation path (which clears it) was not taken
    assert still_running(tasks_before) == []
    assert len(panel.bridge.services()) == 3

    stop_all_confirmed(qtbot, w)
    qtbot.waitUntil(
        lambda: all(c.property("state") == "free" for c in w.grid.cells()), timeout=20_000
    )
    assert panel.bridge.services() == []
    assert service_processes(panel) == []
    assert probe.scan_listeners(settings.ports) == {}
    assert w.runJourneyButton.isEnabled()


@pytest.fixture
def foreign_listener(port_range: range) -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port_range[0]))
    sock.listen()
    yield sock
    sock.close()


def test_foreign_listener_is_shown_and_survives(
    qtbot: Any, make_panel: Any, settings: Settings, foreign_listener: socket.socket
) -> None:
    port = foreign_listener.getsockname()[1]
    panel = make_panel(settings)
    panel.bridge.scan_off_thread = True  # this test watches the grid through the worker-thread scan
    w = panel.window
    qtbot.waitUntil(lambda: w.grid.cell(port).property("state") == "foreign")
    menu = w.grid.cell(port).build_menu()
    assert not next(a for a in menu.actions() if a.objectName() == "stopServiceAction").isEnabled()
    assert "never stopped" in w.grid.cell(port).details_text()

    run_journey(qtbot, panel, "Acme Retail", ["Browse"], customers=1)
    assert port not in allocated(w) and len(allocated(w)) == 1
    stop_all_confirmed(qtbot, w)
    qtbot.waitUntil(lambda: panel.bridge.services() == [], timeout=20_000)
    w.sweep()
    qtbot.waitUntil(lambda: "Sweep:" in w.statusBar().currentMessage(), timeout=10_000)
    qtbot.waitUntil(lambda: w.grid.cell(port).property("state") == "foreign")

    assert probe.scan_listeners([port])[port].pid == psutil.Process().pid
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass  # still accepting connections: never touched


def test_the_grid_and_the_journey_map_read_one_cell_model(
    qtbot: Any, make_panel: Any, settings: Settings
) -> None:
    """Every view of the cells shows the bridge's one cell model (app/ui/cells.py), also with
    the OS scan on its worker thread, racing the services' events."""
    panel = make_panel(settings)
    panel.bridge.scan_off_thread = True
    w = panel.window
    run_journey(qtbot, panel, "Acme Retail", ["Browse", "Checkout"], customers=1)

    def model() -> dict[int, str]:
        return {p: str(s) for p, s in panel.bridge.cells.states().items()}

    def in_step() -> bool:
        shown = {p.port: str(p.state) for p in w.journeyMap.ports()}
        return w.grid.states() == model() == shown

    qtbot.waitUntil(in_step, timeout=5_000)
    assert list(model().values()).count("allocated") == 2
    keys = {s.key for s in panel.bridge.services()}
    assert {c.key for c in panel.bridge.cells.ports() if c.key} == keys


def test_a_dead_service_shows_stale_until_swept(
    qtbot: Any, make_panel: Any, settings: Settings
) -> None:
    panel = make_panel(settings)
    w = panel.window
    run_journey(qtbot, panel, "Acme Retail", ["Browse", "Checkout"], customers=1)
    victim = panel.bridge.services()[0]
    psutil.Process(victim.pid).kill()  # our own service, by pid: it "crashes"
    cell = w.grid.cell(victim.port)
    qtbot.waitUntil(lambda: cell.property("state") == "stale", timeout=10_000)
    assert "stale 1" in w.countsLabel.text()
    logged = lambda: any("exited unexpectedly" in ln for ln in w.logView.lines())  # noqa: E731
    qtbot.waitUntil(logged, timeout=5_000)

    w.sweepAction.trigger()
    qtbot.waitUntil(lambda: cell.property("state") == "free", timeout=10_000)
    assert "1 stale allocation released" in w.statusBar().currentMessage()
    assert [s.key for s in panel.bridge.services()] == ["CheckoutService-Acme_Retail"]


def test_invalid_input_shows_a_message_and_stops_nothing(
    qtbot: Any, make_panel: Any, settings: Settings
) -> None:
    panel = make_panel(settings)
    w = panel.window
    run_journey(qtbot, panel, "Acme Retail", ["Browse", "Checkout"], customers=1)
    pids = {s.key: s.pid for s in panel.bridge.services()}
    states = w.grid.states()
    run_id = w.timeline.run_id

    w.editor.companyNameEdit.clear()
    w.editor.set_step_text(0, COL_SERVICE, "bad name!")
    w.editor.set_step_text(1, COL_LATENCY, "soon")
    # Run Journey says it cannot run, and why on hover; forcing it (Ctrl+R) is refused.
    qtbot.waitUntil(lambda: not w.runJourneyButton.isEnabled(), timeout=2_000)
    assert "Company name is empty" in w.runJourneyButton.toolTip()
    w.run_journey()
    assert w.banner.isVisible() and "nothing was stopped" in w.banner.text()
    label = w.editor.validationLabel.text()
    assert "Company name is empty" in label
    assert "bad name!" in label and "'soon' is not a number" in label

    # the core refuses bad input on its own too (e.g. input that bypassed the form)
    tasks_before = asyncio.all_tasks()
    with qtbot.waitSignal(panel.bridge.runRefused, timeout=5_000) as refused:
        assert drive(qtbot, panel.bridge.run_journey({"companyName": "X", "steps": []})) is None
    assert any(p.field == "domain" and p.message == "Domain is missing" for p in refused.args[0])

    # Both refusals have finished (the forced one in `run_journey`, the core's when its
    # coroutine returned): neither left a run started or pending, nor any work still running.
    assert not panel.bridge.busy and not w._run_pending and not w._tasks
    assert still_running(tasks_before) == []
    assert {s.key: s.pid for s in panel.bridge.services()} == pids
    assert all(alive(p) for p in pids.values())
    assert w.grid.states() == states
    assert w.timeline.run_id == run_id


def test_closing_asks_then_stops_services_and_remembers(
    qtbot: Any, make_panel: Any, settings: Settings, tmp_path: Any
) -> None:
    panel = make_panel(settings)
    w = panel.window
    run_journey(qtbot, panel, "Close Test Co", ["Browse"], customers=1)
    pid = panel.bridge.services()[0].pid

    w.close()
    assert w.isVisible() and w.close_dialog is not None and w.close_dialog.isVisible()
    assert "Stop them and quit" in w.close_dialog.text()
    w.close_dialog.findChild(QPushButton, "stopAndQuitButton").click()
    qtbot.waitUntil(lambda: not panel.bridge.is_open and not w.isVisible(), timeout=20_000)
    assert not alive(pid) and our_service_processes() == []

    # geometry and the last journey come back in the next window
    again = open_panel(qtbot, settings, tmp_path)
    try:
        assert again.window.editor.companyNameEdit.text() == "Close Test Co"
        assert again.window.editor.stepsTable.item(0, COL_STEP).text() == "Browse"
    finally:
        again.close()


def test_window_serves_the_control_api_on_its_own_core(
    qtbot: Any, make_panel: Any, settings: Settings
) -> None:
    import aiohttp

    from app.api.server import start_api
    from tests.helpers import journey

    panel = make_panel(settings, api_starter=start_api)
    url = f"http://127.0.0.1:{settings.api_port}"

    async def simulate() -> dict[str, Any]:
        body = {"journey": journey("Api Co", "ApiOneService", "ApiTwoService")}
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{url}/api/journey/simulate", json=body) as resp,
        ):
            return await resp.json()

    result = drive(qtbot, simulate())
    assert result["ok"], result
    ports = {s["port"] for s in result["services"]}
    # The window's grid shows what the API started: one core behind both.
    qtbot.waitUntil(lambda: set(allocated(panel.window)) == ports, timeout=10_000)
    assert {s.key for s in panel.bridge.services()} == {
        "ApiOneService-Api_Co",
        "ApiTwoService-Api_Co",
    }


def test_a_killed_service_says_why_and_its_cell_restarts_it(
    qtbot: Any, make_panel: Any, settings: Settings
) -> None:
    """SIGKILL a service: its cell, tooltip and journey-map node say "exited (code -9)" at
    once; the cell's "Restart this service" brings it back on its port with a new pid."""
    import os
    import signal

    from app.ui.widgets.journey_map import node_lines

    panel = make_panel(settings)
    w = panel.window
    run_journey(qtbot, panel, "Kill Co", ["Login", "Pay"], customers=1)
    [pay] = [s for s in panel.bridge.services() if s.service_name == "PayService"]
    os.kill(pay.pid or 0, signal.SIGKILL)
    cell = w.grid.cell(pay.port)
    qtbot.waitUntil(lambda: cell.info.trouble == "exited (code -9)", timeout=5000)
    assert ("Problem", "exited (code -9)") in cell.details()
    assert cell.info.state is PortState.STALE
    node = next(n for n in w.journeyMap.nodes if n.service_name == "PayService")
    assert "⚠ exited (code -9)" in node_lines(node)[2]
    from_map, inject = w.journeyMap.build_menu(node).actions()
    assert from_map.isEnabled() and from_map.text() == "Restart PayService"
    assert not inject.isEnabled()  # no incident into a process that exited
    menu = cell.build_menu()
    restart = next(a for a in menu.actions() if a.objectName() == "restartServiceAction")
    assert restart.isEnabled()
    restart.trigger()
    qtbot.waitUntil(
        lambda: cell.info.state is PortState.ALLOCATED and cell.info.pid not in (None, pay.pid),
        timeout=15000,
    )
    assert cell.info.trouble == "" and cell.info.port == pay.port


def test_two_companies_side_by_side_in_the_grid_the_journeys_list_and_the_map(
    qtbot: Any, make_panel: Any, settings: Settings
) -> None:
    """ "Replaces: the same company's journey": a second company's run leaves the first one
    running; the grid tags each company's cells in its own colour (the legend names both),
    the Journeys list shows both, the map draws the one selected, and Stop stops one."""
    panel = make_panel(settings)
    w = panel.window
    w.runOptions.set_strategy("company")
    run_journey(qtbot, panel, "Acme Retail", ["Browse", "Buy"], customers=1)
    acme = {s.pid for s in panel.bridge.services()}
    run_journey(qtbot, panel, "First Bank", ["Login", "Transfer"], customers=1)
    assert acme <= {s.pid for s in panel.bridge.services()}  # Acme kept running
    qtbot.waitUntil(lambda: len(w.journeysList.journey_ids()) == 2, timeout=5000)
    tags = {c.info.company: c.tag for c in w.grid.cells() if c.info.key}
    assert set(tags) == {"Acme Retail", "First Bank"} and len(set(tags.values())) == 2
    assert w.grid.companyLegend.isVisible()
    assert w.grid.companyLegend.companies == ["Acme Retail", "First Bank"]
    acme_id, bank_id = w.journeysList.journey_ids()
    w.journeysList.table.selectRow(0)
    assert w.journeyMap.shown_journey == acme_id
    assert [n.service_name for n in w.journeyMap.nodes] == ["BrowseService", "BuyService"]
    assert w.runOptions.keep.isEnabled()
    stop = w.journeysList.table.cellWidget(0, 4)
    stop.click()
    qtbot.waitUntil(lambda: w.journeysList.journey_ids() == [bank_id], timeout=15000)
    # The list drops the journey at once; its services then stop (bounded).
    qtbot.waitUntil(
        lambda: {s.company for s in panel.bridge.services()} == {"First Bank"}, timeout=15000
    )
