"""Business events as CloudEvents 1.0 in JSON, in either HTTP content mode the panel offers:
batch (`application/cloudevents-batch+json`, a JSON array per request) or structured
(`application/cloudevents+json`, one event per request); BIZOBS_BIZEVENTS_MODE chooses.

One event per reached step, with the `traceparent` extension of the Distributed Tracing
extension so an ingest endpoint links each event to its trace. `data` says how the step went:
`outcome` "success" or "failed" and, for a failure, `errorType` (the injected error). This is
the shape business-event ingest endpoints (Dynatrace's included) accept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from app.core.export.otlp import Finished

CONTENT_TYPE = "application/cloudevents-batch+json"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
EVENT_TYPE = "com.bizobs.journey.step"
SOURCE = "bizobs-panel"


def batch(items: Iterable[Finished]) -> bytes:
    """All events of `items` as one JSON array."""
    return json.dumps(list(_events(items)), default=str).encode()


def structured(items: Iterable[Finished]) -> list[tuple[bytes, int]]:
    """Each event of `items` as a request body of its own: (body, 1)."""
    return [(json.dumps(event, default=str).encode(), 1) for event in _events(items)]


def source(company: str) -> str:
    """A URI-reference for any company name (`source` must be one): the name is one path
    segment, percent-encoded as UTF-8, so "Acme Corp" is `bizobs-panel/Acme%20Corp`."""
    return f"{SOURCE}/{quote(company, safe='')}"


def _events(items: Iterable[Finished]) -> Iterator[dict[str, Any]]:
    for item in items:
        for step in item.result.steps:
            if step.span and step.event and step.span_id:
                yield _event(item, step.span_id, step.event)


def _event(item: Finished, span_id: str, event: dict[str, Any]) -> dict[str, Any]:
    stamp = event.get("timestamp")
    when = datetime.fromtimestamp(stamp if isinstance(stamp, int | float) else 0, UTC)
    customer = item.result.customer
    return {
        "specversion": "1.0",
        "id": f"{item.result.trace_id}-{span_id}",  # unique per step and source
        "source": source(item.company),
        "type": EVENT_TYPE,
        "subject": str(event.get("step")),
        "time": when.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "traceparent": f"00-{item.result.trace_id}-{span_id}-01",
        "data": event
        | {"segment": customer.segment, "loyaltyTier": customer.loyalty_tier, "spanId": span_id},
    }
