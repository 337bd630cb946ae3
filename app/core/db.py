"""The state database file: open it; move a really corrupt one aside instead of refusing to start.

A database another process holds locked is not corrupt (a crashed panel's ledger must never be
thrown away for that): it is waited for within `LOCK_WAIT_S`, then refused with a clear message.
Only a file that SQLite says is not a database, or that fails its integrity check, is moved."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from app.core import statedir
from app.core.errors import StateDatabaseError

log = logging.getLogger(__name__)
LOCK_WAIT_S = 5.0


def open_db(path: Path) -> tuple[sqlite3.Connection, str | None]:
    """Open (creating) the database. Returns the connection and, if the old file was corrupt,
    a message saying where it was moved aside."""
    statedir.make(path.parent)
    try:
        statedir.create_private(path)  # 0600 from the start, and so its -wal and -shm
    except OSError as exc:
        raise StateDatabaseError(_unusable(path, exc)) from exc
    try:
        return _checked(path), None
    except sqlite3.OperationalError as exc:  # locked, read-only, unopenable: not corruption
        raise StateDatabaseError(_unusable(path, exc)) from exc
    except sqlite3.DatabaseError as exc:
        moved = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
        path.replace(moved)
        for suffix in ("-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        message = f"state database {path} was corrupt ({exc}); moved to {moved}, started afresh"
        log.warning(message)
        try:
            statedir.create_private(path)
            return _connect(path), message
        except (sqlite3.Error, OSError) as again:
            raise StateDatabaseError(_unusable(path, again)) from again


def _checked(path: Path) -> sqlite3.Connection:
    conn = _connect(path)
    try:
        conn.execute("PRAGMA schema_version").fetchone()
        if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("integrity check failed")
        # Take the write lock once: a database another process holds shows here, not later.
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("COMMIT")
    except BaseException:
        conn.close()
        raise
    return conn


def _unusable(path: Path, exc: Exception) -> str:
    if "locked" in str(exc) or "busy" in str(exc):
        return (
            f"the state database {path} is locked by another process (waited {LOCK_WAIT_S:g} s); "
            "close whatever holds it, or use another state directory (BIZOBS_STATE_DIR)"
        )
    return (
        f"the state database {path} cannot be used ({exc}); check that the state directory "
        "is writable and the disk not full, or choose another one (BIZOBS_STATE_DIR)"
    )


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=LOCK_WAIT_S)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={int(LOCK_WAIT_S * 1000)}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn
