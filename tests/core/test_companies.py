"""Several companies in one pool: cleanup strategies, preserved companies, reserved ports, a pool
that grows and shrinks, unchanged services kept, traffic per journey. Real services on real
ports; every refusal is checked to have stopped nothing."""

from __future__ import annotations

from typing import Any

import pytest

from app.core import probe
from app.core.errors import PoolExhaustedError, RunConflictError
from app.core.model import CleanupStrategy, PortState
from app.core.orchestrator import Core, open_core
from app.core.settings import Reservation, Settings
from app.core.waiting import until
from tests.conftest import run
from tests.helpers import alive, journey


def bank(company: str = "First Bank", *services: str) -> dict[str, Any]:
    trip = journey(company, *(services or ("LoginService", "TransferService")))
    return trip | {"industryType": "Banking"}


def shop(company: str = "Acme Corp", *services: str, **steps: Any) -> dict[str, Any]:
    return journey(company, *(services or ("BrowseService", "CartService")), **steps)  # Retail


def pids(core: Core, company: str) -> dict[str, int | None]:
    return {s.key: s.pid for s in core.services() if s.company == company and not s.essential}


def listening(settings: Settings) -> set[int | None]:
    return {lst.pid for lst in probe.scan_listeners(settings.max_ports).values()}


def test_company_strategy_keeps_the_other_company_running_and_its_traffic_flowing(
    settings: Settings,
) -> None:
    """Two companies side by side: the second's run stops nothing of the first (same pids,
    its traffic flowing through the switch); both answer; the status sums both streams."""

    async def scenario() -> None:
        async with open_core(settings) as core:
            first = await core.run_journey(shop(), cleanup="company")
            assert first.ok, first.error
            acme = pids(core, "Acme Corp")
            await core.start_traffic(20, journey=first.journey_id)
            assert await until(lambda: core.traffic.status().completed >= 20, 20)
            sent_before = core.traffic.status().sent
            second = await core.run_journey(bank(), cleanup="company", customers=2)
            assert second.ok and second.stopped == 0, second.error
            assert pids(core, "Acme Corp") == acme and all(alive(p or 0) for p in acme.values())
            assert core.traffic.status().sent > sent_before  # Acme's traffic never paused
            assert [j.journey.company_name for j in core.journeys()] == ["Acme Corp", "First Bank"]
            await core.start_traffic(10, journey=second.journey_id)
            assert await until(lambda: len(core.traffic.status().streams) == 2, 5)
            status = core.traffic.status()
            assert status.rate == 30 and status.journey_id == second.journey_id
            assert status.sent == sum(s.sent for s in status.streams)
            # Each company's journey answers, through its own services.
            both = {s.key for s in core.services()}
            assert listening(settings) == {s.pid for s in core.services()} and len(both) == 4
            # The same company again replaces only its own journey.
            banking = pids(core, "First Bank")
            again = await core.run_journey(shop("Acme Corp", "BrowseService"), cleanup="company")
            assert again.ok and again.stopped == 2, again.error
            assert pids(core, "First Bank") == banking
            assert not any(alive(p or 0) for p in acme.values())
            acme_stream = core.traffic.get(again.journey_id)
            assert acme_stream is not None and acme_stream.running  # it took over the stream
            final = await core.stop_traffic()
            assert final.sent == final.completed + final.failed + final.cancelled

    run(scenario(), timeout=90)


def test_journey_type_strategy_replaces_only_the_same_industry(settings: Settings) -> None:
    async def scenario() -> None:
        async with open_core(settings) as core:
            assert (await core.run_journey(shop("Acme Corp"), cleanup="journeyType")).ok
            assert (await core.run_journey(bank("First Bank"), cleanup="journeyType")).ok
            banking = pids(core, "First Bank")
            retail = await core.run_journey(
                shop("Retail Plus", "ShelfService"), cleanup="journeyType"
            )
            assert retail.ok and retail.stopped == 2, retail.error
            assert pids(core, "Acme Corp") == {}  # the other Retail journey was replaced
            assert pids(core, "First Bank") == banking  # Banking stays
            companies = sorted(j.journey.company_name for j in core.journeys())
            assert companies == ["First Bank", "Retail Plus"]

    run(scenario(), timeout=60)


