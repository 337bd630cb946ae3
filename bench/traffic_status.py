"""The cost of one traffic status with hours of traffic behind it: the bucket histogram the
generator keeps (app/core/traffic_stats.py) against the sorted reservoirs it kept before
(20,000 latencies since start and 4,000 per step, each sorted and cut by
`statistics.quantiles` twice per status), fed the same latencies, measured side by side.

    .venv/bin/python bench/traffic_status.py [--journeys 1000000] [--steps 5] [--repeats 200]

No services: the accounting alone, as `Traffic.status()` runs it once a second on the window's
loop and on every GET /api/traffic/status.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.traffic_stats import Tally
from bench._common import machine, median, table

RESERVOIR, STEP_RESERVOIR = 20_000, 4_000  # what the reservoirs held


class Reservoir:
    """The former accounting: a uniform reservoir (Algorithm R), sorted for each percentile."""

    def __init__(self, size: int, rng: random.Random) -> None:
        self.values: list[float] = []
        self.seen = 0
        self.size = size
        self.rng = rng

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self.values) < self.size:
            self.values.append(value)
        elif (j := self.rng.randrange(self.seen)) < self.size:
            self.values[j] = value

    def p(self, pct: int) -> float:
        ordered = sorted(self.values)
        return statistics.quantiles(ordered, n=100, method="inclusive")[pct - 1]


def feed(journeys: int, steps: int, seed: int) -> tuple[Tally, list[Reservoir]]:
    rng = random.Random(seed)
    tally = Tally()
    reservoirs = [Reservoir(RESERVOIR, rng)] + [
        Reservoir(STEP_RESERVOIR, rng) for _ in range(steps)
    ]
    names = [f"Step{i}" for i in range(steps)]
    for _ in range(journeys):
        lat = [rng.lognormvariate(1.5, 0.8) for _ in names]
        total = sum(lat) + rng.random()
        tally.journey(True, total, [(n, "ok", ms) for n, ms in zip(names, lat, strict=True)])
        reservoirs[0].add(total)
        for r, ms in zip(reservoirs[1:], lat, strict=True):
            r.add(ms)
    return tally, reservoirs


def status_new(tally: Tally, order: list[str]) -> None:
    tally.p(50), tally.p(95), tally.step_values(order)


def status_old(reservoirs: list[Reservoir]) -> None:
    for r in reservoirs:
        r.p(50), r.p(95)


def timed(work: object, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        work()  # type: ignore[operator]
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=200)
    ns = parser.parse_args()
    print(machine())
    tally, reservoirs = feed(ns.journeys, ns.steps, seed=1)
    order = [f"Step{i}" for i in range(ns.steps)]
    new, old = [], []
    for _ in range(5):  # alternate, so both see the same machine
        new += timed(lambda: status_new(tally, order), ns.repeats // 5)
        old += timed(lambda: status_old(reservoirs), ns.repeats // 5)
    exact = sorted(r for r in reservoirs[0].values)
    p95_old = reservoirs[0].p(95)
    rows = [
        ["bucket histogram (now)", f"{median(new):.3f}", f"{max(new):.3f}", f"{tally.p(95):.2f}"],
        ["sorted reservoirs (before)", f"{median(old):.3f}", f"{max(old):.3f}", f"{p95_old:.2f}"],
        ["ratio before/now", f"{median(old) / median(new):.0f}×", "", ""],
    ]
    print(f"{ns.journeys:,} journeys of {ns.steps} steps; {ns.repeats} statuses each")
    print(table(["accounting", "median ms", "worst ms", "p95 ms of the journeys"], rows))
    print(f"(reservoir of {len(exact):,} latencies; the histogram counted {tally.latency.count:,})")


if __name__ == "__main__":
    main()
