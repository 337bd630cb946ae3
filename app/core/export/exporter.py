"""The export pipeline: bounded queues, batches, retries, counted losses, never on the hop path.

The simulator hands each finished customer to `Exporter.offer` (synchronous, O(1): it only
queues). One task per signal takes batches off its queue, encodes them and POSTs them with the
panel's event loop; no threads. A full queue drops the newest items and counts them; a batch
is retried on 429/502/503/504 and on connection errors, with exponential backoff that honours
Retry-After, within a time budget, then counted as failed. Nothing here can block or fail a
journey. Header values (secrets) are sent, never logged or shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from app.core.export import cloudevents
from app.core.export.otlp import Encoder, Finished
from app.core.export.settings import Endpoint, ExportSettings, Signal
from app.core.journeys import Journey
from app.core.simulation import CustomerResult
from app.service.protocol import Hop

RETRYABLE = frozenset({429, 502, 503, 504})  # the OTLP/HTTP specification's retryable codes
PROTOBUF = "application/x-protobuf"
CLOSE_TIMEOUT_S = 5.0


@dataclass
class Counts:
    sent: int = 0
    dropped: int = 0  # never reached the backend: queue full, batch failed, or rejected
    failed_batches: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class Codec:
    encode: Callable[[list[Finished]], bytes]
    units: Callable[[Finished], int]  # spans or records one customer makes
    content_type: str
    rejected: Callable[[bytes], int]  # partial success: how many the backend refused


class Channel:
    """One signal: its queue, its sender task, its counts."""

    def __init__(
        self, endpoint: Endpoint, codec: Codec, settings: ExportSettings, http: ClientSession
    ) -> None:
        self.endpoint = endpoint
        self.counts = Counts()
        self._codec = codec
        self._cfg = settings
        self._http = http
        self._headers = dict(endpoint.headers) | {"Content-Type": codec.content_type}
        self._items: deque[tuple[Finished, int]] = deque()
        self._queued = 0
        self._wake = asyncio.Event()
        self._closing = False
        self._sending = False
        self._task = asyncio.create_task(self._run(), name=f"export-{endpoint.display_url}")

    def offer(self, item: Finished) -> None:
        units = self._codec.units(item)
        if units == 0:
            return
        if self._closing or self._queued + units > self._cfg.max_queue:
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

    def status(self) -> dict[str, Any]:
        c = self.counts
        return {
            "endpoint": self.endpoint.display_url,
            "sent": c.sent,
            "dropped": c.dropped,
            "failedBatches": c.failed_batches,
            "lastError": c.last_error,
            "queued": self._queued,
        }

    async def aclose(self, timeout: float) -> None:
        """Send what is queued within `timeout`; what is left then is dropped and counted."""
        self._closing = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.counts.dropped += self._queued
        self._items.clear()
        self._queued = 0

    async def _run(self) -> None:
        while self._items or not self._closing:
            if self._queued < self._cfg.max_batch and not self._closing:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._cfg.schedule_delay_s)
            if self._items:
                self._sending = True
                try:
                    await self._send(*self._take())
                finally:
                    self._sending = False

    def _take(self) -> tuple[list[Finished], int]:
        batch: list[Finished] = []
        units = 0
        while self._items and (not batch or units + self._items[0][1] <= self._cfg.max_batch):
            item, n = self._items.popleft()
            batch.append(item)
            units += n
        self._queued -= units
        return batch, units

    async def _send(self, batch: list[Finished], units: int) -> None:
        body = self._codec.encode(batch)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._cfg.retry_budget_s
        backoff = self._cfg.retry_initial_s
        while True:
            error, wait = await self._post_once(body, units)
            if error is None:
                return
            if wait is None:
                wait = backoff * random.uniform(0.5, 1.0)  # jitter: retries do not align
            if self._closing or loop.time() + wait > deadline:
                break
            self.counts.last_error = f"{error} (retrying)"
            await asyncio.sleep(wait)  # backoff before the retry the protocol asks for
            backoff = min(backoff * 2, self._cfg.retry_max_s)
        self.counts.failed_batches += 1
        self.counts.dropped += units
        self.counts.last_error = error

    async def _post_once(self, body: bytes, units: int) -> tuple[str | None, float | None]:
        """(None, None) when sent; else the error and, for a retryable one, the server's wait
        (Retry-After) if it gave one. A non-retryable error comes back with wait = inf."""
        timeout = ClientTimeout(total=self._cfg.timeout_s)
        try:
            async with self._http.post(
                self.endpoint.url, data=body, headers=self._headers, timeout=timeout
            ) as resp:
                payload = await resp.read()
                if 200 <= resp.status < 300:
                    self._accepted(units, payload, resp.content_type)
                    return None, None
                error = f"HTTP {resp.status} from {self.endpoint.display_url}"
                if resp.status not in RETRYABLE:
                    return error, float("inf")
                return error, retry_after(resp.headers.get("Retry-After"))
        except (ClientError, TimeoutError, OSError) as exc:
            return f"{type(exc).__name__} sending to {self.endpoint.display_url}", None

    def _accepted(self, units: int, payload: bytes, content_type: str) -> None:
        rejected = self._codec.rejected(payload) if content_type == PROTOBUF else 0
        rejected = min(max(rejected, 0), units)
        self.counts.sent += units - rejected
        if rejected:
            self.counts.dropped += rejected
            self.counts.last_error = f"the backend rejected {rejected} of {units}"


def retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP-date), or None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _rejected_spans(payload: bytes) -> int:
    try:
        return int(ExportTraceServiceResponse.FromString(payload).partial_success.rejected_spans)
    except DecodeError:
        return 0


def _rejected_logs(payload: bytes) -> int:
    try:
        response = ExportLogsServiceResponse.FromString(payload)
        return int(response.partial_success.rejected_log_records)
    except DecodeError:
        return 0


class Exporter:
    """Open with `await Exporter.open(settings)`; hand it customers with `offer`."""

    def __init__(self, settings: ExportSettings) -> None:
        self.settings = settings
        self.channels: dict[Signal, Channel] = {}
        self._http: ClientSession | None = None
        self._encoder = Encoder(settings.service_name, settings.resource_attributes)

    @classmethod
    async def open(cls, settings: ExportSettings) -> Exporter:
        exporter = cls(settings)
        if settings.enabled:
            # Its own small connection pool: export never takes the simulator's connections.
            exporter._http = ClientSession(connector=TCPConnector(limit=len(Signal)))
            for signal in Signal:
                endpoint = settings.endpoint(signal)
                if endpoint is not None:
                    codec = exporter._codec(signal)
                    exporter.channels[signal] = Channel(endpoint, codec, settings, exporter._http)
        return exporter

    @property
    def enabled(self) -> bool:
        return bool(self.channels)

    def offer(self, journey: Journey, hops: Sequence[Hop], result: CustomerResult) -> None:
        """The simulator's hook: queue one finished customer for every signal (no waiting)."""
        if not self.channels:
            return
        first_url = str(hops[0].get("url", "")) if hops else ""
        item = Finished(journey.company_name, first_url, result, time.time_ns())
        for channel in self.channels.values():
            channel.offer(item)

    def status(self) -> dict[str, Any]:
        off = {"endpoint": None, "sent": 0, "dropped": 0, "failedBatches": 0, "lastError": None}
        return {
            signal.value: self.channels[signal].status() if signal in self.channels else off
            for signal in Signal
        }

    async def aclose(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        await asyncio.gather(*(c.aclose(timeout) for c in self.channels.values()))
        if self._http is not None:
            await self._http.close()

    def _codec(self, signal: Signal) -> Codec:
        if signal is Signal.TRACES:
            return Codec(self._encoder.traces, lambda f: f.span_count, PROTOBUF, _rejected_spans)
        if signal is Signal.LOGS:
            return Codec(self._encoder.logs, lambda f: f.log_count, PROTOBUF, _rejected_logs)
        return Codec(cloudevents.batch, lambda f: f.log_count, cloudevents.CONTENT_TYPE, _none)


def _none(payload: bytes) -> int:
    return 0
