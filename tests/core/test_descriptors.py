"""The open-file limit (app/core/descriptors.py): a panel started under a low soft limit
raises it for itself, and the fork server's services inherit the raised one, read from the
OS."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

from app.core.limits import MAX_HOP_CALLS

SCRIPT = """
import asyncio, psutil, resource
from app.core.orchestrator import open_core
from app.core.settings import from_env

async def main():
    async with open_core(from_env()) as core:
        journey = {"companyName": "Limit Co", "domain": "limit.example.com",
                   "industryType": "Test", "steps": [{"stepName": "A", "serviceName": "AService"}]}
        assert (await core.run_journey(journey)).ok
        [service] = core.services()
        panel = resource.getrlimit(resource.RLIMIT_NOFILE)
        child = psutil.Process(service.pid).rlimit(psutil.RLIMIT_NOFILE)
        print(panel[0], panel[1], child[0], child[1])

asyncio.run(main())
"""


def test_a_low_soft_limit_is_raised_for_the_panel_and_its_services(
    tmp_path: Path, port_range: range
) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low, ceiling = 256, min(hard, 4096)
    assert low < MAX_HOP_CALLS < ceiling  # too few for the hop calls, then enough

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (low, ceiling))

    env = os.environ | {
        "BIZOBS_PORTS": f"{port_range.start}-{port_range.stop - 1}",
        "BIZOBS_API_PORT": str(port_range.start - 1),
        "BIZOBS_STATE_DIR": str(tmp_path / "state"),
        "BIZOBS_ESSENTIAL_SERVICES": "",
    }
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        preexec_fn=limited,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [str(ceiling)] * 4
