"""A running step service's incidents: what the panel told it to suffer, and for how long.

At most one incident of a kind at a time. Each ends by itself at its `endsAt` (CLOCK_MONOTONIC,
the panel's clock too), whatever happens to the panel, or earlier when the panel ends it. The
effects (docs/architecture.md, "Incidents and scenarios"):

- errors, latency, hang shape each /process request (`Affect`), never /health: the watcher
  keeps seeing a service that answers;
- crash ends the process once, shortly after the control answer left;
- cpu burns a share of a core in a thread of its own, hashing (which releases the GIL, so the
  event loop keeps answering), never more than `cores` of CPU time per wall-clock period;
- memory grows an anonymous mapping by touching its pages (RSS really grows), holds it at the
  cap, and unmaps it at the end (RSS falls back).

Delays (hang, latency) never hold a request past the moment its caller stops waiting
(`protocol.answer_by` of the chain's deadline, less a slack): the step then fails as `timeout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import mmap
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from app.service.errors import MESSAGES, ErrorType
from app.service.incident_kinds import CRASH_EXIT_CODE, TAG_ORDER, IncidentKind, IncidentSpec

CRASH_DELAY_S = 0.1  # the control answer leaves first
ANSWER_SLACK_S = 0.1  # a delayed hop answers this long before its caller gives up on it
CPU_PERIOD_S = 0.1
CPU_CHUNK = bytes(64 * 1024)  # one hash of it: ≈0.1 ms, with the GIL released
MEMORY_TICK_S = 0.1
PAGE = mmap.PAGESIZE
MIB = 1 << 20


class IncidentRefused(Exception):
    """A control message this service cannot carry out (HTTP status, message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class CpuBurner:
    """A thread that burns `cores` of one core: each period it hashes until its own CPU time
    grew by `cores` × the period (or the period is over), then sleeps the rest."""

    def __init__(self, cores: float) -> None:
        self.cores = cores
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="incident-cpu", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            wall, cpu = time.monotonic(), time.thread_time()
            budget = self.cores * CPU_PERIOD_S
            while (
                time.thread_time() - cpu < budget
                and time.monotonic() - wall < CPU_PERIOD_S
                and not self._stop.is_set()
            ):
                hashlib.sha256(CPU_CHUNK).digest()
            self._stop.wait(max(0.0, CPU_PERIOD_S - (time.monotonic() - wall)))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)


