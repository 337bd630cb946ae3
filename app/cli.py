"""Headless commands: ports, stop-all, run, serve. Each uses the same core as the window."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import TextIO

from app.config import Settings
from app.core.errors import CoreError, StateLockedError
from app.core.ledger import Ledger
from app.core.model import PortInfo
from app.core.orchestrator import Core
from app.core.ports import Orphan, PortPool


def format_ports(ports: Sequence[PortInfo]) -> str:
    rows = [("PORT", "STATE", "SERVICE", "PID")]
    for p in ports:
        state = f"{p.state.value}{' (essential)' if p.essential else ''}"
        rows.append((str(p.port), state, p.key or p.process_name or "", str(p.pid or "")))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    counts: dict[str, int] = {}
    for p in ports:
        counts[p.state.value] = counts.get(p.state.value, 0) + 1
    lines.append("")
    lines.append(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return "\n".join(lines)


def ports_offline(settings: Settings) -> list[PortInfo]:
    """The pool as seen from outside any panel: ledger rows still alive show as stale orphans.
    Read-only: reconciling (stopping orphans) is for a panel start or `stop-all`."""
    from app.core.db import open_db

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    conn, _ = open_db(settings.db_path)
    try:
        orphans = {e.pid: Orphan(e.pid, e.create_time, e.key) for e in Ledger(conn).entries()}
    finally:
        conn.close()
    return PortPool(settings.ports).snapshot(orphans=orphans)


def cmd_ports(settings: Settings, out: TextIO = sys.stdout) -> int:
    print(format_ports(ports_offline(settings)), file=out)
    return 0


async def _stop_all(settings: Settings, out: TextIO) -> int:
    core = await Core.open(settings)
    try:
        report = await core.stop_all()
    finally:
        await core.close()
    stopped = [*core.reconciled, *report.stopped]
    print(f"stopped {len(stopped)} services{': ' if stopped else ''}{', '.join(stopped)}", file=out)
    return 0


def cmd_stop_all(settings: Settings, out: TextIO = sys.stdout) -> int:
    try:
        return asyncio.run(_stop_all(settings, out))
    except StateLockedError as exc:
        print(f"{exc}\nA running panel stops its own services: use its Stop All.", file=sys.stderr)
        return 2
    except CoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
