"""The retry policy and `Retry-After` (app/core/export/retry.py); the end-to-end pacing against
a backend answering `Retry-After: 0` is in test_pipeline.py."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from app.core.export.retry import RetryPolicy, parse_retry_after

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("7", 7.0),
        (" 120 ", 120.0),
        ("0007", 7.0),
        ("Fri, 27 Nov 2026 12:00:30 GMT", 30.0),  # IMF-fixdate
        ("Friday, 27-Nov-26 12:01:00 GMT", 60.0),  # obsolete RFC 850 form
        ("Fri Nov 27 12:00:05 2026", 5.0),  # asctime
        ("Fri, 27 Nov 2026 11:00:00 GMT", 0.0),  # already past
        (None, None),
        ("", None),
        ("²", None),  # str.isdigit() is true for it; float() refuses it
        ("٣", None),  # float() reads it as 3
        ("１０", None),  # fullwidth digits
        ("-1", None),
        ("1.5", None),
        ("1e3", None),
        ("soon", None),
        ("Fri, 32 Nov 2026 12:00:00 GMT", None),
        ("Fri, 27 Nov 2026 12:00:00 G\u00dcT", None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW.timestamp()) == seconds


def test_an_http_date_is_read_against_the_wall_clock_by_default() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=100), usegmt=True)
    wait = parse_retry_after(later)
    assert wait is not None and 95 <= wait <= 100


POLICY = RetryPolicy(initial=0.5, max=5.0, budget=30.0)


@pytest.mark.parametrize(
    ("server_wait", "expected"),
    [(0.0, 0.5), (0.1, 0.5), (2.0, 2.0), (5.0, 5.0), (3600.0, 5.0)],
)
def test_a_server_wait_is_clamped_to_initial_and_max(server_wait: float, expected: float) -> None:
    for attempt in (0, 3, 100):
        assert POLICY.next_wait(attempt, server_wait) == expected


def test_backoff_doubles_with_jitter_and_stays_within_initial_and_max() -> None:
    rng = random.Random(7)
    for attempt in range(0, 200):
        ceiling = min(5.0, 0.5 * 2 ** min(attempt + 1, 60))
        waits = [POLICY.next_wait(attempt, None, rng.uniform) for _ in range(50)]
        assert all(max(0.5, ceiling / 2) <= w <= ceiling for w in waits), attempt
        assert len(set(waits)) > 1  # jittered: many clients do not retry in step
    assert POLICY.next_wait(0, None, lambda lo, hi: lo) == 0.5
    assert POLICY.next_wait(1, None, lambda lo, hi: hi) == 2.0
    assert POLICY.next_wait(10, None, lambda lo, hi: hi) == 5.0


@pytest.mark.parametrize(("initial", "top", "budget"), [(0, 1, 1), (2, 1, 1), (1, 2, -1)])
def test_a_policy_that_cannot_pace_is_refused(initial: float, top: float, budget: float) -> None:
    with pytest.raises(ValueError, match="retry policy"):
        RetryPolicy(initial, top, budget)
