"""The state database file: open it, and recover from a corrupt one instead of refusing to start."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

log = logging.getLogger(__name__)


def open_db(path: Path) -> tuple[sqlite3.Connection, str | None]:
    """Open (creating) the database. Returns the connection and, if the old file was unusable,
    a message saying where it was moved aside."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = _connect(path)
        conn.execute("PRAGMA schema_version").fetchone()
        if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("quick_check failed")
        return conn, None
    except sqlite3.DatabaseError as exc:
        moved = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
        path.replace(moved)
        for suffix in ("-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        message = f"state database {path} was unreadable ({exc}); moved to {moved}, started afresh"
        log.warning(message)
        return _connect(path), message


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=2000")
    return conn
