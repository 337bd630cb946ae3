"""Journey switch: stop N + wait + sweep + launch N ready, both launchers side by side.

Each row alternates two N-step journeys of different companies through `Core.run_journey`
(customers=1, no essential services, demo pacing 0), so every run stops N services and starts
N new ones; the phases are the run's own phase durations, medians over the repeats (a warm-up
run first, so the fork server is already up). The "write-up policy" row is the replaced
system's cleanup for reference: SIGTERM, a fixed 1000 ms wait, sweep, then one fresh
interpreter started at a time, each awaited ready before the next.

    .venv/bin/python bench/switch.py --ports 8201-8240 --sizes 1,5,10,20,40 --repeats 7
        [--start-gates 8,40]   (one row per gate: how many starts are in flight at once)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.model import Phase, ServiceSpec
from app.core.orchestrator import Core, open_core
from app.core.services import START_CONCURRENCY
from app.core.settings import LauncherKind, Settings, parse_port_range
from bench._common import machine, median, table

SWITCH_PHASES = (Phase.STOP, Phase.WAIT, Phase.SWEEP, Phase.LAUNCH)
WRITEUP_WAIT_S = 1.0  # the replaced system's fixed "wait for services to stop"
Timings = dict[str, float]  # phase name (and "switch", "simulate") -> milliseconds


def journey(company: str, n: int) -> dict[str, Any]:
    steps = [{"stepName": f"Step{i}", "serviceName": f"Step{i}Service"} for i in range(n)]
    return {
        "companyName": company,
        "domain": "example.com",
        "industryType": "Retail",
        "steps": steps,
    }


def settings(kind: LauncherKind, ports: range, state_dir: Path) -> Settings:
    return Settings(
        port_lo=ports.start,
        port_hi=ports.stop - 1,
        state_dir=state_dir,
        launcher=kind,
        essential_services=(),
        api_enabled=False,
    )


async def core_switch(core: Core, company: str, n: int) -> Timings:
    result = await core.run_journey(journey(company, n), customers=1)
    if not result.ok:
        raise SystemExit(f"run failed: {result.error}")
    ms = {p.phase.value: p.duration_ms for p in result.phases}
    ms["switch"] = sum(ms[p.value] for p in SWITCH_PHASES)
    return ms


async def writeup_switch(core: Core, company: str, n: int) -> Timings:
    """The write-up's policy, driven through the same manager (no pool or ledger shortcuts)."""
    manager, ms = core.manager, {}
    keys = manager.customer_keys()

    async def timed(name: str, work: Callable[[], Awaitable[object]]) -> None:
        t0 = time.perf_counter()
        await work()
        ms[name] = (time.perf_counter() - t0) * 1000

    async def stop() -> None:
        await manager.request_stop(keys)

    async def wait() -> None:
        await asyncio.sleep(WRITEUP_WAIT_S)  # deliberate: this row measures a fixed wait
        await manager.wait_stopped(keys)

    async def launch() -> None:
        for i in range(n):
            await manager.start(ServiceSpec(f"Step{i}Service", company), "writeup")

    await timed("stop", stop)
    await timed("wait", wait)
    await timed("sweep", manager.sweep)
    await timed("launch", launch)
    ms["switch"] = sum(ms[p.value] for p in SWITCH_PHASES)
    return ms


Switcher = Callable[[Core, str, int], Awaitable[Timings]]


async def measure(
    kind: LauncherKind, switch: Switcher, ports: range, n: int, repeats: int, gate: int
) -> list[Timings]:
    with tempfile.TemporaryDirectory(prefix="bizobs-bench-") as state:
        async with open_core(settings(kind, ports, Path(state))) as core:
            core.manager.start_concurrency = gate
            await switch(core, "Warmup Co", n)  # starts the fork server and N services
            return [await switch(core, ("Alpha Co", "Beta Co")[r % 2], n) for r in range(repeats)]


ROWS: list[tuple[str, LauncherKind, Switcher]] = [
    ("fork", LauncherKind.FORK, core_switch),
    ("exec", LauncherKind.EXEC, core_switch),
    ("write-up policy (exec)", LauncherKind.EXEC, writeup_switch),
]


def variants(no_writeup: bool, gates: list[int]) -> list[tuple[str, LauncherKind, Switcher, int]]:
    """Each launcher once per start gate; the write-up policy (one start at a time) once."""
    out = []
    for label, kind, switch in ROWS[:2] if no_writeup else ROWS:
        for gate in gates if switch is core_switch else gates[:1]:
            named = f"{label} (gate {gate})" if len(gates) > 1 and switch is core_switch else label
            out.append((named, kind, switch, gate))
    return out


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--ports", default="8201-8240", help="a free range with >= max(N) ports")
    p.add_argument("--sizes", default="5,10,20,40")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--no-writeup", action="store_true", help="skip the write-up policy row")
    p.add_argument(
        "--start-gates",
        default=str(START_CONCURRENCY),
        help="starts in flight at once, e.g. 8,40: one row each (write-up row: the first)",
    )
    ns = p.parse_args()
    gates = [int(g) for g in ns.start_gates.split(",")]
    lo, hi = parse_port_range(ns.ports)
    sizes = [int(s) for s in ns.sizes.split(",")]
    print(machine())
    print(f"ports {lo}-{hi}, sizes {sizes}, {ns.repeats} repeats each (medians, ms)\n")
    rows = []
    for n in sizes:
        for label, kind, switch, gate in variants(ns.no_writeup, gates):
            runs = await measure(kind, switch, range(lo, hi + 1), n, ns.repeats, gate)
            med = {k: median([r[k] for r in runs]) for k in runs[0]}
            spread = f"{min(r['switch'] for r in runs):,.0f}–{max(r['switch'] for r in runs):,.0f}"
            rows.append(
                [
                    n,
                    label,
                    *(med[p.value] for p in SWITCH_PHASES),
                    med["switch"],
                    spread,
                    med.get("simulate", float("nan")),
                ]
            )
            print(f"  N={n:<3} {label:<24} switch {med['switch']:8.1f} ms", flush=True)
    print()
    header = [
        "N",
        "launcher",
        "stop",
        "wait",
        "sweep",
        "launch",
        "switch (median)",
        "switch min–max",
        "simulate",
    ]
    print(table(header, rows))
    print(f"\n{machine()}")


if __name__ == "__main__":
    asyncio.run(main())
