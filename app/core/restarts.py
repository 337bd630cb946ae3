"""Automatic restarts of broken services (`BIZOBS_AUTORESTART=on-failure`), PM2's `autorestart`
and `max_restarts`: after a backoff that doubles, at most a few times a minute, then the service
is given up and its cell says so (docs/architecture.md, "Watching the fleet")."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

from app.core.errors import CoreError
from app.core.events import CoreEvents, LogLevel
from app.core.model import TroubleKind
from app.core.services import ServiceManager
from app.core.tasks import TaskOwner

RESTART_LIMIT = 3  # restarts of one service within RESTART_WINDOW_S; then it is given up
RESTART_WINDOW_S = 60.0
RESTART_BACKOFF_S = 0.5  # the n-th restart in the window waits RESTART_BACKOFF_S * 2**n


class Restarter:
    def __init__(
        self,
        manager: ServiceManager,
        events: CoreEvents,
        tasks: TaskOwner,
        restart: Callable[[str], Awaitable[object]],
    ) -> None:
        self._manager = manager
        self._events = events
        self._tasks = tasks
        self._restart = restart
        self._recent: dict[str, deque[float]] = {}  # when each service was restarted by itself

    def broken(self, key: str) -> None:
        """Service `key` broke: restart it after its backoff, or give it up past the limit."""
        now = time.monotonic()
        recent = self._recent.setdefault(key, deque())
        while recent and recent[0] < now - RESTART_WINDOW_S:
            recent.popleft()
        if len(recent) >= RESTART_LIMIT:
            limit = f"after {RESTART_LIMIT} restarts in {RESTART_WINDOW_S:g} s"
            self._manager.note_trouble(key, TroubleKind.GAVE_UP, limit)
            return
        delay = RESTART_BACKOFF_S * 2 ** len(recent)
        recent.append(now + delay)
        self._tasks.spawn(self._after(key, delay), f"restart {key}")

    async def _after(self, key: str, delay: float) -> None:
        await asyncio.sleep(delay)  # the backoff before an automatic restart (PM2's)
        if self._manager.get(key) is None or self._manager.trouble(key) is None:
            return  # stopped, replaced or recovered meanwhile
        try:
            await self._restart(key)
        except CoreError as exc:
            self._events.say(key, f"automatic restart failed: {exc}", LogLevel.ERROR)
