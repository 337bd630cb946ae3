"""A run's progress through its simulate phase (docs/architecture.md, "A Run Journey, phase by
phase"): real services, a real run; the events arrive in order between the phase's start and
end, done counts only grow, the last one is every customer, failures are counted; and the
meter emits at most ten a second whatever the number of customers."""

from __future__ import annotations

from app.core.events import PhaseEvent, PhaseStatus, RunProgress
from app.core.model import Phase
from app.core.orchestrator import open_core
from app.core.progress import PROGRESS_INTERVAL_S, ProgressMeter
from app.core.settings import Settings
from tests.conftest import run
from tests.helpers import journey

CUSTOMERS = 200
CONCURRENCY = 10
STEP_MS = 20  # 200 customers, 10 at once, ≥ 20 ms each: the phase lasts ≥ 0.4 s


def test_a_real_run_reports_its_customers_in_order_up_to_all(settings: Settings) -> None:
    seen: list[PhaseEvent | RunProgress] = []

    async def scenario() -> None:
        async with open_core(settings) as core:
            core.events.phase.connect(seen.append)
            core.events.progress.connect(seen.append)
            trip = journey(
                "Progress Co",
                "LoginService",
                "PayService",
                step1={"latencyMs": STEP_MS},
                step2={"errorRate": 0.3},
            )
            result = await core.run_journey(
                trip, customers=CUSTOMERS, mode="multiple", concurrency=CONCURRENCY, seed=7
            )
            assert result.ok and result.simulation, result.error
            summary = result.simulation.summary
            progress = [e for e in seen if isinstance(e, RunProgress)]
            assert {p.run_id for p in progress} == {result.run_id}
            assert progress[0].done == 0 and len(progress) >= 3  # the first, some, the last
            done = [p.done for p in progress]
            assert done == sorted(done) and len(set(done)) == len(done)  # only ever grows
            last = progress[-1]
            assert (last.done, last.total, last.finished) == (CUSTOMERS, CUSTOMERS, True)
            assert last.failed == summary.failed > 0
            assert [p.failed for p in progress] == sorted(p.failed for p in progress)
            # Throttled: at most ten a second of the phase, the first and the last besides.
            assert len(progress) <= summary.duration_ms / 1000 / PROGRESS_INTERVAL_S + 3

            simulate = [
                i
                for i, e in enumerate(seen)
                if isinstance(e, PhaseEvent) and e.phase is Phase.SIMULATE
            ]
            started, finished = simulate
            assert seen[started].status is PhaseStatus.STARTED
            assert seen[finished].status is PhaseStatus.FINISHED
            inside = [i for i, e in enumerate(seen) if isinstance(e, RunProgress)]
            assert started < min(inside) and max(inside) < finished

    run(scenario())


def test_the_meter_emits_at_most_ten_a_second_and_always_the_last() -> None:
    now = [0.0]
    sent: list[RunProgress] = []
    meter = ProgressMeter("run-x", 1_000, sent.append, clock=lambda: now[0])
    meter.start()
    for i in range(1_000):  # a customer a millisecond: one second in all
        now[0] += 0.001
        meter.count(ok=i % 4 != 0)
    assert sent[0] == RunProgress("run-x", 0, 1_000, 0)
    assert sent[-1] == RunProgress("run-x", 1_000, 1_000, 250)
    assert 10 <= len(sent) <= 12  # ten a second, the first and the last
    empty: list[RunProgress] = []
    ProgressMeter("run-y", 0, empty.append).start()
    assert empty == [RunProgress("run-y", 0, 0, 0)] and empty[0].finished
