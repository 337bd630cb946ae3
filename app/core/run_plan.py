"""What a Run Journey will do, decided before anything stops: which resident journeys it
replaces, which of their services it keeps, what it stops and what it launches, and whether it
all fits the pool. A plan that cannot work is refused here, with a message naming the problem
(docs/architecture.md, "Several companies in one pool")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from app.core.errors import PoolExhaustedError, RunConflictError
from app.core.journeys import Journey, Step
from app.core.model import CleanupStrategy, Reuse, ServiceSpec, sanitize_company
from app.core.residents import Resident, Residents
from app.core.runs import RunRequest
from app.core.services import ServiceManager


@dataclass(frozen=True)
class Plan:
    journey_id: str  # the id the new journey will have
    replaced: tuple[Resident, ...]  # resident journeys this run replaces
    stop: tuple[str, ...]  # service keys it stops
    kept: tuple[str, ...]  # services of replaced journeys it keeps (their steps are unchanged)
    launch: tuple[ServiceSpec, ...]  # essentials not yet running, then the journey's services


def plan_run(
    req: RunRequest,
    journey_id: str,
    residents: Residents,
    manager: ServiceManager,
    essentials: Iterable[ServiceSpec],
    preserved_by_settings: Iterable[str],
    cleanup_enabled: bool = True,
) -> Plan:
    """The plan for `req`, or RunConflictError / PoolExhaustedError; nothing changes here.
    With `cleanup_enabled` False (test-only: proves the acceptance check can fail) nothing is
    replaced or stopped, and a service already running is simply used again."""
    journey = req.journey
    launch_all = _launch(journey, journey_id, manager, essentials, set())
    if not cleanup_enabled:
        return Plan(journey_id, (), (), (), tuple(launch_all))
    preserved = {sanitize_company(c) for c in (*req.preserve, *preserved_by_settings)}
    replaced = [
        r
        for r in residents
        if r.replaced_by(journey, req.cleanup) and r.company_key not in preserved
    ]
    staying = [r for r in residents if r not in replaced]
    wanted = {s.key for s in journey.service_specs()}
    _refuse_shared(journey, wanted, staying, preserved, req.cleanup)
    kept = _unchanged(journey, replaced, wanted) if req.reuse is Reuse.UNCHANGED else set()
    owned = {k for r in staying for k in r.keys}
    stop = [k for r in replaced for k in sorted(r.keys) if k not in kept]
    if req.cleanup is CleanupStrategy.ALL:  # every other customer service too, as before
        stop += [k for k in manager.customer_keys() if k not in owned | kept | set(stop)]
    launch = _launch(journey, journey_id, manager, essentials, kept)
    if problems := manager.room(manager.needs(launch), freed=stop):
        raise PoolExhaustedError("; ".join(problems))
    return Plan(journey_id, tuple(replaced), tuple(stop), tuple(sorted(kept)), tuple(launch))


def _refuse_shared(
    journey: Journey,
    wanted: set[str],
    staying: list[Resident],
    preserved: set[str],
    strategy: CleanupStrategy,
) -> None:
    """A journey that stays cannot lend its services to the new one: one process serves one
    journey (its traffic, its incidents, its stop)."""
    for resident in staying:
        shared = sorted(wanted & resident.keys)
        if not shared:
            continue
        why = (
            "is preserved"
            if resident.company_key in preserved
            else f"is not replaced by the {strategy.value!r} cleanup"
        )
        raise RunConflictError(
            f"{', '.join(shared)} already serve{'s' if len(shared) == 1 else ''} the running "
            f"journey {resident.id} of {resident.journey.company_name} "
            f"({resident.journey.industry_type}), which {why}: stop that journey first, or run "
            "with another cleanup strategy"
        )


def _unchanged(journey: Journey, replaced: list[Resident], wanted: set[str]) -> set[str]:
    """Services of replaced journeys whose steps are the same in the new journey (service,
    company, latency and error settings): they keep running."""
    new = _settings_by_key(journey)
    kept = set()
    for resident in replaced:
        old = _settings_by_key(resident.journey)
        kept |= {k for k in resident.keys & wanted if old.get(k) == new.get(k)}
    return kept


def _settings_by_key(journey: Journey) -> dict[str, tuple[tuple[float, float, str | None], ...]]:
    out: dict[str, list[tuple[float, float, str | None]]] = {}
    for step in journey.steps:
        out.setdefault(_key(journey, step), []).append(_step_settings(journey, step))
    return {k: tuple(v) for k, v in out.items()}


def _step_settings(journey: Journey, step: Step) -> tuple[float, float, str | None]:
    rate = step.error_rate or journey.error_rate
    return (step.latency_ms, rate, step.error_type or journey.error_type)


def _key(journey: Journey, step: Step) -> str:
    return ServiceSpec(step.service_name, journey.company_name).key


def _launch(
    journey: Journey,
    journey_id: str,
    manager: ServiceManager,
    essentials: Iterable[ServiceSpec],
    kept: set[str],
) -> list[ServiceSpec]:
    """Essentials not yet running, then the journey's services (an essential key wins)."""
    running = {s.key for s in manager.services()}
    specs = [s for s in essentials if s.key not in running]
    taken = {s.key for s in specs} | {s.key for s in manager.services() if s.essential} | kept
    return specs + [
        ServiceSpec(s.service_name, s.company, journey_id=journey_id)
        for s in journey.service_specs()
        if s.key not in taken
    ]
