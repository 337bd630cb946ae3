"""Export on vs off: journeys/s of a 5-step chain, and the panel's CPU per exported span.

    .venv/bin/python bench/export.py [--ports 8081-8120] [--customers 1000] [--repeats 5]

One panel core, one set of services; runs alternate off/on (so drift hits both) with the same
journey, mode `multiple`, concurrency 10. "On" exports traces and logs over OTLP/HTTP protobuf
to a local receiver in its own process (bench/otlp_sink.py, which decodes every request). Panel
CPU is this process's user+system time from the start of the run until every span of it has
been answered by the receiver; CPU per span = (median on - median off) / spans per run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import LauncherKind, from_env, parse_port_range
from app.core.export import Exporter, ExportSettings
from app.core.export.settings import Endpoint
from app.core.orchestrator import open_core
from bench._common import machine, median, table
from bench.throughput import JOURNEY

HERE = Path(__file__).resolve().parent
DRAIN_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sink_counts(base: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{base}/count", timeout=5) as resp:
        return json.loads(resp.read())


def start_sink() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(HERE / "otlp_sink.py"), str(port)])
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:  # bounded: the sink answers /count once it listens
        try:
            sink_counts(base)
            return proc, base
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("the OTLP sink did not start") from None
            time.sleep(0.05)


async def drained(exporter: Exporter) -> None:
    """Every queued span and record answered (sent or dropped) — bounded."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while any(c.busy for c in exporter.channels.values()):
        if time.monotonic() > deadline:
            raise TimeoutError("export did not drain")
        await asyncio.sleep(0.02)


def cpu() -> float:
    t = psutil.Process().cpu_times()
    return t.user + t.system


async def bench(settings, customers: int, repeats: int, base: str) -> None:
    export = ExportSettings(
        traces=Endpoint(f"{base}/v1/traces"),
        logs=Endpoint(f"{base}/v1/logs"),
        max_queue=100_000,  # the bench measures cost, not drops
    )
    async with open_core(settings, export=export) as core:
        exporters = {"off": Exporter(ExportSettings()), "on": core.exporter}
        runs: dict[str, dict[str, list[float]]] = {
            k: {"jps": [], "p50": [], "p95": [], "cpu": []} for k in exporters
        }
        spans_per_run = customers * (1 + 5 + 4)
        try:
            for r in range(repeats):
                for label, exporter in exporters.items():
                    core.exporter = exporter
                    c0 = cpu()
                    result = await core.run_journey(
                        JOURNEY, customers=customers, mode="multiple", concurrency=10
                    )
                    await drained(exporter)
                    used = cpu() - c0
                    s = result.simulation.summary
                    for key, v in (("jps", s.journeys_per_s), ("p50", s.p50_ms), ("p95", s.p95_ms)):
                        runs[label][key].append(v)
                    runs[label]["cpu"].append(used)
                    print(f"  run {r + 1} {label}: {s.journeys_per_s:.0f} journeys/s", flush=True)
        finally:
            core.exporter = exporters["on"]
            await core.stop_all()
        status = exporters["on"].status()
        counts = sink_counts(base)
        off, on = (runs[k] for k in ("off", "on"))
        per_span_us = (median(on["cpu"]) - median(off["cpu"])) / spans_per_run * 1e6
        rows = [
            [
                k,
                f"{median(v['jps']):.0f}",
                f"{median(v['p50']):.1f}",
                f"{median(v['p95']):.1f}",
                f"{median(v['cpu']):.2f}",
            ]
            for k, v in runs.items()
        ]
        print(f"\n{machine()}")
        print(
            f"launcher {settings.launcher.value}; {customers} customers per run, mode multiple, "
            f"concurrency 10, median of {repeats} runs each; 5-step chain, 0 ms simulated latency\n"
        )
        print(table(["export", "journeys/s", "p50 ms", "p95 ms", "panel CPU s/run"], rows))
        ratio = median(on["jps"]) / median(off["jps"])
        print(f"\nexport on keeps {ratio:.0%} of export-off journeys/s")
        print(f"panel CPU per exported span (logs included): {per_span_us:.1f} µs")
        print(
            f"exported: traces sent {status['traces']['sent']}, dropped "
            f"{status['traces']['dropped']}; logs sent {status['logs']['sent']}, dropped "
            f"{status['logs']['dropped']}; the receiver decoded {counts['spans']} spans and "
            f"{counts['logs']} log records (expected {spans_per_run * repeats} and "
            f"{customers * 5 * repeats})"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ports", default="8081-8120")
    ap.add_argument("--customers", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ns = ap.parse_args()
    lo, hi = parse_port_range(ns.ports)
    settings = from_env(
        port_lo=lo,
        port_hi=hi,
        essential_services=(),
        launcher=LauncherKind.FORK,
        state_dir=Path(tempfile.mkdtemp(prefix="bizobs-bench-")),
    )
    sink, base = start_sink()
    try:
        asyncio.run(bench(settings, ns.customers, ns.repeats, base))
    finally:
        sink.terminate()
        sink.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
