"""Small helpers shared by the test modules."""

from __future__ import annotations

from typing import Any

import psutil


def journey(company: str = "Acme Corp", *services: str, **step_overrides: Any) -> dict[str, Any]:
    """A journey in the write-up's JSON shape; `step2={...}` overrides fields of step 2."""
    services = services or ("LoginService", "BrowseService")
    steps = [{"stepName": s.removesuffix("Service"), "serviceName": s} for s in services]
    for index, overrides in step_overrides.items():
        steps[int(index.removeprefix("step")) - 1].update(overrides)
    return {"companyName": company, "domain": "example.com", "industryType": "Retail",
            "steps": steps}  # fmt: skip


def alive(pid: int) -> bool:
    """Is the process running (not gone, not a zombie)?"""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
