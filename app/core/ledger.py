"""The ledger: a persisted record of every service process the panel spawned.

It outlives the panel, so that a crashed panel's services can be found and stopped by the next
start (reconcile, in services.py). Rows are written before a process can serve and removed only
once the process is gone. A launcher's helper process (the fork server) has a row too, with
port 0: it is read apart (`helpers`), so it is never taken for a service.
"""

from __future__ import annotations

import sqlite3

from app.core.model import ServiceRecord, ServiceState

SCHEMA = """
CREATE TABLE IF NOT EXISTS services (
    pid INTEGER PRIMARY KEY,
    create_time REAL NOT NULL,
    token TEXT NOT NULL,
    cmdline_token TEXT NOT NULL,
    key TEXT NOT NULL,
    service_name TEXT NOT NULL,
    company TEXT NOT NULL,
    port INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    essential INTEGER NOT NULL,
    started_at REAL NOT NULL
)
"""


class Ledger:
    """Rows are derived from service records (`add` once the process exists); reading them back
    gives records again, which a later panel treats as orphans until proven otherwise."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        conn.execute(SCHEMA)

    def add(self, record: ServiceRecord) -> None:
        if record.pid is None or record.create_time is None or record.started_at is None:
            raise ValueError(f"{record.key}: only a spawned service has a ledger row")
        self._conn.execute(
            "INSERT OR REPLACE INTO services VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                record.pid,
                record.create_time,
                record.token,
                record.cmdline_token,
                record.key,
                record.service_name,
                record.company,
                record.port,
                record.run_id,
                int(record.essential),
                record.started_at,
            ),
        )

    def remove(self, pid: int) -> None:
        self._conn.execute("DELETE FROM services WHERE pid = ?", (pid,))

    def records(self) -> list[ServiceRecord]:
        """The services' rows."""
        return self.read(self._conn)

    def helpers(self) -> list[ServiceRecord]:
        """The helper processes' rows (port 0)."""
        return self.read(self._conn, helpers=True)

    @staticmethod
    def read(conn: sqlite3.Connection, helpers: bool = False) -> list[ServiceRecord]:
        """The services' rows (or the helpers') as records; also from a read-only connection
        (no table: no rows)."""
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='services'"
        ).fetchone()
        query = "SELECT * FROM services WHERE (port = 0) = ? ORDER BY port"
        rows = conn.execute(query, (int(helpers),)).fetchall() if exists else []
        return [
            ServiceRecord(
                key=r["key"],
                service_name=r["service_name"],
                company=r["company"],
                port=r["port"],
                run_id=r["run_id"],
                essential=bool(r["essential"]),
                state=ServiceState.RUNNING,
                pid=r["pid"],
                create_time=r["create_time"],
                token=r["token"],
                cmdline_token=r["cmdline_token"],
                started_at=r["started_at"],
            )
            for r in rows
        ]
