"""The ledger: a persisted record of every service process the panel spawned.

It outlives the panel, so that a crashed panel's services can be found and stopped by the next
start (reconcile, in services.py). Rows are written before a process can serve and removed only
once the process is gone.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

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


@dataclass(frozen=True)
class LedgerEntry:
    pid: int
    create_time: float
    token: str  # the service's identity token (answered by /health)
    cmdline_token: str  # the token on the process's command line (proof it is ours)
    key: str
    service_name: str
    company: str
    port: int
    run_id: str
    essential: bool
    started_at: float


class Ledger:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        conn.execute(SCHEMA)

    def add(self, entry: LedgerEntry) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO services VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                entry.pid,
                entry.create_time,
                entry.token,
                entry.cmdline_token,
                entry.key,
                entry.service_name,
                entry.company,
                entry.port,
                entry.run_id,
                int(entry.essential),
                entry.started_at,
            ),
        )

    def remove(self, pid: int) -> None:
        self._conn.execute("DELETE FROM services WHERE pid = ?", (pid,))

    def entries(self) -> list[LedgerEntry]:
        rows = self._conn.execute("SELECT * FROM services ORDER BY port").fetchall()
        return [
            LedgerEntry(
                pid=r["pid"],
                create_time=r["create_time"],
                token=r["token"],
                cmdline_token=r["cmdline_token"],
                key=r["key"],
                service_name=r["service_name"],
                company=r["company"],
                port=r["port"],
                run_id=r["run_id"],
                essential=bool(r["essential"]),
                started_at=r["started_at"],
            )
            for r in rows
        ]
