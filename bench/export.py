"""Export on vs off: journeys/s of a 5-step chain, and the panel's CPU per exported span.

    .venv/bin/python bench/export.py [--ports 8081-8120] [--customers 1000] [--repeats 5]
    .venv/bin/python bench/export.py --encoder [--customers 5000] [--repeats 9] [--against REV]
    .venv/bin/python bench/export.py --metrics [--ports 8081-8120] [--customers 1000] [--repeats 5]

One panel core, one set of services; runs alternate off/on (so drift hits both) with the same
journey, mode `multiple`, concurrency 10. "On" exports traces and logs over OTLP/HTTP protobuf
to a local receiver in its own process (bench/otlp_sink.py, which decodes every request). Panel
CPU is this process's user+system time from the start of the run until every span of it has
been answered by the receiver; CPU per span = (median on - median off) / spans per run.

`--metrics` measures what OTLP metrics add, in one run: the same runs alternate between an
exporter of traces and logs and one of traces, logs and metrics (a collection every second,
the shortest interval the settings allow, so the most collections per customer). Each run
opens its exporter, runs, and closes it (which sends what is queued and, with metrics, makes
the last collection); panel CPU from the open to the close, per finished customer, medians.
Then one collection (registry read with its port scan, plus the services' histograms) and its
encoding are timed on their own.

`--encoder` measures the encoder alone (no services, no network), in one process: the same
5-step customers encoded with templates keyed per hop only (before: a long-lived service kept
exporting the first journey's business fields) and keyed by the fields they hold too (today);
runs alternate, CPU time per span and per log record, medians. With `--against REV`, that git
revision's encoder (its app/core/export/otlp.py) against today's instead.
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
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.export import Exporter, ExportSettings
from app.core.export.meters import ServerDurations
from app.core.export.otlp import Encoder, Finished
from app.core.export.settings import Endpoint
from app.core.orchestrator import open_core
from app.core.settings import LauncherKind, from_env, parse_port_range
from app.core.simulation import Customer, CustomerResult, StepResult
from app.service.trace import new_span_id, new_trace_id
from bench._common import machine, median, module_at, table
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


async def metrics_bench(settings, customers: int, repeats: int, base: str) -> None:
    variants = {
        "traces + logs": ExportSettings(
            traces=Endpoint(f"{base}/v1/traces"),
            logs=Endpoint(f"{base}/v1/logs"),
            max_queue=100_000,  # the bench measures cost, not drops
        ),
    }
    variants["traces + logs + metrics"] = replace(
        variants["traces + logs"], metrics=Endpoint(f"{base}/v1/metrics"), metric_interval_s=1.0
    )
    cpu_s: dict[str, list[float]] = {k: [] for k in variants}
    jps: dict[str, list[float]] = {k: [] for k in variants}
    dropped = 0
    async with open_core(settings, export=ExportSettings()) as core:
        try:
            # Warm-up, not measured: the fork server's start and the first launch.
            await core.run_journey(JOURNEY, customers=10, mode="multiple", concurrency=10)
            for r in range(repeats):
                for label, export in variants.items():
                    c0 = cpu()
                    exporter = core.exporter = await Exporter.open(export)
                    exporter.read_panel_metrics(core.metrics.registry)
                    result = await core.run_journey(
                        JOURNEY, customers=customers, mode="multiple", concurrency=10
                    )
                    await exporter.aclose()
                    cpu_s[label].append(cpu() - c0)
                    dropped += sum(int(s["dropped"]) for s in exporter.status().values())
                    jps[label].append(result.simulation.summary.journeys_per_s)
                    print(f"  run {r + 1} {label}: {cpu_s[label][-1]:.2f} s CPU", flush=True)
            collect_us, encode_us, points = collection_cost(exporter)
        finally:
            core.exporter = Exporter(ExportSettings())
            await core.stop_all()
    counts = sink_counts(base)
    print(f"\n{machine()}")
    print(
        f"launcher {settings.launcher.value}; {customers} customers per run of a 5-step chain, "
        f"mode multiple, concurrency 10, 0 ms simulated latency; median of {repeats} runs each, "
        "alternating; metrics collected every 1 s\n"
    )
    rows = [
        [
            label,
            f"{median(jps[label]):.0f}",
            f"{median(cpu_s[label]):.3f}",
            f"{median(cpu_s[label]) / customers * 1e6:.0f}",
        ]
        for label in variants
    ]
    print(table(["export", "journeys/s", "panel CPU s/run", "CPU µs per customer"], rows))
    base_cpu, with_cpu = (median(cpu_s[k]) for k in variants)
    print(f"\nmetrics add {(with_cpu - base_cpu) / customers * 1e6:.1f} µs CPU per customer")
    record = record_cost(customers, repeats)
    print(f"folding one customer's 5 SERVER spans into the histograms: {record:.1f} µs CPU")
    print(
        f"one collection: {collect_us:.0f} µs to collect ({points} data points, the port "
        f"scan included), {encode_us:.0f} µs to encode; medians of 21"
    )
    print(
        f"dropped {dropped}; the receiver decoded {counts['spans']} spans, {counts['logs']} "
        f"log records, {counts['points']} metric data points"
    )


def record_cost(customers: int, repeats: int) -> float:
    """Median µs of `ServerDurations.record` per finished 5-hop customer (no services)."""
    items = synthetic_customers(customers)
    runs = []
    for _ in range(repeats):
        durations = ServerDurations()
        durations.record(items[0])  # the series exist: the steady state
        t0 = time.process_time()
        for item in items:
            durations.record(item)
        runs.append((time.process_time() - t0) / customers * 1e6)
    return median(runs)


def collection_cost(exporter: Exporter) -> tuple[float, float, int]:
    """Median µs of one collection and of its encoding, on the last exporter's meter (the
    run's five service processes and the panel's registry)."""
    collect, encode = [], []
    points = 0
    for _ in range(21):
        t0 = time.process_time()
        collected = exporter.meter.collect()
        t1 = time.process_time()
        exporter.meter.encode([collected])
        t2 = time.process_time()
        collect.append((t1 - t0) * 1e6)
        encode.append((t2 - t1) * 1e6)
        points = collected.points
    return median(collect), median(encode), points


class HopTemplates(Encoder):
    """The encoder before: templates keyed per hop only, not by the business fields they hold
    (so a long-lived service kept the first journey's)."""

    def _fields_key(self, fields: dict[str, Any]) -> Any:
        return ""


def synthetic_customers(n: int, steps: int = 5) -> list[Finished]:
    """n finished customers through `steps` hops, shaped as the step services answer (span
    facts with a CLIENT call to the next hop, a business event with five fields)."""
    out = []
    now = time.time_ns()
    for i in range(n):
        parent = root = new_span_id()
        hops = []
        for k in range(steps):
            span_id = new_span_id()
            facts = {"instanceId": f"inst-{k}", "pid": 1000 + k, "port": 8081 + k}
            facts |= {"startNs": now, "endNs": now + 1_000_000}
            if k < steps - 1:
                facts["client"] = {
                    "spanId": new_span_id(),
                    "url": f"http://127.0.0.1:{8082 + k}/process",
                    "startNs": now,
                    "endNs": now + 900_000,
                    "httpStatus": 200,
                    "error": None,
                }
            fields = {
                "category": "checkout",
                "description": f"Step {k} of the bench journey",
                "domain": "bench.example.com",
                "industryType": "Bench",
                "channel": "web",
            }
            event = {"step": f"Step{k}", "outcome": "success", "errorType": None}
            event |= {"durationMs": 0.5, "fields": fields, "timestamp": now / 1e9}
            hops.append(
                StepResult(
                    f"Step{k}",
                    f"Step{k}Service",
                    "ok",
                    200,
                    0.5,
                    None,
                    span_id,
                    parent,
                    event,
                    facts,
                )
            )
            parent = facts.get("client", {}).get("spanId", span_id)
        customer = Customer(f"cust-{i:05d}", "Ava Smith", "a@b.example", "consumer", "gold")
        result = CustomerResult(customer, new_trace_id(), root, f"corr-{i}", tuple(hops), 5.0, now)
        out.append(Finished("Bench Co", "http://127.0.0.1:8081/process", result, now))
    return out


def encoder_bench(customers: int, repeats: int, against: str | None) -> None:
    items = synthetic_customers(customers)
    spans = sum(f.span_count for f in items)
    records = sum(f.log_count for f in items)
    batches = [items[i : i + 50] for i in range(0, len(items), 50)]  # ~512 spans per batch
    variants: dict[str, Any] = {
        "before: keyed per hop": HopTemplates,
        "after: keyed by its fields too": Encoder,
    }
    if against:  # that revision's encoder against today's, not the template keys
        with tempfile.TemporaryDirectory() as tmp:
            then = module_at(against, "app/core/export/otlp.py", Path(tmp))
        variants = {f"{against}": then.Encoder, "today": Encoder}
    runs: dict[str, dict[str, list[float]]] = {k: {"span": [], "log": []} for k in variants}
    for _ in range(repeats):
        for label, cls in variants.items():
            encoder = cls("bizobs-panel", ())
            encoder.traces(batches[0])  # templates and resources made: the steady state
            encoder.logs(batches[0])
            t0 = time.process_time()
            for batch in batches:
                encoder.traces(batch)
            t1 = time.process_time()
            for batch in batches:
                encoder.logs(batch)
            t2 = time.process_time()
            runs[label]["span"].append((t1 - t0) / spans * 1e6)
            runs[label]["log"].append((t2 - t1) / records * 1e6)
    print(f"\n{machine()}")
    print(
        f"{customers} customers of 5 hops ({spans} spans, {records} log records) per run, "
        f"batches of 50 customers, median of {repeats} runs each, alternating\n"
    )
    rows = [
        [label, f"{median(v['span']):.2f}", f"{median(v['log']):.2f}"] for label, v in runs.items()
    ]
    print(table(["encoder", "CPU µs per span", "CPU µs per log record"], rows))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ports", default="8081-8120")
    ap.add_argument("--customers", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--encoder", action="store_true", help="the encoder alone, before/after")
    ap.add_argument("--metrics", action="store_true", help="CPU with and without OTLP metrics")
    ap.add_argument("--against", help="with --encoder: a git revision's encoder against today's")
    ns = ap.parse_args()
    if ns.encoder:
        encoder_bench(ns.customers, ns.repeats, ns.against)
        return 0
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
        chosen = metrics_bench if ns.metrics else bench
        asyncio.run(chosen(settings, ns.customers, ns.repeats, base))
    finally:
        sink.terminate()
        sink.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
