"""The state directory is the operator's alone: it holds the ledger (which processes are ours),
the run history and the export settings (whose headers may hold secrets).

New, it is created 0700 and its files 0600 (docs/architecture.md, "Files and modes"); an
existing one that is looser — made by an older version, or by hand — is tightened at start,
with a note saying what was changed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from app.core.errors import StateDatabaseError

DIR_MODE = 0o700
FILE_MODE = 0o600
# Every file of ours in the state directory (SQLite adds -wal and -shm beside the database).
FILES = (
    "state.db",
    "state.db-wal",
    "state.db-shm",
    "state.db-journal",
    "panel.lock",
    "export.json",
)


def make(state_dir: Path) -> None:
    """Create the directory (and its parents) if need be; the directory itself 0700."""
    try:
        state_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:  # not a directory, no permission, read-only file system
        raise StateDatabaseError(
            f"cannot use state directory {state_dir}: {exc.strerror}; choose another one "
            "(BIZOBS_STATE_DIR / --state-dir)"
        ) from exc


def create_private(path: Path) -> None:
    """Create `path` 0600 if it does not exist yet, so that whatever writes it (SQLite, and
    SQLite's -wal and -shm, which take the database's mode) never makes it readable."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))


def tighten(state_dir: Path) -> list[str]:
    """Take group and other permissions off the directory and our files in it; one note per
    change, for the start-up messages. A file we cannot change is named too."""
    notes = [n for n in [_tighten(state_dir, DIR_MODE)] if n]
    notes += [n for name in FILES if (n := _tighten(state_dir / name, FILE_MODE))]
    return notes


def _tighten(path: Path, wanted: int) -> str | None:
    try:
        mode = stat.S_IMODE(path.lstat().st_mode)
    except FileNotFoundError:
        return None
    if path.is_symlink() or not mode & ~wanted:
        return None  # never follow a link out of the directory; already private
    try:
        os.chmod(path, mode & wanted)
    except OSError as exc:
        return (
            f"{path} is readable by others (mode {mode:04o}) and cannot be changed: {exc.strerror}"
        )
    return f"{path} was readable by others: mode {mode:04o} changed to {mode & wanted:04o}"
