"""A real Prometheus (Debian's, installed by scripts/setup.sh) scrapes the panel's API every
second; what it stored is read back through its own HTTP API (`/api/v1/query`)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest

from app.core.settings import Settings
from tests.conftest import worker_index
from tests.helpers import api_in_thread, journey

PROMETHEUS_PORT = 9491 + worker_index()  # of the tests' 9491-9499: one per xdist worker
READY_S = 30.0
SCRAPED_S = 20.0


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:  # loopback only
        return json.loads(resp.read())


def _wait(check: Callable[[], bool], bound_s: float, what: str) -> None:
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass  # not up yet
        time.sleep(0.2)  # polling another process's HTTP API, bounded above
    raise AssertionError(f"{what} within {bound_s:g} s")


@contextmanager
def prometheus(tmp_path: Path, target_port: int) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("no prometheus binary: run `make setup` (scripts/setup.sh installs it)")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: bizobs\n    metrics_path: /metrics\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
    )
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{PROMETHEUS_PORT}"
    try:
        _wait(
            lambda: urllib.request.urlopen(f"{url}/-/ready", timeout=2).status == 200,
            READY_S,
            "Prometheus ready",
        )
        yield url
    finally:
        proc.terminate()  # the one process this test started, by its handle
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        assert not psutil.pid_exists(proc.pid) or psutil.Process(proc.pid).status() == "zombie"


def query(url: str, promql: str) -> list[dict[str, Any]]:
    body = _get(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def scalar(url: str, promql: str) -> float | None:
    result = query(url, promql)
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_cleanups_and_ports(tmp_path: Path, settings: Settings) -> None:
    with (
        api_in_thread(settings) as (_url, core, loop),
        prometheus(tmp_path, settings.api_port) as url,
    ):
        _wait(lambda: scalar(url, 'up{job="bizobs"}') == 1.0, SCRAPED_S, "the panel scraped")
        before = scalar(url, 'sum(bizobs_cleanups_total{trigger="run"})')
        assert before == 0.0
        result = asyncio.run_coroutine_threadsafe(core.run_journey(journey()), loop).result(60)
        assert result.ok
        _wait(
            lambda: (scalar(url, 'sum(bizobs_cleanups_total{trigger="run"})') or 0) > before,
            SCRAPED_S,
            "bizobs_cleanups_total rose after a Run Journey",
        )
        size = len(settings.ports)
        assert scalar(url, "sum(bizobs_ports)") == size
        assert scalar(url, "bizobs_pool_size") == size
        _wait(
            lambda: scalar(url, 'bizobs_ports{state="allocated"}') == 2.0,
            SCRAPED_S,
            "two allocated ports seen",
        )
        assert scalar(url, "sum(bizobs_ports)") == size
