"""The chain of a running journey: its hops, built once after a launch and shared by the warm-up,
continuous traffic and the simulate phase; and the signed request that sends one customer
through it (app/service/protocol.py; docs/architecture.md, "The step service")."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import orjson
from aiohttp import hdrs

from app.common.httpguard import JSON
from app.core.journeys import Journey
from app.core.model import ServiceRecord, service_key
from app.service.protocol import (
    CHAIN_HEADER,
    HOP_HEADER,
    HOP_MARGIN_S,
    PROTOCOL_VERSION,
    ChainBody,
    Hop,
    chain_budget_s,
    credential,
    hop_port,
    hop_url,
)


@dataclass(frozen=True)
class Chain:
    """A journey's hops on the services that serve it now, and the key that signs requests."""

    journey: Journey
    hops: tuple[Hop, ...]
    secret: bytes = field(repr=False)

    @property
    def first_url(self) -> str:
        return self.hops[0]["url"]

    @cached_property
    def first_port(self) -> int:
        port = hop_port(self.first_url)
        assert port is not None  # build_chain writes every hop's URL with hop_url
        return port

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(p for h in self.hops if (p := hop_port(h["url"])) is not None)

    @property
    def keys(self) -> frozenset[str]:
        """The service keys the chain goes through."""
        company = self.journey.company_name
        return frozenset(service_key(h["serviceName"], company) for h in self.hops)

    def budget_s(self, think_ms: float = 0.0) -> float:
        return chain_budget_s([h["latencyMs"] for h in self.hops], think_ms)

    def request(
        self, customer: Mapping[str, Any], think_ms: float = 0.0
    ) -> tuple[bytes, dict[str, str], float]:
        """One customer's request to hop 0: the body, the headers that make it the panel's
        (the chain credential), and how long the panel waits for the answer."""
        budget = self.budget_s(think_ms)
        body: ChainBody = {
            "v": PROTOCOL_VERSION,
            "customer": dict(customer),
            "hops": list(self.hops),
            "thinkTimeMs": think_ms,
            "journey": {
                "companyName": self.journey.company_name,
                "domain": self.journey.domain,
                "industryType": self.journey.industry_type,
            },
            "deadline": time.monotonic() + budget,
        }
        # orjson: 10× the json module here, on every customer (docs/performance.md).
        raw = orjson.dumps(body)
        headers = {
            hdrs.CONTENT_TYPE: JSON,
            HOP_HEADER: "0",
            CHAIN_HEADER: credential(self.secret, 0, raw),
        }
        # Hop 0 answers by the deadline; the panel gives it one margin more to be heard.
        return raw, headers, budget + HOP_MARGIN_S

    def links(self) -> list[Chain]:
        """Each hop with the next one (the last alone): every hop's handler and its kept-alive
        connection to the next, reachable at once rather than one after another."""
        hops = self.hops
        return [replace(self, hops=hops[i : i + 2]) for i in range(len(hops))]

    def quiet(self) -> Chain:
        """The same chain with no simulated latency and no injected errors (the warm-up)."""
        hops = tuple(Hop(**(h | {"latencyMs": 0.0, "errorRate": 0.0})) for h in self.hops)
        return replace(self, hops=hops)


def build_chain(journey: Journey, services: Mapping[str, ServiceRecord], secret: bytes) -> Chain:
    """The chain as the panel hands it to hop 0: URL and settings of every hop."""
    hops = []
    for step in journey.steps:
        info = services[service_key(step.service_name, journey.company_name)]
        hops.append(
            Hop(
                url=hop_url(info.port),
                stepName=step.step_name,
                serviceName=step.service_name,
                latencyMs=step.latency_ms,
                errorRate=step.error_rate or journey.error_rate,
                errorType=step.error_type or journey.error_type or "internal",
                fields={
                    "category": step.category,
                    "description": step.description,
                    "domain": journey.domain,
                    "industryType": journey.industry_type,
                    **step.extra,
                },
            )
        )
    return Chain(journey, tuple(hops), secret)
