"""The OpenAPI document is true of the server: schemathesis (every check, as `--checks all`)
against a real core and API on the test ports, run routes included.

Bounded: a few examples per operation, a deadline for the whole run, a small pool and few
customers (the served document says so: its limits follow the settings), and every step's
simulated latency and think time kept short before a generated request is sent (a value the
document allows stays one it allows)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema

from app.core.settings import LauncherKind
from tests.conftest import make_settings
from tests.helpers import api_in_thread

DEADLINE_S = 400  # the whole run, one pass of each phase (no max-time: it repeats)
SHORT_MS = 20  # longest simulated latency or think time a generated run may ask for


def _shorten(value: Any) -> None:
    """Latency and think time within the allowed range made short (recursively); anything
    out of range is left as generated, so a request meant to be refused still is."""
    if isinstance(value, dict):
        for key, item in value.items():
            fast = isinstance(item, int | float) and not isinstance(item, bool)
            if key in ("latencyMs", "thinkTimeMs") and fast and SHORT_MS < item <= 60_000:
                value[key] = SHORT_MS
            else:
                _shorten(item)
    elif isinstance(value, list):
        for item in value:
            _shorten(item)


def _failures(url: str) -> list[str]:
    config = SchemathesisConfig.from_dict(
        {
            # Journeys are deep objects with patterned names: generation filters a lot.
            "suppress-health-check": ["filter_too_much", "too_slow"],
            "request-timeout": 60,
            "generation": {"max-examples": 3, "database": "none"},
            # No links between operations are documented: the stateful phase would only
            # repeat what the others send, at twice their time.
            "phases": {"stateful": {"enabled": False}},
            # A run whose journey does not fit the four ports next to the journeys a generated
            # `cleanup: company` or `preserve` keeps is refused with the documented 503 (the
            # pool cannot fit it): the answer the document gives, not a server error.
            "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]}},
        }
    )
    config.projects.override.checks.update(included_check_names=["all"])  # --checks all
    schema = schemathesis.openapi.from_url(f"{url}/api/openapi.json", config=config)

    def before_call(_ctx: Any, case: Any, _kwargs: dict[str, Any]) -> None:
        _shorten(case.body)
        # The alias's own default think time is 100 ms: asked for short instead.
        if case.path.endswith("/simulate-batch-chained") and isinstance(case.body, dict):
            case.body.setdefault("thinkTimeMs", SHORT_MS)

    schemathesis.hook(before_call)  # a global hook only: taken out again below
    try:
        return _run(schema)
    finally:
        schemathesis.hooks.unregister(before_call)


def _run(schema: Any) -> list[str]:
    found: list[str] = []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            for case_id, checks in event.recorder.checks.items():
                for check in checks:
                    if check.status is Status.FAILURE and check.failure_info is not None:
                        failure = check.failure_info.failure
                        found.append(f"{event.recorder.label}: {check.name}: {failure.title}")
                        DETAILS.append(_detail(event.recorder, case_id))
            TIMES.append(
                (
                    round(event.elapsed_time, 1),
                    len(event.recorder.cases),
                    event.phase.value,
                    event.recorder.label,
                )
            )
        elif isinstance(event, events.NonFatalError | events.FatalError):
            found.append(f"error: {event}")
        elif isinstance(event, events.EngineFinished) and event.stop_reason.value != "completed":
            found.append(f"stopped: {event.stop_reason.value}")
    return sorted(set(found))


TIMES: list[tuple[float, int, str, str]] = []
DETAILS: list[str] = []


def _detail(recorder: Any, case_id: str) -> str:
    """The request and the answer of a failing case, for the failure message."""
    case = recorder.cases[case_id].value
    interaction = recorder.interactions.get(case_id)
    answer = interaction.response if interaction is not None else None
    said = f"{answer.status_code} {(answer.content or b'')[:300]!r}" if answer else "no answer"
    return f"{case.method} {case.formatted_path} {str(case.body)[:1500]} -> {said}"


@pytest.mark.timeout(DEADLINE_S + 120)
def test_schemathesis_finds_the_document_true(tmp_path: Path, port_range: range) -> None:
    # The document does not depend on how services start: the fast launcher only.
    settings = make_settings(LauncherKind.FORK, tmp_path, port_range)
    small = settings.with_(port_hi=settings.port_lo + 3, max_customers=3)
    with api_in_thread(small) as (url, core, _loop):
        core.warm_up = False  # each new chain's warm-up requests: not what is tested here
        failures = _failures(url)
    slowest = "\n".join(map(str, sorted(TIMES, reverse=True)[:10]))
    details = "\n".join(DETAILS[:40])
    assert failures == [], "\n".join(failures) + f"\n\n{details}\n\nslowest:\n{slowest}"
