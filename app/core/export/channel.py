"""One signal's export: a bounded queue, batches taken off it, each encoded and POSTed with
retries, everything counted, and a sender that nothing a batch does can end.

Each batch is one unit of failure: whatever goes wrong with it — it cannot be encoded (a text
no codec can write), the backend refuses it, redirects it or never answers, or the unforeseen —
makes it one failed batch, its spans or records dropped and counted, `lastError` saying what
failed, and the sender goes on with the next batch. Redirects are never followed: an export
POST re-sent elsewhere would carry its headers (secrets) to a host nobody configured, and a
302 would turn it into an empty GET. The status tells the state (docs/architecture.md,
"Export"): idle, sending, retrying, or failing (the last batch was given up, and none has been
delivered since); `lastError` and `lastErrorAt` stay as history after recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar
from urllib.parse import urljoin

from aiohttp import ClientError, ClientSession, ClientTimeout

from app.core.export.failures import plain_failure
from app.core.export.retry import parse_retry_after
from app.core.export.settings import Endpoint, ExportSettings

RETRYABLE = frozenset({429, 502, 503, 504})  # the OTLP/HTTP specification's retryable codes
PROTOBUF = "application/x-protobuf"
MAX_REASON_CHARS = 200
# What a channel queues: a finished customer (traces, logs, events) or a metrics collection.
T = TypeVar("T")


class State(StrEnum):
    IDLE = "idle"  # nothing queued, nothing on its way; the last batch (if any) was delivered
    SENDING = "sending"  # items queued or a batch on its way
    RETRYING = "retrying"  # a batch failed and waits for its next attempt
    FAILING = "failing"  # the last batch was given up; nothing delivered since


@dataclass
class Counts:
    sent: int = 0
    dropped: int = 0  # never reached the backend: queue full, batch failed, or rejected
    failed_batches: int = 0
    last_error: str | None = None
    last_error_at: float | None = None  # wall clock (time.time) of last_error


@dataclass(frozen=True)
class Codec(Generic[T]):
    # The request bodies for a batch, with the units (spans, records, events, data points)
    # each carries: one body for OTLP and a CloudEvents batch, one per event in structured mode.
    encode: Callable[[list[T]], list[tuple[bytes, int]]]
    units: Callable[[T], int]  # spans, records or data points one item makes
    content_type: str
    rejected: Callable[[bytes], int]  # partial success: how many the backend refused
    noun: str  # what a unit is, for messages: "spans", "log records", "events", "data points"


class BatchFailed(Exception):
    """The batch is given up; the message says why (it becomes `lastError`)."""


@dataclass(frozen=True)
class Failure:
    error: str
    retry: bool
    server_wait: float | None = None  # Retry-After, seconds


class Channel(Generic[T]):
    """One signal: its queue, its counts and state, and `run`, its sender (a task the
    Exporter starts and awaits)."""

    def __init__(
        self, endpoint: Endpoint, codec: Codec[T], settings: ExportSettings, http: ClientSession
    ) -> None:
        self.endpoint = endpoint
        self.counts = Counts()
        self._codec = codec
        self._cfg = settings
        self._policy = settings.retry
        self._http = http
        self._headers = dict(endpoint.headers) | {"Content-Type": codec.content_type}
        self._items: deque[tuple[T, int]] = deque()
        self._queued = 0
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._sending = False
        self._retrying = False
        self._failing = False

    def offer(self, item: T) -> None:
        units = self._codec.units(item)
        if units == 0:
            return
        if self._closed.is_set() or self._queued + units > self._cfg.max_queue:
            self.counts.dropped += units  # bounded: the newest are dropped, and counted
            return
        self._items.append((item, units))
        self._queued += units
        if self._queued >= self._cfg.max_batch:
            self._wake.set()

    @property
    def busy(self) -> bool:
        """Items queued or a batch on its way (sent, retried or given up not yet)."""
        return bool(self._items) or self._sending

    @property
    def state(self) -> State:
        if self._retrying:
            return State.RETRYING
        if self._failing:
            return State.FAILING
        return State.SENDING if self.busy else State.IDLE

    def status(self) -> dict[str, Any]:
        c = self.counts
        return {
            "endpoint": self.endpoint.display_url,
            "state": self.state.value,
            "sent": c.sent,
            "dropped": c.dropped,
            "failedBatches": c.failed_batches,
            "lastError": c.last_error,
            "lastErrorAt": c.last_error_at,
            "queued": self._queued,
        }

    def close(self) -> None:
        """Take no more items; `run` sends what is queued (no more retries) and returns."""
        self._closed.set()
        self._wake.set()

    def discard(self) -> None:
        """Drop and count what is still queued (the sender was stopped before it was sent)."""
        self.counts.dropped += self._queued
        self._items.clear()
        self._queued = 0

    async def run(self) -> None:
        """The sender: a batch when max_batch items are queued or schedule_delay_s has passed,
        until closed and empty. `_send` lets nothing but cancellation out."""
        while self._items or not self._closed.is_set():
            if self._queued < self._cfg.max_batch and not self._closed.is_set():
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._cfg.schedule_delay_s)
            if self._items:
                await self._send(*self._take())

    def _take(self) -> tuple[list[T], int]:
        batch: list[T] = []
        units = 0
        while self._items and (not batch or units + self._items[0][1] <= self._cfg.max_batch):
            item, n = self._items.popleft()
            batch.append(item)
            units += n
        self._queued -= units
        return batch, units

    async def _send(self, batch: list[T], units: int) -> None:
        """Encode and POST one batch: delivered, or one failed batch — never an exception."""
        settled = 0  # units delivered (or rejected by the backend, counted there)
        self._sending = True
        try:
            parts = self._encode(batch, units)
            deadline = asyncio.get_running_loop().time() + self._policy.budget
            for body, n in parts:
                await self._post(body, n, deadline)
                settled += n
            self._failing = False
        except asyncio.CancelledError:
            self.counts.dropped += units - settled  # stopped by the close bound: counted
            raise
        except BatchFailed as exc:
            self._failed(units - settled, str(exc))
        except Exception as exc:  # nothing foreseen, still this batch's failure only
            reason = self._scrub(_reason(exc))
            self._failed(units - settled, f"sending {units} {self._codec.noun}: {reason}")
        finally:
            self._sending = self._retrying = False

    def _encode(self, batch: list[T], units: int) -> list[tuple[bytes, int]]:
        try:
            return self._codec.encode(batch)
        except Exception as exc:
            message = f"could not encode {units} {self._codec.noun}: {_reason(exc)}"
            raise BatchFailed(message) from exc

    async def _post(self, body: bytes, units: int, deadline: float) -> None:
        """POST one body until it is delivered, or raise BatchFailed: a refusal, a redirect,
        or a retryable failure whose next attempt would fall past `deadline` (or closing)."""
        loop = asyncio.get_running_loop()
        attempt = 0
        while (failure := await self._post_once(body, units)) is not None:
            wait = self._policy.next_wait(attempt, failure.server_wait)
            if not failure.retry or self._closed.is_set() or loop.time() + wait > deadline:
                raise BatchFailed(failure.error)
            self._note(failure.error)
            self._retrying = True
            with contextlib.suppress(TimeoutError):  # closing cuts the wait short
                await asyncio.wait_for(self._closed.wait(), wait)
            self._retrying = False
            attempt += 1

    async def _post_once(self, body: bytes, units: int) -> Failure | None:
        """None when the backend took it (2xx); else what went wrong and whether to retry."""
        shown = self.endpoint.display_url
        try:
            async with self._http.post(
                self.endpoint.url,
                data=body,
                headers=self._headers,
                timeout=ClientTimeout(total=self._cfg.timeout_s),
                allow_redirects=False,
            ) as resp:
                payload = await resp.read()
                if 200 <= resp.status < 300:
                    self._accepted(units, payload, resp.content_type)
                    return None
                if 300 <= resp.status < 400:
                    location = resp.headers.get("Location")
                    return Failure(self._redirected(resp.status, location), retry=False)
                error = f"HTTP {resp.status} from {shown}"
                if resp.status not in RETRYABLE:
                    return Failure(error, False)
                return Failure(error, True, parse_retry_after(resp.headers.get("Retry-After")))
        except (ClientError, TimeoutError, OSError) as exc:
            return Failure(plain_failure(exc, shown, self._cfg.timeout_s), True)

    def _redirected(self, status: int, location: str | None) -> str:
        if not location:
            return f"redirected (HTTP {status}, no Location): set the endpoint to the final URL"
        try:
            # Shown like the endpoint: without user info or query, which may hold a secret.
            target = Endpoint(urljoin(self.endpoint.url, location)).display_url
        except ValueError:  # e.g. a port out of range
            return f"redirected (HTTP {status}) to a URL that does not parse"
        return f"redirected to {target}: set the endpoint to the final URL"

    def _scrub(self, text: str) -> str:
        """`text` without any header value of this endpoint (they may be secrets)."""
        for _, value in self.endpoint.headers:
            if value:
                text = text.replace(value, "••••")
        return text

    def _accepted(self, units: int, payload: bytes, content_type: str) -> None:
        rejected = self._codec.rejected(payload) if content_type == PROTOBUF else 0
        rejected = min(max(rejected, 0), units)
        self.counts.sent += units - rejected
        if rejected:
            self.counts.dropped += rejected
            self._note(f"the backend rejected {rejected} of {units} {self._codec.noun}")

    def _failed(self, units: int, error: str) -> None:
        self.counts.failed_batches += 1
        self.counts.dropped += units
        self._failing = True
        self._note(error)

    def note(self, error: str) -> None:
        """Make `error` the signal's lastError (something went wrong beside a batch)."""
        self._note(error)

    def _note(self, error: str) -> None:
        self.counts.last_error = error
        self.counts.last_error_at = time.time()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UnicodeError):
        return f"a text value is not valid Unicode ({type(exc).__name__})"
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"
