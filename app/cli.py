"""Headless commands: ports, stop-all, run, serve, restart, traffic, incident, scenario. Each
uses the same core as the window."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from app.core import offline
from app.core.errors import (
    CoreError,
    JourneyFileError,
    ScenarioFileError,
    StateLockedError,
    ValidationError,
)
from app.core.events import PhaseEvent, PhaseStatus, RunProgress
from app.core.journeys import Journey, journey_from_file, load_template
from app.core.lock import lock_holder
from app.core.model import PortInfo, PortState
from app.core.orchestrator import open_core
from app.core.runs import RunResult
from app.core.scenarios import read_scenario_file
from app.core.settings import Settings

if TYPE_CHECKING:
    from app.api.server import ApiServer
    from app.core.orchestrator import Core

API_TIMEOUT_S = 30.0
API_SLACK_S = 5.0  # beyond the panel's own bound: the answer's way back
DEFAULT_STOP_BOUND_S = 60.0  # a panel that does not say its bound (an older one)
# The commands find a panel's API by BIZOBS_API_PORT only (serve --port is the server's option).
API_PORT_HINT = " (if it serves on another port, set BIZOBS_API_PORT to it)"


def services(n: int) -> str:
    return f"{n} service" if n == 1 else f"{n} services"


def format_ports(ports: Sequence[PortInfo]) -> str:
    rows = [("PORT", "STATE", "SERVICE", "PID")]
    for p in ports:
        state = f"{p.state.value}{' (essential)' if p.essential else ''}"
        rows.append((str(p.port), state, p.key or p.process_name or "", str(p.pid or "")))
    counts = Counter(p.state.value for p in ports)
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    return f"{table(rows)}\n\n{summary}"


def _api_call(
    settings: Settings,
    method: str,
    path: str,
    timeout: float = API_TIMEOUT_S,
    body: dict[str, Any] | None = None,
    errors: bool = False,
) -> dict[str, Any] | None:
    """Ask a running panel's control API; None if it does not answer. With `errors`, an
    error answer's JSON comes back too (with its status as "httpStatus")."""
    url = f"http://127.0.0.1:{settings.api_port}{path}"
    # The API takes POSTs as JSON only (body or not): what a web page cannot send unasked.
    headers = {"Content-Type": "application/json"}
    if token := os.environ.get("BIZOBS_API_TOKEN"):  # a panel served with --allow-remote
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            answer: Any = json.loads(resp.read())
            return answer if isinstance(answer, dict) else None
    except urllib.error.HTTPError as exc:
        if not errors:
            return None
        try:
            answer = json.loads(exc.read())
        except ValueError:
            return None
        return answer | {"httpStatus": exc.code} if isinstance(answer, dict) else None
    except (OSError, ValueError):
        return None


def _ports_from_api(body: dict[str, Any]) -> list[PortInfo]:
    return [
        PortInfo(
            port=p["port"],
            state=PortState(p["state"]),
            key=p["service"],
            company=p["company"],
            pid=p["pid"],
            essential=p["essential"],
            process_name=p.get("process"),
        )
        for p in body["ports"]
    ]


def _note_other_panel(settings: Settings) -> None:
    """No panel holds this state directory; if one answers on the API port, it uses another
    one, and the operator most likely forgot BIZOBS_STATE_DIR / --state-dir: say so."""
    body = _api_call(settings, "GET", "/api/health", timeout=1.0)
    if body and body.get("stateDir") and body["stateDir"] != str(settings.state_dir):
        print(
            f"note: the panel answering on port {settings.api_port} uses state directory "
            f"{body['stateDir']}, not {settings.state_dir}; pass --state-dir "
            f"{body['stateDir']} (or BIZOBS_STATE_DIR) to work with it",
            file=sys.stderr,
        )


