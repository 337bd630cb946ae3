"""Soak: N consecutive journey switches with random journeys; leaks, memory and failures.

    .venv/bin/python bench/soak.py [--switches 200] [--ports 8081-8120] [--seed 1]

Runs the core in this process (this process is "the panel"). Reports leaked processes (services
of earlier journeys still alive), leaked ports (listeners in the pool that are not current
services), the panel's RSS at start and end, and failed runs. Exits 1 if anything leaked.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core import probe
from app.core.orchestrator import Core, open_core
from app.core.settings import Settings, from_env, parse_port_range
from bench._common import machine

COMPANIES = [
    "Acme Corp",
    "TechStart Inc",
    "Retail Plus",
    "First Digital Bank",
    "ShopNow",
    "SecureLife",
    "Globex",
    "Initech",
]
STEPS = [
    "Login",
    "Browse",
    "Search",
    "Cart",
    "Checkout",
    "Payment",
    "Shipping",
    "Review",
    "Signup",
    "Onboard",
    "Quote",
    "Claim",
]
MODES = ["single", "multiple", "batch-chained"]


def random_journey(rng: random.Random) -> dict:
    steps = rng.sample(STEPS, rng.randint(1, 6))
    return {
        "companyName": f"{rng.choice(COMPANIES)} {rng.randint(1, 99)}",
        "domain": "soak.example.com",
        "industryType": "Soak",
        "steps": [
            {
                "stepName": s,
                "serviceName": f"{s}Service",
                "latencyMs": rng.choice([0, 0, 5]),
                "errorRate": rng.choice([0, 0, 0.1]),
            }
            for s in steps
        ],
    }


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def soak(settings: Settings, switches: int, seed: int) -> int:
    rng = random.Random(seed)
    me = psutil.Process()
    async with open_core(settings) as core:
        return await _soak(core, settings, switches, rng, me)


async def _soak(core: Core, settings: Settings, switches: int, rng, me) -> int:
    seen: set[int] = set()
    leaked_procs: set[int] = set()
    leaked_ports: set[int] = set()
    failed = 0
    rss_start = 0.0
    t0 = time.perf_counter()
    try:
        for i in range(switches):
            customers = rng.randint(1, 5)
            result = await core.run_journey(
                random_journey(rng),
                customers=customers,
                mode=rng.choice(MODES) if customers > 1 else "single",
            )
            failed += not result.ok
            live = {s.pid for s in core.services()}
            leaked_procs |= {p for p in seen - live if alive(p)}
            seen |= live
            ours = {s.port for s in core.services()}
            leaked_ports |= set(probe.scan_listeners(settings.ports)) - ours
            if i == 0:
                rss_start = me.memory_info().rss / 2**20
            if (i + 1) % 50 == 0:
                print(f"  {i + 1} switches, {time.perf_counter() - t0:.1f} s", flush=True)
        rss_end = me.memory_info().rss / 2**20
    finally:
        await core.stop_all()
    after = [p for p in seen if alive(p)]
    left_ports = probe.scan_listeners(settings.ports)
    print(f"\n{machine()}")
    print(f"launcher: {settings.launcher.value}, ports {settings.port_lo}-{settings.port_hi}")
    print(f"switches: {switches} in {time.perf_counter() - t0:.1f} s, failed runs: {failed}")
    print(f"services started: {len(seen)}")
    print(f"leaked processes: {len(leaked_procs)} during, {len(after)} after stop-all")
    print(f"leaked ports: {len(leaked_ports)} during, {len(left_ports)} after stop-all")
    print(
        f"panel RSS: {rss_start:.1f} MiB after the first switch, {rss_end:.1f} MiB at the end "
        f"(growth {rss_end - rss_start:+.1f} MiB)"
    )
    return 1 if leaked_procs or leaked_ports or after or left_ports else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--switches", type=int, default=200)
    ap.add_argument("--ports", default="8081-8120")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--launcher", choices=["fork", "exec"], default=None)
    ns = ap.parse_args()
    lo, hi = parse_port_range(ns.ports)
    overrides: dict[str, object] = {
        "port_lo": lo,
        "port_hi": hi,
        "state_dir": Path(tempfile.mkdtemp(prefix="bizobs-soak-")),
    }
    if ns.launcher:
        from app.core.settings import LauncherKind

        overrides["launcher"] = LauncherKind(ns.launcher)
    return asyncio.run(soak(from_env(**overrides), ns.switches, ns.seed))


if __name__ == "__main__":
    sys.exit(main())
