"""The packaged Grafana dashboard is valid dashboard JSON, and every panel's expression names
only metrics the panel exports."""

from __future__ import annotations

import json
import re
from importlib import resources

from app.core.orchestrator import open_core
from app.core.settings import Settings
from tests.conftest import run

SUFFIXES = ("_bucket", "_count", "_sum", "_total")
WANTED = {
    "Cleanups per minute",
    "Ports by state",
    "Cleanup duration",
    "Journeys per second",
    "Errors",
    "p95 per step",
}


def exported(settings: Settings) -> set[str]:
    """Every family name and sample name of a real core's registry."""

    async def names() -> set[str]:
        async with open_core(settings) as core:
            out = set()
            for family in core.metrics.registry.collect():
                out.add(family.name)
                out.update(s.name for s in family.samples)
            return out

    return run(names())


def test_the_dashboard_names_only_metrics_we_export(settings: Settings) -> None:
    text = (resources.files("app") / "resources/grafana/bizobs-panel.json").read_text()
    dashboard = json.loads(text)
    assert dashboard["title"] and dashboard["uid"] and isinstance(dashboard["schemaVersion"], int)
    panels = dashboard["panels"]
    assert {p["title"] for p in panels} >= WANTED
    assert len({p["id"] for p in panels}) == len(panels)
    names = exported(settings)
    for panel in panels:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used = re.findall(r"\bbizobs_[a-z_]+", target["expr"])
            assert used, target
            for metric in used:
                family = next((metric.removesuffix(x) for x in SUFFIXES if metric.endswith(x)), "")
                known = metric in names or family in names
                assert known, f"{panel['title']}: {metric} is not exported"
