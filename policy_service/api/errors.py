"""Maps domain errors to gRPC status codes with a google.rpc ErrorInfo detail."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from policy_service import errors
from policy_service.status_codes import code_of

__all__ = ["DOMAIN", "abort_for", "code_of", "translated"]

log = logging.getLogger(__name__)

DOMAIN = "monomcp.dev"

R = TypeVar("R")


def _status(code: int, message: str, reason: str) -> grpc.Status:
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN))
    return rpc_status.to_status(status_pb2.Status(code=code, message=message, details=[detail]))


async def abort_for(context: grpc.aio.ServicerContext, exc: Exception, where: str) -> None:
    """Ends the RPC with the status for `exc`: domain errors keep their code, bugs become INTERNAL."""
    if isinstance(exc, grpc.aio.AbortError):
        raise exc
    if isinstance(exc, errors.PolicyError):
        await context.abort_with_status(_status(code_of(exc), exc.message, exc.reason))
    log.exception("unhandled error in %s", where, exc_info=exc)
    await context.abort_with_status(_status(code_pb2.INTERNAL, "internal error", "INTERNAL"))


def translated(method: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """Wraps a unary servicer method so every failure leaves through `abort_for`."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> R:
        try:
            return await method(self, request, context)
        except Exception as exc:
            await abort_for(context, exc, method.__name__)
        raise AssertionError("unreachable")

    return wrapper
