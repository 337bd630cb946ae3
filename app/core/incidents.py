"""The incidents in effect on the running services, and the control channel that starts and
ends them in the running processes (docs/architecture.md, "Incidents and scenarios").

An incident goes to the very process that serves: same pid, in effect within a control
message's round trip, and gone at its end — by itself in the service at `endsAt` (the panel's
CLOCK_MONOTONIC, the machine's one clock) and by the panel's own timer here, which also tells
the service. Everything is checked before anything changes: the fields, where it goes, that
no incident of its kind is in effect there, that the service answers. A service that is
stopped (Run Journey, Stop All, a restart, a sweep) takes its incidents with it: they leave the
table as its record is forgotten, and a restarted service starts clean.

Control messages are signed with the panel's chain secret under the control domain, carry the
moment they were made and a nonce (app/service/protocol.py, app/service/control.py). Used from
the event loop's thread only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, hdrs

from app.common.httpguard import JSON
from app.core.errors import (
    IncidentConflictError,
    IncidentControlError,
    NoJourneyError,
    UnknownServiceError,
)
from app.core.events import CoreEvents, LogLevel, ServiceChange, ServiceEvent
from app.core.incident_model import (
    EVERY_SERVICE,
    EndReason,
    Incident,
    IncidentChange,
    IncidentEvent,
    IncidentRequest,
    headline,
    new_incident_id,
    parse_request,
)
from app.core.model import ServiceRecord, ServiceState
from app.core.residents import Residents
from app.core.services import ServiceManager
from app.core.tasks import TaskOwner
from app.service.incident_kinds import IncidentSpec
from app.service.protocol import (
    CONTROL_HEADER,
    CONTROL_PATH,
    PROTOCOL_VERSION,
    control_credential,
)

CONTROL_TIMEOUT_S = 2.0  # a service answers a control message at once, or it is broken
# A service record leaving the table in any of these ways takes its incidents with it.
GONE = frozenset(
    {ServiceChange.STOPPED, ServiceChange.KILLED, ServiceChange.STALE, ServiceChange.FAILED}
)


class Incidents:
    """The table of incidents in effect, by id."""

    def __init__(
        self,
        manager: ServiceManager,
        residents: Residents,
        events: CoreEvents,
        http: Callable[[], ClientSession],
        resolve: Callable[[str], str],
    ) -> None:
        self._manager = manager
        self._residents = residents
        self._events = events
        self._http = http
        self._resolve = resolve  # a service name or key -> our running service's key
        self._table: dict[str, Incident] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._owner = TaskOwner("incidents", self._failed)
        events.service.connect(self._on_service)

    # -- queries ------------------------------------------------------------------------------
    def active(self) -> list[Incident]:
        return sorted(self._table.values(), key=lambda i: (i.started_at, i.key))

    def get(self, incident_id: str) -> Incident | None:
        return self._table.get(incident_id)

    def on(self, key: str) -> list[Incident]:
        return [i for i in self._table.values() if i.key == key]

    def headline_of(self, key: str) -> tuple[str, str] | None:
        """(id, kind) of the incident that names service `key` now (traffic's per step)."""
        found = headline(self.on(key))
        return (found.id, found.kind.value) if found is not None else None

    # -- commands -----------------------------------------------------------------------------
    async def start(self, data: object, scenario: str = "") -> list[Incident]:
        """Start the incident `data` describes on each service it names (one, or every
        customer service of a journey for "*"): all of them, or none. ValidationError (bad
        fields), UnknownServiceError / NoJourneyError (no such service or journey),
        IncidentConflictError (one of its kind is in effect there, the service is broken) —
        each before anything changes; IncidentControlError if a service did not take it (the
        ones already started are ended again)."""
        request = parse_request(data)
        records = self._check(request)
        started: list[Incident] = []
        try:
            for record in records:
                started.append(await self._start_one(record, request.spec, scenario))
        except BaseException:
            for incident in started:
                await self.end(incident.id, EndReason.CLEARED)
            raise
        return started

    async def end(self, incident_id: str, reason: str = EndReason.CLEARED) -> Incident:
        """End one incident now: out of the table at once, then the service is told (it ends
        it by itself at its end anyway). UnknownServiceError when there is no such incident."""
        incident = self._table.get(incident_id)
        if incident is None:
            raise UnknownServiceError(f"no incident {incident_id!r} is in effect")
        self._drop(incident, reason)
        record = self._manager.get(incident.key)
        if record is not None and record.pid == incident.pid and reason != EndReason.EXPIRED:
            # Gone or broken: it ends by itself at endsAt, or with its process.
            with contextlib.suppress(IncidentControlError):
                await self._send(record, {"op": "end", "id": incident.id})
        return incident

    async def clear(
        self, reason: str = EndReason.CLEARED, which: Callable[[Incident], bool] | None = None
    ) -> list[Incident]:
        """End every incident (or those `which` says), concurrently."""
        chosen = [i for i in self.active() if which is None or which(i)]
        return list(await asyncio.gather(*(self.end(i.id, reason) for i in chosen)))

    async def aclose(self) -> None:
        """Closing: the timers stop, every incident ends (services are stopped next)."""
        await self._owner.aclose()
        for incident in self.active():
            self._drop(incident, EndReason.CLOSING)

    # -- checks before anything changes -------------------------------------------------------
    def targets(self, data: object, at: str = "") -> list[str]:
        """The keys of the running services the incident `data` would go to, checked as a
        start checks them (but for incidents already in effect): a scenario checks each of its
        steps so before the first one runs."""
        return [self._running(k).key for k in self._targets(parse_request(data, at))]

    def _check(self, request: IncidentRequest) -> list[ServiceRecord]:
        records = [self._running(key) for key in self._targets(request)]
        kind = request.spec.kind
        for record in records:
            if clash := next((i for i in self.on(record.key) if i.kind is kind), None):
                raise IncidentConflictError(
                    f"{record.key} already has a {kind.value} incident ({clash.id}, "
                    f"{clash.remaining_s():.0f} s left): clear it first"
                )
        return records

    def _targets(self, request: IncidentRequest) -> list[str]:
        resident = None
        if request.journey is not None:
            resident = self._residents.get(request.journey)
            if resident is None:
                raise UnknownServiceError(f"no running journey {request.journey!r}")
        if request.service == EVERY_SERVICE:
            resident = resident or self._residents.newest()
            if resident is None:
                raise NoJourneyError("no journey is running: run one first")
            return sorted(resident.keys)
        if resident is None:
            return [self._resolve(request.service)]
        specs = resident.journey.service_specs()
        keys = [s.key for s in specs]
        named = [s.key for s in specs if request.service in (s.key, s.service_name)]
        if not named:
            raise UnknownServiceError(
                f"journey {resident.id} has no service {request.service!r}: it has {keys}"
            )
        return named[:1]

    def _running(self, key: str) -> ServiceRecord:
        record = self._manager.get(key)
        if record is None or record.state is not ServiceState.RUNNING or record.pid is None:
            raise UnknownServiceError(f"no running service {key!r}")
        trouble = self._manager.trouble(key)
        if trouble is not None:
            raise IncidentConflictError(
                f"{record.service_name} on {record.port} is {trouble.text(time.monotonic())}: "
                "restart it first"
            )
        return record

    # -- one incident -------------------------------------------------------------------------
    async def _start_one(
        self, record: ServiceRecord, spec: IncidentSpec, scenario: str
    ) -> Incident:
        incident_id = new_incident_id()
        now, wall = time.monotonic(), time.time()
        ends_mono = now + spec.duration_s
        body = {"id": incident_id, **spec.to_json(), "endsAt": ends_mono}
        await self._send(record, {"op": "start", "incident": body}, expect=201)
        current = self._manager.get(record.key)
        if current is None or current.pid != record.pid:
            # Stopped while the message was on its way: its incident went with it.
            raise UnknownServiceError(f"{record.key} was stopped as the incident started")
        incident = Incident(
            id=incident_id,
            key=record.key,
            service_name=record.service_name,
            company=record.company,
            journey_id=record.journey_id,
            port=record.port,
            pid=record.pid or 0,
            spec=spec,
            started_at=wall,
            ends_at=wall + spec.duration_s,
            ends_mono=ends_mono,
            scenario=scenario,
        )
        self._table[incident_id] = incident
        self._timers[incident_id] = self._owner.spawn(self._expire(incident), incident_id)
        self._events.say(incident.key, f"incident {incident_id} started: {incident.label()}")
        self._events.incident.emit(IncidentEvent(IncidentChange.STARTED, incident))
        return incident

    async def _expire(self, incident: Incident) -> None:
        await asyncio.sleep(max(0.0, incident.ends_mono - time.monotonic()))  # its duration
        if incident.id in self._table:
            self._timers.pop(incident.id, None)  # this very task: not cancelled by _drop
            await self.end(incident.id, EndReason.EXPIRED)

    def _drop(self, incident: Incident, reason: str) -> None:
        """Out of the table, its timer cancelled, and said."""
        if self._table.pop(incident.id, None) is None:
            return
        timer = self._timers.pop(incident.id, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        self._events.say(
            incident.key, f"incident {incident.id} ended ({reason}): {incident.label()}"
        )
        self._events.incident.emit(IncidentEvent(IncidentChange.ENDED, incident, str(reason)))

    def _on_service(self, event: ServiceEvent) -> None:
        if event.change in GONE:
            for incident in self.on(event.key):
                self._drop(incident, EndReason.SERVICE_STOPPED)

    # -- the control channel ------------------------------------------------------------------
    async def _send(
        self, record: ServiceRecord, message: dict[str, Any], expect: int = 200
    ) -> dict[str, Any]:
        """One signed control message to `record`'s process; its JSON answer."""
        body = json.dumps(
            {
                "v": PROTOCOL_VERSION,
                **message,
                "issuedAt": time.monotonic(),
                "nonce": secrets.token_hex(16),
            }
        ).encode()
        headers = {
            hdrs.CONTENT_TYPE: JSON,
            CONTROL_HEADER: control_credential(self._manager.chain_secret, body),
        }
        url = f"http://127.0.0.1:{record.port}{CONTROL_PATH}"
        who = f"{record.service_name} on {record.port}"
        try:
            async with self._http().post(
                url, data=body, headers=headers, timeout=ClientTimeout(total=CONTROL_TIMEOUT_S)
            ) as resp:
                answer = await resp.json(content_type=None)
                status = resp.status
        except TimeoutError as exc:
            raise IncidentControlError(
                f"{who} did not answer within {CONTROL_TIMEOUT_S:g} s"
            ) from exc
        except (ClientError, ValueError) as exc:
            raise IncidentControlError(f"{who} cannot be reached: {type(exc).__name__}") from exc
        if status != expect or not isinstance(answer, dict):
            error = answer.get("error") if isinstance(answer, dict) else None
            said = error.get("message") if isinstance(error, dict) else f"HTTP {status}"
            raise IncidentControlError(f"{who} refused: {said}")
        return answer

    def _failed(self, name: str, exc: BaseException) -> None:
        self._events.say("incidents", f"{name} failed: {type(exc).__name__}: {exc}", LogLevel.ERROR)
