"""Settings: one frozen object with embedded defaults, overridable from the environment and
the command line.

Every option is declared once, in `OPTIONS` (its field, its BIZOBS_* variable, its command-line
flag, how its text is read, its help): `from_env`, the command line's global flags
(`add_flags`) and the README's settings table (`settings_table`, kept equal to the README by a
test) are derived from it. Values are checked in `Settings.__post_init__`, so a bad setting is
one line naming the variable at start, never a crash later."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Mapping
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


_PORT_RANGE = re.compile(r"[ \t]*([0-9]{1,5})[ \t]*-[ \t]*([0-9]{1,5})[ \t]*")


def parse_port_range(text: str) -> tuple[int, int]:
    m = _PORT_RANGE.fullmatch(text)
    if not m:
        raise SettingsError(f"port range {text!r} must look like 8081-8120")
    return int(m.group(1)), int(m.group(2))


def _whole(name: str, raw: str) -> int:
    """ASCII digits, maybe after a '-' (so a negative value meets the range check that names
    the setting's range); Settings checks the range."""
    text = raw.strip(ASCII_WHITESPACE)
    sign, body = (-1, text[1:]) if text.startswith("-") else (1, text)
    value = None if body[:1] in ASCII_WHITESPACE else ascii_int(body, 0, sys.maxsize)
    if value is None:
        raise SettingsError(f"{name}={raw!r} is not a whole number")
    return sign * value


def _choice(kind: type[StrEnum]) -> Callable[[str, str], object]:
    def parse(name: str, raw: str) -> object:
        try:
            return kind(raw.strip())
        except ValueError as exc:
            choices = ", ".join(c.value for c in kind)
            raise SettingsError(f"{name} must be one of {choices}; got {raw!r}") from exc

    return parse


def _names(raw: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in raw.split(",") if c.strip())


Parser = Callable[[str, str], object]  # (variable name, its text) -> the value(s)


@dataclass(frozen=True)
class Option:
    """One setting: the Settings field(s) it sets, where it comes from, and what it means."""

    field: str
    env: str
    parse: Parser
    default: str  # as the README shows it
    help: str
    flag: str | None = None  # a global command-line option (before or after the subcommand)
    metavar: str | None = None
    public: bool = True  # False: test-only, left out of the README and --help

    def values(self, raw: str) -> dict[str, object]:
        """The fields this option's text sets (BIZOBS_PORTS sets two)."""
        value = self.parse(self.env, raw)
        return value if isinstance(value, dict) else {self.field: value}


def _ports(name: str, raw: str) -> dict[str, object]:
    lo, hi = parse_port_range(raw)
    return {"port_lo": lo, "port_hi": hi}


def _ports_max(name: str, raw: str) -> dict[str, object]:
    lo, hi = parse_port_range(raw)
    return {"ports_max_lo": lo, "ports_max_hi": hi}


OPTIONS: tuple[Option, ...] = (
    Option(
        "ports",
        "BIZOBS_PORTS",
        _ports,
        "8081-8120",
        "the service port pool",
        flag="--ports",
        metavar="LO-HI",
    ),
    Option(
        "ports_max_hi",
        "BIZOBS_PORTS_MAX",
        _ports_max,
        "(the pool)",
        "how far the pool may grow, in blocks of 10, when a launch does not fit (it starts "
        "where the pool starts); a grown block unused for 60 s is given back",
    ),
    Option("api_port", "BIZOBS_API_PORT", _whole, "8080", "loopback control API"),
    Option(
        "state_dir",
        "BIZOBS_STATE_DIR",
        lambda _n, raw: Path(raw),
        "(the platform's state dir)",
        "ledger, run history, lock",
        flag="--state-dir",
        metavar="DIR",
    ),
    Option(
        "api_enabled",
        "BIZOBS_API",
        lambda _n, raw: raw.strip() != "0",
        "1",
        "`0`: the window does not serve the control API (`--no-api`)",
    ),
    Option(
        "stop_grace_ms",
        "BIZOBS_STOP_GRACE_MS",
        _whole,
        "3000",
        "SIGTERM → SIGKILL grace when stopping a service",
    ),
    Option(
        "demo_pacing_ms",
        "BIZOBS_DEMO_PACING_MS",
        _whole,
        "0",
        "a pause in each phase that has work, so an audience can follow (0–2000 ms)",
    ),
    Option(
        "essential_services",
        "BIZOBS_ESSENTIAL_SERVICES",
        lambda _n, raw: tuple(EssentialService.parse(p) for p in raw.split(",") if p.strip()),
        ",".join(DEFAULT_ESSENTIALS),
        "kept across journeys; empty for none",
    ),
    Option(
        "launcher",
        "BIZOBS_LAUNCHER",
        _choice(LauncherKind),
        "fork",
        "`fork`: each service forked from a pre-warmed fork server process (fast switches, "
        "≈5 MiB each; see docs/performance.md); `exec`: a fresh interpreter per service",
        flag="--launcher",
        metavar="fork|exec",
    ),
    Option(
        "cleanup_strategy",
        "BIZOBS_CLEANUP_STRATEGY",
        _choice(CleanupStrategy),
        "all",
        "which running journeys a Run Journey replaces: `all`, `company` (the same "
        "company's), `journeyType` (the same industry's)",
    ),
    Option(
        "preserve_companies",
        "BIZOBS_PRESERVE_COMPANIES",
        lambda _n, raw: _names(raw),
        "",
        "companies (comma-separated) whose journeys no run replaces (Stop All still stops them)",
    ),
    Option(
        "reserved_ports",
        "BIZOBS_RESERVED_PORTS",
        lambda _n, raw: Reservation.parse_all(raw),
        "",
        "ports only one company's services take, e.g. `Acme Corp=8081-8090;TechStart "
        "Inc=8091-8095`",
    ),
    Option(
        "autorestart",
        "BIZOBS_AUTORESTART",
        _choice(AutoRestart),
        "no",
        "`on-failure`: a service that exits or stops answering is restarted (backoff, at "
        "most 3 a minute)",
    ),
    Option(
        "cleanup_enabled",
        "BIZOBS_CLEANUP",
        lambda _n, raw: raw.strip() != "0",
        "1",
        "test-only: `0` turns the pre-run cleanup off",
        public=False,
    ),
)


def from_env(env: Mapping[str, str] | None = None, /, **overrides: object) -> Settings:
    """Settings from the BIZOBS_* variables of `OPTIONS`, then explicit overrides (the
    command line's flags)."""
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    for option in OPTIONS:
        raw = env.get(option.env)
        # An empty value is "unset", except for lists, where it means "none".
        if raw is None or (raw == "" and option.field != "essential_services"):
            continue
        values.update(option.values(raw))
    values.update({k: v for k, v in overrides.items() if v is not None})
    max_lo = values.pop("ports_max_lo", None)
    base_lo = values.get("port_lo", Settings.port_lo)
    if max_lo is not None and max_lo != base_lo:
        raise SettingsError(
            f"BIZOBS_PORTS_MAX={env.get('BIZOBS_PORTS_MAX')!r} must start where the pool starts "
            f"({base_lo}): the pool grows upwards"
        )
    return Settings(**values)  # type: ignore[arg-type]


def add_flags(parser: argparse.ArgumentParser, in_subcommand: bool) -> None:
    """The global options of `OPTIONS` that have a flag, before or after the subcommand's
    name. In a subcommand they default to SUPPRESS, so a value given before the name is not
    reset."""
    default = argparse.SUPPRESS if in_subcommand else None
    for option in OPTIONS:
        if option.flag is None:
            continue
        parser.add_argument(
            option.flag,
            dest=option.field,
            default=default,
            metavar=option.metavar,
            help=f"{option.help} ({option.env})",
        )


def flag_overrides(ns: argparse.Namespace) -> dict[str, object]:
    """The Settings fields the flags given on the command line set."""
    out: dict[str, object] = {}
    for option in OPTIONS:
        raw = getattr(ns, option.field, None) if option.flag else None
        if raw is not None:
            out.update(option.values(str(raw)))
    return out


def settings_table() -> str:
    """The README's settings table, derived from `OPTIONS`."""
    rows = ["| variable | default | what it sets |", "|---|---|---|"]
    for o in OPTIONS:
        if not o.public:
            continue
        name = f"`{o.env}`" + (f" (`{o.flag}`)" if o.flag else "")
        default = f"`{o.default}`" if o.default and not o.default.startswith("(") else o.default
        rows.append(f"| {name} | {default or '(none)'} | {o.help} |")
    return "\n".join(rows)
