"""Traffic: the first customers after a switch vs steady state (warm-up off and on), and the
generator's rate accuracy.

    .venv/bin/python bench/traffic.py --ports 8291-8310 [--repeats 5] [--no-warm-only]

Warm-up rows: each repeat switches to a 5-step journey of another company (no simulated
latency, so the chain's own costs show) and runs the first `--customers` customers right after
the launch (closed loop, concurrency 10): their journeys/s, then the same number again on the
same services (`reuse_running`: steady state). Medians over the repeats and the ratio
first/steady, with warming off (`Core.warm_up = False`) and on, in one run.

Rate rows: traffic at each rate for `--window` seconds after one second of settling; the
journeys sent per second over the window against the rate asked for.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.orchestrator import Core, open_core
from app.core.settings import LauncherKind, Settings, parse_port_range
from bench._common import machine, median, table

STEPS = ["Login", "Browse", "Cart", "Checkout", "Confirm"]


def journey(company: str) -> dict[str, Any]:
    return {
        "companyName": company,
        "domain": "example.com",
        "industryType": "Retail",
        "steps": [{"stepName": s, "serviceName": f"{s}Service"} for s in STEPS],
    }


async def first_vs_steady(core: Core, company: str, customers: int) -> tuple[float, float]:
    kw: dict[str, Any] = {"customers": customers, "mode": "multiple", "concurrency": 10}
    first = await core.run_journey(journey(company), **kw)
    steady = await core.run_journey(journey(company), reuse_running=True, **kw)
    if not (first.ok and steady.ok and first.simulation and steady.simulation):
        raise SystemExit(f"run failed: {first.error or steady.error}")
    return first.simulation.summary.journeys_per_s, steady.simulation.summary.journeys_per_s


async def warm_rows(settings: Settings, repeats: int, customers: int) -> list[list[object]]:
    rows: list[list[object]] = []
    async with open_core(settings) as core:
        await first_vs_steady(core, "Warmup Co", customers)  # the fork server is up
        for warm in (False, True):
            core.warm_up = warm
            firsts, steadies, ratios = [], [], []
            for i in range(repeats):
                first, steady = await first_vs_steady(core, f"Co{int(warm)}x{i}", customers)
                firsts.append(first)
                steadies.append(steady)
                ratios.append(first / steady)
            rows.append(
                [
                    "on" if warm else "off",
                    median(firsts),
                    median(steadies),
                    f"{median(ratios):.0%}",
                    f"{min(ratios):.0%}",
                ]
            )
        await core.stop_all()
    return rows


async def rate_rows(settings: Settings, rates: list[float], window: float) -> list[list[object]]:
    rows: list[list[object]] = []
    async with open_core(settings) as core:
        result = await core.run_journey(journey("Rate Co"))
        if not result.ok:
            raise SystemExit(f"run failed: {result.error}")
        for rate in rates:
            await core.start_traffic(rate)
            await asyncio.sleep(1.0)  # settling: the measurement window starts after it
            t0, s0 = time.monotonic(), core.traffic.status().sent
            await asyncio.sleep(window)  # the measurement window itself
            t1, status = time.monotonic(), core.traffic.status()
            sent_rate = (status.sent - s0) / (t1 - t0)
            final = await core.stop_traffic()
            rows.append(
                [
                    rate,
                    round(sent_rate, 2),
                    f"{sent_rate / rate - 1:+.1%}",
                    "yes" if status.behind else "no",
                    round(final.p50_ms, 1),
                    round(final.p95_ms, 1),
                    final.failed,
                ]
            )
        await core.stop_all()
    return rows


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ports", default="8081-8120")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--customers", type=int, default=50)
    ap.add_argument("--rates", default="5,20,100,300")
    ap.add_argument("--window", type=float, default=5.0)
    ap.add_argument("--launcher", choices=["fork", "exec"], default="fork")
    ns = ap.parse_args()
    lo, hi = parse_port_range(ns.ports)
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            port_lo=lo,
            port_hi=hi,
            state_dir=Path(tmp),
            launcher=LauncherKind(ns.launcher),
            essential_services=(),
            api_enabled=False,
        )
        warm = await warm_rows(settings, ns.repeats, ns.customers)
        print(f"\nfirst {ns.customers} customers after a switch vs steady ({ns.repeats} repeats)")
        print(
            table(["warm-up", "first j/s", "steady j/s", "first/steady", "worst"], warm),
        )
        rates = [float(r) for r in ns.rates.split(",")]
        acc = await rate_rows(settings, rates, ns.window)
        print(f"\ntraffic rate accuracy ({ns.window:g} s window after 1 s)")
        print(
            table(["asked j/s", "sent j/s", "error", "behind", "p50 ms", "p95 ms", "failed"], acc)
        )


if __name__ == "__main__":
    asyncio.run(main())
