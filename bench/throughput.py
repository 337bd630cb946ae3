"""Throughput: journeys/s and latency through a 5-step chain with no simulated work, against
a bare aiohttp 5-hop forwarding chain (bench/bare_chain.py) measured in the same run, and
against the same bare chain on the panel's own hop client ("lean": app/service/hop_client.py),
which leaves only a step's own work between the two.

    .venv/bin/python bench/throughput.py [--ports 8081-8120] [--customers 1000] [--repeats 3]
        [--traffic-rate 800] [--window 5]  (continuous traffic too, export off and on)

For each mode (multiple, batch-chained with 0 think time) and concurrency (1, 10, 50): runs the
journey `repeats` times with `customers` customers and reports medians of journeys/s, p50 and
p95 latency, plus the CPU the driver (this process) and the services used during the
simulate phase — the driver must not be the bottleneck.

With `--traffic-rate R`, continuous traffic too (open loop at R journeys/s, the generator's
own pacing and accounting): after 1 s of settling, the journeys completed per second over
`--window` seconds, against the bare chain measured right before, and the panel's CPU per
journey with export off and with traces and logs sent over OTLP/HTTP to bench/otlp_sink.py
(alternating, each `--repeats` times).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import psutil
from aiohttp import ClientSession

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.events import PhaseEvent
from app.core.model import Phase
from app.core.orchestrator import Core, open_core
from app.core.settings import LauncherKind, from_env, parse_port_range
from bench._common import machine, median, table
from bench.bare_chain import BareChain, drive

STEPS = ["Login", "Browse", "Cart", "Checkout", "Confirm"]
JOURNEY = {
    "companyName": "Throughput Co",
    "domain": "bench.example.com",
    "industryType": "Bench",
    "steps": [{"stepName": s, "serviceName": f"{s}Service"} for s in STEPS],
}


class CpuMeter:
    """CPU seconds of the driver and of the services between simulate start and end."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.driver = 0.0
        self.services = 0.0
        self._start: dict[int, float] = {}

    def __call__(self, event: PhaseEvent) -> None:
        if event.phase is not Phase.SIMULATE:
            return
        now = self._cpu()
        if event.status == "started":
            self._start = now
        elif event.status == "finished":
            me = psutil.Process().pid
            self.driver = now[me] - self._start[me]
            self.services = sum(v - self._start.get(p, v) for p, v in now.items() if p != me)

    def _cpu(self) -> dict[int, float]:
        pids = [psutil.Process().pid, *(s.pid for s in self.core.services())]
        out = {}
        for pid in pids:
            try:
                t = psutil.Process(pid).cpu_times()
                out[pid] = t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return out


async def bench(settings, customers: int, repeats: int, rate: float, window: float) -> None:
    bare_ports = list(range(settings.port_hi - 4, settings.port_hi + 1))  # the pool's top five
    async with open_core(settings) as core:
        await _bench(core, customers, repeats, settings, bare_ports)
        if rate:
            await _traffic(core, repeats, bare_ports, rate, window)


