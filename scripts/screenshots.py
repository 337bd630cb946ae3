"""Render the window offscreen: docs/screenshot-stopping.png (the stop phase of a second run),
docs/screenshot-running.png (its launch phase) and docs/screenshot-after-run.png.

Real services on ports 8161-8180 with a throw-away state directory: a first journey (banking),
then a second one (e-commerce) with demo pacing, captured while the first one's services stop,
while its launch phase runs, and when it is done. A plain listening socket on one port shows
what a foreign listener looks like.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshots.py

BIZOBS_SHOT_SIZES (default 1000x650,1920x1080) and BIZOBS_SHOT_DIR (default docs/) choose the
sizes and where the files go; under QT_SCALE_FACTOR the names say the scale.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.core.model import Phase  # noqa: E402
from app.core.settings import EssentialService, Settings  # noqa: E402
from app.ui.bridge import CoreBridge  # noqa: E402
from app.ui.main_window import MainWindow  # noqa: E402

# Another worktree may take screenshots at the same time: BIZOBS_SHOT_PORTS=lo-hi moves them.
_lo, _hi = os.environ.get("BIZOBS_SHOT_PORTS", "8161-8180").split("-")
PORTS = (int(_lo), int(_hi))
FOREIGN_PORT = PORTS[1] - 2
PACING_MS = 1500
TRAFFIC_RATE = 8.0
TRAFFIC_S = 20
# Window sizes (logical pixels), e.g. BIZOBS_SHOT_SIZES=1280x720 with QT_SCALE_FACTOR=2 for a
# 2560x1440 screen at 200 %.
SIZES = [
    tuple(int(n) for n in size.split("x"))
    for size in os.environ.get("BIZOBS_SHOT_SIZES", "1000x650,1920x1080").split(",")
]


async def until(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("screenshot scenario timed out")
        await asyncio.sleep(0.02)


async def settle(ms: int = 150) -> None:
    """Let Qt lay out and repaint (never processEvents() inside a coroutine: it re-enters)."""
    await asyncio.sleep(ms / 1000)


async def scenario(window: MainWindow, bridge: CoreBridge, out: Path) -> None:
    await bridge.open()
    window.show()
    await settle(300)

    # first journey, no pacing
    window.editor.load_template("banking")
    window.editor.set_mode("multiple")
    window.editor.customersSpin.setValue(4)
    window.pacingSpin.setValue(0)
    window.run_journey()
    await until(lambda: not window._run_pending)

    # second journey, paced; capture while its launch phase runs (cells starting / allocated)
    window.editor.load_template("e-commerce")
    window.editor.set_mode("multiple")
    window.editor.customersSpin.setValue(8)
    window.pacingSpin.setValue(PACING_MS)
    window.tabs.setCurrentWidget(window.logView)
    window.run_journey()
    # The stop phase pauses before its signals (docs/architecture.md, "A Run Journey, phase by
    # phase"): the phase lit over the services about to stop; `stopping` itself lasts ≈50 ms.
    await until(lambda: window.timeline.status(Phase.STOP) == "running", timeout=30)
    await settle(50)  # grab() paints
    window.grab().save(str(out / "screenshot-stopping.png"))
    print("wrote", out / "screenshot-stopping.png")
    await until(lambda: window.timeline.status(Phase.LAUNCH) != "pending")
    await until(lambda: window.timeline.status(Phase.LAUNCH) == "running")
    await until(lambda: window.grid.counts()["allocated"] >= 6, timeout=30)
    await settle(400)
    window.grab().save(str(out / "screenshot-running.png"))
    print("wrote", out / "screenshot-running.png")

    await until(lambda: not window._run_pending)
    await settle(600)  # pacing stays as it was for the run, so the toolbar matches the timeline
    window.grab().save(str(out / "screenshot-after-run.png"))
    print("wrote", out / "screenshot-after-run.png")
    await bridge.start_traffic(TRAFFIC_RATE)  # the traffic charts get TRAFFIC_S of data
    await settle(TRAFFIC_S * 1000)
    await sizes_and_schemes(window, out)
    await bridge.stop_traffic()
    await bridge.close()


async def sizes_and_schemes(window: MainWindow, out: Path) -> None:
    """The smallest and a large layout, light and dark, named by platform (offscreen or xcb);
    at 1920x1080 also the journey map and the trace waterfall of a failed customer."""
    from PySide6.QtGui import QGuiApplication

    from app.ui import theme

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    platform = QGuiApplication.platformName()
    scale = os.environ.get("QT_SCALE_FACTOR", "1")
    tag = platform if scale in ("", "1") else f"{platform}-{scale}x"  # window sizes are logical
    for scheme in ("light", "dark"):
        theme.apply(app, scheme)  # type: ignore[arg-type]
        for width, height in SIZES:
            window.resize(width, height)
            window.tabs.setCurrentWidget(window.results)
            await settle(500)
            path = out / f"screenshot-{tag}-{width}x{height}-{scheme}.png"
            window.grab().save(str(path))
            print("wrote", path)
        window.tabs.setCurrentIndex(window.tabs.count() - 1)  # the journey map
        await settle(500)
        path = out / f"screenshot-{tag}-journey-map-{scheme}.png"
        window.grab().save(str(path))
        print("wrote", path)
        window.tabs.setCurrentIndex(window.tabs.count() - 2)  # the traffic charts
        await settle(800)
        path = out / f"screenshot-{tag}-traffic-{scheme}.png"
        window.grab().save(str(path))
        print("wrote", path)
    theme.apply(app, "light")


def main() -> int:
    import qasync  # after PySide6: it uses the binding already imported

    out = Path(os.environ.get("BIZOBS_SHOT_DIR", ROOT / "docs"))
    out.mkdir(exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setStyle("Fusion")  # follows the colour scheme, light or dark
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with tempfile.TemporaryDirectory(prefix="bizobs-shots-") as tmp:
        settings = Settings(
            port_lo=PORTS[0],
            port_hi=PORTS[1],
            state_dir=Path(tmp) / "state",
            api_enabled=False,
            essential_services=(
                EssentialService("DiscoveryService", "Dynatrace"),
                EssentialService("PurchaseService", "Dynatrace"),
            ),
        )
        foreign = socket.socket()
        foreign.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        foreign.bind(("127.0.0.1", FOREIGN_PORT))
        foreign.listen()
        bridge = CoreBridge(settings)
        window = MainWindow(bridge, QSettings(str(Path(tmp) / "ui.ini"), QSettings.IniFormat))
        window.resize(1440, 900)
        try:
            loop.run_until_complete(scenario(window, bridge, out))
        finally:
            if bridge.is_open:
                loop.run_until_complete(bridge.close())
            foreign.close()
            window.close()
            loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
