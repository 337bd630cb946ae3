"""Memory: USS/PSS per service with 40 services running, both launchers, and the panel.

Starts N services through the same `Core` the window uses (ready = /health verified), then
reads each process's `memory_full_info()` (USS: pages only it holds; PSS: its fair share of
shared pages). Forked services share the fork server's pre-imported pages copy-on-write; the
server is listed on its own. "panel" is this headless benchmark process driving the core (the
window adds Qt on top). Medians over the repeats.

    .venv/bin/python bench/memory.py --ports 8201-8240 --services 40 --repeats 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.forkserver import ForkServerLauncher
from app.core.model import ServiceSpec
from app.core.orchestrator import open_core
from app.core.settings import LauncherKind, Settings, parse_port_range
from bench._common import machine, median, table

MIB = 1024 * 1024
Sample = dict[str, float]  # measure -> MiB


def mem(pid: int) -> tuple[float, float, float]:
    info = psutil.Process(pid).memory_full_info()
    return info.uss / MIB, info.pss / MIB, info.rss / MIB


async def sample(kind: LauncherKind, ports: range, n: int) -> Sample:
    with tempfile.TemporaryDirectory(prefix="bizobs-bench-") as state:
        settings = Settings(
            port_lo=ports.start,
            port_hi=ports.stop - 1,
            state_dir=Path(state),
            launcher=kind,
            essential_services=(),
            api_enabled=False,
        )
        async with open_core(settings) as core:
            specs = [ServiceSpec(f"Step{i}Service", "Memory Co") for i in range(n)]
            started = await core.manager.start_many(specs, "memory")
            per = [mem(s.pid) for s in started]
            launcher = core.manager.launcher
            server_pid = launcher.server_pid if isinstance(launcher, ForkServerLauncher) else None
            server = mem(server_pid) if server_pid else (0.0, 0.0, 0.0)
            panel = mem(os.getpid())
    return {
        "uss": median([u for u, _, _ in per]),
        "pss": median([p for _, p, _ in per]),
        "rss": median([r for _, _, r in per]),
        "uss_total": sum(u for u, _, _ in per),
        "pss_total": sum(p for _, p, _ in per) + server[1],
        "server_uss": server[0],
        "server_pss": server[1],
        "panel_uss": panel[0],
        "panel_pss": panel[1],
    }


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--ports", default="8201-8240")
    p.add_argument("--services", type=int, default=40)
    p.add_argument("--repeats", type=int, default=3)
    ns = p.parse_args()
    lo, hi = parse_port_range(ns.ports)
    print(machine())
    print(f"{ns.services} services on ports {lo}-{hi}, {ns.repeats} repeats (medians, MiB)\n")
    rows = []
    for kind in (LauncherKind.FORK, LauncherKind.EXEC):
        runs = [await sample(kind, range(lo, hi + 1), ns.services) for _ in range(ns.repeats)]
        med = {k: median([r[k] for r in runs]) for k in runs[0]}
        server = f"{med['server_uss']:.1f} / {med['server_pss']:.1f}" if med["server_uss"] else "–"
        rows.append(
            [
                kind.value,
                med["uss"],
                med["pss"],
                med["rss"],
                med["uss_total"],
                med["pss_total"],
                server,
                f"{med['panel_uss']:.1f} / {med['panel_pss']:.1f}",
            ]
        )
    header = [
        "launcher",
        "USS/service",
        "PSS/service",
        "RSS/service",
        f"USS sum ({ns.services})",
        f"PSS sum ({ns.services} + server)",
        "fork server USS / PSS",
        "panel USS / PSS",
    ]
    print(table(header, rows))
    print(f"\n{machine()}")


if __name__ == "__main__":
    asyncio.run(main())