def _other_panel_answers(settings: Settings) -> bool:
    """Does the panel on the API port use another state directory? Then it is not the panel
    holding ours, and acting through it would touch its services: say so and refuse."""
    body = _api_call(settings, "GET", "/api/health", timeout=5.0)
    if body is None:
        return False  # nothing answers: the caller reports that
    theirs = str(body.get("stateDir", "(not said)"))
    if Path(theirs).resolve() == settings.state_dir.resolve():
        return False
    print(
        f"error: the panel answering on port {settings.api_port} uses state directory {theirs}, "
        f"not {settings.state_dir}; refusing to act through it. Pass --state-dir {theirs} to "
        "work with that panel, or the API port of the panel holding yours (BIZOBS_API_PORT)",
        file=sys.stderr,
    )
    return True


def _stop_bound(settings: Settings) -> float:
    """How long the panel says its Stop All may take (GET /api/health `stopBoundS`)."""
    body = _api_call(settings, "GET", "/api/health", timeout=5.0) or {}
    bound = body.get("stopBoundS")
    if isinstance(bound, int | float) and not isinstance(bound, bool) and 0 < bound < 3600:
        return float(bound)
    return DEFAULT_STOP_BOUND_S


def cmd_restart(settings: Settings, service: str, out: TextIO = sys.stdout) -> int:
    """Restart one service of a running panel in place (its port when free)."""
    if lock_holder(settings.state_dir) is None:
        _note_other_panel(settings)
        print(f"error: no panel runs on state directory {settings.state_dir}", file=sys.stderr)
        return 2
    if _other_panel_answers(settings):
        return 2
    path = f"/api/services/{urllib.parse.quote(service, safe='')}/restart"
    body = _api_call(settings, "POST", path, timeout=_stop_bound(settings) * 2, errors=True)
    if body is None:
        print(
            f"error: the panel's API on port {settings.api_port} does not answer{API_PORT_HINT}",
            file=sys.stderr,
        )
        return 2
    if "httpStatus" in body:
        print(f"error: {body.get('error', body['httpStatus'])}", file=sys.stderr)
        return 1
    s = body["service"]
    print(f"restarted {s['key']}: pid {s['pid']} on port {s['port']}", file=out)
    return 0


def cmd_ports(settings: Settings, out: TextIO = sys.stdout) -> int:
    holder = lock_holder(settings.state_dir)
    if holder is None:
        _note_other_panel(settings)
    if holder is not None:
        if _other_panel_answers(settings):
            return 2
        body = _api_call(settings, "GET", "/api/ports/status")
        if body is not None:
            print(format_ports(_ports_from_api(body)), file=out)
            return 0
        print(
            f"note: a panel (pid {holder}) runs on this state directory but its API on port "
            f"{settings.api_port} does not answer{API_PORT_HINT}; its services show as stale "
            "below",
            file=sys.stderr,
        )
    try:
        print(format_ports(offline.snapshot(settings)), file=out)
    except CoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


async def _stop_all(settings: Settings, out: TextIO) -> int:
    _note_other_panel(settings)
    async with open_core(settings) as core:
        report = await core.stop_all()
    stopped = [*core.reconciled, *report.stopped]
    print(
        f"stopped {services(len(stopped))}{': ' if stopped else ''}{', '.join(stopped)}", file=out
    )
    return 0


def cmd_stop_all(settings: Settings, out: TextIO = sys.stdout) -> int:
    try:
        return asyncio.run(_stop_all(settings, out))
    except StateLockedError as exc:
        if _other_panel_answers(settings):
            return 2
        bound = _stop_bound(settings)
        print(
            f"a panel holds {settings.state_dir}: asking it to stop every service "
            f"(it takes up to {bound:g} s)",
            file=sys.stderr,
            flush=True,
        )
        body = _api_call(settings, "POST", "/api/services/stop-all", timeout=bound + API_SLACK_S)
        if body is not None:
            print(f"stopped {services(body['stopped'])} through the running panel", file=out)
            return 0
        print(
            f"{exc}\nIts control API on port {settings.api_port} does not answer{API_PORT_HINT}; "
            "or use the panel's Stop All.",
            file=sys.stderr,
        )
        return 2
    except CoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _print_phase(event: PhaseEvent, out: TextIO) -> None:
    if event.status is PhaseStatus.STARTED:
        print(f"  {event.phase.value:<9} started", file=out, flush=True)
        return
    counts = " ".join(f"{k}={v}" for k, v in event.counts.items())
    paced = f" (+{event.paced_ms / 1000:.1f} s paced)" if event.paced_ms else ""
    took = f"{event.work_ms:8.1f} ms{paced}"
    print(
        f"  {event.phase.value:<9} {event.status.value:<8} {took}  {counts}",
        file=out,
        flush=True,
    )