async def _traffic(core: Core, repeats: int, bare_ports, rate: float, window: float) -> None:
    from app.core.export import Exporter, ExportSettings
    from app.core.export.settings import Endpoint
    from bench.export import drained, start_sink

    first = await core.run_journey(JOURNEY)
    assert first.ok, first.error
    chain = core.chain_for(core.journeys()[-1].journey)
    body, _, _ = chain.request({"id": "bare"})
    size = await step_result_bytes(chain)
    sink, base = start_sink()
    on = ExportSettings(
        traces=Endpoint(f"{base}/v1/traces"), logs=Endpoint(f"{base}/v1/logs"), max_queue=100_000
    )
    runs: dict[str, dict[str, list[float]]] = {}
    try:
        for _ in range(repeats):
            bare, _cpu_s = await _bare(bare_ports, body, 2000, 50, size)
            lean, _cpu_s = await _bare(bare_ports, body, 2000, 50, size, "hop")
            for label, export in (("export off", ExportSettings()), ("export on", on)):
                core.exporter = await Exporter.open(export)
                jps, cpu_ms = await _traffic_window(core, rate, window)
                await drained(core.exporter)
                await core.exporter.aclose()
                row = runs.setdefault(label, {"jps": [], "bare": [], "lean": [], "cpu": []})
                row["jps"].append(jps)
                row["bare"].append(bare)
                row["lean"].append(lean)
                row["cpu"].append(cpu_ms)
                print(
                    f"  traffic {label}: {jps:.0f} journeys/s, bare {bare:.0f}, lean {lean:.0f}",
                    flush=True,
                )
    finally:
        core.exporter = Exporter(ExportSettings())
        sink.terminate()
        sink.wait(10)
        await core.stop_all()
    print(f"\ncontinuous traffic asked {rate:g} j/s, {window:g} s windows, median of {repeats}\n")
    rows = [
        [
            label,
            f"{median(v['jps']):.0f}",
            f"{median(v['bare']):.0f}",
            f"{median(v['jps']) / median(v['bare']):.2f}",
            f"{median(v['lean']):.0f}",
            f"{median(v['jps']) / median(v['lean']):.2f}",
            f"{median(v['cpu']):.2f}",
        ]
        for label, v in runs.items()
    ]
    heads = ["traffic", "journeys/s", "bare j/s", "ratio", "lean j/s", "ratio to lean"]
    print(table([*heads, "panel CPU ms/journey"], rows))


async def _traffic_window(core: Core, rate: float, window: float) -> tuple[float, float]:
    """Journeys completed per second and the panel's CPU ms per journey over one window."""
    me = psutil.Process()
    await core.start_traffic(rate)
    try:
        await asyncio.sleep(1.0)  # settling: the generator reaches its rate (a bench, not a test)
        done0, cpu0, t0 = core.traffic.status().completed, _cpu([me.pid]), time.monotonic()
        await asyncio.sleep(window)
        done, cpu1, t1 = core.traffic.status().completed, _cpu([me.pid]), time.monotonic()
    finally:
        await core.stop_traffic()
    n = max(done - done0, 1)
    return n / (t1 - t0), (cpu1 - cpu0) / n * 1000


async def step_result_bytes(chain) -> int:
    """The bytes one hop adds to the answer, read off a real customer's answer: the bare chain
    answers as many, so both chains carry the same bytes both ways."""
    body, headers, _ = chain.request({"id": "size"})
    url = chain.hops[0]["url"]
    async with ClientSession() as http, http.post(url, data=body, headers=headers) as resp:
        answer = await resp.read()
    assert resp.status == 200, answer[:200]
    return len(answer) // len(chain.hops)


async def _bare(
    ports: list[int],
    body: bytes,
    customers: int,
    concurrency: int,
    result_bytes: int,
    client: str = "aiohttp",
) -> tuple:
    with BareChain(ports, result_bytes, client) as chain:
        before = _cpu(chain.pids())
        rate = await drive(ports[0], body, customers, concurrency, client)
        return rate, _cpu(chain.pids()) - before


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        t = psutil.Process(pid).cpu_times()
        total += t.user + t.system
    return total


