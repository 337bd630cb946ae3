"""A valid journey can always finish: the chain's time budget is derived from its steps and
travels in the request; each level answers its caller before the caller gives up, so a hop
that is too slow is the one charged, with a message that says so."""

from __future__ import annotations

import json
import time

import aiohttp

from app.core.journeys import parse_journey
from app.core.limits import MAX_LATENCY_MS, MAX_STEPS, MAX_THINK_TIME_MS
from app.core.orchestrator import open_core
from app.core.settings import Settings
from app.service.protocol import (
    BASE_BUDGET_S,
    CHAIN_HEADER,
    HOP_MARGIN_S,
    answer_by,
    chain_budget_s,
    credential,
)
from tests.conftest import run
from tests.helpers import journey


def test_the_budget_covers_the_longest_valid_journey() -> None:
    """40 steps of 60 s with 10 s think time between them: the budget is every second of it
    plus an allowance and a margin per hop (the fixed 60 s client timeout gave up on the
    third step of a 0/40/40 s journey)."""
    latencies = [float(MAX_LATENCY_MS)] * MAX_STEPS
    budget = chain_budget_s(latencies, MAX_THINK_TIME_MS)
    work = (sum(latencies) + MAX_THINK_TIME_MS * (MAX_STEPS - 1)) / 1000
    assert budget >= work + BASE_BUDGET_S + MAX_STEPS * HOP_MARGIN_S
    assert chain_budget_s([0.0, 40_000.0, 40_000.0], 0) > 80.0
    deadline = 1000.0
    steps = [answer_by(deadline, i) for i in range(MAX_STEPS)]
    assert steps == sorted(steps, reverse=True) and steps[0] == deadline
    assert steps[-1] - (deadline - budget) >= work  # the last hop still has its share


def test_a_hop_too_slow_for_the_budget_is_charged_with_a_message(settings: Settings) -> None:
    """A request whose deadline (1 s) the second step (2 s) cannot meet: the first step says
    the second did not answer in time (504, timeout, its name and port)."""

    async def scenario() -> None:
        async with open_core(settings) as core:
            raw = journey("Late Co", "AService", "BService", step2={"latencyMs": 2000})
            result = await core.run_journey(raw)
            assert result.ok, result.error
            chain = core.chain_for(parse_journey(raw))
            body, headers, _ = chain.request({"id": "late"})
            tight = json.loads(body) | {"deadline": time.monotonic() + 1.0}
            data = json.dumps(tight).encode()
            headers[CHAIN_HEADER] = credential(core.manager.chain_secret, 0, data)
            async with (
                aiohttp.ClientSession() as http,
                http.post(chain.first_url, data=data, headers=headers) as resp,
            ):
                answer = await resp.json()
            assert answer["status"] == "ok" and resp.status == 200, answer  # A did its part
            late = answer["downstream"]
            assert late["serviceName"] == "BService" and late["status"] == "failed", late
            assert late["httpStatus"] == 504 and late["error"]["type"] == "timeout"
            port = chain.ports[1]
            assert f"no answer from BService on port {port} within" in late["error"]["message"]

    run(scenario())
