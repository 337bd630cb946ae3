"""The export pipeline: bounded queues, batches, retries, counted losses, never on the hop path.

The simulator hands each finished customer to `Exporter.offer` (synchronous, O(1): it only
queues). One sender per signal (app/core/export/channel.py) takes batches off its queue,
encodes them and POSTs them with the panel's event loop; no threads. A full queue drops the
newest items and counts them; a batch is retried on 429/502/503/504 and on connection errors
as app/core/export/retry.py says, within a time budget, then counted as failed, and so is a
batch that fails in any other way. Nothing here can block or fail a journey, and nothing a
batch does can stop a sender. Header values (secrets) are sent, never logged or shown.

Metrics take the same road: `offer` folds the customer's SERVER span facts into cumulative
histograms (app/core/export/meters.py), a task of ours collects them with the panel's registry
every metric_interval_s into the metrics channel, and closing makes one last collection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from aiohttp import ClientSession, TCPConnector
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from prometheus_client import CollectorRegistry

from app.core.export import cloudevents, meters
from app.core.export.agent import USER_AGENT
from app.core.export.channel import PROTOBUF, Channel, Codec
from app.core.export.meters import Collected, Meter
from app.core.export.otlp import Encoder, Finished
from app.core.export.settings import Endpoint, EventsMode, ExportSettings, Signal
from app.core.journeys import Journey
from app.core.simulation import CustomerResult
from app.service.protocol import Hop

__all__ = ["PROTOBUF", "Exporter"]
CLOSE_TIMEOUT_S = 5.0
OFF = {
    "endpoint": None,
    "state": "off",
    "sent": 0,
    "dropped": 0,
    "failedBatches": 0,
    "lastError": None,
    "lastErrorAt": None,
}
log = logging.getLogger(__name__)
T = TypeVar("T")


class Exporter:
    """Open with `await Exporter.open(settings)` (it starts one sender task per signal), hand
    it customers with `offer`, and close it with `await aclose()` (it awaits them)."""

    def __init__(self, settings: ExportSettings) -> None:
        self.settings = settings
        self.channels: dict[Signal, Channel[Any]] = {}
        self._customers: list[Channel[Finished]] = []  # the signals made of finished customers
        self._metrics: Channel[Collected] | None = None
        self._senders: list[asyncio.Task[None]] = []
        self._ticker: asyncio.Task[None] | None = None
        self._http: ClientSession | None = None
        self._encoder = Encoder(settings.service_name, settings.resource_attributes)
        self.meter = Meter(self._encoder)

    @classmethod
    async def open(cls, settings: ExportSettings) -> Exporter:
        exporter = cls(settings)
        if settings.enabled:
            # Its own small connection pool: export never takes the simulator's connections.
            exporter._http = ClientSession(
                connector=TCPConnector(limit=len(Signal)), headers={"User-Agent": USER_AGENT}
            )
            for signal in Signal:
                endpoint = settings.endpoint(signal)
                if endpoint is not None:
                    exporter._start(signal, exporter._channel(signal, endpoint))
            if exporter._metrics is not None:
                ticker = exporter._tick(exporter._metrics)
                exporter._ticker = asyncio.create_task(ticker, name="export-metrics-collect")
        return exporter

    def _channel(self, signal: Signal, endpoint: Endpoint) -> Channel[Any]:
        assert self._http is not None
        if signal is Signal.METRICS:
            self._metrics = Channel(endpoint, self._metrics_codec(), self.settings, self._http)
            return self._metrics
        channel = Channel(endpoint, self._codec(signal), self.settings, self._http)
        self._customers.append(channel)
        return channel

    def _start(self, signal: Signal, channel: Channel[Any]) -> None:
        self.channels[signal] = channel
        name = f"export-{signal.value}"
        self._senders.append(asyncio.create_task(channel.run(), name=name))

    @property
    def enabled(self) -> bool:
        return bool(self.channels)

    def offer(self, journey: Journey, hops: Sequence[Hop], result: CustomerResult) -> None:
        """The simulator's hook: queue one finished customer for every signal (no waiting)."""
        if not self.channels:
            return
        first_url = str(hops[0].get("url", "")) if hops else ""
        item = Finished(journey.company_name, first_url, result, time.time_ns())
        for channel in self._customers:
            channel.offer(item)
        if self._metrics is not None:
            self.meter.record(item)  # aggregated now: a collection copies totals, not customers

    def read_panel_metrics(self, registry: CollectorRegistry) -> None:
        """Send the panel's cleanup metrics from `registry` (the Core's) with each collection."""
        self.meter.registry = registry

    def status(self) -> dict[str, Any]:
        out = {
            signal.value: self.channels[signal].status() if signal in self.channels else OFF
            for signal in Signal
        }
        if self._metrics is not None:
            out[Signal.METRICS.value]["observationsDropped"] = self.meter.durations.dropped
        return out

    async def _tick(self, channel: Channel[Collected]) -> None:
        """A collection every metric_interval_s, until cancelled by aclose."""
        while True:
            await asyncio.sleep(self.settings.metric_interval_s)  # the export period
            self._collect(channel)

    def _collect(self, channel: Channel[Collected]) -> None:
        try:
            channel.offer(self.meter.collect())
        except Exception as exc:  # a registry that cannot be read: this collection only
            log.exception("metrics collection failed")
            channel.note(f"could not collect metrics: {type(exc).__name__}: {exc}")

    async def aclose(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Send what is queued within `timeout`; what is left then is dropped and counted.
        Raises nothing a sender did; the HTTP session is closed whatever happens."""
        try:
            if self._ticker is not None and self._metrics is not None:
                self._ticker.cancel()
                await asyncio.gather(self._ticker, return_exceptions=True)
                self._collect(self._metrics)  # the last interval's, as the SDK's reader does
            for channel in self.channels.values():
                channel.close()
            if self._senders:
                _, late = await asyncio.wait(self._senders, timeout=timeout)
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
                for task in self._senders:
                    if not task.cancelled() and (exc := task.exception()) is not None:
                        log.error("export sender %s ended", task.get_name(), exc_info=exc)
            for channel in self.channels.values():
                channel.discard()
        finally:
            for task in [*self._senders, *filter(None, [self._ticker])]:
                task.cancel()  # only those still running, when the close itself was cancelled
            if self._http is not None:
                with contextlib.suppress(Exception):
                    await self._http.close()

    def _metrics_codec(self) -> Codec[Collected]:
        encode = _whole(self.meter.encode, meters.units)
        return Codec(encode, meters.units, PROTOBUF, meters.rejected, "data points")

    def _codec(self, signal: Signal) -> Codec[Finished]:
        if signal is Signal.TRACES:
            encode, units, rejected = self._encoder.traces, _spans, _rejected_spans
            return Codec(_whole(encode, units), units, PROTOBUF, rejected, "spans")
        if signal is Signal.LOGS:
            encode, units, rejected = self._encoder.logs, _logs, _rejected_logs
            return Codec(_whole(encode, units), units, PROTOBUF, rejected, "log records")
        if self.settings.bizevents_mode == EventsMode.STRUCTURED:
            content_type = cloudevents.STRUCTURED_CONTENT_TYPE
            return Codec(cloudevents.structured, _logs, content_type, _none, "events")
        encode_batch = _whole(cloudevents.batch, _logs)
        return Codec(encode_batch, _logs, cloudevents.CONTENT_TYPE, _none, "events")


def _whole(
    encode: Callable[[list[T]], bytes], units: Callable[[T], int]
) -> Callable[[list[T]], list[tuple[bytes, int]]]:
    """A codec's encode for a format that sends a batch as one request body."""

    def one_body(batch: list[T]) -> list[tuple[bytes, int]]:
        return [(encode(batch), sum(units(item) for item in batch))]

    return one_body


def _spans(item: Finished) -> int:
    return item.span_count


def _logs(item: Finished) -> int:
    return item.log_count


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


def _none(payload: bytes) -> int:
    return 0
