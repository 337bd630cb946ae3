"""The package's data: resources/ at the top of the repository is what the package reads
(docs/architecture.md, "Parts and their rooms"); scripts/wheel-check.sh reads the same files
from an installed wheel."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import app

ROOT = Path(__file__).resolve().parents[1]


def test_the_top_level_resources_are_the_packages_resources() -> None:
    packaged = Path(str(resources.files(app) / "resources"))
    assert (ROOT / "app" / "resources").is_symlink()
    assert packaged.resolve() == (ROOT / "resources").resolve()
    for name in (
        "journeys/e-commerce.json",
        "scenarios/slow-checkout.json",
        "grafana/bizobs-panel.json",
        "bizobs-panel.svg",
        "bizobs-panel.desktop",
    ):
        assert (resources.files(app) / "resources" / name).is_file(), name


def test_every_resource_is_in_the_wheels_globs() -> None:
    """A file added to resources/ that no package-data glob names would be missing from the
    installed wheel while every test from the checkout still found it."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["app"]
    files = [p for p in (ROOT / "resources").rglob("*") if p.is_file()]
    assert files
    for path in files:
        inside = Path("resources") / path.relative_to(ROOT / "resources")
        assert any(inside.match(g) for g in globs), f"{inside} is in no package-data glob"