PROGRESS_EVERY_S = 1.0  # a pipe keeps every line: one a second is enough to see it move


class ProgressLines:
    """A run's customers done so far, a line under its simulate phase once a second while it
    lasts: a batch of thousands said nothing for seconds. A run done within the first second
    prints none (its phase line follows at once)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._last = 0.0

    def __call__(self, progress: RunProgress) -> None:
        now = time.monotonic()
        if progress.done == 0:  # the simulate phase's start
            self._last = now
            return
        if progress.finished or now - self._last < PROGRESS_EVERY_S:
            return
        self._last = now
        done = f"{progress.done:,} / {progress.total:,} customers done"
        print(f"  {'':<9} {done} · {progress.failed:,} failed", file=self.out, flush=True)


def format_results(result: RunResult) -> str:
    sim = result.simulation
    if sim is None:
        return f"run {result.run_id} failed: {result.error}"
    steps = [s.step_name for s in sim.customers[0].steps] if sim.customers else []
    rows = [["CUSTOMER", *steps, "TOTAL ms"]]
    for c in sim.customers:
        cells = [f"{s.status} {s.http_status or ''}".strip() for s in c.steps]
        rows.append([c.customer.name, *cells, f"{c.latency_ms:.1f}"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    s = sim.summary
    lines.append(
        f"\n{s.completed}/{s.customers} completed, {s.failed} failed, "
        f"success {s.success_rate:.0%}, p50 {s.p50_ms:.1f} ms, p95 {s.p95_ms:.1f} ms"
    )
    return "\n".join(lines)


def load_journey_arg(arg: str) -> Journey:
    """A path to a JSON file, or the name of a built-in template."""
    path = Path(arg)
    if path.suffix == ".json" or path.exists():
        return journey_from_file(path)
    return load_template(arg)


async def _run(settings: Settings, ns: argparse.Namespace, out: TextIO) -> int:
    journey = load_journey_arg(ns.journey)
    async with open_core(settings) as core:
        core.events.phase.connect(lambda e: _print_phase(e, out))
        core.events.progress.connect(ProgressLines(out))
        people = "customer" if ns.customers == 1 else "customers"
        print(
            f"run: {journey.company_name}, {len(journey.steps)} steps, {ns.customers} "
            f"{people}, mode {ns.mode}",
            file=out,
        )
        try:
            result = await core.run_journey(
                journey,
                customers=ns.customers,
                mode=ns.mode,
                think_time_ms=ns.think_time_ms,
                seed=ns.seed,
            )
            print(file=out)
            print(format_services(result), file=out)
            print(file=out)
            print(format_results(result), file=out)
        finally:
            report = await core.stop_all()
            print(f"\nstopped {services(report.count)}", file=out)
    # Injected step errors are simulated business outcomes, not a failed run.
    return 0 if result.ok else 1


def format_services(result: RunResult) -> str:
    rows = [
        (str(s.port), s.key, f"pid {s.pid}", "(essential)" if s.essential else "")
        for s in result.services
    ]
    return table(rows, indent="  ")


def table(rows: Sequence[Sequence[str]], indent: str = "") -> str:
    """Columns padded to their widest cell, so a pid column lines up whatever its width."""
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in rows
    )


class PipeOut(io.TextIOBase):
    """Standard output for a command that goes on after its reader went away (`run … | head`):
    the run finishes and stops its services, the lines nobody reads are dropped (each printed
    from an event handler logged a BrokenPipeError traceback), and `broken` says so."""

    def __init__(self, out: TextIO) -> None:
        super().__init__()
        self.out, self.broken = out, False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self.out.write(text)
            except BrokenPipeError:
                self.broken = True
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.out.flush()
            except BrokenPipeError:
                self.broken = True


def cmd_run(settings: Settings, ns: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    piped = PipeOut(out)
    code = _cmd_run(settings, ns, cast(TextIO, piped))
    if piped.broken:
        raise BrokenPipeError  # ends as a command killed by SIGPIPE would (app/__main__.py)
    return code


def _cmd_run(settings: Settings, ns: argparse.Namespace, out: TextIO) -> int:
    try:
        return asyncio.run(_run(settings, ns, out))
    except StateLockedError as exc:
        print(
            f"error: {exc}\nA running panel runs journeys itself: use its window or its API "
            f"(POST http://127.0.0.1:{settings.api_port}/api/journey/simulate).",
            file=sys.stderr,
        )
        return 2
    except JourneyFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(
            "error: the journey is not valid:\n  - " + "\n  - ".join(exc.messages), file=sys.stderr
        )
        return 2
    except CoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


async def _serve(settings: Settings, host: str, port: int, allow_remote: bool, out: TextIO) -> int:
    from app.api.server import ApiServer

    api_server_check(host, allow_remote)
    async with open_core(settings) as core:
        api = ApiServer(core, host, port, allow_remote)
        await api.start()
        try:
            await _serve_until_signal(core, api, settings, out)
        finally:
            await api.stop()
    print("stopped", file=out, flush=True)
    return 0


async def _serve_until_signal(core: Core, api: ApiServer, settings: Settings, out: TextIO) -> None:
    for message in core.startup_messages:
        print(message, file=out)
    if api.token_generated:  # printed once: the operator's clients need it
        print(f"API token (send Authorization: Bearer <token>): {api.token}", file=out)
    print(
        f"serving the control API on {api.url} (ports {settings.port_lo}-{settings.port_hi}, "
        f"state {settings.state_dir}); Ctrl+C stops it and its services",
        file=out,
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def api_server_check(host: str, allow_remote: bool) -> None:
    from app.api.server import check_host

    check_host(host, allow_remote)


def cmd_serve(
    settings: Settings, host: str, port: int, allow_remote: bool, out: TextIO = sys.stdout
) -> int:
    try:
        return asyncio.run(_serve(settings, host, port, allow_remote, out))
    except CoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def format_traffic(status: dict[str, Any]) -> str:
    paused = status.get("paused")
    state = "paused" if paused else "running" if status["running"] else "stopped"
    head = f"traffic {state} at {status['rate']:g} journeys/s"
    if paused:
        head += f": {paused}"
    if status["running"]:
        head += f" (achieved {status['achievedRate']:g}/s{', BEHIND' if status['behind'] else ''})"
    if status.get("reason"):
        head += f" ({status['reason']})"
    lines = [
        head,
        f"sent {status['sent']}, completed {status['completed']}, failed {status['failed']}, "
        f"cancelled {status.get('cancelled', 0)}, in flight {status['inFlight']}, skipped "
        f"{status.get('skipped', 0)}, p50 {status['p50Ms']:g} ms, p95 {status['p95Ms']:g} ms",
    ]
    rows = [("STEP", "OK", "FAILED", "NOT REACHED", "P50 ms", "P95 ms")]
    rows += [
        (
            s["stepName"],
            str(s["ok"]),
            str(s["failed"]),
            str(s.get("notReached", 0)),
            f"{s['p50Ms']:g}",
            f"{s['p95Ms']:g}",
        )
        for s in status["perStep"]
    ]
    if len(rows) > 1:
        lines += ["", table(rows, indent="  ")]
    return "\n".join(lines)


def cmd_traffic(
    settings: Settings,
    action: str,
    rate: float | None,
    journey: str | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """start | stop | status, through the running panel's control API (traffic lives there);
    `journey` names one resident journey's stream (start: default the newest; stop: all)."""
    if (refused := _no_panel(settings)) is not None:
        return refused
    which = {"journey": journey} if journey else {}
    if action == "start":
        start = {"rate": rate, **which}
        body = _api_call(settings, "POST", "/api/traffic/start", body=start, errors=True)
    elif action == "stop":
        bound = _stop_bound(settings) + API_SLACK_S
        body = _api_call(
            settings, "POST", "/api/traffic/stop", body=which, timeout=bound, errors=True
        )
    else:
        body = _api_call(settings, "GET", "/api/traffic/status", errors=True)
    if (failed := _failed_answer(settings, body)) is not None:
        return failed
    assert body is not None
    print(format_traffic(body), file=out)
    return 0


