"""When to send a failed batch again: jittered exponential backoff, or the server's
`Retry-After`, never shorter than the initial backoff nor longer than the maximum.

A server's wait is clamped too: `Retry-After: 0` (or an HTTP-date already past) from a busy
backend must not turn the sender into a loop of POSTs as fast as the loop turns, and a wait of
an hour must not hold a batch past its budget unnoticed. `Retry-After` is delta-seconds in ASCII
digits or an HTTP-date (RFC 9110, 10.2.3); anything else is ignored, never a crash
(`str.isdigit()` is true for '²', which `float()` refuses).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

from app.common.numbers import ascii_int

MAX_DOUBLINGS = 60  # 2**60 times any initial backoff is past any maximum: no float overflow
MAX_DELTA_S = 10**9  # a delta longer than this is as good as "much later" (the clamp decides)


@dataclass(frozen=True)
class RetryPolicy:
    initial: float  # seconds: the shortest wait before a retry
    max: float  # seconds: the longest
    budget: float  # seconds from the first attempt after which a batch is given up

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.max or self.budget < 0:
            raise ValueError(f"retry policy needs 0 < initial <= max and budget >= 0: {self}")

    def next_wait(
        self,
        attempt: int,
        server_wait: float | None,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> float:
        """Seconds to wait before retry number `attempt + 1` (attempt 0 has just failed).

        Without a server's wait: a random wait in the upper half of initial * 2**(attempt+1),
        so that retries of many clients do not align. Either way within [initial, max]."""
        if server_wait is None:
            ceiling = min(self.max, self.initial * 2.0 ** min(attempt + 1, MAX_DOUBLINGS))
            wait = uniform(max(self.initial, ceiling / 2), ceiling)
        else:
            wait = server_wait
        return min(max(wait, self.initial), self.max)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from `now` (default: the wall clock) that `Retry-After` asks to wait: 0 for a
    date already past; None when absent or neither ASCII delta-seconds nor an HTTP-date."""
    if value is None:
        return None
    delta = ascii_int(value, 0, MAX_DELTA_S)
    if delta is not None:
        return float(delta)
    text = value.strip()
    if not text.isascii() or not text[:1].isalpha():  # an HTTP-date starts with the day name
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # "-0000": an HTTP-date is always GMT
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
