"""Where to produce spans: the OpenTelemetry SDK in every step service, or facts returned up the
chain and encoded by the panel. Measures, per hop (one SERVER and one CLIENT span with the
attributes the panel's exporter sets), the CPU each design spends, and what importing the SDK
adds to a step service's start-up time and memory.

    .venv/bin/pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http  # bench only
    .venv/bin/python bench/span_site.py

The SDK is not a dependency of the panel; this script exists to justify that choice.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import machine, table
from bench.export import start_sink

HOPS = 20_000
SDK_IMPORTS = (
    "import opentelemetry.sdk.trace, opentelemetry.sdk.trace.export, "
    "opentelemetry.exporter.otlp.proto.http.trace_exporter"
)


def sdk_per_hop_us(base: str) -> float:
    """CPU of this process (all threads: the batch processor encodes and posts on its own)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import SpanKind, Status, StatusCode

    provider = TracerProvider(resource=Resource.create({"service.name": "Bench"}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces"), max_queue_size=HOPS * 2)
    )
    tracer = provider.get_tracer("bench")
    server_attrs = {
        "http.request.method": "POST",
        "url.path": "/process",
        "url.scheme": "http",
        "server.address": "127.0.0.1",
        "server.port": 8081,
        "bizobs.step.name": "Login",
        "bizobs.company": "Co",
        "bizobs.field.category": "a",
        "bizobs.field.description": "b",
        "bizobs.field.domain": "c",
        "bizobs.field.industryType": "d",
    }
    c0 = time.process_time()
    for i in range(HOPS):
        with tracer.start_as_current_span("POST /process", kind=SpanKind.SERVER) as server:
            server.set_attributes(server_attrs)
            server.set_attributes(
                {
                    "http.response.status_code": 200,
                    "bizobs.outcome": "success",
                    "bizobs.customer.id": f"cust-{i}",
                    "bizobs.customer.segment": "consumer",
                    "bizobs.customer.loyalty_tier": "gold",
                    "bizobs.correlation_id": "x",
                }
            )
            with tracer.start_as_current_span("POST", kind=SpanKind.CLIENT) as client:
                client.set_attributes(
                    {
                        "http.request.method": "POST",
                        "url.full": "http://127.0.0.1:8082/process",
                        "server.address": "127.0.0.1",
                        "server.port": 8082,
                        "http.response.status_code": 200,
                    }
                )
                client.set_status(Status(StatusCode.UNSET))
    provider.shutdown()  # flushes: the export thread's work is counted too
    return (time.process_time() - c0) / HOPS * 1e6


def facts_per_hop_us() -> float:
    """What a service spends in the returned-facts design: the facts dict and its JSON."""
    c0 = time.process_time()
    for i in range(HOPS):
        facts = {
            "instanceId": "0" * 32,
            "pid": 1234,
            "port": 8081,
            "startNs": time.time_ns(),
            "client": {
                "spanId": f"{i:016x}",
                "url": "http://127.0.0.1:8082/process",
                "startNs": time.time_ns(),
                "endNs": time.time_ns(),
                "httpStatus": 200,
                "error": None,
            },
            "endNs": time.time_ns(),
        }
        json.dumps({"span": facts})
    return (time.process_time() - c0) / HOPS * 1e6


def start_cost(code: str) -> tuple[float, float]:
    """Wall seconds and peak RSS MiB of a fresh interpreter running `code` (median of 5)."""
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                f"{code}; import resource, sys; "
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        runs.append((time.perf_counter() - t0, int(out.split()[-1]) / 1024))
    runs.sort()
    return runs[2]


def main() -> int:
    sink, base = start_sink()
    try:
        sdk = sdk_per_hop_us(base)
    finally:
        sink.terminate()
        sink.wait(10)
    facts = facts_per_hop_us()
    service = "import app.service.app"
    plain_s, plain_mb = start_cost(service)
    with_s, with_mb = start_cost(f"{service}; {SDK_IMPORTS}")
    print(f"\n{machine()}\n{HOPS} hops, each one SERVER + one CLIENT span\n")
    print(
        table(
            ["design", "CPU per hop, µs", "where the CPU is spent"],
            [
                ["SDK in each service", f"{sdk:.0f}", "the step services (on the hop path)"],
                ["facts returned up", f"{facts:.0f}", "the step services (on the hop path)"],
            ],
        )
    )
    print(
        "\n"
        + table(
            ["step service imports", "start s", "peak RSS MiB"],
            [
                ["app.service.app", f"{plain_s:.2f}", f"{plain_mb:.0f}"],
                ["+ OTel SDK + OTLP/HTTP exporter", f"{with_s:.2f}", f"{with_mb:.0f}"],
            ],
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