def format_journeys(journeys: Sequence[dict[str, Any]]) -> str:
    """One row per resident journey: id, company, services and ports, traffic."""
    if not journeys:
        return "no journey runs"
    rows = [("ID", "COMPANY", "SERVICES", "PORTS", "TRAFFIC")]
    for j in journeys:
        traffic = j.get("traffic") or {}
        rate = f"{traffic['rate']:g}/s" if traffic.get("running") else "-"
        ports = ",".join(str(s["port"]) for s in j["services"] if s.get("port"))
        rows.append((j["id"], j["companyName"], str(len(j["services"])), ports or "-", rate))
    return table(rows)


def cmd_journeys(settings: Settings, stop: str | None = None, out: TextIO = sys.stdout) -> int:
    """List the resident journeys, or stop one (`stop` its id), through the running panel."""
    if (refused := _no_panel(settings)) is not None:
        return refused
    if stop is None:
        body = _api_call(settings, "GET", "/api/journeys", errors=True)
    else:
        path = f"/api/journeys/{urllib.parse.quote(stop, safe='')}/stop"
        bound = _stop_bound(settings) + API_SLACK_S
        body = _api_call(settings, "POST", path, body={}, timeout=bound, errors=True)
    if (failed := _failed_answer(settings, body)) is not None:
        return failed
    assert body is not None
    if stop is None:
        print(format_journeys(body["journeys"]), file=out)
    else:
        print(f"stopped journey {stop}: {services(body['stopped'])}", file=out)
    return 0


