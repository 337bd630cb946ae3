"""Watching the running fleet: which of our services broke, and when one answers again.

A service that exits is seen at once: its pidfd wakes the loop and the manager records the
trouble before anything else runs (ServiceManager._on_exit). A service that hangs (stopped, a
deadlock, a busy loop) sends no event: the watcher asks every running service's /health, one
connect per turn of the loop, every WATCH_INTERVAL_S while traffic flows (IDLE_INTERVAL_S
otherwise), and calls it "not answering" when no answer with its own identity (name, pid,
token) comes within NOT_ANSWERING_S. An answer from someone else is "not ours". A later good
answer clears the trouble. The Core turns troubles into traffic holds and (optionally)
automatic restarts (docs/architecture.md, "Watching the fleet").
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from app.core.model import ServiceState, TroubleKind
from app.core.services import ServiceManager

NOT_ANSWERING_S = 2.0  # a service that has not answered /health for this long is "not answering"
WATCH_INTERVAL_S = 1.0  # between rounds while traffic flows: a hang is seen within ≈3 s
IDLE_INTERVAL_S = 5.0  # between rounds otherwise: nobody is waiting on the chain
# Troubles a probe can see and clear; an exit (the pidfd) and "gave up" are not the probe's.
PROBED = frozenset({TroubleKind.NOT_ANSWERING, TroubleKind.NOT_LISTENING, TroubleKind.NOT_OURS})


class Watcher:
    """Owned by the Core: `start()` once the core is open, `aclose()` first when closing."""

    def __init__(
        self,
        manager: ServiceManager,
        traffic_flows: Callable[[], bool],
        each_round: Callable[[], None] = lambda: None,
    ) -> None:
        self._manager = manager
        self._traffic_flows = traffic_flows
        self._each_round = each_round  # the core's housekeeping (the pool shrinking back)
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="fleet-watch")

    def poke(self) -> None:
        """Look again now (traffic just started: the interval shortens)."""
        self._wake.set()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await self.round()
            self._each_round()
            interval = WATCH_INTERVAL_S if self._traffic_flows() else IDLE_INTERVAL_S
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)  # pacing the rounds

    async def round(self) -> None:
        """Probe every running service once, concurrently; each verdict is recorded."""
        probes = []
        for record in self._manager.services():
            trouble = self._manager.trouble(record.key)
            if record.state is not ServiceState.RUNNING or (trouble and trouble.kind not in PROBED):
                continue
            probes.append(asyncio.create_task(self._probe(record.key)))
            await asyncio.sleep(0)  # one connect per turn of the loop (docs/performance.md)
        if probes:
            await asyncio.gather(*probes)

    async def _probe(self, key: str) -> None:
        record = self._manager.get(key)
        if record is None:
            return
        asked = time.monotonic()  # not answering since the question, not since the timeout
        verdict = await self._manager.identity_problem(record, NOT_ANSWERING_S)
        if self._manager.get(key) is not record or self._manager.gone(key):
            return  # stopped, restarted or dead meanwhile: its exit says it, not a probe
        if verdict is None:
            self._manager.clear_trouble(key)
        else:
            self._manager.note_trouble(key, *verdict, since=asked)
