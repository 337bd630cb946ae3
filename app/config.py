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
from app.core.model import CleanupStrategy, sanitize_company

DEFAULT_ESSENTIALS = (
    "DiscoveryService-Dynatrace",
    "PurchaseService-Dynatrace",
    "DataPersistenceService-Dynatrace",
)


class LauncherKind(StrEnum):
    FORK = "fork"  # pre-warmed fork server
    EXEC = "exec"  # fresh interpreter per service


class AutoRestart(StrEnum):
    """Whether a service that exits or stops answering is restarted by itself (PM2's
    `autorestart`): with backoff, at most a few times a minute (app/core/orchestrator.py)."""

    NO = "no"
    ON_FAILURE = "on-failure"


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
class Reservation:
    """Ports only one company's services may take (BIZOBS_RESERVED_PORTS)."""

    company: str
    lo: int
    hi: int

    @property
    def ports(self) -> range:
        return range(self.lo, self.hi + 1)

    @property
    def company_key(self) -> str:
        return sanitize_company(self.company)

    @property
    def label(self) -> str:
        return f"{self.lo}-{self.hi}"

    @classmethod
    def parse_all(cls, text: str) -> tuple[Reservation, ...]:
        """`Acme Corp=8081-8090;TechStart Inc=8091-8095`."""
        out = []
        for entry in (e.strip() for e in text.split(";")):
            if not entry:
                continue
            company, eq, ports = entry.rpartition("=")
            if not eq or not company.strip():
                raise SettingsError(
                    f"BIZOBS_RESERVED_PORTS: {entry!r} must look like Company Name=8081-8090"
                )
            lo, hi = parse_port_range(ports)
            out.append(cls(company.strip(), lo, hi))
        return tuple(out)


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
    autorestart: AutoRestart = AutoRestart.NO
    # Several companies in one pool (docs/architecture.md): which journeys a run replaces by
    # default, companies never replaced, ports reserved per company, and how far the pool grows.
    cleanup_strategy: CleanupStrategy = CleanupStrategy.ALL
    preserve_companies: tuple[str, ...] = ()
    reserved_ports: tuple[Reservation, ...] = ()
    ports_max_hi: int | None = None  # BIZOBS_PORTS_MAX's upper end: the pool may grow to it
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
        self._check_growth()
        self._check_reservations()
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

    def _check_growth(self) -> None:
        hi = self.ports_max_hi
        if hi is None:
            return
        if not self.port_hi <= hi <= 65535 or hi - self.port_lo + 1 > 1000:
            raise SettingsError(
                f"BIZOBS_PORTS_MAX must start where the pool starts ({self.port_lo}) and end at "
                f"or after its end ({self.port_hi}), at most 1000 ports; got "
                f"{self.port_lo}-{hi}"
            )
        if self.port_lo <= self.api_port <= hi:
            raise SettingsError(
                f"the control API port {self.api_port} lies inside the range the pool may grow "
                f"to ({self.port_lo}-{hi}); choose one outside it (BIZOBS_API_PORT)"
            )

    def _check_reservations(self) -> None:
        seen: dict[str, Reservation] = {}
        taken: dict[int, str] = {}
        for r in self.reserved_ports:
            if not (self.port_lo <= r.lo <= r.hi <= self.port_hi):
                raise SettingsError(
                    f"BIZOBS_RESERVED_PORTS: {r.company}'s ports {r.label} must lie inside the "
                    f"pool {self.port_lo}-{self.port_hi}"
                )
            if r.company_key in seen:
                raise SettingsError(f"BIZOBS_RESERVED_PORTS: {r.company} is named twice")
            for port in r.ports:
                if port in taken:
                    raise SettingsError(
                        f"BIZOBS_RESERVED_PORTS: port {port} is reserved for both "
                        f"{taken[port]} and {r.company}"
                    )
                taken[port] = r.company
            seen[r.company_key] = r

    @property
    def ports(self) -> range:
        return range(self.port_lo, self.port_hi + 1)

    @property
    def max_ports(self) -> range:
        """The ports the pool may ever use: its range, grown up to BIZOBS_PORTS_MAX."""
        return range(self.port_lo, (self.ports_max_hi or self.port_hi) + 1)

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
    if ports_max := env.get("BIZOBS_PORTS_MAX"):
        lo, values["ports_max_hi"] = parse_port_range(ports_max)
        base_lo = values.get("port_lo", overrides.get("port_lo", Settings.port_lo))
        if lo != base_lo:
            raise SettingsError(
                f"BIZOBS_PORTS_MAX={ports_max!r} must start where the pool starts ({base_lo}): "
                "the pool grows upwards"
            )
    if strategy := env.get("BIZOBS_CLEANUP_STRATEGY"):
        try:
            values["cleanup_strategy"] = CleanupStrategy(strategy)
        except ValueError as exc:
            choices = ", ".join(c.value for c in CleanupStrategy)
            raise SettingsError(
                f"BIZOBS_CLEANUP_STRATEGY must be one of {choices}; got {strategy!r}"
            ) from exc
    if "BIZOBS_PRESERVE_COMPANIES" in env:
        raw = env["BIZOBS_PRESERVE_COMPANIES"]
        values["preserve_companies"] = tuple(c.strip() for c in raw.split(",") if c.strip())
    if reserved := env.get("BIZOBS_RESERVED_PORTS"):
        values["reserved_ports"] = Reservation.parse_all(reserved)
    if restart := env.get("BIZOBS_AUTORESTART"):
        try:
            values["autorestart"] = AutoRestart(restart)
        except ValueError as exc:
            raise SettingsError(
                f"BIZOBS_AUTORESTART must be one of no, on-failure; got {restart!r}"
            ) from exc
    if launcher := env.get("BIZOBS_LAUNCHER"):
        try:
            values["launcher"] = LauncherKind(launcher)
        except ValueError as exc:
            raise SettingsError(
                f"BIZOBS_LAUNCHER must be one of fork, exec; got {launcher!r}"
            ) from exc
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)  # type: ignore[arg-type]
