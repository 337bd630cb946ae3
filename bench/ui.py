"""Window smoothness: the longest event-loop stall during a 40-service journey switch with the
traffic charts running, the cost of one port-grid refresh (scan + snapshot + repaint) and of one
chart update.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/ui.py [--ports 8081-8120] [--repeats 5]
        [--start-gates 8,40] [--size 1440x900] [--presentation | --tab Metrics]

`--presentation` measures presentation mode (full screen: run it under a real X server of the
projector's size, e.g. `Xvfb :77 -screen 0 1280x720x24`, `DISPLAY=:77`).

A lag probe on the window's qasync loop asks for a 2 ms timer over and over and records how late
each one fires; the worst lateness during a switch is the longest stall the operator could feel.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings  # noqa: I001  (PySide6 before qasync)
from PySide6.QtWidgets import QApplication
import qasync

from app.core.settings import LauncherKind, from_env, parse_port_range
from app.core.events import PhaseEvent
from app.core.model import Phase
from app.core.services import START_CONCURRENCY
from app.core.traffic_model import StepSecond, TrafficSecond, TrafficStatus
from app.ui.bridge import CoreBridge
from app.ui.entry import settle_heap
from app.ui.main_window import MainWindow
from bench._common import machine, median, table

PROBE_S = 0.002


class LagProbe:
    """Worst timer lateness, overall and per Run Journey phase (to say where a stall is)."""

    def __init__(self) -> None:
        self.worst_ms = 0.0
        self.worst_cpu_ms = 0.0  # the window thread's own CPU time within the worst stall
        self.phase = "before"
        self.by_phase: dict[str, list[float]] = {}
        self._task: asyncio.Task[None] | None = None

    def on_phase(self, event: object) -> None:
        if isinstance(event, PhaseEvent):
            self.phase = event.phase.value if event.status == "started" else "between"

    def start(self) -> None:
        self.worst_ms = self.worst_cpu_ms = 0.0
        self.phase = "before"
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        worst: dict[str, float] = {}
        try:
            while True:
                t0, c0 = time.perf_counter(), time.thread_time()
                await asyncio.sleep(PROBE_S)
                late = (time.perf_counter() - t0 - PROBE_S) * 1000
                if late > self.worst_ms:
                    # The rest of a stall is time this thread waited for a CPU (2 cores, 40
                    # service processes starting or stopping), not work it did.
                    self.worst_ms, self.worst_cpu_ms = late, (time.thread_time() - c0) * 1000
                worst[self.phase] = max(worst.get(self.phase, 0.0), late)
        finally:
            for phase, ms in worst.items():
                self.by_phase.setdefault(phase, []).append(ms)

    def stop(self) -> float:
        if self._task:
            self._task.cancel()
        return self.worst_ms


class TrafficFeed:
    """Per-second points as the traffic generator keeps them: a rolling five minutes, one new
    second each second, the status a tuple of them (app/core/traffic.py)."""

    def __init__(self, now: float, steps: int = 5) -> None:
        self.steps = steps
        self.series: deque[TrafficSecond] = deque(
            (self.second(now - 300 + i) for i in range(300)), maxlen=300
        )

    def second(self, at: float) -> TrafficSecond:
        i = int(at)
        return TrafficSecond(
            float(i),
            completed=8 + i % 5,
            failed=i % 3,
            p50_ms=20.0 + i % 7,
            p95_ms=60.0 + i % 11,
            steps=tuple(StepSecond(f"Step {k}", ok=8, failed=i % 2) for k in range(self.steps)),
        )

    def status(self, now: float) -> TrafficStatus:
        if int(now) > self.series[-1].at:
            self.series.append(self.second(now))
        return TrafficStatus(
            running=True, rate=10, achieved_rate=9.8, sent=3000, series=tuple(self.series)
        )


async def feed_charts(bridge: CoreBridge) -> None:
    """The charts at their busiest: a fresh status four times a second (the generator sends
    one a second)."""
    feed = TrafficFeed(time.time())
    while True:
        bridge.trafficChanged.emit(feed.status(time.time()))
        await asyncio.sleep(0.25)


def journey(n: int, company: str) -> dict:
    return {
        "companyName": company,
        "domain": "bench.example.com",
        "industryType": "Bench",
        "steps": [{"stepName": f"Step {i}", "serviceName": f"Step{i}Service"} for i in range(n)],
    }


Timing = tuple[float, float]  # (wall ms, the window thread's CPU ms)


def chart_timings(window: MainWindow) -> tuple[list[Timing], list[Timing]]:
    """Each traffic-chart update (new data into the curves) and each repaint of its plots, in
    wall time and in the window thread's CPU time (the difference is time pre-empted).
    Timed from outside: a hook on the scene's `changed` signal would itself make Qt collect
    changed regions, a slower path than the one the window takes."""
    chart = window.trafficChart
    updates: list[Timing] = []
    paints: list[Timing] = []
    redraw = chart.redraw

    def timed_redraw() -> None:
        before, c0 = chart.updates, time.thread_time()
        redraw()
        if chart.updates != before:
            updates.append((chart.last_update_ms, (time.thread_time() - c0) * 1000))

    chart.redraw = timed_redraw  # type: ignore[method-assign]  (its tick calls self.redraw)
    view_class = type(chart.plots)
    paint = view_class.paintEvent

    def timed_paint(view: object, event: object) -> None:
        t0, c0 = time.perf_counter(), time.thread_time()
        paint(view, event)
        if view is chart.plots:
            paints.append(((time.perf_counter() - t0) * 1000, (time.thread_time() - c0) * 1000))

    view_class.paintEvent = timed_paint
    return updates, paints


class Switches:
    """What the switches of one configuration measured."""

    def __init__(self) -> None:
        self.stalls: list[float] = []
        self.stall_cpu: list[float] = []
        self.idle: list[float] = []
        self.launch_ms: list[float] = []
        self.probe = LagProbe()

    def on_phase(self, event: object) -> None:
        self.probe.on_phase(event)
        if (
            isinstance(event, PhaseEvent)
            and event.phase is Phase.LAUNCH
            and event.status != "started"
        ):
            self.launch_ms.append(event.duration_ms)

    def rows(self, n: int, label: str) -> list[list]:
        probe = self.probe
        return [
            [f"{n}-service switch{label}: longest loop stall", *_stats(self.stalls, 1)],
            ["  of which the window thread's own CPU", *_stats(self.stall_cpu, 1)],
            ["  the launch phase's duration", *_stats(self.launch_ms, 0)],
            ["idle: longest loop stall (4 Hz grid refresh only)", *_stats(self.idle, 1)],
            *(
                [f"  during {phase}", *_stats(v, 1)]
                for phase, v in probe.by_phase.items()
                if phase in {p.value for p in Phase}
            ),
        ]


def _stats(values: list[float], digits: int) -> list[str]:
    return [f"{median(values):,.{digits}f} ms", f"{max(values):,.{digits}f} ms"]


async def switches(bridge: CoreBridge, n: int, repeats: int) -> Switches:
    """`repeats` switches of n services, each after 0.5 s of idle, with the probe running."""
    out = Switches()
    probe = out.probe
    bridge.phaseEvent.connect(out.on_phase)
    try:
        for i in range(repeats):
            probe.start()
            await asyncio.sleep(0.5)
            out.idle.append(probe.stop())
            await asyncio.sleep(0)
            probe.by_phase.pop("before", None)
            probe.start()
            result = await bridge.run_journey(journey(n, f"Switch Co {i}"))
            out.stalls.append(probe.stop())
            out.stall_cpu.append(probe.worst_cpu_ms)
            await asyncio.sleep(0)  # let the probe task record its phases
            assert result is not None and result.ok, result
    finally:
        bridge.phaseEvent.disconnect(out.on_phase)
    return out


def refresh_timings(bridge: CoreBridge, window: MainWindow) -> list[tuple[float, ...]]:
    core = bridge.core
    assert core is not None
    refresh = []
    for _ in range(100):
        t0, c0 = time.perf_counter(), time.thread_time()
        listeners = core.scan()
        t1 = time.perf_counter()
        ports = core.ports(listeners)
        t2 = time.perf_counter()
        window.grid.set_ports(ports)
        window.grid.repaint()
        t3, c3 = time.perf_counter(), time.thread_time()
        refresh.append(
            (
                (t3 - t0) * 1000,
                (c3 - c0) * 1000,
                (t1 - t0) * 1000,
                (t2 - t1) * 1000,
                (t3 - t2) * 1000,
            )
        )
    return refresh


async def bench(
    bridge: CoreBridge,
    window: MainWindow,
    n: int,
    repeats: int,
    gates: list[int],
    presenting: bool = False,
    tab: str = "Traffic",
) -> list[list]:
    """The switches once per start gate (ServiceManager.start_concurrency), alternating the
    gates switch by switch so that both see the same machine."""
    await bridge.open()
    window.show()
    settle_heap()  # as app/ui/entry.py does
    if presenting:
        window.set_presentation(True)  # the charts, the grid and the map all on screen
    else:  # the tab on screen is the one painted (the charts by default)
        tabs = window.tabs
        tabs.setCurrentIndex([tabs.tabText(i) for i in range(tabs.count())].index(tab))
    chart_ms, paint_ms = chart_timings(window)
    feeder = asyncio.ensure_future(feed_charts(bridge))
    core = bridge.core
    assert core is not None
    by_gate = {gate: Switches() for gate in gates}
    try:
        await bridge.run_journey(journey(n, "Warm Co"))
        for _ in range(repeats):
            for gate in gates:
                core.manager.start_concurrency = gate
                one = await switches(bridge, n, 1)
                _merge(by_gate[gate], one)
        refresh = refresh_timings(bridge, window)
    finally:
        feeder.cancel()
        await bridge.close()
    rows = []
    for gate in gates:
        rows += by_gate[gate].rows(n, f" (starts gated at {gate})" if len(gates) > 1 else "")
    return [
        *rows,
        *(
            [
                name,
                f"{median([r[i] for r in refresh]):.2f} ms",
                f"{max(r[i] for r in refresh):.2f} ms",
            ]
            for i, name in enumerate(
                [
                    "one grid refresh (scan + snapshot + repaint)",
                    "  the window thread's CPU in it",
                    "  of which the OS scan (sock_diag, cached owners)",
                    "  of which the snapshot (states, bind probes)",
                    "  of which the grid update and repaint",
                ]
            )
        ),
        *_timing_rows(f"one chart update (4 curves, 300 s, {len(chart_ms)} updates)", chart_ms),
        *_timing_rows(f"one chart repaint (3 plots, {len(paint_ms)} repaints)", paint_ms),
    ]


def _timing_rows(name: str, timings: list[Timing]) -> list[list[str]]:
    timings = timings or [(0.0, 0.0)]
    return [
        [name, *(f"{f([t[0] for t in timings]):.2f} ms" for f in (median, max))],
        [
            "  of which the window thread's CPU",
            *(f"{f([t[1] for t in timings]):.2f} ms" for f in (median, max)),
        ],
    ]


def _merge(into: Switches, one: Switches) -> None:
    into.stalls += one.stalls
    into.stall_cpu += one.stall_cpu
    into.idle += one.idle
    into.launch_ms += one.launch_ms
    for phase, values in one.probe.by_phase.items():
        into.probe.by_phase.setdefault(phase, []).extend(values)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ports", default="8081-8120")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--launcher", choices=["fork", "exec"], default="fork")
    ap.add_argument(
        "--start-gates",
        default=str(START_CONCURRENCY),
        help="starts in flight at once, e.g. 8,40 to compare (alternated switch by switch)",
    )
    ap.add_argument("--size", default="1440x900", help="the window's size, WxH")
    ap.add_argument("--presentation", action="store_true", help="in presentation mode")
    ap.add_argument("--tab", default="Traffic", help="the bottom tab on screen, e.g. Metrics")
    ns = ap.parse_args()
    width, height = (int(v) for v in ns.size.split("x"))
    lo, hi = parse_port_range(ns.ports)
    state = Path(tempfile.mkdtemp(prefix="bizobs-ui-bench-"))
    settings = from_env(
        port_lo=lo,
        port_hi=hi,
        essential_services=(),
        state_dir=state,
        launcher=LauncherKind(ns.launcher),
    )
    app = QApplication.instance() or QApplication(sys.argv[:1])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    bridge = CoreBridge(settings)
    window = MainWindow(bridge, QSettings(str(state / "ui.ini"), QSettings.Format.IniFormat))
    window.resize(width, height)
    gates = [int(g) for g in ns.start_gates.split(",")]
    rows = loop.run_until_complete(
        bench(bridge, window, hi - lo + 1, ns.repeats, gates, ns.presentation, ns.tab)
    )
    shown = f"{window.width()}x{window.height()} on {QApplication.platformName()}"
    mode = "presentation mode" if ns.presentation else f"the {ns.tab} tab"
    print(f"\n{machine()}")
    print(f"launcher {ns.launcher}; {ns.repeats} switches; window {shown}, {mode}\n")
    print(table(["measure", "median", "worst"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
