"""Domain errors. The API layer maps each to a gRPC status code with an ErrorInfo reason."""

from __future__ import annotations


class PolicyError(Exception):
    """Base for errors a caller may see. `reason` is a stable UPPER_SNAKE code."""

    reason = "ERROR"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class Unauthenticated(PolicyError):
    reason = "UNAUTHENTICATED"


class NotFound(PolicyError):
    reason = "NOT_FOUND"


class PermissionDenied(PolicyError):
    reason = "PERMISSION_DENIED"


class InvalidArgument(PolicyError):
    reason = "INVALID_ARGUMENT"


class AlreadyExists(PolicyError):
    reason = "ALREADY_EXISTS"


class FailedPrecondition(PolicyError):
    reason = "FAILED_PRECONDITION"


class RateLimited(PolicyError):
    """Too many attempts; `retry_after` seconds until the next one is considered."""

    reason = "RATE_LIMITED"

    def __init__(self, message: str, reason: str | None = None, retry_after: int = 0) -> None:
        super().__init__(message, reason)
        self.retry_after = retry_after


class PolicyUnavailable(PolicyError):
    """The policy service could not be reached or did not answer in time (raised by clients)."""

    reason = "POLICY_UNAVAILABLE"
