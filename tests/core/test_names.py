"""Company and step names in any script: accepted, and their service keys stay ASCII, unique and
stable (ASCII names keep the key they always had)."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import aiohttp
import pytest

from app.core.errors import ValidationError
from app.core.journeys import parse_journey
from app.core.model import sanitize_company, service_key
from app.core.orchestrator import open_core
from app.core.settings import LauncherKind
from tests.conftest import make_settings, run
from tests.helpers import journey

KEY = re.compile(r"^[A-Za-z0-9_]+$")
SCRIPTS = ["株式会社テスト", "Рога и копыта", "شركة النور", "Café Müller", "Ελληνική ΑΕ", "दिल्ली"]


@pytest.mark.parametrize("company", SCRIPTS)
def test_names_in_any_script_are_accepted_with_an_ascii_key(company: str) -> None:
    parsed = parse_journey(journey(company, "LoginService", step1={"stepName": "ログイン"}))
    assert parsed.company_name == company and parsed.steps[0].step_name == "ログイン"
    key = sanitize_company(company)
    assert KEY.match(key), key
    assert sanitize_company(company) == key  # stable within a process...
    assert service_key("LoginService", company) == f"LoginService-{key}"


def test_non_ascii_keys_are_stable_across_processes_and_ascii_keys_unchanged() -> None:
    # Fixed values: a key written to the ledger by one panel is the key the next one computes.
    assert sanitize_company("Acme Corp") == "Acme_Corp"
    assert sanitize_company("  TechStart Inc. ") == "TechStart_Inc_"
    assert sanitize_company("Dynatrace") == "Dynatrace"
    assert sanitize_company("Café Müller") == sanitize_company("Café Müller")
    assert sanitize_company("Café Müller").startswith("Cafe_Muller_")
    assert sanitize_company("株式会社テスト").startswith("_")


def test_different_names_never_share_a_key_and_equal_names_do() -> None:
    names = [*SCRIPTS, "Cafe Muller", "Café Muller", "Рога и копытa", "ﾃｽﾄ", "テスト", "Test"]
    keys = [sanitize_company(n) for n in names]
    assert len(set(keys)) == len(names), dict(zip(names, keys, strict=True))
    # One name typed composed or decomposed is one company (NFC).
    composed = "Café"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    assert sanitize_company(composed) == sanitize_company(decomposed)


@pytest.mark.parametrize(
    "company", ["!!!", "   ", "—–·", "\u200b\u200b", "\u202eabc", "a\u2066b\u2069", "\ufeffAcme"]
)
def test_names_without_a_letter_or_with_hidden_characters_are_refused(company: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_journey(journey(company, "LoginService"))
    assert "companyName" in [p.field for p in caught.value.problems]


def test_a_journey_in_japanese_runs_on_real_services(tmp_path: Path, port_range: range) -> None:
    settings = make_settings(LauncherKind.EXEC, tmp_path, port_range)  # argv carries the name
    company = "株式会社テスト"

    async def scenario() -> None:
        async with open_core(settings) as core:
            result = await core.run_journey(
                journey(company, "LoginService", "PayService", step1={"stepName": "ログイン"})
            )
            assert result.ok, result.error
            keys = {s.key for s in core.services()}
            assert keys == {service_key(n, company) for n in ("LoginService", "PayService")}
            for svc in result.services:
                async with (
                    aiohttp.ClientSession() as http,
                    http.get(f"http://127.0.0.1:{svc.port}/health") as resp,
                ):
                    assert (await resp.json())["company"] == company  # verbatim in argv
            assert core.history.runs(1)[0]["company"] == company
            assert {p.key for p in core.ports() if p.key} == keys
            assert result.simulation is not None and result.simulation.summary.completed == 1

    run(scenario())
