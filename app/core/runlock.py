"""The run lock: runs and manual cleanups take turns (docs/architecture.md, "A Run Journey")."""

from __future__ import annotations

import asyncio

from app.core.errors import BusyError


class Exclusive:
    """Serialises runs and manual cleanups (see `acquire`)."""

    def __init__(self, lock: asyncio.Lock, what: str, wait_s: float | None) -> None:
        self._lock = lock
        self._what = what
        self._wait_s = wait_s

    async def __aenter__(self) -> None:
        await acquire(self._lock, self._what, self._wait_s)

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()


async def acquire(lock: asyncio.Lock, what: str, wait_s: float | None) -> None:
    """Take the run lock: at once or BusyError (`wait_s` 0), queueing up to `wait_s` seconds
    (asyncio's lock is fair: queued callers go in arrival order), or without bound (None: Stop
    All, which cancels the run first)."""
    if lock.locked() and wait_s is not None and wait_s <= 0:
        raise BusyError(f"cannot {what}: a journey run is in progress")
    try:
        async with asyncio.timeout(wait_s if lock.locked() else None):
            await lock.acquire()
    except TimeoutError:
        raise BusyError(f"cannot {what}: runs were still in progress after {wait_s:g} s") from None
