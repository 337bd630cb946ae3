"""What a run is asked to do (`RunRequest`, validated) and what it did (`RunResult`)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from app.core.errors import Problem, ValidationError
from app.core.journeys import Journey, parse_journey
from app.core.limits import (
    DEFAULT_CONCURRENCY,
    MAX_CONCURRENCY,
    MAX_CUSTOMERS,
    MAX_CUSTOMERS_SHOWN,
    MAX_STEPS,
    MAX_THINK_TIME_MS,
)
from app.core.model import CleanupStrategy, Mode, Phase, Reuse, ServiceRecord
from app.core.simulation import SimulationResult


@dataclass(frozen=True)
class PhaseResult:
    phase: Phase
    started_at: float
    duration_ms: float  # the whole phase, its demo-pacing pause included
    counts: dict[str, int] = field(default_factory=dict)
    paced_ms: float = 0.0  # of which the demo-pacing pause

    def as_json(self) -> dict[str, Any]:
        paced = {"pacedMs": round(self.paced_ms, 2)} if self.paced_ms else {}
        return {"name": self.phase.value, "ms": round(self.duration_ms, 2), **paced, **self.counts}


@dataclass(frozen=True)
class RunRequest:
    """A validated request to run a journey."""

    journey: Journey
    customers: int = 1
    mode: Mode = Mode.SINGLE
    think_time_ms: float = 0.0
    concurrency: int = DEFAULT_CONCURRENCY
    seed: int | None = None
    cleanup: CleanupStrategy = CleanupStrategy.ALL  # which resident journeys it replaces
    preserve: tuple[str, ...] = ()  # companies it must not replace (besides the settings')
    reuse: Reuse = Reuse.RESTART


MAX_PRESERVED = 40  # companies named in one preserve list (a pool holds at most 40 services)


@dataclass(frozen=True)
class RunResult:
    run_id: str
    ok: bool
    phases: tuple[PhaseResult, ...]
    stopped: int = 0
    stale_cleaned: int = 0
    services: tuple[ServiceRecord, ...] = ()
    simulation: SimulationResult | None = None
    error: str | None = None
    company: str = ""
    reused: bool = False  # simulated on the running services: only the simulate phase ran
    cancelled: bool = False  # Stop All or closing cancelled it; its services were rolled back
    journey_id: str = ""  # the resident journey it made (or reused)

    def phase(self, phase: Phase) -> PhaseResult | None:
        return next((p for p in self.phases if p.phase is phase), None)

    @property
    def total_ms(self) -> float:
        return sum(p.duration_ms for p in self.phases)

    def as_json(self) -> dict[str, Any]:
        sim = self.simulation
        # A 10,000-customer run would answer with tens of MB: the summary counts everyone, the
        # list shows the first ones.
        shown = sim.customers[:MAX_CUSTOMERS_SHOWN] if sim else ()
        omitted = len(sim.customers) - len(shown) if sim else 0
        return {
            "ok": self.ok,
            "runId": self.run_id,
            "phases": [p.as_json() for p in self.phases],
            "cleanup": {"stopped": self.stopped, "staleCleaned": self.stale_cleaned},
            "services": [service_json(s) for s in self.services],
            "customers": [c.to_json() for c in shown],
            "summary": sim.summary.to_json() if sim else None,
            **({"customersOmitted": omitted} if omitted else {}),
            **({"error": self.error} if self.error else {}),
            **({"journeyId": self.journey_id} if self.journey_id and self.ok else {}),
            **({"reused": True} if self.reused else {}),
            **({"cancelled": True} if self.cancelled else {}),
        }


def service_json(s: ServiceRecord) -> dict[str, Any]:
    return {
        "name": s.service_name,
        "key": s.key,
        "company": s.company,
        "port": s.port,
        "pid": s.pid,
        "essential": s.essential,
    }


RUN_ID_RANDOM_BYTES = 6


def new_run_id() -> str:
    """When the run started, to the second, and 48 random bits. The runs of one second must
    not share an id (the history's key): with 24 bits, the tens of runs a second of an API
    client (schemathesis on the run routes) collided now and then, the run refused with 507."""
    return f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(RUN_ID_RANDOM_BYTES).hex()}"


def make_request(
    journey: Any,
    customers: Any = 1,
    mode: Any = Mode.SINGLE,
    think_time_ms: Any = 0,
    concurrency: Any = DEFAULT_CONCURRENCY,
    seed: Any = None,
    max_steps: int = MAX_STEPS,
    max_customers: int = MAX_CUSTOMERS,
    cleanup: Any = None,
    preserve: Any = None,
    reuse: Any = None,
    default_cleanup: CleanupStrategy = CleanupStrategy.ALL,
) -> RunRequest:
    """Validate every run parameter; raises ValidationError listing what is wrong."""
    problems: list[Problem] = []
    try:
        parsed = journey if isinstance(journey, Journey) else parse_journey(journey, max_steps)
    except ValidationError as exc:
        problems += exc.problems
        parsed = None
    if not _whole(customers, 1, max_customers):
        problems.append(
            Problem("customers", f"Customers must be a whole number from 1 to {max_customers}")
        )
    try:
        mode = Mode(mode)
    except ValueError:
        problems.append(Problem("mode", f"Mode must be one of {', '.join(m.value for m in Mode)}"))
    if not _number(think_time_ms, 0, MAX_THINK_TIME_MS):
        problems.append(
            Problem(
                "thinkTimeMs", f"Think time must be a number of ms from 0 to {MAX_THINK_TIME_MS}"
            )
        )
    if not _whole(concurrency, 1, MAX_CONCURRENCY):
        problems.append(
            Problem(
                "concurrency", f"Concurrency must be a whole number from 1 to {MAX_CONCURRENCY}"
            )
        )
    if seed is not None and not _whole(seed, 0, 2**63):
        problems.append(Problem("seed", "Seed must be a non-negative whole number"))
    strategy = _choice(cleanup, CleanupStrategy, default_cleanup, "cleanup", "Cleanup", problems)
    again = _choice(reuse, Reuse, Reuse.RESTART, "reuse", "Reuse", problems)
    kept = _companies(preserve, problems)
    if problems or parsed is None:
        raise ValidationError(problems)
    return RunRequest(
        parsed,
        customers,
        mode,
        float(think_time_ms),
        concurrency,
        seed,
        cleanup=strategy,
        preserve=kept,
        reuse=again,
    )


def _choice(
    value: Any, kind: type[Any], default: Any, field: str, label: str, problems: list[Problem]
) -> Any:
    if value is None:
        return default
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(c.value for c in kind)
        problems.append(Problem(field, f"{label} must be one of {choices}"))
        return default


def _companies(value: Any, problems: list[Problem]) -> tuple[str, ...]:
    """A preserve list: company names, as journeys name them."""
    if value is None:
        return ()
    ok = isinstance(value, list) and len(value) <= MAX_PRESERVED
    names = [v.strip() for v in value if isinstance(v, str)] if ok else []
    if not ok or len(names) != len(value) or not all(0 < len(n) <= 120 for n in names):
        problems.append(
            Problem(
                "preserve",
                f"Preserve must be a list of up to {MAX_PRESERVED} company names, e.g. "
                '["Acme Corp"]',
            )
        )
        return ()
    return tuple(names)


def _whole(value: Any, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _number(value: Any, lo: float, hi: float) -> bool:
    ok_type = isinstance(value, int | float) and not isinstance(value, bool)
    return ok_type and lo <= value <= hi
