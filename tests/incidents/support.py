"""What the incident tests share: a fleet with traffic, the per-second series after a moment,
and the OS's view of one service process."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psutil

from app.core.model import ServiceRecord
from app.core.orchestrator import Core, open_core
from app.core.settings import Settings
from app.core.traffic_model import StepSecond, TrafficSecond
from app.core.waiting import until
from tests.helpers import journey

RATE = 20.0
STEPS = ("AService", "BService", "CService")


def service(core: Core, name: str) -> ServiceRecord:
    [found] = [s for s in core.services() if s.service_name == name]
    return found


def pids(core: Core) -> dict[str, int | None]:
    return {s.key: s.pid for s in core.services()}


@asynccontextmanager
async def fleet(
    settings: Settings, company: str = "Incident Co", rate: float | None = RATE
) -> AsyncIterator[Core]:
    """A core running a three-step journey (A, B, C), with traffic at `rate` (None: none)."""
    async with open_core(settings) as core:
        result = await core.run_journey(journey(company, *STEPS))
        assert result.ok, result.error
        if rate is not None:
            await core.start_traffic(rate)
            await flowing(core)
        try:
            yield core
        finally:
            await core.stop_traffic()


async def flowing(core: Core, more: int = 10, timeout: float = 15.0) -> None:
    """Wait until `more` journeys beyond now have completed."""
    target = core.traffic.status().completed + more
    assert await until(lambda: core.traffic.status().completed >= target, timeout), (
        core.traffic.status()
    )


async def seconds_from(core: Core, since: float, count: int = 2) -> list[TrafficSecond]:
    """The first `count` closed seconds of the series that begin at `since` (wall clock) or
    later: the journeys that ended in them were all sent after `since`, nearly."""
    first = math.ceil(since)

    def closed() -> list[TrafficSecond]:
        return [s for s in core.traffic.status().series if s.at >= first][:count]

    bound = first - time.time() + count + 3.0  # each second is closed just after it ends
    assert await until(lambda: len(closed()) >= count, bound), core.traffic.status().series[-3:]
    return closed()


def step(second: TrafficSecond, name: str) -> StepSecond:
    return next((s for s in second.steps if s.step_name == name), StepSecond(name))


def cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20
