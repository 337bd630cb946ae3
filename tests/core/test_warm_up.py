"""The warm-up of a new chain (app/core/run_journey.py, `_warm`): before a launch is done,
each hop holds WARM_CONNECTIONS open connections to the next, read from the OS, and none of
it counts as a customer."""

from __future__ import annotations

import psutil
import pytest

from app.core.orchestrator import open_core
from app.core.run_journey import WARM_CONNECTIONS
from app.core.settings import Settings
from tests.conftest import run
from tests.helpers import journey


def _connections(pid: int, to_port: int) -> int:
    return sum(
        1
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.raddr and c.raddr.port == to_port and c.status == psutil.CONN_ESTABLISHED
    )


@pytest.mark.parametrize("warm_up", [True, False], ids=["warm-up", "none"])
def test_each_hop_has_its_connections_to_the_next_open_before_the_first_customer(
    settings: Settings, warm_up: bool
) -> None:
    async def scenario() -> None:
        async with open_core(settings) as core:
            core.warm_up = warm_up
            result = await core.run_journey(
                journey("Warm Co", "AService", "BService", "CService"), customers=1
            )
            assert result.ok, result.error
            assert result.simulation is not None
            assert result.simulation.summary.customers == 1  # the warm-up is no customer
            by_name = {s.service_name: s for s in result.services}
            links = [("AService", "BService"), ("BService", "CService")]
            open_now = [_connections(by_name[a].pid, by_name[b].port) for a, b in links]
            # One customer needs one connection per link. The warm-up's WARM_CONNECTIONS
            # requests per link, sent at once, open up to as many (fewer only where one
            # request had its answer before the next was sent), kept alive for the customers.
            if warm_up:
                assert all(2 <= n <= WARM_CONNECTIONS for n in open_now), open_now
            else:
                assert open_now == [1, 1]

    run(scenario())