def _no_panel(settings: Settings) -> int | None:
    """The exit code when no panel of this state directory can be asked (said on stderr)."""
    if lock_holder(settings.state_dir) is None:
        _note_other_panel(settings)
        print(
            f"error: no panel runs on state directory {settings.state_dir}; start one "
            "(python -m app, or python -m app serve) and run a journey first",
            file=sys.stderr,
        )
        return 2
    if _other_panel_answers(settings):
        return 2
    return None


def _failed_answer(settings: Settings, body: dict[str, Any] | None) -> int | None:
    """The exit code when the panel did not answer (2) or refused (1), said on stderr."""
    if body is None:
        print(
            f"error: the panel's API on port {settings.api_port} does not answer{API_PORT_HINT}",
            file=sys.stderr,
        )
        return 2
    if "httpStatus" in body:
        print(f"error: {body.get('error', body['httpStatus'])}", file=sys.stderr)
        for problem in body.get("problems") or []:
            if problem.get("field"):
                print(f"  - {problem['field']}: {problem['message']}", file=sys.stderr)
        return 1
    return None


# -- incidents and scenarios (docs/architecture.md, "Incidents and scenarios") -----------------
# CLI option -> the API's field, for `incident add`.
INCIDENT_OPTIONS = {
    "rate": "rate",
    "status": "status",
    "error_type": "errorType",
    "add_ms": "addMs",
    "jitter_ms": "jitterMs",
    "cores": "cores",
    "mb_per_s": "mbPerS",
    "cap_mb": "capMb",
    "duration": "durationS",
    "journey": "journey",
}


def incident_body(ns: argparse.Namespace) -> dict[str, Any]:
    """POST /api/incidents's body from `incident add`'s arguments (only the options given)."""
    body: dict[str, Any] = {"service": ns.service, "kind": ns.kind}
    for option, name in INCIDENT_OPTIONS.items():
        value = getattr(ns, option, None)
        if value is not None:
            body[name] = int(value) if isinstance(value, float) and value.is_integer() else value
    return body