def test_preserved_companies_stay_whatever_the_strategy_but_stop_all_stops_them(
    settings: Settings,
) -> None:
    async def scenario() -> None:
        async with open_core(settings.with_(preserve_companies=("First Bank",))) as core:
            assert (await core.run_journey(bank("First Bank"))).ok
            banking = pids(core, "First Bank")
            result = await core.run_journey(shop("Acme Corp"), preserve=["Acme Corp"])
            assert result.ok and result.stopped == 0, result.error  # strategy all, bank kept
            assert pids(core, "First Bank") == banking
            acme = pids(core, "Acme Corp")
            result = await core.run_journey(shop("Beta Co", "XService"))  # all: Acme goes
            assert result.ok and result.stopped == 2
            assert pids(core, "Acme Corp") == {} and pids(core, "First Bank") == banking
            report = await core.stop_all()
            assert len(report.stopped) == 3 and core.services() == []
            assert listening(settings) == set() and not any(alive(p or 0) for p in acme.values())

    run(scenario(), timeout=60)


def test_refusals_name_the_problem_and_stop_nothing(settings: Settings) -> None:
    """A preserved journey sharing a service with the new one, a company's reserved ports too
    few, a pool too small, a strategy that is no strategy: 4xx before anything stops."""
    reserved = (Reservation("Acme Corp", settings.port_lo, settings.port_lo + 1),)

    async def scenario() -> None:
        async with open_core(settings.with_(reserved_ports=reserved)) as core:
            assert (await core.run_journey(bank("First Bank"), cleanup="company")).ok
            before = {(s.key, s.pid) for s in core.services()}
            with pytest.raises(RunConflictError, match="LoginService-First_Bank already serves"):
                await core.run_journey(
                    bank("First Bank", "LoginService", "PayService"), preserve=["First Bank"]
                )
            with pytest.raises(
                PoolExhaustedError,
                match=rf"Acme Corp's reserved ports {settings.port_lo}-{settings.port_lo + 1} "
                "can offer 2, its journey needs 3",
            ):
                await core.run_journey(shop("Acme Corp", "A1Service", "A2Service", "A3Service"))
            many = [f"S{i}Service" for i in range(len(settings.ports))]
            with pytest.raises(PoolExhaustedError, match="needs 20 ports but the pool"):
                await core.run_journey(journey("Big Co", *many), cleanup="company")
            from app.core.errors import ValidationError

            with pytest.raises(ValidationError) as bad:
                await core.run_journey(shop(), cleanup="everything", preserve="Acme", reuse="x")
            assert [p.field for p in bad.value.problems] == ["cleanup", "reuse", "preserve"]
            assert {(s.key, s.pid) for s in core.services()} == before

    run(scenario(), timeout=60)


def test_reserved_ports_are_honoured_under_contention(settings: Settings) -> None:
    """Acme's services take only its ports, and nobody else's service takes one, even when
    the rest of the pool is full."""
    lo = settings.port_lo
    reserved = (Reservation("Acme Corp", lo + 5, lo + 7),)

    async def scenario() -> None:
        async with open_core(settings.with_(reserved_ports=reserved)) as core:
            others = [f"O{i}Service" for i in range(len(settings.ports) - 3)]
            result = await core.run_journey(journey("Other Co", *others), cleanup="company")
            assert result.ok, result.error
            taken = {s.port for s in core.services()}
            assert taken.isdisjoint(range(lo + 5, lo + 8))  # the pool is full but for Acme's
            result = await core.run_journey(
                shop("Acme Corp", "A1Service", "A2Service", "A3Service"), cleanup="company"
            )
            assert result.ok, result.error
            acme = {s.port for s in core.services() if s.company == "Acme Corp"}
            assert acme == set(range(lo + 5, lo + 8))
            cells = {p.port: p for p in core.ports()}
            assert cells[lo + 5].reserved_for == "Acme Corp" and cells[lo].reserved_for is None
            with pytest.raises(PoolExhaustedError, match="can offer only 0"):
                await core.run_journey(journey("Third Co", "TService"), cleanup="company")

    run(scenario(), timeout=90)


