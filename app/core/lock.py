"""One panel per state directory: an advisory lock the kernel drops when the holder dies."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from app.common.numbers import ascii_int
from app.core import statedir
from app.core.errors import StateDatabaseError, StateLockedError


class StateLock:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "panel.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        if self.path.parent.exists() and not self.path.parent.is_dir():
            raise StateDatabaseError(
                f"cannot use state directory {self.path.parent}: it is a file, not a directory; "
                "choose another one (BIZOBS_STATE_DIR / --state-dir)"
            )
        statedir.make(self.path.parent)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, statedir.FILE_MODE)
        except OSError as exc:  # not a directory, no permission, read-only file system
            raise StateDatabaseError(
                f"cannot use state directory {self.path.parent}: {exc.strerror}; choose "
                "another one (BIZOBS_STATE_DIR / --state-dir)"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise StateLockedError(
                f"another panel (pid {holder}) already uses state directory {self.path.parent}; "
                "stop it first or choose another state directory (BIZOBS_STATE_DIR / --state-dir)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def lock_holder(state_dir: Path) -> int | None:
    """The pid of the panel holding `state_dir`, or None if no panel holds it."""
    path = state_dir / "panel.lock"
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            pid = ascii_int(text, 1, 2**31)
            return pid if pid is not None else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
