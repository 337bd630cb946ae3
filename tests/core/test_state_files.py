"""The state directory is the operator's alone: 0700, its database and export settings 0600.
Real files, real modes read back with os.stat."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from app.core.export import saved
from app.core.orchestrator import open_core
from app.core.settings import LauncherKind
from tests.conftest import make_settings, run
from tests.helpers import journey


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _modes(state: Path) -> dict[str, int]:
    names = ("state.db", "state.db-wal", "state.db-shm", "panel.lock", "export.json")
    return {name: mode(state / name) for name in names if (state / name).exists()}


def test_a_new_state_directory_and_its_files_are_private(tmp_path: Path, port_range: range) -> None:
    settings = make_settings(LauncherKind.FORK, tmp_path, port_range)
    old = os.umask(0o022)  # the usual umask: without care, 0755 and 0644
    try:

        async def scenario() -> list[str]:
            async with open_core(settings) as core:
                assert (await core.run_journey(journey("Private Co", "OneService"))).ok
                saved.save(settings.state_dir, {saved.ENDPOINT: "http://127.0.0.1:4318"})
                assert mode(settings.state_dir) == 0o700
                assert _modes(settings.state_dir) == dict.fromkeys(
                    ("state.db", "state.db-wal", "state.db-shm", "panel.lock", "export.json"),
                    0o600,
                )
                return core.startup_messages

        assert run(scenario()) == []  # nothing to tighten: nothing said
    finally:
        os.umask(old)


def test_looser_existing_state_is_tightened_with_a_startup_note(
    tmp_path: Path, port_range: range
) -> None:
    settings = make_settings(LauncherKind.FORK, tmp_path, port_range)
    state = settings.state_dir

    async def first() -> None:
        async with open_core(settings):
            saved.save(state, {saved.ENDPOINT: "http://127.0.0.1:4318"})

    run(first())
    os.chmod(state, 0o755)
    for name in ("state.db", "export.json"):
        os.chmod(state / name, 0o644)

    async def second() -> list[str]:
        async with open_core(settings) as core:
            assert mode(state) == 0o700
            assert set(_modes(state).values()) == {0o600}, _modes(state)
            return core.startup_messages

    notes = run(second())
    assert any(str(state) in n and "0755" in n and "0700" in n for n in notes), notes
    for name in ("state.db", "export.json"):
        assert any(name in n and "0644" in n and "0600" in n for n in notes), (name, notes)


def test_a_state_directory_made_by_the_export_settings_first_is_private(tmp_path: Path) -> None:
    state = tmp_path / "fresh" / "state"
    saved.save(state, {saved.ENDPOINT: "http://127.0.0.1:4318"})
    assert mode(state) == 0o700 and mode(state / "export.json") == 0o600
