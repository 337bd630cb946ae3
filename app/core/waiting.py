"""Bounded waiting for OS conditions that have no event to wait on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


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
