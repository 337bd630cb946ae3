"""The export settings' connection test (docs/architecture.md, "Export"): one empty OTLP trace
export POSTed to the traces endpoint the values give, answered in plain words.

It lives in the core, free of Qt, so the dialog only shows what it says: "ok · 12 ms from …",
"HTTP 404 from …", "connection refused at …". Header values never appear in the answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import ClientError, ClientSession, ClientTimeout
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from app.core.export.agent import USER_AGENT
from app.core.export.channel import PROTOBUF
from app.core.export.failures import plain_failure
from app.core.export.saved import TRACES_EXPORTER, ExportForm
from app.core.export.settings import Endpoint, ExportSettings, ExportSettingsError

TEST_TIMEOUT_S = 5.0  # the test answers within this, whatever the backend does


@dataclass(frozen=True, slots=True)
class ConnectionCheck:
    """What one connection test found."""

    ok: bool  # the endpoint answered 2xx
    message: str  # plain words, naming the endpoint's display URL (never a header value)
    status: int | None = None  # the HTTP status, when something answered


async def check_values(
    form: ExportForm, values: Mapping[str, str], timeout_s: float = TEST_TIMEOUT_S
) -> ConnectionCheck:
    """Test the traces endpoint `values` give under the environment (it wins, as on Save)."""
    try:
        endpoint = traces_endpoint(form, values)
    except ExportSettingsError as exc:  # names the variable at fault, never its value
        return ConnectionCheck(False, str(exc))
    if endpoint is None:
        return ConnectionCheck(False, "no endpoint to test: enter one first")
    return await check_connection(endpoint, timeout_s)


def traces_endpoint(form: ExportForm, values: Mapping[str, str]) -> Endpoint | None:
    """The traces endpoint of `values` (ExportSettingsError when they do not parse). Traces
    switched off still has a URL worth testing."""
    probe = form.merged(values) | {TRACES_EXPORTER: "otlp"}
    return ExportSettings.from_env(probe).traces


async def check_connection(
    endpoint: Endpoint, timeout_s: float = TEST_TIMEOUT_S
) -> ConnectionCheck:
    """POST an empty trace export to `endpoint` with its headers, bounded by `timeout_s`."""
    shown = endpoint.display_url
    t0 = time.perf_counter()
    try:
        status = await _post(endpoint, timeout_s)
    except (ClientError, TimeoutError, OSError) as exc:
        return ConnectionCheck(False, plain_failure(exc, shown, timeout_s))
    ms = (time.perf_counter() - t0) * 1000
    return ConnectionCheck(200 <= status < 300, _answered(status, shown, ms), status)


async def _post(endpoint: Endpoint, timeout_s: float) -> int:
    headers = dict(endpoint.headers) | {"Content-Type": PROTOBUF, "User-Agent": USER_AGENT}
    async with (
        asyncio.timeout(timeout_s),
        ClientSession() as http,
        http.post(
            endpoint.url,
            data=ExportTraceServiceRequest().SerializeToString(),
            headers=headers,
            timeout=ClientTimeout(total=timeout_s),
            # As the exporter: a redirect would carry the header secrets elsewhere.
            allow_redirects=False,
        ) as resp,
    ):
        await resp.read()
        return resp.status


def _answered(status: int, shown: str, ms: float) -> str:
    if 200 <= status < 300:
        return f"ok · {ms:.0f} ms from {shown}"
    if 300 <= status < 400:
        return f"HTTP {status} from {shown}: redirects are not followed, set the final URL"
    return f"HTTP {status} from {shown}"
