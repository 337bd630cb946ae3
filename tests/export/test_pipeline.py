"""The export pipeline cannot die: a batch that fails in any way (encoding, a bad answer, a
redirect) is one failed batch, counted, and the next customers are still sent; closing never
raises and never leaks its HTTP session; the status recovers after a success."""

from __future__ import annotations

import gc
import warnings
from typing import Any

import pytest
from aiohttp import web

from app.core.export import Exporter, ExportSettings
from app.core.export.settings import Endpoint
from tests.conftest import run
from tests.export.crafted import LOGS, SPANS, customer_result, offer, until
from tests.export.receiver import Receiver

LONE_SURROGATE = "Signs in \udc80"  # valid in a Python str, not encodable as UTF-8
SECRET = "x-api-key-SECRET"


def settings_for(base: str, **overrides: Any) -> ExportSettings:
    values: dict[str, Any] = {
        "traces": Endpoint(f"{base}/v1/traces", (("x-api-key", SECRET),)),
        "logs": Endpoint(f"{base}/v1/logs"),
        "schedule_delay_s": 0.02,
        "max_batch": 1,  # one customer per batch: each is sent or failed on its own
        "retry_initial_s": 0.05,
        "retry_budget_s": 2.0,
    }
    return ExportSettings(**(values | overrides))


def test_a_batch_that_cannot_be_encoded_is_one_failed_batch_and_the_next_are_sent() -> None:
    async def scenario() -> None:
        async with Receiver() as rx:
            exporter = await Exporter.open(settings_for(rx.base))
            try:
                offer(exporter, customer_result(LONE_SURROGATE, 1))
                good = [customer_result("Signs in", n) for n in (2, 3)]
                for result in good:
                    offer(exporter, result)
                await rx.wait_for(lambda g: len(g.spans) == 2 * SPANS and len(g.logs) == 2 * LOGS)
                await until(lambda: not any(c.busy for c in exporter.channels.values()))
            finally:
                await exporter.aclose()
            traces, logs = (exporter.status()[k] for k in ("traces", "logs"))
            assert (traces["failedBatches"], traces["dropped"], traces["sent"]) == (1, SPANS, 4)
            assert (logs["failedBatches"], logs["dropped"], logs["sent"]) == (1, LOGS, 2)
            assert traces["lastError"].startswith("could not encode 2 spans: ")
            assert "not valid Unicode" in traces["lastError"]
            sent_ids = {s.trace_id.hex() for _, s in rx.got.spans}
            assert sent_ids == {r.trace_id for r in good}

    run(scenario(), timeout=30)


def test_closing_after_a_failed_batch_raises_nothing_and_leaves_no_session() -> None:
    async def scenario() -> None:
        async with Receiver() as rx:
            exporter = await Exporter.open(settings_for(rx.base))
            offer(exporter, customer_result(LONE_SURROGATE))
            await until(lambda: not any(c.busy for c in exporter.channels.values()))
            await exporter.aclose()  # raises nothing
            assert exporter.status()["traces"]["failedBatches"] == 1

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(scenario(), timeout=30)
        gc.collect()
    unclosed = [
        str(w.message)
        for w in caught
        if issubclass(w.category, ResourceWarning) or "Unclosed" in str(w.message)
    ]
    assert not unclosed


def test_retry_after_zero_is_paced_by_the_initial_backoff() -> None:
    """A backend answering 503 with `Retry-After: 0` to every POST: the retries of the one
    batch wait at least the initial backoff each, so the budget bounds the POSTs."""
    initial, budget = 0.1, 1.0

    def busy(request: web.Request, served: int) -> web.Response:
        return web.Response(status=503, headers={"Retry-After": "0"})

    async def scenario() -> None:
        async with Receiver(answer=busy) as rx:
            settings = settings_for(
                rx.base, logs=None, retry_initial_s=initial, retry_budget_s=budget
            )
            exporter = await Exporter.open(settings)
            try:
                offer(exporter, customer_result())
                await until(lambda: exporter.status()["traces"]["failedBatches"] == 1)
            finally:
                await exporter.aclose()
            posts = rx.posts("/v1/traces")
            assert 2 <= posts <= 1 + budget / initial, posts
            traces = exporter.status()["traces"]
            assert traces["dropped"] == SPANS and traces["sent"] == 0
            assert traces["lastError"] == f"HTTP 503 from {rx.base}/v1/traces"

    run(scenario(), timeout=30)


@pytest.mark.parametrize("retry_after", ["²", "٣", "1.5", "soon"])
def test_a_retry_after_that_is_not_a_number_or_date_is_ignored(retry_after: str) -> None:
    def once(request: web.Request, served: int) -> web.Response | None:
        return (
            web.Response(status=503, headers={"Retry-After": retry_after}) if not served else None
        )

    async def scenario() -> None:
        async with Receiver(answer=once) as rx:
            exporter = await Exporter.open(settings_for(rx.base, logs=None))
            try:
                offer(exporter, customer_result())
                await rx.wait_for(lambda g: len(g.spans) == SPANS)
            finally:
                await exporter.aclose()
            traces = exporter.status()["traces"]
            assert (traces["sent"], traces["failedBatches"], traces["dropped"]) == (SPANS, 0, 0)
            assert rx.posts("/v1/traces") == 2

    run(scenario(), timeout=30)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failed_batch_and_nothing_goes_to_its_target(status: int) -> None:
    async def scenario() -> None:
        async with Receiver() as target:
            location = f"{target.base}/v1/traces"

            def redirect(request: web.Request, served: int) -> web.Response:
                return web.Response(status=status, headers={"Location": location})

            async with Receiver(answer=redirect) as rx:
                exporter = await Exporter.open(settings_for(rx.base, logs=None))
                try:
                    offer(exporter, customer_result())
                    await until(lambda: exporter.status()["traces"]["failedBatches"] == 1)
                finally:
                    await exporter.aclose()
            traces = exporter.status()["traces"]
            assert traces["lastError"] == (
                f"redirected to {location}: set the endpoint to the final URL"
            )
            assert (traces["sent"], traces["dropped"]) == (0, SPANS)
            assert rx.posts("/v1/traces") == 1  # not retried either
            assert target.got.requests == []  # no request, so no header, went there

    run(scenario(), timeout=30)


def test_the_status_recovers_after_a_failure_and_keeps_the_error_as_history() -> None:
    def refuse_first(request: web.Request, served: int) -> web.Response | None:
        return web.Response(status=400) if not served else None

    async def scenario() -> None:
        async with Receiver(answer=refuse_first) as rx:
            exporter = await Exporter.open(settings_for(rx.base, logs=None))
            try:
                assert exporter.status()["traces"]["state"] == "idle"
                offer(exporter, customer_result(number=1))
                await until(lambda: exporter.status()["traces"]["failedBatches"] == 1)
                failing = exporter.status()["traces"]
                assert failing["state"] == "failing"
                assert failing["lastError"] == f"HTTP 400 from {rx.base}/v1/traces"
                assert isinstance(failing["lastErrorAt"], float)
                offer(exporter, customer_result(number=2))
                await until(lambda: exporter.status()["traces"]["sent"] == SPANS)
                await until(lambda: exporter.status()["traces"]["state"] == "idle")
            finally:
                await exporter.aclose()
            recovered = exporter.status()["traces"]
            assert recovered["lastError"] == failing["lastError"]  # history, with its time
            assert recovered["lastErrorAt"] == failing["lastErrorAt"]

    run(scenario(), timeout=30)
