"""Trace Context on the hop path: `hop_context(...).outgoing(...)` per header pair, the work
every step service does for every request, in CPU microseconds (the best of many rounds).

With `--against REV`, the `app/service/trace.py` of that git revision is loaded next to the
working tree's and both are measured in turns, so a change can be compared on a busy machine.

    .venv/bin/python bench/trace_context.py [--against HEAD~1] [--rounds 15]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import timeit
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.service import trace  # noqa: E402
from bench._common import machine, module_at, table  # noqa: E402

TRACEPARENT = ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]
PAIRS = {
    "no tracestate": [],
    "ours only": ["bizobs=00f067aa0ba902b7"],
    "three members": ["bizobs=00f067aa0ba902b7,rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"],
    "32 members": [",".join(f"k{i:02d}=v{i:02d}" for i in range(32))],
}
CALLS = 20_000


def per_call_us(module: ModuleType, tracestates: list[str]) -> float:
    def hop() -> None:
        module.hop_context(TRACEPARENT, tracestates).outgoing("1111111111111111")

    return timeit.timeit(hop, number=CALLS, timer=time.process_time) / CALLS * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", help="a git revision to compare with")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        modules = {"working tree": trace}
        if args.against:
            then = module_at(args.against, "app/service/trace.py", Path(tmp))
            modules = {args.against: then, **modules}
        best: dict[tuple[str, str], float] = {}
        for _ in range(args.rounds):
            for label, module in modules.items():
                for pair, states in PAIRS.items():
                    us = per_call_us(module, states)
                    best[label, pair] = min(best.get((label, pair), us), us)
    print(machine())
    print(
        table(
            ["tracestate", *(f"{label} µs" for label in modules)],
            [[pair, *(f"{best[label, pair]:.2f}" for label in modules)] for pair in PAIRS],
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
