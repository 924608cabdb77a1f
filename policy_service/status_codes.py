"""The one table between domain errors and gRPC status codes, used by the servers (to end an
RPC or a batch item), the typed client (to raise what the server meant) and the metrics
(to label an item's outcome), so the three cannot drift apart. Imports nothing of the
server side (`policy_service.api`): clients use it too."""

from __future__ import annotations

import grpc
from google.rpc import code_pb2, error_details_pb2
from grpc_status import rpc_status

from policy_service import errors

# Domain error → the google.rpc code it leaves the server with (exact type; others: UNKNOWN).
CODES: dict[type[errors.PolicyError], int] = {
    errors.Unauthenticated: code_pb2.UNAUTHENTICATED,
    errors.NotFound: code_pb2.NOT_FOUND,
    errors.PermissionDenied: code_pb2.PERMISSION_DENIED,
    errors.InvalidArgument: code_pb2.INVALID_ARGUMENT,
    errors.AlreadyExists: code_pb2.ALREADY_EXISTS,
    errors.FailedPrecondition: code_pb2.FAILED_PRECONDITION,
    errors.RateLimited: code_pb2.RESOURCE_EXHAUSTED,
}
# And back, on the client; a server that cannot answer in time is unavailable too.
_ERRORS: dict[int, type[errors.PolicyError]] = {
    **{code: kind for kind, code in CODES.items()},
    code_pb2.UNAVAILABLE: errors.PolicyUnavailable,
    code_pb2.DEADLINE_EXCEEDED: errors.PolicyUnavailable,
}
_STATUS = {status.value[0]: status for status in grpc.StatusCode}


def code_of(exc: errors.PolicyError) -> int:
    """The google.rpc code a domain error leaves with."""
    return int(CODES.get(type(exc), code_pb2.UNKNOWN))


def error_for(code: int | grpc.StatusCode) -> type[errors.PolicyError]:
    """The domain error a client raises for a status (a StatusCode or its number)."""
    number = code.value[0] if isinstance(code, grpc.StatusCode) else code
    return _ERRORS.get(number, errors.PolicyError)


def status_name(code: int) -> str:
    """`5` → `NOT_FOUND`, as the RPC metrics label it."""
    status = _STATUS.get(code)
    return status.name if status is not None else "UNKNOWN"


def reason_of(error: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason a client received, or ''."""
    status = rpc_status.from_call(error)
    if status is None:
        return ""
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""
