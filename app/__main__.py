"""`python -m app` opens the window; subcommands: serve | run | ports | stop-all."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app import cli
from app.config import LauncherKind, Settings, SettingsError, from_env, parse_port_range
from app.core.export import ExportSettings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    p.add_argument("--ports", help="port pool, e.g. 8081-8120 (env BIZOBS_PORTS)")
    p.add_argument("--state-dir", type=Path, help="state directory (env BIZOBS_STATE_DIR)")
    p.add_argument("--launcher", choices=["fork", "exec"], help="how services are started")
    p.add_argument(
        "--no-api",
        action="store_true",
        help="window only: do not serve the control API (env BIZOBS_API=0)",
    )
    sub = p.add_subparsers(dest="command")
    sub.add_parser("ports", help="print the port pool: port, state, service, pid")
    sub.add_parser("stop-all", help="stop every service of ours the ledger knows")
    serve = sub.add_parser("serve", help="run the control API headless (no window)")
    serve.add_argument("--host", default=None, help="default 127.0.0.1 (loopback only)")
    serve.add_argument("--port", type=int, default=None, help="API port (env BIZOBS_API_PORT)")
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host (anyone reaching it can run processes)",
    )
    run = sub.add_parser("run", help="run one journey headless, print phases and results")
    run.add_argument("journey", help="a journey JSON file, or a template name")
    run.add_argument("--customers", type=int, default=1)
    run.add_argument("--mode", choices=["single", "multiple", "batch-chained"], default=None)
    run.add_argument("--think-time-ms", type=float, default=0.0)
    run.add_argument("--seed", type=int, default=None)
    return p


def _settings(ns: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {"state_dir": ns.state_dir}
    if ns.launcher:
        overrides["launcher"] = LauncherKind(ns.launcher)
    if ns.ports:
        overrides["port_lo"], overrides["port_hi"] = parse_port_range(ns.ports)
    return from_env(**overrides)


def main(argv: list[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    try:
        settings = _settings(ns)
        ExportSettings.from_env()  # OTEL_* / BIZOBS_BIZEVENTS_*: a bad one is an error now
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if ns.command == "ports":
        return cli.cmd_ports(settings)
    if ns.command == "stop-all":
        return cli.cmd_stop_all(settings)
    if ns.command == "serve":
        return cli.cmd_serve(
            settings, ns.host or settings.api_host, ns.port or settings.api_port, ns.allow_remote
        )
    if ns.command == "run":
        ns.mode = ns.mode or ("multiple" if ns.customers > 1 else "single")
        return cli.cmd_run(settings, ns)
    from app.api.server import start_api
    from app.ui.entry import run_window

    return run_window(settings, api_starter=None if ns.no_api else start_api)


if __name__ == "__main__":
    sys.exit(main())
