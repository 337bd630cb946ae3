"""The control route of a step service: the panel starts, ends and lists its incidents.

Guarded like `/process` (docs/architecture.md, "The step service" and "Incidents and
scenarios"): the rules every listening socket applies come first (app/common/httpguard.py: no
Origin, its own Host, JSON only), then the control credential over the raw bytes, keyed by the
panel's secret (app/service/protocol.py) — nothing unsigned is even parsed — then the message
must be fresh (`issuedAt` within CONTROL_MAX_AGE_S) and never seen before (its nonce), so a
message replayed later or at once does nothing.
"""

from __future__ import annotations

import json
import time
from typing import Any

from app.service.incident_kinds import parse_spec
from app.service.incidents import IncidentRefused, ServiceIncidents
from app.service.protocol import CONTROL_MAX_AGE_S, control_credential_ok

MAX_FUTURE_S = 1.0  # the panel's clock is this machine's: "made later than now" is a forgery
MAX_ID = 64
Answer = tuple[int, dict[str, Any]]


def _refused(status: int, kind: str, message: str) -> Answer:
    return status, {"status": "failed", "error": {"type": kind, "message": message}}


class ControlDesk:
    """Checks each control message and carries it out on the service's incidents."""

    def __init__(self, secret: bytes, incidents: ServiceIncidents) -> None:
        self._secret = secret
        self.incidents = incidents
        self._nonces: dict[str, float] = {}  # seen within the freshness window

    def handle(self, raw: bytes, presented: str) -> Answer:
        if not self._secret or not control_credential_ok(self._secret, raw, presented):
            return _refused(403, "refused", "missing or wrong control credential: only the panel")
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            return _refused(400, "bad_request", "control body is not JSON")
        if not isinstance(body, dict):
            return _refused(400, "bad_request", "control body must be a JSON object")
        if (stale := self._stale(body)) is not None:
            return _refused(403, "refused", stale)
        try:
            return self._carry_out(body)
        except IncidentRefused as exc:
            kind = "conflict" if exc.status == 409 else "bad_request"
            return _refused(exc.status, kind, str(exc))

    def _stale(self, body: dict[str, Any]) -> str | None:
        """Why the message must not be carried out (too old, from the future, replayed)."""
        issued, nonce = body.get("issuedAt"), body.get("nonce")
        if isinstance(issued, bool) or not isinstance(issued, int | float):
            return "control message without issuedAt: refused"
        if not isinstance(nonce, str) or not 16 <= len(nonce) <= MAX_ID:
            return "control message without a nonce: refused"
        now = time.monotonic()
        for seen, at in list(self._nonces.items()):
            if at < now - CONTROL_MAX_AGE_S - MAX_FUTURE_S:
                del self._nonces[seen]
        age = now - float(issued)
        if not -MAX_FUTURE_S <= age <= CONTROL_MAX_AGE_S:
            return f"control message made {age:.1f} s ago: too old (a replay?), refused"
        if nonce in self._nonces:
            return "control message seen before (a replay): refused"
        self._nonces[nonce] = float(issued)
        return None

    def _carry_out(self, body: dict[str, Any]) -> Answer:
        op = body.get("op")
        if op == "start":
            return self._start(body.get("incident"))
        if op == "end":
            incident_id = body.get("id")
            if not isinstance(incident_id, str) or not self.incidents.end(incident_id):
                return _refused(404, "not_found", f"no incident {incident_id!r} in effect here")
            return 200, {"ok": True, "ended": incident_id}
        if op == "list":
            return 200, {"ok": True, "incidents": [r.to_json() for r in self.incidents.active()]}
        return _refused(400, "bad_request", "op must be start, end or list")

    def _start(self, incident: object) -> Answer:
        if not isinstance(incident, dict):
            raise IncidentRefused(400, "start needs an incident object")
        incident_id, ends_at = incident.get("id"), incident.get("endsAt")
        if not isinstance(incident_id, str) or not 0 < len(incident_id) <= MAX_ID:
            raise IncidentRefused(400, "the incident needs an id")
        if isinstance(ends_at, bool) or not isinstance(ends_at, int | float):
            raise IncidentRefused(400, "the incident needs endsAt (time.monotonic)")
        spec, problems = parse_spec(incident, also=("id", "endsAt"))
        if spec is None:
            raise IncidentRefused(400, "; ".join(message for _, message in problems))
        running = self.incidents.start(incident_id, spec, float(ends_at))
        return 201, {"ok": True, "incident": running.to_json()}
