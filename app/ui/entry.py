"""`python -m app`: the window. QApplication, then the qasync loop, then the core, then the window.

Qt aborts the whole process (with a misleading "xcb-cursor0 is needed" message) when there is no
display and no platform plugin chosen; we check first and say what to do instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from app.ui.bridge import ApiStarter, Settings

NO_DISPLAY_HELP = """\
error: no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set).
  - run it under a desktop session, or over `ssh -X`, or under Xvfb
    (`xvfb-run .venv/bin/python -m app`; a real X display also needs the libxcb-* packages:
    libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-randr0
    libxcb-render-util0 libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0);
  - or run it without a screen: QT_QPA_PLATFORM=offscreen .venv/bin/python -m app;
  - or use the headless commands: .venv/bin/python -m app run | ports | stop-all | serve."""


INSTALL_HINT = "install the project's dependencies, or use the headless commands"


def display_problem(env: dict[str, str] | None = None, platform: str = sys.platform) -> str | None:
    """Why Qt could not open a window here, or None if it should be able to."""
    env = dict(os.environ) if env is None else env
    if not platform.startswith("linux"):
        return None
    if env.get("QT_QPA_PLATFORM") or env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    return NO_DISPLAY_HELP


def run_window(
    settings: Settings, api_starter: ApiStarter | None = None, err: TextIO | None = None
) -> int:
    """Show the panel until it is closed. Returns the process exit status.

    `api_starter` (see app.ui.bridge.ApiStarter) starts the loopback control API on the same
    loop and core once the core is open; None runs the window alone."""
    err = err or sys.stderr
    if problem := display_problem():
        print(problem, file=err)
        return 2
    try:
        from PySide6.QtWidgets import QApplication  # before qasync: it uses the binding it finds
    except ImportError as exc:
        print(f"error: the window needs PySide6 ({exc}); {INSTALL_HINT}", file=err)
        return 2
    try:
        import qasync
    except ImportError as exc:
        print(f"error: the window needs qasync ({exc}); {INSTALL_HINT}", file=err)
        return 2

    from app.ui import theme
    from app.ui.bridge import CoreBridge, CoreError, StateLockedError
    from app.ui.main_window import APP_TITLE, MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_TITLE)
    app.setOrganizationName("BizObs")
    if isinstance(app, QApplication):  # (instance() is typed as the core application)
        theme.install_icon(app)
        theme.follow_system(app)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    bridge = CoreBridge(settings, api_starter)
    window = MainWindow(bridge)  # before opening: the log shows what the start reconciled
    try:
        try:
            loop.run_until_complete(bridge.open())
        except StateLockedError as exc:
            print(f"error: {exc}", file=err)
            _show_fatal(app, str(exc))
            return 2
        except CoreError as exc:
            print(f"error: the panel could not start: {exc}", file=err)
            _show_fatal(app, f"The panel could not start: {exc}")
            return 1
        window.show()
        settle_heap()
        _install_signal_handlers(loop, window)
        # Printed last: whoever waits for this line may signal the panel at once.
        api = f"control API on http://{settings.api_host}:{settings.api_port}"
        print(
            f"panel: pool {settings.port_lo}-{settings.port_hi}, state {settings.state_dir}; "
            f"{api if bridge.api_running else 'no control API'}",
            flush=True,
        )
        loop.run_forever()
        return 0
    finally:
        if bridge.is_open:  # the loop ended some other way: still stop every service
            with contextlib.suppress(Exception):
                loop.run_until_complete(bridge.close())
        with contextlib.suppress(Exception):
            loop.close()
        asyncio.set_event_loop(None)


def settle_heap() -> None:
    """Freeze what is alive once the window is up (modules, Qt wrappers, pyqtgraph's items): it
    lives as long as the window, and a full collection no longer walks it. One over those
    ≈100,000 objects stalled the loop ≈100 ms in the middle of a switch (docs/performance.md,
    "Window")."""
    gc.collect()
    gc.freeze()


def _install_signal_handlers(loop: asyncio.AbstractEventLoop, window: object) -> None:
    """SIGTERM / SIGINT (Ctrl+C in the terminal): stop the services and quit, no questions."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, window.shutdown)  # type: ignore[attr-defined]


def _show_fatal(app: object, message: str) -> None:
    """A blocking box is fine here: no coroutine is running and the loop is not."""
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QMessageBox

    if QGuiApplication.platformName() in ("offscreen", "minimal"):
        return  # nobody could click it
    QMessageBox.critical(None, "BizObs Journey Control Panel", message)
