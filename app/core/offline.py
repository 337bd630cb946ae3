"""The pool as seen from outside any panel, read-only: for `ports` when no panel runs.

Ledger rows whose process still lives show as stale orphans. Nothing is stopped or written:
reconciling is for a panel's start or `stop-all`."""

from __future__ import annotations

import sqlite3

from app.core.errors import StateDatabaseError
from app.core.ledger import Ledger
from app.core.model import PortInfo, ServiceRecord
from app.core.ports import pool_for
from app.core.settings import Settings


def snapshot(settings: Settings) -> list[PortInfo]:
    if settings.state_dir.exists() and not settings.state_dir.is_dir():
        raise StateDatabaseError(f"state directory {settings.state_dir} is a file, not a directory")
    pool = pool_for(settings)
    orphans = {r.pid: r for r in _ledger_records(settings) if r.pid is not None}
    return pool.snapshot({}, pool.scan(orphans), orphans)


def _ledger_records(settings: Settings) -> list[ServiceRecord]:
    if not settings.db_path.exists():
        return []
    try:
        conn = sqlite3.connect(f"file:{settings.db_path}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error as exc:
        raise StateDatabaseError(f"cannot read {settings.db_path}: {exc}") from exc
    try:
        conn.row_factory = sqlite3.Row
        return Ledger.read(conn)
    except sqlite3.Error as exc:
        raise StateDatabaseError(f"cannot read {settings.db_path}: {exc}") from exc
    finally:
        conn.close()
