"""A failed export request in plain words, naming the endpoint and never a header value: the
status bar's `lastError` and the settings dialog's connection test say the same thing
(docs/architecture.md, "Export")."""

from __future__ import annotations

import socket

from aiohttp import (
    ClientConnectorCertificateError,
    ClientConnectorError,
    ClientSSLError,
    ServerDisconnectedError,
)


def plain_failure(exc: BaseException, shown: str, timeout_s: float) -> str:
    """What went wrong sending to `shown` (the endpoint's display URL)."""
    if isinstance(exc, ClientConnectorCertificateError | ClientSSLError):
        return f"TLS handshake with {shown} failed ({type(exc).__name__})"
    if isinstance(exc, ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return f"connection refused at {shown}"
        if isinstance(exc.os_error, socket.gaierror):
            return f"cannot resolve the host of {shown}"
        return f"cannot connect to {shown} ({type(exc.os_error).__name__})"
    if isinstance(exc, ServerDisconnectedError):
        return f"{shown} closed the connection without an answer"
    if isinstance(exc, TimeoutError):
        return f"no answer from {shown} within {timeout_s:g} s"
    return f"{type(exc).__name__} sending to {shown}"
