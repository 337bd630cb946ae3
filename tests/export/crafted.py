"""Finished customers made by hand, to offer straight to an open Exporter (no services)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from app.core import waiting
from app.core.export import Exporter
from app.core.journeys import Journey, parse_journey
from app.core.simulation import Customer, CustomerResult, StepResult
from app.service.trace import new_span_id, new_trace_id
from tests.helpers import journey

COMPANY = "Craft Co"
JOURNEY: Journey = parse_journey(journey(COMPANY, "LoginService"))
HOPS: list[dict[str, Any]] = [{"url": "http://127.0.0.1:9/process", "stepName": "Login"}]
SPANS = 2  # the root and the one SERVER span
LOGS = 1


def customer_result(
    description: str = "Signs in", number: int = 1, fields: dict[str, Any] | None = None
) -> CustomerResult:
    """One customer through one step (LoginService), its step's business fields as given."""
    root = new_span_id()
    now = time.time_ns()
    trace_id = new_trace_id()
    step = StepResult(
        step_name="Login",
        service_name="LoginService",
        status="ok",
        http_status=200,
        latency_ms=1.0,
        error=None,
        span_id=new_span_id(),
        parent_span_id=root,
        event={
            "step": "Login",
            "outcome": "success",
            "errorType": None,
            "durationMs": 1.0,
            "fields": {"description": description, "category": "auth"}
            if fields is None
            else fields,
            "timestamp": now / 1e9,
        },
        span={"instanceId": "crafted-1", "pid": 1, "port": 9, "startNs": now, "endNs": now + 1},
    )
    customer = Customer(f"cust-{number:05d}", "Ava Smith", "ava@example.com", "consumer", "gold")
    return CustomerResult(
        customer=customer,
        trace_id=trace_id,
        root_span_id=root,
        correlation_id=f"corr-{number}",
        steps=(step,),
        latency_ms=2.0,
    )


def offer(exporter: Exporter, result: CustomerResult) -> None:
    exporter.offer(JOURNEY, HOPS, result)


async def until(done: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for `done()` to hold, at most `timeout` seconds (TimeoutError past it)."""
    if not await waiting.until(done, timeout):
        raise TimeoutError(f"not done within {timeout} s")
