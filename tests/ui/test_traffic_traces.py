"""The Traces tab, with real services and real continuous traffic: the latest, the slowest and
the failed journeys of the running traffic (not only the last Run Journey's customers), and a
click on one draws its waterfall; a held list (Live off) stays still while traffic flows."""

from __future__ import annotations

from typing import Any

from app.core.settings import Settings
from app.core.traces import TraceKind
from tests.ui.conftest import drive
from tests.ui.test_window import run_journey, stop_all_confirmed


def _rows(table: Any, column: int) -> list[str]:
    return [table.item(r, column).text() for r in range(table.rowCount())]


def test_traces_of_continuous_traffic_and_their_waterfall(
    qtbot: Any, make_panel: Any, settings: Settings
) -> None:
    panel = make_panel(settings)
    w = panel.window
    run_journey(qtbot, panel, "Trace Co", ["Login", "Pay"], customers=1)
    core = panel.bridge.core
    [pay] = [s for s in panel.bridge.services() if s.service_name == "PayService"]
    body = {"service": pay.key, "kind": "errors", "rate": 0.5, "status": 503, "durationS": 60}
    drive(qtbot, panel.bridge.start_incident(body))
    drive(qtbot, panel.bridge.start_traffic(20.0))
    traces = w.trafficTraces
    w.tabs.setCurrentWidget(traces)  # on screen: it refreshes itself about once a second
    qtbot.waitUntil(lambda: traces.table.rowCount() >= 10, timeout=10_000)
    assert set(_rows(traces.table, 1)) == {"Trace Co"}
    assert "latest journeys of the running traffic" in traces.countLabel.text()

    traces.kindCombo.setCurrentIndex(traces.kindCombo.findData("failed"))
    qtbot.waitUntil(lambda: traces.table.rowCount() >= 2, timeout=10_000)
    assert set(_rows(traces.table, 4)) == {"failed at Pay"}
    traces.table.selectRow(0)
    chosen = traces.shown[0].result
    assert traces.waterfall.trace_id == chosen.trace_id
    assert [h.status for h in traces.waterfall.hops][-1] == "failed"

    traces.kindCombo.setCurrentIndex(traces.kindCombo.findData("slowest"))
    totals = [float(t.removesuffix(" ms").replace(",", "")) for t in _rows(traces.table, 3)]
    assert totals and totals == sorted(totals, reverse=True)

    traces.live.setChecked(False)  # held: traffic goes on, the list does not move
    held = [k.result.trace_id for k in traces.shown]
    latest_before = core.traffic.traces(TraceKind.LATEST)[0].result.trace_id
    qtbot.waitUntil(
        lambda: core.traffic.traces(TraceKind.LATEST)[0].result.trace_id != latest_before,
        timeout=5000,
    )
    traces._tick()  # the refresh timer's slot: held, it changes nothing
    assert [k.result.trace_id for k in traces.shown] == held
    drive(qtbot, panel.bridge.stop_traffic())
    stop_all_confirmed(qtbot, w)