async def _bench(core: Core, customers: int, repeats: int, settings, bare_ports) -> None:
    meter = CpuMeter(core)
    core.events.phase.connect(meter)
    first = await core.run_journey(JOURNEY)  # launch once; every measured run reuses it
    assert first.ok, first.error
    chain = core.chain_for(core.journeys()[-1].journey)
    body, _, _ = chain.request({"id": "bare"})  # the bare chain carries as many bytes
    size = await step_result_bytes(chain)
    rows = []
    ratios = []
    leans: list[list[str]] = []
    try:
        for mode in ("multiple", "batch-chained"):
            for concurrency in (1, 10, 50):
                rates, p50s, p95s, drv, svc, ok, bare, bare_cpu = [], [], [], [], [], [], [], []
                lean, lean_cpu = [], []
                for _ in range(repeats):
                    if concurrency == 50:  # side by side: the bare chains, then ours
                        rate, cpu = await _bare(bare_ports, body, customers, concurrency, size)
                        bare.append(rate)
                        bare_cpu.append(cpu)
                        rate, cpu = await _bare(
                            bare_ports, body, customers, concurrency, size, "hop"
                        )
                        lean.append(rate)
                        lean_cpu.append(cpu)
                    result = await core.run_journey(
                        JOURNEY,
                        customers=customers,
                        mode=mode,
                        concurrency=concurrency,
                        reuse_running=True,
                    )
                    s = result.simulation.summary
                    rates.append(s.journeys_per_s)
                    p50s.append(s.p50_ms)
                    p95s.append(s.p95_ms)
                    drv.append(meter.driver)
                    svc.append(meter.services)
                    ok.append(s.success_rate)
                ratio = f"{median(rates) / median(bare):.2f}" if bare else ""
                hop_us = median(svc) / (customers * len(STEPS)) * 1e6
                bare_hop = (
                    f"{median(bare_cpu) / (customers * len(STEPS)) * 1e6:.0f}" if bare else ""
                )
                if bare:
                    lean_hop = median(lean_cpu) / (customers * len(STEPS)) * 1e6
                    ratios.append((mode, median(rates) / median(bare), hop_us / float(bare_hop)))
                    leans.append(
                        [
                            mode,
                            f"{median(rates):.0f}",
                            f"{median(lean):.0f}",
                            f"{median(rates) / median(lean):.2f}",
                            f"{hop_us:.0f}",
                            f"{lean_hop:.0f}",
                            f"{hop_us / lean_hop:.2f}×",
                        ]
                    )
                rows.append(
                    [
                        mode,
                        concurrency,
                        f"{median(rates):.0f}",
                        f"{median(bare):.0f}" if bare else "",
                        ratio,
                        f"{median(p50s):.1f}",
                        f"{median(p95s):.1f}",
                        f"{median(drv) / customers * 1000:.2f}",
                        f"{hop_us:.0f}",
                        bare_hop,
                        f"{min(ok):.0%}",
                    ]
                )
                print(f"  {mode} c={concurrency}: {median(rates):.0f} journeys/s", flush=True)
    finally:
        await core.stop_all()
    print(f"\n{machine()}")
    print(
        f"launcher {settings.launcher.value}; {customers} customers per run, median of "
        f"{repeats} runs; 5-step chain, 0 ms simulated latency; the bare chain on ports "
        f"{bare_ports[0]}-{bare_ports[-1]}, measured right before each concurrency-50 run, "
        f"each of its hops answering {size} bytes as ours do\n"
    )
    print(
        table(
            [
                "mode",
                "concurrency",
                "journeys/s",
                "bare j/s",
                "ratio",
                "p50 ms",
                "p95 ms",
                "panel CPU ms/journey",
                "service CPU µs/hop",
                "bare µs/hop",
                "success",
            ],
            rows,
        )
    )
    for mode, ratio, cpu in ratios:
        print(f"{mode}: {ratio:.2f} of the bare chain; CPU per hop {cpu:.2f}× a bare hop")
    print("\nagainst the bare chain on the hop client (lean), concurrency 50, same run\n")
    heads = ["mode", "journeys/s", "lean j/s", "ratio", "µs/hop", "lean µs/hop", "CPU ratio"]
    print(table(heads, leans))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ports", default="8081-8120")
    ap.add_argument("--customers", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--launcher", choices=["fork", "exec"], default="fork")
    ap.add_argument("--traffic-rate", type=float, default=0.0, help="continuous traffic too")
    ap.add_argument("--window", type=float, default=5.0, help="seconds of traffic measured")
    ns = ap.parse_args()
    lo, hi = parse_port_range(ns.ports)
    settings = from_env(
        port_lo=lo,
        port_hi=hi,
        essential_services=(),
        launcher=LauncherKind(ns.launcher),
        state_dir=Path(tempfile.mkdtemp(prefix="bizobs-bench-")),
    )
    asyncio.run(bench(settings, ns.customers, ns.repeats, ns.traffic_rate, ns.window))
    return 0


if __name__ == "__main__":
    sys.exit(main())
