"""The panel's Prometheus metrics: one `CollectorRegistry` per Core, exposed at `GET /metrics`
by the control API and read back by the window through `Metrics.snapshot()`
(docs/architecture.md, "Metrics and alerts").

Counters and histograms are fed by the core's events (phases, runs, alerts) and by the Core's
own cleanups; continuous traffic is fed once a second from the pacer's closed per-second
tallies (app/core/traffic.py), never per journey. What already exists elsewhere — the ports'
states, the services, the exporter's counts, the incidents in effect — is read at scrape time
by a custom collector (`_Current`), so there is no second bookkeeping to drift.

Label values are bounded so a long demo cannot blow up the series: triggers, modes, outcomes,
phases, port states, alert kinds and export signals are enums; companies and services are
capped (`COMPANY_CAP`, `SERVICE_CAP` distinct values, then `other`).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from app.core.alerts import Alert, AlertChange, AlertEvent, AlertKind
from app.core.events import CoreEvents, PhaseEvent, PhaseStatus, RunEvent, RunStatus
from app.core.incident_model import IncidentChange, IncidentEvent
from app.core.model import Phase, PortInfo, PortState, ServiceRecord
from app.core.simulation import CustomerResult
from app.core.traffic_stats import FAILED, OK, SKIPPED, Tally
from app.service.incident_kinds import IncidentKind

COMPANY_CAP = 20  # distinct company label values; the 21st and later are "other"
SERVICE_CAP = 60  # distinct service label values (a pool of 40 fits, with room for switches)
OTHER = "other"
SAMPLE_EVERY_S = 10.0  # the snapshot's ring: one sample this often
SAMPLES = 90  # 15 minutes of samples
CLEANUP_PHASES = (Phase.STOP, Phase.WAIT, Phase.SWEEP)
# Cleanup failures are these alert kinds (the pool filling up is an alert, not a failure).
FAILURE_KINDS = (AlertKind.PORT_NOT_FREED, AlertKind.KILL_FAILED, AlertKind.FOREIGN_LISTENER)
TRIGGERS = ("run", "stop_all", "sweep", "compat")
# Seconds: a step takes milliseconds to its latency setting (up to a minute); a cleanup
# milliseconds to the stop grace and the kill wait.
STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CLEANUP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PHASE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class CappedLabel:
    """A label's values: the first `cap` distinct ones as they are, every later one `other`."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self.cap:
            return OTHER
        self._seen.add(value)
        return value


