"""How the panel names itself to a backend: the `User-Agent` of every export POST and the
instrumentation scope of every span and log record, with the installed version."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

NAME = "bizobs-panel"
PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"


def panel_version() -> str:
    """The installed distribution's version; from a source tree that is not installed, the
    version pyproject.toml gives."""
    try:
        return importlib.metadata.version(NAME)
    except importlib.metadata.PackageNotFoundError:
        try:
            project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
            return str(project["version"])
        except (OSError, ValueError, KeyError):
            return "0+unknown"


VERSION = panel_version()
USER_AGENT = f"{NAME}/{VERSION}"
