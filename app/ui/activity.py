"""What the window itself is doing: idle, a run it requested, quitting — one `Activity` —
and the tasks it started on the asyncio loop, kept until done, their failures reported.

`changed` fires after every transition and every finished task: the window derives the
commands' enablement from a fresh `UiState` then (app/ui/commands.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from enum import Enum
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.ui.bridge import TaskOwner


class Activity(Enum):
    IDLE = "idle"
    RUN_REQUESTED = "run requested"  # Run pressed: busy until its task ends, before the core is
    SHUTTING_DOWN = "shutting down"  # stopping services to quit
    SHUT_DOWN = "shut down"  # the core is closed: the window may close


class WindowActivity(QObject):
    changed = Signal()
    failed = Signal(str)  # a task's unexpected error, said in one line
    shutDown = Signal()  # the core is closed: the window closes now

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = Activity.IDLE
        self.tasks = TaskOwner("window", self._failed)

    @property
    def quitting(self) -> bool:
        return self.state in (Activity.SHUTTING_DOWN, Activity.SHUT_DOWN)

    def task(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        """Run `coro` on the loop, kept until it ends (app/core/tasks.py); its end may change
        what the commands allow."""
        task = self.tasks.spawn(coro, getattr(coro, "__qualname__", "task"))
        task.add_done_callback(lambda _task: self.changed.emit())
        return task

    def _failed(self, _name: str, exc: BaseException) -> None:
        self.failed.emit(f"Internal error: {type(exc).__name__}: {exc}")

    def run(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        """A Run Journey: the window is busy from now on, not only once the core says so."""
        self.state = Activity.RUN_REQUESTED
        self.changed.emit()
        task = self.task(coro)
        task.add_done_callback(self._run_done)
        return task

    def _run_done(self, _task: asyncio.Future[Any]) -> None:
        if self.state is Activity.RUN_REQUESTED:  # not when quitting meanwhile
            self.state = Activity.IDLE
        self.changed.emit()

    def shut_down(self, close: Awaitable[Any]) -> asyncio.Future[Any]:
        """Quitting: `close` (the core's) runs to its end, then `shutDown` fires."""
        self.state = Activity.SHUTTING_DOWN
        self.changed.emit()
        return self.task(self._shut_down(close))

    async def _shut_down(self, close: Awaitable[Any]) -> None:
        try:
            await close
        finally:
            self.state = Activity.SHUT_DOWN
            self.shutDown.emit()