class _Buckets:
    """A histogram kept as cumulative bucket counts, fed a whole tally's latencies at once
    (a second's: a few hundred distinct values at most) and exposed at scrape time."""

    __slots__ = ("count", "counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(STEP_BUCKETS) + 1)  # the last one: +Inf
        self.sum = 0.0
        self.count = 0

    def add(self, seconds: float, n: int = 1) -> None:
        self.counts[bisect.bisect_left(STEP_BUCKETS, seconds)] += n
        self.sum += seconds * n
        self.count += n

    def exposed(self) -> list[tuple[str, float]]:
        out, seen = [], 0
        for bound, n in zip((*STEP_BUCKETS, math.inf), self.counts, strict=True):
            seen += n
            out.append(("+Inf" if bound == math.inf else repr(bound), float(seen)))
        return out


@dataclass(frozen=True)
class Sources:
    """What the scrape-time collector reads from the core (callables: the exporter and the
    pool may be replaced or grow while the core runs)."""

    ports: Callable[[], list[PortInfo]]
    services: Callable[[], list[ServiceRecord]]
    export_status: Callable[[], Mapping[str, Mapping[str, Any]]]
    incidents_active: Callable[[], int]


@dataclass(frozen=True)
class Sample:
    """One point of the snapshot's ring (every SAMPLE_EVERY_S)."""

    at: float  # wall clock
    cleanups: float  # bizobs_cleanups_total, every trigger
    stale_cleaned: float
    orphans_reaped: float
    ports: tuple[tuple[str, int], ...]  # (state, ports in it)


@dataclass(frozen=True)
class MetricsSnapshot:
    """What the window's metrics view shows, read from the same registry `/metrics` exposes.

    - `at`: when it was taken (wall clock).
    - `cleanups_per_minute`: (sample time, cleanups per minute since the sample before), over
      the ring (`SAMPLES` samples every `SAMPLE_EVERY_S`: the last 15 minutes), oldest first.
    - `ports_by_state`: every PortState value with its ports now (they sum to `pool_size`).
    - `pool_size`: the active pool's ports.
    - `cleanups_total`: cleanups since the panel started, every trigger.
    - `stale_cleaned_total`, `orphans_reaped_total`: since the panel started.
    - `cleanup_p50_s`, `cleanup_p95_s`: cleanup duration quantiles estimated from the
      histogram's buckets (None before the first cleanup); `last_cleanup_s` the latest one.
    - `failures`: the cleanup-failure alerts listed now (app/core/alerts.py), oldest first.
    """

    at: float
    cleanups_per_minute: tuple[tuple[float, float], ...]
    ports_by_state: tuple[tuple[str, int], ...]
    pool_size: int
    cleanups_total: float
    stale_cleaned_total: float
    orphans_reaped_total: float
    cleanup_p50_s: float | None
    cleanup_p95_s: float | None
    last_cleanup_s: float | None
    failures: tuple[Alert, ...]


class Metrics:
    """Owned by the Core; fed and read on the event loop's thread only."""

    def __init__(
        self,
        events: CoreEvents,
        sources: Sources,
        alerts: Callable[[], Sequence[Alert]] = tuple,
    ) -> None:
        self.registry = CollectorRegistry()
        self._sources = sources
        self._alerts = alerts
        self._company = CappedLabel(COMPANY_CAP)
        self._service = CappedLabel(SERVICE_CAP)
        self._steps: dict[str, _Buckets] = {}
        self._cleanup_runs: dict[str, float] = {}  # run id -> seconds of its cleanup phases
        self._samples: deque[Sample] = deque(maxlen=SAMPLES)
        self.last_cleanup_s: float | None = None
        self._declare(self.registry)
        ProcessCollector(registry=self.registry)
        self.registry.register(_Current(self))
        events.phase.connect(self._on_phase)
        events.run.connect(self._on_run)
        events.alert.connect(self._on_alert)
        events.incident.connect(self._on_incident)

    def _declare(self, r: CollectorRegistry) -> None:
        self.cleanups = Counter(
            "bizobs_cleanups", "Cleanups done, by what started them", ["trigger"], registry=r
        )
        for trigger in TRIGGERS:
            self.cleanups.labels(trigger)
        self.cleanup_stopped = Counter(
            "bizobs_cleanup_stopped", "Services stopped by cleanups", registry=r
        )
        self.stale_cleaned = Counter(
            "bizobs_cleanup_stale_cleaned", "Stale allocations released by sweeps", registry=r
        )
        self.orphans_reaped = Counter(
            "bizobs_cleanup_orphans_reaped", "Orphans of earlier panels stopped", registry=r
        )
        self.cleanup_failures = Counter(
            "bizobs_cleanup_failures", "Cleanup failures, by reason", ["reason"], registry=r
        )
        for kind in FAILURE_KINDS:
            self.cleanup_failures.labels(kind.value)
        self.cleanup_duration = Histogram(
            "bizobs_cleanup_duration_seconds",
            "How long a cleanup took (a run's stop, wait and sweep together)",
            buckets=CLEANUP_BUCKETS,
            registry=r,
        )
        self.service_restarts = Counter(
            "bizobs_service_restarts", "Services restarted, by service", ["service"], registry=r
        )
        self.runs = Counter(
            "bizobs_runs", "Run Journeys, by mode and outcome", ["mode", "outcome"], registry=r
        )
        self.run_phase = Histogram(
            "bizobs_run_phase_duration_seconds",
            "How long each phase of a Run Journey took",
            ["phase"],
            buckets=PHASE_BUCKETS,
            registry=r,
        )
        self.journeys = Counter(
            "bizobs_journeys",
            "Customer journeys ended (runs and traffic), by company and outcome",
            ["company", "outcome"],
            registry=r,
        )
        self.step_requests = Counter(
            "bizobs_step_requests",
            "Steps of customer journeys, by service and outcome",
            ["service", "outcome"],
            registry=r,
        )
        self.incidents = Counter(
            "bizobs_incidents", "Incidents started, by kind", ["kind"], registry=r
        )
        for incident_kind in IncidentKind:
            self.incidents.labels(incident_kind.value)
        self.alerts = Counter("bizobs_alerts", "Alerts raised, by kind", ["kind"], registry=r)
        for alert_kind in AlertKind:
            self.alerts.labels(alert_kind.value)

    # -- feeding ----------------------------------------------------------------------------
    def cleanup(
        self, trigger: str, seconds: float, stopped: int = 0, stale: int = 0, orphans: int = 0
    ) -> None:
        """One cleanup done (`trigger` one of TRIGGERS) and what it did."""
        self.cleanups.labels(trigger).inc()
        self.cleanup_duration.observe(seconds)
        self.last_cleanup_s = seconds
        self.cleanup_stopped.inc(stopped)
        self.stale_cleaned.inc(stale)
        self.orphans_reaped.inc(orphans)

    def restarted(self, service_name: str) -> None:
        self.service_restarts.labels(self._service(service_name)).inc()

    def customers(self, company: str, results: Iterable[CustomerResult]) -> None:
        """A run's customers (bounded by the run's size: counted one by one)."""
        label = self._company(company)
        for result in results:
            self.journeys.labels(label, OK if result.ok else FAILED).inc()
            for step in result.steps:
                service = self._service(step.service_name)
                self.step_requests.labels(service, _step_outcome(step.status)).inc()
                if step.status != SKIPPED and step.latency_ms is not None:
                    self._step(service).add(step.latency_ms / 1000)

    def traffic_second(self, company: str, services: Mapping[str, str], tally: Tally) -> None:
        """One closed second of a traffic stream: its journeys, and each step's outcomes and
        latencies (`services`: step name -> service name)."""
        label = self._company(company)
        for outcome, n in ((OK, tally.completed), (FAILED, tally.failed)):
            if n:
                self.journeys.labels(label, outcome).inc(n)
        if tally.cancelled:
            self.journeys.labels(label, "cancelled").inc(tally.cancelled)
        for step_name, step in tally.steps.items():
            service = self._service(services.get(step_name, step_name))
            for outcome, n in ((OK, step.ok), (FAILED, step.failed), (SKIPPED, step.not_reached)):
                if n:
                    self.step_requests.labels(service, _step_outcome(outcome)).inc(n)
            buckets = self._step(service)
            for ms, n in step.latency.items():
                buckets.add(ms / 1000, n)

    def _step(self, service: str) -> _Buckets:
        found = self._steps.get(service)
        if found is None:
            found = self._steps[service] = _Buckets()
        return found

    def _on_phase(self, event: PhaseEvent) -> None:
        if event.status is PhaseStatus.STARTED:
            return
        # The phase's work: a demo-pacing pause is no part of how long a phase takes.
        self.run_phase.labels(event.phase.value).observe(event.work_ms / 1000)
        if event.phase not in CLEANUP_PHASES:
            return
        spent = self._cleanup_runs.get(event.run_id, 0.0) + event.work_ms / 1000
        self._cleanup_runs[event.run_id] = spent
        if event.status is PhaseStatus.FAILED:
            self._cleanup_runs.pop(event.run_id, None)
            self.cleanup_failures.labels("error").inc()
        elif event.phase is Phase.STOP:
            self.cleanup_stopped.inc(event.counts.get("stopped", 0))
        elif event.phase is Phase.SWEEP:
            self._cleanup_runs.pop(event.run_id, None)
            self.cleanups.labels("run").inc()
            self.cleanup_duration.observe(spent)
            self.last_cleanup_s = spent
            self.stale_cleaned.inc(event.counts.get("staleCleaned", 0))
            self.orphans_reaped.inc(event.counts.get("orphansReaped", 0))

    def _on_run(self, event: RunEvent) -> None:
        if event.status is RunStatus.STARTED:
            return
        self._cleanup_runs.pop(event.run_id, None)
        self.runs.labels(event.mode or "unknown", event.status.value).inc()
        simulation = getattr(event.result, "simulation", None)
        if simulation is not None:
            self.customers(event.company, simulation.customers)

    def _on_incident(self, event: IncidentEvent) -> None:
        if event.change is IncidentChange.STARTED:
            self.incidents.labels(event.incident.kind.value).inc()

    def _on_alert(self, event: AlertEvent) -> None:
        if event.change is not AlertChange.RAISED:
            return
        kind = event.alert.kind
        self.alerts.labels(kind.value).inc()
        if kind in FAILURE_KINDS:
            self.cleanup_failures.labels(kind.value).inc()

    # -- the ring and the snapshot ------------------------------------------------------------
    def sample(self) -> Sample:
        """Take one sample of the registry into the ring (the Core does every SAMPLE_EVERY_S)."""
        read = _Read(self.registry)
        found = Sample(
            time.time(),
            read.total("bizobs_cleanups_total"),
            read.total("bizobs_cleanup_stale_cleaned_total"),
            read.total("bizobs_cleanup_orphans_reaped_total"),
            read.ports_by_state(),
        )
        self._samples.append(found)
        return found

    async def sample_forever(self, every_s: float = SAMPLE_EVERY_S) -> None:
        while True:
            self.sample()
            await asyncio.sleep(every_s)  # the ring's period, not a synchronisation

    def samples(self) -> tuple[Sample, ...]:
        return tuple(self._samples)

    def snapshot(self) -> MetricsSnapshot:
        """Now, from the registry (see MetricsSnapshot for the fields)."""
        ring, read = list(self._samples), _Read(self.registry)
        per_minute = tuple(
            (b.at, (b.cleanups - a.cleanups) * 60 / max(b.at - a.at, 1e-9))
            for a, b in itertools.pairwise(ring)
        )
        return MetricsSnapshot(
            at=time.time(),
            cleanups_per_minute=per_minute,
            ports_by_state=read.ports_by_state(),
            pool_size=int(read.total("bizobs_pool_size")),
            cleanups_total=read.total("bizobs_cleanups_total"),
            stale_cleaned_total=read.total("bizobs_cleanup_stale_cleaned_total"),
            orphans_reaped_total=read.total("bizobs_cleanup_orphans_reaped_total"),
            cleanup_p50_s=read.quantile("bizobs_cleanup_duration_seconds", 0.5),
            cleanup_p95_s=read.quantile("bizobs_cleanup_duration_seconds", 0.95),
            last_cleanup_s=self.last_cleanup_s,
            failures=tuple(a for a in self._alerts() if a.kind in FAILURE_KINDS),
        )

    # -- read at scrape time (by _Current) ----------------------------------------------------
    def current(self) -> Iterator[Metric]:
        src = self._sources
        ports = GaugeMetricFamily("bizobs_ports", "Ports of the pool by state", labels=["state"])
        counts = dict.fromkeys((s.value for s in PortState), 0)
        cells = src.ports()  # every port of the pool, each in one state: they sum to its size
        for cell in cells:
            counts[cell.state.value] += 1
        for state, n in counts.items():
            ports.add_metric([state], n)
        yield ports
        yield GaugeMetricFamily("bizobs_pool_size", "Ports in the pool", value=len(cells))
        services = GaugeMetricFamily(
            "bizobs_services", "Services running, by company", labels=["company"]
        )
        by_company: dict[str, int] = {}
        for record in src.services():
            label = self._company(record.company)
            by_company[label] = by_company.get(label, 0) + 1
        for company, n in sorted(by_company.items()):
            services.add_metric([company], n)
        yield services
        steps = HistogramMetricFamily(
            "bizobs_step_duration_seconds",
            "Latency of each step (runs and traffic), by service",
            labels=["service"],
        )
        for service, buckets in sorted(self._steps.items()):
            steps.add_metric([service], buckets.exposed(), buckets.sum)
        yield steps
        yield from _export_families(src.export_status())
        yield GaugeMetricFamily(
            "bizobs_incidents_active", "Incidents in effect now", value=src.incidents_active()
        )


def _export_families(status: Mapping[str, Mapping[str, Any]]) -> Iterator[Metric]:
    names = (
        ("bizobs_export_sent", "Units the exporter delivered, by signal", "sent"),
        ("bizobs_export_dropped", "Units the exporter dropped, by signal", "dropped"),
        (
            "bizobs_export_failed_batches",
            "Batches the exporter gave up, by signal",
            "failedBatches",
        ),
    )
    for name, help_text, key in names:
        family = CounterMetricFamily(name, help_text, labels=["signal"])
        for signal, values in status.items():
            family.add_metric([signal], float(values.get(key, 0)))
        yield family


class _Read:
    """One collection of the registry, read by sample name."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in registry.collect():
            for s in family.samples:
                self._samples.setdefault(s.name, []).append((s.labels, s.value))

    def total(self, name: str) -> float:
        """A sample's value summed over its labels."""
        return sum(value for _, value in self._samples.get(name, ()))

    def ports_by_state(self) -> tuple[tuple[str, int], ...]:
        counts = dict.fromkeys((s.value for s in PortState), 0)
        for labels, value in self._samples.get("bizobs_ports", ()):
            counts[labels["state"]] = int(value)
        return tuple(counts.items())

    def quantile(self, name: str, q: float) -> float | None:
        """`q` estimated from a histogram's buckets as PromQL's histogram_quantile does."""
        buckets = sorted(
            (float(labels["le"]), value)
            for labels, value in self._samples.get(f"{name}_bucket", ())
        )
        total = buckets[-1][1] if buckets else 0.0
        if not total:
            return None
        rank, lower, below = q * total, 0.0, 0.0
        for bound, seen in buckets:
            if seen >= rank:
                if math.isinf(bound):
                    return lower
                return lower + (bound - lower) * (rank - below) / max(seen - below, 1e-12)
            lower, below = bound, seen
        return lower


class _Current(Collector):
    """The values that exist in the core already, read when Prometheus scrapes."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return list(self._metrics.current())


def _step_outcome(status: str) -> str:
    return "not_reached" if status == SKIPPED else status
