"""Bounded waiting for OS conditions that have no event to wait on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def until(condition: Callable[[], bool], timeout: float, first_delay: float = 0.001) -> bool:
    """Check `condition` with exponential back-off (1 ms doubling up to 50 ms) until it holds or
    `timeout` seconds pass. Returns whether it held. Only for conditions the OS cannot signal
    (e.g. "a port is bindable again"); process exit is awaited through a pidfd instead."""
    deadline = time.monotonic() + timeout
    delay = first_delay
    while True:
        if condition():
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.05)


async def to_the_end(work: Awaitable[T]) -> T:
    """Await `work` to its end even if the caller is cancelled meanwhile (then re-raise the
    cancellation). For cleanup that must not be cut short: `asyncio.shield` alone lets the
    caller go on while the shielded work still runs. Only for work that is bounded itself."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done() and task.cancelled():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return task.result()
