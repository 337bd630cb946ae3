"""`python -m app` opens the window; subcommands: serve | run | ports | stop-all | restart |
traffic | incident | scenario."""

from __future__ import annotations

import argparse
import os
import sys

from app import cli
from app.core.errors import SettingsError
from app.core.export import ExportSettings
from app.core.model import Mode
from app.core.settings import Settings, add_flags, flag_overrides, from_env
from app.service.incident_kinds import IncidentKind


def _global_options(parser: argparse.ArgumentParser, in_subcommand: bool) -> None:
    """The options every command takes, before or after the subcommand's name (the settings
    table's flags, app/core/settings.py)."""
    add_flags(parser, in_subcommand)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    _global_options(p, in_subcommand=False)
    p.add_argument(
        "--no-api",
        action="store_true",
        help="window only: do not serve the control API (env BIZOBS_API=0)",
    )
    sub = p.add_subparsers(dest="command")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help_text)
        _global_options(parser, in_subcommand=True)
        return parser

    command("ports", "print the port pool: port, state, service, pid")
    command("stop-all", "stop every service of ours the ledger knows")
    serve = command("serve", "run the control API headless (no window)")
    serve.add_argument("--host", default=None, help="default 127.0.0.1 (loopback only)")
    serve.add_argument("--port", type=int, default=None, help="API port (env BIZOBS_API_PORT)")
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host (anyone reaching it can run processes)",
    )
    run = command("run", "run one journey headless, print phases and results")
    run.add_argument("journey", help="a journey JSON file, or a template name")
    run.add_argument("--customers", type=int, default=1)
    run.add_argument("--mode", choices=[m.value for m in Mode], default=None)
    run.add_argument("--think-time-ms", type=float, default=0.0)
    run.add_argument("--seed", type=int, default=None)
    restart = command("restart", "restart one service of a running panel in place")
    restart.add_argument("service", help="its service name (or its key, Name-Company)")
    traffic = command("traffic", "continuous traffic through a running panel's journey")
    traffic.add_argument("action", choices=["start", "stop", "status"])
    traffic.add_argument("--rate", type=float, default=None, help="journeys per second (start)")
    traffic.add_argument(
        "--journey", default=None, help="a resident journey's id (default: the newest; stop: all)"
    )
    journeys = command("journeys", "the journeys a running panel runs side by side")
    journeys.add_argument("action", nargs="?", choices=["list", "stop"], default="list")
    journeys.add_argument("id", nargs="?", help="stop: the journey's id (see `journeys`)")
    _incident_parser(command("incident", "incidents in a running panel's services"))
    scenario = command("scenario", "scenarios of incidents in a running panel")
    scenario.add_argument("action", choices=["run", "stop", "status"])
    scenario.add_argument("target", nargs="?", help="run: a scenario JSON file or a packaged name")
    return p


def _incident_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="start an incident in a running service")
    _global_options(add, in_subcommand=True)
    add.add_argument("service", help='a service name, its key (Name-Company), or "*"')
    add.add_argument("kind", choices=[k.value for k in IncidentKind])
    for flag, kind, what in (
        ("--rate", float, "errors: the share of requests that fail, 0-1 (default 1)"),
        ("--status", int, "errors: the HTTP status, 400-599 (default 500)"),
        ("--error-type", str, "errors: the error type (default: the status's)"),
        ("--add-ms", float, "latency: ms added to every request (default 500)"),
        ("--jitter-ms", float, "latency: up to this many ms more"),
        ("--cores", float, "cpu: the share of a core burnt, above 0 to 1 (default 0.5)"),
        ("--mb-per-s", float, "memory: growth in MiB a second (default 16)"),
        ("--cap-mb", float, "memory: the cap in MiB, at most 256 (default 128)"),
        ("--duration", float, "seconds, 1-3600 (default 60)"),
        ("--journey", str, "a resident journey's id (several journeys run)"),
    ):
        add.add_argument(flag, type=kind, default=None, help=what)
    _global_options(actions.add_parser("list", help="the incidents in effect"), True)
    clear = actions.add_parser("clear", help="end one incident (its id), or all")
    _global_options(clear, in_subcommand=True)
    clear.add_argument("id", nargs="?", default=None)


def _settings(ns: argparse.Namespace) -> Settings:
    overrides = flag_overrides(ns)
    if getattr(ns, "port", None) is not None:  # serve --port: checked against the pool at once
        overrides["api_port"] = ns.port
    return from_env(**overrides)


EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for `yes | head -1`'s writer


def main(argv: list[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # a reader gone away shows here, not as Python's note at exit
    except BrokenPipeError:
        # `python -m app ports | head -1`: the reader has what it wanted. Python flushes stdout
        # again at exit and would report that as well: stdout goes to /dev/null for it.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return code


def _main(argv: list[str] | None) -> int:
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
            settings, ns.host or settings.api_host, settings.api_port, ns.allow_remote
        )
    if ns.command == "restart":
        return cli.cmd_restart(settings, ns.service)
    if ns.command == "traffic":
        if ns.action == "start" and ns.rate is None:
            print("error: traffic start needs --rate (journeys per second)", file=sys.stderr)
            return 2
        return cli.cmd_traffic(settings, ns.action, ns.rate, ns.journey)
    if ns.command == "journeys":
        if ns.action == "stop" and not ns.id:
            print("error: journeys stop needs the journey's id (see `journeys`)", file=sys.stderr)
            return 2
        return cli.cmd_journeys(settings, ns.id if ns.action == "stop" else None)
    if ns.command == "incident":
        return cli.cmd_incident(settings, ns)
    if ns.command == "scenario":
        return cli.cmd_scenario(settings, ns.action, ns.target)
    if ns.command == "run":
        ns.mode = ns.mode or (Mode.MULTIPLE.value if ns.customers > 1 else Mode.SINGLE.value)
        return cli.cmd_run(settings, ns)
    from app.api.server import start_api
    from app.ui.entry import run_window

    return run_window(settings, api_starter=None if ns.no_api else start_api)


if __name__ == "__main__":
    sys.exit(main())
