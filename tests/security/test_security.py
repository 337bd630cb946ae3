"""Names from journeys never reach a shell, a file path or SQL raw; bodies are size-limited.

The tests that start services run on both launchers: a name reaches a fresh interpreter (exec)
as an argv item, and the fork server (fork) inside a JSON message."""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
import pytest

from app.core.orchestrator import open_core
from app.core.settings import Settings
from app.service.app import MAX_BODY as SERVICE_MAX_BODY
from tests.conftest import run
from tests.helpers import journey


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.both_launchers
def test_hostile_company_names_are_plain_data(settings: Settings, tmp_path: Path) -> None:
    canary = Path(f"/tmp/bizobs-pwned-{os.getpid()}")  # short: names are at most 120 chars
    hostile = [
        f"$(touch {canary})",
        f"`touch {canary}`; touch {canary}",
        "../../../../tmp/escape",
        "x'); DROP TABLE runs; --",
        'Robert"; DELETE FROM services; --',
    ]

    async def scenario() -> None:
        async with open_core(settings) as core:
            state_files = _files(settings.state_dir)
            for company in hostile:
                result = await core.run_journey(journey(company, "SafeService"))
                assert result.ok, result.error
                [svc] = [s for s in result.services if not s.essential]
                async with (
                    aiohttp.ClientSession() as http,
                    http.get(f"http://127.0.0.1:{svc.port}/health") as resp,
                ):
                    assert (await resp.json())["company"] == company  # verbatim, one argv item
            assert not canary.exists(), "a name reached a shell"
            assert _files(settings.state_dir) <= state_files | {"state.db-wal", "state.db-shm"}
            assert not Path("/tmp/escape").exists()
            runs = core.history.runs(10)
            assert [r["company"] for r in reversed(runs)] == hostile  # stored verbatim
            assert core.history.count() == len(hostile)  # no table dropped

    run(scenario())


@pytest.mark.both_launchers
def test_service_command_line_is_an_argv_list_without_a_shell(settings: Settings) -> None:
    import psutil

    async def scenario() -> None:
        async with open_core(settings) as core:
            company = "Acme; echo hi"
            result = await core.run_journey(journey(company, "ArgvService"))
            [svc] = result.services
            proc = psutil.Process(svc.pid)
            assert proc.name() != "sh" and proc.parent().name() != "sh"
            cmdline = proc.cmdline()
            if "--company" in cmdline:  # fresh interpreter: the name is one argv item
                assert cmdline[cmdline.index("--company") + 1] == company

    run(scenario())


@pytest.mark.both_launchers
def test_step_service_limits_request_bodies(settings: Settings) -> None:
    async def scenario() -> None:
        async with open_core(settings) as core:
            result = await core.run_journey(journey("Big Co", "BodyService"))
            [svc] = result.services
            big = b'{"hops": "' + b"x" * (SERVICE_MAX_BODY + 1) + b'"}'
            async with (
                aiohttp.ClientSession() as http,
                http.post(
                    f"http://127.0.0.1:{svc.port}/process",
                    data=big,
                    headers={"Content-Type": "application/json"},
                ) as resp,
            ):
                assert resp.status == 413

    run(scenario())


def test_state_files_are_private(settings: Settings) -> None:
    async def scenario() -> None:
        async with open_core(settings):
            pass

    run(scenario())
    lock = settings.state_dir / "panel.lock"
    assert oct(os.stat(lock).st_mode & 0o777) == oct(0o600)
