"""Simulated customers and the three modes: single, multiple, batch-chained.

The orchestrator puts the whole chain (each hop's URL and step settings, app/core/chain.py) into
the request to step 1, signed with the chain credential; every service calls the next hop it is
given, so no service computes a peer's port.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from app.core.chain import Chain
from app.core.journeys import Journey
from app.core.limits import DEFAULT_CONCURRENCY
from app.core.model import Mode
from app.service.hop_client import HopClient, HopClientError
from app.service.protocol import Hop
from app.service.trace import SpanContext, new_span_id, new_trace_id

FIRST = (
    "Ava",
    "Liam",
    "Mia",
    "Noah",
    "Zoe",
    "Omar",
    "Ines",
    "Kenji",
    "Lena",
    "Ravi",
    "Sara",
    "Tom",
    "Yara",
    "Jonas",
    "Priya",
    "Diego",
)
LAST = (
    "Smith",
    "Garcia",
    "Chen",
    "Müller",
    "Okafor",
    "Rossi",
    "Nguyen",
    "Kowalski",
    "Silva",
    "Haddad",
    "Larsen",
    "Tanaka",
)
SEGMENTS = ("consumer", "small-business", "enterprise", "student", "premium")
TIERS = ("bronze", "silver", "gold", "platinum")


@dataclass(frozen=True)
class Customer:
    id: str
    name: str
    email: str
    segment: str
    loyalty_tier: str

    def to_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "segment": self.segment,
            "loyaltyTier": self.loyalty_tier,
        }


def make_customers(n: int, domain: str, seed: int | None = None) -> list[Customer]:
    """N generated customer profiles; the same seed gives the same customers."""
    rng = random.Random(seed)
    return [_customer(rng, i, domain) for i in range(n)]


def customer_stream(domain: str, seed: int, start: int = 0) -> Iterator[Customer]:
    """Customers without end for continuous traffic, numbered from `start + 1`; the same seed
    and start give the same customers."""
    rng = random.Random(f"{seed}/{start}")
    for i in itertools.count(start):
        yield _customer(rng, i, domain)


def _customer(rng: random.Random, i: int, domain: str) -> Customer:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    handle = f"{first}.{last}".lower().replace("ü", "ue")
    return Customer(
        id=f"cust-{i + 1:05d}-{rng.randrange(16**6):06x}",
        name=f"{first} {last}",
        email=f"{handle}{rng.randrange(100)}@{domain}",
        segment=rng.choice(SEGMENTS),
        loyalty_tier=rng.choice(TIERS),
    )


@dataclass(frozen=True)
class StepResult:
    step_name: str
    service_name: str
    status: str  # ok | failed | skipped
    http_status: int | None
    latency_ms: float | None
    error: str | None
    span_id: str | None = None
    parent_span_id: str | None = None
    event: dict[str, Any] | None = None
    span: dict[str, Any] | None = None  # the hop's span facts, for export (app.core.export)

    def to_json(self) -> dict[str, Any]:
        return {
            "stepName": self.step_name,
            "serviceName": self.service_name,
            "status": self.status,
            "httpStatus": self.http_status,
            "latencyMs": self.latency_ms,
            "error": self.error,
            "spanId": self.span_id,
            "parentSpanId": self.parent_span_id,
        }


@dataclass(frozen=True)
class CustomerResult:
    customer: Customer
    trace_id: str
    root_span_id: str  # the orchestrator's span: step 1's parent
    correlation_id: str
    steps: tuple[StepResult, ...]
    latency_ms: float
    started_ns: int = 0  # wall clock (time.time_ns) right before the request to step 1

    @property
    def ok(self) -> bool:
        return all(s.status == "ok" for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {
            "customer": self.customer.to_json(),
            "ok": self.ok,
            "traceId": self.trace_id,
            "rootSpanId": self.root_span_id,
            "correlationId": self.correlation_id,
            "latencyMs": round(self.latency_ms, 3),
            "steps": [s.to_json() for s in self.steps],
        }


@dataclass(frozen=True)
class Summary:
    customers: int
    completed: int
    failed: int
    success_rate: float
    p50_ms: float
    p95_ms: float
    duration_ms: float
    journeys_per_s: float

    def to_json(self) -> dict[str, Any]:
        return {
            "customers": self.customers,
            "completed": self.completed,
            "failed": self.failed,
            "successRate": round(self.success_rate, 4),
            "p50Ms": round(self.p50_ms, 2),
            "p95Ms": round(self.p95_ms, 2),
            "durationMs": round(self.duration_ms, 2),
            "journeysPerSecond": round(self.journeys_per_s, 2),
        }


@dataclass(frozen=True)
class SimulationResult:
    mode: Mode
    customers: tuple[CustomerResult, ...]
    summary: Summary


def summarize(results: Sequence[CustomerResult], duration_ms: float) -> Summary:
    latencies = sorted(r.latency_ms for r in results)
    completed = sum(r.ok for r in results)
    n = len(results)
    return Summary(
        customers=n,
        completed=completed,
        failed=n - completed,
        success_rate=completed / n if n else 0.0,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        duration_ms=duration_ms,
        journeys_per_s=n / (duration_ms / 1000) if duration_ms > 0 else 0.0,
    )


def percentile(sorted_values: Sequence[float], pct: int) -> float:
    if not sorted_values:
        return 0.0
    if len(sorted_values) == 1:
        return sorted_values[0]
    return statistics.quantiles(sorted_values, n=100, method="inclusive")[pct - 1]


# Called as each customer finishes (e.g. the exporter's offer): it must queue, never wait.
CustomerDone = Callable[[Journey, Sequence[Hop], CustomerResult], None]


class Simulator:
    def __init__(self, hops: HopClient, on_customer: CustomerDone | None = None) -> None:
        self.hops = hops
        self.on_customer = on_customer

    async def run(
        self,
        chain: Chain,
        customers: Sequence[Customer],
        mode: Mode,
        think_time_ms: float = 0.0,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> SimulationResult:
        t0 = time.perf_counter()
        think = think_time_ms if mode is Mode.BATCH_CHAINED else 0.0
        gate = asyncio.Semaphore(max(1, concurrency))

        async def one(customer: Customer) -> CustomerResult:
            async with gate:
                result = await self.customer_journey(chain, customer, think)
            if self.on_customer is not None:
                self.on_customer(chain.journey, chain.hops, result)
            return result

        results = await asyncio.gather(*(one(c) for c in customers))
        duration_ms = (time.perf_counter() - t0) * 1000
        return SimulationResult(mode, tuple(results), summarize(results, duration_ms))

    async def customer_journey(
        self, chain: Chain, customer: Customer, think_ms: float
    ) -> CustomerResult:
        """One customer through the chain, bounded by the chain's own time budget."""
        journey = chain.journey
        root = SpanContext(new_trace_id(), new_span_id(), None)
        correlation_id = str(uuid.uuid4())
        body, headers, wait_s = chain.request(customer.to_json(), think_ms)
        headers |= {
            "traceparent": root.traceparent(),
            "x-correlation-id": correlation_id,
            "tracestate": f"bizobs={journey.company_key}",
        }
        started_ns = time.time_ns()  # the root span's start (app/core/export)
        t0 = time.perf_counter()
        try:
            answer = await self.hops.post(chain.first_port, body, headers, wait_s)
            nested = orjson.loads(answer.body)
        except TimeoutError:
            nested = _unreached(chain.hops[0], "timeout", f"no answer within {wait_s:.1f} s")
        except (OSError, HopClientError, ValueError) as exc:
            nested = _unreached(chain.hops[0], "unreachable", f"{type(exc).__name__}: {exc}")
        latency = (time.perf_counter() - t0) * 1000
        steps = flatten(nested, chain.hops)
        return CustomerResult(
            customer, root.trace_id, root.span_id, correlation_id, steps, latency, started_ns
        )


def _unreached(hop: Hop, kind: str, message: str) -> dict[str, Any]:
    return {
        "stepName": hop["stepName"],
        "serviceName": hop["serviceName"],
        "status": "failed",
        "httpStatus": 504 if kind == "timeout" else 502,
        "error": {"type": kind, "message": message},
    }


def flatten(nested: object, hops: Sequence[Hop]) -> tuple[StepResult, ...]:
    """Turn the nested per-hop responses into one result per step; unreached steps: skipped."""
    out: list[StepResult] = []
    node = nested
    for hop in hops:
        if not isinstance(node, dict):
            out.append(StepResult(hop["stepName"], hop["serviceName"], "skipped", None, None, None))
            continue
        error = node.get("error")
        message = error.get("message") if isinstance(error, dict) else None
        out.append(
            StepResult(
                step_name=hop["stepName"],
                service_name=hop["serviceName"],
                status="ok" if node.get("status") == "ok" else "failed",
                http_status=node.get("httpStatus"),
                latency_ms=node.get("latencyMs"),
                error=message,
                span_id=node.get("spanId"),
                parent_span_id=node.get("parentSpanId"),
                event=node.get("event"),
                span=node.get("span"),
            )
        )
        node = node.get("downstream")
    return tuple(out)
