"""Fuzzing the journey input and the control API with hypothesis: rejected input is a clear
4xx and changes nothing; nothing answers 5xx or crashes."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from app.api.server import ApiServer
from app.core.errors import ValidationError
from app.core.journeys import parse_journey
from app.core.orchestrator import Core, open_core
from app.core.settings import Settings
from tests.conftest import repeat
from tests.helpers import journey

JSON_LEAF = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
JSON = st.recursive(
    JSON_LEAF,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=4)
    ),
    max_leaves=20,
)
NAMES = st.text(min_size=0, max_size=20) | st.sampled_from(
    ["LoginService", "a b", "../x", "$(id)", "Ünïcode", "", "x" * 200, "DROP TABLE runs"]
)
STEP = st.fixed_dictionaries(
    {"stepName": NAMES, "serviceName": NAMES},
    optional={
        "latencyMs": JSON_LEAF,
        "errorRate": JSON_LEAF,
        "errorType": NAMES,
        "description": JSON,
        "substeps": JSON,
    },
)
NEAR_VALID = st.fixed_dictionaries(
    {
        "companyName": NAMES,
        "domain": NAMES | st.just("acme.com"),
        "industryType": NAMES,
        "steps": st.lists(STEP, max_size=6) | JSON,
    },
    optional={"errorRate": JSON_LEAF, "customerProfile": JSON, "additionalFields": JSON},
)


@pytest.mark.slow
@given(st.one_of(JSON, NEAR_VALID))
@hsettings(max_examples=repeat(400, 2000), deadline=None)
def test_parse_journey_either_rejects_clearly_or_round_trips(data: Any) -> None:
    try:
        parsed = parse_journey(data)
    except ValidationError as exc:
        assert exc.problems and all(p.message for p in exc.problems)
        return
    assert parse_journey(parsed.to_json()) == parsed
    # Steps may share a service: one spec per distinct service, covering every step.
    specs = [spec.service_name for spec in parsed.service_specs()]
    assert sorted(specs) == sorted({s.service_name for s in parsed.steps})


@contextmanager
def api_in_thread(settings: Settings) -> Iterator[tuple[str, Core, asyncio.AbstractEventLoop]]:
    """The real core and API on their own loop in a thread, so hypothesis can stay synchronous."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def on_loop(coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    stack = AsyncExitStack()
    core: Core = on_loop(stack.enter_async_context(open_core(settings)))
    server = ApiServer(core, "127.0.0.1", settings.api_port)
    try:
        on_loop(server.start())
        yield server.url, core, loop
    finally:
        on_loop(server.stop())
        on_loop(stack.aclose())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def post(url: str, body: bytes) -> tuple[int, Any]:
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


ENDPOINTS = ["simulate", "simulate-multiple", "simulate-batch-chained"]
BODIES = st.one_of(
    JSON.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
    st.fixed_dictionaries(
        {"journey": NEAR_VALID},
        optional={
            "customers": JSON_LEAF,
            "thinkTimeMs": JSON_LEAF,
            "seed": JSON_LEAF,
            "concurrency": JSON_LEAF,
        },
    ).map(lambda v: json.dumps(v).encode()),
)


@pytest.mark.slow
def test_api_fuzz_never_5xx_and_rejections_change_nothing(settings: Settings) -> None:
    with api_in_thread(settings) as (url, core, _loop):
        status, body = post(
            f"{url}/api/journey/simulate", json.dumps({"journey": journey("Base Co")}).encode()
        )
        assert status == 200, body

        @given(st.sampled_from(ENDPOINTS), BODIES)
        @hsettings(
            max_examples=repeat(250, 1000),
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        def one(endpoint: str, raw: bytes) -> None:
            before = {(s.key, s.pid) for s in core.services()}
            status, answer = post(f"{url}/api/journey/{endpoint}", raw)
            assert status < 500, (status, answer)
            if status >= 400:
                assert answer["ok"] is False and answer["error"]
                assert {(s.key, s.pid) for s in core.services()} == before

        one()
