"""Settings: one frozen object with embedded defaults, overridable from the environment."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

import platformdirs

from app.common.numbers import ASCII_WHITESPACE, ascii_int
from app.core.errors import SettingsError
from app.core.limits import MAX_CUSTOMERS, MAX_PACING_MS

DEFAULT_ESSENTIALS = (
    "DiscoveryService-Dynatrace",
    "PurchaseService-Dynatrace",
    "DataPersistenceService-Dynatrace",
)


class LauncherKind(StrEnum):
    FORK = "fork"  # pre-warmed fork server
    EXEC = "exec"  # fresh interpreter per service


MAX_WAIT_MS = 600_000  # ten minutes: longer is a typo, not a grace


@dataclass(frozen=True)
class EssentialService:
    service_name: str
    company: str

    @classmethod
    def parse(cls, text: str) -> EssentialService:
        # "Name-Company": the company is what follows the last dash.
        name, sep, company = text.strip().rpartition("-")
        if not sep or not name or not company:
            raise SettingsError(f"essential service {text!r} must look like ServiceName-Company")
        return cls(name, company)


@dataclass(frozen=True)
class Settings:
    port_lo: int = 8081
    port_hi: int = 8120
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    api_enabled: bool = True
    state_dir: Path = field(
        default_factory=lambda: Path(platformdirs.user_state_dir("bizobs-panel"))
    )
    stop_grace_ms: int = 3000
    start_timeout_ms: int = 10000
    essential_services: tuple[EssentialService, ...] = tuple(
        EssentialService.parse(e) for e in DEFAULT_ESSENTIALS
    )
    launcher: LauncherKind = LauncherKind.FORK
    demo_pacing_ms: int = 0
    max_customers: int = MAX_CUSTOMERS
    # Test-only: turn the pre-run cleanup off to prove the acceptance check can fail.
    cleanup_enabled: bool = True

    def __post_init__(self) -> None:
        if not (1 <= self.port_lo <= self.port_hi <= 65535):
            raise SettingsError(
                f"port range {self.port_lo}-{self.port_hi} is not valid: it needs "
                "LOW-HIGH with 1 <= LOW <= HIGH <= 65535"
            )
        if not 1 <= self.api_port <= 65535:
            raise SettingsError(
                f"the control API port {self.api_port} is not a TCP port (1-65535; BIZOBS_API_PORT)"
            )
        if self.port_lo <= self.api_port <= self.port_hi:
            raise SettingsError(
                f"the control API port {self.api_port} lies inside the service pool "
                f"{self.port_lo}-{self.port_hi}; choose one outside it (BIZOBS_API_PORT)"
            )
        if self.port_hi - self.port_lo + 1 > 1000:
            raise SettingsError("port range larger than 1000 ports")
        if (
            not 0 <= self.stop_grace_ms <= MAX_WAIT_MS
            or not 0 < self.start_timeout_ms <= MAX_WAIT_MS
        ):
            raise SettingsError(
                f"stop grace must be 0-{MAX_WAIT_MS} ms and start timeout 1-{MAX_WAIT_MS} ms "
                "(BIZOBS_STOP_GRACE_MS)"
            )
        if not 0 <= self.demo_pacing_ms <= MAX_PACING_MS:
            raise SettingsError(f"demo pacing must be 0-{MAX_PACING_MS} ms (BIZOBS_DEMO_PACING_MS)")
        if not 1 <= self.max_customers <= MAX_CUSTOMERS:
            raise SettingsError(f"max customers must be 1-{MAX_CUSTOMERS}")

    @property
    def ports(self) -> range:
        return range(self.port_lo, self.port_hi + 1)

    @property
    def db_path(self) -> Path:
        return self.state_dir / "state.db"

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def parse_port_range(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d{1,5})\s*-\s*(\d{1,5})\s*", text)
    if not m:
        raise SettingsError(f"port range {text!r} must look like 8081-8120")
    return int(m.group(1)), int(m.group(2))


def _int(env: Mapping[str, str], name: str) -> int | None:
    """ASCII digits, maybe after a '-' (so a negative value meets the range check that names
    the setting's range); Settings checks the range."""
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    text = raw.strip(ASCII_WHITESPACE)
    sign, body = (-1, text[1:]) if text.startswith("-") else (1, text)
    value = None if body[:1] in ASCII_WHITESPACE else ascii_int(body, 0, sys.maxsize)
    if value is None:
        raise SettingsError(f"{name}={raw!r} is not a whole number")
    return sign * value


def from_env(env: Mapping[str, str] | None = None, /, **overrides: object) -> Settings:
    """Settings from BIZOBS_* variables, then explicit overrides (e.g. command-line flags)."""
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    if ports := env.get("BIZOBS_PORTS"):
        values["port_lo"], values["port_hi"] = parse_port_range(ports)
    if (api_port := _int(env, "BIZOBS_API_PORT")) is not None:
        values["api_port"] = api_port
    if state := env.get("BIZOBS_STATE_DIR"):
        values["state_dir"] = Path(state)
    if (grace := _int(env, "BIZOBS_STOP_GRACE_MS")) is not None:
        values["stop_grace_ms"] = grace
    if (pacing := _int(env, "BIZOBS_DEMO_PACING_MS")) is not None:
        values["demo_pacing_ms"] = pacing
    if "BIZOBS_ESSENTIAL_SERVICES" in env:
        raw = env["BIZOBS_ESSENTIAL_SERVICES"]
        values["essential_services"] = tuple(
            EssentialService.parse(p) for p in raw.split(",") if p.strip()
        )
    if env.get("BIZOBS_API") == "0":
        values["api_enabled"] = False
    if env.get("BIZOBS_CLEANUP") == "0":  # test-only: proves the acceptance check can fail
        values["cleanup_enabled"] = False
    if launcher := env.get("BIZOBS_LAUNCHER"):
        try:
            values["launcher"] = LauncherKind(launcher)
        except ValueError as exc:
            raise SettingsError(
                f"BIZOBS_LAUNCHER must be one of fork, exec; got {launcher!r}"
            ) from exc
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)  # type: ignore[arg-type]
