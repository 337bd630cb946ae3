"""Run history in the state database: every run with its phases, services and per-step results."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.core.errors import StateDatabaseError
from app.core.runs import RunResult, service_json

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY,
        started_at REAL NOT NULL,
        finished_at REAL,
        status TEXT NOT NULL,
        mode TEXT NOT NULL,
        company TEXT NOT NULL,
        journey TEXT NOT NULL,
        phases TEXT NOT NULL DEFAULT '[]',
        services TEXT NOT NULL DEFAULT '[]',
        summary TEXT,
        error TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS step_results (
        run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        customer_id TEXT NOT NULL,
        step_index INTEGER NOT NULL,
        step_name TEXT NOT NULL,
        service_name TEXT NOT NULL,
        status TEXT NOT NULL,
        http_status INTEGER,
        latency_ms REAL,
        error TEXT,
        trace_id TEXT,
        event TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS step_results_run ON step_results(run_id)",
)
KEEP_RUNS = 500  # older runs are pruned so the file cannot grow without bound
# Per-step rows are kept for the first customers of a run only: a 10,000-customer run would
# otherwise write ~100 MB. Its summary still counts every customer.
KEEP_CUSTOMERS_PER_RUN = 1_000
KEEP_BYTES = 64 * 2**20  # and the oldest runs go once the database grows past this


_SET_STATUS = "UPDATE runs SET finished_at=?, status=?, error=? WHERE run_id=?"


@contextmanager
def _writing(what: str) -> Iterator[None]:
    """The one place a history write failure becomes what it is: the state database cannot be
    written (read-only, locked by another process, disk full); the API answers 507."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StateDatabaseError(
            f"the state database cannot be written ({exc}): {what} was not recorded. Check that "
            "the state directory is writable and the disk not full (BIZOBS_STATE_DIR)"
        ) from exc


def _loads(text: str) -> Any:
    """A stored JSON column. Rows written before every answer became RFC 8259 JSON may hold
    NaN or Infinity: read back as null, so the history stays answerable."""
    return json.loads(text, parse_constant=lambda _token: None)


class History:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        for statement in SCHEMA:
            conn.execute(statement)
        # Finishes that could not be written (a full disk): written with the next change, so a
        # run does not stay "running" once the disk has room again.
        self._unwritten: list[tuple[Any, ...]] = []

    def start(self, run_id: str, started_at: float, mode: str, journey: dict[str, Any]) -> None:
        """The run's first write, before anything is stopped or started: StateDatabaseError if
        the database refuses it (so a run that cannot be recorded does not begin)."""
        self.flush()
        with _writing(f"run {run_id}"):
            self._conn.execute(
                "INSERT INTO runs (run_id, started_at, status, mode, company, journey) "
                "VALUES (?,?,?,?,?,?)",
                (
                    run_id,
                    started_at,
                    "running",
                    mode,
                    journey.get("companyName", ""),
                    json.dumps(journey, allow_nan=False),
                ),
            )

    def finish_run(self, result: RunResult, status: str) -> None:
        """Record how a run ended: its phases, services, summary and per-step results."""
        sim = result.simulation
        customers = [
            c.to_json() | {"steps": [s.to_json() | {"event": s.event} for s in c.steps]}
            for c in (sim.customers[:KEEP_CUSTOMERS_PER_RUN] if sim else ())
        ]
        self.finish(
            result.run_id,
            time.time(),
            status,
            [p.as_json() for p in result.phases],
            [service_json(s) for s in result.services],
            sim.summary.to_json() if sim else None,
            customers,
            result.error,
        )

    def finish(
        self,
        run_id: str,
        finished_at: float,
        status: str,
        phases: list[dict[str, Any]],
        services: list[dict[str, Any]],
        summary: dict[str, Any] | None,
        customers: list[dict[str, Any]],
        error: str | None = None,
    ) -> None:
        rows = [
            (
                run_id,
                c["customer"]["id"],
                i,
                s["stepName"],
                s["serviceName"],
                s["status"],
                s["httpStatus"],
                s["latencyMs"],
                s["error"],
                c["traceId"],
                json.dumps(s["event"]) if s.get("event") else None,
            )
            for c in customers[:KEEP_CUSTOMERS_PER_RUN]
            for i, s in enumerate(c["steps"])
        ]
        status_row = (finished_at, status, error, run_id)
        try:
            with _writing(f"the end of run {run_id}"), self._conn:
                self._conn.execute("BEGIN")
                self._conn.execute(
                    "UPDATE runs SET phases=?, services=?, summary=? WHERE run_id=?",
                    (
                        json.dumps(phases),
                        json.dumps(services),
                        json.dumps(summary) if summary else None,
                        run_id,
                    ),
                )
                self._conn.execute(_SET_STATUS, status_row)
                self._conn.executemany(
                    "INSERT INTO step_results VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows
                )
                self._prune()
        except StateDatabaseError:
            self._unwritten.append(status_row)  # at least the outcome, once there is room
            raise

    def flush(self) -> None:
        """Write the outcomes that could not be written before (best effort)."""
        while self._unwritten:
            try:
                self._conn.execute(_SET_STATUS, self._unwritten[0])
            except sqlite3.Error:
                return
            self._unwritten.pop(0)

    def _prune(self) -> None:
        cutoff = self._conn.execute(
            "SELECT started_at FROM runs ORDER BY started_at DESC LIMIT 1 OFFSET ?", (KEEP_RUNS,)
        ).fetchone()
        if cutoff:
            self._drop_until(cutoff[0])
        while self._used_bytes() > KEEP_BYTES and self.count() > 1:
            oldest = self._conn.execute("SELECT MIN(started_at) FROM runs").fetchone()[0]
            self._drop_until(oldest)

    def _drop_until(self, started_at: float) -> None:
        old = "SELECT run_id FROM runs WHERE started_at <= ?"
        self._conn.execute(f"DELETE FROM step_results WHERE run_id IN ({old})", (started_at,))
        self._conn.execute("DELETE FROM runs WHERE started_at <= ?", (started_at,))

    def _used_bytes(self) -> int:
        pages = self._conn.execute("PRAGMA page_count").fetchone()[0]
        free = self._conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = self._conn.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self._conn.execute(
            "SELECT * FROM runs ORDER BY started_at DESC LIMIT ?", (limit,)
        ).fetchall()
        return [_run_json(r) for r in rows]

    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def get(self, run_id: str) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        out = _run_json(row)
        steps = self._conn.execute(
            "SELECT * FROM step_results WHERE run_id = ? ORDER BY customer_id, step_index",
            (run_id,),
        ).fetchall()
        out["stepResults"] = [
            {k: (_loads(r[k]) if k == "event" and r[k] else r[k]) for k in r.keys()}  # noqa: SIM118 (sqlite3.Row)
            for r in steps
        ]
        return out

    def mark_interrupted(self) -> int:
        """Runs still 'running' belong to a panel that died: say so instead of lying."""
        cur = self._conn.execute("UPDATE runs SET status='interrupted' WHERE status='running'")
        return cur.rowcount


def _run_json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "runId": row["run_id"],
        "startedAt": row["started_at"],
        "finishedAt": row["finished_at"],
        "status": row["status"],
        "mode": row["mode"],
        "company": row["company"],
        "journey": _loads(row["journey"]),
        "phases": _loads(row["phases"]),
        "services": _loads(row["services"]),
        "summary": _loads(row["summary"]) if row["summary"] else None,
        "error": row["error"],
    }
