"""Typed domain errors. Logic raises them; the API layer maps them to the error envelope in one place."""

from __future__ import annotations


class JifenError(Exception):
    """Base of every error a caller may see. ``code`` and ``status`` make the envelope."""

    code = "ERROR"
    status = 400

    def __init__(self, message: str, *, details: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ValidationFailed(JifenError):
    code, status = "VALIDATION_FAILED", 400


class PayloadTooLarge(JifenError):
    code, status = "PAYLOAD_TOO_LARGE", 413


class Unauthorized(JifenError):
    code, status = "UNAUTHORIZED", 401


class Forbidden(JifenError):
    code, status = "FORBIDDEN", 403


class NotFound(JifenError):
    code, status = "NOT_FOUND", 404


class Conflict(JifenError):
    code, status = "CONFLICT", 409


class AlreadyExists(JifenError):
    code, status = "ALREADY_EXISTS", 409


class AlreadyDone(JifenError):
    code, status = "ALREADY_DONE", 409


class InsufficientPoints(JifenError):
    code, status = "INSUFFICIENT_POINTS", 409


class SoldOut(JifenError):
    code, status = "SOLD_OUT", 409


class LimitReached(JifenError):
    code, status = "LIMIT_REACHED", 409


class NotOnSale(JifenError):
    code, status = "NOT_ON_SALE", 409


class IdempotencyMismatch(JifenError):
    code, status = "IDEMPOTENCY_MISMATCH", 409


class TooManyAttempts(JifenError):
    """Too many failed attempts (e.g. logins of one account): refused until ``retry_after`` seconds have passed."""

    code, status = "TOO_MANY_ATTEMPTS", 429

    def __init__(self, message: str, *, retry_after: int, details: list[dict[str, str]] | None = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = max(1, retry_after)


class UpstreamFailed(JifenError):
    """An adapter's outside call failed (login callback, payout...)."""

    code, status = "UPSTREAM_FAILED", 502
