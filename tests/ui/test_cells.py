"""The cell model (app/ui/cells.py): events change a cell at once, each scan reconciles."""

from __future__ import annotations

from app.core.events import ServiceChange, ServiceEvent
from app.core.model import PortInfo, PortState
from app.ui.cells import CellModel


def running(port: int, key: str = "AService-Co", pid: int = 10) -> PortInfo:
    return PortInfo(port, PortState.ALLOCATED, key, "AService", "Co", pid)


def model_of(*cells: PortInfo) -> CellModel:
    model = CellModel()
    model.reconcile(cells)
    return model


def test_an_event_changes_its_cell_at_once() -> None:
    model = model_of(running(9000), PortInfo(9001, PortState.FREE))
    assert model.apply(ServiceEvent("AService-Co", ServiceChange.STOPPING, 9000, 10))
    assert model.states() == {9000: PortState.STOPPING, 9001: PortState.FREE}
    assert model.cell(9000).service_name == "AService"  # what the scan said of it is kept
    model.apply(ServiceEvent("AService-Co", ServiceChange.STOPPED, 9000, 10))
    assert model.cell(9000) == PortInfo(9000, PortState.FREE)
    model.apply(ServiceEvent("BService-Co", ServiceChange.STARTING, 9001, 11))
    assert (model.cell(9001).state, model.cell(9001).key) == (PortState.STARTING, "BService-Co")
    model.apply(ServiceEvent("BService-Co", ServiceChange.RUNNING, 9001, 11))
    assert model.cell(9001).state is PortState.ALLOCATED
    assert [c.port for c in model.ports()] == [9000, 9001]


def test_a_scan_replaces_the_picture() -> None:
    model = model_of(running(9000))
    model.apply(ServiceEvent("AService-Co", ServiceChange.STOPPING, 9000, 10))
    model.reconcile([PortInfo(9000, PortState.FREE)])  # a scan made after the event
    assert model.states() == {9000: PortState.FREE}


def test_a_scan_older_than_an_event_does_not_undo_it() -> None:
    """A scan that began before a service stopped (an off-thread scan) keeps the event's cell
    on that port, and takes the others; the next scan begun after the event wins again."""
    model = model_of(running(9000), running(9001, "BService-Co", 11))
    since = model.seq  # the scan begins
    model.apply(ServiceEvent("AService-Co", ServiceChange.STOPPED, 9000, 10))
    stale_scan = [running(9000), PortInfo(9001, PortState.STALE, "BService-Co", pid=11)]
    model.reconcile(stale_scan, since)
    assert model.states() == {9000: PortState.FREE, 9001: PortState.STALE}
    model.reconcile([running(9000, "CService-Co", 12), PortInfo(9001, PortState.FREE)])
    assert model.cell(9000).key == "CService-Co"  # a scan begun after the event


def test_an_ended_service_frees_only_its_own_cell() -> None:
    model = model_of(running(9000, "BService-Co", 11))
    assert not model.apply(ServiceEvent("AService-Co", ServiceChange.STOPPED, 9000, 10))
    assert model.cell(9000).key == "BService-Co"


def test_troubles_and_exits_show_on_the_cell() -> None:
    model = model_of(running(9000))
    model.apply(ServiceEvent("AService-Co", ServiceChange.TROUBLE, 9000, 10, "not answering"))
    assert model.cell(9000).trouble == "not answering"
    model.apply(ServiceEvent("AService-Co", ServiceChange.RECOVERED, 9000, 10))
    assert model.cell(9000).trouble == ""
    model.apply(ServiceEvent("AService-Co", ServiceChange.EXITED, 9000, 10, "exited (code -9)"))
    exited = model.cell(9000)
    assert (exited.state, exited.trouble, exited.gone) == (
        PortState.STALE,
        "exited (code -9)",
        True,  # the process is gone: no uptime, nothing to stop, a sweep releases it
    )


def test_reserved_and_grown_stay_with_the_port() -> None:
    reserved = PortInfo(9000, PortState.FREE, reserved_for="Co", grown=True)
    model = model_of(reserved)
    model.apply(ServiceEvent("AService-Co", ServiceChange.STARTING, 9000, None))
    model.apply(ServiceEvent("AService-Co", ServiceChange.FAILED, 9000, None))
    assert model.cell(9000) == reserved
