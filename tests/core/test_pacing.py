"""Demo pacing is honest (docs/architecture.md, "A Run Journey, phase by phase"): the pause
comes where no cell is changing, an empty phase is not padded, and a paced phase says how much
of its time was the pause. Real services on real ports."""

from __future__ import annotations

import time

from app.core.events import CoreEvents, ServiceChange, ServiceEvent
from app.core.model import Phase
from app.core.orchestrator import open_core
from app.core.settings import Settings
from tests.conftest import run
from tests.helpers import journey

PACING_MS = 1000
ENDED = {ServiceChange.STOPPED, ServiceChange.KILLED}


def test_an_empty_phase_is_not_padded_and_a_paced_one_says_so(settings: Settings) -> None:
    """On an empty pool nothing is stopped, waited for or swept: those phases last their work
    (bounded well under the pacing), the launch and the simulation carry the pause, marked."""

    async def scenario() -> None:
        async with open_core(settings.with_(demo_pacing_ms=PACING_MS)) as core:
            result = await core.run_journey(journey("Pace Co", "PaceOneService", "PaceTwoService"))
            assert result.ok, result.error
            phases = {p.phase: p for p in result.phases}
            for empty in (Phase.STOP, Phase.WAIT, Phase.SWEEP):
                assert phases[empty].paced_ms == 0, empty
                assert phases[empty].duration_ms < PACING_MS / 2, phases[empty]
                assert "pacedMs" not in phases[empty].as_json()
            for busy in (Phase.LAUNCH, Phase.SIMULATE):
                paced = phases[busy]
                assert paced.paced_ms >= PACING_MS * 0.95, paced  # asyncio.sleep is not early
                assert paced.duration_ms >= paced.paced_ms, paced
                assert paced.as_json()["pacedMs"] == round(paced.paced_ms, 2)

    run(scenario(), timeout=60)


def test_a_stopped_service_is_not_kept_stopping_by_the_pause(settings: Settings) -> None:
    """Switching journeys with pacing: the stop phase pauses before its signals (the services
    still run), and a stopped service's record goes (its port free) as soon as its process has
    exited, not a pause later."""
    events = CoreEvents()
    seen: dict[tuple[str, ServiceChange], float] = {}

    def note(event: ServiceEvent) -> None:
        seen.setdefault((event.key, event.change), time.monotonic())

    events.service.connect(note)

    async def scenario() -> None:
        async with open_core(settings, events) as core:
            first = await core.run_journey(journey("Old Co", "OldOneService", "OldTwoService"))
            assert first.ok, first.error
            core.set_demo_pacing(PACING_MS)
            second = await core.run_journey(journey("New Co", "NewOneService"))
            assert second.ok, second.error
            phases = {p.phase: p for p in second.phases}
            assert phases[Phase.STOP].paced_ms >= PACING_MS * 0.95
            assert phases[Phase.WAIT].paced_ms >= PACING_MS * 0.95
            for record in first.services:
                stopping = seen[(record.key, ServiceChange.STOPPING)]
                ended = min(t for (k, c), t in seen.items() if k == record.key and c in ENDED)
                # A fork-server service exits within ≈50 ms of SIGTERM; bounded, not timed.
                assert ended - stopping < PACING_MS / 2, record.key

    run(scenario(), timeout=60)