def test_the_pool_grows_in_blocks_and_shrinks_back(settings: Settings) -> None:
    """A journey that does not fit grows the pool by blocks of 10 (the cells say "grown");
    once the grown block has been unused for its time, the pool shrinks back."""
    small = settings.with_(port_hi=settings.port_lo + 4, ports_max_hi=settings.port_hi)

    async def scenario() -> None:
        async with open_core(small) as core:
            core.manager.pool.shrink_after_s = 0.5  # a minute in the product
            eight = [f"G{i}Service" for i in range(8)]
            result = await core.run_journey(journey("Grow Co", *eight))
            assert result.ok, result.error
            cells = core.ports()
            assert len(cells) == 15 and sum(c.grown for c in cells) == 10
            assert sum(c.state is PortState.ALLOCATED for c in cells) == 8
            huge = journey("Huge Co", *[f"H{i}Service" for i in range(13)])  # 8 + 13 > 20
            with pytest.raises(PoolExhaustedError, match=r"growing up to \d+, now "):
                await core.run_journey(huge, cleanup="company")
            await core.run_journey(journey("Small Co", "OneService"))
            core.watcher.poke()
            assert await until(lambda: len(core.ports()) == 5, 10)

    run(scenario(), timeout=90)


def test_unchanged_services_are_kept_and_a_service_gets_its_port_again(
    settings: Settings,
) -> None:
    """`reuse: unchanged` keeps each service whose step is the same (same pid; the phases count
    it `kept`) and restarts the changed one; a restarted service takes its old port again."""

    async def scenario() -> None:
        async with open_core(settings) as core:
            first = await core.run_journey(shop("Acme Corp", "BrowseService", "CartService"))
            assert first.ok
            before = {s.key: (s.pid, s.port) for s in core.services()}
            changed = shop("Acme Corp", "BrowseService", "CartService", step2={"latencyMs": 5})
            second = await core.run_journey(changed, reuse="unchanged")
            assert second.ok, second.error
            after = {s.key: (s.pid, s.port) for s in core.services()}
            assert after["BrowseService-Acme_Corp"] == before["BrowseService-Acme_Corp"]
            cart_pid, cart_port = after["CartService-Acme_Corp"]
            assert cart_pid != before["CartService-Acme_Corp"][0]
            assert cart_port == before["CartService-Acme_Corp"][1]  # its port again
            phases = {p.phase.value: p.counts for p in second.phases}
            assert phases["stop"] == {"stopped": 1, "kept": 1}
            assert phases["launch"]["launched"] == 1 and phases["launch"]["kept"] == 1
            assert [j.id for j in core.journeys()] == [second.journey_id]

    run(scenario(), timeout=60)


def test_stopping_one_journey_leaves_the_other(settings: Settings) -> None:
    async def scenario() -> None:
        async with open_core(settings) as core:
            acme = await core.run_journey(shop(), cleanup="company")
            bankr = await core.run_journey(bank(), cleanup="company")
            await core.start_traffic(10, journey=acme.journey_id)
            banking = pids(core, "First Bank")
            report = await core.stop_journey(acme.journey_id)
            assert sorted(report.stopped) == ["BrowseService-Acme_Corp", "CartService-Acme_Corp"]
            assert pids(core, "Acme Corp") == {} and pids(core, "First Bank") == banking
            assert [j.id for j in core.journeys()] == [bankr.journey_id]
            assert not core.traffic.running
            assert core.settings.cleanup_strategy is CleanupStrategy.ALL

    run(scenario(), timeout=60)
