"""What the benchmarks ran on, printed with every result."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence


def describe() -> str:
    model = "unknown cpu"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{model}, {os.cpu_count()} cores, {mem_gib:.0f} GiB, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")