def _left(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _params(incident: dict[str, Any]) -> str:
    skip = {"id", "service", "serviceName", "company", "journey", "port", "pid", "kind"}
    skip |= {"startedAt", "endsAt", "remainingS", "scenario", "durationS", "ok", "incidents"}
    return " ".join(f"{k}={v}" for k, v in incident.items() if k not in skip)


def format_incidents(incidents: Sequence[dict[str, Any]]) -> str:
    if not incidents:
        return "no incident is in effect"
    rows = [("ID", "KIND", "SERVICE", "PARAMETERS", "LEFT")]
    rows += [
        (i["id"], i["kind"], i["service"], _params(i), _left(float(i["remainingS"])))
        for i in incidents
    ]
    return table(rows)


def cmd_incident(settings: Settings, ns: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """add | list | clear [ID], through the running panel's control API."""
    if (refused := _no_panel(settings)) is not None:
        return refused
    if ns.action == "add":
        body = _api_call(settings, "POST", "/api/incidents", body=incident_body(ns), errors=True)
    elif ns.action == "list":
        body = _api_call(settings, "GET", "/api/incidents", errors=True)
    else:
        path = "/api/incidents" + (f"/{urllib.parse.quote(ns.id, safe='')}" if ns.id else "")
        body = _api_call(settings, "DELETE", path, errors=True)
    if (failed := _failed_answer(settings, body)) is not None:
        return failed
    assert body is not None
    if ns.action == "add":
        for i in body["incidents"]:
            print(
                f"incident {i['id']}: {i['kind']} on {i['service']} ({_params(i)}) for "
                f"{i['durationS']:g} s",
                file=out,
            )
    elif ns.action == "list":
        print(format_incidents(body["incidents"]), file=out)
    else:
        ended = body["cleared"] if "cleared" in body else [body["incident"]]
        names = ", ".join(f"{i['id']} ({i['kind']} on {i['service']})" for i in ended)
        print(
            f"cleared {len(ended)} incident{'s' * (len(ended) != 1)}{': ' * bool(names)}{names}",
            file=out,
        )
    return 0


def format_scenario(run: dict[str, Any]) -> str:
    head = f"scenario {run['name']} {run['state']} ({run['id']}): {run['elapsedS']:g} of "
    head += f"{run['durationS']:g} s"
    rows = [("AT", "STATE", "INCIDENT", "NOTE")]
    for step in run["steps"]:
        spec = step["incident"]
        what = f"{spec.get('kind')} on {spec.get('service')}"
        note = step.get("error") or " ".join(step.get("incidents") or [])
        rows.append((f"{step['atS']:g} s", step["state"], what, note))
    return f"{head}\n{table(rows, indent='  ')}"


def cmd_scenario(
    settings: Settings, action: str, target: str | None, out: TextIO = sys.stdout
) -> int:
    """run FILE|NAME | stop | status, through the running panel's control API."""
    if (refused := _no_panel(settings)) is not None:
        return refused
    if action == "run":
        if target is None:
            print("error: scenario run needs a scenario file or a packaged name", file=sys.stderr)
            return 2
        path = Path(target)
        if path.suffix == ".json" or path.exists():
            try:
                request: dict[str, Any] = {"scenario": read_scenario_file(path)}
            except ScenarioFileError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
        else:
            request = {"name": target}
        body = _api_call(settings, "POST", "/api/scenarios/run", body=request, errors=True)
    elif action == "stop":
        body = _api_call(settings, "POST", "/api/scenarios/stop", errors=True)
    else:
        body = _api_call(settings, "GET", "/api/scenarios", errors=True)
    if (failed := _failed_answer(settings, body)) is not None:
        return failed
    assert body is not None
    if action == "run":
        print(format_scenario(body), file=out)
    elif action == "stop":
        stopped = body.get("stopped")
        print(format_scenario(stopped) if stopped else "no scenario was running", file=out)
    else:
        current = body.get("running") or body.get("last")
        print(format_scenario(current) if current else "no scenario has run", file=out)
        names = ", ".join(s["name"] for s in body["packaged"])
        print(f"packaged: {names}", file=out)
    return 0