class MemoryHog:
    """An anonymous mapping of `cap_mb`, its pages touched at `mb_per_s`, unmapped at the end."""

    def __init__(self, mb_per_s: float, cap_mb: float) -> None:
        self.mb_per_s = mb_per_s
        self.size = int(cap_mb * MIB) // PAGE * PAGE
        self.touched = 0
        self._map: mmap.mmap | None = mmap.mmap(-1, self.size)
        self._task = asyncio.get_running_loop().create_task(self._grow(), name="incident-memory")

    async def _grow(self) -> None:
        started = time.monotonic()
        while self._map is not None and self.touched < self.size:
            want = int(self.mb_per_s * MIB * (time.monotonic() - started))
            target = min(self.size, max(want // PAGE * PAGE, self.touched))
            if target > self.touched:
                pages = (target - self.touched) // PAGE
                # One byte per page: the kernel backs each page it is written to.
                self._map[self.touched : target : PAGE] = b"\x01" * pages
                self.touched = target
            await asyncio.sleep(MEMORY_TICK_S)  # pacing the growth

    def stop(self) -> None:
        self._task.cancel()
        if self._map is not None:
            self._map.close()  # munmap: the pages go back to the system at once
            self._map = None


@dataclass
class Running:
    """One incident in effect here."""

    id: str
    spec: IncidentSpec
    ends_at: float  # time.monotonic()
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    effect: CpuBurner | MemoryHog | None = None
    timer: asyncio.TimerHandle | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, **self.spec.to_json()}
        out["remainingS"] = round(max(0.0, self.ends_at - time.monotonic()), 3)
        if isinstance(self.effect, MemoryHog):
            out["touchedMb"] = round(self.effect.touched / MIB, 1)
        return out


@dataclass(frozen=True)
class Affect:
    """What the incidents did to one request: an error to answer with, and the incident that
    names the request's span."""

    error: tuple[int, str, str] | None = None  # HTTP status, error type, message
    tag: Running | None = None


class ServiceIncidents:
    """Used from the service's event loop only."""

    def __init__(self) -> None:
        self._by_kind: dict[IncidentKind, Running] = {}

    def active(self) -> list[Running]:
        return list(self._by_kind.values())

    def start(self, incident_id: str, spec: IncidentSpec, ends_at: float) -> Running:
        now = time.monotonic()
        if spec.kind in self._by_kind:
            have = self._by_kind[spec.kind].id
            raise IncidentRefused(409, f"a {spec.kind.value} incident ({have}) is in effect here")
        if any(r.id == incident_id for r in self._by_kind.values()):
            raise IncidentRefused(409, f"incident {incident_id} is in effect here already")
        ends_at = min(ends_at, now + spec.duration_s)
        if ends_at <= now:
            raise IncidentRefused(400, f"incident {incident_id} would end before it starts")
        running = Running(incident_id, spec, ends_at)
        loop = asyncio.get_running_loop()
        running.effect = _effect(spec)
        running.timer = loop.call_at(_loop_time(loop, ends_at), self.end, incident_id)
        if spec.kind is IncidentKind.CRASH:
            loop.call_later(CRASH_DELAY_S, _crash)
        self._by_kind[spec.kind] = running
        return running

    def end(self, incident_id: str) -> bool:
        for kind, running in list(self._by_kind.items()):
            if running.id == incident_id:
                del self._by_kind[kind]
                if running.timer is not None:
                    running.timer.cancel()
                if running.effect is not None:
                    running.effect.stop()
                running.ended.set()
                return True
        return False

    def end_all(self) -> None:
        for running in self.active():
            self.end(running.id)

    # -- what a request meets ---------------------------------------------------------------
    async def affect(self, answer_by: float | None) -> Affect:
        """Hold the request (hang), delay it (latency), fail it (errors), as the incidents in
        effect say; never past `answer_by` (time.monotonic), when given."""
        by_kind = self._by_kind
        tag = next((by_kind[k] for k in TAG_ORDER if k in by_kind), None)
        limit = answer_by - ANSWER_SLACK_S if answer_by is not None else None
        hang = by_kind.get(IncidentKind.HANG)
        if hang is not None and not await _held_until_end(hang, limit):
            return Affect(_timeout(hang, "held by a hang incident"), hang)
        latency = by_kind.get(IncidentKind.LATENCY)
        if latency is not None and not await _delayed(latency, limit):
            return Affect(_timeout(latency, "delayed by a latency incident"), latency)
        errors = by_kind.get(IncidentKind.ERRORS)
        if errors is not None and random.random() < errors.spec.rate:
            spec = errors.spec
            message = f"{MESSAGES[ErrorType(spec.error_type)]} (incident {errors.id})"
            return Affect((spec.status, spec.error_type, message), errors)
        return Affect(None, tag)


def _effect(spec: IncidentSpec) -> CpuBurner | MemoryHog | None:
    if spec.kind is IncidentKind.CPU:
        return CpuBurner(spec.cores)
    if spec.kind is IncidentKind.MEMORY:
        return MemoryHog(spec.mb_per_s, spec.cap_mb)
    return None


async def _held_until_end(hang: Running, limit: float | None) -> bool:
    """Wait for the hang to end; False when the request's own time ran out first."""
    until = hang.ends_at if limit is None else min(hang.ends_at, limit)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(hang.ended.wait(), max(0.0, until - time.monotonic()))
    return hang.ended.is_set()


async def _delayed(latency: Running, limit: float | None) -> bool:
    """Sleep the added latency; False when it would outlast the request's own time."""
    spec = latency.spec
    extra_s = (spec.add_ms + random.uniform(0.0, spec.jitter_ms)) / 1000
    if limit is not None and time.monotonic() + extra_s > limit:
        await asyncio.sleep(max(0.0, limit - time.monotonic()))  # the caller's patience
        return False
    await asyncio.sleep(extra_s)  # the simulated slowness itself
    return True


def _timeout(running: Running, what: str) -> tuple[int, str, str]:
    message = f"{what} ({running.id}) until the chain's time budget ran out"
    return 504, ErrorType.TIMEOUT.value, message


def _loop_time(loop: asyncio.AbstractEventLoop, monotonic: float) -> float:
    """`monotonic` (time.monotonic) on the loop's clock (the same clock by default)."""
    return loop.time() + (monotonic - time.monotonic())


def _crash() -> None:
    # A crash, not a stop: no cleanup, no goodbye; the panel's watcher sees the exit code.
    os._exit(CRASH_EXIT_CODE)
