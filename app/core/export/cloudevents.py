"""Business events as a CloudEvents 1.0 JSON batch (`application/cloudevents-batch+json`).

One event per reached step, with the `traceparent` extension of the Distributed Tracing
extension so an ingest endpoint links each event to its trace. This is the shape business-event
ingest endpoints (Dynatrace's included) accept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from app.core.export.otlp import Finished

CONTENT_TYPE = "application/cloudevents-batch+json"
EVENT_TYPE = "com.bizobs.journey.step"
SOURCE = "bizobs-panel"


def batch(items: Iterable[Finished]) -> bytes:
    events = [
        _event(item, step.span_id, step.event)
        for item in items
        for step in item.result.steps
        if step.span and step.event and step.span_id
    ]
    return json.dumps(events, default=str).encode()


def _event(item: Finished, span_id: str, event: dict[str, Any]) -> dict[str, Any]:
    stamp = event.get("timestamp")
    when = datetime.fromtimestamp(stamp if isinstance(stamp, int | float) else 0, UTC)
    customer = item.result.customer
    return {
        "specversion": "1.0",
        "id": f"{item.result.trace_id}-{span_id}",  # unique per step and source
        "source": f"{SOURCE}/{item.company}",
        "type": EVENT_TYPE,
        "subject": str(event.get("step")),
        "time": when.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "traceparent": f"00-{item.result.trace_id}-{span_id}-01",
        "data": event
        | {"segment": customer.segment, "loyaltyTier": customer.loyalty_tier, "spanId": span_id},
    }
