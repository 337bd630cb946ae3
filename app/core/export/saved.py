"""Export settings saved with the panel's settings; the environment wins, field by field.

The saved values are kept as the OpenTelemetry SDK's own variable names (OTEL_EXPORTER_OTLP_*,
OTEL_TRACES_EXPORTER, ...), so the file and the environment merge key by key and go through the
one parser, `ExportSettings.from_env` (docs/architecture.md, "Export"): a value is valid saved
exactly when it would be valid in the environment. The file lives in the state directory (one
panel per state directory, so one writer) with mode 0600: its headers may hold secrets, and its
contents are never logged — errors name the file and the variable, never a value.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from app.core import statedir
from app.core.export.settings import ExportSettings, ExportSettingsError

FILE_NAME = "export.json"
FILE_MODE = 0o600

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
HEADERS = "OTEL_EXPORTER_OTLP_HEADERS"
TRACES_EXPORTER = "OTEL_TRACES_EXPORTER"
LOGS_EXPORTER = "OTEL_LOGS_EXPORTER"
RESOURCE_ATTRIBUTES = "OTEL_RESOURCE_ATTRIBUTES"
BIZEVENTS_URL = "BIZOBS_BIZEVENTS_URL"
BIZEVENTS_HEADERS = "BIZOBS_BIZEVENTS_HEADERS"
BIZEVENTS_MODE = "BIZOBS_BIZEVENTS_MODE"
SAVED_KEYS = (
    ENDPOINT,
    HEADERS,
    TRACES_EXPORTER,
    LOGS_EXPORTER,
    RESOURCE_ATTRIBUTES,
    BIZEVENTS_URL,
    BIZEVENTS_HEADERS,
    BIZEVENTS_MODE,
)
# Each saved key and the environment variables that decide the same thing: when any of them is
# set, the environment owns that field (a per-signal endpoint beats a saved base endpoint).
OWNERS: dict[str, tuple[str, ...]] = {
    ENDPOINT: (
        ENDPOINT,
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    ),
    HEADERS: (
        HEADERS,
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
        "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    ),
    TRACES_EXPORTER: (TRACES_EXPORTER,),
    LOGS_EXPORTER: (LOGS_EXPORTER,),
    RESOURCE_ATTRIBUTES: (RESOURCE_ATTRIBUTES,),
    BIZEVENTS_URL: (BIZEVENTS_URL,),
    BIZEVENTS_HEADERS: (BIZEVENTS_HEADERS,),
    BIZEVENTS_MODE: (BIZEVENTS_MODE,),
}
DISABLED = "OTEL_SDK_DISABLED"


def export_env(env: Mapping[str, str]) -> dict[str, str]:
    """The variables of the environment that concern export (OTEL_*, BIZOBS_BIZEVENTS_*)."""
    return {
        k: v for k, v in env.items() if k.startswith("OTEL_") or k.startswith("BIZOBS_BIZEVENTS_")
    }


@dataclass(frozen=True)
class ExportForm:
    """What the settings dialog shows: the saved values, the environment's, and who owns what."""

    saved: dict[str, str]
    env: dict[str, str]

    def owners(self, key: str) -> tuple[str, ...]:
        """The environment variables that own `key` (empty: the saved value is used)."""
        if self.env.get(DISABLED, "").strip().lower() == "true":
            return (DISABLED,)
        return tuple(name for name in OWNERS[key] if name in self.env)

    def value(self, key: str) -> str:
        """The value in effect for `key`: the environment's when it owns the field."""
        return self.env[key] if key in self.env else self.saved.get(key, "")

    def merged(self, values: Mapping[str, str] | None = None) -> dict[str, str]:
        """`values` (default: the saved ones) under the environment: env wins key by key."""
        chosen = self.saved if values is None else values
        return {k: v for k, v in chosen.items() if k in SAVED_KEYS and v} | self.env

    def settings(self, values: Mapping[str, str] | None = None) -> ExportSettings:
        """Parsed by the SDK's rules; ExportSettingsError names the variable at fault."""
        return ExportSettings.from_env(self.merged(values))


def path_in(state_dir: Path) -> Path:
    return state_dir / FILE_NAME


def load(state_dir: Path) -> dict[str, str]:
    """The saved values ({} when none). ExportSettingsError when the file cannot be used."""
    path = path_in(state_dir)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        # The exception's text could quote the file (secrets): only its kind is named.
        raise ExportSettingsError(f"{path} cannot be read ({type(exc).__name__})") from None
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise ExportSettingsError(f"{path} is not an object of strings")
    return {k: v for k, v in raw.items() if k in SAVED_KEYS}


def save(state_dir: Path, values: Mapping[str, str]) -> Path:
    """Write `values` (only SAVED_KEYS, empty ones dropped) atomically with mode 0600."""
    path = path_in(state_dir)
    data = {k: v for k, v in values.items() if k in SAVED_KEYS and v}
    state_dir.mkdir(mode=statedir.DIR_MODE, parents=True, exist_ok=True)
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    # Created 0600 from the start (O_EXCL): the secrets are never readable by others, not even
    # between the write and a chmod.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return path


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)
