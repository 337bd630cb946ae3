"""Injected error types and the HTTP status each maps to.

See docs/architecture.md, "The step service"."""

from __future__ import annotations

from enum import StrEnum


class ErrorType(StrEnum):
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"
    VALIDATION = "validation"
    PAYMENT = "payment"
    AUTH = "auth"
    RATE_LIMIT = "rate_limit"
    INTERNAL = "internal"


HTTP_STATUS: dict[ErrorType, int] = {
    ErrorType.TIMEOUT: 504,
    ErrorType.UNAVAILABLE: 503,
    ErrorType.VALIDATION: 400,
    ErrorType.PAYMENT: 402,
    ErrorType.AUTH: 401,
    ErrorType.RATE_LIMIT: 429,
    ErrorType.INTERNAL: 500,
}

MESSAGES: dict[ErrorType, str] = {
    ErrorType.TIMEOUT: "upstream dependency timed out",
    ErrorType.UNAVAILABLE: "service temporarily unavailable",
    ErrorType.VALIDATION: "request failed business validation",
    ErrorType.PAYMENT: "payment declined",
    ErrorType.AUTH: "customer not authorised",
    ErrorType.RATE_LIMIT: "rate limit exceeded",
    ErrorType.INTERNAL: "internal processing error",
}
