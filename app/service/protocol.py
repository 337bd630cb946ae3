"""The hop protocol: what the panel sends to a journey's first step service, what each service
forwards to the next, and what comes back (docs/architecture.md, "The step service").

One request body travels the whole chain unchanged: the customer, every hop (URL and step
settings) and the chain's deadline. Each request says which hop it is for (`X-Bizobs-Hop`) and
carries the chain credential (`X-Bizobs-Chain`): an HMAC-SHA256 over the hop index and the
body, keyed by a secret the panel hands each service at spawn (never on a command line). Only
the panel and its services know the secret, so only the panel can start a chain, and a web page
or another local client that reaches a service cannot make it call anything.

Each hop must answer its caller by the chain's deadline less a margin per level, so a hop whose
next hop is too slow still has time to say so, and the failure is charged to the hop that was
slow. The deadline is on CLOCK_MONOTONIC (Python's `time.monotonic`), one clock for every
process on the machine that no wall-clock change moves.

The panel also steers a running service's incidents (app/service/incidents.py) over a control
route of its own. A control message is signed like a chain request but under another domain
(`control_credential`: b"control\n" + body, header `X-Bizobs-Control`), so no chain credential is
ever a control credential and no control credential a chain one; it carries the moment it was
made (`issuedAt`, CLOCK_MONOTONIC) and a nonce, so a message replayed later, or again, does
nothing.

The shapes below are the protocol's own; the panel (app/core/chain.py, simulation.py, export,
incidents.py) and the services (app/service/app.py, control.py) both import them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from typing import Any, TypedDict

PROTOCOL_VERSION = 2
CHAIN_HEADER = "X-Bizobs-Chain"
HOP_HEADER = "X-Bizobs-Hop"
PROCESS_PATH = "/process"
CONTROL_HEADER = "X-Bizobs-Control"
CONTROL_PATH = "/control/incidents"
CONTROL_DOMAIN = b"control\n"  # no hop index is a word: a control MAC is never a chain MAC
# A control message older than this (or made in the future) is refused: a replay later does
# nothing, and within this window its nonce is remembered, so a replay at once does nothing.
CONTROL_MAX_AGE_S = 5.0
SECRET_BYTES = 32
# Each level of the chain answers its caller this long before the caller gives up on it.
HOP_MARGIN_S = 0.25
# What a hop may take beyond its simulated latency (parsing, the business event, the call).
HOP_ALLOWANCE_S = 0.5
BASE_BUDGET_S = 5.0  # connecting, the panel's own work, a busy machine
_HOP_URL = re.compile(r"http://127\.0\.0\.1:([0-9]{1,5})" + re.escape(PROCESS_PATH))


class Hop(TypedDict):
    """One step of the chain as the panel describes it to the services."""

    url: str
    stepName: str
    serviceName: str
    latencyMs: float
    errorRate: float
    errorType: str
    fields: dict[str, Any]  # business fields, echoed in the step's event


class ChainBody(TypedDict):
    """The request body: the same bytes at every hop."""

    v: int
    customer: dict[str, Any]
    hops: list[Hop]
    thinkTimeMs: float
    journey: dict[str, Any]
    deadline: float  # time.monotonic() by which hop 0 must answer the panel


class ClientFacts(TypedDict, total=False):
    """The CLIENT span of a hop's call to the next hop."""

    spanId: str
    url: str
    startNs: int
    endNs: int
    httpStatus: int | None
    error: str | None


class SpanFacts(TypedDict, total=False):
    """What the panel needs to export a hop's SERVER span (and its CLIENT span)."""

    instanceId: str
    pid: int
    port: int
    startNs: int
    endNs: int
    client: ClientFacts
    # The incident in effect on this hop, if any (app/service/incidents.py): exported as
    # bizobs.incident.id / bizobs.incident.kind on the SERVER span.
    incidentId: str
    incidentKind: str


class ControlBody(TypedDict, total=False):
    """A control message from the panel to one service, signed with `control_credential`."""

    v: int
    op: str  # start | end | list
    issuedAt: float  # time.monotonic() when the panel made it
    nonce: str  # unique per message
    incident: dict[str, Any]  # start: id, kind, endsAt (time.monotonic()) and its parameters
    id: str  # end: the incident to end


class StepError(TypedDict):
    type: str
    message: str


class StepAnswer(TypedDict, total=False):
    """One hop's answer; `downstream` is the next hop's answer, spliced in as it came."""

    stepName: str | None
    serviceName: str | None
    company: str
    pid: int
    port: int
    status: str  # ok | failed
    latencyMs: float
    httpStatus: int
    error: StepError | None
    traceId: str
    spanId: str
    parentSpanId: str | None
    correlationId: str
    event: dict[str, Any]
    totalMs: float
    span: SpanFacts
    downstream: StepAnswer | None


def hop_url(port: int) -> str:
    return f"http://127.0.0.1:{port}{PROCESS_PATH}"


def hop_port(url: object) -> int | None:
    """The port of a hop URL of the one form a hop may have, else None."""
    match = _HOP_URL.fullmatch(url) if isinstance(url, str) else None
    return int(match.group(1)) if match else None


def credential(secret: bytes, index: int, body: bytes) -> str:
    """The chain credential of the request for hop `index` carrying `body`."""
    return hmac.new(secret, b"%d\n" % index + body, hashlib.sha256).hexdigest()


def credential_ok(secret: bytes, index: int, body: bytes, presented: str) -> bool:
    # Bytes: compare_digest refuses non-ASCII str, and a header may carry anything.
    expected = credential(secret, index, body).encode()
    return hmac.compare_digest(expected, presented.encode("utf-8", "surrogateescape"))


def control_credential(secret: bytes, body: bytes) -> str:
    """The control credential of a control message carrying `body`."""
    return hmac.new(secret, CONTROL_DOMAIN + body, hashlib.sha256).hexdigest()


def control_credential_ok(secret: bytes, body: bytes, presented: str) -> bool:
    expected = control_credential(secret, body).encode()
    return hmac.compare_digest(expected, presented.encode("utf-8", "surrogateescape"))


def chain_budget_s(latencies_ms: Sequence[float], think_ms: float) -> float:
    """How long a customer may take through the chain: every step's latency, the think time
    between steps, an allowance and a margin per hop. Derived from the journey, so every valid
    journey can finish, whatever its steps' latencies."""
    hops = len(latencies_ms)
    thinking = think_ms * max(0, hops - 1)
    return (
        BASE_BUDGET_S
        + (sum(latencies_ms) + thinking) / 1000
        + hops * (HOP_ALLOWANCE_S + HOP_MARGIN_S)
    )


def answer_by(deadline: float, index: int) -> float:
    """The moment (time.monotonic) by which hop `index` must answer its caller."""
    return deadline - index * HOP_MARGIN_S
